#!/usr/bin/env bash
# The Tiltfile's image build (custom_build), the same on kind and on the local node:
#   1. hack/images/build.sh <name>: the image users get, tagged by a hash of everything it is
#      built from, so an unchanged image (from `make images`, the tests, an earlier run) is
#      reused, not built again;
#   2. with python packages after <name> (the live-updated ones): that image plus a layer that
#      gives them to the image's user (live-update.Containerfile), named <repository>-live-update
#      with the same hash tag, built once;
#   3. tagged $EXPECTED_REF (set by Tilt: the name it deploys). On the local node
#      (LOCAL_NODE=1) in the node's containerd, under the name the kubelet looks for: imported
#      from podman once per image, tagged again on later builds (no registry, no Docker). On
#      kind, Tilt loads it from Docker into the node itself.
# Usage: EXPECTED_REF=credit-api:tilt-build-1 hack/tilt/image.sh credit-api credit_api ...
#   CONTAINER_ENGINE (podman; docker for kind) and BASE_IMAGE are build.sh's.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
name="${1:?usage: hack/tilt/image.sh <credit-api|operator|drift|postgres> [python package...]}"
shift
: "${EXPECTED_REF:?EXPECTED_REF (the image Tilt deploys) is not set: this runs from the Tiltfile}"
engine="${CONTAINER_ENGINE:-podman}"
local_node="${LOCAL_NODE:-0}"
# The containerd socket of the machine's one local node (localkube/node/paths.py).
node_socket=/run/localkube/containerd.sock

log() { echo "tilt image $name: $*" >&2; }
node_ctr() { ctr --address "$node_socket" --namespace k8s.io "$@"; }

bash hack/images/build.sh "$name"
image="$(python3 -c 'import json, sys; print(json.load(open("build/images.json"))[sys.argv[1]])' "$name")"

source="$image"
if [ $# -gt 0 ]; then
  repository="${image%:*}-live-update"
  source="$repository:${image##*:}"
  if "$engine" image inspect "$source" >/dev/null 2>&1; then
    log "$source is up to date"
  else
    flags=()
    if [ "$engine" = podman ]; then
      # As build.sh builds: runc, explicit limits, no intermediate images.
      flags=(--runtime "${PODMAN_RUNTIME:-runc}" --ulimit nofile=1024:1024
        --ulimit nproc=1024:1024 --layers=false)
    fi
    log "building $source: $image with $* writable by its user, for live update"
    "$engine" build ${flags[@]+"${flags[@]}"} --quiet --build-arg "IMAGE=$image" \
      --build-arg "PACKAGES=$*" --file hack/tilt/live-update.Containerfile --tag "$source" \
      hack/tilt >/dev/null
    # The layers of older builds only take disk space; the newest few stay, as build.sh keeps
    # its images', so checkouts of other branches on the same machine keep theirs.
    for old in $("$engine" images --sort created --format '{{.Repository}}:{{.Tag}}' "$repository" \
      | grep -F "$repository:" | grep -v -x -e "$source" | tail -n +4 || true); do
      "$engine" rmi "$old" >/dev/null 2>&1 || true
    done
  fi
fi

if [ "$local_node" != 1 ]; then
  "$engine" tag "$source" "$EXPECTED_REF"
  log "$source as $EXPECTED_REF"
  exit 0
fi

[ -S "$node_socket" ] || { log "no local node runs here ($node_socket is missing)"; exit 1; }
if [ -n "$(node_ctr images list --quiet "name==$source")" ]; then
  log "the local node has $source"
else
  archive="$(mktemp --tmpdir "tilt-image-XXXXXX.tar")"
  trap 'rm -f "$archive"' EXIT
  "$engine" save --quiet --format docker-archive --output "$archive" "$source"
  node_ctr images import "$archive" >/dev/null
  log "imported $source into the local node's containerd"
fi
# The kubelet resolves a familiar name (credit-api:tag) as Docker does, docker.io/library/...
target="$EXPECTED_REF"
first="${target%%/*}"
if [ "$first" = "$target" ]; then
  target="docker.io/library/$target"
elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
  target="docker.io/$target"
fi
node_ctr images tag --force "$source" "$target" >/dev/null
log "$source as $target in the local node"
