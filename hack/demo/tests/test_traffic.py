"""The demo's traffic: real applications, and a drifted population that really differs."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

import pytest
import sqlalchemy as sa

from credit_api.scoring import compile_linear_scorer
from credit_api.training import train
from demo.services import CreditApi
from demo.traffic import (
    YOUNG_BELOW,
    applications,
    contradicting_outcomes,
    drifted_traffic,
    labelled_applications,
    labelled_traffic,
    normal_traffic,
    refused_group_traffic,
    send,
    send_feedback,
)
from prediction_store import create_store_engine, feedback


def test_applications_are_the_real_data_as_json_native_values() -> None:
    apps = applications()
    assert len(apps) == 1000
    assert set(type(v) for a in apps for v in a.values()) <= {int, float, str}
    assert "creditability" not in apps[0]


def test_normal_traffic_is_reproducible_and_drawn_from_the_data() -> None:
    assert normal_traffic(50, seed=3) == normal_traffic(50, seed=3)
    assert all(a in applications() for a in normal_traffic(20))


def test_drifted_traffic_is_older_and_asks_for_more() -> None:
    normal, drifted = normal_traffic(500), drifted_traffic(500)
    assert min(a["age_in_years"] for a in drifted) > 45
    assert mean(a["credit_amount"] for a in drifted) > 1.5 * mean(
        a["credit_amount"] for a in normal
    )
    assert all(1 <= a["duration_in_month"] <= 120 for a in drifted)


def test_labelled_traffic_carries_the_data_sets_outcomes() -> None:
    batch, outcomes = labelled_traffic(200, seed=5)
    assert (batch, outcomes) == labelled_traffic(200, seed=5)
    truth = {json.dumps(a, sort_keys=True): o for a, o in labelled_applications()}
    assert outcomes == [truth[json.dumps(a, sort_keys=True)] for a in batch]
    assert set(outcomes) == {"good", "bad"}


def test_contradicting_outcomes_are_the_other_decision() -> None:
    predictions = [{"decision": "bad"}, {"decision": "good"}, {"decision": "good"}]
    assert contradicting_outcomes(predictions) == ["good", "bad", "bad"]


def test_the_refused_group_is_refused_by_the_real_model_and_the_others_accepted() -> None:
    batch = refused_group_traffic(300)
    assert all(a in applications() for a in batch)
    young = [a for a in batch if a["age_in_years"] < YOUNG_BELOW]
    assert len(young) == 150
    # The API's own scorer, compiled from the model it serves (not the pipeline that chose).
    bundle = train()
    scorer = compile_linear_scorer(bundle.pipeline)
    refused = [scorer.score_one(a) >= bundle.decision_threshold for a in batch]
    assert all(no for a, no in zip(batch, refused, strict=True) if a["age_in_years"] < YOUNG_BELOW)
    assert not any(
        no for a, no in zip(batch, refused, strict=True) if a["age_in_years"] >= YOUNG_BELOW
    )


@pytest.mark.slow
def test_feedback_reaches_the_store_for_each_served_prediction(tmp_path: Path) -> None:
    database = tmp_path / "predictions.db"
    api = CreditApi(f"sqlite:///{database}", tmp_path).start()
    try:
        batch, outcomes = labelled_traffic(30)
        predictions = send(api.url, batch)
        assert send_feedback(api.url, predictions, outcomes) == 30
    finally:
        api.stop()
    engine = create_store_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        query = sa.select(feedback.c.request_id, feedback.c.outcome)
        stored = {row.request_id: row.outcome for row in connection.execute(query)}
    engine.dispose()
    assert stored == {p["request_id"]: o for p, o in zip(predictions, outcomes, strict=True)}
    with pytest.raises(ValueError, match="2 predictions but 1 outcomes"):
        send_feedback(api.url, predictions[:2], outcomes[:1])
