"""ValidatedJSONRoute answers exactly as FastAPI's own handler does, only faster; large bodies
pass the gate first (GatedJSONRoute)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from credit_api.body_gate import BodyGate
from credit_api.errors import install_error_handlers
from credit_api.metrics import Metrics
from credit_api.routes.json_route import (
    DIRECT_VALIDATION_MAX_BYTES,
    GatedJSONRoute,
    ValidatedJSONRoute,
)
from credit_api.schemas import EXAMPLE_APPLICATION, CreditApplication


class Echo(BaseModel):
    application: CreditApplication
    path: str


async def echo(application: CreditApplication, request: Request) -> Echo:
    if application.age_in_years == 99:
        raise HTTPException(503, "not now")
    return Echo(application=application, path=request.url.path)


def both_routes() -> TestClient:
    app = FastAPI()
    install_error_handlers(app, Metrics())  # the service's 422s (FastAPI's echo NaN inputs)
    app.add_api_route("/stock", echo, methods=["POST"], status_code=201)
    app.router.add_api_route(
        "/lean", echo, methods=["POST"], status_code=201, route_class_override=ValidatedJSONRoute
    )
    app.router.add_api_route(
        "/gated", echo, methods=["POST"], status_code=201, route_class_override=GatedJSONRoute
    )
    return TestClient(app)


def with_(**changes: Any) -> bytes:
    return json.dumps({**EXAMPLE_APPLICATION, **changes}).encode()


JSON = "application/json"
CASES: list[tuple[bytes, str | None]] = [
    (with_(), JSON),
    (with_(), "application/json; charset=utf-8"),
    (with_(), "Application/JSON"),
    (with_(), "application/vnd.example+json"),
    (with_(), "text/plain"),
    (with_(), None),
    (with_(duration_in_month=12.0, credit_amount=4500), JSON),  # integral floats, int amounts
    (with_(age_in_years=99), JSON),  # the endpoint raises
    (with_(purpose="vacation"), JSON),
    (with_(age_in_years=200), JSON),
    (with_(credit_amount="4500"), JSON),
    (with_(duration_in_month=True), JSON),
    (with_(duration_in_month=6.5), JSON),
    (with_(nickname="bob"), JSON),
    (json.dumps({k: v for k, v in EXAMPLE_APPLICATION.items() if k != "housing"}).encode(), JSON),
    (with_()[:-1] + b', "housing": "rent"}', JSON),  # a duplicate key: the last one wins
    (b"{not json", JSON),
    (b"", JSON),
    (b"[]", JSON),
    (b"null", JSON),
    (b'"text"', JSON),
    (b'{"credit_amount": NaN}', JSON),
    (with_(credit_amount=1e400).replace(b"Infinity", b"1e400"), JSON),
    (b"\xff\xfe", JSON),
    (with_(purpose="caf\u00e9"), JSON),
]


@pytest.mark.parametrize(("body", "content_type"), CASES)
def test_answers_as_fastapi_does(body: bytes, content_type: str | None) -> None:
    client = both_routes()
    headers = {"content-type": content_type} if content_type else {}
    stock = client.post("/stock", content=body, headers=headers)
    lean = client.post("/lean", content=body, headers=headers)
    assert lean.status_code == stock.status_code
    assert lean.headers["content-type"] == stock.headers["content-type"]
    expected = stock.json()
    if stock.status_code == 201:
        expected["path"] = "/lean"
    assert lean.json() == expected


def test_the_valid_case_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    client = both_routes()
    parsed: list[bytes] = []
    validate = CreditApplication.model_validate_json

    def spy(data: bytes, **kwargs: Any) -> CreditApplication:
        parsed.append(data)
        return validate(data, **kwargs)

    def no_gate(_gate: BodyGate, _body: bytes) -> None:
        raise AssertionError("a small body went through the gate")

    monkeypatch.setattr(CreditApplication, "model_validate_json", spy)
    monkeypatch.setattr(BodyGate, "check", no_gate)
    assert client.post("/lean", content=with_(), headers={"content-type": JSON}).status_code == 201
    assert parsed == [with_()]


def padded(body: bytes) -> bytes:
    """The same JSON document, made larger than DIRECT_VALIDATION_MAX_BYTES with spaces."""
    return body[:-1] + b" " * DIRECT_VALIDATION_MAX_BYTES + b"}"


@pytest.mark.parametrize(
    "body",
    [
        with_(),
        with_(purpose="vacation"),
        with_(age_in_years=200, credit_amount="4500"),
        with_(duration_in_month=True, housing="castle"),
    ],
)
@pytest.mark.parametrize("content_type", [JSON, "application/vnd.example+json"])
def test_large_bodies_that_pass_the_gate_answer_as_fastapi_does(
    body: bytes, content_type: str
) -> None:
    client = both_routes()
    headers = {"content-type": content_type}
    stock = client.post("/stock", content=padded(body), headers=headers)
    lean = client.post("/lean", content=padded(body), headers=headers)
    assert lean.status_code == stock.status_code
    expected = stock.json()
    if stock.status_code == 201:
        expected["path"] = "/lean"
    assert lean.json() == expected


def test_large_bodies_the_gate_stops_get_a_422_naming_the_field() -> None:
    client = both_routes()
    body = padded(with_(nickname="bob"))
    for route in ("/lean", "/gated"):
        response = client.post(route, content=body, headers={"content-type": JSON})
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                {
                    "loc": ["body", "nickname"],
                    "msg": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                }
            ]
        }


def test_endpoints_with_dependencies_are_refused() -> None:
    async def needs_more(
        application: CreditApplication, user: Annotated[str, Depends(lambda: "x")]
    ) -> Echo:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="one pydantic body model"):
        ValidatedJSONRoute("/x", needs_more, methods=["POST"])
