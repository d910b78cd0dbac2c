"""The vocabulary the PrometheusRule and the dashboard share, defined once as data.

The rule renderer records SLI series and alerts on them; the dashboard renderer draws the same
series and the same traffic. Both take from here the series names, the burn-rate windows, the
route filters and the selectors, so the two can never disagree on what an SLI is.

SLO alerts follow the multi-window, multi-burn-rate recipe of the Google SRE workbook (chapter
"Alerting on SLOs"): for a 30-day SLO, page when 2% of the budget burns in 1h (14.4x, checked
over 1h and 5m) or 5% in 6h (6x, 6h and 30m); open a ticket when 10% burns in 1d (3x, 1d and
2h) or in 3d (1x, 3d and 6h). For another SLO period the windows scale with it (never below one
minute, so a rate has samples), which lets a test use a one-hour SLO.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelmonitor.durations import format_duration, parse_duration
from modelmonitor.render.promql import Matcher, Selector
from modelmonitor.spec import LOWER_IS_BETTER, Monitor

REFERENCE_PERIOD_SECONDS = 30 * 86_400
MIN_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class BurnRateAlert:
    """Fire when both windows burn faster than `factor` times the sustainable rate."""

    long_window: int
    short_window: int
    factor: float


# (long, short, factor) for a 30-day period; severity `critical` pages, `warning` is a ticket.
PAGE = (BurnRateAlert(3_600, 300, 14.4), BurnRateAlert(21_600, 1_800, 6.0))
TICKET = (BurnRateAlert(86_400, 7_200, 3.0), BurnRateAlert(259_200, 21_600, 1.0))

# The SLI series the rules record (labelled with `series_labels` and `slo`).
ERROR_RATIO_RATE = "modelmonitor:slo_errors:ratio_rate"  # suffixed with its window: ..._rate5m
ERROR_RATIO_PERIOD = "modelmonitor:slo_errors:ratio_period"
BUDGET_REMAINING = "modelmonitor:slo_error_budget_remaining:ratio"
# 1 while the last quality judgement misses the quality objective, 0 while it meets it: its
# average over a window is the quality SLI's error ratio (the share of the time missed).
QUALITY_OBJECTIVE_MISSED = "modelmonitor:quality_objective_missed"

# The operator's gauge of each quality metric a quality objective can name (docs/contracts.md).
QUALITY_METRICS = {
    "rocAuc": "modelmonitor_quality_roc_auc",
    "precision": "modelmonitor_quality_precision",
    "recall": "modelmonitor_quality_recall",
    "f1": "modelmonitor_quality_f1_score",
    "brierScore": "modelmonitor_quality_brier_score",
    "calibrationError": "modelmonitor_quality_calibration_error",
}
# What the words of alerts and panels call them.
QUALITY_METRIC_NAMES = {
    "rocAuc": "ROC AUC",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1 score",
    "brierScore": "Brier score",
    "calibrationError": "calibration error",
}

# Probes and scrapes are not user traffic: they would dilute the SLIs.
USER_ROUTES = Matcher("route", "/metrics|/healthz|/readyz", "!~")
SERVER_ERRORS = Matcher("status", "5..", "=~")


@dataclass(frozen=True)
class Slo:
    """One objective: its name (the `slo` label), its target in percent, the error ratio (the
    budget) that target allows."""

    name: str
    target: float
    budget: float


def objectives(monitor: Monitor) -> tuple[Slo, ...]:
    slo = monitor.spec.slo
    availability, latency = slo.availability.target, slo.latency.target
    found: tuple[Slo, ...] = (
        Slo("availability", availability, budget=1 - availability / 100),
        Slo("latency", latency, budget=1 - latency / 100),
    )
    if slo.quality is not None:
        found += (Slo("quality", slo.quality.target, budget=1 - slo.quality.target / 100),)
    return found


@dataclass(frozen=True)
class QualityObjective:
    """The quality objective: the gauge it reads, the bound, and which side of it misses."""

    metric: str  # the gauge, e.g. modelmonitor_quality_roc_auc
    name: str  # what people call it, e.g. ROC AUC
    threshold: float
    lower_is_better: bool

    @property
    def missed_operator(self) -> str:
        """The comparison that is true when the objective is missed."""
        return ">" if self.lower_is_better else "<"

    @property
    def wanted(self) -> str:
        return "at most" if self.lower_is_better else "at least"


def quality_objective(monitor: Monitor) -> QualityObjective | None:
    quality = monitor.spec.slo.quality
    if quality is None:
        return None
    return QualityObjective(
        metric=QUALITY_METRICS[quality.metric],
        name=QUALITY_METRIC_NAMES[quality.metric],
        threshold=quality.threshold,
        lower_is_better=quality.metric in LOWER_IS_BETTER,
    )


def error_ratio_rate(window: str) -> str:
    """The recorded error ratio over `window` (one of `burn_windows`)."""
    return f"{ERROR_RATIO_RATE}{window}"


def scaled_window(seconds: int, period_seconds: int) -> str:
    """A window of the 30-day recipe, scaled to an SLO period of `period_seconds`."""
    scaled = seconds * period_seconds / REFERENCE_PERIOD_SECONDS
    minutes = max(MIN_WINDOW_SECONDS, round(scaled / 60) * 60)
    return format_duration(int(minutes))


def burn_windows(period_seconds: int) -> list[str]:
    """Every window the burn-rate alerts read, shortest first, without duplicates."""
    seconds: set[int] = set()
    for alert in (*PAGE, *TICKET):
        seconds.update((alert.long_window, alert.short_window))
    windows = {scaled_window(value, period_seconds) for value in seconds}
    return sorted(windows, key=parse_duration)


def current_burn_window(period_seconds: int) -> str:
    """The fast page's long window: how fast the budget burns right now."""
    return scaled_window(PAGE[0].long_window, period_seconds)


@dataclass(frozen=True)
class AppMetrics:
    """The monitored service's metric names (docs/contracts.md)."""

    requests: str
    request_duration: str
    predictions: str
    prediction_score: str
    model_loaded: str
    records_dropped: str
    queue_depth: str
    store_up: str


def app_metrics(monitor: Monitor) -> AppMetrics:
    """The names under the monitored service's metrics prefix."""
    prefix = monitor.spec.target.metrics_prefix
    return AppMetrics(
        requests=f"{prefix}_requests_total",
        request_duration=f"{prefix}_request_duration_seconds",
        predictions=f"{prefix}_predictions_total",
        prediction_score=f"{prefix}_prediction_score",
        model_loaded=f"{prefix}_model_loaded",
        records_dropped=f"{prefix}_prediction_log_dropped_total",
        queue_depth=f"{prefix}_prediction_log_queue_depth",
        store_up=f"{prefix}_prediction_store_up",
    )


def app_selector(monitor: Monitor) -> Selector:
    """The monitored service's series (job = Service name, as the ServiceMonitor scrapes it)."""
    return Selector.of({"job": monitor.spec.target.service, "namespace": monitor.namespace})


def user_traffic(monitor: Monitor) -> Selector:
    """The requests the SLIs count."""
    return app_selector(monitor).with_(USER_ROUTES)


def own_selector(monitor: Monitor) -> Selector:
    """The operator's metrics about this monitor."""
    return Selector.of({"monitor": monitor.name, "monitor_namespace": monitor.namespace})


def series_labels(monitor: Monitor) -> dict[str, str]:
    """Labels of the operator's own metrics and of the recorded SLI series."""
    return {
        "monitor": monitor.name,
        "monitor_namespace": monitor.namespace,
        "model": monitor.spec.model.name,
    }


def sli_selector(monitor: Monitor, objective: Slo | None = None) -> Selector:
    """The recorded series of one objective, or of every objective of the monitor."""
    labels = series_labels(monitor)
    return Selector.of(labels if objective is None else {**labels, "slo": objective.name})
