"""The dashboard rows on the model itself: its quality from ground truth (with the quality
objective) and fairness, one pair of panels per protected attribute."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as gd

from modelmonitor.render import slo
from modelmonitor.render.panels import REFS, query, series, stat_panel
from modelmonitor.render.promql import Matcher, number
from modelmonitor.spec import Monitor


def quality_panels(monitor: Monitor) -> list[Any]:
    quality = monitor.spec.quality
    if quality is None:
        return []
    own = slo.own_selector(monitor)
    ranking = [
        query(f"max({slo.QUALITY_METRICS[key]}{own})", slo.QUALITY_METRIC_NAMES[key], ref)
        for ref, key in zip(REFS, ("rocAuc", "precision", "recall", "f1"), strict=False)
    ]
    objective = slo.quality_objective(monitor)
    if objective is not None:
        ranking.append(
            query(f"vector({number(objective.threshold)})", f"objective ({objective.name})", "E")
        )
    return [
        gd.Row(
            f"Quality from ground truth ({quality.window}, outcomes after {quality.label_delay})"
        ),
        series("Quality of the labelled predictions", "none", *ranking).min(0).max(1),
        series(
            "Calibration (lower is better)",
            "none",
            query(f"max(modelmonitor_quality_brier_score{own})", "Brier score"),
            query(f"max(modelmonitor_quality_calibration_error{own})", "calibration error", "B"),
        ).min(0),
        series(
            "Positive rate: outcomes against decisions",
            "percentunit",
            query(f"max(modelmonitor_quality_actual_positive_rate{own})", "actual"),
            query(f"max(modelmonitor_quality_predicted_positive_rate{own})", "predicted", "B"),
        )
        .min(0)
        .max(1),
        series(
            "Label coverage (predictions with an outcome)",
            "percentunit",
            query(f"max(modelmonitor_quality_label_coverage_ratio{own})", "coverage"),
        )
        .min(0)
        .max(1),
        stat_panel(
            "Predictions with an outcome",
            "short",
            query(f"max(modelmonitor_quality_labelled_rows{own})", "labelled"),
        ),
    ]


def fairness_panels(monitor: Monitor) -> list[Any]:
    fairness = monitor.spec.fairness
    if fairness is None:
        return []
    own = slo.own_selector(monitor)
    low = number(fairness.min_disparate_impact_ratio)
    high = number(fairness.max_disparate_impact_ratio)
    panels: list[Any] = [gd.Row(f"Fairness (favourable decision: {fairness.favourable_decision})")]
    for attribute in fairness.attributes:
        selector = own.with_(Matcher("attribute", attribute.feature))
        panels += [
            series(
                f"Disparate impact ratio by {attribute.feature} (vs {attribute.reference})",
                "none",
                query(
                    f"max by (group) (modelmonitor_fairness_disparate_impact_ratio{selector})",
                    "{{group}}",
                ),
                query(f"vector({low})", "lower bound", "B"),
                query(f"vector({high})", "upper bound", "C"),
            ).min(0),
            series(
                f"Selection rate ({fairness.favourable_decision}) by {attribute.feature}",
                "percentunit",
                query(
                    f"max by (group) (modelmonitor_fairness_selection_rate{selector})",
                    "{{group}}",
                ),
                query(
                    "max by (group)"
                    f" (modelmonitor_fairness_true_positive_rate_difference{selector})",
                    "{{group}} true-positive rate gap",
                    "B",
                ),
            ),
        ]
    return panels


def judgement_panels(monitor: Monitor) -> list[Any]:
    return [*quality_panels(monitor), *fairness_panels(monitor)]
