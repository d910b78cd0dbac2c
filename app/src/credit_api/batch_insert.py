"""One batch of prediction records into the store's `predictions` table, idempotently.

On PostgreSQL the whole batch travels as one JSON parameter that the server unpacks with
`jsonb_to_recordset`: one statement and one JSON document, instead of psycopg adapting seven
parameters per row (about 5x less client CPU per record). The document is encoded by orjson
(timestamps included) and the statement is compiled once: the writer thread shares the
interpreter with the request path, so every microsecond it holds the GIL per record is taken
from predictions. SQLite takes a plain `executemany`, which its driver runs in C. Both skip
request ids already stored, so a retried batch whose commit had in fact succeeded writes
nothing twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from prediction_store import predictions


class PredictionRecord(NamedTuple):
    """One row of `predictions` (a tuple: cheap to make on the request path)."""

    request_id: str
    created_at: datetime
    model: str
    version: str
    features: Mapping[str, Any]
    score: float
    decision: str


BatchInsert = Callable[[sa.Connection, Sequence[PredictionRecord]], None]

_COLUMNS = list(PredictionRecord._fields)
assert [column.name for column in predictions.columns] == _COLUMNS, "schema changed"


def batch_insert_for(dialect: str) -> BatchInsert:
    if dialect == "postgresql":
        return _insert_postgresql
    if dialect == "sqlite":
        return _insert_sqlite
    raise ValueError(f"the prediction store supports PostgreSQL and SQLite, not {dialect}")


def _recordset_insert() -> sa.Insert:
    rows = sa.bindparam("rows", type_=postgresql.JSONB)
    recordset = (
        sa.func.jsonb_to_recordset(rows)
        .table_valued(*(sa.column(c.name, c.type) for c in predictions.columns))
        .render_derived(name="batch", with_types=True)
    )
    return (
        postgresql.insert(predictions)
        .from_select(_COLUMNS, sa.select(*(recordset.c[name] for name in _COLUMNS)))
        .on_conflict_do_nothing(index_elements=["request_id"])
    )


@functools.cache
def _postgresql_insert(dialect: sa.Dialect) -> str:
    """The statement in the driver's own SQL, rendered once per engine: the Core construct
    misses SQLAlchemy's statement cache, and compiling it per batch costs more than encoding."""
    return str(_recordset_insert().compile(dialect=dialect))


_SQLITE_INSERT = sqlite.insert(predictions).on_conflict_do_nothing(index_elements=["request_id"])


def _insert_postgresql(connection: sa.Connection, records: Sequence[PredictionRecord]) -> None:
    # orjson writes datetimes as RFC 3339 text, which timestamptz parses with its offset.
    document = orjson.dumps([dict(zip(_COLUMNS, record, strict=True)) for record in records])
    statement = _postgresql_insert(connection.dialect)
    connection.exec_driver_sql(statement, {"rows": document.decode()})


def _insert_sqlite(connection: sa.Connection, records: Sequence[PredictionRecord]) -> None:
    connection.execute(_SQLITE_INSERT, [record._asdict() for record in records])
