"""Another model than the credit model, monitored through the store's contract alone.

A loan-approval model with other features (income, region, years employed), other decisions
(`approve`, the positive class its score is the probability of, and `decline`) and another
threshold registers itself in a prediction store, writes predictions and outcomes, and gets a
ModelMonitor: the drift job judges it, the operator's metrics export it, the rendered rules
alert on it with promtool, and no word of the credit model (`good`, `bad`, bad-credit) appears
in its rules or its dashboard.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from drift_job.cli import main
from modelmonitor.judgement_metrics import JudgementCollector
from modelmonitor.manifests import dump_manifests
from modelmonitor.render import render_children
from modelmonitor.render.cronjob import drift_job_args
from modelmonitor.render.prometheusrule import render_prometheus_rule
from modelmonitor.settings import Settings
from modelmonitor.spec import Monitor, parse_monitor
from prediction_store import (
    FeatureSpec,
    ModelRegistration,
    ReferenceOutput,
    create_store_engine,
    feedback,
    predictions,
    register_model,
    upgrade,
)

pytestmark = pytest.mark.prometheus

MODEL = "loan-approval"
THRESHOLD = 0.6
REGIONS = ("north", "south", "east")
DECISIONS = ("approve", "decline")
FEATURES = (
    FeatureSpec("income", "numerical"),
    FeatureSpec("region", "categorical", REGIONS),
    FeatureSpec("years_employed", "numerical"),
)
MANIFEST: dict[str, Any] = {
    "apiVersion": "monitoring.mlops.dev/v1alpha1",
    "kind": "ModelMonitor",
    "metadata": {"name": "loans", "namespace": "lending"},
    "spec": {
        "model": {"name": MODEL},
        "target": {"service": "loan-api", "metricsPrefix": "loan_api"},
        "store": {"secretRef": {"name": "loan-db"}},
        "drift": {"window": "1h", "minRows": 100},
        "quality": {"window": "1d", "minLabelled": 100},
        "fairness": {
            "favourableDecision": "approve",
            "minRowsPerGroup": 50,
            "attributes": [{"feature": "region", "reference": "north"}],
        },
        "slo": {"window": "1d", "quality": {"metric": "f1", "threshold": 0.7}},
        "alerts": {"for": {"decisionRatio": "1m"}, "decisions": {"tolerance": 0.1}},
    },
}
OWN = 'monitor="loans",monitor_namespace="lending",model="loan-approval"'


def _applicants(rng: np.random.Generator, rows: int) -> list[dict[str, Any]]:
    return [
        {
            "income": float(rng.lognormal(10.5, 0.4)),
            "region": str(rng.choice(REGIONS)),
            "years_employed": float(rng.integers(0, 30)),
        }
        for _ in range(rows)
    ]


def _score(applicant: dict[str, Any], *, penalise_south: bool) -> float:
    logit = 0.9 * (np.log(applicant["income"]) - 10.5) / 0.4 + 0.05 * applicant["years_employed"]
    if penalise_south and applicant["region"] == "south":
        logit -= 2.0
    return float(1 / (1 + np.exp(-logit)))


def _decision(score: float) -> str:
    return "approve" if score >= THRESHOLD else "decline"


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    """A store where the loan model registered itself and served a day of applications: its
    south region declined far more often, and outcomes that often contradict it."""
    rng = np.random.default_rng(7)
    engine = create_store_engine(sqlite_url)
    upgrade(engine)
    reference = _applicants(rng, 600)
    scores = [_score(a, penalise_south=False) for a in reference]
    decisions = [_decision(s) for s in scores]
    register_model(
        engine,
        ModelRegistration(
            name=MODEL,
            version="3",
            features=FEATURES,
            reference=reference,
            metrics={"f1": 0.8},
            decision_shares={
                d: decisions.count(d) / len(decisions) for d in ("approve", "decline")
            },
            positive_class="approve",
            decision_threshold=THRESHOLD,
            reference_outputs=[
                ReferenceOutput(s, d) for s, d in zip(scores, decisions, strict=True)
            ],
        ),
    )
    current = _applicants(rng, 900)
    now = datetime.now(UTC)
    rows, outcomes = [], []
    for applicant in current:
        score = _score(applicant, penalise_south=True)
        request_id = uuid.uuid4().hex
        rows.append({"request_id": request_id, "created_at": now - timedelta(minutes=10),
                     "model": MODEL, "version": "3", "features": applicant, "score": score,
                     "decision": _decision(score)})  # fmt: skip
        # What should have been: mostly the unpenalised model's call, often not.
        truth = _decision(_score(applicant, penalise_south=False))
        flipped = {"approve": "decline", "decline": "approve"}[truth]
        outcomes.append({"request_id": request_id, "recorded_at": now,
                         "outcome": flipped if rng.random() < 0.35 else truth})  # fmt: skip
    with engine.begin() as connection:
        connection.execute(predictions.insert(), rows)
        connection.execute(feedback.insert(), outcomes)
    engine.dispose()
    return sqlite_url


@pytest.fixture
def monitor() -> Monitor:
    return parse_monitor(MANIFEST)


def _judge(store_url: str, monitor: Monitor, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The drift job with the arguments the operator's CronJob gives it (no status written)."""
    args = drift_job_args(monitor)
    args = args[: args.index("--monitor")]
    assert main(["--store-url", store_url, *args, "--output", "json"]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_the_job_judges_the_model_in_its_own_terms(
    store_url: str, monitor: Monitor, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _judge(store_url, monitor, capsys)
    assert document["result"] == "Completed"
    assert document["modelVersion"] == "3"
    assert {f["name"] for f in document["features"]} == {"income", "region", "years_employed"}
    assert set(document["referenceDecisionShares"]) == {"approve", "decline"}
    # The south region declined far more: the decisions moved away from the reference's.
    assert document["prediction"]["drifted"] is True
    assert set(document["prediction"]["decisionShares"]) == {"approve", "decline"}
    quality = document["quality"]
    assert (quality["positiveClass"], quality["decisionThreshold"]) == ("approve", THRESHOLD)
    assert quality["rows"]["labelled"] == 900
    assert quality["f1"] < 0.7
    region = document["fairness"]["attributes"][0]
    groups = {g["name"]: g for g in region["groups"]}
    assert set(groups) == set(REGIONS)
    assert groups["south"]["disparateImpactRatio"] < 0.8
    assert region["disparity"] is True
    assert document["fairness"]["favourableDecision"] == "approve"


def _series(store_url: str, monitor: Monitor, status: dict[str, Any]) -> list[dict[str, str]]:
    """What the operator would export for this status, and the service's decision counters,
    as promtool input series."""
    collector = JudgementCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.observe("lending", "loans", MODEL, status)
    series = []
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            series.append({"series": f"{sample.name}{{{labels},namespace=\"monitoring\"}}",
                           "values": f"{sample.value}x30"})  # fmt: skip
    shares = status["drift"]["prediction"]["decisionShares"]
    app = 'job="loan-api",namespace="lending",model="loan-approval",version="3"'
    for decision, share in shares.items():
        series.append({"series": f'loan_api_predictions_total{{{app},decision="{decision}"}}',
                       "values": f"0+{round(share * 600)}x30"})  # fmt: skip
    return series


def test_its_rules_alert_in_its_words(
    store_url: str,
    monitor: Monitor,
    settings: Settings,
    promtool: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = _judge(store_url, monitor, capsys)
    status = {"drift": document, "quality": document["quality"], "fairness": document["fairness"]}
    rules = render_prometheus_rule(monitor, settings)
    worded = {"ModelFairnessDisparity", "ModelQualityDegraded"}
    groups = [
        {**group, "rules": [
            rule if rule.get("alert") in worded or "record" in rule
            else {k: v for k, v in rule.items() if k != "annotations"}
            for rule in group["rules"]]}
        for group in rules["spec"]["groups"]
    ]  # fmt: skip
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    f1 = document["quality"]["f1"]
    base = {"model": MODEL, "monitor": "loans", "namespace": "lending"}
    decline_share = document["prediction"]["decisionShares"]["decline"]
    reference_decline = document["referenceDecisionShares"]["decline"]
    south = next(g for g in document["fairness"]["attributes"][0]["groups"] if g["name"] == "south")
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(store_url, monitor, status),
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "ModelFairnessDisparity",
                        "exp_alerts": [
                            {
                                "exp_labels": {**base, "severity": "warning",
                                               "monitor_namespace": "lending",
                                               "attribute": "region", "group": "south",
                                               "reference": "north"},
                                "exp_annotations": {
                                    "summary": "loan-approval: region group south treated"
                                    " unequally",
                                    "description": "Applicants of group south (region) get the"
                                    " favourable decision (approve) at"
                                    f" {south['disparateImpactRatio']:.2f} times the rate of"
                                    " group north, outside [0.8, 1.25] (every group holds at"
                                    " least 50 predictions). Per group: `kubectl -n lending get"
                                    " modelmonitor loans -o jsonpath='{.status.fairness}'`.",
                                    "runbook_url": "https://github.com/mlops-dev/credit-model-"
                                    "monitoring/blob/main/docs/runbooks.md#modelfairnessdisparity",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "ModelQualityDegraded",
                        "exp_alerts": [{
                            "exp_labels": {**base, "severity": "warning",
                                           "monitor_namespace": "lending", "slo": "quality"},
                            "exp_annotations": {
                                "summary": f"loan-approval: F1 score {f1:.3f} misses its"
                                " objective",
                                "description": "The model's F1 score over the predictions whose"
                                f" outcome arrived is {f1:.3f}; the quality objective wants it"
                                " at least 0.7. Coverage and every metric: `kubectl -n lending"
                                " get modelmonitor loans -o jsonpath='{.status.quality}'`.",
                                "runbook_url": "https://github.com/mlops-dev/credit-model-"
                                "monitoring/blob/main/docs/runbooks.md#modelqualitydegraded",
                            },
                        }],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "ModelQualityBudgetBurnFast",
                        "exp_alerts": [{"exp_labels": {**base, "severity": "critical",
                                                       "monitor_namespace": "lending",
                                                       "slo": "quality"}}],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "ModelPredictionDriftDetected",
                        "exp_alerts": [{"exp_labels": {**base, "severity": "warning",
                                                       "monitor_namespace": "lending",
                                                       "column": "prediction_decision"}}]
                        + ([{"exp_labels": {**base, "severity": "warning",
                                            "monitor_namespace": "lending",
                                            "column": "prediction_score"}}]
                           if any(c["drifted"] and c["name"] == "prediction_score"
                                  for c in document["prediction"]["columns"]) else []),
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "ModelDecisionRatioShifted",
                        "exp_alerts": [
                            {"exp_labels": {**base, "severity": "warning", "decision": d}}
                            for d in ("approve", "decline")
                        ],
                    },
                ],
            }
        ],
    }  # fmt: skip
    assert abs(decline_share - reference_decline) > 0.1, "the scenario should shift decisions"
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_word_of_the_credit_model_in_its_rules_or_dashboard(
    monitor: Monitor, settings: Settings
) -> None:
    rendered = dump_manifests(render_children(monitor, settings))
    rules_and_dashboard = "\n".join(
        json.dumps(child)
        for child in render_children(monitor, settings)
        if child["kind"] in {"PrometheusRule", "ConfigMap"}
    )
    for word in (r"\bbad\b", r"\bgood\b", "bad-credit", "credit_api", "credit-score"):
        assert not re.search(word, rules_and_dashboard), word
    assert "approve" in rules_and_dashboard  # the favourable decision, from the spec
    assert "loan_api_predictions_total" in rendered
    dashboard = json.loads(
        next(
            iter(
                next(c for c in render_children(monitor, settings) if c["kind"] == "ConfigMap")[
                    "data"
                ].values()
            )
        )
    )
    titles = [panel.get("title", "") for panel in dashboard["panels"]]
    assert "Selection rate (approve) by region" in titles
    assert "Disparate impact ratio by region (vs north)" in titles
