"""The PrometheusRule (`<name>-rules`): SLI recording rules and the monitor's alerts.

The SLIs, their burn-rate windows and the traffic they count are defined in `render/slo.py`,
which the dashboard reads too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmonitor.durations import format_duration, parse_duration
from modelmonitor.naming import ALERTING_COMPONENT, drift_job_name, rules_name
from modelmonitor.render import slo
from modelmonitor.render.common import metadata
from modelmonitor.render.model_alerts import model_alerts
from modelmonitor.render.promql import Matcher, Selector, number, rate, sum_rate
from modelmonitor.render.reportlinks import ReportLinks, report_annotations, report_links
from modelmonitor.schedule import longest_interval_seconds
from modelmonitor.settings import Settings
from modelmonitor.spec import Monitor


@dataclass(frozen=True)
class _Context:
    """What every rule needs: selectors, static labels, names."""

    monitor: Monitor

    @property
    def metrics(self) -> slo.AppMetrics:
        return slo.app_metrics(self.monitor)

    @property
    def app(self) -> Selector:
        return slo.app_selector(self.monitor)

    @property
    def model_matchers(self) -> tuple[Matcher, ...]:
        model = self.monitor.spec.model
        found = [Matcher("model", model.name)]
        if model.version is not None:
            found.append(Matcher("version", model.version))
        return tuple(found)

    @property
    def own(self) -> Selector:
        return slo.own_selector(self.monitor)

    @property
    def period_seconds(self) -> int:
        return parse_duration(self.monitor.spec.slo.window)

    def window(self, seconds: int) -> str:
        return slo.scaled_window(seconds, self.period_seconds)


def _sli_expressions(ctx: _Context, window: str) -> dict[str, str]:
    metrics = ctx.metrics
    traffic = slo.user_traffic(ctx.monitor)
    latency = ctx.monitor.spec.slo.latency
    # prometheus-client writes bucket bounds as Python floats: 0.3 -> "0.3", 1 -> "1.0".
    bucket = Matcher("le", repr(float(latency.threshold_seconds)))
    all_requests = sum_rate(metrics.requests, traffic, window)
    failed = sum_rate(metrics.requests, traffic.with_(slo.SERVER_ERRORS), window)
    fast = sum_rate(f"{metrics.request_duration}_bucket", traffic.with_(bucket), window)
    timed = sum_rate(f"{metrics.request_duration}_count", traffic, window)
    missed = f"{slo.QUALITY_OBJECTIVE_MISSED}{slo.sli_selector(ctx.monitor)}"
    return {
        # No 5xx yet means no 5xx series at all: `or vector(0)` makes that a ratio of 0, so the
        # SLI, the budget and the burn rate exist from the first request, not the first error.
        "availability": f"(\n{failed}\nor\nvector(0)\n)\n/\n{all_requests}",
        "latency": f"1 - (\n{fast}\n/\n{timed}\n)",
        # The share of the window's evaluations at which the last judgement missed the objective.
        "quality": f"avg_over_time({missed}[{window}])",
    }


def _quality_objective_rule(ctx: _Context) -> list[dict[str, Any]]:
    """1 while the last quality judgement misses the objective, 0 while it meets it; nothing
    while there is none (too few labels): time without a judgement counts for neither."""
    objective = slo.quality_objective(ctx.monitor)
    if objective is None:
        return []
    gauge = f"max by (monitor, monitor_namespace, model) ({objective.metric}{ctx.own})"
    return [
        {
            "record": slo.QUALITY_OBJECTIVE_MISSED,
            "expr": f"{gauge} {objective.missed_operator} bool {number(objective.threshold)}",
            "labels": {**slo.series_labels(ctx.monitor), "slo": "quality"},
        }
    ]


def _recording_rules(ctx: _Context) -> list[dict[str, Any]]:
    # First: the window rules below read what it records in the same evaluation.
    rules: list[dict[str, Any]] = _quality_objective_rule(ctx)
    windows = slo.burn_windows(ctx.period_seconds)
    labels = slo.series_labels(ctx.monitor)
    for window in windows:
        expressions = _sli_expressions(ctx, window)
        for objective in slo.objectives(ctx.monitor):
            rules.append(
                {
                    "record": slo.error_ratio_rate(window),
                    "expr": expressions[objective.name],
                    "labels": {**labels, "slo": objective.name},
                }
            )
    for objective in slo.objectives(ctx.monitor):
        selector = slo.sli_selector(ctx.monitor, objective)
        objective_labels = {**labels, "slo": objective.name}
        shortest = f"{slo.error_ratio_rate(windows[0])}{selector}"
        rules.append(
            {
                # Error ratio over the whole SLO period, from the shortest window's samples.
                "record": slo.ERROR_RATIO_PERIOD,
                "expr": f"avg_over_time({shortest}[{ctx.monitor.spec.slo.window}])",
                "labels": objective_labels,
            }
        )
        rules.append(
            {
                "record": slo.BUDGET_REMAINING,
                "expr": f"1 - {slo.ERROR_RATIO_PERIOD}{selector} / {number(objective.budget)}",
                "labels": objective_labels,
            }
        )
    return rules


class _Alerts:
    """Builds alert rules with the labels and annotations every alert of the monitor carries."""

    def __init__(self, ctx: _Context, links: ReportLinks | None = None) -> None:
        self.ctx = ctx
        self.links = links

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
        report: bool = False,
    ) -> dict[str, Any]:
        """One alert; `report`: it is about what a run found, so it links the runs (if a UI
        serves them)."""
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
            **(report_annotations(self.links) if report else {}),
        }
        return rule


def _availability_alerts(ctx: _Context, alerts: _Alerts) -> list[dict[str, Any]]:
    spec = ctx.monitor.spec
    found = []
    for objective in slo.objectives(ctx.monitor):
        selector = slo.sli_selector(ctx.monitor, objective)
        for severity, speed, pairs in (
            ("critical", "Fast", slo.PAGE),
            ("warning", "Slow", slo.TICKET),
        ):
            clauses = []
            for pair in pairs:
                threshold = f"({number(pair.factor)} * {number(objective.budget)})"
                long_w, short_w = ctx.window(pair.long_window), ctx.window(pair.short_window)
                clauses.append(
                    f"(\n  {slo.error_ratio_rate(long_w)}{selector} > {threshold}\nand\n"
                    f"  {slo.error_ratio_rate(short_w)}{selector} > {threshold}\n)"
                )
            name = objective.name
            found.append(
                alerts.alert(
                    f"Model{name.capitalize()}BudgetBurn{speed}",
                    "\nor\n".join(clauses),
                    severity,
                    f"{spec.model.name}: {name} error budget burning {speed.lower()}",
                    _burn_description(ctx, objective),
                    extra_labels={"slo": name},
                    # The quality objective is judged by the runs: its alerts link them.
                    report=name == "quality",
                )
            )
    return found


def _burn_description(ctx: _Context, objective: slo.Slo) -> str:
    spec = ctx.monitor.spec
    quality = slo.quality_objective(ctx.monitor)
    if objective.name == "quality" and quality is not None:
        return (
            f"The model's {quality.name} must be {quality.wanted} {number(quality.threshold)}"
            f" {number(objective.target)}% of the time over {spec.slo.window}; it missed it"
            " {{ $value | humanizePercentage }} of the recent time, and at this rate the"
            " budget runs out before the period ends."
        )
    return (
        f"The {objective.name} SLO ({number(objective.target)}% over {spec.slo.window}) of"
        f" {spec.target.service} is burning its error budget at"
        " {{ $value | humanizePercentage }} errors; at this rate the budget runs"
        " out before the period ends."
    )


def _service_alerts(ctx: _Context, alerts: _Alerts) -> list[dict[str, Any]]:
    spec = ctx.monitor.spec
    durations = spec.alerts.durations
    service = spec.target.service
    model = spec.model.name
    metrics = ctx.metrics
    model_selector = ctx.app.with_(*ctx.model_matchers)
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
            f"(max({metrics.model_loaded}{model_selector}) or vector(0)) < 1",
            "critical",
            f"{service}: model {model} is not loaded",
            f"No instance of {service} reports model {model} as loaded; predictions fail.",
            pending=durations.model_not_loaded,
        ),
        alerts.alert(
            "ModelPredictionVolumeCollapsed",
            f"{sum_rate(metrics.predictions, model_selector, '5m')}\n<\n"
            f"{number(spec.alerts.volume.min_ratio)}"
            f" * {sum_rate(metrics.predictions, model_selector, '1h')}",
            "warning",
            f"{model}: prediction volume collapsed",
            "Predictions in the last 5 minutes run at {{ $value | humanize }}/s, below"
            f" {number(spec.alerts.volume.min_ratio * 100)}% of the last hour's rate.",
            pending=durations.volume_collapse,
        ),
        alerts.alert(
            "ModelDecisionRatioShifted",
            # Each decision's share against its reference share, which the drift job reports
            # (the spec's referenceDecisionShares, else the model's registered ones).
            "abs(\n  sum by (decision) ("
            f"{rate(metrics.predictions, model_selector, decision_window)})"
            "\n  / ignoring (decision) group_left\n"
            f"  {sum_rate(metrics.predictions, model_selector, decision_window)}\n"
            "  - on (decision)\n"
            f"  max by (decision) (modelmonitor_reference_decision_share{ctx.own})\n)"
            f" > {number(spec.alerts.decisions.tolerance)}",
            "warning",
            f"{model}: share of {{{{ $labels.decision }}}} decisions far from the reference",
            "The share of {{ $labels.decision }} decisions over the last"
            f" {decision_window} differs by {{{{ $value | humanizePercentage }}}} from its"
            f" reference share (tolerance {number(spec.alerts.decisions.tolerance)}; the"
            " reference: `kubectl get mm"
            f" {ctx.monitor.name} -o jsonpath='{{.status.drift.referenceDecisionShares}}'`).",
            pending=durations.decision_ratio,
        ),
        alerts.alert(
            "ModelPredictionRecordsDropped",
            f"sum({rate(metrics.records_dropped, ctx.app, '5m')}) > 0",
            "warning",
            f"{service}: prediction records are being dropped",
            "The prediction log drops {{ $value | humanize }} records/s: drift detection sees"
            " fewer rows than were scored. Check the store and the writer's queue.",
            pending=durations.records_dropped,
        ),
        alerts.alert(
            "ModelPredictionStoreUnavailable",
            f"{metrics.store_up}{ctx.app} == 0",
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
    job = drift_job_name(ctx.monitor.name)
    failed = own.with_(Matcher("result", "Failed"))
    jobs = Selector.of(
        {"namespace": ctx.monitor.namespace}, Matcher("job_name", f"{job}-[0-9]+", "=~")
    )
    interval = longest_interval_seconds(spec.drift.schedule)
    stale_after = spec.drift.stale_after or format_duration(2 * interval)
    status_hint = f"kubectl -n {ctx.monitor.namespace} describe modelmonitor {ctx.monitor.name}"
    drifted = (
        '{{ range query "modelmonitor_feature_drift_detected'
        + str(own).replace('"', '\\"')
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
            report=True,
        ),
        alerts.alert(
            "ModelFeatureDriftDetected",
            "max by (monitor, monitor_namespace, model, feature)"
            f" (modelmonitor_feature_drift_detected{own}) == 1",
            "info",
            f"{model}: feature {{{{ $labels.feature }}}} drifted",
            "The distribution of {{ $labels.feature }} in the current window differs from the"
            f" reference. Details: {status_hint}.",
            report=True,
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
    alerts = _Alerts(ctx, report_links(monitor, settings))
    group = f"modelmonitor.{monitor.namespace}.{monitor.name}"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(
            monitor, rules_name(monitor.name), ALERTING_COMPONENT, settings.rule_labels
        ),
        "spec": {
            "groups": [
                {"name": f"{group}.sli", "rules": _recording_rules(ctx)},
                {
                    "name": f"{group}.alerts",
                    "rules": [
                        *_service_alerts(ctx, alerts),
                        *_availability_alerts(ctx, alerts),
                        *_drift_alerts(ctx, alerts),
                        *model_alerts(monitor, alerts.alert),
                    ],
                },
            ]
        },
    }
