"""The rendered rules against synthetic series with `promtool test rules`.

Each alert is shown to fire when its condition holds long enough and to stay quiet otherwise,
burn-rate windows included (a burst that stopped must not page once the short window is clean).
The monitor is the test-sized one (a one-day SLO: windows of minutes) unless a test says so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmonitor.render.prometheusrule import render_prometheus_rule
from modelmonitor.settings import Settings

from .support import CASES, EXAMPLE, monitor_from

pytestmark = pytest.mark.prometheus

APP = 'job="credit-api",namespace="risk"'
ROUTE = 'method="POST",route="/api/v1/predict"'
JOB = 'namespace="risk",job_name="credit-score-drift-2900"'
OWN = 'monitor="credit-score",monitor_namespace="risk",model="credit-score",namespace="monitoring"'
BASE = {"model": "credit-score", "monitor": "credit-score", "namespace": "risk"}
SLI = {**BASE, "monitor_namespace": "risk"}
ADDRESS = "10.0.0.1:8000"
INSTANCE = f'instance="{ADDRESS}"'
STORE_UP = "credit_api_prediction_store_up"


def requests(ok: str, failed: str) -> list[dict[str, str]]:
    return [
        {"series": f'credit_api_requests_total{{{APP},{ROUTE},status="200"}}', "values": ok},
        {"series": f'credit_api_requests_total{{{APP},{ROUTE},status="500"}}', "values": failed},
    ]


def latency(total: str, fast: str) -> list[dict[str, str]]:
    duration = "credit_api_request_duration_seconds"
    return [
        {"series": f"{duration}_count{{{APP},{ROUTE}}}", "values": total},
        {"series": f'{duration}_bucket{{{APP},{ROUTE},le="0.3"}}', "values": fast},
        {"series": f'{duration}_bucket{{{APP},{ROUTE},le="+Inf"}}', "values": total},
    ]


def predictions(good: str, bad: str) -> list[dict[str, str]]:
    series = 'credit_api_predictions_total{%s,model="credit-score",version="1",decision="%s"}'
    return [
        {"series": series % (APP, "good"), "values": good},
        {"series": series % (APP, "bad"), "values": bad},
    ]


def reference_shares(**shares: float) -> list[dict[str, str]]:
    return [
        {
            "series": f'modelmonitor_reference_decision_share{{{OWN},decision="{decision}"}}',
            "values": f"{share}x60",
        }
        for decision, share in shares.items()
    ]


def quality_result(result: str) -> str:
    return f'modelmonitor_quality_run_result{{{OWN},result="{result}"}}'


def output_drift(column: str) -> str:
    return f'modelmonitor_prediction_drift_detected{{{OWN},column="{column}"}}'


def fairness(ratio_yes: str, rows_yes: str, rows_no: str) -> list[dict[str, str]]:
    """The foreign_worker attribute of the test-sized monitor: group yes against group no."""
    group = 'attribute="foreign_worker",group="%s"'
    ratio = 'modelmonitor_fairness_disparate_impact_ratio{%s,%s,reference="no"}'
    rows = "modelmonitor_fairness_group_rows{%s,%s}"
    return [
        {"series": ratio % (OWN, group % "yes"), "values": ratio_yes},
        {"series": ratio % (OWN, group % "no"), "values": "1x15"},
        {"series": rows % (OWN, group % "yes"), "values": rows_yes},
        {"series": rows % (OWN, group % "no"), "values": rows_no},
    ]


def disparity(group: str) -> dict[str, str]:
    return {
        **SLI,
        "severity": "warning",
        "attribute": "foreign_worker",
        "group": group,
        "reference": "no",
    }


def fires(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": dict(label)} for label in labels],
    }


def quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def burn(severity: str, slo: str) -> dict[str, str]:
    return {**SLI, "severity": severity, "slo": slo}


def of_the_instance(severity: str) -> dict[str, str]:
    """The labels of an alert about the one target in these series."""
    return {**BASE, "severity": severity, "job": "credit-api", "instance": ADDRESS}


SCENARIOS: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = {
    "availability burning fast pages and tickets": (
        requests("0+100x60", "0+10x60"),
        [
            fires("ModelAvailabilityBudgetBurnFast", "30m", burn("critical", "availability")),
            fires("ModelAvailabilityBudgetBurnSlow", "30m", burn("warning", "availability")),
        ],
    ),
    "availability within budget is quiet": (
        requests("0+100x60", "0+0.1x60"),
        [
            quiet("ModelAvailabilityBudgetBurnFast", "30m"),
            quiet("ModelAvailabilityBudgetBurnSlow", "30m"),
        ],
    ),
    "a burst that stopped pages only while the short windows see it": (
        requests("0+100x60", "0+10x20 200+0x40"),
        [
            fires("ModelAvailabilityBudgetBurnFast", "15m", burn("critical", "availability")),
            quiet("ModelAvailabilityBudgetBurnFast", "40m"),
            quiet("ModelAvailabilityBudgetBurnSlow", "40m"),
        ],
    ),
    "a slow burn opens a ticket but does not page": (
        requests("0+98x60", "0+2x60"),
        [
            quiet("ModelAvailabilityBudgetBurnFast", "60m"),
            fires("ModelAvailabilityBudgetBurnSlow", "60m", burn("warning", "availability")),
        ],
    ),
    "slow requests burn the latency budget": (
        latency("0+100x60", "0+20x60"),
        [fires("ModelLatencyBudgetBurnFast", "30m", burn("critical", "latency"))],
    ),
    "fast requests keep the latency budget": (
        latency("0+100x60", "0+99x60"),
        [
            quiet("ModelLatencyBudgetBurnFast", "30m"),
            quiet("ModelLatencyBudgetBurnSlow", "30m"),
        ],
    ),
    "a target down": (
        [{"series": f"up{{{APP},{INSTANCE}}}", "values": "0x10"}],
        [
            quiet("ModelApiDown", "30s"),
            fires("ModelApiDown", "5m", of_the_instance("critical")),
            quiet("ModelApiNoTargets", "5m"),
        ],
    ),
    "a target up": (
        [{"series": f"up{{{APP},{INSTANCE}}}", "values": "1x10"}],
        [quiet("ModelApiDown", "5m"), quiet("ModelApiNoTargets", "5m")],
    ),
    "no target at all": (
        [{"series": 'up{job="other",namespace="risk"}', "values": "1x10"}],
        [fires("ModelApiNoTargets", "5m", {**BASE, "severity": "critical", "job": "credit-api"})],
    ),
    "model not loaded": (
        [
            {
                "series": f'credit_api_model_loaded{{{APP},model="credit-score",version="1"}}',
                "values": "0x10",
            }
        ],
        [fires("ModelNotLoaded", "5m", {**BASE, "severity": "critical"})],
    ),
    "model loaded": (
        [
            {
                "series": f'credit_api_model_loaded{{{APP},model="credit-score",version="1"}}',
                "values": "1x10",
            }
        ],
        [quiet("ModelNotLoaded", "5m")],
    ),
    "prediction volume collapses": (
        predictions("0+100x60 6000+0x20", "0+30x60 1800+0x20"),
        [
            quiet("ModelPredictionVolumeCollapsed", "55m"),
            fires("ModelPredictionVolumeCollapsed", "75m", {**BASE, "severity": "warning"}),
        ],
    ),
    "steady prediction volume": (
        predictions("0+70x80", "0+30x80"),
        [quiet("ModelPredictionVolumeCollapsed", "75m")],
    ),
    "bad share far above the reference": (
        predictions("0+40x60", "0+60x60") + reference_shares(good=0.7, bad=0.3),
        [
            quiet("ModelDecisionRatioShifted", "3m"),  # pending (for: 5m)
            fires(
                "ModelDecisionRatioShifted",
                "30m",
                {**BASE, "severity": "warning", "decision": "bad"},
                {**BASE, "severity": "warning", "decision": "good"},
            ),
        ],
    ),
    "bad share at the reference": (
        predictions("0+70x60", "0+30x60") + reference_shares(good=0.7, bad=0.3),
        [quiet("ModelDecisionRatioShifted", "30m")],
    ),
    "no reference shares reported yet": (
        predictions("0+40x60", "0+60x60"),
        [quiet("ModelDecisionRatioShifted", "30m")],
    ),
    "the model's score drifted": (
        [
            {"series": output_drift("prediction_score"), "values": "0x5 1x10"},
            {"series": output_drift("prediction_decision"), "values": "0x15"},
        ],
        [
            quiet("ModelPredictionDriftDetected", "3m"),
            fires(
                "ModelPredictionDriftDetected",
                "10m",
                {**SLI, "severity": "warning", "column": "prediction_score"},
            ),
        ],
    ),
    "the model's output as the reference's": (
        [{"series": output_drift("prediction_score"), "values": "0x15"}],
        [quiet("ModelPredictionDriftDetected", "10m")],
    ),
    "quality below its objective burns the quality budget": (
        # ROC AUC 0.8 for 20 minutes, then 0.6: below the objective of 0.7.
        [{"series": f"modelmonitor_quality_roc_auc{{{OWN}}}", "values": "0.8x20 0.6x40"}],
        [
            quiet("ModelQualityDegraded", "15m"),
            quiet("ModelQualityBudgetBurnFast", "15m"),
            fires("ModelQualityDegraded", "30m", {**SLI, "severity": "warning", "slo": "quality"}),
            fires("ModelQualityBudgetBurnFast", "30m", burn("critical", "quality")),
            fires("ModelQualityBudgetBurnSlow", "60m", burn("warning", "quality")),
        ],
    ),
    "quality at its objective keeps the budget": (
        [{"series": f"modelmonitor_quality_roc_auc{{{OWN}}}", "values": "0.75x60"}],
        [
            quiet("ModelQualityDegraded", "30m"),
            quiet("ModelQualityBudgetBurnFast", "30m"),
            quiet("ModelQualityBudgetBurnSlow", "60m"),
        ],
    ),
    "a quality dip that recovered stops paging": (
        [{"series": f"modelmonitor_quality_roc_auc{{{OWN}}}", "values": "0.8x10 0.6x10 0.8x40"}],
        [
            fires("ModelQualityBudgetBurnFast", "18m", burn("critical", "quality")),
            quiet("ModelQualityBudgetBurnFast", "40m"),
            quiet("ModelQualityDegraded", "40m"),
        ],
    ),
    "too few labels to judge the quality": (
        [
            {
                "series": f'modelmonitor_quality_run_result{{{OWN},result="InsufficientLabels"}}',
                "values": "1x60",
            }
        ],
        [
            quiet("ModelQualityDegraded", "30m"),
            quiet("ModelQualityBudgetBurnFast", "30m"),
            quiet("ModelQualityBudgetBurnSlow", "60m"),
        ],
    ),
    "one group far less often favoured": (
        fairness(ratio_yes="1x5 0.5x10", rows_yes="200x15", rows_no="40x15"),
        [
            quiet("ModelFairnessDisparity", "3m"),
            fires("ModelFairnessDisparity", "10m", disparity("yes")),
        ],
    ),
    "one group far more often favoured": (
        fairness(ratio_yes="1.4x15", rows_yes="200x15", rows_no="40x15"),
        [fires("ModelFairnessDisparity", "10m", disparity("yes"))],
    ),
    "a disparity in a group too small to judge": (
        fairness(ratio_yes="0.5x15", rows_yes="200x15", rows_no="10x15"),
        [quiet("ModelFairnessDisparity", "10m")],
    ),
    "groups within the four-fifths rule": (
        fairness(ratio_yes="0.85x15", rows_yes="200x15", rows_no="40x15"),
        [quiet("ModelFairnessDisparity", "10m")],
    ),
    "prediction records dropped": (
        [
            {
                "series": f'credit_api_prediction_log_dropped_total{{{APP},reason="queue_full"}}',
                "values": "0+5x10",
            }
        ],
        [fires("ModelPredictionRecordsDropped", "5m", {**BASE, "severity": "warning"})],
    ),
    "no records dropped": (
        [
            {
                "series": f'credit_api_prediction_log_dropped_total{{{APP},reason="queue_full"}}',
                "values": "0x10",
            }
        ],
        [quiet("ModelPredictionRecordsDropped", "5m")],
    ),
    "the prediction store unavailable": (
        # Down from the second minute: pending at first (for: 1m), then firing.
        [{"series": f"{STORE_UP}{{{APP},{INSTANCE}}}", "values": "1 1 0x10"}],
        [
            quiet("ModelPredictionStoreUnavailable", "2m"),
            fires("ModelPredictionStoreUnavailable", "4m", of_the_instance("warning")),
        ],
    ),
    "the prediction store up": (
        [{"series": f"{STORE_UP}{{{APP},{INSTANCE}}}", "values": "1x10"}],
        [quiet("ModelPredictionStoreUnavailable", "8m")],
    ),
    "dataset and feature drift": (
        [
            {"series": f"modelmonitor_drift_detected{{{OWN}}}", "values": "1x10"},
            {"series": f"modelmonitor_drift_share{{{OWN}}}", "values": "0.6x10"},
            {
                "series": f'modelmonitor_feature_drift_detected{{{OWN},feature="age_in_years"}}',
                "values": "1x10",
            },
            {
                "series": f'modelmonitor_feature_drift_detected{{{OWN},feature="purpose"}}',
                "values": "0x10",
            },
        ],
        [
            fires("ModelDriftDetected", "2m", {**SLI, "severity": "warning"}),
            fires(
                "ModelFeatureDriftDetected",
                "2m",
                {**SLI, "severity": "info", "feature": "age_in_years"},
            ),
        ],
    ),
    "no drift": (
        [
            {"series": f"modelmonitor_drift_detected{{{OWN}}}", "values": "0x10"},
            {"series": f"modelmonitor_drift_share{{{OWN}}}", "values": "0.1x10"},
            {
                "series": f'modelmonitor_feature_drift_detected{{{OWN},feature="age_in_years"}}',
                "values": "0x10",
            },
        ],
        [quiet("ModelDriftDetected", "2m"), quiet("ModelFeatureDriftDetected", "2m")],
    ),
    "drift job reports failure": (
        [
            {
                "series": f'modelmonitor_drift_run_result{{{OWN},result="Failed"}}',
                "values": "1x10",
            },
            {
                "series": f'modelmonitor_drift_run_result{{{OWN},result="Completed"}}',
                "values": "0x10",
            },
        ],
        [fires("ModelDriftJobFailed", "5m", {**BASE, "severity": "warning"})],
    ),
    "drift job pod failed recently, then long ago": (
        [
            {
                "series": f"kube_job_status_failed{{{JOB}}}",
                "values": "1x30",
            },
            {
                "series": f"kube_job_status_start_time{{{JOB}}}",
                "values": "0x30",
            },
        ],
        [
            fires("ModelDriftJobFailed", "5m", {**BASE, "severity": "warning"}),
            quiet("ModelDriftJobFailed", "20m"),
        ],
    ),
    "drift job succeeded": (
        [
            {
                "series": f'modelmonitor_drift_run_result{{{OWN},result="Failed"}}',
                "values": "0x10",
            },
            {
                "series": f'modelmonitor_drift_run_result{{{OWN},result="Completed"}}',
                "values": "1x10",
            },
        ],
        [quiet("ModelDriftJobFailed", "5m")],
    ),
    "drift result goes stale": (
        [
            {
                "series": f"modelmonitor_drift_last_success_timestamp_seconds{{{OWN}}}",
                "values": "0x40",
            }
        ],
        [
            quiet("ModelDriftResultStale", "15m"),
            fires("ModelDriftResultStale", "25m", {**SLI, "severity": "warning"}),
        ],
    ),
    "drift result kept fresh": (
        [
            {
                "series": f"modelmonitor_drift_last_success_timestamp_seconds{{{OWN}}}",
                "values": "0+60x40",
            }
        ],
        [quiet("ModelDriftResultStale", "25m")],
    ),
    "drift never ran": (
        [{"series": 'up{job="other"}', "values": "1x20"}],
        [
            quiet("ModelDriftResultStale", "5m"),
            fires(
                "ModelDriftResultStale",
                "15m",
                {**BASE, "severity": "warning", "monitor_namespace": "risk"},
            ),
        ],
    ),
}


def _without_annotations(rules: dict[str, Any]) -> dict[str, Any]:
    """The rules with annotations dropped: the firing tests check expressions and labels (promtool
    compares annotations exactly); test_annotations_are_expanded checks the templates."""
    groups = [
        {
            **group,
            "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in group["rules"]],
        }
        for group in rules["spec"]["groups"]
    ]
    return {"spec": {"groups": groups}}


def _run_promtool(promtool: str, folder: Path, rules: dict[str, Any], tests: list[Any]) -> None:
    (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": rules["spec"]["groups"]}))
    (folder / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_alerts_fire_and_stay_quiet(
    scenario: str, promtool: str, settings: Settings, tmp_path: Path
) -> None:
    series, checks = SCENARIOS[scenario]
    rules = render_prometheus_rule(monitor_from(CASES / "test-sized-monitor.yaml"), settings)
    test = {"interval": "1m", "input_series": series, "alert_rule_test": checks}
    rules = _without_annotations(rules)
    _run_promtool(promtool, tmp_path, rules, [test])


def test_production_windows_page_on_a_fast_burn_only_while_it_lasts(
    promtool: str, settings: Settings, tmp_path: Path
) -> None:
    """The 30-day defaults: 1h/5m at 14.4x pages; 10 minutes after the errors stop it is quiet."""
    rules = _without_annotations(render_prometheus_rule(monitor_from(EXAMPLE, "risk"), settings))
    page = {**burn("critical", "availability"), "team": "risk"}
    test = {
        "interval": "1m",
        "input_series": requests("0+100x150", "0+20x90 1800+0x60"),
        "alert_rule_test": [
            fires("ModelAvailabilityBudgetBurnFast", "60m", page),
            quiet("ModelAvailabilityBudgetBurnFast", "125m"),
        ],
    }
    _run_promtool(promtool, tmp_path, rules, [test])


def test_a_broken_expectation_fails(promtool: str, settings: Settings, tmp_path: Path) -> None:
    """Guards the harness: promtool must report an alert that did not fire."""
    rules = _without_annotations(
        render_prometheus_rule(monitor_from(CASES / "test-sized-monitor.yaml"), settings)
    )
    series, _ = SCENARIOS["availability within budget is quiet"]
    test = {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            fires("ModelAvailabilityBudgetBurnFast", "30m", burn("critical", "availability"))
        ],
    }
    with pytest.raises(AssertionError, match="ModelAvailabilityBudgetBurnFast"):
        _run_promtool(promtool, tmp_path, rules, [test])


def test_every_alert_has_severity_annotations_and_runbook(settings: Settings) -> None:
    rules = render_prometheus_rule(monitor_from(EXAMPLE), settings)
    alerts = [
        rule for group in rules["spec"]["groups"] for rule in group["rules"] if "alert" in rule
    ]
    names = {alert["alert"] for alert in alerts}
    assert {
        scenario_alert["alertname"] for _, checks in SCENARIOS.values() for scenario_alert in checks
    } == names
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        assert alert["labels"]["model"] == "credit-score"
        assert alert["labels"]["team"] == "risk"
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
        assert alert["annotations"]["runbook_url"].endswith("#" + alert["alert"].lower())


def test_drift_annotations_name_the_drifted_features(
    promtool: str, settings: Settings, tmp_path: Path
) -> None:
    rules = render_prometheus_rule(monitor_from(CASES / "test-sized-monitor.yaml"), settings)
    series, _ = SCENARIOS["dataset and feature drift"]
    expected = {
        "exp_labels": {**SLI, "severity": "warning"},
        "exp_annotations": {
            "summary": "credit-score: data drift detected",
            "description": "60% of the features drifted (threshold 0.5). Drifted: age_in_years ."
            " Report and details: kubectl -n risk describe modelmonitor credit-score.",
            "runbook_url": "https://github.com/mlops-dev/credit-model-monitoring/blob/main/docs/"
            "runbooks.md#modeldriftdetected",
        },
    }
    test = {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "ModelDriftDetected", "exp_alerts": [expected]}
        ],
    }
    _run_promtool(promtool, tmp_path, rules, [test])
