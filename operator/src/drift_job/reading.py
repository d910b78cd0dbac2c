"""Reads from the prediction store: the registered model, its reference, the current window.

Each read is one query whose columns the database extracts and casts (see
`prediction_store.queries`); the rows go straight into a DataFrame, without a per-row loop.
A window larger than `max_rows` is sampled uniformly in the database (a Bernoulli draw per
row), so about `max_rows` rows cross the wire however large the window is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from prediction_store import (
    DECISION_COLUMN,
    OUTCOME_COLUMN,
    SCORE_COLUMN,
    FeatureSpec,
    RegisteredModel,
    count_labelled,
    count_window,
    get_model,
    select_labelled,
    select_reference,
    select_window,
)

# The model's outputs and the outcome, typed like features: the score a number, the rest text.
OUTPUT_SPECS = (FeatureSpec(SCORE_COLUMN, "numerical"), FeatureSpec(DECISION_COLUMN, "categorical"))
OUTCOME_SPEC = FeatureSpec(OUTCOME_COLUMN, "categorical")


class StoreUnavailableError(RuntimeError):
    """The store cannot be reached or read (worth retrying)."""


class ReferenceMissingError(LookupError):
    """The model version, or its reference sample, is not registered in the store."""


@dataclass(frozen=True)
class CurrentWindow:
    frame: pd.DataFrame
    total_rows: int
    sampled: bool


@dataclass(frozen=True)
class LabelledWindow:
    """The predictions of a window that have an outcome (a sample when `sampled`)."""

    frame: pd.DataFrame
    predictions: int  # every prediction in the window, labelled or not
    labelled: int
    sampled: bool


def load_model(engine: sa.Engine, name: str, version: str | None) -> RegisteredModel:
    """The registered model version (the latest when version is None)."""
    _require_sqlite_file(engine)
    with store_errors():
        model = get_model(engine, name, version)
    if model is None:
        which = f"version {version} of model" if version is not None else "no version of model"
        verb = "is not registered" if version is not None else "is registered"
        raise ReferenceMissingError(f"{which} {name!r} {verb} in the store")
    if model.reference_rows == 0:
        raise ReferenceMissingError(f"model {name!r} version {model.version} has no reference rows")
    return model


def read_reference(
    engine: sa.Engine,
    model: RegisteredModel,
    specs: Sequence[FeatureSpec],
    *,
    outputs: bool = False,
) -> pd.DataFrame:
    """The reference sample; with `outputs`, the registered score and decision of each row
    (columns `prediction_score`, `prediction_decision`; missing when none were registered)."""
    query = select_reference(model.name, model.version, specs, outputs=outputs)
    frame = _read_frame(engine, query, [*specs, *(OUTPUT_SPECS if outputs else ())])
    if frame.empty:
        raise ReferenceMissingError(
            f"model {model.name!r} version {model.version} has no reference rows"
        )
    return frame


def read_window(
    engine: sa.Engine,
    model: RegisteredModel,
    start: datetime,
    end: datetime,
    specs: Sequence[FeatureSpec],
    *,
    max_rows: int,
    outputs: bool = False,
) -> CurrentWindow:
    """The window's features (and with `outputs` its scores and decisions), sampled down to
    about max_rows when it holds more."""
    with store_errors(), engine.connect() as connection:
        total = int(
            connection.execute(count_window(model.name, model.version, start, end)).scalar_one()
        )
    sample_fraction = max_rows / total if total > max_rows else None
    query = select_window(
        model.name,
        model.version,
        start,
        end,
        specs,
        dialect=engine.dialect.name,
        sample_fraction=sample_fraction,
        outputs=outputs,
    )
    typed = [*specs, *(OUTPUT_SPECS if outputs else ())]
    frame = _read_frame(engine, query, typed) if total else _empty_frame(typed)
    return CurrentWindow(frame=frame, total_rows=total, sampled=sample_fraction is not None)


def read_labelled(
    engine: sa.Engine,
    model: RegisteredModel,
    start: datetime,
    end: datetime,
    specs: Sequence[FeatureSpec],
    *,
    max_rows: int,
) -> LabelledWindow:
    """The predictions in [start, end) joined to their outcomes: `specs`, the score, the
    decision and the outcome, sampled in the database down to about max_rows."""
    with store_errors(), engine.connect() as connection:
        counts = connection.execute(count_labelled(model.name, model.version, start, end)).one()
    total, labelled = int(counts[0]), int(counts[1])
    sample_fraction = max_rows / labelled if labelled > max_rows else None
    query = select_labelled(
        model.name,
        model.version,
        start,
        end,
        specs,
        dialect=engine.dialect.name,
        sample_fraction=sample_fraction,
    )
    typed = [*specs, *OUTPUT_SPECS, OUTCOME_SPEC]
    frame = _read_frame(engine, query, typed) if labelled else _empty_frame(typed)
    return LabelledWindow(frame, total, labelled, sample_fraction is not None)


def _read_frame(
    engine: sa.Engine, query: sa.Select[tuple[object, ...]], specs: Sequence[FeatureSpec]
) -> pd.DataFrame:
    with store_errors(), engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame.from_records(rows, columns=[spec.name for spec in specs])
    return _typed(frame, specs)


def _empty_frame(specs: Sequence[FeatureSpec]) -> pd.DataFrame:
    return _typed(pd.DataFrame({spec.name: [] for spec in specs}), specs)


def _typed(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> pd.DataFrame:
    # Numbers as float64 (missing -> NaN); categories as strings, whatever JSON type the writer
    # used (SQLite hands back 1 for a JSON number, PostgreSQL '1'), missing -> None.
    for spec in specs:
        column = frame[spec.name]
        if spec.kind == "numerical":
            frame[spec.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            frame[spec.name] = column.astype(object).where(column.isna(), column.astype(str))
    return frame


def _require_sqlite_file(engine: sa.Engine) -> None:
    """SQLite would create a missing file and then find no tables: say what is wrong instead."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if not database.startswith("file:") and not Path(database).exists():
        raise StoreUnavailableError(
            f"the SQLite store {database} does not exist; credit-api creates it when it starts "
            "(is --store-url the API's CREDIT_API_DATABASE_URL?)"
        )


@contextmanager
def store_errors() -> Iterator[None]:
    """Turns the driver's connection and schema errors into StoreUnavailableError, one line each."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.ProgrammingError) as error:
        detail = str(error.orig if error.orig is not None else error).strip().splitlines()
        raise StoreUnavailableError(detail[0] if detail else type(error).__name__) from error
