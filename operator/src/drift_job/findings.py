"""What a run found besides the feature drift, as plain data and its JSON: the model's output
drift, its quality from ground truth, fairness across groups.

Light on purpose (no pandas, Evidently or fairlearn): the CLI and the status writer import it
before any of those is loaded. The JSON is the `--output json` document's and the status's
(docs/contracts.md); a number that is not finite is left out (JSON has no NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from drift_job.normalise import ColumnDrift, feature_to_json, rfc3339

QualityResultName = Literal["Completed", "InsufficientLabels"]
FairnessVerdict = Literal["Fair", "Disparity", "InsufficientData"]


def _put(document: dict[str, Any], key: str, value: float | None, digits: int = 4) -> None:
    if value is not None and math.isfinite(value):
        document[key] = round(value, digits)


@dataclass(frozen=True)
class PredictionDrift:
    columns: tuple[ColumnDrift, ...]
    decision_shares: Mapping[str, float]  # the window's
    not_compared: str | None = None  # why an output was left out, for the message

    @property
    def drifted(self) -> bool:
        return any(column.drifted for column in self.columns)

    @property
    def drifted_names(self) -> list[str]:
        return [column.name for column in self.columns if column.drifted]


def prediction_to_json(result: PredictionDrift) -> dict[str, Any]:
    document: dict[str, Any] = {
        "drifted": result.drifted,
        "columns": [feature_to_json(column) for column in result.columns],
        "decisionShares": dict(result.decision_shares),
    }
    if result.not_compared:
        document["notCompared"] = result.not_compared
    return document


@dataclass(frozen=True)
class QualityMetrics:
    """The quality of `rows` labelled predictions. The four ranking and threshold metrics are
    None when the outcomes hold a single class (none of them is defined then)."""

    rows: int
    roc_auc: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    brier_score: float
    calibration_error: float
    actual_positive_rate: float
    predicted_positive_rate: float


@dataclass(frozen=True)
class QualityOutcome:
    result: QualityResultName
    message: str
    window_start: datetime
    window_end: datetime
    positive_class: str
    decision_threshold: float
    predictions: int
    labelled: int
    sampled: bool
    metrics: QualityMetrics | None = None

    @property
    def label_coverage(self) -> float:
        return self.labelled / self.predictions if self.predictions else 0.0


def quality_to_json(outcome: QualityOutcome) -> dict[str, Any]:
    """`status.quality` without the run times (the status adds them)."""
    document: dict[str, Any] = {
        "result": outcome.result,
        "message": outcome.message,
        "windowStart": rfc3339(outcome.window_start),
        "windowEnd": rfc3339(outcome.window_end),
        "positiveClass": outcome.positive_class,
        "decisionThreshold": outcome.decision_threshold,
        "rows": {
            "predictions": outcome.predictions,
            "labelled": outcome.labelled,
            "compared": outcome.metrics.rows if outcome.metrics else 0,
            "sampled": outcome.sampled,
        },
    }
    _put(document, "labelCoverage", outcome.label_coverage)
    metrics = outcome.metrics
    if metrics is not None:
        for key, value in (
            ("rocAuc", metrics.roc_auc),
            ("precision", metrics.precision),
            ("recall", metrics.recall),
            ("f1", metrics.f1),
            ("brierScore", metrics.brier_score),
            ("calibrationError", metrics.calibration_error),
            ("actualPositiveRate", metrics.actual_positive_rate),
            ("predictedPositiveRate", metrics.predicted_positive_rate),
        ):
            _put(document, key, value)
    return document


@dataclass(frozen=True)
class GroupFairness:
    name: str
    rows: int
    selection_rate: float | None
    statistical_parity_difference: float | None
    disparate_impact_ratio: float | None
    labelled: int = 0
    true_positive_rate: float | None = None
    true_positive_rate_difference: float | None = None


@dataclass(frozen=True)
class AttributeFairness:
    feature: str
    reference: str
    groups: tuple[GroupFairness, ...]
    ungrouped_rows: int  # rows whose value falls in no group (or is missing)
    enough_rows: bool
    disparity: bool


@dataclass(frozen=True)
class FairnessResult:
    favourable_decision: str
    min_rows_per_group: int
    attributes: tuple[AttributeFairness, ...]

    @property
    def disparity(self) -> bool:
        return any(attribute.disparity for attribute in self.attributes)

    @property
    def verdict(self) -> FairnessVerdict:
        """`Disparity`, `Fair`, or `InsufficientData` (no attribute with enough rows per group)."""
        if self.disparity:
            return "Disparity"
        return "Fair" if any(a.enough_rows for a in self.attributes) else "InsufficientData"

    def summary(self) -> str:
        parts = []
        for attribute in self.attributes:
            ratios = ", ".join(
                f"{g.name} {g.disparate_impact_ratio:.2f}"
                for g in attribute.groups
                if g.disparate_impact_ratio is not None and g.name != attribute.reference
            )
            if attribute.disparity:
                state = "disparity"
            else:
                state = "fair" if attribute.enough_rows else "too few rows in a group"
            parts.append(
                f"{attribute.feature} ({state}; disparate impact vs {attribute.reference}:"
                f" {ratios or 'none'})"
            )
        return f"{self.verdict}: " + "; ".join(parts)


def fairness_to_json(result: FairnessResult) -> dict[str, Any]:
    """`status.fairness` without the run times (the status adds them)."""
    attributes = []
    for attribute in result.attributes:
        groups = []
        for group in attribute.groups:
            entry: dict[str, Any] = {"name": group.name, "rows": group.rows}
            _put(entry, "selectionRate", group.selection_rate)
            _put(entry, "statisticalParityDifference", group.statistical_parity_difference)
            _put(entry, "disparateImpactRatio", group.disparate_impact_ratio)
            entry["labelled"] = group.labelled
            _put(entry, "truePositiveRate", group.true_positive_rate)
            _put(entry, "truePositiveRateDifference", group.true_positive_rate_difference)
            groups.append(entry)
        attributes.append(
            {
                "name": attribute.feature,
                "reference": attribute.reference,
                "enoughRows": attribute.enough_rows,
                "disparity": attribute.disparity,
                "ungroupedRows": attribute.ungrouped_rows,
                "groups": groups,
            }
        )
    return {
        "verdict": result.verdict,
        "message": result.summary(),
        "favourableDecision": result.favourable_decision,
        "minRowsPerGroup": result.min_rows_per_group,
        "attributes": attributes,
    }
