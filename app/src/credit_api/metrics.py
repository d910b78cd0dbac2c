"""Every Prometheus metric the service exports, defined once on a registry of its own.

Each app instance gets a fresh `CollectorRegistry`, so tests (and several apps in one
process) never share counters. Names and labels follow docs/contracts.md.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)

from credit_api.loop_metrics import (
    CounterCell,
    GaugeCell,
    HistogramCell,
    LoopCounter,
    LoopHistogram,
    LoopMetricsCollector,
)

# Every latency-SLO threshold a ModelMonitor may name is a bucket boundary (contracts.md).
REQUEST_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
# The scoring call alone, from one row to a full batch.
MODEL_DURATION_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25,
)  # fmt: skip

# Why the prediction log gave records up (docs/contracts.md); with a spool, the counts carry
# on from the spool's header across restarts of the pod's container.
DROP_REASONS = ("queue_full", "rejected", "shutdown", "spool_full", "spool_corrupt")
LOAD_RESULTS = ("success", "failure")
ERROR_KINDS = ("validation", "body_too_large", "unhandled", "store")
# The one label for requests that match no route, so scanners cannot mint new series.
UNMATCHED_ROUTE = "<unmatched>"


class Metrics:
    """The service's metric objects, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        # Updated on every request, from the event loop thread: see loop_metrics.
        self.requests = LoopCounter(
            "credit_api_requests",
            "HTTP requests answered, by route template and status code.",
            ["method", "route", "status"],
        )
        self.request_duration = LoopHistogram(
            "credit_api_request_duration_seconds",
            "Time from receiving a request to sending the end of its response.",
            ["method", "route"],
            buckets=REQUEST_DURATION_BUCKETS,
        )
        self.predictions = LoopCounter(
            "credit_api_predictions",
            "Applications scored, by decision.",
            ["model", "version", "decision"],
        )
        self.prediction_score = LoopHistogram(
            "credit_api_prediction_score",
            "Predicted probability of default.",
            ["model", "version"],
            buckets=SCORE_BUCKETS,
        )
        self.model_duration = LoopHistogram(
            "credit_api_model_prediction_duration_seconds",
            "Time the model takes to score one request's applications, the scoring call alone.",
            ["model", "version"],
            buckets=MODEL_DURATION_BUCKETS,
        )
        LoopMetricsCollector(
            [
                self.requests,
                self.request_duration,
                self.predictions,
                self.prediction_score,
                self.model_duration,
            ],
            r,
        )
        # Moved by the request middleware on the event loop, read at each scrape.
        in_progress = self.requests_in_progress = GaugeCell()
        Gauge(
            "credit_api_requests_in_progress",
            "HTTP requests being served, the scrape that reads it included.",
            registry=r,
        ).set_function(lambda: in_progress.value)
        self.model_loaded = Gauge(
            "credit_api_model_loaded",
            "1 when this model version is loaded and serving.",
            ["model", "version"],
            registry=r,
        )
        self.model_load_attempts = Counter(
            "credit_api_model_load_attempts",
            "Attempts to load (or train, on first start) the model bundle.",
            ["result"],
            registry=r,
        )
        self.errors = Counter(
            "credit_api_errors",
            "Requests that failed, by kind (validation, body_too_large, unhandled, store).",
            ["kind"],
            registry=r,
        )
        self.log_written = Counter(
            "credit_api_prediction_log_written",
            "Prediction records committed to the prediction store.",
            registry=r,
        )
        self.log_dropped = Counter(
            "credit_api_prediction_log_dropped",
            "Prediction records given up on, by reason (queue_full, rejected, shutdown,"
            " spool_full, spool_corrupt); with a spool, counted since the spool's first process.",
            ["reason"],
            registry=r,
        )
        self.log_queue_depth = Gauge(
            "credit_api_prediction_log_queue_depth",
            "Prediction records waiting to be written (including a batch being retried).",
            registry=r,
        )
        # Exposed once a prediction log tracks it (track_store): with the log off there is
        # no store to be up or down, and a 0 would read as an outage.
        self.store_up = Gauge(
            "credit_api_prediction_store_up",
            "1 when the prediction store accepted the last write or health check.",
            registry=None,
        )
        self._store_tracked = False
        # Exposed once the prediction log opens a spool (track_spool).
        self.spool_bytes = Gauge(
            "credit_api_prediction_log_spool_bytes",
            "Bytes of the prediction log's spool files this process holds on disk.",
            registry=None,
        )
        self.spool_records = Gauge(
            "credit_api_prediction_log_spool_records",
            "Prediction records in the spool, waiting for the store.",
            registry=None,
        )
        self._request_cells: dict[tuple[str, str, int], tuple[CounterCell, HistogramCell]] = {}
        # Series that alerts take rate() of exist from the start, at zero.
        for reason in DROP_REASONS:
            self.log_dropped.labels(reason)
        for result in LOAD_RESULTS:
            self.model_load_attempts.labels(result)
        for kind in ERROR_KINDS:
            self.errors.labels(kind)

    def track_queue_depth(self, depth: Callable[[], float]) -> None:
        self.log_queue_depth.set_function(depth)

    def track_store(self, up: Callable[[], bool]) -> None:
        """Expose `credit_api_prediction_store_up`, read from `up` at each scrape."""
        self.store_up.set_function(lambda: float(up()))
        if not self._store_tracked:
            self.registry.register(self.store_up)
            self._store_tracked = True

    def track_spool(self, size: Callable[[], float], records: Callable[[], float]) -> None:
        """Expose the spool's size and backlog, read at each scrape."""
        self.spool_bytes.set_function(size)
        self.spool_records.set_function(records)
        self.registry.register(self.spool_bytes)
        self.registry.register(self.spool_records)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # The label sets are bounded (routes x methods x statuses): one lookup per request.
        key = (method, route, status)
        cells = self._request_cells.get(key)
        if cells is None:
            cells = (
                self.requests.cell(method, route, str(status)),
                self.request_duration.cell(method, route),
            )
            self._request_cells[key] = cells
        cells[0].inc()
        cells[1].observe(seconds)
