"""Every served prediction reaches the store exactly once, whatever ends the process.

`credit-api serve` runs in a process of its own against a real PostgreSQL (and SQLite), with
a spool directory; the store goes down, predictions are served, the process is killed
(SIGKILL, as an OOM kill) or stopped (SIGTERM, as the kubelet does), the store comes back,
and a new process on the same spool directory writes what the first one kept.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from credit_api.spool import read_header, spool_files
from localservers.postgres import PostgresServer
from prediction_store import create_store_engine, predictions

from .api_process import ApiProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def stored_ids(url: str) -> list[str]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.select(predictions.c.request_id)).scalars())
    finally:
        engine.dispose()


async def serve_predictions(url: str, application: dict[str, Any], count: int) -> list[str]:
    """`count` predictions from 8 connections at once; their request ids."""
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(8)

        async def one() -> str:
            async with semaphore:
                response = await client.post("/api/v1/predict", json=application)
                assert response.status_code == 200, response.text
                request_id: str = response.json()["request_id"]
                return request_id

        return list(await asyncio.gather(*(one() for _ in range(count))))


def header_drops(path: Path) -> dict[str, int]:
    header = read_header(path)
    return header.dropped if header is not None else {}


def predict(api: ApiProcess, application: dict[str, Any], count: int) -> list[str]:
    return asyncio.run(serve_predictions(api.url, application, count))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def spooling_api(
    make_api: Callable[..., ApiProcess], spool: Path, url: str, **settings: Any
) -> ApiProcess:
    defaults = {"log_retry_max_seconds": 0.5, "log_statement_timeout_seconds": 1.0}
    return make_api(database_url=url, log_spool_dir=spool, **{**defaults, **settings})


def outage_then(
    stop: Callable[[ApiProcess], None],
    make_api: Callable[..., ApiProcess],
    postgres_server: PostgresServer,
    postgres_url: str,
    spool: Path,
    application: dict[str, Any],
) -> tuple[list[str], ApiProcess]:
    """Serve through an outage, end the process with `stop`, bring the store back and start
    again; the ids served, and the new process."""
    api = spooling_api(make_api, spool, postgres_url)
    served = predict(api, application, 200)
    wait_for(lambda: len(stored_ids(postgres_url)) == 200, "the first predictions were stored")
    postgres_server.stop()
    try:
        served += predict(api, application, 300)
        stop(api)
    finally:
        postgres_server.start()
    return served, spooling_api(make_api, spool, postgres_url)


def test_outage_and_sigkill_lose_no_prediction(
    make_api: Callable[..., ApiProcess],
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
    application: dict[str, Any],
) -> None:
    def killed_once_spooled(api: ApiProcess) -> None:
        # A record is kept once its batch is in the spool (a flush interval after it was
        # served); SIGKILL then loses nothing.
        wait_for(
            lambda: api.metric("credit_api_prediction_log_spool_records") == 300,
            "the outage's predictions were spooled",
        )
        api.kill()

    spool = tmp_path / "spool"
    served, restarted = outage_then(
        killed_once_spooled, make_api, postgres_server, postgres_url, spool, application
    )
    wait_for(lambda: len(stored_ids(postgres_url)) == 500, "the spool was drained")
    ids = stored_ids(postgres_url)
    assert sorted(ids) == sorted(served)  # each exactly once: request_id is the primary key
    print(f"SIGKILL during an outage: {len(ids)} of {len(served)} served predictions stored")
    assert restarted.metric("credit_api_prediction_log_written_total") == 300
    assert restarted.metric("credit_api_prediction_log_spool_records") == 0
    assert len(spool_files(spool)) == 1  # the new process's own, empty file


def test_outage_and_sigterm_lose_no_prediction(
    make_api: Callable[..., ApiProcess],
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
    application: dict[str, Any],
) -> None:
    exits: list[int] = []

    def terminated_at_once(api: ApiProcess) -> None:
        # No waiting: the last batches are still queued when the signal comes.
        started = time.monotonic()
        exits.append(api.terminate())
        exits.append(int(time.monotonic() - started))

    served, restarted = outage_then(
        terminated_at_once, make_api, postgres_server, postgres_url, tmp_path / "spool", application
    )
    status, seconds = exits
    # uvicorn shuts down, then ends by the signal it caught (so a supervisor sees why).
    assert status == -signal.SIGTERM
    assert "prediction log stopped" in (tmp_path / "api-0.log").read_text()
    assert seconds < 10  # the store is known down: the queue is spooled, not waited on
    wait_for(lambda: len(stored_ids(postgres_url)) == 500, "the spool was drained")
    assert sorted(stored_ids(postgres_url)) == sorted(served)
    assert restarted.metric("credit_api_prediction_log_dropped_total", reason="shutdown") == 0
    print(f"SIGTERM during an outage: exit in {seconds} s, all {len(served)} stored")


def test_a_full_spool_counts_its_drops_and_the_next_process_exports_them(
    make_api: Callable[..., ApiProcess],
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
    application: dict[str, Any],
) -> None:
    spool = tmp_path / "spool"
    api = spooling_api(make_api, spool, postgres_url, log_spool_max_bytes=32 * 1024)
    postgres_server.stop()
    try:
        served = predict(api, application, 300)
        wait_for(
            lambda: api.metric("credit_api_prediction_log_queue_depth") == 0,
            "every record was spooled or dropped",
        )
        full = api.metric("credit_api_prediction_log_dropped_total", reason="spool_full")
        kept = api.metric("credit_api_prediction_log_spool_records")
        assert full > 0
        assert kept + full == 300
        # The counts reach the spool's header within a flush interval; then a kill loses none.
        [own] = spool_files(spool)
        wait_for(
            lambda: header_drops(own).get("spool_full") == full,
            "the drop count was written to the spool's header",
        )
        api.kill()
    finally:
        postgres_server.start()
    restarted = spooling_api(make_api, spool, postgres_url)
    assert restarted.metric("credit_api_prediction_log_dropped_total", reason="spool_full") == full
    wait_for(lambda: len(stored_ids(postgres_url)) == kept, "the spool was drained")
    assert set(stored_ids(postgres_url)) < set(served)
    # And one restart later still: the count lives in the spool, not in a process.
    restarted.terminate()
    again = spooling_api(make_api, spool, postgres_url)
    assert again.metric("credit_api_prediction_log_dropped_total", reason="spool_full") == full
    print(f"spool of 32 KiB full: {kept:.0f} kept, {full:.0f} dropped and still counted")


def test_a_spool_cut_in_the_middle_of_a_write_is_replayed_up_to_the_cut(
    make_api: Callable[..., ApiProcess],
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
    application: dict[str, Any],
) -> None:
    spool = tmp_path / "spool"
    api = spooling_api(make_api, spool, postgres_url)
    postgres_server.stop()
    try:
        served = predict(api, application, 300)
        wait_for(
            lambda: api.metric("credit_api_prediction_log_spool_records") == 300,
            "the outage's predictions were spooled",
        )
        api.kill()
    finally:
        postgres_server.start()
    # As if the kill had come in the middle of writing the last frame.
    [left] = spool_files(spool)
    os.truncate(left, left.stat().st_size - 100)
    restarted = spooling_api(make_api, spool, postgres_url)
    lost = restarted.metric("credit_api_prediction_log_dropped_total", reason="spool_corrupt")
    assert lost >= 1
    wait_for(
        lambda: len(stored_ids(postgres_url)) == 300 - lost, "the complete frames were written"
    )
    assert set(stored_ids(postgres_url)) < set(served)
    assert httpx.get(f"{restarted.url}/readyz").json()["status"] == "ready"
    print(f"spool cut 100 bytes short: {300 - lost:.0f} of 300 replayed, {lost:.0f} counted lost")


def test_sqlite_takes_the_spool_too(
    make_api: Callable[..., ApiProcess], tmp_path: Path, application: dict[str, Any]
) -> None:
    """SQLite's outage: another process holds its write lock longer than the insert waits."""
    database = tmp_path / "store.db"
    url = f"sqlite:///{database}"
    spool = tmp_path / "spool"
    api = spooling_api(make_api, spool, url, log_statement_timeout_seconds=0.2)
    served = predict(api, application, 50)
    wait_for(lambda: len(stored_ids(url)) == 50, "the first predictions were stored")
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        served += predict(api, application, 200)
        wait_for(
            lambda: api.metric("credit_api_prediction_log_spool_records") == 200,
            "the predictions were spooled",
        )
        api.kill()
    finally:
        holder.execute("COMMIT")
        holder.close()
    spooling_api(make_api, spool, url)
    wait_for(lambda: len(stored_ids(url)) == 250, "the spool was drained")
    assert sorted(stored_ids(url)) == sorted(served)
