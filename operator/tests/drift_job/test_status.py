"""The status body the job applies: shape per docs/contracts.md, and what survives a failure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    completed = dataclasses.replace(_completed(T0, drifted=1), report_url=url)
    drift = build_status_apply("credit", "risk", completed, previous={})["status"]["drift"]
    assert drift["report"] == {"json": "/reports/a.json", "html": "/reports/a.html", "url": url}
    # Too little data is a run in the UI too: the status links it.
    insufficient = dataclasses.replace(_insufficient(T0), report_url=url)
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
