#!/usr/bin/env bash
# Runs raft-elector's benchmark (the bench/ crate) and writes docs/bench/: results.json,
# results.md and the SVG charts that docs/BENCHMARKS.md shows. Not part of the tests.
#
#   scripts/bench.sh                          # everything (about 27-37 minutes)
#   scripts/bench.sh --quick                  # smoke run: 3 trials each, no etcdctl elect
#   scripts/bench.sh --only failover,etcd     # some sections; the others' results are kept
#   scripts/bench.sh --only claims            # job claims against PostgreSQL (about 3 minutes)
#   scripts/bench.sh --wait-quiet 15m --max-load 0.5   # wait (bounded) for a quiet machine
#
# Installs what it needs when absent: wrk, etcd and PostgreSQL (Debian packages wrk,
# etcd-server, etcd-client, postgresql; the claims section starts a throwaway PostgreSQL
# server of its own, as the user postgres when run as root). When Docker answers, it builds
# the container image with docker/build.sh first to report its size (BENCH_IMAGE=0 skips
# that).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "bench.sh: installing ${need[*]}" >&2
  $sudo apt-get update >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

# The binary is built from the working tree; record which commit that was (and whether src/
# differed from it), since HEAD may move while the benchmark runs.
BENCH_BUILD_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
BENCH_BUILD_DIRTY=0
if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then BENCH_BUILD_DIRTY=1; fi
export BENCH_BUILD_COMMIT BENCH_BUILD_DIRTY
cargo build --release -p raft-elector -p raft-elector-bench --bin raft-elector --bin raft-elector-bench >&2

args=()
if [ "${BENCH_IMAGE:-1}" != 0 ] && [ -x docker/build.sh ] && docker info >/dev/null 2>&1; then
  if docker/build.sh raft-elector:bench >&2; then
    args+=(--image raft-elector:bench)
  else
    echo "bench.sh: the image build failed; its size will not be reported" >&2
  fi
fi

exec "${CARGO_TARGET_DIR:-target}/release/raft-elector-bench" "${args[@]}" "$@"
