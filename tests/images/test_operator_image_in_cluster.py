"""The operator image, run as the monitoring chart runs it, against the real control plane.

The chart is installed (namespaced RBAC for one namespace); the container gets the env of the
chart's rendered Deployment and a kubeconfig holding a token of the chart's ServiceAccount, so
its permissions are exactly the chart's. Applying the example ModelMonitor must produce its
drift CronJob (running the drift image the chart names), rules and dashboard, and a status.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from demo.cluster import image_values
from localkube.kube import Kube
from localkube.waiting import wait_for

from .imagetools import PODMAN_RUN_FLAGS, REPO, free_port, podman

# A cold build of the three images (the session fixture) takes longer than the default timeout.
pytestmark = [pytest.mark.images, pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(3600)]

CRD = "modelmonitors.monitoring.mlops.dev"
RELEASE = "monitoring"


@contextlib.contextmanager
def crd_present(kube: Kube) -> Iterator[None]:
    """The ModelMonitor CRD, applied from manifests/crds/ if the cluster lacks it, and then
    removed again, so that the shared cluster is left as it was found."""
    existed = kube.kubectl("get", "crd", CRD, check=False).returncode == 0
    if not existed:
        kube.kubectl("apply", "--server-side", "-f", str(REPO / "manifests/crds"))
        kube.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")
    try:
        yield
    finally:
        if not existed:
            kube.kubectl("delete", "crd", CRD, "--ignore-not-found", "--wait=false")


def install_chart(helm_binary: Path, kube: Kube, namespace: str, values: dict[str, Any]) -> str:
    """helm install; returns the rendered manifest."""
    command = [
        str(helm_binary),
        "--kubeconfig",
        str(kube.kubeconfig),
        "install",
        RELEASE,
        str(REPO / "charts/monitoring"),
        "--namespace",
        namespace,
        "--values",
        "-",
    ]
    completed = subprocess.run(
        command,
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    manifest = subprocess.run(
        [
            str(helm_binary),
            "--kubeconfig",
            str(kube.kubeconfig),
            "get",
            "manifest",
            RELEASE,
            "--namespace",
            namespace,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return manifest.stdout


def get_json(kube: Kube, *args: str) -> dict[str, Any] | None:
    completed = kube.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(completed.stdout) if completed.returncode == 0 else None


def test_operator_image_reconciles_the_example_monitor(
    images: dict[str, str], kube: Kube, kube_namespace: str, helm_binary: Path, tmp_path: Path
) -> None:
    namespace = kube_namespace
    metrics_port, health_port = free_port(), free_port()
    with crd_present(kube):
        manifest = install_chart(
            helm_binary,
            kube,
            namespace,
            {
                "crds": {"install": False},
                "operator": {
                    "watchNamespaces": [namespace],
                    "metricsPort": metrics_port,
                    "healthPort": health_port,
                },
                "driftJob": {"image": image_values(images["drift"])},
            },
        )
        deployment = next(
            doc for doc in yaml.safe_load_all(manifest) if doc and doc["kind"] == "Deployment"
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        # Readable by the image's non-root user (the original is root's, mode 0600); the token
        # it holds is short-lived and the copy lives in the test's temporary directory.
        kubeconfig = tmp_path / "operator.kubeconfig"
        kubeconfig.write_text(kube.service_account_kubeconfig(namespace, account).read_text())
        kubeconfig.chmod(0o644)
        env = [arg for e in container["env"] for arg in ("--env", f"{e['name']}={e['value']}")]

        started = podman(
            "run",
            "--detach",
            *PODMAN_RUN_FLAGS,
            # The control plane listens on loopback: share the host's network namespace.
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--volume",
            f"{kubeconfig}:/var/run/kubeconfig:ro",
            "--env",
            "KUBECONFIG=/var/run/kubeconfig",
            *env,
            images["operator"],
            *container["args"],
        )
        assert started.returncode == 0, started.stderr
        operator = started.stdout.strip()
        try:
            wait_for(lambda: _healthy(health_port), timeout=60, what="the operator's /healthz")
            kube.kubectl(
                "apply",
                "-n",
                namespace,
                "-f",
                str(REPO / "manifests/examples/credit-score-monitor.yaml"),
            )
            cronjob = wait_for(
                lambda: get_json(kube, "-n", namespace, "cronjob", "credit-score-drift"),
                timeout=90,
                what="the drift CronJob of the example monitor",
            )
            pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            assert pod["containers"][0]["image"] == images["drift"]
            assert get_json(kube, "-n", namespace, "prometheusrule", "credit-score-rules")
            assert get_json(kube, "-n", namespace, "configmap", "credit-score-dashboard")
            # Ready once every child applied; a first attempt may fail transiently (RBAC caches
            # a Role created an instant earlier) and kopf retries with backoff.
            wait_for(
                lambda: (
                    _condition(
                        get_json(kube, "-n", namespace, "modelmonitor", "credit-score"), "Ready"
                    )
                    == "True"
                ),
                timeout=150,
                what="the example monitor to be Ready",
            )
            monitor = get_json(kube, "-n", namespace, "modelmonitor", "credit-score")
            assert monitor is not None
            assert monitor["status"]["observedGeneration"] == monitor["metadata"]["generation"]
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            assert "modelmonitor_reconcile_total" in metrics
        finally:
            logs = podman("logs", operator)
            podman("rm", "--force", "--time", "5", operator)
            print(f"operator logs:\n{logs.stdout[-4000:]}{logs.stderr[-4000:]}")


def _condition(monitor: dict[str, Any] | None, kind: str) -> str | None:
    conditions = (monitor or {}).get("status", {}).get("conditions", [])
    return next((c["status"] for c in conditions if c["type"] == kind), None)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
