"""Typed reads of feature windows: one query, columns extracted and cast by the database.

The features live in a JSON column; extracting them in SQL (->> on PostgreSQL, json_extract
on SQLite) hands the reader typed columns without a per-row Python loop. A key missing from a
record reads as NULL, so a feature absent from the current data shows up as missing values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from prediction_store.engine import create_store_engine
from prediction_store.registry import FeatureSpec
from prediction_store.schema import feedback, predictions, reference_rows

# The labels of the model's outputs and of the observed outcome beside the feature columns.
SCORE_COLUMN = "prediction_score"
DECISION_COLUMN = "prediction_decision"
OUTCOME_COLUMN = "outcome"
OUTPUT_COLUMNS = (SCORE_COLUMN, DECISION_COLUMN)

# SQLite's random() is a signed 64-bit integer; this scales it to [0, 1).
_SQLITE_RANDOM_SPAN = 18446744073709551616.0


def feature_columns(
    features: sa.ColumnElement[object], specs: Sequence[FeatureSpec]
) -> list[sa.ColumnElement[Any]]:
    """One typed, labelled column per feature: float for numerical, text for categorical."""
    columns: list[sa.ColumnElement[Any]] = []
    for spec in specs:
        element = features[spec.name]
        if spec.kind == "numerical":
            # as_float() alone leaves SQLite's integers as integers; the cast makes them REAL.
            columns.append(sa.cast(element.as_float(), sa.Float()).label(spec.name))
        else:
            columns.append(element.as_string().label(spec.name))
    return columns


def select_reference(
    model: str, version: str, specs: Sequence[FeatureSpec], *, outputs: bool = False
) -> sa.Select[tuple[object, ...]]:
    """The reference sample of one model version; with `outputs`, the model's registered
    score and decision on each row too (`prediction_score`, `prediction_decision`)."""
    columns = feature_columns(reference_rows.c.features, specs)
    if outputs:
        columns += [
            reference_rows.c.score.label(SCORE_COLUMN),
            reference_rows.c.decision.label(DECISION_COLUMN),
        ]
    return (
        sa.select(*columns)
        .where(reference_rows.c.model == model, reference_rows.c.version == version)
        .order_by(reference_rows.c.row_id)
    )


def window_filter(
    model: str, version: str | None, start: datetime, end: datetime
) -> list[sa.ColumnElement[bool]]:
    """Predictions of one model (and version, when given) made in [start, end)."""
    conditions = [
        predictions.c.model == model,
        predictions.c.created_at >= start,
        predictions.c.created_at < end,
    ]
    if version is not None:
        conditions.append(predictions.c.version == version)
    return conditions


def count_window(
    model: str, version: str | None, start: datetime, end: datetime
) -> sa.Select[tuple[int]]:
    return (
        sa.select(sa.func.count())
        .select_from(predictions)
        .where(*window_filter(model, version, start, end))
    )


def count_predictions(url: str) -> int:
    """Every prediction row in the store at `url`, through a short-lived engine (checks, tools)."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(predictions)
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def select_window(
    model: str,
    version: str | None,
    start: datetime,
    end: datetime,
    specs: Sequence[FeatureSpec],
    *,
    dialect: str,
    sample_fraction: float | None = None,
    outputs: bool = False,
) -> sa.Select[tuple[object, ...]]:
    """The features of the predictions in the window, optionally a uniform random sample;
    with `outputs`, each prediction's score and decision too.

    Sampling happens in the database (a Bernoulli draw per row), so a window of millions of
    rows never crosses the wire whole.
    """
    columns = feature_columns(predictions.c.features, specs)
    if outputs:
        columns += [
            predictions.c.score.label(SCORE_COLUMN),
            predictions.c.decision.label(DECISION_COLUMN),
        ]
    query = sa.select(*columns).where(*window_filter(model, version, start, end))
    if sample_fraction is not None and sample_fraction < 1.0:
        query = query.where(_uniform_random(dialect) < sample_fraction)
    return query


def count_labelled(
    model: str, version: str | None, start: datetime, end: datetime
) -> sa.Select[tuple[int, int]]:
    """(predictions, predictions whose outcome has been recorded) in the window, in one pass."""
    return (
        sa.select(sa.func.count(), sa.func.count(feedback.c.request_id))
        .select_from(
            predictions.outerjoin(feedback, feedback.c.request_id == predictions.c.request_id)
        )
        .where(*window_filter(model, version, start, end))
    )


def select_labelled(
    model: str,
    version: str | None,
    start: datetime,
    end: datetime,
    specs: Sequence[FeatureSpec],
    *,
    dialect: str,
    sample_fraction: float | None = None,
) -> sa.Select[tuple[object, ...]]:
    """The predictions in the window joined to their recorded outcome (by request id): the
    features in `specs`, the score, the decision and the outcome; optionally a uniform sample."""
    query = (
        sa.select(
            *feature_columns(predictions.c.features, specs),
            predictions.c.score.label(SCORE_COLUMN),
            predictions.c.decision.label(DECISION_COLUMN),
            feedback.c.outcome.label(OUTCOME_COLUMN),
        )
        .select_from(predictions.join(feedback, feedback.c.request_id == predictions.c.request_id))
        .where(*window_filter(model, version, start, end))
    )
    if sample_fraction is not None and sample_fraction < 1.0:
        query = query.where(_uniform_random(dialect) < sample_fraction)
    return query


def _uniform_random(dialect: str) -> sa.ColumnElement[float]:
    if dialect == "sqlite":
        return sa.func.random() / _SQLITE_RANDOM_SPAN + 0.5
    return sa.func.random()
