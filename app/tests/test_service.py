from __future__ import annotations

import re
import time
import uuid
from typing import Any

from credit_api.bundle import ModelBundle
from credit_api.metrics import Metrics
from credit_api.model_loading import LoadedModel
from credit_api.scoring import compile_linear_scorer
from credit_api.service import Predictor, RequestIds


def test_request_ids_are_unique_uuid7_hex_across_refills() -> None:
    ids = RequestIds()
    unix_ms = 1_764_800_000_123
    drawn = [ids.next(unix_ms) for _ in range(RequestIds.BATCH * 3 + 7)]
    assert len(set(drawn)) == len(drawn)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in drawn)
    for request_id in drawn:
        parsed = uuid.UUID(hex=request_id)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert parsed.int >> 80 == unix_ms
    assert RequestIds().next(unix_ms) not in drawn


def test_request_ids_sort_by_the_millisecond_they_were_made() -> None:
    ids = RequestIds()
    drawn = [ids.next(1_764_800_000_000 + step) for step in range(0, 5000, 7)]
    assert sorted(drawn) == drawn


def test_predictions_get_ids_of_their_time(
    trained_bundle: ModelBundle, application: dict[str, Any]
) -> None:
    model = LoadedModel(trained_bundle, compile_linear_scorer(trained_bundle.pipeline))
    predictor = Predictor(model, metrics=None, writer=None)
    before = time.time_ns() // 1_000_000
    results = predictor.predict([application]) + predictor.predict([application] * 3)
    after = time.time_ns() // 1_000_000
    for result in results:
        assert before <= uuid.UUID(hex=result.request_id).int >> 80 <= after


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
