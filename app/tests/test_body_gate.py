"""BodyGate: every body the models accept passes; bad bodies stop at their first problem."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from credit_api.body_gate import BodyGate, BodyShapeError
from credit_api.schemas import (
    EXAMPLE_APPLICATION,
    CreditApplication,
    FeedbackRequest,
    batch_request_model,
)

from .hostile_bodies import BATCH, PREDICT, hostile_bodies
from .test_json_route import CASES

MAX_BATCH = 1000
LIMIT = 2 * 1024 * 1024
GATES = {PREDICT: BodyGate(CreditApplication), BATCH: BodyGate(batch_request_model(MAX_BATCH))}


def valid_variants() -> list[dict[str, Any]]:
    """The example with each field at each of its categories, and numbers at their bounds."""
    variants = []
    for name, field in CreditApplication.model_fields.items():
        for value in get_args(field.annotation):
            variants.append({**EXAMPLE_APPLICATION, name: value})
    for name, low, high in [
        ("duration_in_month", 1, 120),
        ("credit_amount", 0.01, 1_000_000),
        ("age_in_years", 18.0, 120.0),  # integral floats count as integers
        ("number_of_existing_credits_at_this_bank", 0, 20),
    ]:
        variants += [{**EXAMPLE_APPLICATION, name: low}, {**EXAMPLE_APPLICATION, name: high}]
    return variants


def test_every_application_the_model_accepts_passes() -> None:
    for variant in valid_variants():
        body = json.dumps(variant).encode()
        CreditApplication.model_validate_json(body)
        GATES[PREDICT].check(body)
    # Escapes, a duplicate key (the last wins, as in pydantic), whitespace all around.
    spaced = json.dumps(EXAMPLE_APPLICATION, indent=4, ensure_ascii=True).encode()
    tricky = b" \n" + spaced[:-1] + b',\n "housing": "\\u0072ent"}\t'
    assert CreditApplication.model_validate_json(tricky).housing == "rent"
    GATES[PREDICT].check(tricky)


def test_the_largest_valid_batch_passes() -> None:
    body = json.dumps({"applications": valid_variants()[:20] * (MAX_BATCH // 20)}).encode()
    batch_request_model(MAX_BATCH).model_validate_json(body)
    GATES[BATCH].check(body)


@pytest.mark.parametrize(("body", "content_type"), CASES)
def test_no_body_pydantic_accepts_is_stopped(body: bytes, content_type: str | None) -> None:
    try:
        CreditApplication.model_validate_json(body)
    except ValidationError:
        return
    GATES[PREDICT].check(body)


@pytest.mark.parametrize(
    "hostile",
    [h for h in hostile_bodies(MAX_BATCH) if h.route in GATES and h.status == 422],
    ids=lambda h: h.name,
)
def test_hostile_bodies_stop_or_leave_pydantic_proportionate_errors(hostile: Any) -> None:
    """Either the gate stops the body, or pydantic finds at most one error per field of each
    row, none of whose inputs is an object or a list."""
    body = hostile.build(LIMIT)
    error: dict[str, Any] | None = None
    try:
        GATES[hostile.route].check(body)
    except BodyShapeError as rejected:
        error = rejected.error
    if error is not None:
        assert error["type"]
        assert error["msg"]
        assert error["loc"][0] == "body"
        return
    model = CreditApplication if hostile.route == PREDICT else batch_request_model(MAX_BATCH)
    with pytest.raises(ValidationError) as invalid:
        model.model_validate_json(body)
    rows = len(json.loads(body)["applications"]) if hostile.route == BATCH else 1
    assert invalid.value.error_count() <= rows * len(CreditApplication.model_fields)
    inputs = (error["input"] for error in invalid.value.errors())
    assert not any(isinstance(value, dict | list) for value in inputs)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {**EXAMPLE_APPLICATION, "nickname": "bob"},
            {"type": "extra_forbidden", "loc": ["body", "nickname"]},
        ),
        (
            {k: v for k, v in EXAMPLE_APPLICATION.items() if k != "housing"},
            {"type": "missing", "loc": ["body", "housing"]},
        ),
        (
            {**EXAMPLE_APPLICATION, "purpose": "x" * 65},
            {"type": "string_too_long", "loc": ["body", "purpose"]},
        ),
        (
            {**EXAMPLE_APPLICATION, "age_in_years": [35]},
            {"type": "scalar_type", "loc": ["body", "age_in_years"]},
        ),
        (
            {**EXAMPLE_APPLICATION, "housing": {"own": True}},
            {"type": "scalar_type", "loc": ["body", "housing"]},
        ),
        ([EXAMPLE_APPLICATION], {"type": "model_type", "loc": ["body"]}),
    ],
)
def test_errors_name_the_field_as_pydantic_does(body: Any, error: dict[str, Any]) -> None:
    with pytest.raises(BodyShapeError) as rejected:
        GATES[PREDICT].check(json.dumps(body).encode())
    assert {k: rejected.value.error[k] for k in error} == error


def test_batch_errors_point_at_the_row() -> None:
    rows = [EXAMPLE_APPLICATION, {**EXAMPLE_APPLICATION, "nickname": "bob"}]
    with pytest.raises(BodyShapeError) as rejected:
        GATES[BATCH].check(json.dumps({"applications": rows}).encode())
    assert rejected.value.error["loc"] == ["body", "applications", 1, "nickname"]
    with pytest.raises(BodyShapeError) as rejected:
        GATES[BATCH].check(json.dumps({"applications": [EXAMPLE_APPLICATION] * 1001}).encode())
    assert rejected.value.error == {
        "type": "too_long",
        "loc": ["body", "applications"],
        "msg": "List should have at most 1000 items",
    }


@pytest.mark.parametrize(
    ("body", "loc"), [(b"{not json", ["body", 1]), (b'{"purpose": "\xff"}', ["body"])]
)
def test_undecodable_bodies_are_json_invalid(body: bytes, loc: list[Any]) -> None:
    with pytest.raises(BodyShapeError) as rejected:
        GATES[PREDICT].check(body)
    assert rejected.value.error["type"] == "json_invalid"
    assert rejected.value.error["loc"] == loc


def test_feedback_bodies_are_bounded_by_the_fields_own_limits() -> None:
    gate = BodyGate(FeedbackRequest)
    gate.check(json.dumps({"request_id": "a" * 64, "outcome": "good"}).encode())
    with pytest.raises(BodyShapeError):
        gate.check(json.dumps({"request_id": "a" * 65, "outcome": "good"}).encode())


class Open(BaseModel):
    tags: dict[str, str]


class Unbounded(BaseModel):
    name: str


class UnboundedList(BaseModel):
    rows: list[CreditApplication]


class Aliased(BaseModel):
    name: Annotated[str, Field(alias="Name", max_length=3)]


class Ignoring(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: Literal["a", "b"]


@pytest.mark.parametrize("model", [Open, Unbounded, UnboundedList, Aliased])
def test_models_the_gate_cannot_bound_are_refused(model: type[BaseModel]) -> None:
    with pytest.raises(TypeError, match=model.__name__):
        BodyGate(model)


def test_unknown_fields_pass_where_the_model_ignores_them() -> None:
    BodyGate(Ignoring).check(b'{"kind": "a", "other": [1, 2, 3]}')
