"""Score applications and account for them: metrics and the prediction log (no web framework)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credit_api.loop_metrics import CounterCell, HistogramCell
from credit_api.metrics import Metrics
from credit_api.model_loading import LoadedModel
from credit_api.prediction_log import PredictionLogWriter
from credit_api.schemas import Decision


@dataclass(frozen=True, slots=True)
class ScoredApplication:
    request_id: str
    probability_of_default: float
    decision: Decision


class RequestIds:
    """Random 128-bit request ids, as hex, from a buffer of system randomness.

    The ids key feedback, so they stay unguessable (os.urandom), but one system call per
    256 ids instead of one per id: on some hosts getrandom costs more than a prediction.
    Used from the event loop thread only.
    """

    BATCH = 256

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def next(self) -> str:
        if self._offset >= len(self._buffer):
            self._buffer, self._offset = os.urandom(16 * self.BATCH), 0
        start, self._offset = self._offset, self._offset + 16
        return self._buffer[start : self._offset].hex()


class Predictor:
    """Scores with the loaded model, counts the results, and queues them for the store."""

    def __init__(
        self, model: LoadedModel, metrics: Metrics | None, writer: PredictionLogWriter | None
    ) -> None:
        self.model = model
        self._writer = writer
        # The store's model columns, the same for every record this predictor writes.
        self._name, self._version = model.name, model.version
        self._threshold = model.bundle.decision_threshold
        self._ids = RequestIds()
        self._count: dict[Decision, CounterCell] = {}
        self._score: HistogramCell | None = None
        if metrics is not None:
            # The series of this model version, looked up once rather than per prediction.
            labels = (model.name, model.version)
            self._count = {
                "good": metrics.predictions.cell(*labels, "good"),
                "bad": metrics.predictions.cell(*labels, "bad"),
            }
            self._score = metrics.prediction_score.cell(*labels)
            metrics.model_loaded.labels(*labels).set(1)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[ScoredApplication]:
        scorer = self.model.scorer
        # One row: plain Python arithmetic beats numpy's per-call overhead.
        one = len(rows) == 1
        scores = [scorer.score_one(rows[0])] if one else scorer.score_many(rows).tolist()
        results = [
            ScoredApplication(
                self._ids.next(), score, "bad" if score >= self._threshold else "good"
            )
            for score in scores
        ]
        if self._score is not None:
            for result in results:
                self._count[result.decision].inc()
                self._score.observe(result.probability_of_default)
        if self._writer is not None:
            # Plain tuples in the store's column order (see batch_insert.PredictionRow); one
            # row without a comprehension, which is a function call of its own in Python 3.11.
            now, name, version = time.time(), self._name, self._version
            if one:
                [r] = results
                score, decision = r.probability_of_default, r.decision
                records = [(r.request_id, now, name, version, rows[0], score, decision)]
            else:
                records = [
                    (r.request_id, now, name, version, row, r.probability_of_default, r.decision)
                    for r, row in zip(results, rows, strict=True)
                ]
            self._writer.submit(records)
        return results
