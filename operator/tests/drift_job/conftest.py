"""Shared fixtures: the German Credit data, and prediction stores filled the way services do."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from prediction_store import (
    FeatureSpec,
    ModelRegistration,
    ReferenceOutput,
    create_store_engine,
    feedback,
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


def german_credit_labels() -> pd.Series:
    """The true outcome of each application: `good` or `bad` (default)."""
    return pd.read_csv(_DATA)["creditability"]


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
        self,
        reference: pd.DataFrame,
        *,
        model: str = MODEL,
        version: str = VERSION,
        outputs: Sequence[ReferenceOutput] = (),
        decision_shares: Mapping[str, float] | None = None,
        positive_class: str | None = None,
        decision_threshold: float | None = None,
    ) -> None:
        registration = ModelRegistration(
            name=model,
            version=version,
            features=feature_specs(reference),
            reference=records(reference),
            reference_outputs=outputs,
            decision_shares=decision_shares or {},
            positive_class=positive_class,
            decision_threshold=decision_threshold,
        )
        assert register_model(self.engine, registration)

    def add_predictions(
        self,
        current: pd.DataFrame,
        *,
        age: timedelta = timedelta(minutes=5),
        model: str = MODEL,
        version: str = VERSION,
        scores: Sequence[float] | np.ndarray | None = None,
        decisions: Sequence[str] | None = None,
        outcomes: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Predictions made `age` ago, with their scores and decisions when given (else 0.3 and
        good); `outcomes` records feedback for those whose outcome is not None. Returns the
        request ids, in order."""
        created_at = datetime.now(UTC) - age
        ids = [uuid.uuid4().hex for _ in range(len(current))]
        rows = [
            {
                "request_id": request_id,
                "created_at": created_at,
                "model": model,
                "version": version,
                "features": features,
                "score": float(scores[i]) if scores is not None else 0.3,
                "decision": decisions[i] if decisions is not None else "good",
            }
            for i, (request_id, features) in enumerate(zip(ids, records(current), strict=True))
        ]
        feedback_rows = [
            {"request_id": request_id, "outcome": outcome, "recorded_at": datetime.now(UTC)}
            for request_id, outcome in zip(ids, outcomes or [], strict=False)
            if outcome is not None
        ]
        with self.engine.begin() as connection:
            connection.execute(predictions.insert(), rows)
            if feedback_rows:
                connection.execute(feedback.insert(), feedback_rows)
        return ids


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
