"""The CRD (manifests/crds/) and the spec model agree; the CRD is a valid Kubernetes object."""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from modelmonitor.check import crd_schema, validate_kubernetes
from modelmonitor.manifests import load_crd
from modelmonitor.spec import DRIFT_METHODS, LATENCY_BUCKETS, MonitorSpec


def _walk(schema: dict[str, Any], path: str = "spec") -> dict[str, dict[str, Any]]:
    found = {path: schema}
    for name, child in schema.get("properties", {}).items():
        found.update(_walk(child, f"{path}.{name}"))
    if "items" in schema:
        found.update(_walk(schema["items"], f"{path}[]"))
    return found


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside an annotation (`X`, `X | None`, `tuple[X, ...]`), and whether a list."""
    if get_origin(annotation) is tuple:
        return _nested_model(get_args(annotation)[0])[0], True
    if get_origin(annotation) in (Union, UnionType):
        for argument in get_args(annotation):
            if argument is not type(None):
                return _nested_model(argument)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def _model_fields(model: type[BaseModel], path: str = "spec") -> dict[str, Any]:
    """Dotted alias path -> the field's default (or ... when required)."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = f"{path}.{field.alias or name}"
        found[key] = ... if field.is_required() else field.get_default(call_default_factory=True)
        nested, is_list = _nested_model(field.annotation)
        if nested is not None:
            found.update(_model_fields(nested, key + ("[]" if is_list else "")))
    return found


def test_every_spec_field_is_in_the_crd_with_the_same_default() -> None:
    schema = _walk(crd_schema(load_crd())["properties"]["spec"])
    for path, default in _model_fields(MonitorSpec).items():
        assert path in schema, f"{path} missing from the CRD"
        assert schema[path].get("description"), f"{path} has no description"
        if default is ... or isinstance(default, BaseModel) or default is None:
            continue
        if isinstance(default, (tuple, dict)) and not default:
            continue
        if path.endswith("resources.requests") or path.endswith("resources.limits"):
            continue  # defaulted by the renderer, documented in the description
        assert schema[path].get("default") == default, path


def test_every_crd_field_is_in_the_spec_model() -> None:
    model_paths = set(_model_fields(MonitorSpec))
    for path in _walk(crd_schema(load_crd())["properties"]["spec"]):
        if path == "spec" or path.endswith("[]"):
            continue
        assert path in model_paths, f"{path} is in the CRD but not in spec.py"


def test_enums_match_the_model() -> None:
    spec = crd_schema(load_crd())["properties"]["spec"]["properties"]
    assert tuple(spec["drift"]["properties"]["method"]["enum"]) == DRIFT_METHODS
    latency = spec["slo"]["properties"]["latency"]["properties"]["thresholdSeconds"]
    assert [float(value) for value in latency["enum"]] == list(LATENCY_BUCKETS)


def test_status_conditions_are_a_map_keyed_by_type() -> None:
    status = crd_schema(load_crd())["properties"]["status"]["properties"]
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    drift = status["drift"]["properties"]
    for field in (
        "result",
        "lastRunTime",
        "lastSuccessfulRunTime",
        "rows",
        "driftShare",
        "features",
    ):
        assert field in drift


def test_crd_is_a_valid_custom_resource_definition() -> None:
    assert validate_kubernetes(load_crd()) == []


def test_drift_methods_are_the_drift_jobs() -> None:
    """The CRD enum and `drift-job --method` accept the same stat tests (plus auto)."""
    from drift_job.stattests import METHOD_IDS  # noqa: PLC0415

    assert set(DRIFT_METHODS) == {"auto", *METHOD_IDS}
