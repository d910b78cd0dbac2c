"""The ModelMonitor status the drift job owns: `status.drift` and the `DriftDetected` condition.

Pure functions: the outcome of a run and the monitor's previous status in, the server-side
apply body out (docs/contracts.md). Server-side apply removes fields a manager stops sending,
so what must survive a failed run (the last successful run time, the condition's transition
time when the condition did not change) is carried over from the previous status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from drift_job.findings import (
    FairnessResult,
    PredictionDrift,
    QualityOutcome,
    fairness_to_json,
    prediction_to_json,
    quality_to_json,
)
from drift_job.normalise import DriftResult, Rows, feature_to_json, rfc3339
from drift_job.reports import ReportFiles

API_VERSION = "monitoring.mlops.dev/v1alpha1"
KIND = "ModelMonitor"
CONDITION_TYPE = "DriftDetected"

RunResult = Literal["Completed", "InsufficientData", "Failed"]
Reason = Literal[
    "DatasetDrift",
    "NoDrift",
    "InsufficientData",
    "StoreUnavailable",
    "ReferenceMissing",
    "InvalidConfiguration",
    "Error",
]


@dataclass(frozen=True)
class Outcome:
    """What one run found, whatever happened; the CLI prints it and the status records it."""

    result: RunResult
    reason: Reason
    message: str
    finished_at: datetime
    exit_code: int
    drift: DriftResult | None = None
    model_version: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    rows: Rows | None = None
    reports: ReportFiles | None = None
    # The run's page in the Evidently UI, when the run went to a workspace a UI serves.
    report_url: str | None = None
    prediction: PredictionDrift | None = None
    reference_decision_shares: Mapping[str, float] = field(default_factory=dict)
    quality: QualityOutcome | None = None
    fairness: FairnessResult | None = None


def condition_status(outcome: Outcome) -> Literal["True", "False", "Unknown"]:
    if outcome.drift is None:
        return "Unknown"
    return "True" if outcome.drift.dataset_drift else "False"


def build_drift_status(outcome: Outcome, previous: Mapping[str, Any]) -> dict[str, Any]:
    """`status.drift` for this outcome. `previous` is the monitor's current `status`."""
    last_run = rfc3339(outcome.finished_at)
    previous_drift = previous.get("drift") or {}
    drift: dict[str, Any] = {
        "result": outcome.result,
        "message": outcome.message,
        "lastRunTime": last_run,
    }
    if outcome.result == "Completed":
        drift["lastSuccessfulRunTime"] = last_run
    elif previous_drift.get("lastSuccessfulRunTime"):
        drift["lastSuccessfulRunTime"] = previous_drift["lastSuccessfulRunTime"]
    if outcome.window_start is not None and outcome.window_end is not None:
        drift["windowStart"] = rfc3339(outcome.window_start)
        drift["windowEnd"] = rfc3339(outcome.window_end)
    if outcome.model_version is not None:
        drift["modelVersion"] = outcome.model_version
    if outcome.rows is not None:
        drift["rows"] = {
            "reference": outcome.rows.reference,
            "current": outcome.rows.current,
            "sampled": outcome.rows.sampled,
        }
    if outcome.drift is not None:
        result = outcome.drift
        drift["datasetDrift"] = result.dataset_drift
        drift["driftShare"] = round(result.drift_share, 6)
        drift["driftedColumns"] = result.drifted_columns
        drift["columns"] = len(result.columns)
        drift["features"] = [feature_to_json(column) for column in result.columns]
    if outcome.prediction is not None:
        drift["prediction"] = prediction_to_json(outcome.prediction)
    if outcome.reference_decision_shares:
        drift["referenceDecisionShares"] = dict(outcome.reference_decision_shares)
    report = report_to_json(outcome)
    if report:
        drift["report"] = report
    return drift


def report_to_json(outcome: Outcome) -> dict[str, str]:
    """`status.drift.report`: the saved files' paths and the run's page in the UI, if any."""
    report: dict[str, str] = {}
    if outcome.reports is not None:
        report |= {"json": str(outcome.reports.json), "html": str(outcome.reports.html)}
    if outcome.report_url is not None:
        report["url"] = outcome.report_url
    return report


def build_quality_status(outcome: Outcome) -> dict[str, Any] | None:
    """`status.quality`, when the run judged the quality."""
    if outcome.quality is None:
        return None
    return {"lastRunTime": rfc3339(outcome.finished_at), **quality_to_json(outcome.quality)}


def build_fairness_status(outcome: Outcome) -> dict[str, Any] | None:
    """`status.fairness`, when the run judged fairness."""
    if outcome.fairness is None:
        return None
    return {"lastRunTime": rfc3339(outcome.finished_at), **fairness_to_json(outcome.fairness)}


def build_condition(outcome: Outcome, previous: Mapping[str, Any]) -> dict[str, Any]:
    """The DriftDetected condition; its transition time moves only when its status changes."""
    status = condition_status(outcome)
    transition = rfc3339(outcome.finished_at)
    for condition in previous.get("conditions") or []:
        if condition.get("type") == CONDITION_TYPE and condition.get("status") == status:
            transition = condition.get("lastTransitionTime") or transition
    return {
        "type": CONDITION_TYPE,
        "status": status,
        "reason": outcome.reason,
        "message": outcome.message,
        "lastTransitionTime": transition,
    }


def build_status_apply(
    name: str, namespace: str, outcome: Outcome, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """The server-side apply body for the status subresource, field manager `drift-job`."""
    status: dict[str, Any] = {
        "conditions": [build_condition(outcome, previous)],
        "drift": build_drift_status(outcome, previous),
    }
    # A run that judged no quality (or fairness) leaves the last judgement where it is: server-
    # side apply would remove a field this manager stops sending, so it is sent again.
    for key, built in (
        ("quality", build_quality_status(outcome)),
        ("fairness", build_fairness_status(outcome)),
    ):
        if built is not None:
            status[key] = built
        elif previous.get(key):
            status[key] = previous[key]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "status": status,
    }
