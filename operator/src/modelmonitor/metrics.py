"""The operator's /metrics: reconcile counters and the drift results read from the statuses.

The drift series are built at scrape time from the last status seen for each monitor, so a
feature that disappears or a monitor that is deleted leaves no stale series behind.
Names and labels: docs/contracts.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from modelmonitor.judgement_metrics import JUDGEMENTS

RECONCILE_TOTAL = Counter(
    "modelmonitor_reconcile_total", "Reconciles of ModelMonitors, by result.", ["result"]
)
RECONCILE_DURATION = Histogram(
    "modelmonitor_reconcile_duration_seconds",
    "Time to reconcile one ModelMonitor (render, compare, apply, status).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_WRITES = Counter(
    "modelmonitor_api_writes_total", "Write calls to the Kubernetes API, by verb.", ["verb"]
)
MONITOR_LABELS = ("monitor", "monitor_namespace", "model")
RUN_RESULTS = ("Completed", "InsufficientData", "Failed")


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class DriftCollector(Collector):
    """Exports the `status.drift` of every monitor the operator has seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drift: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}

    def observe(self, namespace: str, name: str, model: str, drift: Mapping[str, Any]) -> None:
        with self._lock:
            self._drift[(namespace, name)] = (model, drift)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._drift.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            snapshot = dict(self._drift)
        share = GaugeMetricFamily(
            "modelmonitor_drift_share", "Share of the columns that drifted.", labels=MONITOR_LABELS
        )
        detected = GaugeMetricFamily(
            "modelmonitor_drift_detected", "1 if the dataset drifted.", labels=MONITOR_LABELS
        )
        score = GaugeMetricFamily(
            "modelmonitor_feature_drift_score",
            "Stat test score of one feature (p-value or distance, see stattest).",
            labels=(*MONITOR_LABELS, "feature", "stattest"),
        )
        feature = GaugeMetricFamily(
            "modelmonitor_feature_drift_detected",
            "1 if the feature drifted.",
            labels=(*MONITOR_LABELS, "feature"),
        )
        last_run = GaugeMetricFamily(
            "modelmonitor_drift_last_run_timestamp_seconds",
            "When the drift job last finished.",
            labels=MONITOR_LABELS,
        )
        last_success = GaugeMetricFamily(
            "modelmonitor_drift_last_success_timestamp_seconds",
            "When a drift run last completed.",
            labels=MONITOR_LABELS,
        )
        result = GaugeMetricFamily(
            "modelmonitor_drift_run_result",
            "1 for the result of the last drift run, 0 for the others.",
            labels=(*MONITOR_LABELS, "result"),
        )
        for (namespace, name), (model, drift) in sorted(snapshot.items()):
            labels = [name, namespace, model]
            if isinstance(drift.get("driftShare"), int | float):
                share.add_metric(labels, float(drift["driftShare"]))
            if isinstance(drift.get("datasetDrift"), bool):
                detected.add_metric(labels, float(drift["datasetDrift"]))
            for column in drift.get("features") or []:
                column_labels = [*labels, str(column.get("name"))]
                if isinstance(column.get("score"), int | float):
                    score.add_metric(
                        [*column_labels, str(column.get("stattest", ""))], float(column["score"])
                    )
                if isinstance(column.get("drifted"), bool):
                    feature.add_metric(column_labels, float(column["drifted"]))
            for family, key in ((last_run, "lastRunTime"), (last_success, "lastSuccessfulRunTime")):
                stamp = _timestamp(drift.get(key))
                if stamp is not None:
                    family.add_metric(labels, stamp)
            if drift.get("result") in RUN_RESULTS:
                for candidate in RUN_RESULTS:
                    result.add_metric([*labels, candidate], float(candidate == drift["result"]))
        yield from (share, detected, score, feature, last_run, last_success, result)


DRIFT = DriftCollector()
REGISTRY.register(DRIFT)


def observe_monitor(body: Mapping[str, Any], deleted: bool) -> None:
    """Keep the exported drift results in step with one monitor's latest state."""
    metadata = body.get("metadata") or {}
    namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
    status = body.get("status") or {}
    drift = status.get("drift")
    if deleted or not isinstance(drift, Mapping):
        DRIFT.forget(namespace, name)
        JUDGEMENTS.forget(namespace, name)
        return
    model = str(((body.get("spec") or {}).get("model") or {}).get("name", ""))
    DRIFT.observe(namespace, name, model, drift)
    JUDGEMENTS.observe(namespace, name, model, status)
