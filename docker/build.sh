#!/usr/bin/env bash
# Builds the raft-elector container image: a static x86_64-unknown-linux-musl binary on
# `scratch` (docker/Dockerfile). Needs only a Rust toolchain (rustup) and Docker; pulls nothing.
#
#   docker/build.sh                     # tags raft-elector:latest
#   docker/build.sh my.registry/raft-elector:0.1.0
#
# Environment:
#   RAFT_ELECTOR_IMAGE   tag to use when none is given (default raft-elector:latest)
#   IIDFILE              also write the image id (sha256:...) to this file
#   CARGO_TARGET_DIR     honoured as by cargo (default: target/ in the repository)
#
# The two steps, by hand:
#   cargo build --release --target x86_64-unknown-linux-musl
#   (stage the binary and an empty data/ dir) && docker build -f docker/Dockerfile <staging dir>
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
image=${1:-${RAFT_ELECTOR_IMAGE:-raft-elector:latest}}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
  echo "build.sh: installing the Rust target $target" >&2
  rustup target add "$target" >&2
fi

# Size over build speed for the shipped binary: symbols stripped, whole-program LTO, one
# codegen unit. Set through cargo's environment so the shared [profile.release] is untouched.
# The musl target links statically (its own libc and crt objects ship with the Rust target).
CARGO_PROFILE_RELEASE_STRIP=symbols \
CARGO_PROFILE_RELEASE_LTO=true \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  cargo build --release --target "$target" --bin raft-elector >&2

bin="$target_dir/$target/release/raft-elector"
[ -x "$bin" ] || { echo "build.sh: $bin was not built" >&2; exit 1; }

# A private build context per run (concurrent runs must not share one): the binary and an
# empty data/ directory that becomes /data, owned by the runtime user.
mkdir -p "$target_dir"
context=$(mktemp -d "$target_dir/docker-context.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp "$bin" "$context/raft-elector"
mkdir "$context/data"

# Without the buildx plugin, recent Docker CLIs refuse BuildKit builds; the classic builder
# handles this Dockerfile just as well.
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi

previous=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
iid="$context/iid"
docker build --quiet --iidfile "$iid" --tag "$image" -f docker/Dockerfile "$context" >/dev/null
id=$(cat "$iid")
if [ -n "${IIDFILE:-}" ]; then
  printf '%s\n' "$id" >"$IIDFILE"
fi
# Drop the build this tag pointed to before, unless another tag or a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$id" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi
size=$(docker image inspect --format '{{.Size}}' "$id")
echo "build.sh: built $image ($id, $((size / 1000)) kB)" >&2
