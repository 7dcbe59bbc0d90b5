#!/usr/bin/env bash
# Validates the Kubernetes manifests: the kustomize base and every overlay (or the kustomize
# directories and files given), each rendered on its own with `kubectl kustomize`, against the
# JSON schemas of Kubernetes 1.29 to 1.37, in strict mode (unknown fields are errors), with
# kubernetes-validate pinned in validate-requirements.txt; then the deployment rules of
# check_rules.py (labels that must match, sidecar settings, security context, probes and
# resources, no `default` namespace...), unless --schema-only is given.
#
#   config/kubernetes/validate.sh [--schema-only] [DIR|FILE.yaml...]
#   config/kubernetes/validate.sh --install-only      # just make the venv (scripts/test.sh)
#
# Installs kubernetes-validate into a venv under target/ on first use (needs python3 with
# venv and access to PyPI); nothing outside the repository changes. No cluster is needed;
# kubectl (for `kubectl kustomize`, offline) is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/kubernetes-validate-venv
req=$here/validate-requirements.txt

mkdir -p "$target"
# One installer at a time (tests may call this concurrently).
exec 9>"$target/kubernetes-validate-venv.lock"
flock 9
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  echo "validate.sh: installing kubernetes-validate into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req" >&2
  cp "$req" "$venv/requirements.txt"
fi
flock -u 9
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

rules=1
if [ "${1:-}" = "--schema-only" ]; then
  rules=0
  shift
fi
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=("$here/base" "$here"/overlays/*/)
fi

# KUBERNETES_VERSIONS="1.37.0" narrows the versions (the tests' mutation checks use it).
read -r -a versions <<<"${KUBERNETES_VERSIONS:-1.29.0 1.30.0 1.31.0 1.32.0 1.33.0 1.34.0 1.35.0 1.36.0 1.37.0}"
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for t in "${targets[@]}"; do
  t=${t%/}
  if [ -d "$t" ]; then
    if ! command -v kubectl >/dev/null 2>&1; then
      echo "validate.sh: kubectl is needed to render $t (kubectl kustomize, offline)" >&2
      exit 1
    fi
    file=$rendered/$(basename "$t").yaml
    if ! kubectl kustomize "$t" >"$file"; then
      echo "validate.sh: kubectl kustomize $t FAILED" >&2
      exit 1
    fi
  else
    file=$t
  fi
  echo "== $t"
  for v in "${versions[@]}"; do
    if ! out=$("$venv/bin/kubernetes-validate" --strict --kubernetes-version "$v" "$file" 2>&1); then
      echo "$out"
      echo "validate.sh: $t FAILED against Kubernetes $v" >&2
      exit 1
    fi
    echo "Kubernetes $v (strict): $(echo "$out" | grep -c passed) resources passed"
  done
  echo "$out" | sed 's/^/  /'
  if [ "$rules" = 1 ]; then
    "$venv/bin/python" "$here/check_rules.py" "$file"
  fi
done
