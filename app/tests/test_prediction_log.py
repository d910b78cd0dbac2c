"""The prediction log writer against real databases: SQLite files, and a PostgreSQL URL with
nothing listening (the PostgreSQL outage tests live in test_store_postgres.py)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from credit_api.batch_insert import PredictionRecord
from credit_api.metrics import Metrics
from credit_api.prediction_log import PredictionLogWriter
from localservers.ports import free_port
from prediction_store import create_store_engine, predictions, upgrade


def record(
    features: dict[str, Any] | None = None, request_id: str | None = None
) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id or uuid.uuid4().hex,
        created_at=time.time(),
        model="credit-score",
        version="1",
        features=features if features is not None else {"age_in_years": 30, "housing": "own"},
        score=0.25,
        decision="good",
    )


def stored(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(predictions)).scalar_one()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def make_writer() -> Iterator[Callable[..., PredictionLogWriter]]:
    writers: list[PredictionLogWriter] = []

    def make(engine: sa.Engine, **options: Any) -> PredictionLogWriter:
        options.setdefault("setup", upgrade)
        options.setdefault("flush_interval", 0.02)
        writer = PredictionLogWriter(engine, **options)
        writer.start()
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.stop(timeout=1.0)


def test_every_record_is_written_in_batches(
    sqlite_engine: sa.Engine, make_writer: Callable[..., PredictionLogWriter]
) -> None:
    metrics = Metrics()
    writer = make_writer(sqlite_engine, metrics=metrics, batch_size=100)
    for _ in range(12):
        assert writer.submit([record() for _ in range(100)]) == 100
    writer.submit([record()])
    writer.stop(timeout=10)
    assert writer.written == 1201 == stored(sqlite_engine)
    assert writer.depth == 0
    assert sample(metrics, "credit_api_prediction_log_written_total") == 1201
    assert sample(metrics, "credit_api_prediction_log_queue_depth") == 0
    assert sample(metrics, "credit_api_prediction_store_up") == 1
    with sqlite_engine.connect() as connection:
        row = connection.execute(sa.select(predictions).limit(1)).mappings().one()
    assert row["features"] == {"age_in_years": 30, "housing": "own"}
    assert (row["model"], row["version"], row["decision"]) == ("credit-score", "1", "good")


def test_a_dead_store_fills_the_queue_then_drops_are_counted(
    make_writer: Callable[..., PredictionLogWriter],
) -> None:
    # Nothing listens on this port: every connection attempt is refused at once.
    engine = create_store_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    metrics = Metrics()
    writer = make_writer(engine, metrics=metrics, max_queue=10)
    started = time.perf_counter()
    assert writer.submit([record() for _ in range(25)]) == 10
    assert time.perf_counter() - started < 0.05  # the caller never waits for the store
    assert writer.dropped["queue_full"] == 15
    wait_until(lambda: writer.last_error is not None)
    assert not writer.store_up
    writer.stop(timeout=0.3)
    assert {reason: count for reason, count in writer.dropped.items() if count} == {
        "queue_full": 15,
        "shutdown": 10,
    }
    assert writer.written + sum(writer.dropped.values()) == writer.submitted == 25
    assert sample(metrics, "credit_api_prediction_log_dropped_total", reason="queue_full") == 15
    assert sample(metrics, "credit_api_prediction_log_dropped_total", reason="shutdown") == 10
    assert sample(metrics, "credit_api_prediction_store_up") == 0


def test_a_full_queue_holds_about_the_size_of_its_records() -> None:
    # In a fresh interpreter (bench/queue_memory.py, which `make bench-api` prints), so no
    # memory freed earlier is reused. Records as orjson returns them held 9.6x their size.
    script = Path(__file__).resolve().parents[1] / "bench" / "queue_memory.py"
    result = subprocess.run(
        [sys.executable, str(script), "20000"], capture_output=True, text=True, check=True
    )
    figures = json.loads(result.stdout)
    assert figures["resident_per_record"] < 2 * figures["encoded_size"], figures


def test_a_locked_store_is_retried_until_it_is_free(
    tmp_path: Path, make_writer: Callable[..., PredictionLogWriter]
) -> None:
    path = tmp_path / "store.db"
    upgrade(create_store_engine(f"sqlite:///{path}"))
    # Another process holding SQLite's write lock makes every write fail quickly.
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    writer = make_writer(engine, retry_max=0.1)
    writer.submit([record() for _ in range(5)])
    wait_until(lambda: writer.last_error is not None)
    assert "locked" in (writer.last_error or "")
    assert writer.written == 0
    assert writer.depth == 5
    holder.execute("COMMIT")
    holder.close()
    wait_until(lambda: writer.written == 5)
    assert writer.store_up
    assert writer.depth == 0
    assert stored(engine) == 5


def test_a_refused_record_is_dropped_alone(
    sqlite_engine: sa.Engine, make_writer: Callable[..., PredictionLogWriter]
) -> None:
    metrics = Metrics()
    writer = make_writer(sqlite_engine, metrics=metrics, flush_interval=0.5)
    good = [record() for _ in range(4)]
    # Encodes, but no insert can take it: the time is not a number.
    refused = record()._replace(created_at="yesterday")  # type: ignore[arg-type]
    writer.submit([good[0], good[1], refused, good[2], good[3]])
    wait_until(lambda: writer.depth == 0)
    assert writer.written == 4 == stored(sqlite_engine)
    assert writer.dropped["rejected"] == 1
    assert sample(metrics, "credit_api_prediction_log_dropped_total", reason="rejected") == 1


def test_a_record_that_cannot_be_encoded_is_dropped_alone(
    sqlite_engine: sa.Engine, make_writer: Callable[..., PredictionLogWriter]
) -> None:
    metrics = Metrics()
    writer = make_writer(sqlite_engine, metrics=metrics)
    good = [record() for _ in range(4)]
    unencodable = record(features={"age_in_years": object()})
    assert writer.submit([good[0], good[1], unencodable, good[2], good[3]]) == 4
    assert writer.submitted == 5
    wait_until(lambda: writer.depth == 0)
    assert writer.written == 4 == stored(sqlite_engine)
    assert writer.dropped["rejected"] == 1
    assert sample(metrics, "credit_api_prediction_log_dropped_total", reason="rejected") == 1


def test_rewriting_a_stored_record_is_harmless(
    sqlite_engine: sa.Engine, make_writer: Callable[..., PredictionLogWriter]
) -> None:
    # A retry after a lost commit acknowledgement sends rows that are already stored.
    writer = make_writer(sqlite_engine)
    first = record()
    writer.submit([first])
    wait_until(lambda: writer.written == 1)
    writer.submit([record(request_id=first.request_id), record()])
    wait_until(lambda: writer.written == 3)
    assert stored(sqlite_engine) == 2


def test_flush_record_writes_a_queued_record_now(
    sqlite_engine: sa.Engine, make_writer: Callable[..., PredictionLogWriter]
) -> None:
    writer = make_writer(sqlite_engine, flush_interval=30.0, batch_size=1000)
    wait_until(lambda: writer.store_ready)
    queued = record()
    writer.submit([queued])
    assert writer.is_pending(queued.request_id)
    started = time.perf_counter()
    assert writer.flush_record(queued.request_id, timeout=5.0)
    assert time.perf_counter() - started < 2.0
    assert not writer.is_pending(queued.request_id)
    assert stored(sqlite_engine) == 1


def test_flush_record_gives_up_after_its_timeout(
    make_writer: Callable[..., PredictionLogWriter],
) -> None:
    writer = make_writer(create_store_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none"))
    queued = record()
    writer.submit([queued])
    started = time.perf_counter()
    assert not writer.flush_record(queued.request_id, timeout=0.2)
    assert 0.2 <= time.perf_counter() - started < 1.0
    assert writer.is_pending(queued.request_id)


def test_stop_flushes_what_is_queued(
    sqlite_engine: sa.Engine, make_writer: Callable[..., PredictionLogWriter]
) -> None:
    writer = make_writer(sqlite_engine, flush_interval=30.0, batch_size=10_000)
    wait_until(lambda: writer.store_ready)
    writer.submit([record() for _ in range(300)])
    writer.stop(timeout=10)
    assert writer.written == 300 == stored(sqlite_engine)
    assert writer.submit([record()]) == 0
    assert writer.dropped["shutdown"] == 1


def test_records_have_the_columns_of_the_store_table() -> None:
    assert list(PredictionRecord._fields) == [column.name for column in predictions.columns]
