"""The status body the job applies: shape per docs/contracts.md, and what survives a failure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drift_job.findings import (
    AttributeFairness,
    FairnessResult,
    GroupFairness,
    QualityMetrics,
    QualityOutcome,
)
from drift_job.normalise import ColumnDrift, Rows, build_result
from drift_job.reports import ReportFiles
from drift_job.status import Outcome, build_status_apply

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _completed(at: datetime, drifted: int) -> Outcome:
    columns = [ColumnDrift(f"c{i}", "K-S p_value", 0.001, 0.05, i < drifted) for i in range(4)]
    rows = Rows(reference=800, current=1234, compared=800, sampled=True)
    result = build_result(
        model="credit-score",
        model_version="1",
        window_start=at - timedelta(hours=1),
        window_end=at,
        rows=rows,
        columns=columns,
        drift_share_threshold=0.5,
    )
    return Outcome(
        result="Completed",
        reason="DatasetDrift" if result.dataset_drift else "NoDrift",
        message=result.summary(),
        finished_at=at,
        exit_code=0,
        drift=result,
        model_version="1",
        window_start=at - timedelta(hours=1),
        window_end=at,
        rows=rows,
        reports=ReportFiles(json=Path("/reports/a.json"), html=Path("/reports/a.html")),
    )


def _insufficient(at: datetime) -> Outcome:
    return Outcome(
        result="InsufficientData",
        reason="InsufficientData",
        message="12 predictions; at least 200 needed",
        finished_at=at,
        exit_code=3,
        model_version="1",
        window_start=at - timedelta(hours=1),
        window_end=at,
        rows=Rows(reference=800, current=12, compared=12, sampled=False),
    )


def test_a_completed_run_writes_the_contract_shape() -> None:
    body = build_status_apply("credit", "risk", _completed(T0, drifted=2), previous={})
    assert body["apiVersion"] == "monitoring.mlops.dev/v1alpha1"
    assert body["kind"] == "ModelMonitor"
    assert body["metadata"] == {"name": "credit", "namespace": "risk"}
    (condition,) = body["status"]["conditions"]
    assert condition == {
        "type": "DriftDetected",
        "status": "True",
        "reason": "DatasetDrift",
        "message": "2 of 4 columns drifted (share 0.50 >= 0.50? yes); "
        "compared a uniform sample of 800 of 1234 rows",
        "lastTransitionTime": "2026-01-01T12:00:00Z",
    }
    drift = body["status"]["drift"]
    assert drift["result"] == "Completed"
    assert drift["lastRunTime"] == drift["lastSuccessfulRunTime"] == "2026-01-01T12:00:00Z"
    assert drift["windowStart"] == "2026-01-01T11:00:00Z"
    assert drift["rows"] == {"reference": 800, "current": 1234, "sampled": True}
    assert drift["datasetDrift"] is True
    assert drift["driftShare"] == 0.5
    assert drift["driftedColumns"] == 2
    assert drift["columns"] == 4
    assert drift["features"][0] == {
        "name": "c0",
        "stattest": "K-S p_value",
        "score": 0.001,
        "threshold": 0.05,
        "drifted": True,
    }
    assert drift["report"] == {"json": "/reports/a.json", "html": "/reports/a.html"}


def test_insufficient_data_is_unknown_and_keeps_the_last_success() -> None:
    first = build_status_apply("credit", "risk", _completed(T0, drifted=0), previous={})
    later = T0 + timedelta(minutes=15)
    body = build_status_apply("credit", "risk", _insufficient(later), previous=first["status"])
    (condition,) = body["status"]["conditions"]
    assert condition["status"] == "Unknown"
    assert condition["reason"] == "InsufficientData"
    assert condition["lastTransitionTime"] == "2026-01-01T12:15:00Z"
    drift = body["status"]["drift"]
    assert drift["result"] == "InsufficientData"
    assert drift["lastRunTime"] == "2026-01-01T12:15:00Z"
    assert drift["lastSuccessfulRunTime"] == "2026-01-01T12:00:00Z"
    assert drift["rows"]["current"] == 12
    # No verdict from this run: the drift fields are not claimed.
    assert not {"datasetDrift", "driftShare", "features", "report"} & set(drift)


def test_a_run_in_the_ui_links_its_page_whatever_it_found() -> None:
    url = "http://reports.example/projects/p/reports/r"
    completed = replace(_completed(T0, drifted=1), report_url=url)
    drift = build_status_apply("credit", "risk", completed, previous={})["status"]["drift"]
    assert drift["report"] == {"json": "/reports/a.json", "html": "/reports/a.html", "url": url}
    # Too little data is a run in the UI too: the status links it.
    insufficient = replace(_insufficient(T0), report_url=url)
    drift = build_status_apply("credit", "risk", insufficient, previous={})["status"]["drift"]
    assert drift["report"] == {"url": url}


def test_the_transition_time_moves_only_when_the_condition_changes() -> None:
    first = build_status_apply("credit", "risk", _completed(T0, drifted=3), previous={})
    same = build_status_apply(
        "credit", "risk", _completed(T0 + timedelta(hours=1), drifted=4), previous=first["status"]
    )
    assert same["status"]["conditions"][0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    changed = build_status_apply(
        "credit", "risk", _completed(T0 + timedelta(hours=2), drifted=0), previous=same["status"]
    )
    assert changed["status"]["conditions"][0]["status"] == "False"
    assert changed["status"]["conditions"][0]["lastTransitionTime"] == "2026-01-01T14:00:00Z"


def test_a_failure_without_any_result_still_says_why() -> None:
    outcome = Outcome(
        result="Failed",
        reason="StoreUnavailable",
        message="store unavailable: connection refused",
        finished_at=T0,
        exit_code=4,
    )
    body = build_status_apply("credit", "risk", outcome, previous={})
    assert body["status"]["drift"] == {
        "result": "Failed",
        "message": "store unavailable: connection refused",
        "lastRunTime": "2026-01-01T12:00:00Z",
    }
    assert body["status"]["conditions"][0]["reason"] == "StoreUnavailable"
    assert body["status"]["conditions"][0]["status"] == "Unknown"


def test_quality_and_fairness_are_written_when_judged_and_kept_when_not() -> None:
    quality = QualityOutcome(
        result="Completed",
        message="300 of 900 predictions labelled; ROC AUC 0.810",
        window_start=T0 - timedelta(days=1),
        window_end=T0,
        positive_class="bad",
        decision_threshold=0.5,
        predictions=900,
        labelled=300,
        sampled=False,
        metrics=QualityMetrics(300, 0.81, 0.5, None, 0.4, 0.17, 0.05, 0.3, 0.2),
    )
    fairness = FairnessResult(
        "good",
        30,
        (
            AttributeFairness(
                "foreign_worker",
                "no",
                (
                    GroupFairness("no", 40, 0.8, 0.0, 1.0),
                    GroupFairness("yes", 200, 0.4, -0.4, 0.5),
                ),
                ungrouped_rows=0,
                enough_rows=True,
                disparity=True,
            ),
        ),
    )
    judged = replace(_completed(T0, drifted=0), quality=quality, fairness=fairness)
    status = build_status_apply("credit-score", "risk", judged, {})["status"]
    assert status["quality"] == {
        "lastRunTime": "2026-01-01T12:00:00Z",
        "result": "Completed",
        "message": "300 of 900 predictions labelled; ROC AUC 0.810",
        "windowStart": "2025-12-31T12:00:00Z",
        "windowEnd": "2026-01-01T12:00:00Z",
        "positiveClass": "bad",
        "decisionThreshold": 0.5,
        "rows": {"predictions": 900, "labelled": 300, "compared": 300, "sampled": False},
        "labelCoverage": 0.3333,
        "rocAuc": 0.81,
        "precision": 0.5,
        "f1": 0.4,
        "brierScore": 0.17,
        "calibrationError": 0.05,
        "actualPositiveRate": 0.3,
        "predictedPositiveRate": 0.2,
    }
    assert status["fairness"]["verdict"] == "Disparity"
    assert status["fairness"]["message"] == (
        "Disparity: foreign_worker (disparity; disparate impact vs no: yes 0.50)"
    )
    assert status["fairness"]["attributes"][0]["groups"][1] == {
        "name": "yes",
        "rows": 200,
        "selectionRate": 0.4,
        "statisticalParityDifference": -0.4,
        "disparateImpactRatio": 0.5,
        "labelled": 0,
    }
    # A failed run judges nothing: the last judgements stay (server-side apply would drop them).
    failed = Outcome("Failed", "StoreUnavailable", "store unavailable", T0, 4)
    later = build_status_apply("credit-score", "risk", failed, status)["status"]
    assert later["quality"] == status["quality"]
    assert later["fairness"] == status["fairness"]
