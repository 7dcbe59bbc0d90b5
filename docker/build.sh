#!/usr/bin/env bash
# Builds the raft-elector container images: a static musl binary on `scratch`
# (docker/Dockerfile), for amd64 (x86_64-unknown-linux-musl) and/or arm64
# (aarch64-unknown-linux-musl). Needs only a Rust toolchain (rustup) and Docker; pulls nothing,
# emulates nothing (the Dockerfile only copies files, so `docker build --platform linux/arm64`
# runs no arm64 code).
#
#   docker/build.sh                     # amd64 only, tags raft-elector:latest (as before)
#   docker/build.sh my.registry/raft-elector:0.1.0
#   docker/build.sh --arch all 0.1.0    # both: raft-elector:0.1.0-amd64, raft-elector:0.1.0-arm64
#                                       #       and raft-elector:0.1.0 = the host's arch
#   docker/build.sh --arch arm64 my.registry/raft-elector:0.1.0   # ...:0.1.0-arm64 only
#
# With --arch (amd64, arm64 or all) every image is tagged IMAGE-ARCH (the tag part gets the
# suffix: raft-elector:0.1.0-arm64), and the image of the host's architecture is tagged IMAGE
# too. A bare tag (no ':' or '/') is taken as raft-elector:TAG. Without --arch: amd64, tagged
# IMAGE only, as this script always did (the tests use that).
#
# A multi-arch image index (one tag, both architectures) cannot be made here: `docker
# manifest create` only references images already pushed to a registry, and this Docker has no
# buildx. README.md ("Multi-arch") gives the commands for a machine with a registry.
#
# Environment:
#   RAFT_ELECTOR_IMAGE   image to use when none is given (default raft-elector:latest)
#   IIDFILE              also write the image id (sha256:...) of IMAGE to this file
#   CARGO_TARGET_DIR     honoured as by cargo (default: target/ in the repository)
#   MAX_IMAGE_BYTES      fail when an image is larger (default 9000000: 9 MB; peer TLS, rustls
#                        and ring, took the amd64 image from 7.6 to 8.7 MB)
#
# The two steps, by hand (per arch):
#   cargo build --release --target aarch64-unknown-linux-musl --bin raft-elector
#   (stage the binary and an empty data/ dir) && docker build --platform linux/arm64 -f docker/Dockerfile <staging dir>
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: docker/build.sh [--arch amd64|arm64|all] [IMAGE]" >&2
  exit 2
}

arch=
image=
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ $# -ge 2 ] || usage; arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 0 ;;
    -*) usage ;;
    *) [ -z "$image" ] || usage; image=$1; shift ;;
  esac
done
image=${image:-${RAFT_ELECTOR_IMAGE:-raft-elector:latest}}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
max_bytes=${MAX_IMAGE_BYTES:-9000000}

case "$(uname -m)" in
  x86_64|amd64) host_arch=amd64 ;;
  aarch64|arm64) host_arch=arm64 ;;
  *) host_arch=$(uname -m) ;;
esac

# IMAGE-ARCH: the suffix goes on the tag (registry ports contain ':' too, hence the '/' test).
suffixed() {
  local name=$1 suffix=$2 last=${1##*/}
  if [[ $last == *:* ]]; then
    echo "$name-$suffix"
  else
    echo "$name:latest-$suffix"
  fi
}

case "$arch" in
  "") arches=(amd64) ;;
  amd64|arm64) arches=("$arch") ;;
  all) arches=(amd64 arm64) ;;
  *) usage ;;
esac
if [ -n "$arch" ] && [[ $image != */* && $image != *:* ]]; then
  image="raft-elector:$image"
fi

rust_target() {
  case "$1" in
    amd64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
  esac
}

# Without the buildx plugin, recent Docker CLIs refuse BuildKit builds; the classic builder
# handles this Dockerfile just as well (and honours --platform for a COPY-only image).
if ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi

mkdir -p "$target_dir"
contexts=()
trap 'rm -rf "${contexts[@]}"' EXIT

# tag_image ID TAG: points TAG at ID; drops the build TAG pointed to before, unless another
# tag or a container still uses it.
tag_image() {
  local id=$1 tag=$2 previous
  previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  docker tag "$id" "$tag"
  if [ -n "$previous" ] && [ "$previous" != "$id" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
  fi
}

failed=0
for a in "${arches[@]}"; do
  target=$(rust_target "$a")
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "build.sh: installing the Rust target $target" >&2
    rustup target add "$target" >&2
  fi
  # ring (rustls' crypto) compiles C for its target: aarch64 needs a cross compiler
  # (.cargo/config.toml names Debian's; another one can be given with CC_aarch64_unknown_linux_musl).
  if [ "$a" = arm64 ] && [ "$host_arch" != arm64 ] && [ -z "${CC_aarch64_unknown_linux_musl:-}" ] \
    && ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
    echo "build.sh: building for arm64 needs a C cross compiler for ring: apt-get install" \
      "gcc-aarch64-linux-gnu (or set CC_aarch64_unknown_linux_musl)" >&2
    exit 1
  fi

  # Size over build speed for the shipped binary: symbols stripped, whole-program LTO, one
  # codegen unit, optimized for size (opt-level s: the amd64 image was 8.9 MB at opt-level 3;
  # an elector spends its CPU waiting, not computing). Set through cargo's environment so the
  # shared [profile.release] is untouched.
  # The musl targets link statically (their own libc and crt objects ship with the Rust
  # target); aarch64 links with Rust's bundled rust-lld (.cargo/config.toml); only ring's C
  # needs a cross compiler.
  # tests/it/arm64.rs builds the arm64 binary with the same settings.
  CARGO_PROFILE_RELEASE_STRIP=symbols \
  CARGO_PROFILE_RELEASE_LTO=true \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
    cargo build --release --target "$target" --bin raft-elector >&2

  bin="$target_dir/$target/release/raft-elector"
  [ -x "$bin" ] || { echo "build.sh: $bin was not built" >&2; exit 1; }

  # A private build context per run (concurrent runs must not share one): the binary and an
  # empty data/ directory that becomes /data, owned by the runtime user.
  context=$(mktemp -d "$target_dir/docker-context.XXXXXX")
  contexts+=("$context")
  cp "$bin" "$context/raft-elector"
  mkdir "$context/data"

  # --no-cache: the classic builder would reuse a cached layer of the other architecture (the
  # data/ layer is the same) and then refuse it ("does not match the specified platform").
  # Two COPYs: nothing worth caching.
  iid="$context/iid"
  docker build --quiet --no-cache --platform "linux/$a" --iidfile "$iid" -f docker/Dockerfile "$context" >/dev/null
  id=$(cat "$iid")
  got=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$id")
  [ "$got" = "linux/$a" ] || { echo "build.sh: the $a image is $got" >&2; exit 1; }

  tags=()
  if [ -n "$arch" ]; then
    tags+=("$(suffixed "$image" "$a")")
  fi
  if [ -z "$arch" ] || [ "$a" = "$host_arch" ]; then
    tags+=("$image")
    if [ -n "${IIDFILE:-}" ]; then
      printf '%s\n' "$id" >"$IIDFILE"
    fi
  fi
  for t in "${tags[@]}"; do
    tag_image "$id" "$t"
  done

  size=$(docker image inspect --format '{{.Size}}' "$id")
  echo "build.sh: built ${tags[*]} (linux/$a, $id, $size bytes = $((size / 1000)) kB)" >&2
  if [ "$size" -gt "$max_bytes" ]; then
    echo "build.sh: FAILED: the $a image is $size bytes, more than $max_bytes" >&2
    failed=1
  fi
done
exit "$failed"
