from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from localservers.ports import free_port
from prediction_store import create_store_engine, feedback


def test_feedback_right_after_a_prediction_is_recorded(
    make_client: Callable[..., TestClient], application: dict[str, Any], tmp_path: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    # A long linger: without the flush on feedback, the prediction would still be queued.
    client = make_client(database_url=url, log_flush_interval_seconds=30.0)
    request_id = client.post("/api/v1/predict", json=application).json()["request_id"]
    response = client.post("/api/v1/feedback", json={"request_id": request_id, "outcome": "bad"})
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "bad"
    corrected = client.post("/api/v1/feedback", json={"request_id": request_id, "outcome": "good"})
    assert corrected.status_code == 200
    with create_store_engine(url).connect() as connection:
        rows = connection.execute(sa.select(feedback)).mappings().all()
    assert [(r["request_id"], r["outcome"]) for r in rows] == [(request_id, "good")]


def test_unknown_request_ids_get_404(client: TestClient) -> None:
    response = client.post(
        "/api/v1/feedback", json={"request_id": "0123456789abcdef", "outcome": "good"}
    )
    assert response.status_code == 404
    assert "0123456789abcdef" in response.json()["detail"]


def test_feedback_is_validated(client: TestClient) -> None:
    response = client.post("/api/v1/feedback", json={"request_id": "x", "outcome": "maybe"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "outcome"]
    response = client.post("/api/v1/feedback", json={"request_id": "a b", "outcome": "bad"})
    assert response.json()["detail"][0]["loc"] == ["body", "request_id"]


def test_feedback_with_the_store_down_is_503_not_500(
    make_client: Callable[..., TestClient], application: dict[str, Any]
) -> None:
    client = make_client(
        database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        feedback_flush_timeout_seconds=0.2,
        log_shutdown_timeout_seconds=0.1,
    )
    request_id = client.post("/api/v1/predict", json=application).json()["request_id"]
    queued = client.post("/api/v1/feedback", json={"request_id": request_id, "outcome": "bad"})
    assert queued.status_code == 503
    assert queued.headers["retry-after"]
    unknown = client.post("/api/v1/feedback", json={"request_id": "abc", "outcome": "bad"})
    assert unknown.status_code == 503


def test_feedback_without_a_store_is_503(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(prediction_log_enabled=False)
    response = client.post("/api/v1/feedback", json={"request_id": "abc", "outcome": "bad"})
    assert response.status_code == 503
    assert "disabled" in response.json()["detail"]
