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
    """Request ids in the UUIDv7 layout (RFC 9562), as 32 hex digits: time first, then chance.

    The ids key feedback, so 74 of their bits are system randomness (os.urandom) and they
    stay unguessable; they begin with the millisecond they were made, so the store's primary
    key grows at its right edge, where a random key lands each insert on a different index
    page and costs PostgreSQL's backend more CPU per record (docs/performance.md). One system
    call per batch of ids instead of one per id: on some hosts getrandom costs more than a
    prediction. Used from the event loop thread only.
    """

    BATCH = 256
    _RANDOM_BYTES = 10  # 80 bits drawn, 74 kept: 12 for rand_a, 62 for rand_b
    _VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)
    _RAND_B = (1 << 62) - 1

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def next(self, unix_ms: int) -> str:
        if self._offset >= len(self._buffer):
            self._buffer, self._offset = os.urandom(self._RANDOM_BYTES * self.BATCH), 0
        start, self._offset = self._offset, self._offset + self._RANDOM_BYTES
        chance = int.from_bytes(self._buffer[start : self._offset])
        rand_a, rand_b = chance >> 68, chance & self._RAND_B
        value = (unix_ms << 80) | self._VERSION_AND_VARIANT | (rand_a << 64) | rand_b
        return f"{value:032x}"


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
        self._model_duration: HistogramCell | None = None
        if metrics is not None:
            # The series of this model version, looked up once rather than per prediction.
            labels = (model.name, model.version)
            self._count = {
                "good": metrics.predictions.cell(*labels, "good"),
                "bad": metrics.predictions.cell(*labels, "bad"),
            }
            self._score = metrics.prediction_score.cell(*labels)
            self._model_duration = metrics.model_duration.cell(*labels)
            metrics.model_loaded.labels(*labels).set(1)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[ScoredApplication]:
        scorer = self.model.scorer
        # One row: plain Python arithmetic beats numpy's per-call overhead.
        one = len(rows) == 1
        now = time.time()
        unix_ms = int(now * 1000)
        timer = self._model_duration  # None when metrics are off: then nothing is timed
        started = time.perf_counter() if timer is not None else 0.0
        scores = [scorer.score_one(rows[0])] if one else scorer.score_many(rows).tolist()
        if timer is not None:
            timer.observe(time.perf_counter() - started)
        results = [
            ScoredApplication(
                self._ids.next(unix_ms), score, "bad" if score >= self._threshold else "good"
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
            name, version = self._name, self._version
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
