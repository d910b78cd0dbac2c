"""The PrometheusRule (`<name>-rules`): SLI recording rules and the monitor's alerts.

SLO alerts follow the multi-window, multi-burn-rate recipe of the Google SRE workbook (chapter
"Alerting on SLOs"): for a 30-day SLO, page when 2% of the budget burns in 1h (14.4x, checked
over 1h and 5m) or 5% in 6h (6x, 6h and 30m); open a ticket when 10% burns in 1d (3x, 1d and
2h) or in 3d (1x, 3d and 6h). For another SLO period the windows scale with it (never below one
minute, so a rate has samples), which lets a test use a one-hour SLO.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelmonitor.durations import format_duration, parse_duration
from modelmonitor.naming import DNS_LABEL_MAX, child_name
from modelmonitor.render.common import metadata
from modelmonitor.render.cronjob import drift_job_name
from modelmonitor.render.promql import matchers, number, rate, sum_rate
from modelmonitor.schedule import longest_interval_seconds
from modelmonitor.settings import Settings
from modelmonitor.spec import Monitor

COMPONENT = "alerting"
REFERENCE_PERIOD_SECONDS = 30 * 86_400
MIN_WINDOW_SECONDS = 60
# Probes and scrapes are not user traffic: they would dilute the SLIs.
NON_USER_ROUTES = 'route!~"/metrics|/healthz|/readyz"'
SLI_ERRORS = "modelmonitor:slo_errors:ratio_rate"


@dataclass(frozen=True)
class BurnRateAlert:
    """Fire when both windows burn faster than `factor` times the sustainable rate."""

    long_window: int
    short_window: int
    factor: float


# (long, short, factor) for a 30-day period; severity `critical` pages, `warning` is a ticket.
PAGE = (BurnRateAlert(3_600, 300, 14.4), BurnRateAlert(21_600, 1_800, 6.0))
TICKET = (BurnRateAlert(86_400, 7_200, 3.0), BurnRateAlert(259_200, 21_600, 1.0))


def rules_name(monitor: Monitor) -> str:
    return child_name(monitor.name, "rules", DNS_LABEL_MAX)


def scaled_window(seconds: int, period_seconds: int) -> str:
    scaled = seconds * period_seconds / REFERENCE_PERIOD_SECONDS
    minutes = max(MIN_WINDOW_SECONDS, round(scaled / 60) * 60)
    return format_duration(int(minutes))


@dataclass(frozen=True)
class _Context:
    """What every rule needs: selectors, static labels, names."""

    monitor: Monitor

    @property
    def prefix(self) -> str:
        return self.monitor.spec.target.metrics_prefix

    @property
    def app(self) -> str:
        """The monitored service's series (job = Service name, as the ServiceMonitor scrapes it)."""
        return self.app_with()

    def app_with(self, *extra: str) -> str:
        return matchers(
            {"job": self.monitor.spec.target.service, "namespace": self.monitor.namespace}, *extra
        )

    @property
    def model_matchers(self) -> tuple[str, ...]:
        model = self.monitor.spec.model
        found = [f"model={json.dumps(model.name)}"]
        if model.version is not None:
            found.append(f"version={json.dumps(model.version)}")
        return tuple(found)

    @property
    def series_labels(self) -> dict[str, str]:
        """Labels of the operator's own metrics and of the recorded SLI series."""
        return {
            "monitor": self.monitor.name,
            "monitor_namespace": self.monitor.namespace,
            "model": self.monitor.spec.model.name,
        }

    @property
    def own(self) -> str:
        """The operator's metrics about this monitor."""
        return self.own_with()

    def own_with(self, *extra: str) -> str:
        return matchers(
            {"monitor": self.monitor.name, "monitor_namespace": self.monitor.namespace}, *extra
        )

    @property
    def period_seconds(self) -> int:
        return parse_duration(self.monitor.spec.slo.window)

    def window(self, seconds: int) -> str:
        return scaled_window(seconds, self.period_seconds)


def _sli_expressions(ctx: _Context, window: str) -> dict[str, str]:
    requests = f"{ctx.prefix}_requests_total"
    duration = f"{ctx.prefix}_request_duration_seconds"
    latency = ctx.monitor.spec.slo.latency
    # prometheus-client writes bucket bounds as Python floats: 0.3 -> "0.3", 1 -> "1.0".
    bucket = f'le="{float(latency.threshold_seconds)!r}"'
    all_requests = sum_rate(requests, ctx.app_with(NON_USER_ROUTES), window)
    failed = sum_rate(requests, ctx.app_with(NON_USER_ROUTES, 'status=~"5.."'), window)
    fast = sum_rate(f"{duration}_bucket", ctx.app_with(NON_USER_ROUTES, bucket), window)
    timed = sum_rate(f"{duration}_count", ctx.app_with(NON_USER_ROUTES), window)
    return {
        # No 5xx yet means no 5xx series at all: `or vector(0)` makes that a ratio of 0, so the
        # SLI, the budget and the burn rate exist from the first request, not the first error.
        "availability": f"(\n{failed}\nor\nvector(0)\n)\n/\n{all_requests}",
        "latency": f"1 - (\n{fast}\n/\n{timed}\n)",
    }


def _burn_windows(ctx: _Context) -> list[str]:
    seconds: set[int] = set()
    for alert in (*PAGE, *TICKET):
        seconds.update((alert.long_window, alert.short_window))
    windows = {ctx.window(value): parse_duration(ctx.window(value)) for value in seconds}
    return sorted(windows, key=windows.__getitem__)


def _recording_rules(ctx: _Context) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    windows = _burn_windows(ctx)
    for window in windows:
        for slo, expr in _sli_expressions(ctx, window).items():
            rules.append(
                {
                    "record": f"{SLI_ERRORS}{window}",
                    "expr": expr,
                    "labels": {**ctx.series_labels, "slo": slo},
                }
            )
    slo_spec = ctx.monitor.spec.slo
    targets = {"availability": slo_spec.availability.target, "latency": slo_spec.latency.target}
    for slo, target in targets.items():
        labels = {**ctx.series_labels, "slo": slo}
        shortest = f"{SLI_ERRORS}{windows[0]}{matchers(labels)}"
        rules.append(
            {
                # Error ratio over the whole SLO period, from the shortest window's samples.
                "record": "modelmonitor:slo_errors:ratio_period",
                "expr": f"avg_over_time({shortest}[{slo_spec.window}])",
                "labels": labels,
            }
        )
        rules.append(
            {
                "record": "modelmonitor:slo_error_budget_remaining:ratio",
                "expr": (
                    f"1 - modelmonitor:slo_errors:ratio_period{matchers(labels)}"
                    f" / {number(1 - target / 100)}"
                ),
                "labels": labels,
            }
        )
    return rules


class _Alerts:
    """Builds alert rules with the labels and annotations every alert of the monitor carries."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx

    def alert(
        self,
        name: str,
        expr: str,
        severity: str,
        summary: str,
        description: str,
        *,
        pending: str | None = None,
        extra_labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        monitor = self.ctx.monitor
        rule: dict[str, Any] = {"alert": name, "expr": expr}
        if pending is not None:
            rule["for"] = pending
        rule["labels"] = {
            **monitor.spec.alerts.labels,
            **(extra_labels or {}),
            "severity": severity,
            "model": monitor.spec.model.name,
            "monitor": monitor.name,
            "namespace": monitor.namespace,
        }
        rule["annotations"] = {
            "summary": summary,
            "description": description,
            "runbook_url": f"{monitor.spec.alerts.runbook_base_url}#{name.lower()}",
        }
        return rule


def _availability_alerts(ctx: _Context, alerts: _Alerts) -> list[dict[str, Any]]:
    slo = ctx.monitor.spec.slo
    found = []
    for slo_name, target in (
        ("availability", slo.availability.target),
        ("latency", slo.latency.target),
    ):
        budget = 1 - target / 100
        selector = matchers({**ctx.series_labels, "slo": slo_name})
        for severity, speed, pairs in (("critical", "Fast", PAGE), ("warning", "Slow", TICKET)):
            clauses = []
            for pair in pairs:
                threshold = f"({number(pair.factor)} * {number(budget)})"
                long_w, short_w = ctx.window(pair.long_window), ctx.window(pair.short_window)
                clauses.append(
                    f"(\n  {SLI_ERRORS}{long_w}{selector} > {threshold}\nand\n"
                    f"  {SLI_ERRORS}{short_w}{selector} > {threshold}\n)"
                )
            title = slo_name.capitalize()
            found.append(
                alerts.alert(
                    f"Model{title}BudgetBurn{speed}",
                    "\nor\n".join(clauses),
                    severity,
                    f"{ctx.monitor.spec.model.name}: {slo_name} error budget burning"
                    f" {speed.lower()}",
                    f"The {slo_name} SLO ({number(target)}% over {slo.window}) of"
                    f" {ctx.monitor.spec.target.service} is burning its error budget at"
                    " {{ $value | humanizePercentage }} errors; at this rate the budget runs"
                    " out before the period ends.",
                    extra_labels={"slo": slo_name},
                )
            )
    return found


def _service_alerts(ctx: _Context, alerts: _Alerts) -> list[dict[str, Any]]:
    spec = ctx.monitor.spec
    durations = spec.alerts.durations
    service = spec.target.service
    model = spec.model.name
    predictions = f"{ctx.prefix}_predictions_total"
    model_selector = ctx.app_with(*ctx.model_matchers)
    bad_selector = ctx.app_with(*ctx.model_matchers, 'decision="bad"')
    decision_window = spec.alerts.decisions.window
    return [
        alerts.alert(
            "ModelApiNoTargets",
            f"absent(up{ctx.app})",
            "critical",
            f"{service}: Prometheus has no scrape target",
            f"No target with job={service} in namespace {ctx.monitor.namespace}: the Service"
            " or its ServiceMonitor is missing, or the ServiceMonitor is not selected.",
            pending=durations.api_down,
        ),
        alerts.alert(
            "ModelApiDown",
            f"up{ctx.app} == 0",
            "critical",
            f"{service}: target {{{{ $labels.instance }}}} is down",
            f"Prometheus cannot scrape {service} at {{{{ $labels.instance }}}}.",
            pending=durations.api_down,
        ),
        alerts.alert(
            "ModelNotLoaded",
            f"(max({ctx.prefix}_model_loaded{model_selector}) or vector(0)) < 1",
            "critical",
            f"{service}: model {model} is not loaded",
            f"No instance of {service} reports model {model} as loaded; predictions fail.",
            pending=durations.model_not_loaded,
        ),
        alerts.alert(
            "ModelPredictionVolumeCollapsed",
            f"{sum_rate(predictions, model_selector, '5m')}\n<\n"
            f"{number(spec.alerts.volume.min_ratio)}"
            f" * {sum_rate(predictions, model_selector, '1h')}",
            "warning",
            f"{model}: prediction volume collapsed",
            "Predictions in the last 5 minutes run at {{ $value | humanize }}/s, below"
            f" {number(spec.alerts.volume.min_ratio * 100)}% of the last hour's rate.",
            pending=durations.volume_collapse,
        ),
        alerts.alert(
            "ModelDecisionRatioShifted",
            f"abs(\n  {sum_rate(predictions, bad_selector, decision_window)}\n  /\n"
            f"  {sum_rate(predictions, model_selector, decision_window)}\n"
            f"  - {number(spec.alerts.decisions.reference_bad_share)}\n)"
            f" > {number(spec.alerts.decisions.tolerance)}",
            "warning",
            f"{model}: share of bad-credit decisions far from the reference",
            "The share of `bad` decisions over the last"
            f" {decision_window} differs by {{{{ $value | humanizePercentage }}}} from the"
            " reference"
            f" share {number(spec.alerts.decisions.reference_bad_share)} (tolerance"
            f" {number(spec.alerts.decisions.tolerance)}).",
            pending=durations.decision_ratio,
        ),
        alerts.alert(
            "ModelPredictionRecordsDropped",
            f"sum({rate(f'{ctx.prefix}_prediction_log_dropped_total', ctx.app, '5m')}) > 0",
            "warning",
            f"{service}: prediction records are being dropped",
            "The prediction log drops {{ $value | humanize }} records/s: drift detection sees"
            " fewer rows than were scored. Check the store and the writer's queue.",
            pending=durations.records_dropped,
        ),
        alerts.alert(
            "ModelPredictionStoreUnavailable",
            f"{ctx.prefix}_prediction_store_up{ctx.app} == 0",
            "warning",
            f"{service}: {{{{ $labels.instance }}}} cannot write to the prediction store",
            "Predictions still succeed, but their records wait in the instance's memory: a"
            " restart loses them, and once the queue is full they are dropped and drift"
            " detection sees fewer rows. Check the store and the instance's /readyz.",
            pending=durations.store_unavailable,
        ),
    ]


def _drift_alerts(ctx: _Context, alerts: _Alerts) -> list[dict[str, Any]]:
    spec = ctx.monitor.spec
    own = ctx.own
    by = "max by (monitor, monitor_namespace, model)"
    model = spec.model.name
    job = drift_job_name(ctx.monitor)
    failed = ctx.own_with('result="Failed"')
    jobs = matchers({"namespace": ctx.monitor.namespace}, f'job_name=~"{job}-[0-9]+"')
    interval = longest_interval_seconds(spec.drift.schedule)
    stale_after = spec.drift.stale_after or format_duration(2 * interval)
    status_hint = f"kubectl -n {ctx.monitor.namespace} describe modelmonitor {ctx.monitor.name}"
    drifted = (
        '{{ range query "modelmonitor_feature_drift_detected'
        + own.replace('"', '\\"')
        + ' == 1" }}{{ .Labels.feature }} {{ end }}'
    )
    return [
        alerts.alert(
            "ModelDriftDetected",
            f"{by} (modelmonitor_drift_share{own})\nand on (monitor, monitor_namespace)\n"
            f"{by} (modelmonitor_drift_detected{own}) == 1",
            "warning",
            f"{model}: data drift detected",
            "{{ $value | humanizePercentage }} of the features drifted (threshold"
            f" {number(spec.drift.drift_share)}). Drifted: {drifted}. Report and details:"
            f" {status_hint}.",
        ),
        alerts.alert(
            "ModelFeatureDriftDetected",
            "max by (monitor, monitor_namespace, model, feature)"
            f" (modelmonitor_feature_drift_detected{own}) == 1",
            "info",
            f"{model}: feature {{{{ $labels.feature }}}} drifted",
            "The distribution of {{ $labels.feature }} in the current window differs from the"
            f" reference. Details: {status_hint}.",
        ),
        alerts.alert(
            "ModelDriftJobFailed",
            # The job's own verdict, or a Job that failed before it could write one (crash,
            # OOM kill, image pull) and started within the last two intervals.
            f"max(\n  modelmonitor_drift_run_result{failed} == 1\n"
            f"  or\n  (\n    kube_job_status_failed{jobs} > 0\n    and on (namespace, job_name)\n"
            f"    time() - kube_job_status_start_time{jobs} < {2 * interval}\n  )\n)",
            "warning",
            f"{model}: drift job failed",
            f"The last drift run of {ctx.monitor.namespace}/{ctx.monitor.name} failed. See"
            f" `{status_hint}` and `kubectl -n {ctx.monitor.namespace} logs job/<the failed"
            f" {job} job>`.",
            pending=spec.alerts.durations.drift_job_failed,
        ),
        alerts.alert(
            "ModelDriftResultStale",
            f"time() - {by} (modelmonitor_drift_last_success_timestamp_seconds{own})"
            f" > {parse_duration(stale_after)}\nor\n"
            f"absent(modelmonitor_drift_last_success_timestamp_seconds{own})",
            "warning",
            f"{model}: no successful drift run for {stale_after}",
            f"The drift result of {ctx.monitor.namespace}/{ctx.monitor.name} is older than"
            f" {stale_after} (two schedule intervals): the job fails, finds too little data,"
            " or does not run.",
            pending=stale_after,
        ),
    ]


def render_prometheus_rule(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    ctx = _Context(monitor)
    alerts = _Alerts(ctx)
    group = f"modelmonitor.{monitor.namespace}.{monitor.name}"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(monitor, rules_name(monitor), COMPONENT, settings.rule_labels),
        "spec": {
            "groups": [
                {"name": f"{group}.sli", "rules": _recording_rules(ctx)},
                {
                    "name": f"{group}.alerts",
                    "rules": [
                        *_service_alerts(ctx, alerts),
                        *_availability_alerts(ctx, alerts),
                        *_drift_alerts(ctx, alerts),
                    ],
                },
            ]
        },
    }
