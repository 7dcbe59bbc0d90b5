#!/usr/bin/env bash
# Runs every test of raft-elector: unit tests, the real-process cluster tests, openraft's
# storage suite, and (when Docker is available) the container tests. Installs what it needs
# first, so it works on a fresh machine with a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi

cargo nextest run --workspace --all-targets --no-fail-fast "$@"
