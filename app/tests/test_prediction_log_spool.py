"""The prediction log with a spool: outages go to disk, and come back oldest first."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from credit_api.batch_insert import PredictionRecord
from credit_api.metrics import Metrics
from credit_api.prediction_log import PredictionLogWriter, SpoolSettings
from credit_api.schemas import EXAMPLE_APPLICATION
from credit_api.spool import read_header, spool_files
from localservers.ports import free_port
from prediction_store import create_store_engine, predictions, upgrade

from .test_prediction_log import sample, stored, wait_until

MiB = 1024 * 1024


def records(start: int, count: int) -> list[PredictionRecord]:
    now = time.time()
    return [
        PredictionRecord(f"{n:032x}", now, "credit-score", "1", EXAMPLE_APPLICATION, 0.25, "good")
        for n in range(start, start + count)
    ]


def nowhere() -> sa.Engine:
    """A PostgreSQL store with nothing listening: every attempt is refused at once."""
    return create_store_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")


def spooling_writer(
    engine: sa.Engine, directory: Path, max_bytes: int = 256 * MiB, **options: object
) -> PredictionLogWriter:
    options.setdefault("flush_interval", 0.02)
    options.setdefault("retry_max", 0.2)
    writer = PredictionLogWriter(
        engine,
        setup=upgrade,
        spool=SpoolSettings(directory, max_bytes),
        **options,  # type: ignore[arg-type]
    )
    writer.start()
    assert writer.wait_for_spool(10)
    return writer


def ids_in_insertion_order(engine: sa.Engine) -> list[str]:
    """SQLite's rowid grows with each insert: the order records reached the store."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(predictions.c.request_id).order_by(sa.literal_column("rowid"))
        )
        return [row.request_id for row in rows]


def test_a_locked_store_spools_then_drains_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    upgrade(create_store_engine(f"sqlite:///{path}"))
    engine = create_store_engine(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    # Small batches, so that draining takes a while and new records arrive meanwhile.
    writer = spooling_writer(engine, tmp_path / "spool", batch_size=20, statement_timeout=0.05)
    for start in range(0, 2000, 100):
        writer.submit(records(start, 100))
    wait_until(lambda: writer.spooled == 2000)
    assert writer.written == 0
    assert writer.depth == 0  # the outage is on disk, not in memory
    holder.execute("COMMIT")
    holder.close()
    assert writer.spool_backlog
    writer.submit(records(2000, 100))  # while the backlog drains: these go after it
    wait_until(lambda: writer.written == 2100, timeout=30)
    writer.stop(timeout=10)
    assert ids_in_insertion_order(engine) == [f"{n:032x}" for n in range(2100)]
    assert writer.drained + (writer.written - writer.drained) == 2100
    assert sum(writer.dropped.values()) == 0
    engine.dispose()


def test_memory_stays_flat_through_a_long_outage(tmp_path: Path) -> None:
    """100,000 records (85 MB encoded) go to the spool, not to memory."""
    writer = spooling_writer(nowhere(), tmp_path / "spool")
    process = psutil.Process()
    before = process.memory_info().rss
    for start in range(0, 100_000, 500):
        writer.submit(records(start, 500))
        wait_until(lambda: writer.depth < 5000)  # traffic the spool keeps up with
    wait_until(lambda: writer.spooled == 100_000, timeout=60)
    grown = process.memory_info().rss - before
    writer.stop(timeout=1)
    assert sum(writer.dropped.values()) == 0
    assert writer.depth == 0
    assert grown < 16 * MiB, f"resident memory grew by {grown / MiB:.1f} MiB"
    print(f"100,000 records spooled through an outage: resident +{grown / MiB:.1f} MiB")


def test_stop_spools_what_the_store_cannot_take_and_the_next_writer_drains_it(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    writer = spooling_writer(nowhere(), spool, flush_interval=30.0)
    writer.submit(records(0, 1500))  # still queued: the batch lingers for 30 s
    wait_until(lambda: writer.last_error is not None)
    started = time.monotonic()
    writer.stop(timeout=10)
    assert time.monotonic() - started < 5  # no waiting for a store known to be down
    assert (writer.spooled, writer.dropped["shutdown"]) == (1500, 0)
    # The next process, on SQLite: the spool is the same whichever store takes it.
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    successor = spooling_writer(engine, spool)
    wait_until(lambda: successor.written == 1500, timeout=30)
    successor.stop(timeout=10)
    assert stored(engine) == 1500
    assert successor.drained == 1500
    assert spool_files(spool) == []
    engine.dispose()


def test_drops_of_a_full_spool_carry_on_into_the_next_process(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    writer = spooling_writer(nowhere(), spool, max_bytes=64 * 1024)
    for start in range(0, 600, 50):
        writer.submit(records(start, 50))
        wait_until(lambda: writer.depth == 0)
    full = writer.dropped["spool_full"]
    assert full > 0
    assert writer.spooled + full == 600
    writer.stop(timeout=1)
    [left] = spool_files(spool)
    header = read_header(left)
    assert header is not None
    assert header.dropped == {"spool_full": full}
    metrics = Metrics()
    successor = spooling_writer(nowhere(), spool, metrics=metrics)
    try:
        assert successor.inherited_drops["spool_full"] == full
        assert (
            sample(metrics, "credit_api_prediction_log_dropped_total", reason="spool_full") == full
        )
        assert sample(metrics, "credit_api_prediction_log_spool_records") == writer.spooled
    finally:
        successor.stop(timeout=1)


def test_a_spool_that_cannot_open_leaves_records_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # the spool directory would be inside a file
    writer = spooling_writer(nowhere(), blocked / "spool")
    try:
        writer.submit(records(0, 10))
        wait_until(lambda: writer.last_error is not None)
        assert writer.depth == 10
        assert writer.spooled == 0
        assert "cannot open the spool" in caplog.text
    finally:
        writer.stop(timeout=0.1)
