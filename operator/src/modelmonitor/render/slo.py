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
from modelmonitor.spec import Monitor

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


def objectives(monitor: Monitor) -> tuple[Slo, Slo]:
    slo = monitor.spec.slo
    availability, latency = slo.availability.target, slo.latency.target
    return (
        Slo("availability", availability, budget=1 - availability / 100),
        Slo("latency", latency, budget=1 - latency / 100),
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
