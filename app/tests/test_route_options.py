"""ValidatedJSONRoute refuses, when it is made, the route options its fast path would ignore."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.responses import ORJSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from credit_api.main import create_app
from credit_api.routes.json_route import ValidatedJSONRoute
from credit_api.schemas import CreditApplication


class Answer(BaseModel):
    decision: str
    note: str | None = None


class AliasedAnswer(BaseModel):
    decision: str = Field(serialization_alias="verdict")


class Wrapper(BaseModel):
    inner: AliasedAnswer  # an alias one level down changes the JSON all the same


async def answer(application: CreditApplication) -> Answer:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"response_model_include": {"decision"}}, "response_model_include="),
        ({"response_model_exclude": {"note"}}, "response_model_exclude="),
        ({"response_model_exclude_unset": True}, "response_model_exclude_unset=True"),
        ({"response_model_exclude_defaults": True}, "response_model_exclude_defaults=True"),
        ({"response_model_exclude_none": True}, "response_model_exclude_none=True"),
        ({"response_class": PlainTextResponse}, "response_class=PlainTextResponse"),
        ({"response_model": AliasedAnswer}, "response_model=AliasedAnswer with aliases"),
        ({"response_model": Wrapper}, "response_model=Wrapper with aliases"),
    ],
)
def test_an_option_the_fast_path_would_ignore_is_refused(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(TypeError, match="cannot honour") as refused:
        ValidatedJSONRoute("/x", answer, methods=["POST"], **options)
    assert named in str(refused.value)
    assert str(refused.value).startswith("/x: ")


def test_every_refused_option_is_named_at_once() -> None:
    with pytest.raises(TypeError) as refused:
        ValidatedJSONRoute(
            "/x",
            answer,
            methods=["POST"],
            response_model_exclude_none=True,
            response_class=ORJSONResponse,
        )
    assert "response_model_exclude_none=True" in str(refused.value)
    assert "response_class=ORJSONResponse" in str(refused.value)


def test_what_the_fast_path_honours_is_accepted() -> None:
    ValidatedJSONRoute("/x", answer, methods=["POST"], status_code=201)
    # Aliases are fine when FastAPI would not write them either.
    ValidatedJSONRoute(
        "/x",
        answer,
        methods=["POST"],
        response_model=AliasedAnswer,
        response_model_by_alias=False,
    )
    assert create_app().routes  # the service's own routes pass
