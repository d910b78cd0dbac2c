from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from credit_api.bundle import ModelBundle, save_bundle
from localservers.ports import free_port


def test_liveness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_ready_with_model_and_store(client: TestClient) -> None:
    deadline = time.monotonic() + 10
    while (body := client.get("/readyz").json())["store"] != "ok" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert body == {"status": "ready", "model_loaded": True, "store": "ok", "detail": None}


def test_a_dead_store_degrades_but_stays_ready(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    client = make_client(
        database_url=f"postgresql://nobody@127.0.0.1:{port}/none",
        log_shutdown_timeout_seconds=0.1,
    )
    writer = client.app.state.runtime.writer  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while writer.last_error is None:
        assert time.monotonic() < deadline, "the writer never tried the store"
        time.sleep(0.02)
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["model_loaded"], body["store"]) == (
        "degraded",
        True,
        "unavailable",
    )
    # The driver's error names the server and the user: the log gets it, callers do not.
    assert body["detail"] == "prediction store unavailable (the service log has the error)"
    assert str(port) in caplog.text
    assert str(port) not in response.text
    assert "nobody" not in response.text


def test_without_a_store_it_is_ready(make_client: Callable[..., TestClient]) -> None:
    body = make_client(prediction_log_enabled=False).get("/readyz").json()
    assert (body["status"], body["store"]) == ("ready", "disabled")


def test_not_ready_without_a_model_then_ready_once_it_appears(
    make_client: Callable[..., TestClient], tmp_path: Path, trained_bundle: ModelBundle
) -> None:
    model_dir = tmp_path / "models"
    client = make_client(model_dir=model_dir)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert "no model bundle" in response.json()["detail"]
    save_bundle(trained_bundle, model_dir)
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the model was not picked up"
        time.sleep(0.1)
    metrics = client.get("/metrics").text
    assert 'credit_api_model_load_attempts_total{result="success"} 1.0' in metrics
    failures = re.search(r'credit_api_model_load_attempts_total\{result="failure"\} (\S+)', metrics)
    assert failures is not None
    assert float(failures.group(1)) >= 1
    assert 'credit_api_model_loaded{model="credit-score",version="1"} 1.0' in metrics


def test_a_fresh_machine_trains_the_bundle_on_first_start(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    model_dir = tmp_path / "fresh"
    client = make_client(model_dir=model_dir, train_if_missing=True)
    assert client.get("/readyz").status_code == 200
    assert (model_dir / "credit-score" / "1" / "pipeline.joblib").is_file()
