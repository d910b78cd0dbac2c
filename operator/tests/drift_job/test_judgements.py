"""Quality, fairness and output drift through the drift-job CLI, against a real store.

The metrics are checked against scikit-learn and fairlearn computed here on the same rows (no
sampling at these sizes), so the job's numbers are the libraries' numbers.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently.core.metric_types import CountValue
from evidently.ui.workspace import Workspace
from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate
from sklearn.metrics import (
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from drift_job.cli import main
from modelmonitor.reportsui import project_id
from prediction_store import ReferenceOutput

from .conftest import MODEL, Store, german_credit_labels

FAIRNESS = {
    "favourableDecision": "good",
    "minRowsPerGroup": 20,
    "attributes": [
        {
            "feature": "age_in_years",
            "reference": "25-59",
            "bins": [
                {"name": "under-25", "below": 25},
                {"name": "25-59", "below": 60},
                {"name": "60-and-over"},
            ],
        },
        {
            "feature": "personal_status_and_sex",
            "reference": "male",
            "groups": [
                {"name": "female", "values": ["female : divorced/separated/married"]},
                {
                    "name": "male",
                    "values": [
                        "male : single",
                        "male : married/widowed",
                        "male : divorced/separated",
                    ],
                },
            ],
        },
        {"feature": "foreign_worker", "reference": "no"},
    ],
}


def _scores(frame: pd.DataFrame) -> np.ndarray:
    """A plausible model: long, large credits without a checking account score as risky."""
    logit = (
        0.045 * frame["duration_in_month"]
        + 0.00008 * frame["credit_amount"]
        - 0.06 * (frame["age_in_years"] - 35)
        - 1.4 * (frame["status_of_existing_checking_account"] == "no checking account")
        - 1.6
    )
    scores: np.ndarray = 1 / (1 + np.exp(-logit.to_numpy(dtype=np.float64)))
    return scores


def _decide(scores: np.ndarray, threshold: float = 0.5) -> list[str]:
    return ["bad" if score >= threshold else "good" for score in scores]


def _run(store: Store, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Any]:
    code = main(
        ["--store-url", store.url, "--model", MODEL, "--output", "json", "--min-rows", "50",
         *extra]
    )  # fmt: skip
    captured = capsys.readouterr()
    return code, json.loads(captured.out)


def _register_scored(store: Store, reference: pd.DataFrame) -> None:
    scores = _scores(reference)
    decisions = _decide(scores)
    store.register(
        reference,
        outputs=[ReferenceOutput(float(s), d) for s, d in zip(scores, decisions, strict=True)],
        decision_shares={
            "good": decisions.count("good") / len(decisions),
            "bad": decisions.count("bad") / len(decisions),
        },
        positive_class="bad",
        decision_threshold=0.5,
    )


def _ece(positives: np.ndarray, scores: np.ndarray) -> float:
    """Expected calibration error, written out bin by bin."""
    total = 0.0
    for low in np.arange(10) / 10:
        high = low + 0.1
        inside = (scores >= low) & ((scores < high) if high < 0.999 else (scores <= 1.0))
        if inside.any():
            total += inside.sum() * abs(positives[inside].mean() - scores[inside].mean())
    return total / len(scores)


def test_quality_from_ground_truth_is_scikit_learns_on_the_same_rows(
    store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    _register_scored(store, german_credit.iloc[:500])
    current = german_credit.iloc[500:]
    labels = german_credit_labels().iloc[500:].to_numpy()
    scores = _scores(current)
    # Two predictions in three get their outcome; the rest are still waiting.
    outcomes = [label if i % 3 else None for i, label in enumerate(labels)]
    store.add_predictions(current, scores=scores, decisions=_decide(scores), outcomes=outcomes)
    code, document = _run(store, capsys, "--quality", "--quality-window", "1h")
    assert code == 0
    quality = document["quality"]
    assert quality["result"] == "Completed"
    assert quality["positiveClass"] == "bad"
    assert quality["decisionThreshold"] == 0.5
    labelled = np.array([o is not None for o in outcomes])
    assert quality["rows"] == {
        "predictions": 500,
        "labelled": int(labelled.sum()),
        "compared": int(labelled.sum()),
        "sampled": False,
    }
    assert quality["labelCoverage"] == pytest.approx(labelled.mean(), abs=5e-5)
    y = (labels[labelled] == "bad").astype(int)
    p = scores[labelled]
    decided = (p >= 0.5).astype(int)
    assert 0.6 < quality["rocAuc"] < 0.95  # a real signal, not a degenerate case
    expected = {
        "rocAuc": roc_auc_score(y, p),
        "precision": precision_score(y, decided),
        "recall": recall_score(y, decided),
        "f1": f1_score(y, decided),
        "brierScore": brier_score_loss(y, p),
        "calibrationError": _ece(y.astype(float), p),
        "actualPositiveRate": y.mean(),
        "predictedPositiveRate": decided.mean(),
    }
    for name, value in expected.items():
        assert quality[name] == pytest.approx(value, abs=5e-5), name


def test_outcomes_that_disagree_with_the_model_degrade_its_quality(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    _register_scored(sqlite_store, german_credit.iloc[:500])
    current = german_credit.iloc[500:]
    scores = _scores(current)
    decisions = _decide(scores)
    # The opposite of what the model decided, every time.
    flipped = ["good" if d == "bad" else "bad" for d in decisions]
    sqlite_store.add_predictions(current, scores=scores, decisions=decisions, outcomes=flipped)
    code, document = _run(sqlite_store, capsys, "--quality", "--quality-window", "1h")
    assert code == 0
    assert document["quality"]["rocAuc"] < 0.2
    assert document["quality"]["precision"] == 0.0


def test_too_few_labels_and_young_predictions_are_not_judged(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    _register_scored(sqlite_store, german_credit.iloc[:500])
    labels = german_credit_labels()
    old, young = german_credit.iloc[500:700], german_credit.iloc[700:]
    sqlite_store.add_predictions(old, age=timedelta(hours=3), outcomes=list(labels.iloc[500:700]))
    sqlite_store.add_predictions(young, age=timedelta(minutes=5), outcomes=list(labels.iloc[700:]))
    # Outcomes take two hours to arrive: only the old predictions are judged.
    code, document = _run(
        sqlite_store, capsys, "--quality", "--quality-window", "1d", "--label-delay", "2h",
        "--min-labelled", "150",
    )  # fmt: skip
    assert code == 0
    assert document["quality"]["result"] == "Completed"
    assert document["quality"]["rows"]["labelled"] == 200
    # The drift window (the last hour) is another matter: the young ones.
    assert document["rows"]["current"] == 300
    code, document = _run(
        sqlite_store, capsys, "--quality", "--quality-window", "1d", "--label-delay", "2h",
        "--min-labelled", "201",
    )  # fmt: skip
    assert code == 0, "too few labels is a status, not a failure"
    quality = document["quality"]
    assert quality["result"] == "InsufficientLabels"
    assert quality["message"] == "200 of 200 predictions labelled; at least 201 needed"
    assert "rocAuc" not in quality


def test_fairness_is_fairlearns_per_group_on_the_same_rows(
    store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    _register_scored(store, german_credit.iloc[:400])
    current = german_credit.iloc[400:]
    labels = german_credit_labels().iloc[400:].to_numpy()
    scores = _scores(current)
    decisions = np.array(_decide(scores))
    store.add_predictions(current, scores=scores, decisions=list(decisions), outcomes=list(labels))
    code, document = _run(
        store, capsys, "--quality", "--quality-window", "1h", "--fairness", json.dumps(FAIRNESS)
    )
    assert code == 0
    fairness = document["fairness"]
    attributes = {a["name"]: a for a in fairness["attributes"]}
    favoured = (decisions == "good").astype(int)
    deserved = (labels == "good").astype(int)
    ages = pd.cut(current["age_in_years"], [0, 25, 60, 200], right=False,
                  labels=["under-25", "25-59", "60-and-over"]).astype(str)  # fmt: skip
    rates = MetricFrame(
        metrics=selection_rate, y_true=favoured, y_pred=favoured, sensitive_features=ages
    ).by_group
    tprs = MetricFrame(
        metrics=true_positive_rate, y_true=deserved, y_pred=favoured, sensitive_features=ages
    ).by_group
    groups = {g["name"]: g for g in attributes["age_in_years"]["groups"]}
    assert list(groups) == ["under-25", "25-59", "60-and-over"]
    for name, group in groups.items():
        assert group["rows"] == int((ages == name).sum())
        assert group["selectionRate"] == pytest.approx(rates[name], abs=5e-5)
        assert group["statisticalParityDifference"] == pytest.approx(
            rates[name] - rates["25-59"], abs=5e-5
        )
        assert group["disparateImpactRatio"] == pytest.approx(
            rates[name] / rates["25-59"], abs=5e-5
        )
        assert group["truePositiveRateDifference"] == pytest.approx(
            tprs[name] - tprs["25-59"], abs=5e-5
        )
    # The model scores the young as riskier: fewer of them are favoured, below four fifths.
    assert groups["under-25"]["disparateImpactRatio"] < 0.8
    assert attributes["age_in_years"]["disparity"] is True
    assert fairness["verdict"] == "Disparity"
    sexes = {g["name"]: g for g in attributes["personal_status_and_sex"]["groups"]}
    assert sum(g["rows"] for g in sexes.values()) == len(current)
    # foreign_worker: each category its own group; "no" is too rare here to judge.
    workers = {g["name"]: g for g in attributes["foreign_worker"]["groups"]}
    assert set(workers) == {"yes", "no"}
    assert attributes["foreign_worker"]["enoughRows"] is (workers["no"]["rows"] >= 20)


def test_the_quality_and_fairness_of_a_run_go_with_it_to_the_evidently_workspace(
    sqlite_store: Store,
    german_credit: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """The UI lists each run with what it judged: its quality and fairness in the metadata, the
    model's output compared in the report beside the features."""
    _register_scored(sqlite_store, german_credit.iloc[:400])
    current = german_credit.iloc[400:]
    scores = _scores(current)
    labels = list(german_credit_labels().iloc[400:])
    sqlite_store.add_predictions(current, scores=scores, decisions=_decide(scores), outcomes=labels)
    workspace = tmp_path / "workspace"
    code, document = _run(
        sqlite_store, capsys, "--quality", "--quality-window", "1h",
        "--fairness", json.dumps(FAIRNESS),
        "--workspace", str(workspace), "--ui-url", "http://reports.example",
    )  # fmt: skip
    assert code == 0
    run_id = uuid.UUID(document["report"]["url"].rsplit("/", 1)[1])
    run = Workspace(str(workspace)).get_run(project_id(MODEL), run_id)
    assert run is not None
    assert run.metadata["quality"] == f"Completed: {document['quality']['message']}"
    assert "ROC AUC" in run.metadata["quality"]
    assert run.metadata["fairness"] == document["fairness"]["message"]
    assert run.metadata["fairness"].startswith("Disparity: age_in_years (disparity;")
    shown = {result.display_name: result for result in run.metric_results.values()}
    assert {"Value drift for prediction_score", "Value drift for prediction_decision"} <= set(shown)
    # The report's headline counts the features, as the status does; the outputs stand apart.
    headline = shown["Count of Drifted Columns"]
    assert isinstance(headline, CountValue)
    assert headline.count.value == document["driftedColumns"]
    counted = headline.count.metric_value_location.metric.params["columns"]
    assert set(counted) == {feature["name"] for feature in document["features"]}


def test_a_numerical_attribute_without_bins_is_a_configuration_error(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    _register_scored(sqlite_store, german_credit.iloc[:500])
    sqlite_store.add_predictions(german_credit.iloc[500:])
    fairness = {"favourableDecision": "good", "attributes": [
        {"feature": "age_in_years", "reference": "30"}]}  # fmt: skip
    code, document = _run(sqlite_store, capsys, "--fairness", json.dumps(fairness))
    assert code == 2
    assert document["reason"] == "InvalidConfiguration"
    assert document["message"] == "--fairness: the numerical attribute 'age_in_years' needs bins"


def test_the_models_output_drifts_when_it_refuses_more(
    store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = german_credit.iloc[::2], german_credit.iloc[1::2]
    _register_scored(store, reference)
    same = _scores(current)
    store.add_predictions(current, scores=same, decisions=_decide(same))
    code, document = _run(store, capsys)
    assert code == 0
    prediction = document["prediction"]
    assert [c["name"] for c in prediction["columns"]] == ["prediction_decision", "prediction_score"]
    assert prediction["drifted"] is False
    assert document["referenceDecisionShares"]["bad"] == pytest.approx(
        _decide(_scores(reference)).count("bad") / len(reference)
    )
    # The outputs are not features: they count neither as columns nor towards the drift share.
    assert {f["name"] for f in document["features"]} == set(german_credit.columns)

    store.add_predictions(
        current, scores=np.minimum(same + 0.35, 1), decisions=["bad"] * len(current)
    )
    code, document = _run(store, capsys)
    assert code == 0
    assert document["prediction"]["drifted"] is True
    drifted = {c["name"] for c in document["prediction"]["columns"] if c["drifted"]}
    assert drifted == {"prediction_score", "prediction_decision"}
    assert document["prediction"]["decisionShares"]["bad"] > 0.5


def test_the_spec_can_set_the_reference_decision_shares(
    sqlite_store: Store, german_credit: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    # Registered without outputs: only the spec's shares give a reference, for decisions only.
    sqlite_store.register(german_credit.iloc[:500])
    current = german_credit.iloc[500:]
    sqlite_store.add_predictions(current, decisions=["good"] * 250 + ["bad"] * 250)
    code, document = _run(sqlite_store, capsys)
    assert code == 0
    assert document["prediction"]["columns"] == []
    assert document["prediction"]["notCompared"] == (
        "no reference prediction_score or prediction_decision registered with the model"
    )
    code, document = _run(
        sqlite_store, capsys,
        "--reference-decision-share", "good=0.5", "--reference-decision-share", "bad=0.5",
    )  # fmt: skip
    assert document["referenceDecisionShares"] == {"good": 0.5, "bad": 0.5}
    assert [c["name"] for c in document["prediction"]["columns"]] == ["prediction_decision"]
    assert document["prediction"]["drifted"] is False
    code, document = _run(
        sqlite_store, capsys,
        "--reference-decision-share", "good=0.9", "--reference-decision-share", "bad=0.1",
    )  # fmt: skip
    assert document["prediction"]["drifted"] is True
