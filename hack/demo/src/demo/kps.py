"""kube-prometheus-stack on the cluster, as users run it next to our charts.

The published chart (release `kube-prometheus-stack`, namespace `monitoring`, our values in
hack/kps/values.yaml): its prometheus-operator turns our ServiceMonitors into scrape targets
and our PrometheusRules into rule files by its own selection rules, its Prometheus evaluates
them, its Alertmanager sends every alert to one webhook, and kube-state-metrics reports Jobs.
Nothing here writes a scrape configuration or a rule file.

Where the chart comes from: ``$KUBE_PROMETHEUS_STACK_CHART`` (a .tgz, a folder, or a
repository reference such as ``prometheus-community/kube-prometheus-stack`` with
``$KUBE_PROMETHEUS_STACK_VERSION``), else the published copy in ``shared/vendor/charts/`` beside
the repository (machines that cannot reach Helm repositories; localkube.kps).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from demo import cluster
from demo.portforward import PortForward
from localkube.kps import CHART_ENV, VALUES_FILE, chart_path, kube_prometheus_stack_images
from localkube.kube import Kube
from localkube.versions import KUBE_PROMETHEUS_STACK_CHART_VERSION as CHART_VERSION
from localservers.prometheus import PrometheusApi

RELEASE = "kube-prometheus-stack"
NAMESPACE = "monitoring"
VERSION_ENV = "KUBE_PROMETHEUS_STACK_VERSION"
VALUES = cluster.REPO_ROOT / VALUES_FILE
PROMETHEUS_SERVICE = f"{RELEASE}-prometheus"
ALERTMANAGER_SERVICE = f"{RELEASE}-alertmanager"
READY_TIMEOUT = 300.0


@dataclass(frozen=True)
class ChartSource:
    """What `helm install` is given: a chart file or folder, or a repository reference."""

    chart: str
    version: str | None = None

    def helm_arguments(self) -> list[str]:
        return [self.chart, *([f"--version={self.version}"] if self.version else [])]


def chart_source(environ: Mapping[str, str] = os.environ) -> ChartSource:
    """The chart users would install: ``$KUBE_PROMETHEUS_STACK_CHART`` when it names a
    repository's chart (``prometheus-community/kube-prometheus-stack``, at
    ``$KUBE_PROMETHEUS_STACK_VERSION``, by default the version the images are built for), else
    the chart file localkube finds (that variable as a path, or the vendored copy)."""
    configured = environ.get(CHART_ENV, "").strip()
    if is_repository_chart(configured):
        return ChartSource(configured, environ.get(VERSION_ENV) or CHART_VERSION)
    return ChartSource(str(chart_path()))


def is_repository_chart(reference: str) -> bool:
    """`repo/chart` (a chart of a repository added with `helm repo add`), not a path."""
    return (
        reference.count("/") == 1
        and not reference.startswith((".", "/", "~"))
        and not Path(reference).expanduser().exists()
    )


def install(
    kube: Kube,
    webhook_url: str,
    *,
    source: ChartSource | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> None:
    """`helm upgrade --install` the stack, every alert going to ``webhook_url``, and wait until
    its operator, Prometheus, Alertmanager and kube-state-metrics are ready.

    On the local node its images are built from their Go modules first (cached) and imported:
    no registry is reachable."""
    chart = source or chart_source()
    if kube.node_runtime is not None:
        kube.import_images(kube_prometheus_stack_images(say))
    receivers = [
        {"name": "webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
    ]
    cluster.helm(
        kube,
        "upgrade",
        "--install",
        RELEASE,
        *chart.helm_arguments(),
        f"--namespace={NAMESPACE}",
        "--create-namespace",
        f"--values={VALUES}",
        f"--set-json=alertmanager.config.receivers={json.dumps(receivers)}",
        "--wait",
        f"--timeout={READY_TIMEOUT:.0f}s",
        timeout=READY_TIMEOUT + 60,
    )
    # The operator makes the Prometheus and Alertmanager StatefulSets after helm is done.
    for statefulset in (f"prometheus-{RELEASE}-prometheus", f"alertmanager-{RELEASE}-alertmanager"):
        _wait_exists(kube, "statefulset", statefulset)
        kube.kubectl(
            "rollout",
            "status",
            f"statefulset/{statefulset}",
            f"--namespace={NAMESPACE}",
            f"--timeout={READY_TIMEOUT:.0f}s",
            timeout=READY_TIMEOUT + 30,
        )


def uninstall(kube: Kube) -> None:
    cluster.helm(
        kube, "uninstall", RELEASE, f"--namespace={NAMESPACE}", "--wait", "--ignore-not-found"
    )


def _wait_exists(kube: Kube, kind: str, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while cluster.get(kube, kind, name, NAMESPACE) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the prometheus-operator made no {kind}/{name} in {NAMESPACE}")
        time.sleep(1)


@dataclass(frozen=True)
class KpsEndpoints:
    """kube-prometheus-stack's Prometheus and Alertmanager on this machine, through
    port-forwards to their Services, as a person reaches them."""

    prometheus_forward: PortForward
    alertmanager_forward: PortForward

    @property
    def prometheus(self) -> PrometheusApi:
        return PrometheusApi(self.prometheus_forward.url)

    @property
    def alertmanager_url(self) -> str:
        return self.alertmanager_forward.url

    def stop(self) -> None:
        self.prometheus_forward.stop()
        self.alertmanager_forward.stop()


def forward(kube: Kube, log_dir: Path) -> KpsEndpoints:
    prometheus = PortForward(
        kube, NAMESPACE, f"service/{PROMETHEUS_SERVICE}", 9090, log_dir
    ).start()
    try:
        alertmanager = PortForward(
            kube, NAMESPACE, f"service/{ALERTMANAGER_SERVICE}", 9093, log_dir
        ).start()
    except BaseException:
        prometheus.stop()
        raise
    return KpsEndpoints(prometheus, alertmanager)
