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
class ModelRegistration:
    """What a model service registers at start-up, idempotently."""

    name: str
    version: str
    features: tuple[FeatureSpec, ...]
    reference: Sequence[Mapping[str, Any]]
    metrics: Mapping[str, float] = field(default_factory=dict)
    decision_shares: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    registered_at: datetime
    features: tuple[FeatureSpec, ...]
    metrics: Mapping[str, float]
    decision_shares: Mapping[str, float]
    reference_rows: int


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
    }
    rows = [
        {
            "model": registration.name,
            "version": registration.version,
            "row_id": i,
            "features": _json_safe(row),
        }
        for i, row in enumerate(registration.reference)
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
    )


def _json_safe(row: Mapping[str, Any]) -> dict[str, Any]:
    # JSON has no NaN: a missing value is stored as null, which readers get back as missing.
    return {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in row.items()
    }
