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

# Container tests (tests/containers and the container nemesis runs): the image (static musl
# binary on scratch; installs the Rust target if missing) and kubernetes-validate in a venv
# under target/. Both are no-ops when up to date. Without a usable Docker the container tests
# fail. A developer without Docker sets RAFT_ELECTOR_SKIP_DOCKER=1: the run then uses
# nextest's `no-docker` profile (.config/nextest.toml), which leaves them out, and nextest
# reports them as skipped. CI (.ci/run) refuses that variable.
profile=()
if [ "${RAFT_ELECTOR_SKIP_DOCKER:-}" = 1 ]; then
  echo "RAFT_ELECTOR_SKIP_DOCKER=1: not building the container image; the tests that need" \
    "Docker are left out of the run (nextest counts them as skipped)" >&2
  profile=(--profile no-docker)
elif docker version >/dev/null 2>&1; then
  docker/build.sh raft-elector:test
else
  echo "WARNING: Docker is not usable here; the container tests will fail" >&2
fi
config/kubernetes/validate.sh --install-only

# The arm64 test (tests/it/arm64.rs) builds the aarch64 musl binary (linked with rust-lld,
# .cargo/config.toml): the Rust target must be installed.
arm_target=aarch64-unknown-linux-musl
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$arm_target"; then
  echo "installing the Rust target $arm_target" >&2
  rustup target add "$arm_target"
fi

# Debian packages some tests use: the alert tests (tests/it/alerts.rs) run promtool and a real
# Prometheus server; the Java example (tests/it/examples.rs) is compiled against Spring 4.3 and
# Jackson (the JDK is the machine's); the arm64 test needs qemu-user.
debs=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || debs+=(prometheus)
[ -e /usr/share/java/spring3-context.jar ] || debs+=(libspring-context-java)
[ -e /usr/share/java/spring3-web.jar ] || debs+=(libspring-web-java)
[ -e /usr/share/java/jackson-databind.jar ] || debs+=(libjackson2-databind-java)
# The arm64 test (tests/it/arm64.rs) runs the aarch64 binary under qemu-user; building it
# compiles ring's C code for aarch64 with Debian's cross compiler (.cargo/config.toml).
command -v qemu-aarch64-static >/dev/null 2>&1 || debs+=(qemu-user-static)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || debs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
if [ ${#debs[@]} -gt 0 ]; then
  echo "installing Debian packages the tests need: ${debs[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi

# The fuzz targets (fuzz/, a crate of its own run by cargo-fuzz on nightly) are compiled on
# this toolchain so that they cannot rot unnoticed.
if ! cargo check --manifest-path fuzz/Cargo.toml --bins --locked; then
  echo "FAILED: the fuzz targets in fuzz/fuzz_targets do not compile against the crate;" \
    "fix them (cargo check --manifest-path fuzz/Cargo.toml --bins)" >&2
  exit 1
fi

cargo nextest run "${profile[@]}" --workspace --all-targets --no-fail-fast "$@"
