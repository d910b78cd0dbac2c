"""End to end: from a prediction to an alert in Alertmanager, every part real.

The same tests run on two paths, chosen by the `kube` fixture's cluster (demo.stacks):

- on a cluster that runs pods (by default the session's local node; or KUBECONFIG at a kind
  cluster, docs/kind.md) both charts run with their exact specs: the API (two replicas) with
  the chart's PostgreSQL, the operator, and the drift Jobs the CronJob controller makes, from
  the images built here and imported into the node (loaded into kind beforehand).
  kube-prometheus-stack scrapes what our ServiceMonitors select and evaluates what our
  PrometheusRules say; its Alertmanager sends to a webhook receiver that is this test. The
  production image has no fault switch: there the error burst is the store going away;
- on a control plane without nodes (`make demo`'s fast path) the API, the operator and the drift
  job run as processes, with a Prometheus and an Alertmanager on loopback.

The tests run in order and share the stack: each is one step of the scenario (normal traffic,
drifted traffic, outcomes reported for the predictions, a degraded phase where they contradict
the model, an unfair phase where one group is refused, an error burst, a store restart, an API
pod deleted, the drift job's failures, the operator killed, the monitor and the charts
removed). The outcomes come before the error burst, whose feedback would count among the
labelled predictions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo import cluster
from demo.imagebuild import build_images, local_node_images
from demo.podstack import PodStack, images_from_env
from demo.stack import APP_NAMESPACE, MONITOR, MONITORING_NAMESPACE, TEST_SIZED_SPEC
from demo.stacks import Stack, stack_for
from demo.traffic import (
    YOUNG_BELOW,
    contradicting_outcomes,
    labelled_traffic,
    normal_traffic,
    refused_group_traffic,
)
from localkube.kube import Kube
from localservers.postgres import PostgresServer
from modelmonitor.naming import dashboard_name
from modelmonitor.reportsui import project_id, project_name

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.cluster,
    pytest.mark.node,
    pytest.mark.prometheus,
    pytest.mark.images,
    pytest.mark.slow,
    # the first step may build the drift image (minutes on a busy 2-core machine)
    pytest.mark.timeout(3600),
]

NORMAL = 600
DRIFTED = 1200
# Predictions whose true outcome is reported; then ones whose reported outcome contradicts the
# model (400 true and 600 contradicted: a ROC AUC near 0.4); then applications that make the
# model refuse the under-25s (their selection rate falls from about 0.65 to 0.36, 0.47 times the
# 25-59s').
LABELLED = 400
CONTRADICTED = 600
REFUSED_GROUP = 400


@pytest.fixture(scope="module")
def stack(
    kube: Kube, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    def local_postgres() -> PostgresServer:
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        return postgres

    def local_store_restart(down_for: float) -> None:
        postgres = local_postgres()
        postgres.stop()
        time.sleep(down_for)
        postgres.start()

    stack = stack_for(
        kube,
        tmp_path_factory.mktemp("e2e"),
        local_database_url=lambda: local_postgres().create_database("e2e"),
        local_drift_image=lambda: build_images("drift")["drift"],
        local_store_restart=local_store_restart,
        images=local_node_images if kube.node_runtime is not None else images_from_env,
    )
    try:
        stack.install_charts()
        stack.start_api()
        stack.start_operator()
        stack.apply_monitor()
        stack.start_observability()
        yield stack
    finally:
        stack.stop()


def _children(kube: Kube) -> list[dict[str, Any]]:
    listed = kube.kubectl(
        "get",
        cluster.MONITOR_CHILD_KINDS,
        "-n",
        APP_NAMESPACE,
        "-l",
        f"app.kubernetes.io/instance={MONITOR}",
        "-o",
        "json",
    )
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def _drift_status(stack: Stack) -> dict[str, Any]:
    monitor = stack.monitor()
    assert monitor is not None
    drift: dict[str, Any] = monitor.get("status", {}).get("drift", {})
    return drift


def test_the_monitor_is_ready_and_owns_its_children(stack: Stack, kube: Kube) -> None:
    monitor = stack.monitor()
    assert monitor is not None
    uid = monitor["metadata"]["uid"]
    kinds = {child["kind"] for child in _children(kube)}
    assert {
        "CronJob",
        "PrometheusRule",
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    } <= kinds
    for child in _children(kube):
        owners = child["metadata"].get("ownerReferences", [])
        assert [o["uid"] for o in owners] == [uid], child["metadata"]["name"]


def _pods_only(stack: Stack, what: str) -> None:
    if not stack.kube.runs_pods:
        pytest.skip(f"{what}: on the pod path only (kube-prometheus-stack runs in pods)")


def test_kube_prometheus_stack_scrapes_our_pods_and_loads_our_rules(stack: Stack) -> None:
    """What prometheus-operator selected, seen in its Prometheus: both API pods and the
    operator are targets, the monitor's rule groups are loaded, and the monitor says so."""
    _pods_only(stack, "kube-prometheus-stack's own selection")
    assert stack.prometheus is not None
    up = stack.prometheus.wait_for(
        'up{job="credit-api"} == 1', lambda result: len(result) == 2, timeout=120
    )
    assert {sample["metric"]["namespace"] for sample in up} == {APP_NAMESPACE}
    stack.prometheus.wait_for('up{namespace="monitoring", service="monitoring-operator"} == 1')
    groups = {group["name"] for group in stack.prometheus.rule_groups()}
    rule = stack.prometheus_rule()
    assert {group["name"] for group in rule["spec"]["groups"]} <= groups
    monitor = stack.monitor()
    assert monitor is not None
    for kind in ("RulesSelected", "TargetSelected"):
        condition = cluster.condition(monitor, kind)
        assert condition is not None
        assert condition["status"] == "True", condition
        assert "monitoring/kube-prometheus-stack-prometheus" in condition["message"]
    printed = stack.kube.kubectl("get", "mm", MONITOR, "-n", APP_NAMESPACE).stdout
    header, row = printed.splitlines()[:2]
    columns = dict(zip(header.split(), row.split(), strict=False))
    assert (columns["RULES"], columns["TARGET"]) == ("True", "True")


def test_normal_traffic_shows_no_drift_and_fires_no_drift_alert(stack: Stack) -> None:
    predictions = stack.send_traffic(NORMAL)
    assert len(predictions) == NORMAL
    stack.wait_prediction_log_flushed(NORMAL)
    run = stack.run_drift_job(scheduled=True)
    assert run.exit_code == 0, run.output
    drift = _drift_status(stack)
    assert drift["result"] == "Completed"
    assert drift["rows"]["current"] == NORMAL
    assert drift["datasetDrift"] is False
    assert stack.prometheus is not None
    stack.prometheus.wait_for(
        f'modelmonitor_drift_detected{{monitor="{MONITOR}"}} == 0', timeout=60
    )
    assert stack.prometheus.query('ALERTS{alertname="ModelDriftDetected"}') == []


def test_every_dashboard_query_runs_and_traffic_panels_have_data(stack: Stack) -> None:
    assert stack.prometheus is not None
    configmap = cluster.get(stack.kube, "configmap", dashboard_name(MONITOR), APP_NAMESPACE)
    assert configmap is not None
    dashboard = json.loads(next(iter(configmap["data"].values())))
    expressions = [
        (panel.get("title", "?"), target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert expressions
    stack.prometheus.wait_for("sum(credit_api_predictions_total) > 0", timeout=60)
    empty = []
    for title, expr in expressions:
        query = expr.replace("$__rate_interval", "1m").replace("$__range", "5m")
        result = stack.prometheus.query(query)  # raises on a bad expression
        if not result:
            empty.append(title)
    traffic_panels = [t for t, e in expressions if "credit_api_requests_total" in e]
    assert traffic_panels
    assert not set(traffic_panels) & set(empty), f"panels without data: {empty}"


def test_drifted_traffic_raises_model_drift_detected(stack: Stack) -> None:
    stack.send_traffic(DRIFTED, drifted=True)
    stack.wait_prediction_log_flushed(NORMAL + DRIFTED)
    run = stack.run_drift_job(scheduled=True)
    assert run.exit_code == 0, run.output
    drift = _drift_status(stack)
    assert drift["datasetDrift"] is True
    drifted = {f["name"] for f in drift["features"] if f["drifted"]}
    assert {"age_in_years", "credit_amount", "duration_in_month"} <= drifted
    assert stack.operator is not None
    metrics = httpx.get(stack.operator.metrics_url).text
    assert "modelmonitor_drift_detected{" in metrics
    assert stack.webhook is not None
    alert = stack.webhook.wait_for("ModelDriftDetected", timeout=180)[0]
    assert alert["labels"]["model"] == "credit-score"
    assert alert["labels"]["severity"]
    assert alert["labels"]["team"] == "risk"
    assert alert["annotations"]["runbook_url"].startswith("http")


def _ui_runs(stack: Stack, run_url: str) -> dict[str, dict[str, Any]]:
    """The monitor's runs the chart's Evidently UI lists, by id, once it lists the run at
    `run_url` (the UI scans its workspace every second: reports.ui.pollSeconds)."""
    ui = stack.start_reports_ui()
    project = project_id(project_name(APP_NAMESPACE, MONITOR))
    run_id = run_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 60
    while True:
        response = httpx.get(f"{ui}/api/projects/{project}/snapshots", timeout=10)
        runs = {run["id"]: run for run in response.json()} if response.is_success else {}
        if run_id in runs or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert run_id in runs, f"the UI does not list the run {run_id}: {sorted(runs)}"
    return runs


def test_the_run_that_found_drift_opens_in_the_evidently_ui(stack: Stack) -> None:
    """The chart's UI (its pod behind a port-forward, or its commands as processes) serves the
    run the status links; the drift alert links the monitor's runs there."""
    ui = stack.start_reports_ui()
    project = project_id(project_name(APP_NAMESPACE, MONITOR))
    url = _drift_status(stack)["report"]["url"]
    assert url.startswith(f"{ui}/projects/{project}/reports/")
    runs = _ui_runs(stack, url)
    assert runs[url.rsplit("/", 1)[1]]["tags"] == ["DatasetDrift", "model_version=1", "window=1h"]
    # Scheduled runs every minute: the newest `keep` stay (TEST_SIZED_SPEC).
    assert len(runs) <= TEST_SIZED_SPEC["drift"]["reports"]["keep"]
    assert stack.webhook is not None
    alert = stack.webhook.wait_for("ModelDriftDetected", timeout=180)[0]
    assert alert["annotations"]["report_url"] == f"{ui}/projects/{project}/reports"


def _written(stack: Stack) -> int:
    return int(stack.prediction_log_counts().written)


def _score_and_wait_written(stack: Stack, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Score the batch and wait until the API wrote every record (feedback needs them stored)."""
    before = _written(stack)
    predictions = stack.send_applications(batch)
    assert len(predictions) == len(batch)
    stack.wait_prediction_log_flushed(before + len(batch))
    return predictions


def _runs_url(stack: Stack) -> str:
    """The monitor's runs in the chart's Evidently UI: what alerts on a run's findings link."""
    project = project_id(project_name(APP_NAMESPACE, MONITOR))
    return f"{stack.start_reports_ui()}/projects/{project}/reports"


def _status(stack: Stack, field: str) -> dict[str, Any]:
    monitor = stack.monitor()
    assert monitor is not None
    found: dict[str, Any] = monitor.get("status", {}).get(field, {})
    return found


def test_true_outcomes_give_the_models_quality_and_no_quality_alert(stack: Stack) -> None:
    """Lenders report what became of the applications: the model's quality from ground truth."""
    batch, outcomes = labelled_traffic(LABELLED)
    predictions = _score_and_wait_written(stack, batch)
    assert stack.send_feedback(predictions, outcomes) == LABELLED
    run = stack.run_drift_job(scheduled=True)
    assert run.exit_code == 0, run.output
    quality = _status(stack, "quality")
    assert quality["result"] == "Completed", quality
    assert quality["positiveClass"] == "bad"
    assert quality["rows"]["labelled"] == LABELLED
    assert quality["rocAuc"] >= 0.7, quality  # the model's own held-out AUC is above 0.75
    # The run's page in the Evidently UI says what it judged (one read: runs go on every minute).
    status = (stack.monitor() or {})["status"]
    url = status["drift"]["report"]["url"]
    listed = _ui_runs(stack, url)[url.rsplit("/", 1)[1]]
    assert listed["metadata"]["quality"] == f"Completed: {status['quality']['message']}"
    assert stack.prometheus is not None
    stack.prometheus.wait_for(
        f'modelmonitor_quality_roc_auc{{monitor="{MONITOR}"}} >= 0.7', timeout=60
    )
    assert stack.prometheus.query('ALERTS{alertname="ModelQualityDegraded"}') == []


def test_outcomes_that_contradict_the_model_raise_model_quality_degraded(stack: Stack) -> None:
    """A degraded phase: what happened is the opposite of what the model foresaw."""
    predictions = _score_and_wait_written(stack, normal_traffic(CONTRADICTED, seed=8))
    stack.send_feedback(predictions, contradicting_outcomes(predictions))
    run = stack.run_drift_job(scheduled=True)
    assert run.exit_code == 0, run.output
    quality = _status(stack, "quality")
    assert quality["rows"]["labelled"] == LABELLED + CONTRADICTED
    assert quality["rocAuc"] < 0.7, quality
    assert stack.webhook is not None
    alert = stack.webhook.wait_for("ModelQualityDegraded", timeout=180)[0]
    assert alert["labels"]["model"] == "credit-score"
    assert alert["labels"]["slo"] == "quality"
    assert alert["labels"]["team"] == "risk"
    assert alert["annotations"]["summary"].startswith("credit-score: ROC AUC ")
    assert alert["annotations"]["runbook_url"].endswith("#modelqualitydegraded")
    assert alert["annotations"]["report_url"] == _runs_url(stack)


def test_traffic_that_refuses_one_group_raises_model_fairness_disparity(stack: Stack) -> None:
    """An unfair phase: applicants under 25 whom the model refuses, older ones it accepts."""
    batch = refused_group_traffic(REFUSED_GROUP)
    predictions = _score_and_wait_written(stack, batch)
    young = [p for a, p in zip(batch, predictions, strict=True) if a["age_in_years"] < YOUNG_BELOW]
    assert young
    assert all(p["decision"] == "bad" for p in young), "the served model refuses them"
    run = stack.run_drift_job(scheduled=True)
    assert run.exit_code == 0, run.output
    fairness = _status(stack, "fairness")
    assert fairness["verdict"] == "Disparity", fairness
    age = next(a for a in fairness["attributes"] if a["name"] == "age_in_years")
    groups = {g["name"]: g for g in age["groups"]}
    assert age["disparity"] is True
    assert groups["under-25"]["disparateImpactRatio"] < 0.8
    assert all(g["rows"] >= 30 for g in groups.values())
    assert stack.webhook is not None
    stack.webhook.wait_for("ModelFairnessDisparity", timeout=180)
    alerts = [
        alert
        for alert in stack.webhook.alerts("ModelFairnessDisparity", "firing")
        if alert["labels"].get("attribute") == "age_in_years"
        and alert["labels"].get("group") == "under-25"
    ]
    assert alerts, stack.webhook.alerts("ModelFairnessDisparity", "firing")
    assert alerts[0]["labels"]["reference"] == "25-59"
    assert "favourable decision (good)" in alerts[0]["annotations"]["description"]
    assert alerts[0]["annotations"]["report_url"] == _runs_url(stack)
    listed = stack.kube.kubectl("get", "mm", MONITOR, "-n", APP_NAMESPACE).stdout
    assert "Disparity" in listed.splitlines()[1].split()


def test_an_error_burst_pages_and_recovery_resolves_it(stack: Stack) -> None:
    """Users get 5xx for real: on the process path the API's fault switch fails predictions;
    on the pod path the store goes away and feedback, written at once, is answered 503 while
    predictions go on. The availability SLO's fast burn pages, and recovery resolves it."""
    assert stack.api is not None
    assert stack.webhook is not None
    page = "ModelAvailabilityBudgetBurnFast"
    stack.inject_faults(on=True)
    try:
        statuses = _keep_sending(stack, until=lambda: bool(stack.webhook.alerts(page, "firing")))
    finally:
        stack.inject_faults(on=False)
    assert statuses.get(500, 0) + statuses.get(503, 0) > 0, statuses
    alert = stack.webhook.alerts(page, "firing")[0]
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["slo"] == "availability"
    _keep_sending(stack, until=lambda: bool(stack.webhook.alerts(page, "resolved")))
    # Recovered: every prediction and every feedback on it succeeds again.
    with httpx.Client(base_url=stack.start_api().url, timeout=10) as client:
        for application in normal_traffic(10, seed=13):
            answer = client.post("/api/v1/predict", json=application)
            assert answer.status_code == 200, answer.text
            outcome = {"request_id": answer.json()["request_id"], "outcome": "good"}
            feedback = client.post("/api/v1/feedback", json=outcome)
            assert feedback.status_code == 200, feedback.text


def _keep_sending(stack: Stack, until: Any, timeout: float = 300) -> dict[int, int]:
    """A prediction, then feedback on it, one after another (about 10/s) until `until()`
    holds; the status counts of both."""
    deadline = time.monotonic() + timeout
    with _steady_traffic(stack.start_api().url, pause=0.1, seed=7, feedback=True) as statuses:
        while not until():
            assert time.monotonic() < deadline, f"gave up after {timeout:.0f}s: {statuses}"
            time.sleep(0.1)
    assert 0 not in statuses, f"requests without a response: {statuses}"
    return statuses


def test_a_store_restart_under_traffic_fails_no_prediction_and_loses_no_record(
    stack: Stack,
) -> None:
    api = stack.start_api()
    assert stack.webhook is not None
    store_alert = "ModelPredictionStoreUnavailable"
    before = stack.prediction_log_counts()
    stored_before = stack.stored_predictions()
    with _steady_traffic(api.url) as statuses:
        time.sleep(2)
        # Longer than the alert's `for` (15 s in this monitor) and the scrape and rule lag.
        stack.restart_store(down_for=30)
        time.sleep(3)  # traffic goes on while the writer reconnects and drains its queue
    assert stack.webhook.alerts(store_alert, "firing"), "no alert while the store was down"
    stack.webhook.wait_for(store_alert, "resolved", timeout=60)
    sent = sum(statuses.values())
    assert statuses == {200: sent}, statuses
    assert sent > 50, "too little traffic reached the API to mean anything"

    # Every prediction's record is written or counted as dropped; written ones are in the store.
    # The spool drains once the writer sees the store back (its retries back off).
    deadline = time.monotonic() + 120
    while (after := stack.prediction_log_counts()).waiting and time.monotonic() < deadline:
        time.sleep(0.5)
    assert after.waiting == 0, after
    assert (after.written - before.written) + (after.dropped - before.dropped) == sent
    assert after.dropped == before.dropped, "the queue bound should hold a short outage"
    assert stack.stored_predictions() - stored_before == sent
    assert stack.prometheus is not None
    assert stack.prometheus.query('ALERTS{alertname="ModelPredictionRecordsDropped"}') == []


@contextmanager
def _steady_traffic(
    api_url: str, *, pause: float = 0.01, seed: int = 11, feedback: bool = False
) -> Iterator[dict[int, int]]:
    """One prediction after another (`pause` apart) from a thread while the body runs (each
    followed by feedback on it, with `feedback`); the status counts. A request that gets no
    response at all counts under status 0.
    """
    statuses: dict[int, int] = {}
    stop = threading.Event()
    application = normal_traffic(1, seed=seed)[0]

    def count(code: int) -> None:
        statuses[code] = statuses.get(code, 0) + 1

    def send() -> None:
        with httpx.Client(base_url=api_url, timeout=10) as client:
            while not stop.is_set():
                try:
                    answer = client.post("/api/v1/predict", json=application)
                    count(answer.status_code)
                    if feedback and answer.status_code == 200:
                        outcome = {"request_id": answer.json()["request_id"], "outcome": "good"}
                        count(client.post("/api/v1/feedback", json=outcome).status_code)
                except httpx.HTTPError:
                    count(0)
                time.sleep(pause)

    sender = threading.Thread(target=send, name="steady-traffic")
    sender.start()
    try:
        yield statuses
    finally:
        stop.set()
        sender.join(timeout=30)


def test_an_api_pod_deleted_under_load_loses_no_record(stack: Stack) -> None:
    """A rolling update's or a drain's deletion: the pod leaves the Service before it stops
    (its preStop pause), flushes its queue on SIGTERM, and its replacement takes over."""
    _pods_only(stack, "deleting an API pod")
    assert isinstance(stack, PodStack)
    stored_before = stack.stored_predictions()
    with _steady_traffic(stack.start_api().url) as statuses:
        time.sleep(2)
        stack.delete_api_pod()
        time.sleep(3)
    sent = statuses.get(200, 0)
    assert sent > 50, statuses
    assert set(statuses) == {200}, f"requests refused or failed while the pod went: {statuses}"
    deadline = time.monotonic() + 60
    while stack.stored_predictions() - stored_before < sent and time.monotonic() < deadline:
        time.sleep(1)
    assert stack.stored_predictions() - stored_before == sent


def _monitor(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    monitor = cluster.example_monitor({**TEST_SIZED_SPEC, **spec})
    monitor["metadata"] = {"name": name}
    return monitor


def test_the_drift_job_says_why_it_could_not_judge(stack: Stack, kube: Kube) -> None:
    """A missing reference, too few rows, a dead store: the status says which; alerts match."""
    cluster.create_store_secret(
        kube, APP_NAMESPACE, "dead-store", "postgresql://nobody@127.0.0.1:1/nothing"
    )
    cases = {
        "no-reference": ({"model": {"name": "never-registered"}}, 4, "ReferenceMissing"),
        "too-few-rows": (
            {"drift": {**TEST_SIZED_SPEC["drift"], "minRows": 40_000}},
            0,  # with --monitor: the status says InsufficientData, the Job succeeds
            "InsufficientData",
        ),
        "dead-store": (
            {"store": {"secretRef": {"name": "dead-store", "key": "reader-dsn"}}},
            4,
            "StoreUnavailable",
        ),
    }
    for name, (spec, _, _) in cases.items():
        cluster.apply(kube, _monitor(name, spec), APP_NAMESPACE)
    for name, (_, exit_code, reason) in cases.items():
        stack.wait_monitor_ready(name)
        run = stack.run_drift_job(monitor=name)
        assert run.exit_code == exit_code, run.output
        status = stack.monitor(name)
        assert status is not None
        condition = cluster.condition(status, "DriftDetected")
        assert condition is not None
        assert (condition["status"], condition["reason"]) == ("Unknown", reason)
    assert stack.prometheus is not None
    stack.refresh_rules()
    failed = stack.prometheus.wait_for(
        'ALERTS{alertname="ModelDriftJobFailed"}',
        lambda result: {s["metric"]["monitor"] for s in result} >= {"no-reference", "dead-store"},
        timeout=120,
    )
    assert "too-few-rows" not in {s["metric"]["monitor"] for s in failed}
    for name in cases:
        kube.kubectl("delete", "modelmonitor", name, "-n", APP_NAMESPACE)


def test_a_killed_operator_converges_fifty_monitors_without_duplicates(
    stack: Stack, kube: Kube
) -> None:
    names = [f"fleet-{i:02d}" for i in range(50)]
    manifests = [_monitor(name, {}) for name in names]
    kube.kubectl(
        "apply",
        "--server-side",
        "-n",
        APP_NAMESPACE,
        "-f",
        "-",
        input="\n".join(json.dumps(m) for m in manifests),
    )
    time.sleep(1.5)  # mid-reconcile: some monitors done, some half done, some not started
    stack.restart_operator(kill=True)
    for name in names:
        stack.wait_monitor_ready(name, timeout=120)
    listed = json.loads(
        kube.kubectl("get", cluster.MONITOR_CHILD_KINDS, "-n", APP_NAMESPACE, "-o", "json").stdout
    )["items"]
    by_owner: dict[str, list[str]] = {}
    for child in listed:
        for owner in child["metadata"].get("ownerReferences", []):
            by_owner.setdefault(owner["name"], []).append(child["kind"])
    for name in names:
        assert sorted(by_owner.get(name, [])) == sorted(
            ["CronJob", "PrometheusRule", "ConfigMap", "ServiceAccount", "Role", "RoleBinding"]
        ), name
    unowned = [
        c["metadata"]["name"]
        for c in listed
        if c["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "modelmonitor"
        and not c["metadata"].get("ownerReferences")
    ]
    assert unowned == []
    kube.kubectl("delete", "modelmonitor", *names, "-n", APP_NAMESPACE)


def test_rules_kube_prometheus_stack_does_not_select_are_reported_and_fixed(
    stack: Stack,
) -> None:
    """The most common question about kube-prometheus-stack: "my PrometheusRule is not picked
    up". A rule label the Prometheus does not select: RulesSelected says which, and Prometheus
    indeed drops the groups; putting the label back brings both back."""
    _pods_only(stack, "kube-prometheus-stack's rule selection")
    assert isinstance(stack, PodStack)
    assert stack.prometheus is not None
    prometheus = stack.prometheus
    groups = {group["name"] for group in stack.prometheus_rule()["spec"]["groups"]}

    def loaded() -> set[str]:
        return groups & {group["name"] for group in prometheus.rule_groups()}

    def rules_selected() -> dict[str, Any]:
        monitor = stack.monitor()
        assert monitor is not None
        return cluster.condition(monitor, "RulesSelected") or {}

    stack.upgrade_monitoring({"kubePrometheusStack": {"ruleLabels": {"release": "kps-old"}}})
    try:
        condition = _eventually(lambda: rules_selected().get("status") == "False", rules_selected)
        assert condition["reason"] == "RuleLabelsNotSelected"
        assert "label release is kps-old, not kube-prometheus-stack" in condition["message"]
        _eventually(lambda: not loaded(), loaded, timeout=240)
    finally:
        stack.upgrade_monitoring(
            {"kubePrometheusStack": {"ruleLabels": {"release": "kube-prometheus-stack"}}}
        )
    _eventually(lambda: rules_selected().get("status") == "True", rules_selected)
    _eventually(lambda: loaded() == groups, loaded, timeout=240)


def _eventually(done: Any, observe: Any, timeout: float = 120) -> Any:
    """Until `done()`; then what `observe()` says (on a timeout, the last of it fails)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"never got there: {observe()}"
        time.sleep(2)
    return observe()


def test_deleting_the_monitor_collects_its_children(stack: Stack, kube: Kube) -> None:
    stack.delete_monitor()
    assert cluster.settled(lambda: _children(kube)) == []


def _release_objects(kube: Kube, release: str, namespace: str) -> list[str]:
    return kube.kubectl(
        "get",
        "all,serviceaccount,role,rolebinding,servicemonitor,prometheusrule,configmap,secret",
        "-n",
        namespace,
        "-l",
        f"app.kubernetes.io/instance={release}",
        "-o",
        "name",
    ).stdout.split()


def test_uninstalling_the_charts_leaves_nothing_of_ours(stack: Stack, kube: Kube) -> None:
    stack.uninstall_charts()
    for release, namespace in (("credit-api", APP_NAMESPACE), ("monitoring", MONITORING_NAMESPACE)):
        left = cluster.settled(partial(_release_objects, kube, release, namespace))
        assert left == [], f"{release} left {left}"
    cluster_wide = kube.kubectl(
        "get",
        "clusterrole,clusterrolebinding",
        "-l",
        "app.kubernetes.io/instance=monitoring",
        "-o",
        "name",
    ).stdout.split()
    assert cluster_wide == []
