"""The app against a real PostgreSQL server: migration, registration, the prediction log,
feedback, an outage at start, and durability under concurrent load with the database stopped
mid-run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from credit_api.batch_insert import PredictionRecord
from credit_api.metrics import Metrics
from credit_api.prediction_log import PredictionLogWriter
from credit_api.runtime import POSTGRES_CONNECT_TIMEOUT_SECONDS, store_engine
from localservers.postgres import PostgresServer
from prediction_store import (
    POSTGRES_CONNECTION_DEFAULTS,
    create_store_engine,
    current_revision,
    feedback,
    get_model,
    head_revision,
    predictions,
    select_reference,
    upgrade,
)

if TYPE_CHECKING:
    from .conftest import LiveServer

pytestmark = pytest.mark.postgres


def count_rows(url: str, table: sa.Table = predictions) -> int:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def metric(live: LiveServer, name: str, **labels: str) -> float:
    value = live.runtime.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def dropped(live: LiveServer) -> float:
    return sum(
        metric(live, "credit_api_prediction_log_dropped_total", reason=reason)
        for reason in ("queue_full", "rejected", "shutdown")
    )


def wait_for_readiness(url: str, status: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url) as client:
        while (seen := client.get("/readyz").json()["status"]) != status:
            assert time.monotonic() < deadline, f"readiness stayed {seen!r}"
            time.sleep(0.1)


async def predict_concurrently(
    url: str, application: dict[str, Any], count: int, concurrency: int = 16
) -> list[httpx.Response]:
    """`count` single predictions from `concurrency` connections at once."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> httpx.Response:
            async with semaphore:
                return await client.post("/api/v1/predict", json=application)

        return await asyncio.gather(*(one() for _ in range(count)))


def test_start_migrates_and_registers_the_model(
    make_server: Callable[..., LiveServer], postgres_url: str
) -> None:
    make_server(database_url=postgres_url)
    engine = create_store_engine(postgres_url)
    assert current_revision(engine) == head_revision()
    model = get_model(engine, "credit-score", "1")
    assert model is not None
    assert model.reference_rows == 800
    # The model's own decisions on its reference sample (the training labels hold 30% bad).
    assert model.decision_shares == pytest.approx({"good": 0.79, "bad": 0.21})
    assert (model.positive_class, model.decision_threshold) == ("bad", 0.5)
    with engine.connect() as connection:
        outputs = connection.execute(
            select_reference("credit-score", "1", model.features, outputs=True)
        ).all()
    scores = [row.prediction_score for row in outputs]
    decisions = [row.prediction_decision for row in outputs]
    assert len(scores) == 800
    assert all(0 < score < 1 for score in scores)
    assert decisions == ["bad" if score >= 0.5 else "good" for score in scores]
    assert decisions.count("bad") == 168
    assert model.metrics["roc_auc"] >= 0.75
    assert [f.name for f in model.features][:2] == [
        "status_of_existing_checking_account",
        "duration_in_month",
    ]
    engine.dispose()


def test_a_second_start_registers_nothing_new(
    make_server: Callable[..., LiveServer], postgres_url: str
) -> None:
    make_server(database_url=postgres_url).stop()
    make_server(database_url=postgres_url).stop()
    engine = create_store_engine(postgres_url)
    with engine.connect() as connection:
        models = connection.execute(sa.text("SELECT count(*) FROM models")).scalar_one()
        references = connection.execute(sa.text("SELECT count(*) FROM reference_rows")).scalar_one()
    engine.dispose()
    assert (models, references) == (1, 800)


def test_predictions_and_feedback_reach_postgres(
    make_server: Callable[..., LiveServer], postgres_url: str, application: dict[str, Any]
) -> None:
    live = make_server(database_url=postgres_url, log_flush_interval_seconds=30.0)
    with httpx.Client(base_url=live.url) as client:
        prediction = client.post("/api/v1/predict", json=application).json()
        answer = client.post(
            "/api/v1/feedback", json={"request_id": prediction["request_id"], "outcome": "bad"}
        )
        assert answer.status_code == 200, answer.text
    engine = create_store_engine(postgres_url)
    with engine.connect() as connection:
        row = connection.execute(sa.select(predictions)).mappings().one()
        # The features are JSONB: the drift job extracts typed columns in SQL.
        age = connection.execute(
            sa.text("SELECT (features->>'age_in_years')::int FROM predictions")
        ).scalar_one()
        outcome = connection.execute(sa.select(feedback.c.outcome)).scalar_one()
    engine.dispose()
    assert row["request_id"] == prediction["request_id"]
    assert row["features"] == application
    assert row["created_at"].tzinfo is not None
    assert age == application["age_in_years"]
    assert outcome == "bad"


def test_a_store_down_at_start_degrades_then_recovers(
    make_server: Callable[..., LiveServer],
    postgres_server: PostgresServer,
    postgres_url: str,
    application: dict[str, Any],
) -> None:
    postgres_server.stop()
    try:
        live = make_server(database_url=postgres_url, log_retry_max_seconds=0.5)
        with httpx.Client(base_url=live.url) as client:
            readiness = client.get("/readyz")
            assert readiness.status_code == 200
            assert readiness.json()["status"] == "degraded"
            for _ in range(5):
                assert client.post("/api/v1/predict", json=application).status_code == 200
    finally:
        postgres_server.start()
    wait_for_readiness(live.url, "ready")
    writer = live.runtime.writer
    assert writer is not None
    deadline = time.monotonic() + 30
    while writer.written < 5:
        assert time.monotonic() < deadline, "the queued predictions were not written"
        time.sleep(0.05)
    assert count_rows(postgres_url) == 5
    assert get_model(create_store_engine(postgres_url), "credit-score", "1") is not None


@pytest.mark.slow
def test_concurrent_predictions_are_all_stored_exactly_once(
    make_server: Callable[..., LiveServer], postgres_url: str, application: dict[str, Any]
) -> None:
    n = 1000
    live = make_server(database_url=postgres_url)
    responses = asyncio.run(predict_concurrently(live.url, application, n, concurrency=32))
    assert [r.status_code for r in responses] == [200] * n
    live.stop()
    assert count_rows(postgres_url) == n
    assert metric(live, "credit_api_prediction_log_written_total") == n
    assert dropped(live) == 0


@pytest.mark.slow
def test_a_database_outage_mid_run_loses_nothing_silently(
    make_server: Callable[..., LiveServer],
    postgres_server: PostgresServer,
    postgres_url: str,
    application: dict[str, Any],
) -> None:
    before, during, after = 600, 500, 400
    queue_size = 200
    live = make_server(
        database_url=postgres_url, log_queue_size=queue_size, log_retry_max_seconds=0.5
    )
    statuses = [
        r.status_code for r in asyncio.run(predict_concurrently(live.url, application, before))
    ]
    postgres_server.stop()
    try:
        outage = asyncio.run(predict_concurrently(live.url, application, during))
        statuses += [r.status_code for r in outage]
        wait_for_readiness(live.url, "degraded")
    finally:
        postgres_server.start()
    # The writer reconnects within its backoff (at most 0.5 s here) and drains the queue.
    wait_for_readiness(live.url, "ready")
    statuses += [
        r.status_code for r in asyncio.run(predict_concurrently(live.url, application, after))
    ]
    assert statuses == [200] * (before + during + after)
    live.stop()

    n = before + during + after
    written = metric(live, "credit_api_prediction_log_written_total")
    assert count_rows(postgres_url) == written
    assert written + dropped(live) == n, (written, dropped(live), n)
    # While the database was down, at most the queue's bound could wait for it.
    assert metric(live, "credit_api_prediction_log_dropped_total", reason="queue_full") >= (
        during - queue_size
    )
    assert written >= before + after


def test_the_writer_stores_batches_and_drops_only_refused_records(postgres_url: str) -> None:
    metrics = Metrics()
    engine = create_store_engine(postgres_url)
    opened: list[object] = []
    sa.event.listen(engine, "connect", lambda connection, _record: opened.append(connection))
    # With a statement timeout, as the service runs it: such a session never goes back to
    # the pool, so each replaced connection is a new one to the server.
    writer = PredictionLogWriter(
        engine, setup=upgrade, metrics=metrics, flush_interval=0.5, statement_timeout=30.0
    )
    writer.start()
    # A whole number of microseconds, so the stored time can be compared exactly.
    now = round(time.time(), 6)
    records = [
        PredictionRecord(f"id-{i}", now, "credit-score", "1", {"age_in_years": i}, 0.5, "bad")
        for i in range(300)
    ]
    # Longer than the column's 64 characters: PostgreSQL refuses this one row.
    records[150] = PredictionRecord("x" * 65, now, "credit-score", "1", {}, 0.5, "bad")
    writer.submit(records)
    writer.stop(timeout=30)
    assert (writer.written, writer.dropped["rejected"]) == (299, 1)
    # The migration's and the writer's: refusing a statement leaves a connection usable,
    # so the batch and the three attempts at the refused row do not each open a fresh one.
    assert len(opened) <= 2, len(opened)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(
                predictions.c.request_id, predictions.c.created_at, predictions.c.features
            ).where(predictions.c.request_id == "id-7")
        ).one()
    engine.dispose()
    assert count_rows(postgres_url) == 299
    assert stored.features == {"age_in_years": 7}
    assert stored.created_at == datetime.fromtimestamp(now, UTC)


def terminate_other_sessions(url: str) -> int:
    """Kill every other session on the database, as a server restart or an idle timeout would."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            killed = connection.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(killed)


def test_the_writer_replaces_a_connection_that_died_between_batches(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_store_engine(postgres_url)
    writer = PredictionLogWriter(engine, setup=upgrade, flush_interval=0.05, health_interval=0.2)
    writer.start()

    def write(ids: range) -> None:
        now = time.time()
        writer.submit([PredictionRecord(f"id-{i}", now, "m", "1", {}, 0.5, "bad") for i in ids])
        assert writer.flush_record(f"id-{ids[-1]}", timeout=10)

    try:
        write(range(0, 10))
        # Killed while idle, then found dead by an insert, and then by a health check.
        assert terminate_other_sessions(postgres_url) >= 1
        write(range(10, 20))
        assert terminate_other_sessions(postgres_url) >= 1
        time.sleep(0.6)  # at least one health check on the dead connection
        assert writer.store_up
        write(range(20, 30))
    finally:
        writer.stop(timeout=30)
        engine.dispose()
    assert writer.written == 30
    assert count_rows(postgres_url) == 30
    # Reconnected on the spot: no outage reported, no batch waited for a backoff.
    assert "prediction store unavailable" not in caplog.text


def test_an_insert_held_by_a_lock_times_out_is_reported_and_retried(postgres_url: str) -> None:
    engine = create_store_engine(postgres_url)
    writer = PredictionLogWriter(
        engine, setup=upgrade, flush_interval=0.05, retry_max=0.2, statement_timeout=0.3
    )

    def store_up() -> bool:  # read afresh each time: the writer's thread sets it
        return writer.store_up

    writer.start()
    assert writer.wait_for_store(10)
    now = time.time()
    holder = engine.connect()
    try:
        # An open transaction holding the table, as a long migration or VACUUM FULL would.
        holder.begin()
        holder.exec_driver_sql("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
        writer.submit(
            [PredictionRecord(f"id-{i}", now, "m", "1", {}, 0.5, "bad") for i in range(10)]
        )
        deadline = time.monotonic() + 10
        while store_up() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not store_up()
        assert writer.last_error is not None
        assert "statement timeout" in writer.last_error
        assert writer.written == 0
        assert writer.depth == 10
    finally:
        holder.rollback()
        holder.close()
    try:
        assert writer.flush_record("id-9", timeout=10)
        assert store_up()
    finally:
        writer.stop(timeout=10)
    # The writer's sessions, with their timeout, never went back to the shared pool.
    assert isinstance(engine.pool, sa.QueuePool)
    pooled = [engine.connect() for _ in range(engine.pool.checkedin())]
    timeouts = {c.exec_driver_sql("SHOW statement_timeout").scalar_one() for c in pooled}
    for connection in pooled:
        connection.close()
    engine.dispose()
    assert timeouts == {"0"}
    assert writer.written == 10
    assert count_rows(postgres_url) == 10


def libpq_parameters(engine: sa.Engine) -> dict[str, str]:
    """The parameters libpq connected with (those not at libpq's own default)."""
    with engine.connect() as connection:
        driver_connection = connection.connection.driver_connection
        assert isinstance(driver_connection, psycopg.Connection)
        parameters = driver_connection.info.get_parameters()
    engine.dispose()
    return parameters


def test_the_services_connect_timeout_yields_to_the_urls(postgres_url: str) -> None:
    own = libpq_parameters(store_engine(postgres_url))
    assert own["connect_timeout"] == str(POSTGRES_CONNECT_TIMEOUT_SECONDS)
    assert own["tcp_user_timeout"] == str(POSTGRES_CONNECTION_DEFAULTS["tcp_user_timeout"])
    chosen = libpq_parameters(store_engine(f"{postgres_url}?connect_timeout=20"))
    assert chosen["connect_timeout"] == "20"
