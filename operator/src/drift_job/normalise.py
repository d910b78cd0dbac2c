"""Evidently's snapshot, reduced to the verdict the status carries: pure functions, no I/O.

Per column: the statistical test, its score and threshold, and drifted 0/1 decided the way
Evidently decides it (p-values below the threshold, distances at or above it). Per dataset: the
share of drifted columns against the configured drift share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drift_job.stattests import find_stattest, is_drifted

VALUE_DRIFT_TYPE = "evidently:metric_v2:ValueDrift"
DRIFTED_COLUMNS_TYPE = "evidently:metric_v2:DriftedColumnsCount"
# A column with no values in the current window cannot be tested; it counts as drifted.
MISSING_STATTEST = "missing in current data"


class SnapshotFormatError(ValueError):
    """The snapshot does not have the shape Evidently 0.7 gives; names what is missing."""


@dataclass(frozen=True)
class ColumnDrift:
    name: str
    stattest: str
    score: float | None
    threshold: float | None
    drifted: bool


@dataclass(frozen=True)
class Rows:
    reference: int
    current: int  # rows in the window
    compared: int  # rows of the window handed to Evidently (a sample when sampled)
    sampled: bool


@dataclass(frozen=True)
class DriftResult:
    model: str
    model_version: str
    window_start: datetime
    window_end: datetime
    rows: Rows
    columns: tuple[ColumnDrift, ...]
    drift_share_threshold: float

    @property
    def drifted_columns(self) -> int:
        return sum(column.drifted for column in self.columns)

    @property
    def drift_share(self) -> float:
        return self.drifted_columns / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.drift_share >= self.drift_share_threshold

    @property
    def drifted_names(self) -> list[str]:
        return [column.name for column in self.columns if column.drifted]

    def summary(self) -> str:
        """One line, e.g. `4 of 20 columns drifted (share 0.20 >= 0.50? no)`."""
        verdict = "yes" if self.dataset_drift else "no"
        line = (
            f"{self.drifted_columns} of {len(self.columns)} columns drifted "
            f"(share {self.drift_share:.2f} >= {self.drift_share_threshold:.2f}? {verdict})"
        )
        if self.rows.sampled:
            line += (
                f"; compared a uniform sample of {self.rows.compared} of {self.rows.current} rows"
            )
        return line


def column_drift_from_metric(metric: Mapping[str, Any]) -> ColumnDrift:
    """One `ValueDrift` metric of the snapshot's dict() as a ColumnDrift."""
    config = metric.get("config")
    if not isinstance(config, Mapping):
        raise SnapshotFormatError(f"ValueDrift metric without config: {metric.get('metric_name')}")
    name = config.get("column")
    method = config.get("method")
    threshold = config.get("threshold")
    score = metric.get("value")
    if not isinstance(name, str) or not isinstance(method, str):
        raise SnapshotFormatError(f"ValueDrift metric without column or method: {config}")
    if not isinstance(threshold, int | float) or not isinstance(score, int | float):
        raise SnapshotFormatError(f"ValueDrift metric for {name!r} without a numeric score")
    test = find_stattest(method)
    score, threshold = float(score), float(threshold)
    # Evidently reports a NaN score when a test cannot be computed; it never signals drift.
    drifted = not math.isnan(score) and is_drifted(score, threshold, test.score)
    return ColumnDrift(name, test.display_name, score, threshold, drifted)


def columns_from_snapshot(snapshot: Mapping[str, Any]) -> list[ColumnDrift]:
    """Every column Evidently tested, from `Snapshot.dict()`."""
    metrics = snapshot.get("metrics")
    if not isinstance(metrics, list):
        raise SnapshotFormatError("snapshot without a metrics list")
    return [
        column_drift_from_metric(metric)
        for metric in metrics
        if isinstance(metric, Mapping) and _metric_type(metric) == VALUE_DRIFT_TYPE
    ]


def evidently_drifted_count(snapshot: Mapping[str, Any]) -> int | None:
    """Evidently's own count of drifted columns (DriftedColumnsCount), to cross-check ours."""
    for metric in snapshot.get("metrics", []):
        if isinstance(metric, Mapping) and _metric_type(metric) == DRIFTED_COLUMNS_TYPE:
            value = metric.get("value")
            if isinstance(value, Mapping) and isinstance(value.get("count"), int | float):
                return int(value["count"])
    return None


def missing_columns(names: Iterable[str]) -> list[ColumnDrift]:
    return [ColumnDrift(name, MISSING_STATTEST, None, None, True) for name in names]


def build_result(
    *,
    model: str,
    model_version: str,
    window_start: datetime,
    window_end: datetime,
    rows: Rows,
    columns: Sequence[ColumnDrift],
    drift_share_threshold: float,
) -> DriftResult:
    return DriftResult(
        model=model,
        model_version=model_version,
        window_start=window_start,
        window_end=window_end,
        rows=rows,
        columns=tuple(sorted(columns, key=lambda column: column.name)),
        drift_share_threshold=drift_share_threshold,
    )


def result_to_json(result: DriftResult) -> dict[str, Any]:
    """The `--output json` document: the status fields plus what only a person reading needs."""
    return {
        "model": result.model,
        "modelVersion": result.model_version,
        "windowStart": rfc3339(result.window_start),
        "windowEnd": rfc3339(result.window_end),
        "rows": {
            "reference": result.rows.reference,
            "current": result.rows.current,
            "compared": result.rows.compared,
            "sampled": result.rows.sampled,
        },
        "datasetDrift": result.dataset_drift,
        "driftShare": round(result.drift_share, 6),
        "driftShareThreshold": result.drift_share_threshold,
        "driftedColumns": result.drifted_columns,
        "columns": len(result.columns),
        "features": [feature_to_json(column) for column in result.columns],
        "summary": result.summary(),
    }


def feature_to_json(column: ColumnDrift) -> dict[str, Any]:
    """One entry of status.drift.features; a column that could not be scored has no score."""
    entry: dict[str, Any] = {"name": column.name, "stattest": column.stattest}
    # JSON (and so the Kubernetes API) has no NaN or infinity: such a score is left out.
    if column.score is not None and math.isfinite(column.score):
        entry["score"] = column.score
    if column.threshold is not None:
        entry["threshold"] = column.threshold
    entry["drifted"] = column.drifted
    return entry


def _metric_type(metric: Mapping[str, Any]) -> str | None:
    config = metric.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("type"), str):
        return str(config["type"])
    return None


def rfc3339(moment: datetime) -> str:
    """UTC, whole seconds, `Z`: what Kubernetes writes and the CRD's date-time format accepts."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
