"""The model's quality from ground truth: its predictions against the outcomes recorded later.

ROC AUC, precision, recall and F1 of the positive class come from Evidently 0.7's
classification metrics (the same library as the drift verdicts; precision, recall and F1 at the
model's decision threshold, a score at or above it deciding the positive class, as the model
does). Evidently 0.7 has no Brier score and no calibration error: the Brier score is
scikit-learn's, the expected calibration error is computed here over ten equal-width score bins
(scikit-learn has none). Pure functions of a DataFrame: no I/O.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.metrics import F1Score, Precision, Recall, RocAuc
from sklearn.metrics import brier_score_loss

from drift_job.findings import QualityMetrics
from prediction_store import OUTCOME_COLUMN, SCORE_COLUMN

CALIBRATION_BINS = 10
_TARGET = "target"
_PROBABILITY = "probability"


def expected_calibration_error(
    positives: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """The mean gap between the predicted probability and the observed frequency of the
    positive class, bin by bin (equal-width bins of the score), weighted by the bin's rows."""
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    rows = np.bincount(index, minlength=bins)
    observed = np.bincount(index, weights=positives, minlength=bins)
    predicted = np.bincount(index, weights=scores, minlength=bins)
    filled = rows > 0
    gaps = np.abs(observed[filled] - predicted[filled])  # sums: |n*freq - n*mean score|
    return float(gaps.sum() / len(scores))


def compute_quality(frame: pd.DataFrame, positive_class: str, threshold: float) -> QualityMetrics:
    """Quality of the labelled predictions in `frame` (columns `prediction_score`, `outcome`)."""
    scores = frame[SCORE_COLUMN].to_numpy(dtype=np.float64)
    positives = (frame[OUTCOME_COLUMN] == positive_class).to_numpy(dtype=np.float64)
    both_classes = 0 < positives.sum() < len(positives)
    ranked = _evidently_metrics(scores, positives, threshold) if both_classes else {}
    return QualityMetrics(
        rows=len(frame),
        roc_auc=ranked.get("roc_auc"),
        precision=ranked.get("precision"),
        recall=ranked.get("recall"),
        f1=ranked.get("f1"),
        brier_score=float(brier_score_loss(positives, scores)),
        calibration_error=expected_calibration_error(positives, scores),
        actual_positive_rate=float(positives.mean()),
        predicted_positive_rate=float((scores >= threshold).mean()),
    )


def _evidently_metrics(
    scores: np.ndarray, positives: np.ndarray, threshold: float
) -> dict[str, float]:
    data = pd.DataFrame({_TARGET: positives.astype(np.int64), _PROBABILITY: scores})
    definition = DataDefinition(
        classification=[
            BinaryClassification(target=_TARGET, prediction_probas=_PROBABILITY, pos_label=1)
        ]
    )
    metrics: dict[str, Any] = {
        "roc_auc": RocAuc(),
        "precision": Precision(probas_threshold=threshold),
        "recall": Recall(probas_threshold=threshold),
        "f1": F1Score(probas_threshold=threshold),
    }
    report = Report(list(metrics.values()))
    with warnings.catch_warnings():
        # sklearn warns on a threshold that predicts no positive (precision 0 by definition).
        warnings.simplefilter("ignore")
        snapshot = report.run(Dataset.from_pandas(data, data_definition=definition), None)
    # Each metric's value, found by its type (`evidently:metric_v2:RocAuc`).
    by_type = {
        str(metric["config"]["type"]).rsplit(":", 1)[-1]: metric["value"]
        for metric in snapshot.dict()["metrics"]
    }
    found: dict[str, float] = {}
    for name, metric in metrics.items():
        value = by_type.get(type(metric).__name__)
        if isinstance(value, int | float) and math.isfinite(value):
            found[name] = float(value)
    return found
