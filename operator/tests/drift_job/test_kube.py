"""The status patch against a real control plane, as the ServiceAccount the operator renders.

The CRD comes from manifests/crds, the ServiceAccount/Role/RoleBinding from the operator's own
renderer, and the job authenticates with that ServiceAccount's token: RBAC is real, so the job
can write its own monitor's status and gets 403 for any other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from lightkube import Client, KubeConfig

from drift_job.cli import main
from drift_job.kube import FIELD_MANAGER, StatusWriteError, write_status
from drift_job.status import Outcome
from localkube.kube import Kube
from modelmonitor.naming import drift_job_name
from modelmonitor.render.rbac import render_role, render_role_binding, render_service_account
from modelmonitor.spec import parse_monitor
from prediction_store import ReferenceOutput

from .conftest import MODEL, Store, german_credit_labels

pytestmark = pytest.mark.cluster

REPO = Path(__file__).parents[3]
CRD = REPO / "manifests" / "crds" / "modelmonitors.monitoring.mlops.dev.yaml"
EXAMPLE = REPO / "manifests" / "examples" / "credit-score-monitor.yaml"


def _apply(kube: Kube, *documents: dict[str, Any]) -> None:
    kube.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(documents))


def _monitor(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    result = kube.kubectl(
        "get", "modelmonitor", name, "-n", namespace, "-o", "json", "--show-managed-fields"
    )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture
def monitors(kube: Kube, kube_namespace: str) -> Callable[[str], Path]:
    """Create monitors with the drift job's RBAC; returns their ServiceAccount kubeconfigs."""
    kube.kubectl("apply", "--server-side", "-f", str(CRD))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD))
    example = yaml.safe_load(EXAMPLE.read_text())

    def create(name: str) -> Path:
        manifest = {**example, "metadata": {"name": name, "namespace": kube_namespace}}
        _apply(kube, manifest)
        monitor = parse_monitor(manifest)
        _apply(
            kube,
            render_service_account(monitor),
            render_role(monitor),
            render_role_binding(monitor),
        )
        return kube.service_account_kubeconfig(kube_namespace, drift_job_name(monitor.name))

    return create


def _client(kubeconfig: Path) -> Client:
    return Client(config=KubeConfig.from_file(kubeconfig), field_manager=FIELD_MANAGER)


def test_the_job_writes_its_monitors_status_with_its_own_service_account(
    kube: Kube,
    kube_namespace: str,
    monitors: Callable[[str], Path],
    sqlite_store: Store,
    german_credit: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubeconfig = monitors("credit-score")
    # The operator's own status fields, written first under its field manager, must survive.
    kube.kubectl(
        "patch", "modelmonitor", "credit-score", "-n", kube_namespace,
        "--subresource=status", "--type=merge", "--field-manager=modelmonitor",
        "-p", json.dumps({"status": {"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Applied", "message": "ok",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
    )  # fmt: skip
    sqlite_store.register(german_credit[german_credit.age_in_years < 40])
    sqlite_store.add_predictions(german_credit[german_credit.age_in_years >= 40])
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    args = ["--store-url", sqlite_store.url, "--model", MODEL, "--min-rows", "100"]
    code = main([*args, "--monitor", "credit-score", "--namespace", kube_namespace])
    assert code == 0, capsys.readouterr().err

    status = _monitor(kube, kube_namespace, "credit-score")["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert status["observedGeneration"] == 1
    assert conditions["DriftDetected"]["status"] == "True"
    assert conditions["DriftDetected"]["reason"] == "DatasetDrift"
    drift = status["drift"]
    assert drift["result"] == "Completed"
    assert drift["datasetDrift"] is True
    assert drift["rows"] == {"reference": 701, "current": 299, "sampled": False}
    features = {f["name"]: f for f in drift["features"]}
    assert features["age_in_years"]["drifted"] is True
    assert drift["driftedColumns"] == sum(f["drifted"] for f in features.values())

    # A later run with too little data: Unknown, the last success kept, the verdict withdrawn;
    # the status says so, and the run (as a CronJob's Job) succeeds.
    code = main([*args, "--min-rows", "5000", "--monitor", "credit-score", "--namespace",
                 kube_namespace])  # fmt: skip
    assert code == 0
    status = _monitor(kube, kube_namespace, "credit-score")["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["DriftDetected"]["status"] == "Unknown"
    assert conditions["DriftDetected"]["reason"] == "InsufficientData"
    assert conditions["Ready"]["status"] == "True"
    assert status["drift"]["result"] == "InsufficientData"
    assert status["drift"]["lastSuccessfulRunTime"] == drift["lastSuccessfulRunTime"]
    assert "datasetDrift" not in status["drift"]
    managers = {
        (entry["manager"], entry.get("subresource"))
        for entry in _monitor(kube, kube_namespace, "credit-score")["metadata"]["managedFields"]
    }
    assert ("drift-job", "status") in managers


def test_another_monitors_status_is_forbidden(
    kube_namespace: str, monitors: Callable[[str], Path]
) -> None:
    own = monitors("credit-score")
    monitors("fraud-score")
    outcome = Outcome(
        result="Failed",
        reason="StoreUnavailable",
        message="store unavailable",
        finished_at=pd.Timestamp("2026-01-01T00:00:00Z").to_pydatetime(),
        exit_code=4,
    )
    body = write_status("credit-score", kube_namespace, outcome, client=_client(own))
    assert body["status"]["drift"]["result"] == "Failed"
    with pytest.raises(StatusWriteError, match="403"):
        write_status("fraud-score", kube_namespace, outcome, client=_client(own))


def test_a_missing_monitor_is_a_clear_error_and_exit_4(
    kube_namespace: str,
    monitors: Callable[[str], Path],
    sqlite_store: Store,
    german_credit: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubeconfig = monitors("credit-score")
    sqlite_store.register(german_credit)
    sqlite_store.add_predictions(german_credit[:300])
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    code = main(["--store-url", sqlite_store.url, "--model", MODEL, "--monitor", "gone",
                 "--namespace", kube_namespace])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 4
    assert (
        f"the Kubernetes API refused to write the status of modelmonitor {kube_namespace}/gone:"
        " 403" in err
    )


def test_a_service_account_without_rbac_exits_4_and_still_prints_the_result(
    kube: Kube,
    kube_namespace: str,
    monitors: Callable[[str], Path],
    sqlite_store: Store,
    german_credit: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real 403: the monitor exists, but the job runs as a ServiceAccount no Role binds."""
    monitors("credit-score")
    kube.kubectl("create", "serviceaccount", "no-rbac", "-n", kube_namespace)
    kubeconfig = kube.service_account_kubeconfig(kube_namespace, "no-rbac")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    sqlite_store.register(german_credit[german_credit.age_in_years < 40])
    sqlite_store.add_predictions(german_credit[german_credit.age_in_years >= 40])
    args = ["--store-url", sqlite_store.url, "--model", MODEL, "--min-rows", "100"]
    code = main([*args, "--output", "json", "--monitor", "credit-score", "--namespace",
                 kube_namespace])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 4
    assert "Traceback" not in captured.err
    (line,) = [x for x in captured.err.splitlines() if "Kubernetes" in x]
    assert line == (
        "drift-job: the Kubernetes API refused to write the status of modelmonitor "
        f"{kube_namespace}/credit-score: 403 "
        f'modelmonitors.monitoring.mlops.dev "credit-score" is forbidden: User '
        f'"system:serviceaccount:{kube_namespace}:no-rbac" cannot get resource '
        f'"modelmonitors/status" in API group "monitoring.mlops.dev" in the namespace '
        f'"{kube_namespace}"'
    )
    result = json.loads(captured.out)
    assert result["result"] == "Completed"
    assert result["datasetDrift"] is True
    # Nothing was written: the monitor has no drift status.
    assert "drift" not in _monitor(kube, kube_namespace, "credit-score").get("status", {})


def test_quality_fairness_and_output_drift_reach_the_status_as_the_crd_declares_them(
    kube: Kube,
    kube_namespace: str,
    monitors: Callable[[str], Path],
    sqlite_store: Store,
    german_credit: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The job's whole status through the real API server: a field the CRD does not declare
    would be refused (server-side apply), a wrong type too."""
    kubeconfig = monitors("credit-score")
    labels = german_credit_labels()
    reference, current = german_credit.iloc[:500], german_credit.iloc[500:]
    sqlite_store.register(
        reference,
        outputs=[ReferenceOutput(0.2, "good")] * 400 + [ReferenceOutput(0.7, "bad")] * 100,
        decision_shares={"good": 0.8, "bad": 0.2},
        positive_class="bad",
        decision_threshold=0.5,
    )
    scores = np.linspace(0.05, 0.95, len(current))
    sqlite_store.add_predictions(
        current,
        scores=scores,
        decisions=["bad" if s >= 0.5 else "good" for s in scores],
        outcomes=list(labels.iloc[500:]),
    )
    fairness = {"favourableDecision": "good", "minRowsPerGroup": 10, "attributes": [
        {"feature": "age_in_years", "reference": "older",
         "bins": [{"name": "young", "below": 30}, {"name": "older"}]},
        {"feature": "foreign_worker", "reference": "no"}]}  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    code = main(["--store-url", sqlite_store.url, "--model", MODEL, "--min-rows", "100",
                 "--quality", "--quality-window", "1h", "--fairness", json.dumps(fairness),
                 "--monitor", "credit-score", "--namespace", kube_namespace])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    status = _monitor(kube, kube_namespace, "credit-score")["status"]
    assert status["drift"]["referenceDecisionShares"] == {"good": 0.8, "bad": 0.2}
    assert status["drift"]["prediction"]["drifted"] is True
    quality = status["quality"]
    assert quality["result"] == "Completed"
    assert quality["rows"]["labelled"] == 500
    assert 0 <= quality["rocAuc"] <= 1
    assert set(quality) >= {"brierScore", "calibrationError", "labelCoverage", "lastRunTime"}
    assert status["fairness"]["verdict"] in {"Fair", "Disparity"}
    names = [a["name"] for a in status["fairness"]["attributes"]]
    assert names == ["age_in_years", "foreign_worker"]
    columns = kube.kubectl("get", "mm", "credit-score", "-n", kube_namespace).stdout
    header, row = columns.splitlines()
    assert header.split()[:7] == ["NAME", "READY", "RULES", "TARGET", "DRIFT", "QUALITY", "FAIR"]
    assert f"{quality['rocAuc']:.3f}".rstrip("0")[:4] in row
    assert status["fairness"]["verdict"] in row.split()
