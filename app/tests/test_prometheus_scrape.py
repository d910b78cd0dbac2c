"""A real Prometheus scrapes the app served by uvicorn and sees the predictions it made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from localservers.ports import free_port

from .api_process import ApiProcess

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


@pytest.mark.slow
def test_drops_a_process_never_had_scraped_reach_the_alert_after_its_restart(
    make_api: Callable[..., ApiProcess],
    prometheus_factory: Callable[..., Any],
    application: dict[str, Any],
    tmp_path: Path,
) -> None:
    """A container that stops with records it can neither write nor spool counts them as it
    exits, where no scrape can see them; the next container of the pod (same address, so the
    same series) starts its counter from the spool's header, and the rate the
    ModelPredictionRecordsDropped alert takes goes up."""
    port = free_port()
    settings: dict[str, Any] = {
        "port": port,
        "database_url": f"postgresql://nobody@127.0.0.1:{free_port()}/none",  # down
        "log_spool_dir": tmp_path / "spool",
        "log_spool_max_bytes": 600,  # room for the header and no batch: the spool is full
        "log_flush_interval_seconds": 30.0,  # the records stay queued until the shutdown
    }
    first = make_api(**settings)
    prometheus = prometheus_factory(
        [{"job_name": "credit-api", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]
    )
    dropped = 'sum(credit_api_prediction_log_dropped_total{job="credit-api"})'
    prometheus.wait_for(dropped, lambda r: bool(r) and float(r[0]["value"][1]) == 0)
    with httpx.Client(base_url=first.url) as client:
        for _ in range(20):
            assert client.post("/api/v1/predict", json=application).status_code == 200
    first.terminate()  # the 20 queued records meet a full spool: dropped, counted, unscraped

    second = make_api(**settings)
    assert second.metric("credit_api_prediction_log_dropped_total", reason="spool_full") == 20
    # The alert's expression (operator/src/modelmonitor/render/prometheusrule.py).
    alerting = 'sum(rate(credit_api_prediction_log_dropped_total{job="credit-api"}[5m])) > 0'
    result = prometheus.wait_for(alerting, timeout=60)
    assert float(result[0]["value"][1]) > 0
    increase = prometheus.query(
        'sum(increase(credit_api_prediction_log_dropped_total{job="credit-api"}[5m]))'
    )
    assert float(increase[0]["value"][1]) >= 20
