"""Model versions and their reference samples, registered once under (model, version)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from prediction_store.schema import models, reference_rows

FeatureKind = Literal["numerical", "categorical"]


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature of a model: how to read it and how to compare its distributions."""

    name: str
    kind: FeatureKind
    categories: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.categories:
            data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            name=str(data["name"]),
            kind="categorical" if data["kind"] == "categorical" else "numerical",
            categories=tuple(str(c) for c in data.get("categories", ())),
        )


@dataclass(frozen=True)
class ReferenceOutput:
    """The model's output on one reference row: the score and the decision it made."""

    score: float
    decision: str


@dataclass(frozen=True)
class ModelRegistration:
    """What a model service registers at start-up, idempotently.

    `decision_shares` are the shares of the model's decisions on the reference sample (the
    reference of the decision-ratio alert); `positive_class` is the decision the score is the
    probability of, made from `decision_threshold` on; `reference_outputs`, when given, holds
    the model's output on each reference row, in order (the reference of the output drift).
    """

    name: str
    version: str
    features: tuple[FeatureSpec, ...]
    reference: Sequence[Mapping[str, Any]]
    metrics: Mapping[str, float] = field(default_factory=dict)
    decision_shares: Mapping[str, float] = field(default_factory=dict)
    positive_class: str | None = None
    decision_threshold: float | None = None
    reference_outputs: Sequence[ReferenceOutput] = ()

    def __post_init__(self) -> None:
        if self.reference_outputs and len(self.reference_outputs) != len(self.reference):
            raise ValueError(
                f"reference_outputs has {len(self.reference_outputs)} entries for "
                f"{len(self.reference)} reference rows"
            )
        if (
            self.positive_class is not None
            and self.decision_shares
            and (self.positive_class not in self.decision_shares)
        ):
            raise ValueError(
                f"positive_class {self.positive_class!r} is not one of the decisions "
                f"{sorted(self.decision_shares)}"
            )


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    registered_at: datetime
    features: tuple[FeatureSpec, ...]
    metrics: Mapping[str, float]
    decision_shares: Mapping[str, float]
    reference_rows: int
    positive_class: str | None = None
    decision_threshold: float | None = None


def register_model(engine: sa.Engine, registration: ModelRegistration) -> bool:
    """Store the model version and its reference sample unless already there.

    Returns True when this call registered it. Safe to call from many replicas at once: the
    primary key decides, and a replica that loses the race sees the version as registered.
    """
    if get_model(engine, registration.name, registration.version) is not None:
        return False
    model_row = {
        "name": registration.name,
        "version": registration.version,
        "registered_at": datetime.now(UTC),
        "features": [f.to_json() for f in registration.features],
        "metrics": dict(registration.metrics),
        "decision_shares": dict(registration.decision_shares),
        "reference_rows": len(registration.reference),
        "positive_class": registration.positive_class,
        "decision_threshold": registration.decision_threshold,
    }
    outputs: Sequence[ReferenceOutput | None] = registration.reference_outputs or [None] * len(
        registration.reference
    )
    rows = [
        {
            "model": registration.name,
            "version": registration.version,
            "row_id": i,
            "features": _json_safe(row),
            "score": output.score if output is not None else None,
            "decision": output.decision if output is not None else None,
        }
        for i, (row, output) in enumerate(zip(registration.reference, outputs, strict=True))
    ]
    try:
        with engine.begin() as connection:
            connection.execute(models.insert(), model_row)
            if rows:
                connection.execute(reference_rows.insert(), rows)
    except sa.exc.IntegrityError:
        return False  # another replica registered it first
    return True


def get_model(engine: sa.Engine, name: str, version: str | None = None) -> RegisteredModel | None:
    """The registered version, or the latest registered one when version is None."""
    query = sa.select(models).where(models.c.name == name)
    if version is None:
        query = query.order_by(models.c.registered_at.desc()).limit(1)
    else:
        query = query.where(models.c.version == version)
    with engine.connect() as connection:
        row = connection.execute(query).mappings().first()
    if row is None:
        return None
    return RegisteredModel(
        name=row["name"],
        version=row["version"],
        registered_at=row["registered_at"],
        features=tuple(FeatureSpec.from_json(f) for f in row["features"]),
        metrics=row["metrics"],
        decision_shares=row["decision_shares"],
        reference_rows=row["reference_rows"],
        positive_class=row["positive_class"],
        decision_threshold=row["decision_threshold"],
    )


def _json_safe(row: Mapping[str, Any]) -> dict[str, Any]:
    # JSON has no NaN: a missing value is stored as null, which readers get back as missing.
    return {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in row.items()
    }
