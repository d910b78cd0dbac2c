"""The operator against a real control plane (localkube), with the RBAC the chart grants.

The operator runs as a process (`modelmonitor run`) authenticated as a ServiceAccount that holds
exactly the chart's ClusterRoles and is bound by the chart's admission policies (rendered with
`helm template` from charts/monitoring), so a permission the operator lacks, or a child the
policies would refuse, fails here as it would in a cluster.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localkube.kube import Kube, KubectlError
from localkube.waiting import wait_for

from .operator_process import (
    CHILD_KINDS,
    CRD,
    RESYNC_SECONDS,
    OperatorProcess,
    apply,
    children,
    condition,
    get_json,
    operator_identity,
)
from .support import EXAMPLE, invalid_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def crd(kube: Kube) -> None:
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD))


@pytest.fixture(scope="module")
def operator(
    kube: Kube, crd: None, helm_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    release = f"mm-{uuid.uuid4().hex[:6]}"
    namespace, account = operator_identity(kube, helm_binary, release)
    kubeconfig = kube.service_account_kubeconfig(namespace, account)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    running = OperatorProcess(kubeconfig, "mmtest-*", log)
    yield running
    running.stop()


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"mmtest-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false")


def _ready_monitor(kube: Kube, namespace: str) -> dict[str, Any]:
    apply(kube, namespace, yaml.safe_load(EXAMPLE.read_text()))

    def ready() -> dict[str, Any] | None:
        monitor = get_json(kube, "-n", namespace, "modelmonitor", "credit-score")
        found = len(children(kube, namespace)) == len(CHILD_KINDS)
        return monitor if found and condition(monitor, "Ready").get("status") == "True" else None

    monitor: dict[str, Any] = wait_for(ready, timeout=20, what="a Ready monitor with 6 children")
    return monitor


def test_valid_monitor_gets_owned_children_within_seconds(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    started = time.monotonic()
    monitor = _ready_monitor(kube, namespace)
    assert time.monotonic() - started < 10
    uid = monitor["metadata"]["uid"]
    for child in children(kube, namespace):
        owners = child["metadata"]["ownerReferences"]
        assert [(o["kind"], o["uid"], o["controller"]) for o in owners] == [
            ("ModelMonitor", uid, True)
        ]
    status = monitor["status"]
    assert status["observedGeneration"] == monitor["metadata"]["generation"]
    assert {c["kind"] for c in status["children"]} == {
        "ServiceAccount", "Role", "RoleBinding", "CronJob", "PrometheusRule", "ConfigMap",
    }  # fmt: skip
    assert condition(monitor, "Degraded")["status"] == "False"
    cronjob = get_json(kube, "-n", namespace, "cronjob", "credit-score-drift")
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "drift-job:test"
    )
    printed = kube.kubectl("get", "-n", namespace, "mm").stdout
    assert re.search(r"credit-score\s+True", printed), printed


def test_invalid_monitor_is_rejected_or_reported_on_its_field(
    kube: Kube, operator: OperatorProcess, namespace: str, invalid_case: dict[str, Any]
) -> None:
    manifest = invalid_manifest(invalid_case)
    field = invalid_case["field"]
    if invalid_case["schema"]:
        with pytest.raises(KubectlError) as rejected:
            apply(kube, namespace, manifest)
        assert field.rsplit(".", 1)[-1].split("[")[0] in rejected.value.stderr
        return
    apply(kube, namespace, manifest)

    def reported() -> dict[str, Any] | None:
        monitor = get_json(kube, "-n", namespace, "modelmonitor", "broken")
        invalid = condition(monitor, "InvalidSpec")
        return invalid if invalid.get("status") == "True" else None

    try:
        invalid = wait_for(reported, timeout=15, what=f"InvalidSpec for {field}")
        assert invalid["message"].startswith(f"{field}: ")
        assert children(kube, namespace) == []
        assert operator.process.poll() is None
        # A permanent error is not retried: no further reconciles of it after the first.
        count = operator.metric('modelmonitor_reconcile_total{result="invalid"}')
        time.sleep(2)
        assert operator.metric('modelmonitor_reconcile_total{result="invalid"}') <= count + 1
    finally:
        # The counter is the operator's: the broken monitors of the cases before this one
        # would add their resyncs to it, were they left to the namespace's slow deletion.
        kube.kubectl("delete", "modelmonitor", "broken", "-n", namespace, "--wait=true")


def test_editing_the_spec_converges_the_children(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    _ready_monitor(kube, namespace)
    patch = {"spec": {"dashboard": {"enabled": False}, "drift": {"schedule": "0 * * * *"}}}
    kube.kubectl(
        "patch", "-n", namespace, "mm", "credit-score", "--type=merge", "-p", json.dumps(patch)
    )

    def converged() -> bool:
        kinds = {c["kind"] for c in children(kube, namespace)}
        cronjob = get_json(kube, "-n", namespace, "cronjob", "credit-score-drift")
        return "ConfigMap" not in kinds and cronjob["spec"]["schedule"] == "0 * * * *"

    wait_for(converged, timeout=15, what="dashboard pruned and schedule changed")


def test_a_deleted_child_comes_back_within_seconds(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    _ready_monitor(kube, namespace)
    old = get_json(kube, "-n", namespace, "prometheusrule", "credit-score-rules")
    kube.kubectl("delete", "-n", namespace, "prometheusrule", "credit-score-rules")
    started = time.monotonic()

    def recreated() -> bool:
        found = kube.kubectl(
            "get", "-n", namespace, "prometheusrule", "credit-score-rules", "-o", "json",
            check=False,
        )  # fmt: skip
        return (
            found.returncode == 0
            and json.loads(found.stdout)["metadata"]["uid"] != (old["metadata"]["uid"])
        )

    wait_for(recreated, timeout=10, what="the deleted PrometheusRule back")
    assert time.monotonic() - started < 5


def test_an_edited_child_is_put_back(kube: Kube, operator: OperatorProcess, namespace: str) -> None:
    _ready_monitor(kube, namespace)
    patch = {"spec": {"schedule": "1 1 1 1 1", "concurrencyPolicy": "Allow"}}
    kube.kubectl(
        "patch", "-n", namespace, "cronjob", "credit-score-drift", "--type=merge",
        "-p", json.dumps(patch),
    )  # fmt: skip

    def repaired() -> bool:
        spec = get_json(kube, "-n", namespace, "cronjob", "credit-score-drift")["spec"]
        return bool(spec["schedule"] == "*/15 * * * *" and spec["concurrencyPolicy"] == "Forbid")

    wait_for(repaired, timeout=3 * RESYNC_SECONDS, what="the edited CronJob repaired")


def test_a_converged_resync_makes_no_writes(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    _ready_monitor(kube, namespace)
    # The operator is shared: let the deletion of earlier tests' namespaces finish (each child
    # the namespace controller deletes wakes a reconcile, refused with a write attempted), then
    # this creation's follow-up reconciles (no write for a whole resync interval).
    wait_for(
        lambda: _other_test_namespaces(kube, namespace) == [] or None,
        timeout=180,
        what="earlier tests' namespaces deleted",
    )
    wait_for(
        lambda: _no_writes_for(operator, RESYNC_SECONDS) or None,
        timeout=120,
        what="a resync interval without operator writes",
    )
    before = operator.metric("modelmonitor_api_writes_total")
    reconciles = operator.metric("modelmonitor_reconcile_total")
    time.sleep(2.5 * RESYNC_SECONDS)
    assert operator.metric("modelmonitor_reconcile_total") > reconciles  # resyncs did run
    assert operator.metric("modelmonitor_api_writes_total") == before


def _other_test_namespaces(kube: Kube, namespace: str) -> list[str]:
    names = kube.kubectl("get", "namespaces", "-o", "name").stdout.split()
    return [n for n in names if n.startswith("namespace/mmtest-") and n != f"namespace/{namespace}"]


def _no_writes_for(operator: OperatorProcess, seconds: float) -> bool:
    before = operator.metric("modelmonitor_api_writes_total")
    time.sleep(seconds)
    return operator.metric("modelmonitor_api_writes_total") == before


def test_deleting_the_monitor_collects_every_child(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    _ready_monitor(kube, namespace)
    kube.kubectl("delete", "-n", namespace, "mm", "credit-score")
    wait_for(
        lambda: children(kube, namespace) == [],
        timeout=60,
        what="garbage collection of the children",
    )


def test_a_missing_permission_shows_as_degraded(
    kube: Kube, crd: None, helm_binary: Path, tmp_path: Path
) -> None:
    release = f"mmdeny-{uuid.uuid4().hex[:6]}"
    identity = operator_identity(kube, helm_binary, release, drop="configmaps")
    watched = f"mmdeny-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", watched)
    limited = OperatorProcess(
        kube.service_account_kubeconfig(*identity), watched, tmp_path / "operator.log"
    )
    try:
        apply(kube, watched, yaml.safe_load(EXAMPLE.read_text()))

        def degraded() -> dict[str, Any] | None:
            monitor = get_json(kube, "-n", watched, "modelmonitor", "credit-score")
            found = condition(monitor, "Degraded")
            return found if found.get("status") == "True" else None

        found = wait_for(degraded, timeout=20, what="a Degraded condition")
        assert found["reason"] == "Forbidden"
        assert "configmaps" in found["message"]
        kinds = {c["kind"] for c in children(kube, watched)}
        assert "CronJob" in kinds  # what it may create, it still creates
    finally:
        limited.stop()
        kube.kubectl("delete", "namespace", watched, "--wait=false")


def test_foreground_deletion_is_not_fought(
    kube: Kube, operator: OperatorProcess, namespace: str
) -> None:
    """While the collector deletes the children first, the operator must not put them back."""
    _ready_monitor(kube, namespace)
    kube.kubectl(
        "delete", "-n", namespace, "mm", "credit-score", "--cascade=foreground", "--wait=false"
    )

    def gone() -> bool:
        found = kube.kubectl("get", "-n", namespace, "mm", "credit-score", check=False)
        return found.returncode != 0 and children(kube, namespace) == []

    wait_for(gone, timeout=60, what="the monitor and its children deleted in the foreground")
