from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from credit_api.data import load_german_credit
from credit_api.metrics import REQUEST_DURATION_BUCKETS, UNMATCHED_ROUTE, Metrics
from localservers.pytest_plugin import require_binary

# prometheus_client's OpenMetrics parser is untyped.
parse_openmetrics: Callable[[str], Iterator[Metric]] = text_string_to_metric_families


def value(exposition: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", exposition, re.MULTILINE)
    assert match is not None, f"{series} not exported"
    return float(match.group(1))


def test_requests_are_labelled_by_route_template(
    client: TestClient, application: dict[str, Any]
) -> None:
    for _ in range(3):
        client.post("/api/v1/predict", json=application)
    client.post("/api/v1/predict", json={})
    text = client.get("/metrics").text
    route = 'method="POST",route="/api/v1/predict"'
    assert value(text, f'credit_api_requests_total{{{route},status="200"}}') == 3
    assert value(text, f'credit_api_requests_total{{{route},status="422"}}') == 1
    assert value(text, f"credit_api_request_duration_seconds_count{{{route}}}") == 4
    assert value(text, 'credit_api_errors_total{kind="validation"}') == 1


def test_unknown_paths_share_one_label(client: TestClient) -> None:
    for path in ("/nope", "/wp-admin/setup.php", "/api/v1/predict/123", "/api/v2/x"):
        assert client.get(path).status_code == 404
    client.request("BREW", "/healthz")
    text = client.get("/metrics").text
    assert (
        value(
            text,
            f'credit_api_requests_total{{method="GET",route="{UNMATCHED_ROUTE}",status="404"}}',
        )
        == 4
    )
    assert (
        value(text, 'credit_api_requests_total{method="other",route="/healthz",status="405"}') == 1
    )
    assert "wp-admin" not in text
    assert "BREW" not in text


def test_a_refused_body_is_counted_under_its_route(
    make_client: Callable[..., TestClient], application: dict[str, Any]
) -> None:
    client = make_client(max_body_bytes=2048)
    client.post("/api/v1/predict/batch", json={"applications": [application] * 10})
    text = client.get("/metrics").text
    series = 'credit_api_requests_total{method="POST",route="/api/v1/predict/batch",status="413"}'
    assert value(text, series) == 1
    assert value(text, 'credit_api_errors_total{kind="body_too_large"}') == 1


def test_predictions_are_counted_by_decision_with_their_scores(client: TestClient) -> None:
    rows = load_german_credit().drop(columns=["creditability"]).head(100).to_dict("records")
    decisions = [
        p["decision"]
        for p in client.post("/api/v1/predict/batch", json={"applications": rows}).json()[
            "predictions"
        ]
    ]
    text = client.get("/metrics").text
    labels = 'model="credit-score",version="1"'
    for decision in ("good", "bad"):
        series = f'credit_api_predictions_total{{decision="{decision}",{labels}}}'
        assert value(text, series) == decisions.count(decision)
    assert value(text, f"credit_api_prediction_score_count{{{labels}}}") == 100
    assert value(text, f"credit_api_model_loaded{{{labels}}}") == 1


def test_the_model_is_timed_once_per_scoring_call_within_its_request(
    client: TestClient, application: dict[str, Any]
) -> None:
    labels = 'model="credit-score",version="1"'
    series = f"credit_api_model_prediction_duration_seconds_count{{{labels}}}"
    assert value(client.get("/metrics").text, series) == 0  # seeded when the model loads
    client.post("/api/v1/predict", json=application)
    client.post("/api/v1/predict/batch", json={"applications": [application] * 50})
    client.post("/api/v1/predict", json={})  # refused before scoring: not timed
    text = client.get("/metrics").text
    assert value(text, series) == 2
    model_seconds = value(text, f"credit_api_model_prediction_duration_seconds_sum{{{labels}}}")
    request_seconds = sum(
        value(text, f'credit_api_request_duration_seconds_sum{{method="POST",route="{route}"}}')
        for route in ("/api/v1/predict", "/api/v1/predict/batch")
    )
    assert 0 < model_seconds < request_seconds


def test_requests_in_progress_counts_a_request_until_it_is_answered(
    make_server: Callable[..., Any], application: dict[str, Any]
) -> None:
    live = make_server()
    gauge = "credit_api_requests_in_progress"
    with httpx.Client(base_url=live.url) as client:
        # The scrape reading the gauge is itself in progress.
        assert value(client.get("/metrics").text, gauge) == 1
        body = json.dumps(application).encode()
        with socket.create_connection(("127.0.0.1", live.port), timeout=30) as held:
            # Headers and half the body: the request is being served, waiting for the rest.
            held.sendall(
                b"POST /api/v1/predict HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[: len(body) // 2]
            )
            deadline = time.monotonic() + 30
            while value(client.get("/metrics").text, gauge) != 2:
                assert time.monotonic() < deadline, "the held request was never counted"
                time.sleep(0.05)
            held.sendall(body[len(body) // 2 :])
            assert held.recv(4096).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 30
        while value(client.get("/metrics").text, gauge) != 1:
            assert time.monotonic() < deadline, "the answered request is still counted"
            time.sleep(0.05)


def test_metrics_are_negotiated_by_prometheus_client(
    client: TestClient, application: dict[str, Any]
) -> None:
    client.post("/api/v1/predict", json=application)
    plain = client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "content-encoding" not in plain.headers
    openmetrics = client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in parse_openmetrics(openmetrics.text)}
    # The event-loop series parse as OpenMetrics too, with their documented types.
    assert families["credit_api_requests"].type == "counter"
    assert families["credit_api_request_duration_seconds"].type == "histogram"
    assert families["credit_api_model_prediction_duration_seconds"].type == "histogram"
    assert families["credit_api_requests_in_progress"].type == "gauge"
    compressed = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert compressed.headers["content-encoding"] == "gzip"
    assert "credit_api_requests_total" in compressed.text  # decoded by the client
    only = client.get("/metrics", params={"name[]": "credit_api_requests_in_progress"}).text
    assert [line for line in only.splitlines() if not line.startswith("#")] == [
        "credit_api_requests_in_progress 1.0"
    ]


def test_latency_buckets_hold_every_slo_threshold() -> None:
    for threshold in (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1, 2.5, 5, 10):
        assert threshold in REQUEST_DURATION_BUCKETS


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.errors.labels("validation").inc()
    assert second.registry.get_sample_value("credit_api_errors_total", {"kind": "validation"}) == 0


def test_disabled_metrics_count_no_requests(
    make_client: Callable[..., TestClient], application: dict[str, Any]
) -> None:
    client = make_client(metrics_enabled=False)
    client.post("/api/v1/predict", json=application)
    text = client.get("/metrics").text
    assert "credit_api_requests_total{" not in text
    assert "credit_api_predictions_total{" not in text


def test_the_store_is_up_only_where_there_is_a_prediction_log(
    make_client: Callable[..., TestClient],
) -> None:
    # SQLite: the store is ready once the app has started.
    assert value(make_client().get("/metrics").text, "credit_api_prediction_store_up") == 1
    # No log, no store: no series (a 0 would read as an outage).
    without_log = make_client(prediction_log_enabled=False).get("/metrics").text
    assert "credit_api_prediction_store_up" not in without_log


def test_default_process_metrics_are_exported(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert "process_resident_memory_bytes" in text
    assert "python_gc_collections_total" in text


@pytest.mark.prometheus
def test_promtool_finds_nothing_to_complain_about(
    make_server: Callable[..., Any], application: dict[str, Any], tmp_path: Path
) -> None:
    promtool = require_binary("promtool")
    live = make_server(log_spool_dir=tmp_path / "spool")  # its gauges are exported too
    with httpx.Client(base_url=live.url) as client:
        client.post("/api/v1/predict", json=application)
        client.post("/api/v1/predict/batch", json={"applications": [application] * 3})
        client.post("/api/v1/predict", json={})
        client.get("/nope")
        client.get("/readyz")
        exposition = client.get("/metrics")
    assert "credit_api_prediction_log_spool_records" in exposition.text
    assert exposition.headers["content-type"].startswith("text/plain")
    result = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=exposition.text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""
