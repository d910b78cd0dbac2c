#!/usr/bin/env bash
# The Tiltfile's kube-prometheus-stack resource: `helm upgrade --install` of the chart with the
# values every install here uses (hack/kps/values.yaml), done once its operator and
# kube-state-metrics are ready (helm --wait) and the Prometheus and Alertmanager the operator
# makes after helm returns are available, so the port-forwards that wait for this resource find
# pods to forward to. An existing release of that name (the tests', an earlier run's) is
# upgraded in place: one prometheus-operator per cluster.
# Usage: hack/tilt/kube-prometheus-stack.sh CONTEXT RELEASE NAMESPACE CHART VERSION REPOSITORY GRAFANA
#   CHART: a .tgz or a folder, or the chart's name in REPOSITORY (a URL; "" for a path)
#   GRAFANA: true or false (hack/kps/values.yaml turns it off)
set -euo pipefail

if [ $# -ne 7 ]; then
  echo "usage: $0 CONTEXT RELEASE NAMESPACE CHART VERSION REPOSITORY GRAFANA" >&2
  exit 2
fi
context=$1 release=$2 namespace=$3 chart=$4 version=$5 repository=$6 grafana=$7
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

args=(upgrade --install "$release" "$chart" --kube-context "$context" --namespace "$namespace"
  --create-namespace --values hack/kps/values.yaml --wait --timeout 10m)
if [ -n "$repository" ]; then
  args+=(--repo "$repository" --version "$version")
fi
if [ "$grafana" = true ]; then
  # Dashboards from every namespace: the operator puts them beside each ModelMonitor.
  args+=(--set grafana.enabled=true --set grafana.sidecar.dashboards.searchNamespace=ALL)
  echo "kube-prometheus-stack $version: with Grafana"
else
  echo "kube-prometheus-stack $version: Grafana is off (no grafana port-forward)"
fi
helm "${args[@]}"
kubectl --context "$context" --namespace "$namespace" wait --for=condition=Available \
  --timeout=5m prometheus,alertmanager --selector "release=$release"
