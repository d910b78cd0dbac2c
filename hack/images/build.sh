#!/usr/bin/env bash
# Builds the credit-api, operator and drift-job images with podman (or docker), offline:
#   1. the base image: BASE_IMAGE if set (e.g. python:3.11-slim), else the local debootstrap
#      base from hack/images/base.sh (no registry needed);
#   2. per image, a wheelhouse in build/wheels/<image>/: our packages built with `uv build`, and
#      every locked dependency (uv.lock, exported with `uv export`) fetched on the host with pip,
#      so the container build needs no network (and no proxy CA inside the build);
#   3. the image, tagged <name>:<content hash> and <name>:dev. The hash covers the Dockerfile,
#      uv.lock, the packages' sources and the base image, so an unchanged image is not rebuilt.
# Usage: hack/images/build.sh [--wheels-only] [credit-api|operator|drift ...]   (default: all)
#   --wheels-only: only step 2, for builders that build the Dockerfiles themselves (Tilt).
# Writes build/images.json ({"credit-api": "localhost/credit-api:<hash>", ...}) for the tests
# and Tilt, and prints each image's reference and size.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
export UV_PYTHON_DOWNLOADS=never UV_PYTHON="${UV_PYTHON:-python3.11}"
# uv: the one running us (`uv run` exports $UV), else uv on PATH, else the module the Makefile
# installs. pip (for `pip download`) runs as a uv tool: a virtualenv may have no pip.
if [ -n "${UV:-}" ]; then uv=("$UV"); elif command -v uv >/dev/null; then uv=(uv); else uv=(python3 -m uv); fi
pip=("${uv[@]}" tool run --from 'pip>=24,<27' pip)
engine="${CONTAINER_ENGINE:-podman}"
engine_flags=()
if [ "$engine" = podman ]; then
  # runc: crun fails on hosts with hybrid cgroups; limits are set explicitly because raising
  # them is not permitted in unprivileged sandboxes.
  # --layers=false: no intermediate images left behind (the content hash is the cache).
  engine_flags=(--runtime "${PODMAN_RUNTIME:-runc}" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
    --layers=false)
fi

# image name -> Dockerfile, workspace package, extra, the workspace packages it installs,
# and the source folders its content hash covers.
declare -A dockerfile=([credit-api]=app/Dockerfile [operator]=operator/Dockerfile [drift]=operator/Dockerfile.drift)
declare -A package=([credit-api]=credit-api [operator]=modelmonitor [drift]=modelmonitor)
declare -A extra=([credit-api]="" [operator]="" [drift]=drift)
declare -A local_packages=([credit-api]="credit-api prediction-store" [operator]="modelmonitor" [drift]="modelmonitor prediction-store")
declare -A sources=([credit-api]="app store" [operator]="operator" [drift]="operator store")
declare -A repository=([credit-api]=localhost/credit-api [operator]=localhost/modelmonitor-operator [drift]=localhost/modelmonitor-drift-job)

log() { echo "images: $*" >&2; }

# One build at a time per work tree: concurrent runs (tests, Tilt, a shell) would race on
# build/wheels and build/images.json; the second run then finds the images up to date.
mkdir -p build
exec 9>build/.images.lock
flock 9

wheels_only=false
if [ "${1:-}" = --wheels-only ]; then wheels_only=true; shift; fi
if [ $# -eq 0 ]; then set -- credit-api operator drift; fi
for name in "$@"; do
  [ -n "${dockerfile[$name]:-}" ] || { echo "images: unknown image '$name' (credit-api, operator, drift)" >&2; exit 2; }
done

content_hash() {  # name -> hash of everything the image is built from
  local name="$1"
  {
    echo "$base_id ${extra[$name]} ${local_packages[$name]}"
    cat "${dockerfile[$name]}" uv.lock
    # Sources: tracked and untracked files (not ignored ones), in a stable order.
    # shellcheck disable=SC2086
    git ls-files --cached --others --exclude-standard -- ${sources[$name]} \
      | grep -v -E '(^|/)tests/|(^|/)bench/' | LC_ALL=C sort | while read -r f; do
        [ -f "$f" ] && { echo "$f"; cat "$f"; }
      done
  } | sha256sum | cut -c1-16
}

build_wheelhouse() {  # name -> build/wheels/<name>/ with requirements.txt
  local name="$1" dir="build/wheels/$1" req
  rm -rf "$dir" && mkdir -p "$dir"
  req="$dir/requirements.txt"
  local export_args=(export --frozen --no-dev --no-emit-workspace --no-hashes --no-header
    --no-annotate --package "${package[$name]}" --output-file "$dir/third-party.txt")
  [ -n "${extra[$name]}" ] && export_args+=(--extra "${extra[$name]}")
  "${uv[@]}" "${export_args[@]}" >/dev/null
  log "$name: fetching $(grep -c '==' "$dir/third-party.txt") locked wheels"
  "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --requirement "$dir/third-party.txt" --dest "$dir"
  cp "$dir/third-party.txt" "$req"
  local pkg
  for pkg in ${local_packages[$name]}; do
    "${uv[@]}" build --quiet --wheel --package "$pkg" --out-dir "$dir" >&2
    echo "$pkg" >> "$req"
  done
}

if $wheels_only; then
  for name in "$@"; do build_wheelhouse "$name"; done
  exit 0
fi
command -v "$engine" >/dev/null || { echo "images: $engine not found (set CONTAINER_ENGINE=docker or install podman)" >&2; exit 1; }

base="${BASE_IMAGE:-}"
if [ -z "$base" ]; then
  base="$(bash hack/images/base.sh)"
fi
base_id="$("$engine" image inspect --format '{{.Id}}' "$base" 2>/dev/null || echo "$base")"

declare -A built=()
for name in "$@"; do
  ref="${repository[$name]}:$(content_hash "$name")"
  if "$engine" image inspect "$ref" >/dev/null 2>&1; then
    log "$name: $ref is up to date"
  else
    build_wheelhouse "$name"
    log "$name: building $ref from ${dockerfile[$name]} on $base"
    start=$SECONDS
    "$engine" build "${engine_flags[@]}" --build-arg "BASE_IMAGE=$base" \
      --file "${dockerfile[$name]}" --tag "$ref" . >&2
    log "$name: built in $((SECONDS - start))s"
  fi
  "$engine" tag "$ref" "${repository[$name]}:dev"
  built[$name]="$ref"
  # Older builds of this image (other content hashes) only take disk space.
  "$engine" images --format '{{.Repository}}:{{.Tag}}' "${repository[$name]}" \
    | grep -v -x -e "$ref" -e "${repository[$name]}:dev" \
    | xargs -r "$engine" rmi >/dev/null 2>&1 || true
done

# build/images.json: merged with what an earlier run recorded for the other images.
python3 - "$(for n in "${!built[@]}"; do echo "$n=${built[$n]}"; done)" <<'PY'
import json, pathlib, sys
path = pathlib.Path("build/images.json")
images = json.loads(path.read_text()) if path.exists() else {}
images.update(line.split("=", 1) for line in sys.argv[1].splitlines() if line)
path.write_text(json.dumps(images, indent=2, sort_keys=True) + "\n")
PY

for name in "$@"; do
  size="$("$engine" image inspect --format '{{.Size}}' "${built[$name]}")"
  printf '%-12s %s %s MB\n' "$name" "${built[$name]}" "$((size / 1000000))"
done
