"""RulesSelected and TargetSelected against a real API server, with the chart's RBAC.

A Prometheus object like kube-prometheus-stack's (release kube-prometheus-stack: ruleSelector
and serviceMonitorSelector `release: kube-prometheus-stack`, namespace selectors `{}`), the
Service and ServiceMonitor that charts/credit-api renders, the example ModelMonitor. No
prometheus-operator runs: the conditions are computed from the objects, which is all they read.
Then each link is broken the way users break it, and mended.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localkube.cluster import start_cluster, stop_cluster
from localkube.kube import Kube
from localkube.waiting import wait_for

from .operator_process import (
    CRD,
    OperatorProcess,
    apply,
    chart_settings,
    condition,
    get_json,
    operator_identity,
)
from .support import EXAMPLE, REPO, helm_template

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

KPS_NAME = "kube-prometheus-stack-prometheus"
RELEASE = {"matchLabels": {"release": "kube-prometheus-stack"}}
WATCHED = "mmpick-"  # the operator here watches namespaces mmpick-*


def kps_prometheus(**spec: Any) -> dict[str, Any]:
    """The Prometheus kube-prometheus-stack renders for release kube-prometheus-stack (the
    selection fields), with `spec` fields replaced."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": KPS_NAME},
        "spec": {
            "ruleSelector": RELEASE,
            "ruleNamespaceSelector": {},
            "serviceMonitorSelector": RELEASE,
            "serviceMonitorNamespaceSelector": {},
            **spec,
        },
    }


def credit_api_chart(helm: Path, namespace: str) -> list[dict[str, Any]]:
    """The Service and ServiceMonitor charts/credit-api renders (release credit-api)."""
    chart = REPO / "charts" / "credit-api"
    return helm_template(
        helm,
        chart,
        "credit-api",
        namespace,
        "templates/service.yaml",
        "templates/servicemonitor.yaml",
    )


class Operators:
    """The operator under test, restartable with other chart values."""

    def __init__(self, kubeconfig: Path, helm: Path, logs: Path) -> None:
        self.kubeconfig = kubeconfig
        self.helm = helm
        self.logs = logs
        self.started = 0
        self.running: OperatorProcess | None = None

    def start(self, *chart_values: str) -> OperatorProcess:
        self.stop()
        self.started += 1
        self.running = OperatorProcess(
            self.kubeconfig,
            f"{WATCHED}*",
            self.logs / f"operator-{self.started}.log",
            chart_settings(self.helm, *chart_values),
        )
        return self.running

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture(scope="module")
def operators(
    kube: Kube, helm_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operators]:
    found = get_json(kube, "prometheuses", "--all-namespaces")["items"]
    if found:
        # Its Prometheus would select our rules too: the messages would name it as well.
        pytest.skip(f"the cluster has Prometheus objects of its own ({len(found)})")
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD))
    identity = operator_identity(kube, helm_binary, f"mmpick-{uuid.uuid4().hex[:6]}")
    running = Operators(
        kube.service_account_kubeconfig(*identity),
        helm_binary,
        tmp_path_factory.mktemp("pickup-operator"),
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def namespaces(kube: Kube) -> Iterator[tuple[str, str]]:
    """(the monitoring namespace with the Prometheus, the app namespace), both watched."""
    base = f"{WATCHED}{uuid.uuid4().hex[:6]}"
    created = (f"{base}-mon", base)
    for name in created:
        kube.kubectl("create", "namespace", name)
    yield created
    # The Prometheus goes at once (the next test must not see it select its monitor); the rest
    # with the namespaces.
    kube.kubectl("delete", "prometheus", "--all", "-n", created[0], "--wait=true")
    for name in created:
        kube.kubectl("delete", "namespace", name, "--wait=false")


def _stack(kube: Kube, helm: Path, monitoring: str, app: str) -> None:
    apply(kube, monitoring, kps_prometheus())
    for document in credit_api_chart(helm, app):
        apply(kube, app, document)
    apply(kube, app, yaml.safe_load(EXAMPLE.read_text()))


def _wait_for_condition(
    kube: Kube, namespace: str, kind: str, status: str, reason: str | None = None
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        monitor = get_json(kube, "-n", namespace, "modelmonitor", "credit-score")
        found = condition(monitor, kind)
        wanted = found.get("status") == status and reason in (None, found.get("reason"))
        return found if wanted else None

    found: dict[str, Any] = wait_for(reached, timeout=30, what=f"{kind}={status} ({reason})")
    return found


def test_rules_selected_follows_the_rule_labels_from_the_chart_values(
    kube: Kube, helm_binary: Path, operators: Operators, namespaces: tuple[str, str]
) -> None:
    monitoring, app = namespaces
    _stack(kube, helm_binary, monitoring, app)
    rules = _wait_for_condition(kube, app, "RulesSelected", "True")
    assert rules["message"] == f"{monitoring}/{KPS_NAME} selects it"
    target = _wait_for_condition(kube, app, "TargetSelected", "True")
    assert target["message"] == (
        f"ServiceMonitor {app}/credit-api (selected by {monitoring}/{KPS_NAME}) "
        f"scrapes port http of {app}/credit-api"
    )
    printed = kube.kubectl("get", "-n", app, "mm").stdout
    assert re.search(r"NAME\s+READY\s+RULES\s+TARGET\s+DRIFT", printed), printed
    assert re.search(r"credit-score\s+True\s+True\s+True", printed), printed

    # The monitoring chart's rule labels changed: the rule carries them, no Prometheus takes it.
    operators.start("kubePrometheusStack.ruleLabels.release=kps-old")
    rules = _wait_for_condition(kube, app, "RulesSelected", "False", "RuleLabelsNotSelected")
    assert rules["message"] == (
        "no Prometheus selects it: label release is kps-old, not kube-prometheus-stack "
        f"(ruleSelector of {monitoring}/{KPS_NAME})"
    )
    rule = get_json(kube, "-n", app, "prometheusrule", "credit-score-rules")
    assert rule["metadata"]["labels"]["release"] == "kps-old"
    monitor = get_json(kube, "-n", app, "modelmonitor", "credit-score")
    assert condition(monitor, "Ready")["status"] == "True"  # not an error of the operator
    assert condition(monitor, "Degraded")["status"] == "False"
    printed = kube.kubectl("get", "-n", app, "mm").stdout
    assert re.search(r"credit-score\s+True\s+False\s+True", printed), printed

    operators.start()  # the chart's defaults again
    _wait_for_condition(kube, app, "RulesSelected", "True", "Selected")

    kube.kubectl("delete", "-n", monitoring, "prometheus", KPS_NAME)
    rules = _wait_for_condition(kube, app, "RulesSelected", "Unknown", "NoPrometheus")
    assert rules["message"] == "no Prometheus object in the cluster"
    _wait_for_condition(kube, app, "TargetSelected", "Unknown", "NoPrometheus")


def test_target_selected_says_which_link_is_broken(
    kube: Kube, helm_binary: Path, operators: Operators, namespaces: tuple[str, str]
) -> None:
    monitoring, app = namespaces
    _stack(kube, helm_binary, monitoring, app)
    _wait_for_condition(kube, app, "TargetSelected", "True", "Selected")

    def patch_service_monitor(patch: Any, kind: str = "json") -> None:
        kube.kubectl(
            "patch", "-n", app, "servicemonitor", "credit-api", f"--type={kind}",
            "-p", json.dumps(patch),
        )  # fmt: skip

    patch_service_monitor([{"op": "remove", "path": "/metadata/labels/release"}])
    target = _wait_for_condition(kube, app, "TargetSelected", "False", "ServiceMonitorNotSelected")
    assert target["message"] == (
        f"no Prometheus selects the ServiceMonitor of Service {app}/credit-api: "
        f"{app}/credit-api: label release=kube-prometheus-stack missing "
        f"(serviceMonitorSelector of {monitoring}/{KPS_NAME})"
    )

    patch_service_monitor({"metadata": {"labels": {"release": "kube-prometheus-stack"}}}, "merge")
    patch_service_monitor({"spec": {"endpoints": [{"port": "metrics"}]}}, "merge")
    target = _wait_for_condition(kube, app, "TargetSelected", "False", "PortMismatch")
    assert target["message"] == (
        f"no ServiceMonitor matching Service {app}/credit-api scrapes its port http "
        f"({app}/credit-api scrapes port metrics)"
    )

    kube.kubectl("delete", "-n", app, "servicemonitor", "credit-api")
    target = _wait_for_condition(kube, app, "TargetSelected", "False", "NoServiceMonitor")
    assert target["message"] == f"no ServiceMonitor matches Service {app}/credit-api"

    for document in credit_api_chart(helm_binary, app):
        apply(kube, app, document)
    _wait_for_condition(kube, app, "TargetSelected", "True", "Selected")
    # The rules were never in question.
    monitor = get_json(kube, "-n", app, "modelmonitor", "credit-score")
    assert condition(monitor, "RulesSelected")["status"] == "True"


def test_a_namespace_labelled_later_is_selected(
    kube: Kube, helm_binary: Path, operators: Operators, namespaces: tuple[str, str]
) -> None:
    monitoring, app = namespaces
    selector = {"matchLabels": {"monitoring": "enabled"}}
    apply(kube, monitoring, kps_prometheus(ruleNamespaceSelector=selector))
    for document in credit_api_chart(helm_binary, app):
        apply(kube, app, document)
    apply(kube, app, yaml.safe_load(EXAMPLE.read_text()))
    rules = _wait_for_condition(kube, app, "RulesSelected", "False", "NotSelected")
    assert rules["message"] == (
        f"no Prometheus selects it: namespace {app} not selected by {monitoring}/{KPS_NAME} "
        "(ruleNamespaceSelector: label monitoring=enabled missing)"
    )
    before = get_json(kube, "-n", app, "modelmonitor", "credit-score")
    kube.kubectl("label", "namespace", app, "monitoring=enabled")
    _wait_for_condition(kube, app, "RulesSelected", "True", "Selected")
    # TargetSelected did not change: not rewritten, its transition time stayed.
    after = get_json(kube, "-n", app, "modelmonitor", "credit-score")
    assert condition(after, "TargetSelected") == condition(before, "TargetSelected")


@pytest.fixture
def bare_cluster(localkube_binaries: dict[str, Path], tmp_path: Path) -> Iterator[Kube]:
    """A control plane of its own, without the prometheus-operator CRDs."""
    state = start_cluster(tmp_path / "cluster", die_with_parent=True, report=lambda _: None)
    cluster = Kube(state.kubeconfig, localkube_binaries["kubectl"], local=True)
    try:
        yield cluster
    finally:
        cluster.close()
        stop_cluster(state, keep_data=False)


def test_without_the_prometheus_crds_the_conditions_are_unknown_not_errors(
    bare_cluster: Kube, helm_binary: Path, tmp_path: Path
) -> None:
    kube = bare_cluster
    kube.kubectl("apply", "--server-side", "-f", str(CRD))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD))
    identity = operator_identity(kube, helm_binary, "mmbare")
    app = f"{WATCHED}bare"
    kube.kubectl("create", "namespace", app)
    log = tmp_path / "operator.log"
    running = OperatorProcess(
        kube.service_account_kubeconfig(*identity), f"{WATCHED}*", log, chart_settings(helm_binary)
    )
    try:
        apply(kube, app, yaml.safe_load(EXAMPLE.read_text()))
        for kind in ("RulesSelected", "TargetSelected"):
            found = _wait_for_condition(kube, app, kind, "Unknown", "NoPrometheusCRD")
            assert found["message"] == "the prometheuses.monitoring.coreos.com CRD is not installed"
        # The PrometheusRule cannot be applied (that is Degraded, as before); kopf warns about
        # the resources it cannot watch once, it neither crashes nor repeats itself.
        monitor = get_json(kube, "-n", app, "modelmonitor", "credit-score")
        assert condition(monitor, "Degraded")["reason"] == "MissingAPI"
        wait_for(
            lambda: running.metric('modelmonitor_reconcile_total{result="error"}') >= 3 or None,
            timeout=60,
            what="a few retries and resyncs",
        )
        assert running.process.poll() is None
        warnings = log.read_text().count("Unresolved resources cannot be served")
        assert 1 <= warnings <= 2, log.read_text()

        # prometheus-operator's CRDs installed later, then kube-prometheus-stack's Prometheus:
        # kopf starts watching them and the monitor is re-evaluated without a restart.
        kube.install_prometheus_operator_crds()
        kube.kubectl("create", "namespace", f"{WATCHED}bare-mon")
        apply(kube, f"{WATCHED}bare-mon", kps_prometheus())
        _wait_for_condition(kube, app, "RulesSelected", "True", "Selected")
        _wait_for_condition(kube, app, "TargetSelected", "False", "ServiceNotFound")
    finally:
        running.stop()
