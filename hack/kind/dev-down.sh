#!/usr/bin/env bash
# `make dev-down`: stops Tilt's resources and deletes the kind cluster made by `make dev`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cluster="${KIND_CLUSTER_NAME:-credit-monitoring}"

if ! command -v kind >/dev/null 2>&1; then
  echo "kind is not installed: nothing to delete" >&2
  exit 0
fi
if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "no kind cluster named $cluster"
  exit 0
fi
if command -v tilt >/dev/null 2>&1; then
  # Best effort: the cluster goes anyway, with everything Tilt deployed in it.
  (cd "$repo" && tilt down --context "kind-$cluster") || true
fi
kind delete cluster --name "$cluster"
