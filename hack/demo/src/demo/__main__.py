"""`make demo`: the whole product on this machine, narrated, from a prediction to an alert.

Runs without Docker and without a cluster: a local Kubernetes control plane (built from its
Go modules on the first run, then cached), both Helm charts, the credit API with a SQLite
prediction log (PostgreSQL with --postgres), the operator, the drift job, Prometheus and
Alertmanager, as processes here (the fast path).

--pods: the same story in pods on a local node (containerd, kubelet, kube-proxy, CoreDNS):
the charts' images built here, the bundled PostgreSQL, drift Jobs made by the CronJob
controller, under the real kube-prometheus-stack (needs root; the first run builds the node's
and kube-prometheus-stack's images from their Go modules and the product's images).

Cleans up on exit and on Ctrl-C; --keep leaves it running to look around.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from demo import cluster, traffic
from demo.imagebuild import local_node_images
from demo.podstack import PodStack
from demo.stack import APP_NAMESPACE, MONITOR, LocalStack
from demo.stacks import Stack
from localkube.build import (
    CONTROL_PLANE,
    HELM_CLI,
    KUBECTL,
    NODE,
    ensure_binaries,
    report_to_stderr,
)
from localkube.cluster import start_cluster, stop_cluster
from localkube.kube import Kube, kube_for
from localservers.postgres import PostgresServer

NORMAL_TRAFFIC = 600
DRIFTED_TRAFFIC = 1200
LABELLED_TRAFFIC = 400
CONTRADICTED_TRAFFIC = 600
REFUSED_GROUP_TRAFFIC = 400
CHILDREN_COLLECTED_WITHIN_SECONDS = 60


class Narrator:
    def __init__(self, total: int) -> None:
        self.total = total
        self.number = 0

    def step(self, title: str) -> None:
        self.number += 1
        print(f"\n==> [{self.number}/{self.total}] {title}", flush=True)

    def say(self, text: str) -> None:
        print(f"    {text}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--postgres", action="store_true", help="log predictions to PostgreSQL")
    parser.add_argument(
        "--pods",
        action="store_true",
        help="run it all in pods on a local node, under kube-prometheus-stack (root)",
    )
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    parser.add_argument("--work-dir", type=Path, help="where logs, the store and reports go")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C does
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="credit-demo-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        if args.pods:
            return _run_in_pods(work_dir, keep=args.keep)
        return _run(work_dir, postgres=args.postgres, keep=args.keep)
    except KeyboardInterrupt:
        print("\ninterrupted: everything the demo started has been stopped", file=sys.stderr)
        return 130


def _run(work_dir: Path, *, postgres: bool, keep: bool) -> int:
    out = Narrator(total=12)
    out.step("Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)")
    out.say(
        "the first run builds them from their Go modules: ~9 min on 2 idle cores, with progress"
    )
    ensure_binaries((*CONTROL_PLANE, HELM_CLI), report_to_stderr)
    with _cluster(work_dir / "cluster") as kube, _database(work_dir, postgres) as database_url:
        out.say(f"export KUBECONFIG={kube.kubeconfig}")
        _tell(LocalStack(kube, work_dir, database_url=database_url, say=out.say), kube, out, keep)
    print(f"\ndemo finished; logs and the prediction store are in {work_dir}")
    return 0


def _run_in_pods(work_dir: Path, *, keep: bool) -> int:
    out = Narrator(total=13)
    out.step("Kubernetes: a control plane and a node (containerd, kubelet, kube-proxy, CoreDNS)")
    out.say(
        "the first run builds them from their Go modules (~9 min on 2 idle cores; "
        "kube-prometheus-stack's images ~5 more, later), with progress"
    )
    ensure_binaries((*CONTROL_PLANE, *NODE, HELM_CLI), report_to_stderr)
    with _cluster(work_dir / "cluster", node=True) as kube:
        out.say(f"export KUBECONFIG={kube.kubeconfig}")
        _print_indented(kube.kubectl("get", "nodes,pods", "-A", "-o", "wide").stdout)
        out.step("The product's images, built here (podman) and imported into the node")
        images = local_node_images(out.say)
        _tell(PodStack(kube, work_dir, images=images, say=out.say), kube, out, keep)
    print(f"\ndemo finished; logs are in {work_dir}")
    return 0


def _tell(stack: Stack, kube: Kube, out: Narrator, keep: bool) -> None:
    """The scenario on either stack; with ``keep``, everything stays up until Ctrl-C."""
    try:
        _scenario(stack, kube, out)
        if keep:
            out.say("everything keeps running; Ctrl-C stops it")
            while True:
                time.sleep(3600)
    finally:
        stack.stop()


def _scenario(stack: Stack, kube: Kube, out: Narrator) -> None:
    out.step("Helm charts: monitoring (operator, CRD, RBAC) and credit-api")
    kube.install_prometheus_operator_crds()
    stack.install_charts()

    out.step("The credit API, the operator and the Evidently UI")
    stack.start_api()
    stack.start_operator()
    stack.start_reports_ui()
    if kube.runs_pods:
        out.say("kubectl get pods -A:")
        _print_indented(kube.kubectl("get", "pods", "-A").stdout)

    out.step("A ModelMonitor for the credit-score model")
    stack.apply_monitor()
    out.say(f"kubectl get mm -n {APP_NAMESPACE}:")
    _print_indented(kube.kubectl("get", "mm", "-n", APP_NAMESPACE).stdout)
    out.say("children (owned by the monitor):")
    _print_indented(_monitor_children(kube))

    if kube.runs_pods:
        out.step("kube-prometheus-stack: it selects our ServiceMonitors and PrometheusRules")
    else:
        out.step("Prometheus and Alertmanager, with the rules the operator rendered")
    stack.start_observability()
    if kube.runs_pods:
        out.say("kubectl get mm (RULES, TARGET: picked up by kube-prometheus-stack):")
        _print_indented(kube.kubectl("get", "mm", "-n", APP_NAMESPACE).stdout)

    out.step(f"Normal traffic: {NORMAL_TRAFFIC} applications from the German Credit data")
    stack.send_traffic(NORMAL_TRAFFIC)
    stack.wait_prediction_log_flushed(NORMAL_TRAFFIC)
    drift_step(stack, out)

    out.step(f"Drifted traffic: {DRIFTED_TRAFFIC} older applicants asking for more, for longer")
    stack.send_traffic(DRIFTED_TRAFFIC, drifted=True)
    stack.wait_prediction_log_flushed(NORMAL_TRAFFIC + DRIFTED_TRAFFIC)
    drift_step(stack, out)

    out.step("Waiting for ModelDriftDetected at the Alertmanager webhook")
    assert stack.webhook is not None
    alert = stack.webhook.wait_for("ModelDriftDetected", timeout=180)[0]
    out.say(f"received: {alert['labels']['alertname']} severity={alert['labels'].get('severity')}")
    out.say(f"summary: {alert['annotations'].get('summary')}")
    out.say(f"runbook: {alert['annotations'].get('runbook_url')}")
    if "report_url" in alert["annotations"]:
        out.say(f"reports: {alert['annotations']['report_url']}")
    _print_indented(kube.kubectl("get", "mm", "-n", APP_NAMESPACE).stdout)

    _model_phases(stack, kube, out)

    out.step("Deleting the ModelMonitor: its children go with it (owner references)")
    children = _monitor_children(kube, "-o", "name").split()
    stack.delete_monitor()
    deleted = time.monotonic()
    left = cluster.settled(
        lambda: _monitor_children(kube, "-o", "name").split(), CHILDREN_COLLECTED_WITHIN_SECONDS
    )
    if left:
        raise RuntimeError(
            f"{len(left)} of the monitor's children are still there"
            f" {CHILDREN_COLLECTED_WITHIN_SECONDS} s after it: {', '.join(left)}"
        )
    out.say(
        f"its {len(children)} children were garbage-collected"
        f" {time.monotonic() - deleted:.1f} s after it"
    )


def _model_phases(stack: Stack, kube: Kube, out: Narrator) -> None:
    """Outcomes reported, then a degraded phase and an unfair phase, each to its alert."""
    out.step(f"Outcomes: lenders report what became of {LABELLED_TRAFFIC} applications")
    batch, outcomes = traffic.labelled_traffic(LABELLED_TRAFFIC)
    _score_and_report(stack, batch, outcomes)
    _quality_step(stack, out)

    out.step(
        f"A degraded phase: {CONTRADICTED_TRAFFIC} outcomes that contradict the model,"
        " until ModelQualityDegraded arrives"
    )
    batch = traffic.normal_traffic(CONTRADICTED_TRAFFIC, seed=8)
    predictions = _score(stack, batch)
    stack.send_feedback(predictions, traffic.contradicting_outcomes(predictions))
    _quality_step(stack, out)
    _wait_alert(stack, out, "ModelQualityDegraded")

    out.step(
        f"An unfair phase: {REFUSED_GROUP_TRAFFIC} applications where the under-25s are refused,"
        " until ModelFairnessDisparity arrives"
    )
    _score(stack, traffic.refused_group_traffic(REFUSED_GROUP_TRAFFIC))
    stack.run_drift_job()
    fairness = (stack.monitor() or {}).get("status", {}).get("fairness", {})
    out.say(str(fairness.get("message")))
    _wait_alert(stack, out, "ModelFairnessDisparity")
    _print_indented(kube.kubectl("get", "mm", "-n", APP_NAMESPACE).stdout)


def _monitor_children(kube: Kube, *options: str) -> str:
    """The objects the operator made for the demo's monitor, as `kubectl get` prints them."""
    return kube.kubectl(
        "get",
        cluster.MONITOR_CHILD_KINDS,
        "-n",
        APP_NAMESPACE,
        "-l",
        f"app.kubernetes.io/instance={MONITOR}",
        *options,
    ).stdout


def _score(stack: Stack, batch: list[traffic.Application]) -> list[dict[str, Any]]:
    """Score the batch and wait until its records are in the store (feedback needs them)."""
    before = stack.prediction_log_counts().written
    predictions = stack.send_applications(batch)
    stack.wait_prediction_log_flushed(int(before) + len(batch))
    return predictions


def _score_and_report(stack: Stack, batch: list[traffic.Application], outcomes: list[str]) -> None:
    stack.send_feedback(_score(stack, batch), outcomes)


def _quality_step(stack: Stack, out: Narrator) -> None:
    run = stack.run_drift_job()
    quality = (stack.monitor() or {}).get("status", {}).get("quality", {})
    out.say(f"exit {run.exit_code}: quality {quality.get('result')}: {quality.get('message')}")


def _wait_alert(stack: Stack, out: Narrator, name: str) -> None:
    assert stack.webhook is not None
    alert = stack.webhook.wait_for(name, timeout=180)[-1]
    out.say(f"received: {name}: {alert['annotations'].get('summary')}")
    out.say(f"  {alert['annotations'].get('description')}")
    if "report_url" in alert["annotations"]:
        out.say(f"  reports: {alert['annotations']['report_url']}")


def drift_step(stack: Stack, out: Narrator) -> dict[str, Any]:
    """Run the drift job once; say what it found and where its report opens. Its status."""
    run = stack.run_drift_job()
    drift: dict[str, Any] = (stack.monitor() or {}).get("status", {}).get("drift", {})
    drifted = [f["name"] for f in drift.get("features", []) if f.get("drifted")]
    out.say(
        f"exit {run.exit_code}: {drift.get('result')}, dataset drift {drift.get('datasetDrift')}, "
        f"share {drift.get('driftShare')}, drifted: {', '.join(drifted) or 'none'}"
    )
    report = drift.get("report", {})
    if "url" in report:
        out.say(f"the run in the Evidently UI: {report['url']}")
    if "html" in report:
        out.say(f"its HTML report: {report['html']}")
    return drift


@contextlib.contextmanager
def _cluster(directory: Path, *, node: bool = False) -> Iterator[Kube]:
    state = start_cluster(directory, die_with_parent=True, node=node)
    kubectl = ensure_binaries((KUBECTL,), report_to_stderr)["kubectl"]
    kube = kube_for(state, kubectl)
    try:
        yield kube
    finally:
        kube.close()
        stop_cluster(state)


@contextlib.contextmanager
def _database(work_dir: Path, postgres: bool) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{work_dir / 'predictions.db'}"
        return
    server = PostgresServer()
    server.start()
    try:
        yield server.create_database("credit")
    finally:
        server.destroy()


def _print_indented(text: str) -> None:
    for line in text.rstrip().splitlines():
        print(f"      {line}")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
