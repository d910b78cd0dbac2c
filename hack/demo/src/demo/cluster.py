"""What the scenario does to the cluster: charts, the store Secret, the ModelMonitor, Jobs."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from localkube.kube import Kube
from localkube.tools import helm_binary

REPO_ROOT = Path(__file__).resolve().parents[4]
CHARTS = REPO_ROOT / "charts"
EXAMPLE_MONITOR = REPO_ROOT / "manifests" / "examples" / "credit-score-monitor.yaml"
# What the operator makes of a ModelMonitor, all owned by it.
MONITOR_CHILD_KINDS = "cronjob,prometheusrule,configmap,serviceaccount,role,rolebinding"

T = TypeVar("T")
# A first install initialises PostgreSQL's volume and loads the model in each API pod.
CHART_WAIT_SECONDS = 300


def settled(observe: Callable[[], list[T]], timeout: float = 60) -> list[T]:
    """What `observe` returns once it is empty or the timeout passes.

    Deletion propagates through kube-controller-manager's garbage collector
    (helm uninstall and owner references both use background propagation), so
    dependents such as ReplicaSets and Pods go away a little after their owner.
    """
    deadline = time.monotonic() + timeout
    while (left := observe()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def split_image(reference: str) -> tuple[str, str]:
    """`repository:tag` as the charts' image values take it (a digest has no place there)."""
    repository, colon, tag = reference.rpartition(":")
    if "@" in reference or not colon or not repository or "/" in tag:
        raise ValueError(f"{reference!r} is not repository:tag")
    return repository, tag


def image_values(reference: str) -> dict[str, str]:
    repository, tag = split_image(reference)
    return {"repository": repository, "tag": tag}


def helm(kube: Kube, *args: str, timeout: float = 300) -> str:
    """Run the pinned helm against the cluster; a failure raises with helm's own message."""
    command = [str(helm_binary()), f"--kubeconfig={kube.kubeconfig}", *args]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args[:2])} failed: {completed.stderr.strip()}")
    return completed.stdout


def install_chart(
    kube: Kube,
    release: str,
    chart: str,
    namespace: str,
    values: Mapping[str, Any],
    *,
    wait: bool = False,
) -> None:
    """`helm upgrade --install` one of our charts; `wait` (where pods run): until its pods
    are ready, as `helm install --wait` does."""
    values_json = json.dumps(values)
    helm(
        kube,
        "upgrade",
        "--install",
        release,
        str(CHARTS / chart),
        f"--namespace={namespace}",
        "--create-namespace",
        # The CRD outlives releases (keep policy) and tests may have applied it directly.
        "--take-ownership",
        f"--values={_write_values(kube, release, values_json)}",
        *(["--wait", f"--timeout={CHART_WAIT_SECONDS}s"] if wait else []),
        timeout=CHART_WAIT_SECONDS + 60,
    )


def _write_values(kube: Kube, release: str, values_json: str) -> str:
    path = Path(kube.kubeconfig).parent / f"{release}-values.json"
    path.write_text(values_json)
    return str(path)


def uninstall_chart(kube: Kube, release: str, namespace: str) -> None:
    helm(kube, "uninstall", release, f"--namespace={namespace}", "--wait")


# The keys of the chart's database Secret (charts/credit-api, database.*): the API's URL, the
# drift jobs' (the example ModelMonitor reads it) and the migration's.
STORE_SECRET_KEYS = ("writer-dsn", "reader-dsn", "owner-dsn")


def create_store_secret(kube: Kube, namespace: str, name: str, dsn: str) -> None:
    """The Secret the API's chart and the ModelMonitor name, with the store's URL under each
    of the chart's keys (locally one identity plays the three roles)."""
    encoded = base64.b64encode(dsn.encode()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict.fromkeys(STORE_SECRET_KEYS, encoded),
    }
    kube.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(secret))


def read_secret(kube: Kube, namespace: str, name: str, key: str) -> str:
    data = json.loads(kube.kubectl("get", "secret", name, "-n", namespace, "-o", "json").stdout)
    return base64.b64decode(data["data"][key]).decode()


def example_monitor(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The example ModelMonitor with a few spec fields overridden (e.g. test-sized timings)."""
    monitor: dict[str, Any] = yaml.safe_load(EXAMPLE_MONITOR.read_text())
    return _merge(monitor, {"spec": overrides})


def apply(kube: Kube, manifest: Mapping[str, Any], namespace: str) -> None:
    kube.kubectl(
        "apply", "--server-side", f"--namespace={namespace}", "-f", "-", input=json.dumps(manifest)
    )


def get(kube: Kube, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    completed = kube.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if completed.returncode != 0:
        if "NotFound" in completed.stderr:
            return None
        raise RuntimeError(completed.stderr.strip())
    found: dict[str, Any] = json.loads(completed.stdout)
    return found


def wait_for(
    kube: Kube, kind: str, name: str, namespace: str, *, until: Any = bool, timeout: float = 60
) -> dict[str, Any]:
    """Poll the object until `until(obj)` holds."""
    deadline = time.monotonic() + timeout
    found: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        found = get(kube, kind, name, namespace)
        if found is not None and until(found):
            return found
        time.sleep(0.5)
    raise TimeoutError(f"{kind}/{name} in {namespace} never got there; last seen: {found}")


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for item in obj.get("status", {}).get("conditions", []):
        if item.get("type") == kind:
            found: dict[str, Any] = item
            return found
    return None


def create_job_from_cronjob(kube: Kube, namespace: str, cronjob: str, job: str) -> dict[str, Any]:
    """What a person does to run a CronJob now; the Job carries the CronJob's pod template."""
    kube.kubectl("create", "job", job, f"--from=cronjob/{cronjob}", "-n", namespace)
    created = get(kube, "job", job, namespace)
    assert created is not None
    return created


def rules_file(prometheus_rule: Mapping[str, Any], path: Path) -> Path:
    """The rule groups of a PrometheusRule object, as a Prometheus rule file."""
    path.write_text(yaml.safe_dump({"groups": prometheus_rule["spec"]["groups"]}, sort_keys=False))
    return path


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
