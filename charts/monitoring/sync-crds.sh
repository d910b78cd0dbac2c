#!/usr/bin/env bash
# Copies the CRDs from manifests/crds/ (their single source) into the chart's files/crds/, from
# which templates/crd.yaml renders them. tests/charts checks that the two stay identical.
set -euo pipefail
chart="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$chart/../../manifests/crds"
rm -f "$chart"/files/crds/*.yaml
cp "$source_dir"/*.yaml "$chart/files/crds/"
ls "$chart/files/crds"
