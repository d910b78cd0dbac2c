"""Operator performance against a local control plane (localkube): `make bench-operator`.

Prints, against the targets:
- apply-to-children latency of one ModelMonitor (p50/p95 over 50, applied one after another);
- 300 ModelMonitors applied at once: time until every child exists, and the operator's peak RSS;
- a restart and resyncs of the converged monitors: write calls made (must be 0).

The operator runs as a process (`modelmonitor run`) with the admin kubeconfig; the cluster and
the operator are stopped at the end.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client

from localkube.cluster import start_cluster, stop_cluster
from localkube.kube import Kube
from localkube.tools import kubectl_binary
from localservers.process import cpu_seconds

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "manifests" / "crds" / "modelmonitors.monitoring.mlops.dev.yaml"
EXAMPLE = yaml.safe_load(
    (REPO / "manifests" / "examples" / "credit-score-monitor.yaml").read_text()
)
CHILDREN_PER_MONITOR = 6
SELECTOR = "app.kubernetes.io/managed-by=modelmonitor"
# The production default while monitors are applied; a short one for the resync measurement.
CONVERGE_RESYNC_SECONDS = 300
RESYNC_SECONDS = 15
TARGET_P95_SECONDS = 2.0
TARGET_CONVERGE_SECONDS = 60.0
TARGET_RSS_MIB = 150.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def monitor(name: str) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(json.dumps(EXAMPLE))
    manifest["metadata"]["name"] = name
    return manifest


def count_children(api: client.ApiClient, namespace: str, selector: str = SELECTOR) -> int:
    """Children of every kind in the namespace, by label (one list call per kind).

    Responses are counted as raw JSON: the client's model classes would cost more CPU than the
    operator being measured.
    """
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    rbac, custom = client.RbacAuthorizationV1Api(api), client.CustomObjectsApi(api)
    calls = (
        core.list_namespaced_service_account,
        core.list_namespaced_config_map,
        rbac.list_namespaced_role,
        rbac.list_namespaced_role_binding,
        batch.list_namespaced_cron_job,
    )
    total = 0
    for call in calls:
        response = call(namespace, label_selector=selector, _preload_content=False)
        total += len(json.loads(response.data)["items"])
    rules = custom.list_namespaced_custom_object(
        "monitoring.coreos.com", "v1", namespace, "prometheusrules", label_selector=selector
    )
    return total + len(rules["items"])


def wait_for_children(
    api: client.ApiClient,
    namespace: str,
    expected: int,
    timeout: float,
    *,
    selector: str = SELECTOR,
    poll: float = 0.05,
) -> float:
    """Seconds until `expected` children exist. Polls lightly: the poller shares the machine."""
    started = time.monotonic()
    while count_children(api, namespace, selector) < expected:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{namespace}: fewer than {expected} children after {timeout}s")
        time.sleep(poll)
    return time.monotonic() - started


def wait_for_statuses(api: client.ApiClient, expected: int, timeout: float) -> None:
    """Until `expected` monitors carry the operator's status (observedGeneration)."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = custom.list_cluster_custom_object(
            "monitoring.mlops.dev", "v1alpha1", "modelmonitors"
        )
        if sum("observedGeneration" in (m.get("status") or {}) for m in items["items"]) >= expected:
            return
        time.sleep(1)
    raise TimeoutError(f"fewer than {expected} monitors with a status after {timeout}s")


class Operator:
    def __init__(self, kubeconfig: Path, log: Path, resync_seconds: int) -> None:
        self.metrics_port = _free_port()
        health_port = _free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "MODELMONITOR_METRICS_PORT": str(self.metrics_port),
            "MODELMONITOR_HEALTH_PORT": str(health_port),
            "MODELMONITOR_RESYNC_SECONDS": str(resync_seconds),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelmonitor.cli", "run"],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError(f"the operator did not become healthy; see {log}")

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the operator so far (contention-independent cost)."""
        return cpu_seconds(self.process.pid)

    def metric(self, name: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as folder:
        state = start_cluster(Path(folder) / "cluster", die_with_parent=True)
        kube = Kube(state.kubeconfig, kubectl_binary(), local=True)
        operator: Operator | None = None
        try:
            kube.install_prometheus_operator_crds()
            kube.kubectl("apply", "--server-side", "-f", str(CRD))
            kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD))
            for namespace in ("bench-one", "bench-many"):
                kube.kubectl("create", "namespace", namespace)
            operator = Operator(
                state.kubeconfig, Path(folder) / "operator.log", CONVERGE_RESYNC_SECONDS
            )
            api = kube.api_client
            idle_rss = operator.peak_rss_mib()

            print(f"machine load (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            latencies = []
            for index in range(50):
                kube.kubectl(
                    "apply",
                    "-n",
                    "bench-one",
                    "-f",
                    "-",
                    input=yaml.safe_dump(monitor(f"one-{index}")),
                )
                instance = f"{SELECTOR},app.kubernetes.io/instance=one-{index}"
                latencies.append(
                    wait_for_children(api, "bench-one", CHILDREN_PER_MONITOR, 30, selector=instance)
                )
            p50 = statistics.median(latencies)
            p95 = statistics.quantiles(latencies, n=20)[18]
            print(
                f"apply -> all children, 50 monitors: p50 {p50:.2f} s, p95 {p95:.2f} s "
                f"(target p95 <= {TARGET_P95_SECONDS} s: {verdict(p95 <= TARGET_P95_SECONDS)})"
            )

            documents = yaml.safe_dump_all([monitor(f"many-{i}") for i in range(300)])
            cpu_before = operator.cpu_seconds()
            started = time.monotonic()
            kube.kubectl(
                "apply",
                "--server-side",
                "-n",
                "bench-many",
                "-f",
                "-",
                input=documents,
                timeout=300,
            )
            wait_for_children(api, "bench-many", 300 * CHILDREN_PER_MONITOR, 600, poll=1.0)
            converge = time.monotonic() - started
            cpu = operator.cpu_seconds() - cpu_before
            print(
                f"300 monitors applied at once: all children in {converge:.1f} s "
                f"(target <= {TARGET_CONVERGE_SECONDS:.0f} s: "
                f"{verdict(converge <= TARGET_CONVERGE_SECONDS)}); "
                f"the operator used {cpu:.1f} CPU s "
                f"({1000 * cpu / 300:.0f} ms per monitor), load {os.getloadavg()[0]:.1f}"
            )

            wait_for_statuses(api, 350, 300)
            rss = operator.peak_rss_mib()
            # A restarted operator resumes every monitor, then resyncs them on its timer: all of
            # that must find the 350 converged monitors unchanged and write nothing.
            operator.stop()
            operator = Operator(state.kubeconfig, Path(folder) / "restart.log", RESYNC_SECONDS)
            time.sleep(2.5 * RESYNC_SECONDS)
            reconciles = operator.metric("modelmonitor_reconcile_total")
            writes = operator.metric("modelmonitor_api_writes_total")
            print(
                f"restart + resyncs of 350 converged monitors: {reconciles:.0f} reconciles, "
                f"{writes:.0f} write calls (target 0: {verdict(writes == 0)})"
            )
            restarted_rss = operator.peak_rss_mib()
            peak = max(rss, restarted_rss)
            print(
                f"operator peak RSS: {peak:.0f} MiB (target <= {TARGET_RSS_MIB:.0f} MiB: "
                f"{verdict(peak <= TARGET_RSS_MIB)}); idle after start {idle_rss:.0f} MiB, "
                f"applying {rss:.0f} MiB, restarted over 350 monitors {restarted_rss:.0f} MiB"
            )
        finally:
            if operator is not None:
                operator.stop()
            stop_cluster(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
