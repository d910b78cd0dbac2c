"""A real Prometheus scrapes the app served by uvicorn and sees the predictions it made."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from .conftest import LiveServer

pytestmark = pytest.mark.prometheus


def test_prometheus_sees_the_predictions(
    make_server: Callable[..., LiveServer],
    prometheus_factory: Callable[..., Any],
    application: dict[str, Any],
) -> None:
    live = make_server()
    prometheus = prometheus_factory(
        [{"job_name": "credit-api", "static_configs": [{"targets": [f"127.0.0.1:{live.port}"]}]}]
    )
    prometheus.wait_for('up{job="credit-api"} == 1', timeout=30)

    with httpx.Client(base_url=live.url) as client:
        decisions = [
            client.post("/api/v1/predict", json=application).json()["decision"] for _ in range(7)
        ]
        batch = client.post("/api/v1/predict/batch", json={"applications": [application] * 5})
        decisions += [p["decision"] for p in batch.json()["predictions"]]
        client.post("/api/v1/predict", json={**application, "age_in_years": 3})

    total = 'sum(credit_api_predictions_total{job="credit-api",model="credit-score",version="1"})'
    result = prometheus.wait_for(total, lambda r: bool(r) and float(r[0]["value"][1]) == 12)
    assert float(result[0]["value"][1]) == len(decisions)

    by_decision = prometheus.query('credit_api_predictions_total{job="credit-api"}')
    counted = {s["metric"]["decision"]: float(s["value"][1]) for s in by_decision}
    assert counted == {d: float(decisions.count(d)) for d in ("good", "bad")}

    requests = prometheus.query(
        'credit_api_requests_total{job="credit-api",route="/api/v1/predict"}'
    )
    by_status = {s["metric"]["status"]: float(s["value"][1]) for s in requests}
    assert by_status == {"200": 7.0, "422": 1.0}

    scores = prometheus.query('credit_api_prediction_score_count{job="credit-api"}')
    assert float(scores[0]["value"][1]) == 12
    # A latency SLO query over the contract's buckets evaluates.
    ratio = prometheus.query(
        'sum(credit_api_request_duration_seconds_bucket{job="credit-api",le="0.3"})'
        ' / sum(credit_api_request_duration_seconds_count{job="credit-api"})'
    )
    assert 0 < float(ratio[0]["value"][1]) <= 1
