"""prometheus-operator's selection rules and the explanations of RulesSelected/TargetSelected.

The cases are a table in cases/selection.yaml: nil vs empty selectors, the four operators,
namespace selectors, port names, and the messages users read.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from modelmonitor.selection import (
    Inventory,
    Verdict,
    prometheus_from,
    rules_verdict,
    selector_from,
    selects,
    service_from,
    service_monitor_from,
    target_verdict,
)

from .support import CASES

TABLE: dict[str, list[dict[str, Any]]] = yaml.safe_load((CASES / "selection.yaml").read_text())
RELEASE = {"matchLabels": {"release": "kube-prometheus-stack"}}
# kube-prometheus-stack's Prometheus with its chart defaults, release kube-prometheus-stack.
KPS_PROMETHEUS = {
    "metadata": {"name": "kube-prometheus-stack-prometheus", "namespace": "monitoring"},
    "spec": {
        "ruleSelector": RELEASE,
        "ruleNamespaceSelector": {},
        "serviceMonitorSelector": RELEASE,
        "serviceMonitorNamespaceSelector": {},
    },
}
SERVICE_LABELS = {
    "app.kubernetes.io/name": "credit-api",
    "app.kubernetes.io/instance": "credit-api",
}
# What charts/credit-api renders (its Service and ServiceMonitor), release credit-api.
CHART_SERVICE = {
    "metadata": {"name": "credit-api", "namespace": "credit", "labels": SERVICE_LABELS},
    "spec": {"ports": [{"name": "http", "port": 8000, "targetPort": "http"}]},
}
CHART_SERVICE_MONITOR = {
    "metadata": {
        "name": "credit-api",
        "namespace": "credit",
        "labels": {"release": "kube-prometheus-stack"},
    },
    "spec": {
        "selector": {"matchLabels": SERVICE_LABELS},
        "namespaceSelector": {"matchNames": ["credit"]},
        "endpoints": [{"port": "http", "path": "/metrics"}],
    },
}


def _changed(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`base` with metadata (name, namespace, labels) and spec fields replaced by `change`."""
    obj = copy.deepcopy(base)
    for key in ("name", "namespace", "labels"):
        if key in change:
            obj["metadata"][key] = change[key]
    obj["spec"].update(change.get("spec") or {})
    return obj


def _verdict(expected: list[Any]) -> Verdict:
    status, reason, message = expected
    return Verdict(None if status == "Unknown" else status, reason, message)


def _ids(section: str) -> list[str]:
    return [case["case"] for case in TABLE[section]]


@pytest.mark.parametrize("case", TABLE["selectors"], ids=_ids("selectors"))
def test_label_selector_semantics(case: dict[str, Any]) -> None:
    selector = selector_from(case["selector"])
    if case["why"] == "nothing":
        assert selector is None
        assert not selects(selector, case["labels"])
        return
    assert selector is not None
    assert selector.mismatches(case["labels"]) == case["why"]
    assert selects(selector, case["labels"]) is (case["why"] == [])


@pytest.mark.parametrize("case", TABLE["rules"], ids=_ids("rules"))
def test_rules_verdict(case: dict[str, Any]) -> None:
    inventory = Inventory(
        prometheuses=tuple(
            prometheus_from(_changed(KPS_PROMETHEUS, p)) for p in case["prometheuses"]
        ),
        namespace_labels=case.get("namespaceLabels", {}),
    )
    assert rules_verdict(inventory, "credit", case["ruleLabels"]) == _verdict(case["expect"])


@pytest.mark.parametrize("case", TABLE["targets"], ids=_ids("targets"))
def test_target_verdict(case: dict[str, Any]) -> None:
    inventory = Inventory(
        prometheuses=tuple(
            prometheus_from(_changed(KPS_PROMETHEUS, p)) for p in case["prometheuses"]
        ),
        service_monitors=tuple(
            service_monitor_from(_changed(CHART_SERVICE_MONITOR, m))
            for m in case["serviceMonitors"]
        ),
    )
    change = case.get("service", {})
    service = None if change is None else service_from(_changed(CHART_SERVICE, {"spec": change}))
    verdict = target_verdict(inventory, ("credit", "credit-api"), "http", service)
    assert verdict == _verdict(case["expect"])


def test_absent_and_empty_selectors_stay_apart_when_read_from_the_api() -> None:
    read = prometheus_from(
        {
            "metadata": {"name": "p", "namespace": "monitoring"},
            "spec": {"ruleNamespaceSelector": {}, "serviceMonitorSelector": None},
        }
    )
    assert read.rule_selector is None
    assert read.rule_namespace_selector is not None
    assert read.rule_namespace_selector.mismatches({}) == []
    assert read.service_monitor_selector is None
    assert read.service_monitor_namespace_selector is None


def test_a_service_port_without_target_port_targets_its_own_number() -> None:
    service = service_from({"metadata": {}, "spec": {"ports": [{"name": "http", "port": 8000}]}})
    assert service.ports[0].target_port == 8000
