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

# Container tests (tests/containers): the image (static musl binary on scratch; installs the
# Rust target if missing) and kubernetes-validate in a venv under target/. Both are no-ops when
# up to date. Without a usable Docker the container tests fail loudly, unless
# RAFT_ELECTOR_SKIP_DOCKER=1 (developers only; CI has Docker).
if [ "${RAFT_ELECTOR_SKIP_DOCKER:-}" = 1 ]; then
  echo "RAFT_ELECTOR_SKIP_DOCKER=1: not building the container image; container tests will skip" >&2
elif docker version >/dev/null 2>&1; then
  docker/build.sh raft-elector:test
else
  echo "WARNING: Docker is not usable here; the container tests will fail" >&2
fi
config/kubernetes/validate.sh --install-only

cargo nextest run --workspace --all-targets --no-fail-fast "$@"
