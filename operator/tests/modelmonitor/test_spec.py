"""The spec model: defaults, and every mistake reported on the field that holds it."""

from __future__ import annotations

from typing import Any

import pytest

from modelmonitor.check import validate_with_crd
from modelmonitor.manifests import load_crd
from modelmonitor.spec import InvalidSpecError, parse_monitor

from .support import EXAMPLE, INVALID_CASES, invalid_manifest, load_manifest


def test_example_parses_with_production_defaults() -> None:
    monitor = parse_monitor(load_manifest(EXAMPLE))
    assert monitor.namespace == "default"
    assert monitor.spec.target.port == "http"
    assert monitor.spec.store.secret_ref.key == "reader-dsn"
    assert monitor.spec.slo.window == "30d"
    assert monitor.spec.drift.reports is None
    assert monitor.spec.alerts.durations.api_down == "5m"


def test_minimal_spec_gets_every_default() -> None:
    monitor = parse_monitor(
        {
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {
                "model": {"name": "credit-score"},
                "target": {"service": "credit-api"},
                "store": {"secretRef": {"name": "db"}},
            },
        }
    )
    assert monitor.spec.drift.schedule == "*/15 * * * *"
    assert monitor.spec.slo.latency.threshold_seconds == 0.3
    assert monitor.spec.dashboard.enabled is True


def test_parsed_spec_is_frozen() -> None:
    monitor = parse_monitor(load_manifest(EXAMPLE))
    with pytest.raises(ValueError, match="frozen"):
        monitor.spec.drift.window = "2h"  # type: ignore[misc]


def test_each_mistake_names_its_field(invalid_case: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse_monitor(invalid_manifest(invalid_case))
    assert raised.value.field == invalid_case["field"], raised.value.message


def test_schema_rejects_exactly_the_mistakes_marked_schema(invalid_case: dict[str, Any]) -> None:
    problems = validate_with_crd(invalid_manifest(invalid_case), load_crd())
    if invalid_case["schema"]:
        last = invalid_case["field"].rsplit(".", 1)[-1].split("[")[0]
        assert any(last in problem for problem in problems), problems
    else:
        assert problems == []


def test_unknown_field_is_named() -> None:
    manifest = load_manifest(EXAMPLE)
    manifest["spec"]["drift"]["shedule"] = "*/5 * * * *"
    with pytest.raises(InvalidSpecError) as raised:
        parse_monitor(manifest)
    assert raised.value.field == "spec.drift.shedule"


def test_at_least_fifteen_mistakes_are_covered() -> None:
    assert len({case["field"] for case in INVALID_CASES}) >= 15
