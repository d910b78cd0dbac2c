"""Prediction records: their encoding, and one batch of them into `predictions`, idempotently.

A record is a tuple in column order with the time as seconds since the epoch
(`time.time()`), encoded once, on the request path, as a JSON array (`encode_record`): the
queue then holds bytes, which the garbage collector never scans and the writer thread never
re-encodes. Encoding is orjson's C code; building a NamedTuple and a datetime per prediction
would cost more than encoding the whole record (`PredictionRecord` names the fields for
callers that want them; it encodes the same way).

On PostgreSQL the whole batch travels as one JSON parameter, the records joined into one
array, which the server unpacks with `jsonb_array_elements`: one statement and one document,
instead of psycopg adapting seven parameters per row, and the writer thread, which shares
the interpreter with the request path, holds the GIL for a `bytes.join` rather than a Python
loop per record. The statement is compiled once. SQLite decodes the batch and takes a plain
`executemany`, which its driver runs in C. Both skip request ids already stored, so a
retried batch whose commit had in fact succeeded writes nothing twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.dialects import postgresql, sqlite

from prediction_store import predictions

# request_id, created_at (seconds since the epoch), model, version, features, score, decision
PredictionRow = tuple[str, float, str, str, Mapping[str, Any], float, str]


class PredictionRecord(NamedTuple):
    """One row of `predictions` with its fields named: a `PredictionRow` too."""

    request_id: str
    created_at: float  # seconds since the epoch, as time.time() gives them
    model: str
    version: str
    features: Mapping[str, Any]
    score: float
    decision: str


# A PredictionRow as a JSON array: what the prediction log queues and the inserts take.
EncodedRecord = bytes
BatchInsert = Callable[[sa.Connection, Sequence[EncodedRecord]], None]

# `default` serves PredictionRecord, which as a tuple subclass orjson does not encode by itself.
_dumps: Callable[[PredictionRow], bytes] = functools.partial(orjson.dumps, default=tuple)


def encode_record(record: PredictionRow) -> EncodedRecord:
    """The record as a JSON array, in memory of its own size.

    orjson hands back the buffer it wrote into, shrunk in place, and glibc's allocator keeps
    its pages: a queued record held many times its size resident, so a queue filling up while
    the store is down took a large share of the chart's memory limit (docs/performance.md).
    The copy is cheap next to that.
    """
    return bytes(memoryview(_dumps(record)))


def request_id_of(record: EncodedRecord) -> str:
    """The request id of an encoded record (for messages: it decodes the whole record)."""
    request_id: str = orjson.loads(record)[0]
    return request_id


def record_prefix(request_id: str) -> bytes:
    """How the encoding of the record of `request_id` begins (to find it among encoded ones)."""
    return b"[" + orjson.dumps(request_id) + b","


_COLUMNS = list(PredictionRecord._fields)
assert [column.name for column in predictions.columns] == _COLUMNS, "schema changed"


def writer_connection(engine: sa.Engine, statement_timeout: float | None = None) -> sa.Connection:
    """The connection a writer holds between batches: no pool checkout or pre-ping per batch.

    On PostgreSQL it is in autocommit: the insert is one statement, atomic by itself, so a
    batch is one round trip instead of four (pre-ping, BEGIN, INSERT, COMMIT). Each round trip
    makes the writer thread give up the GIL and take it back from the request path.

    `statement_timeout` (seconds) bounds each of its statements on PostgreSQL, for the
    session: an insert waiting on a lock (a long migration, VACUUM FULL, an open transaction
    holding the table) then fails as a connection error does, and is retried and reported,
    instead of holding the writer with the store still reported up. On SQLite it is the
    connection's busy timeout, how long an insert waits for another writer's lock. The
    setting stays with the session: close such a connection with `invalidate()`, so it never
    goes back to the pool that other callers share.
    """
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    if statement_timeout is None or engine.dialect.name not in ("postgresql", "sqlite"):
        return connection
    milliseconds = max(1, round(statement_timeout * 1000))
    setting = (
        f"SET statement_timeout = {milliseconds}"
        if engine.dialect.name == "postgresql"
        else f"PRAGMA busy_timeout = {milliseconds}"
    )
    try:
        with connection.begin():  # no BEGIN is sent in autocommit
            connection.exec_driver_sql(setting)
    except Exception:
        connection.invalidate()
        connection.close()
        raise
    return connection


def batch_insert_for(dialect: str) -> BatchInsert:
    if dialect == "postgresql":
        return _insert_postgresql
    if dialect == "sqlite":
        return _insert_sqlite
    raise ValueError(f"the prediction store supports PostgreSQL and SQLite, not {dialect}")


def _array_insert() -> sa.Insert:
    """INSERT ... SELECT from a JSON array of records, each itself an array in column order."""
    rows = sa.bindparam("rows", type_=postgresql.JSONB)
    record = sa.func.jsonb_array_elements(rows, type_=postgresql.JSONB).column_valued("record")
    values: list[sa.ColumnElement[Any]] = []
    for index, column in enumerate(predictions.columns):
        position: sa.ColumnElement[int] = sa.literal_column(str(index))
        if isinstance(column.type, sa.JSON):
            values.append(record.op("->", return_type=column.type)(position))
            continue
        text = record.op("->>", return_type=sa.Text)(position)
        if isinstance(column.type, sa.DateTime):
            seconds = sa.cast(text, postgresql.DOUBLE_PRECISION)
            values.append(sa.func.to_timestamp(seconds, type_=column.type))
        elif isinstance(column.type, sa.String):
            # Strings go as text: the insert checks the column's length (CAST would truncate).
            values.append(text)
        else:
            values.append(sa.cast(text, column.type))
    return (
        postgresql.insert(predictions)
        .from_select(_COLUMNS, sa.select(*values))
        .on_conflict_do_nothing(index_elements=["request_id"])
    )


@functools.cache
def _postgresql_insert(dialect: sa.Dialect) -> str:
    """The statement in the driver's own SQL, rendered once per engine: the Core construct
    misses SQLAlchemy's statement cache, and compiling it per batch costs more than encoding."""
    return str(_array_insert().compile(dialect=dialect))


_SQLITE_INSERT = sqlite.insert(predictions).on_conflict_do_nothing(index_elements=["request_id"])


def _document(records: Sequence[EncodedRecord]) -> bytes:
    """The batch as one JSON array of the encoded records."""
    return b"[" + b",".join(records) + b"]"


def _insert_postgresql(connection: sa.Connection, records: Sequence[EncodedRecord]) -> None:
    # The document goes as the bytes the records already are: no decode to str and back.
    document = _document(records)
    statement = _postgresql_insert(connection.dialect)
    # In autocommit (writer_connection) the block sends no BEGIN or COMMIT.
    with connection.begin():
        connection.exec_driver_sql(statement, {"rows": Jsonb(document, dumps=_as_is)})


def _as_is(document: bytes) -> bytes:
    return document


def _insert_sqlite(connection: sa.Connection, records: Sequence[EncodedRecord]) -> None:
    rows = []
    for record in orjson.loads(_document(records)):
        row = dict(zip(_COLUMNS, record, strict=True))
        row["created_at"] = datetime.fromtimestamp(row["created_at"], UTC)
        rows.append(row)
    with connection.begin():
        connection.execute(_SQLITE_INSERT, rows)
