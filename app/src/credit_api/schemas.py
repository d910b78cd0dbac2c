"""The API's request and response bodies.

`CreditApplication` is the model's input schema: field names are the German Credit CSV's
column names (so the prediction store's feature names match the reference sample), and every
categorical attribute is an enum of the CSV's categories. Numbers carry ranges wide enough for
real applicants and narrow enough to reject nonsense. Unknown fields are rejected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, create_model

CheckingAccount = Literal[
    "... < 0 DM",
    "0 <= ... < 200 DM",
    "... >= 200 DM / salary assignments for at least 1 year",
    "no checking account",
]
CreditHistory = Literal[
    "no credits taken/ all credits paid back duly",
    "all credits at this bank paid back duly",
    "existing credits paid back duly till now",
    "delay in paying off in the past",
    "critical account/ other credits existing (not at this bank)",
]
Purpose = Literal[
    "car (new)",
    "car (used)",
    "furniture/equipment",
    "radio/television",
    "domestic appliances",
    "repairs",
    "education",
    "retraining",
    "business",
    "others",
]
Savings = Literal[
    "... < 100 DM",
    "100 <= ... < 500 DM",
    "500 <= ... < 1000 DM",
    "... >= 1000 DM",
    "unknown/ no savings account",
]
Employment = Literal[
    "unemployed",
    "... < 1 year",
    "1 <= ... < 4 years",
    "4 <= ... < 7 years",
    "... >= 7 years",
]
PersonalStatus = Literal[
    "male : divorced/separated",
    "female : divorced/separated/married",
    "male : single",
    "male : married/widowed",
]
OtherDebtors = Literal["none", "co-applicant", "guarantor"]
Property = Literal[
    "real estate",
    "building society savings agreement/ life insurance",
    "car or other, not in attribute Savings account/bonds",
    "unknown / no property",
]
OtherInstallmentPlans = Literal["bank", "stores", "none"]
Housing = Literal["rent", "own", "for free"]
Job = Literal[
    "unemployed/ unskilled - non-resident",
    "unskilled - resident",
    "skilled employee / official",
    "management/ self-employed/ highly qualified employee/ officer",
]
Telephone = Literal["none", "yes, registered under the customers name"]
ForeignWorker = Literal["yes", "no"]

Decision = Literal["good", "bad"]


def _integral_float_to_int(value: object) -> object:
    # JSON Schema counts 12.0 as an integer, so the API does too; 12.5 and "12" stay errors.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Counts are strict integers (no strings, booleans or fractions) that accept 12.0. The
# validator comes after the constraints so that they stay visible in the JSON schema.
INTEGRAL_FLOAT = BeforeValidator(_integral_float_to_int)


EXAMPLE_APPLICATION: dict[str, JsonValue] = {
    "status_of_existing_checking_account": "no checking account",
    "duration_in_month": 24,
    "credit_history": "existing credits paid back duly till now",
    "purpose": "car (new)",
    "credit_amount": 4500.0,
    "savings_account_and_bonds": "... < 100 DM",
    "present_employment_since": "1 <= ... < 4 years",
    "installment_rate_in_percentage_of_disposable_income": 3,
    "personal_status_and_sex": "male : single",
    "other_debtors_or_guarantors": "none",
    "present_residence_since": 2,
    "property": "car or other, not in attribute Savings account/bonds",
    "age_in_years": 35,
    "other_installment_plans": "none",
    "housing": "own",
    "number_of_existing_credits_at_this_bank": 1,
    "job": "skilled employee / official",
    "number_of_people_being_liable_to_provide_maintenance_for": 1,
    "telephone": "none",
    "foreign_worker": "yes",
}


class CreditApplication(BaseModel):
    """One credit application: the 20 attributes of the German Credit data.

    Numbers are strict: "6" or 6.5 months is a client bug, not something to coerce.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [EXAMPLE_APPLICATION]},
    )

    status_of_existing_checking_account: CheckingAccount
    duration_in_month: Annotated[int, Field(strict=True, ge=1, le=120), INTEGRAL_FLOAT]
    credit_history: CreditHistory
    purpose: Purpose
    credit_amount: Annotated[float, Field(strict=True, gt=0, le=1_000_000, allow_inf_nan=False)]
    savings_account_and_bonds: Savings
    present_employment_since: Employment
    installment_rate_in_percentage_of_disposable_income: Annotated[
        int, Field(strict=True, ge=1, le=4), INTEGRAL_FLOAT
    ]
    personal_status_and_sex: PersonalStatus
    other_debtors_or_guarantors: OtherDebtors
    present_residence_since: Annotated[int, Field(strict=True, ge=1, le=4), INTEGRAL_FLOAT]
    property: Property
    age_in_years: Annotated[int, Field(strict=True, ge=18, le=120), INTEGRAL_FLOAT]
    other_installment_plans: OtherInstallmentPlans
    housing: Housing
    number_of_existing_credits_at_this_bank: Annotated[
        int, Field(strict=True, ge=0, le=20), INTEGRAL_FLOAT
    ]
    job: Job
    number_of_people_being_liable_to_provide_maintenance_for: Annotated[
        int, Field(strict=True, ge=0, le=20), INTEGRAL_FLOAT
    ]
    telephone: Telephone
    foreign_worker: ForeignWorker


class BatchPredictionRequest(BaseModel):
    """Up to the configured maximum of applications, scored together."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"applications": [EXAMPLE_APPLICATION]}]},
    )

    applications: list[CreditApplication] = Field(min_length=1)


def batch_request_model(max_items: int) -> type[BatchPredictionRequest]:
    """The batch body with its size limit in the schema, so OpenAPI documents it too."""
    return create_model(
        "BatchPredictionRequest",
        __base__=BatchPredictionRequest,
        applications=(list[CreditApplication], Field(min_length=1, max_length=max_items)),
    )


class Prediction(BaseModel):
    """The model's answer for one application."""

    request_id: str = Field(
        description=(
            "Identifies this prediction, e.g. to send feedback: a UUIDv7 as 32 hex digits,"
            " so ids sort by the millisecond they were made."
        )
    )
    decision: Decision
    probability_of_default: float = Field(ge=0, le=1)


class PredictionResponse(Prediction):
    model: str
    version: str


class BatchPredictionResponse(BaseModel):
    model: str
    version: str
    predictions: list[Prediction]


class FeatureInfo(BaseModel):
    name: str
    kind: Literal["numerical", "categorical"]
    categories: list[str] | None = None


class ModelCard(BaseModel):
    name: str
    version: str
    features: list[FeatureInfo]
    metrics: dict[str, float]
    decision_threshold: float = Field(
        description="Applications whose probability of default is at least this are 'bad'."
    )
    decision_shares: dict[str, float] = Field(
        description="Share of each decision in the training labels."
    )
    training_rows: int
    test_rows: int


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"request_id": "019ae4b8c77b7a3e9d2b4c1f8e3a2b1c", "outcome": "bad"}]
        },
    )

    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    outcome: Decision = Field(description="What actually happened: 'bad' means default.")


class FeedbackResponse(BaseModel):
    request_id: str
    outcome: Decision
    recorded_at: datetime


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "not_ready"]
    model_loaded: bool
    store: Literal["ok", "unavailable", "disabled"]
    detail: str | None = None


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: str | list[ErrorDetail]


# Answers every body-taking route may give besides its own (FastAPI adds 422 itself).
BODY_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "The body cannot be decoded (e.g. not UTF-8)."},
    413: {"model": ErrorResponse, "description": "The request body is too large."},
}
