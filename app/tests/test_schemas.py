from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from credit_api.data import load_german_credit
from credit_api.features import CATEGORICAL, FEATURES, NUMERICAL
from credit_api.schemas import CreditApplication, batch_request_model


def test_schema_categories_are_exactly_the_csv_categories() -> None:
    data = load_german_credit()
    for spec in FEATURES:
        if spec.kind == "categorical":
            assert set(spec.categories) == set(data[spec.name].unique()), spec.name


def test_schema_fields_are_the_csv_columns() -> None:
    columns = list(load_german_credit().columns)
    assert [*NUMERICAL, *CATEGORICAL] != []
    assert list(CreditApplication.model_fields) == [c for c in columns if c != "creditability"]


def test_every_csv_row_is_a_valid_application() -> None:
    for row in load_german_credit().drop(columns=["creditability"]).to_dict("records"):
        CreditApplication.model_validate(row)


def test_the_documented_example_validates(application: dict[str, Any]) -> None:
    assert CreditApplication.model_validate(application).model_dump() == application


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("purpose", "vacation", "literal_error"),
        ("age_in_years", 17, "greater_than_equal"),
        ("duration_in_month", "12", "int_type"),
        ("duration_in_month", 12.5, "int_type"),
        ("credit_amount", 0, "greater_than"),
        ("credit_amount", float("nan"), "finite_number"),
        ("installment_rate_in_percentage_of_disposable_income", 5, "less_than_equal"),
    ],
)
def test_bad_values_name_the_field(
    application: dict[str, Any], field: str, value: object, error: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        CreditApplication.model_validate({**application, field: value})
    [only] = raised.value.errors()
    assert only["loc"] == (field,)
    assert only["type"] == error


def test_unknown_and_missing_fields_are_rejected(application: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as raised:
        CreditApplication.model_validate({**application, "salary": 1})
    assert raised.value.errors()[0]["type"] == "extra_forbidden"
    del application["housing"]
    with pytest.raises(ValidationError) as raised:
        CreditApplication.model_validate(application)
    assert raised.value.errors()[0]["loc"] == ("housing",)


def test_batch_size_limit_is_in_the_schema(application: dict[str, Any]) -> None:
    model = batch_request_model(2)
    assert model.model_json_schema()["properties"]["applications"]["maxItems"] == 2
    model.model_validate({"applications": [application, application]})
    with pytest.raises(ValidationError, match=r"too_long|at most 2"):
        model.model_validate({"applications": [application] * 3})
    with pytest.raises(ValidationError):
        model.model_validate({"applications": []})


def test_integral_floats_count_as_integers_like_json_schema_says(
    application: dict[str, Any],
) -> None:
    parsed = CreditApplication.model_validate({**application, "age_in_years": 40.0})
    assert parsed.age_in_years == 40
    assert isinstance(parsed.age_in_years, int)
    with pytest.raises(ValidationError):
        CreditApplication.model_validate({**application, "age_in_years": True})
