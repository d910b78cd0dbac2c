from __future__ import annotations

import re
from typing import Any

from credit_api.bundle import ModelBundle
from credit_api.metrics import Metrics
from credit_api.model_loading import LoadedModel
from credit_api.scoring import compile_linear_scorer
from credit_api.service import Predictor, RequestIds


def test_request_ids_are_unique_random_hex_across_refills() -> None:
    ids = RequestIds()
    drawn = [ids.next() for _ in range(RequestIds.BATCH * 3 + 7)]
    assert len(set(drawn)) == len(drawn)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in drawn)
    assert RequestIds().next() not in drawn


def test_predictor_scores_counts_and_decides(
    trained_bundle: ModelBundle, application: dict[str, Any]
) -> None:
    metrics = Metrics()
    model = LoadedModel(trained_bundle, compile_linear_scorer(trained_bundle.pipeline))
    predictor = Predictor(model, metrics, writer=None)
    risky = {**application, "status_of_existing_checking_account": "... < 0 DM"}
    [safe_result, risky_result] = predictor.predict([application, risky])
    assert safe_result.decision == "good"
    assert risky_result.decision == "bad"
    assert safe_result.probability_of_default < 0.5 <= risky_result.probability_of_default
    [single] = predictor.predict([risky])
    assert single.probability_of_default == risky_result.probability_of_default
    labels = {"model": "credit-score", "version": "1"}
    registry = metrics.registry
    assert (
        registry.get_sample_value("credit_api_predictions_total", {**labels, "decision": "bad"})
        == 2
    )
    assert (
        registry.get_sample_value("credit_api_predictions_total", {**labels, "decision": "good"})
        == 1
    )
    assert registry.get_sample_value("credit_api_prediction_score_count", labels) == 3
