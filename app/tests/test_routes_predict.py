from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from credit_api.bundle import ModelBundle
from credit_api.data import load_german_credit
from prediction_store import create_store_engine, predictions


def test_predict_scores_one_application(
    client: TestClient, application: dict[str, Any], trained_bundle: ModelBundle
) -> None:
    response = client.post("/api/v1/predict", json=application)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"request_id", "decision", "probability_of_default", "model", "version"}
    assert (body["model"], body["version"]) == ("credit-score", "1")
    expected = trained_bundle.pipeline.predict_proba(pd.DataFrame([application]))[0, 1]
    assert body["probability_of_default"] == pytest.approx(expected, abs=1e-12)
    assert body["decision"] == ("bad" if expected >= 0.5 else "good")


def test_batch_scores_in_order_with_distinct_ids(
    client: TestClient, trained_bundle: ModelBundle
) -> None:
    frame = load_german_credit().drop(columns=["creditability"]).head(50)
    response = client.post("/api/v1/predict/batch", json={"applications": frame.to_dict("records")})
    assert response.status_code == 200
    body = response.json()
    scores = [p["probability_of_default"] for p in body["predictions"]]
    expected = trained_bundle.pipeline.predict_proba(frame)[:, 1]
    assert scores == pytest.approx(list(expected), abs=1e-12)
    assert len({p["request_id"] for p in body["predictions"]}) == 50
    assert {p["decision"] for p in body["predictions"]} == {"good", "bad"}


def test_predictions_are_logged_to_the_store(
    make_client: Callable[..., TestClient], application: dict[str, Any], tmp_path: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    client = make_client(database_url=url)
    single = client.post("/api/v1/predict", json=application).json()
    batch = client.post("/api/v1/predict/batch", json={"applications": [application] * 3}).json()
    client.__exit__(None, None, None)  # shutdown flushes the queue
    engine = create_store_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(predictions)).mappings().all()
    assert len(rows) == 4
    by_id = {row["request_id"]: row for row in rows}
    stored = by_id[single["request_id"]]
    assert stored["features"] == application
    assert stored["score"] == pytest.approx(single["probability_of_default"])
    assert stored["decision"] == single["decision"]
    assert {p["request_id"] for p in batch["predictions"]} <= set(by_id)


@pytest.mark.parametrize(
    ("change", "loc", "error_type"),
    [
        ({"purpose": "vacation"}, ["body", "purpose"], "literal_error"),
        ({"age_in_years": 200}, ["body", "age_in_years"], "less_than_equal"),
        ({"credit_amount": "4500"}, ["body", "credit_amount"], "float_type"),
        ({"nickname": "bob"}, ["body", "nickname"], "extra_forbidden"),
    ],
)
def test_bad_fields_get_422_with_path_and_reason(
    client: TestClient,
    application: dict[str, Any],
    change: dict[str, Any],
    loc: list[str],
    error_type: str,
) -> None:
    response = client.post("/api/v1/predict", json={**application, **change})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert error["type"] == error_type
    assert error["msg"]
    assert "input" not in error  # personal data is not echoed back


def test_batch_errors_point_at_the_row(client: TestClient, application: dict[str, Any]) -> None:
    rows = [application, {**application, "housing": "castle"}]
    response = client.post("/api/v1/predict/batch", json={"applications": rows})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "applications", 1, "housing"]


def test_many_bad_rows_get_a_bounded_error_list(
    client: TestClient, application: dict[str, Any]
) -> None:
    rows = [{**application, "housing": "castle"}] * 200
    response = client.post("/api/v1/predict/batch", json={"applications": rows})
    assert response.status_code == 422
    assert len(response.json()["detail"]) == 50
    assert response.json()["errors_omitted"] == 150


def test_oversized_batch_is_refused(
    make_client: Callable[..., TestClient], application: dict[str, Any]
) -> None:
    client = make_client(max_batch_size=5)
    response = client.post("/api/v1/predict/batch", json={"applications": [application] * 6})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_long"
    assert client.post("/api/v1/predict/batch", json={"applications": []}).status_code == 422


def test_oversized_body_gets_413(
    make_client: Callable[..., TestClient], application: dict[str, Any]
) -> None:
    client = make_client(max_body_bytes=4096)
    body = json.dumps({"applications": [application] * 20})
    response = client.post(
        "/api/v1/predict/batch", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "4096" in response.json()["detail"]


def test_oversized_chunked_body_gets_413(
    make_client: Callable[..., TestClient], application: dict[str, Any]
) -> None:
    client = make_client(max_body_bytes=4096)
    chunk = json.dumps(application).encode()

    def chunks() -> Any:
        yield b'{"applications": ['
        for _ in range(20):
            yield chunk + b","
        yield chunk + b"]}"

    response = client.post(
        "/api/v1/predict/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_a_small_chunked_body_is_accepted(client: TestClient, application: dict[str, Any]) -> None:
    def chunks() -> Any:
        yield json.dumps(application).encode()

    response = client.post(
        "/api/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"[]", b"null", b'"text"', b'{"a": NaN}', b"\xff\xfe"]
)
def test_malformed_bodies_get_422(client: TestClient, body: bytes) -> None:
    response = client.post(
        "/api/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


def test_predictions_wait_for_the_model(
    make_client: Callable[..., TestClient], tmp_path: Any, application: dict[str, Any]
) -> None:
    client = make_client(model_dir=tmp_path / "empty")
    response = client.post("/api/v1/predict", json=application)
    assert response.status_code == 503
    assert "not loaded" in response.json()["detail"]
