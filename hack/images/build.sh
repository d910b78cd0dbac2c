#!/usr/bin/env bash
# Builds the credit-api, operator and drift-job images with podman (or docker), offline, and
# the PostgreSQL image the local node runs for the chart's bundled database (`postgres`, built
# only when asked for by name: elsewhere the chart runs the official image):
#   1. the base image: BASE_IMAGE if set (e.g. python:3.11-slim), else the local debootstrap
#      base from hack/images/base.sh (no registry needed);
#   2. per image, a wheelhouse in build/wheels/<image>/: our packages built with `uv build`, and
#      every locked dependency (uv.lock, exported with `uv export`) fetched on the host with pip,
#      so the container build needs no network (and no proxy CA inside the build). Whatever the
#      host (macOS too), the wheels are those of the images' platform: Linux with glibc 2.36
#      (Debian bookworm), CPython 3.11, IMAGE_ARCH (x86_64 or aarch64; default: this machine's);
#   3. the image, tagged <name>:<content hash> and <name>:dev. The hash covers the Dockerfile,
#      uv.lock, the packages' sources and the base image, so an unchanged image is not rebuilt.
# Usage: hack/images/build.sh [--wheels-only] [credit-api|operator|drift|postgres ...]
#   (default: credit-api, operator and drift)
#   --wheels-only: only step 2, for builders that build the Dockerfiles themselves (Tilt).
#   WHEELS_DIR=<dir>: the wheelhouses go to <dir>/<image>/ instead (with --wheels-only only: the
#   Dockerfiles copy build/wheels/<image>/).
# Runs on macOS's bash 3.2 (no associative arrays here) and without flock (then concurrent runs
# are not serialised); needs uv, and python3.11 (UV_PYTHON) to build our wheels.
# Writes build/images.json ({"credit-api": "localhost/credit-api:<hash>", ...}) for the tests
# and Tilt, and prints each image's reference and size.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
export UV_PYTHON_DOWNLOADS=never UV_PYTHON="${UV_PYTHON:-python3.11}"
# uv: the one running us (`uv run` exports $UV), else uv on PATH, else the module the Makefile
# installs. pip (for `pip download`) runs as a uv tool: a virtualenv may have no pip. The same
# tool environment has `packaging`, to evaluate the requirements' markers for the images.
if [ -n "${UV:-}" ]; then uv=("$UV"); elif command -v uv >/dev/null; then uv=(uv); else uv=(python3 -m uv); fi
pip_tool=("${uv[@]}" tool run --from 'pip>=24,<27' --with 'packaging>=24')
engine="${CONTAINER_ENGINE:-podman}"
engine_flags=()
if [ "$engine" = podman ]; then
  # runc: crun fails on hosts with hybrid cgroups; limits are set explicitly because raising
  # them is not permitted in unprivileged sandboxes.
  # --layers=false: no intermediate images left behind (the content hash is the cache).
  engine_flags=(--runtime "${PODMAN_RUNTIME:-runc}" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
    --layers=false)
fi

# The images' architecture, by its Linux name: IMAGE_ARCH, else this machine's (an Apple Silicon
# Mac says arm64, and Docker Desktop builds linux/arm64 images there).
arch="${IMAGE_ARCH:-$(uname -m)}"
case "$arch" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) echo "images: unsupported IMAGE_ARCH '$arch' (x86_64 or aarch64)" >&2; exit 2 ;;
esac
# pip's --platform tags for that architecture on glibc 2.36 (the base images are Debian bookworm),
# best first. pip does not expand manylinux_2_X tags itself, so every version is listed;
# manylinux2014 (pip adds manylinux2010 and manylinux1 on x86_64) for wheels tagged the old way.
# No linux_* tags: such wheels are built for one machine, not portable.
glibc_minor=36
oldest_minor=17  # manylinux starts there for aarch64, at 2.5 for x86_64
if [ "$arch" = x86_64 ]; then oldest_minor=5; fi
platform_flags=()
minor=$glibc_minor
while [ "$minor" -ge "$oldest_minor" ]; do
  platform_flags+=(--platform "manylinux_2_${minor}_$arch")
  minor=$((minor - 1))
done
platform_flags+=(--platform "manylinux2014_$arch")

# image name -> its Dockerfile, workspace package and extra, the workspace packages it installs,
# the source folders its content hash covers, and its repository. A function rather than
# associative arrays, which macOS's bash 3.2 does not have.
describe() {  # name -> sets dockerfile package extra local_packages sources repository
  case "$1" in
    credit-api)
      dockerfile=app/Dockerfile package=credit-api extra=""
      local_packages="credit-api prediction-store" sources="app store"
      repository=localhost/credit-api ;;
    operator)
      dockerfile=operator/Dockerfile package=modelmonitor extra=""
      local_packages="modelmonitor" sources="operator"
      repository=localhost/modelmonitor-operator ;;
    drift)
      dockerfile=operator/Dockerfile.drift package=modelmonitor extra=drift
      local_packages="modelmonitor prediction-store" sources="operator store"
      repository=localhost/modelmonitor-drift-job ;;
    postgres)  # no wheels: Debian's postgresql-15, installed at build time (needs the mirror)
      dockerfile=hack/images/postgres/Containerfile package="" extra=""
      local_packages="" sources="hack/images/postgres"
      repository=localhost/postgres ;;
    *) return 1 ;;
  esac
}

log() { echo "images: $*" >&2; }

# One build at a time per work tree: concurrent runs (tests, Tilt, a shell) would race on
# build/wheels and build/images.json; the second run then finds the images up to date.
mkdir -p build
if command -v flock >/dev/null; then
  exec 9>build/.images.lock
  flock 9
else
  log "no flock on this machine: concurrent runs are not serialised (brew install flock)"
fi

wheels_only=false
if [ "${1:-}" = --wheels-only ]; then wheels_only=true; shift; fi
if [ $# -eq 0 ]; then set -- credit-api operator drift; fi
for name in "$@"; do
  describe "$name" || { echo "images: unknown image '$name' (credit-api, operator, drift, postgres)" >&2; exit 2; }
done

if command -v sha256sum >/dev/null; then sha256=(sha256sum); else sha256=(shasum -a 256); fi

content_hash() {  # (after describe) -> hash of everything the image is built from
  {
    echo "$base_id $extra $local_packages"
    cat "$dockerfile" uv.lock
    # Sources: tracked and untracked files (not ignored ones), in a stable order.
    # shellcheck disable=SC2086
    git ls-files --cached --others --exclude-standard -- $sources \
      | grep -v -E '(^|/)tests/|(^|/)bench/' | LC_ALL=C sort | while read -r f; do
        [ -f "$f" ] && { echo "$f"; cat "$f"; }
      done
  } | "${sha256[@]}" | cut -c1-16
}

build_wheelhouse() {  # name (after describe) -> build/wheels/<name>/ with requirements.txt
  local dir="${WHEELS_DIR:-build/wheels}/$1" req
  rm -rf "$dir" && mkdir -p "$dir"
  req="$dir/requirements.txt"
  local export_args=(export --frozen --no-dev --no-emit-workspace --no-hashes --no-header
    --no-annotate --package "$package" --output-file "$dir/third-party.txt")
  if [ -n "$extra" ]; then export_args+=(--extra "$extra"); fi
  "${uv[@]}" "${export_args[@]}" >/dev/null
  # The export is universal, with environment markers, and pip download would evaluate them
  # for the host (a Mac would leave out what Linux needs): evaluate them for the images.
  "${pip_tool[@]}" python - "$dir/third-party.txt" "$arch" >"$dir/download.txt" <<'PY'
import sys
from packaging.requirements import Requirement

exported, machine = sys.argv[1:]
# CPython 3.11 on Debian bookworm (the python:3.11 images run a later 3.11.x).
environment = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": machine,
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}
for line in open(exported, encoding="utf-8"):
    line = line.strip()
    if line and not line.startswith("#"):
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            print(requirement)
PY
  log "$1: fetching $(grep -c '==' "$dir/download.txt") locked wheels for linux/$arch"
  "${pip_tool[@]}" pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 "${platform_flags[@]}" \
    --requirement "$dir/download.txt" --dest "$dir"
  cp "$dir/third-party.txt" "$req"
  local pkg
  for pkg in $local_packages; do
    "${uv[@]}" build --quiet --wheel --package "$pkg" --out-dir "$dir" >&2
    echo "$pkg" >>"$req"
  done
}

if $wheels_only; then
  for name in "$@"; do
    describe "$name"
    if [ -n "$package" ]; then build_wheelhouse "$name"; fi
  done
  exit 0
fi
if [ -n "${WHEELS_DIR:-}" ]; then
  echo "images: WHEELS_DIR is for --wheels-only (the Dockerfiles copy build/wheels/<image>/)" >&2
  exit 2
fi
command -v "$engine" >/dev/null || { echo "images: $engine not found (set CONTAINER_ENGINE=docker or install podman)" >&2; exit 1; }
host_arch="$(uname -m)"
case "$host_arch" in arm64) host_arch=aarch64 ;; amd64) host_arch=x86_64 ;; esac
if [ "$arch" != "$host_arch" ]; then
  echo "images: IMAGE_ARCH=$arch is not this machine's ($host_arch): only --wheels-only prepares another architecture's wheels" >&2
  exit 2
fi

base="${BASE_IMAGE:-}"
if [ -z "$base" ]; then
  base="$(bash hack/images/base.sh)"
fi
base_id="$("$engine" image inspect --format '{{.Id}}' "$base" 2>/dev/null || echo "$base")"

keep_builds=4  # per image: this build and the 3 newest others
built=""    # name=reference lines, for build/images.json
summary=""  # what is printed at the end
for name in "$@"; do
  describe "$name"
  ref="$repository:$(content_hash "$name")"
  if "$engine" image inspect "$ref" >/dev/null 2>&1; then
    log "$name: $ref is up to date"
  else
    if [ -n "$package" ]; then build_wheelhouse "$name"; fi
    log "$name: building $ref from $dockerfile on $base"
    start=$SECONDS
    # ${a[@]+...}: an empty array (docker) expands to nothing, not to an error, in bash 3.2.
    "$engine" build ${engine_flags[@]+"${engine_flags[@]}"} --build-arg "BASE_IMAGE=$base" \
      --file "$dockerfile" --tag "$ref" . >&2
    log "$name: built in $((SECONDS - start))s"
  fi
  "$engine" tag "$ref" "$repository:dev"
  built+="$name=$ref"$'\n'
  size="$("$engine" image inspect --format '{{.Size}}' "$ref")"
  summary+="$(printf '%-12s %s %s MB' "$name" "$ref" "$((size / 1000000))")"$'\n'
  # Older builds of this image (other content hashes) only take disk space; the newest few
  # stay, so checkouts of other branches on the same machine keep theirs.
  for old in $("$engine" images --sort created --format '{{.Repository}}:{{.Tag}}' "$repository" \
    | grep -F "$repository:" | grep -v -x -e "$ref" -e "$repository:dev" \
    | tail -n +"$keep_builds" || true); do
    "$engine" rmi "$old" >/dev/null 2>&1 || true
  done
done

# build/images.json: merged with what an earlier run recorded for the other images.
python3 - "$built" <<'PY'
import json, pathlib, sys
path = pathlib.Path("build/images.json")
images = json.loads(path.read_text()) if path.exists() else {}
images.update(line.split("=", 1) for line in sys.argv[1].splitlines() if line)
path.write_text(json.dumps(images, indent=2, sort_keys=True) + "\n")
PY

printf '%s' "$summary"
