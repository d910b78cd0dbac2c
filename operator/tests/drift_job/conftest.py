"""Shared fixtures: the German Credit data, and prediction stores filled the way services do."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from prediction_store import (
    FeatureSpec,
    ModelRegistration,
    create_store_engine,
    predictions,
    register_model,
    upgrade,
)

MODEL = "credit-score"
VERSION = "1"
_DATA = Path(__file__).parents[3] / "app" / "src" / "credit_api" / "data" / "germancredit.csv"


def load_german_credit() -> pd.DataFrame:
    """The 20 features of the 1000 applications: numbers as float, categories as strings."""
    frame = pd.read_csv(_DATA).drop(columns=["creditability"])
    for name in frame.columns:
        if frame[name].dtype != object:
            frame[name] = frame[name].astype("float64")
    return frame


def feature_specs(frame: pd.DataFrame) -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(name, "categorical" if frame[name].dtype == object else "numerical")
        for name in frame.columns
    )


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects: a missing value is left out of the record, as a writer would."""
    return [
        {
            key: value
            for key, value in row.items()
            if value is not None and not (isinstance(value, float) and math.isnan(value))
        }
        for row in frame.to_dict(orient="records")
    ]


@pytest.fixture(scope="session")
def german_credit() -> pd.DataFrame:
    return load_german_credit()


class Store:
    """A prediction store with the schema, one registered model and helpers to add predictions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        upgrade(self.engine)

    def register(
        self, reference: pd.DataFrame, *, model: str = MODEL, version: str = VERSION
    ) -> None:
        registration = ModelRegistration(
            name=model,
            version=version,
            features=feature_specs(reference),
            reference=records(reference),
        )
        assert register_model(self.engine, registration)

    def add_predictions(
        self,
        current: pd.DataFrame,
        *,
        age: timedelta = timedelta(minutes=5),
        model: str = MODEL,
        version: str = VERSION,
    ) -> None:
        created_at = datetime.now(UTC) - age
        rows = [
            {
                "request_id": uuid.uuid4().hex,
                "created_at": created_at,
                "model": model,
                "version": version,
                "features": features,
                "score": 0.3,
                "decision": "good",
            }
            for features in records(current)
        ]
        with self.engine.begin() as connection:
            connection.execute(predictions.insert(), rows)


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    store = Store(sqlite_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Store]:
    store = Store(postgres_url)
    yield store
    store.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Store:
    """The same tests on both stores the project supports."""
    fixture: Store = request.getfixturevalue(f"{request.param}_store")
    return fixture


def count_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(predictions)).scalar_one()
        )
