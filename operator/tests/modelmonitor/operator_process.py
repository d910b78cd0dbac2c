"""Running the operator as a process against a cluster, with exactly the chart's RBAC.

The operator runs as `modelmonitor run`, authenticated as a ServiceAccount bound to the
ClusterRoles that `helm template` renders from charts/monitoring, so a permission the operator
lacks fails in the tests as it would in a cluster.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from localkube.kube import Kube
from localkube.waiting import wait_for

from .support import REPO

CRD = REPO / "manifests" / "crds" / "modelmonitors.monitoring.mlops.dev.yaml"
CHART = REPO / "charts" / "monitoring"
CHILD_KINDS = ("serviceaccount", "role", "rolebinding", "cronjob", "prometheusrule", "configmap")
SELECTOR = "app.kubernetes.io/managed-by=modelmonitor"
RESYNC_SECONDS = 4
DRIFT_IMAGE = "drift-job:test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(kube: Kube, *args: str) -> Any:
    return json.loads(kube.kubectl("get", "-o", "json", *args).stdout)


def children(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(
        kube, "-n", namespace, ",".join(CHILD_KINDS), "-l", SELECTOR
    )["items"]
    return items


def condition(monitor: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in monitor.get("status", {}).get("conditions", []):
        if found["type"] == kind:
            return dict(found)
    return {}


def apply(kube: Kube, namespace: str, manifest: dict[str, Any]) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


class OperatorProcess:
    """`modelmonitor run` as a local process with a ServiceAccount kubeconfig."""

    def __init__(
        self,
        kubeconfig: Path,
        namespaces: str,
        log: Path,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.metrics_port = _free_port()
        self.health_port = _free_port()
        env = {
            **os.environ,
            **(settings or {}),
            "KUBECONFIG": str(kubeconfig),
            "MODELMONITOR_NAMESPACES": namespaces,
            "MODELMONITOR_METRICS_PORT": str(self.metrics_port),
            "MODELMONITOR_HEALTH_PORT": str(self.health_port),
            "MODELMONITOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
            "MODELMONITOR_DRIFT_IMAGE": DRIFT_IMAGE,
        }
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelmonitor.cli", "run"],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._healthy, timeout=60, what=f"operator /healthz (log: {log})")

    def _healthy(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2).is_success
        except httpx.HTTPError:
            return False

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
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log_file.close()


def _chart_rbac(helm: Path, release: str, namespace: str) -> list[dict[str, Any]]:
    """The chart's RBAC and its admission policies, for the drift image the operator runs with:
    every test runs under both."""
    repository, tag = DRIFT_IMAGE.split(":")
    rendered = subprocess.run(
        [
            str(helm), "template", release, str(CHART), "--namespace", namespace,
            "--show-only", "templates/rbac.yaml", "--show-only", "templates/serviceaccount.yaml",
            "--show-only", "templates/admissionpolicy.yaml",
            "--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
            "--set", f"driftJob.image.repository={repository}",
            "--set", f"driftJob.image.tag={tag}",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def operator_identity(
    kube: Kube, helm: Path, release: str, drop: str | None = None
) -> tuple[str, str]:
    """A namespace and ServiceAccount with the chart's RBAC (minus rules on `drop`)."""
    namespace = f"{release}-system"
    kube.kubectl("create", "namespace", namespace)
    documents = _chart_rbac(helm, release, namespace)
    account = ""
    for document in documents:
        if document["kind"] == "ServiceAccount":
            account = document["metadata"]["name"]
        if drop and document["kind"] == "ClusterRole":
            document["rules"] = [r for r in document["rules"] if drop not in r["resources"]]
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    return namespace, account


def chart_settings(helm: Path, *values: str) -> dict[str, str]:
    """The MODELMONITOR_* settings the monitoring chart gives the operator with these `--set`
    values (e.g. `kubePrometheusStack.ruleLabels.release=kps-old`)."""
    arguments = [argument for value in values for argument in ("--set", value)]
    rendered = subprocess.run(
        [
            str(helm), "template", "monitoring", str(CHART), "--namespace", "monitoring",
            "--show-only", "templates/deployment.yaml", *arguments,
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    deployment = yaml.safe_load(rendered)
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "operator"
    ]
    return {
        env["name"]: env["value"]
        for env in container.get("env", [])
        if env["name"].startswith("MODELMONITOR_") and "value" in env
    }
