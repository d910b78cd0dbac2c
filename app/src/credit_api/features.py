"""The model's feature schema, read from the request schema so the two cannot disagree."""

from __future__ import annotations

from typing import Literal, get_args, get_origin

from credit_api.schemas import CreditApplication
from prediction_store import FeatureSpec

TARGET = "creditability"
# The label's positive class: the model's score is the probability of this one (default).
POSITIVE_CLASS = "bad"
NEGATIVE_CLASS = "good"


def feature_specs() -> tuple[FeatureSpec, ...]:
    """One spec per input field, in schema order: enums are categorical, numbers numerical."""
    specs = []
    for name, field in CreditApplication.model_fields.items():
        if get_origin(field.annotation) is Literal:
            categories = tuple(str(c) for c in get_args(field.annotation))
            specs.append(FeatureSpec(name=name, kind="categorical", categories=categories))
        else:
            specs.append(FeatureSpec(name=name, kind="numerical"))
    return tuple(specs)


FEATURES = feature_specs()
FEATURE_NAMES = tuple(spec.name for spec in FEATURES)
NUMERICAL = tuple(spec.name for spec in FEATURES if spec.kind == "numerical")
CATEGORICAL = tuple(spec.name for spec in FEATURES if spec.kind == "categorical")
