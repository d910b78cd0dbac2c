"""Both charts lint cleanly and render only objects the API server and prometheus-operator accept.

Every chart is checked with its defaults and with each ci/*-values.yaml. Kubernetes kinds are
validated offline against the Kubernetes OpenAPI schemas of the version the control plane runs
(kubernetes-validate, strict: unknown fields fail); ServiceMonitor and PrometheusRule against the
openAPIV3Schema of the pinned prometheus-operator CRDs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from localservers.pytest_plugin import unavailable
from modelmonitor.check import crds_by_kind

from .charttools import (
    CHART_NAMES,
    CHARTS,
    REPO,
    Helm,
    chart_variants,
    kubernetes_version,
    variant_id,
)

# With the values the Tiltfile deploys on kind too (only the security linter leaves them out:
# they relax the root filesystem for live update on purpose).
VARIANTS = chart_variants() + [
    (chart, REPO / "hack" / "kind" / f"dev-{chart}-values.yaml") for chart in CHART_NAMES
]


def kubernetes_minor_version() -> str:
    major, minor, _ = kubernetes_version().lstrip("v").split(".")
    return f"{major}.{minor}"


@functools.cache
def prometheus_operator_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, from the pinned prometheus-operator CRDs."""
    from localkube.crds import prometheus_operator_crd_paths  # noqa: PLC0415

    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in crds_by_kind(prometheus_operator_crd_paths()).values():
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            schemas[(f"{group}/{version['name']}", kind)] = strict_schema(schema)
    return schemas


def strict_schema(schema: Any) -> Any:
    """The schema with unknown fields rejected, as the API server's strict field validation does
    (it would otherwise prune them silently, hiding a typo in the chart)."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: strict_schema(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def validate(obj: dict[str, Any]) -> None:
    if obj["apiVersion"].startswith("monitoring.coreos.com/"):
        try:
            schemas = prometheus_operator_schemas()
        except Exception as error:  # no Go toolchain or proxy: no schemas
            unavailable(f"the prometheus-operator CRDs could not be fetched: {error}")
        schema = schemas[(obj["apiVersion"], obj["kind"])]
        # Not jsonschema.validate: it first checks the schema's regexes with Python's `re`,
        # which rejects Go syntax such as a mid-pattern "(?i)" in fields we never set.
        jsonschema.Draft7Validator(schema).validate(obj)
    else:
        kubernetes_validate.validate(obj, kubernetes_minor_version(), strict=True)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_chart_lints_strictly(helm: Helm, variant: tuple[str, Path | None]) -> None:
    chart, values_file = variant
    completed = helm.run(
        "lint", "--strict", str(CHARTS / chart), *helm.values_args(values_file, None)
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "0 chart(s) failed" in completed.stdout


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_every_rendered_object_matches_its_schema(
    helm: Helm, variant: tuple[str, Path | None]
) -> None:
    chart, values_file = variant
    objects = helm.template(chart, values_file=values_file)
    assert objects, "the chart rendered nothing"
    for obj in objects:
        try:
            validate(obj)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            pytest.fail(f"{name} does not match its schema: {error}")


def test_prometheus_operator_schema_check_catches_a_bad_field() -> None:
    """The check above is real: a ServiceMonitor endpoint with a wrong type is rejected."""
    bad = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "interval": 30}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_prometheus_operator_schema_check_catches_an_unknown_field() -> None:
    bad = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "intervall": "30s"}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_kubernetes_schema_check_catches_an_unknown_field() -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "nmae": "http"}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad)
