"""The operator's /metrics for what the drift job judged besides the feature drift: the drift of
the model's output, the reference decision shares, the quality from ground truth and fairness.

Built at scrape time from the last status seen for each monitor (`status.drift.prediction`,
`status.drift.referenceDecisionShares`, `status.quality`, `status.fairness`), like the drift
series of `metrics.py`: a group or a monitor that disappears leaves no stale series. Labels are
bounded by the spec (attributes and their groups) and by the model's decisions. Names and
labels: docs/contracts.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

MONITOR_LABELS = ("monitor", "monitor_namespace", "model")
QUALITY_RESULTS = ("Completed", "InsufficientLabels")

# status.quality field -> (metric name, help)
QUALITY_GAUGES: dict[str, tuple[str, str]] = {
    "rocAuc": (
        "modelmonitor_quality_roc_auc",
        "ROC AUC of the score on predictions with an outcome.",
    ),
    "precision": (
        "modelmonitor_quality_precision",
        "Precision of the positive class at the decision threshold.",
    ),
    "recall": (
        "modelmonitor_quality_recall",
        "Recall of the positive class at the decision threshold.",
    ),
    "f1": (
        "modelmonitor_quality_f1_score",
        "F1 score of the positive class at the decision threshold.",
    ),
    "brierScore": ("modelmonitor_quality_brier_score", "Mean squared error of the score."),
    "calibrationError": (
        "modelmonitor_quality_calibration_error",
        "Expected calibration error over ten score bins.",
    ),
    "actualPositiveRate": (
        "modelmonitor_quality_actual_positive_rate",
        "Share of positive outcomes among the labelled predictions.",
    ),
    "predictedPositiveRate": (
        "modelmonitor_quality_predicted_positive_rate",
        "Share of positive decisions among the labelled predictions.",
    ),
    "labelCoverage": (
        "modelmonitor_quality_label_coverage_ratio",
        "Share of the window's predictions whose outcome was recorded.",
    ),
}
# status.fairness group field -> (metric name, help); labelled attribute, group, reference.
FAIRNESS_GAUGES: dict[str, tuple[str, str]] = {
    "selectionRate": (
        "modelmonitor_fairness_selection_rate",
        "Share of the group given the favourable decision.",
    ),
    "statisticalParityDifference": (
        "modelmonitor_fairness_statistical_parity_difference",
        "Selection rate minus the reference group's.",
    ),
    "disparateImpactRatio": (
        "modelmonitor_fairness_disparate_impact_ratio",
        "Selection rate over the reference group's.",
    ),
    "truePositiveRateDifference": (
        "modelmonitor_fairness_true_positive_rate_difference",
        "True-positive rate of the favourable decision minus the reference group's.",
    ),
}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class JudgementCollector(Collector):
    """Exports output drift, reference shares, quality and fairness of every monitor seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}

    def observe(self, namespace: str, name: str, model: str, status: Mapping[str, Any]) -> None:
        with self._lock:
            self._status[(namespace, name)] = (model, status)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._status.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            snapshot = sorted(self._status.items())
        families = _Families()
        for (namespace, name), (model, status) in snapshot:
            labels = [name, namespace, model]
            drift = status.get("drift") or {}
            _outputs(families, labels, drift)
            _quality(families, labels, status.get("quality") or {})
            _fairness(families, labels, status.get("fairness") or {})
        yield from families.all()


class _Families:
    def __init__(self) -> None:
        self.output_score = GaugeMetricFamily(
            "modelmonitor_prediction_drift_score",
            "Stat test score of the model's output (column prediction_score or"
            " prediction_decision) against the reference's.",
            labels=(*MONITOR_LABELS, "column", "stattest"),
        )
        self.output_drifted = GaugeMetricFamily(
            "modelmonitor_prediction_drift_detected",
            "1 if the model's output column drifted.",
            labels=(*MONITOR_LABELS, "column"),
        )
        self.reference_share = GaugeMetricFamily(
            "modelmonitor_reference_decision_share",
            "The reference share of each decision (the spec's, else the registered model's).",
            labels=(*MONITOR_LABELS, "decision"),
        )
        self.quality = {
            key: GaugeMetricFamily(metric, text, labels=MONITOR_LABELS)
            for key, (metric, text) in QUALITY_GAUGES.items()
        }
        self.labelled = GaugeMetricFamily(
            "modelmonitor_quality_labelled_rows",
            "Predictions in the quality window whose outcome was recorded.",
            labels=MONITOR_LABELS,
        )
        self.quality_result = GaugeMetricFamily(
            "modelmonitor_quality_run_result",
            "1 for the result of the last quality judgement, 0 for the other.",
            labels=(*MONITOR_LABELS, "result"),
        )
        group_labels = (*MONITOR_LABELS, "attribute", "group", "reference")
        self.fairness = {
            key: GaugeMetricFamily(metric, text, labels=group_labels)
            for key, (metric, text) in FAIRNESS_GAUGES.items()
        }
        self.group_rows = GaugeMetricFamily(
            "modelmonitor_fairness_group_rows",
            "Predictions of the group in the window.",
            labels=(*MONITOR_LABELS, "attribute", "group"),
        )
        self.disparity = GaugeMetricFamily(
            "modelmonitor_fairness_disparity",
            "1 if the attribute shows a disparity (the drift job's verdict).",
            labels=(*MONITOR_LABELS, "attribute"),
        )

    def all(self) -> list[GaugeMetricFamily]:
        return [
            self.output_score,
            self.output_drifted,
            self.reference_share,
            *self.quality.values(),
            self.labelled,
            self.quality_result,
            *self.fairness.values(),
            self.group_rows,
            self.disparity,
        ]


def _outputs(families: _Families, labels: list[str], drift: Mapping[str, Any]) -> None:
    for column in (drift.get("prediction") or {}).get("columns") or []:
        column_labels = [*labels, str(column.get("name"))]
        score = _number(column.get("score"))
        if score is not None:
            families.output_score.add_metric(
                [*column_labels, str(column.get("stattest", ""))], score
            )
        if isinstance(column.get("drifted"), bool):
            families.output_drifted.add_metric(column_labels, float(column["drifted"]))
    for decision, share in sorted((drift.get("referenceDecisionShares") or {}).items()):
        if (value := _number(share)) is not None:
            families.reference_share.add_metric([*labels, str(decision)], value)


def _quality(families: _Families, labels: list[str], quality: Mapping[str, Any]) -> None:
    for key, family in families.quality.items():
        if (value := _number(quality.get(key))) is not None:
            family.add_metric(labels, value)
    if (labelled := _number((quality.get("rows") or {}).get("labelled"))) is not None:
        families.labelled.add_metric(labels, labelled)
    if quality.get("result") in QUALITY_RESULTS:
        for candidate in QUALITY_RESULTS:
            families.quality_result.add_metric(
                [*labels, candidate], float(candidate == quality["result"])
            )


def _fairness(families: _Families, labels: list[str], fairness: Mapping[str, Any]) -> None:
    for attribute in fairness.get("attributes") or []:
        name, reference = str(attribute.get("name")), str(attribute.get("reference"))
        if isinstance(attribute.get("disparity"), bool):
            families.disparity.add_metric([*labels, name], float(attribute["disparity"]))
        for group in attribute.get("groups") or []:
            group_name = str(group.get("name"))
            if (rows := _number(group.get("rows"))) is not None:
                families.group_rows.add_metric([*labels, name, group_name], rows)
            for key, family in families.fairness.items():
                if (value := _number(group.get(key))) is not None:
                    family.add_metric([*labels, name, group_name, reference], value)


JUDGEMENTS = JudgementCollector()
REGISTRY.register(JUDGEMENTS)
