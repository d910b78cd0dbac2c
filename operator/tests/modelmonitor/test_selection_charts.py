"""The verdicts on what the real charts render: kube-prometheus-stack's Prometheus, our
monitoring chart's rule labels (through the operator's renderer), credit-api's Service and
ServiceMonitor. The chart values that decide the pick-up, and what each combination gives.

kube-prometheus-stack comes from `$KUBE_PROMETHEUS_STACK_CHART` (a .tgz or folder, e.g. from
`helm pull prometheus-community/kube-prometheus-stack`), else the vendored copy in
`shared/vendor/charts/` beside the repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from modelmonitor.render import render_children
from modelmonitor.selection import (
    Inventory,
    Verdict,
    prometheus_from,
    rules_verdict,
    service_from,
    service_monitor_from,
    target_verdict,
)
from modelmonitor.settings import Settings

from .operator_process import chart_settings
from .support import EXAMPLE, REPO, helm_template, monitor_from

CHART_ENV = "KUBE_PROMETHEUS_STACK_CHART"
APP = "credit"


@pytest.fixture(scope="module")
def kps_chart() -> Path:
    configured = os.environ.get(CHART_ENV)
    if configured:
        return Path(configured)
    for folder in REPO.parents:
        found = sorted((folder / "shared" / "vendor" / "charts").glob("kube-prometheus-stack-*"))
        if found:
            return found[-1]
    message = f"kube-prometheus-stack is not beside the repository: set {CHART_ENV}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _kps_prometheus(helm: Path, chart: Path, release: str, values: tuple[str, ...]) -> Any:
    (prometheus,) = helm_template(
        helm,
        chart,
        release,
        "monitoring",
        "templates/prometheus/prometheus.yaml",
        values=("grafana.enabled=false", *values),
    )
    return prometheus_from(prometheus)


def _rule_labels(helm: Path, values: tuple[str, ...]) -> dict[str, str]:
    """The labels the operator gives a monitor's PrometheusRule under these chart values."""
    labels = json.loads(chart_settings(helm, *values)["MODELMONITOR_RULE_LABELS"])
    children = render_children(monitor_from(EXAMPLE, APP), Settings(rule_labels=labels))
    (rule,) = [child for child in children if child["kind"] == "PrometheusRule"]
    return dict(rule["metadata"]["labels"])


def _credit_api(helm: Path, values: tuple[str, ...]) -> tuple[Any, Any]:
    service, monitor = helm_template(
        helm,
        REPO / "charts" / "credit-api",
        "credit-api",
        APP,
        "templates/service.yaml",
        "templates/servicemonitor.yaml",
        values=values,
    )
    return service_from(service), service_monitor_from(monitor)


# (case, kube-prometheus-stack release and values, monitoring chart values, credit-api values,
#  RulesSelected and TargetSelected reasons)
CASES = [
    (
        "every chart with its defaults, kube-prometheus-stack as release kube-prometheus-stack",
        ("kube-prometheus-stack", ()),
        (),
        (),
        ("Selected", "Selected"),
    ),
    (
        "kube-prometheus-stack under another release name: our labels must follow it",
        ("prometheus", ()),
        (),
        (),
        ("RuleLabelsNotSelected", "ServiceMonitorNotSelected"),
    ),
    (
        "our charts given that release name",
        ("prometheus", ()),
        ("kubePrometheusStack.ruleLabels.release=prometheus",),
        ("serviceMonitor.labels.release=prometheus",),
        ("Selected", "Selected"),
    ),
    (
        "kube-prometheus-stack told to select everything",
        (
            "prometheus",
            (
                "prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false",
                "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false",
            ),
        ),
        (),
        (),
        ("Selected", "Selected"),
    ),
    (
        "kube-prometheus-stack limited to its own namespace's rules",
        ("kube-prometheus-stack", ("prometheus.prometheusSpec.ruleNamespaceSelector.matchLabels.monitoring=enabled",)),  # noqa: E501
        (),
        (),
        ("NotSelected", "Selected"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kps", "monitoring_values", "credit_api_values", "reasons"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_what_the_charts_render_is_picked_up_or_explained(
    helm_binary: Path,
    kps_chart: Path,
    kps: tuple[str, tuple[str, ...]],
    monitoring_values: tuple[str, ...],
    credit_api_values: tuple[str, ...],
    reasons: tuple[str, str],
) -> None:
    prometheus = _kps_prometheus(helm_binary, kps_chart, *kps)
    service, service_monitor = _credit_api(helm_binary, credit_api_values)
    inventory = Inventory(prometheuses=(prometheus,), service_monitors=(service_monitor,))
    rules = rules_verdict(inventory, APP, _rule_labels(helm_binary, monitoring_values))
    target = target_verdict(inventory, (APP, "credit-api"), "http", service)
    assert (rules.reason, target.reason) == reasons, (rules.message, target.message)


def test_the_messages_for_kube_prometheus_stack_under_another_release(
    helm_binary: Path, kps_chart: Path
) -> None:
    prometheus = _kps_prometheus(helm_binary, kps_chart, "prometheus", ())
    service, service_monitor = _credit_api(helm_binary, ())
    inventory = Inventory(prometheuses=(prometheus,), service_monitors=(service_monitor,))
    name = f"monitoring/{prometheus.name}"
    assert rules_verdict(inventory, APP, _rule_labels(helm_binary, ())) == Verdict(
        False,
        "RuleLabelsNotSelected",
        "no Prometheus selects it: label release is kube-prometheus-stack, not prometheus "
        f"(ruleSelector of {name})",
    )
    assert target_verdict(inventory, (APP, "credit-api"), "http", service).message == (
        "no Prometheus selects the ServiceMonitor of Service credit/credit-api: "
        "credit/credit-api: label release is kube-prometheus-stack, not prometheus "
        f"(serviceMonitorSelector of {name})"
    )
