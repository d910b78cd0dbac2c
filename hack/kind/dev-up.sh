#!/usr/bin/env bash
# `make dev`: creates the kind cluster of manifests/kind/cluster.yaml if it is absent, then runs
# `tilt up` against it (Tiltfile: kube-prometheus-stack, both charts, the example monitor,
# image builds with live update, port-forwards). Needs docker, kind, kubectl, helm, tilt and uv.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cluster="${KIND_CLUSTER_NAME:-credit-monitoring}"

missing=()
for tool in docker kind kubectl helm tilt; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# The image wheelhouses are prepared on the host from uv.lock (hack/images/build.sh).
if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  missing+=("uv")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "make dev needs: ${missing[*]} (see docs/kind.md for how to install them)" >&2
  exit 1
fi

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "kind cluster $cluster exists; reusing it"
else
  kind create cluster --name "$cluster" --config "$repo/manifests/kind/cluster.yaml" --wait 120s
fi
# Tilt refuses every other context (Tiltfile: allow_k8s_contexts).
kubectl config use-context "kind-$cluster" >/dev/null

cd "$repo"
exec tilt up --context "kind-$cluster" "$@"
