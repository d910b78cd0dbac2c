"""The alerts on the model itself, beyond its inputs: its quality against the quality
objective, fairness across protected groups, and the drift of its own output.

Their words come from the spec (the objective's metric, the favourable decision) and from the
series' labels (the decision, the attribute, the group), never from one model's vocabulary, so
any registered model gets the same rules. Each is about what a drift run found, so each links
the monitor's runs in the Evidently UI (where one serves them), as the drift alerts do.
"""

from __future__ import annotations

from typing import Any, Protocol

from modelmonitor.render import slo
from modelmonitor.render.promql import number
from modelmonitor.spec import Monitor

BY_MONITOR = "monitor, monitor_namespace, model"


class AlertFactory(Protocol):
    """Builds one alert rule with the labels and annotations every alert of the monitor has."""

    def __call__(
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
    ) -> dict[str, Any]: ...


def _status_hint(monitor: Monitor, field: str) -> str:
    return (
        f"kubectl -n {monitor.namespace} get modelmonitor {monitor.name}"
        f" -o jsonpath='{{.status.{field}}}'"
    )


def quality_alerts(monitor: Monitor, alert: AlertFactory) -> list[dict[str, Any]]:
    """ModelQualityDegraded: the last judgement misses the quality objective."""
    objective = slo.quality_objective(monitor)
    if objective is None:
        return []
    own = slo.own_selector(monitor)
    model = monitor.spec.model.name
    bound = number(objective.threshold)
    return [
        alert(
            "ModelQualityDegraded",
            f"max by ({BY_MONITOR}) ({objective.metric}{own}) {objective.missed_operator} {bound}",
            "warning",
            f'{model}: {objective.name} {{{{ $value | printf "%.3f" }}}} misses its objective',
            f"The model's {objective.name} over the predictions whose outcome arrived is"
            f' {{{{ $value | printf "%.3f" }}}}; the quality objective wants it'
            f" {objective.wanted} {bound}. Coverage and every metric:"
            f" `{_status_hint(monitor, 'quality')}`.",
            extra_labels={"slo": "quality"},
            report=True,
        )
    ]


def fairness_alerts(monitor: Monitor, alert: AlertFactory) -> list[dict[str, Any]]:
    """ModelFairnessDisparity: a group's disparate impact ratio out of bounds, every group of the
    attribute holding enough rows to judge."""
    fairness = monitor.spec.fairness
    if fairness is None:
        return []
    own = slo.own_selector(monitor)
    by_group = f"max by ({BY_MONITOR}, attribute, group, reference)"
    ratio = f"{by_group} (modelmonitor_fairness_disparate_impact_ratio{own})"
    low, high = (
        number(fairness.min_disparate_impact_ratio),
        number(fairness.max_disparate_impact_ratio),
    )
    rows = f"min by (monitor, monitor_namespace, attribute) (modelmonitor_fairness_group_rows{own})"
    return [
        alert(
            "ModelFairnessDisparity",
            f"(\n  {ratio} < {low}\n  or\n  {ratio} > {high}\n)\n"
            f"and on (monitor, monitor_namespace, attribute)\n"
            f"  {rows} >= {fairness.min_rows_per_group}",
            "warning",
            f"{monitor.spec.model.name}: {{{{ $labels.attribute }}}} group"
            " {{ $labels.group }} treated unequally",
            "Applicants of group {{ $labels.group }} ({{ $labels.attribute }}) get the"
            f" favourable decision ({fairness.favourable_decision}) at"
            ' {{ $value | printf "%.2f" }} times the rate of group {{ $labels.reference }},'
            f" outside [{low}, {high}] (every group holds at least"
            f" {fairness.min_rows_per_group} predictions). Per group:"
            f" `{_status_hint(monitor, 'fairness')}`.",
            report=True,
        )
    ]


def prediction_drift_alerts(monitor: Monitor, alert: AlertFactory) -> list[dict[str, Any]]:
    """ModelPredictionDriftDetected: the model's scores or decisions moved away from the
    reference's (the model's output on its reference sample, or the spec's shares)."""
    own = slo.own_selector(monitor)
    return [
        alert(
            "ModelPredictionDriftDetected",
            f"max by ({BY_MONITOR}, column) (modelmonitor_prediction_drift_detected{own}) == 1",
            "warning",
            f"{monitor.spec.model.name}: the model's {{{{ $labels.column }}}} drifted",
            "The distribution of the model's own output ({{ $labels.column }}) in the last"
            f" {monitor.spec.drift.window} differs from the reference's. Scores and shares:"
            f" `{_status_hint(monitor, 'drift.prediction')}`.",
            report=True,
        )
    ]


def model_alerts(monitor: Monitor, alert: AlertFactory) -> list[dict[str, Any]]:
    return [
        *prediction_drift_alerts(monitor, alert),
        *quality_alerts(monitor, alert),
        *fairness_alerts(monitor, alert),
    ]
