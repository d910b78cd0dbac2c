"""The store against real databases: SQLite and PostgreSQL run the same assertions."""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import prediction_store as ps

SPECS = (
    ps.FeatureSpec("age", "numerical"),
    ps.FeatureSpec("housing", "categorical", ("own", "rent")),
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    engine = ps.create_store_engine(url)
    ps.upgrade(engine)
    yield engine
    engine.dispose()


def _registration(version: str = "1", rows: int = 3) -> ps.ModelRegistration:
    return ps.ModelRegistration(
        name="credit-score",
        version=version,
        features=SPECS,
        reference=[{"age": 20.0 + i, "housing": "own"} for i in range(rows)],
        metrics={"roc_auc": 0.8},
        decision_shares={"good": 0.7, "bad": 0.3},
    )


def _insert_predictions(engine: sa.Engine, rows: list[dict[str, object]], at: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            ps.predictions.insert(),
            [
                {
                    "request_id": f"r{i}",
                    "created_at": at,
                    "model": "credit-score",
                    "version": "1",
                    "features": features,
                    "score": 0.2,
                    "decision": "good",
                }
                for i, features in enumerate(rows)
            ],
        )


def test_migrations_build_exactly_the_declared_schema(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), ps.metadata)
    assert diff == []
    assert ps.current_revision(engine) == ps.head_revision()


def test_upgrade_is_idempotent(engine: sa.Engine) -> None:
    assert ps.upgrade(engine) == ps.head_revision()
    assert ps.current_revision(engine) == ps.head_revision()


def test_register_model_once_and_read_it_back(engine: sa.Engine) -> None:
    assert ps.register_model(engine, _registration()) is True
    assert ps.register_model(engine, _registration()) is False
    model = ps.get_model(engine, "credit-score", "1")
    assert model is not None
    assert model.features == SPECS
    assert model.reference_rows == 3
    assert model.decision_shares == {"good": 0.7, "bad": 0.3}
    with engine.connect() as connection:
        rows = connection.execute(ps.select_reference("credit-score", "1", SPECS)).all()
    assert [tuple(r) for r in rows] == [(20.0, "own"), (21.0, "own"), (22.0, "own")]


def test_concurrent_registration_registers_one_copy(engine: sa.Engine) -> None:
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(ps.register_model(engine, _registration())))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(ps.reference_rows))
        assert count.scalar() == 3


def test_latest_version_is_the_last_registered(engine: sa.Engine) -> None:
    ps.register_model(engine, _registration("1"))
    ps.register_model(engine, _registration("2"))
    latest = ps.get_model(engine, "credit-score")
    assert latest is not None
    assert latest.version == "2"
    assert ps.get_model(engine, "no-such-model") is None


def test_nan_in_reference_is_stored_as_missing(engine: sa.Engine) -> None:
    registration = _registration(rows=0)
    registration = ps.ModelRegistration(
        **{**registration.__dict__, "reference": [{"age": math.nan, "housing": "rent"}]}
    )
    ps.register_model(engine, registration)
    with engine.connect() as connection:
        rows = connection.execute(ps.select_reference("credit-score", "1", SPECS)).all()
    assert [tuple(r) for r in rows] == [(None, "rent")]


def test_window_extracts_typed_columns_and_keeps_gaps(engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    _insert_predictions(
        engine,
        [{"age": 30, "housing": "own"}, {"housing": "castle"}, {"age": 41.5}],
        now - timedelta(minutes=5),
    )
    start, end = now - timedelta(hours=1), now
    with engine.connect() as connection:
        count = connection.execute(ps.count_window("credit-score", None, start, end)).scalar()
        rows = connection.execute(
            ps.select_window("credit-score", None, start, end, SPECS, dialect=engine.dialect.name)
        ).all()
        outside = connection.execute(
            ps.count_window("credit-score", None, now - timedelta(minutes=1), now)
        ).scalar()
    assert count == 3
    assert outside == 0
    # a missing key reads as NULL; an unseen category passes through for the reader to judge
    assert sorted((tuple(r) for r in rows), key=str) == sorted(
        [(30.0, "own"), (None, "castle"), (41.5, None)], key=str
    )
    assert all(isinstance(r[0], float) for r in rows if r[0] is not None)


def test_window_sampling_draws_about_the_asked_fraction(engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    _insert_predictions(engine, [{"age": i, "housing": "own"} for i in range(4000)], now)
    query = ps.select_window(
        "credit-score",
        "1",
        now - timedelta(seconds=1),
        now + timedelta(seconds=1),
        SPECS,
        dialect=engine.dialect.name,
        sample_fraction=0.25,
    )
    with engine.connect() as connection:
        sampled = len(connection.execute(query).all())
    # Binomial(4000, 0.25): mean 1000, sd ~27; six sd either side never fails by chance.
    assert 840 < sampled < 1160


def test_postgres_urls_are_normalised_to_psycopg() -> None:
    assert ps.normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert ps.normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert ps.normalise_url("sqlite:///x.db").drivername == "sqlite"


def test_a_postgres_server_that_never_answers_fails_the_connect_in_time() -> None:
    # Listening, so TCP connects land in its backlog, but nothing ever answers libpq's hello.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        engine = ps.create_store_engine(f"postgresql://u@127.0.0.1:{port}/db?connect_timeout=1")
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="timeout"):
            engine.connect()
        assert time.monotonic() - started < 5
        engine.dispose()


class _CapturedError(Exception):
    pass


def _connect_params(engine: sa.Engine) -> dict[str, Any]:
    """What the engine hands the driver to connect, without connecting."""
    seen: dict[str, Any] = {}

    def capture(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise _CapturedError

    sa.event.listen(engine, "do_connect", capture)
    with pytest.raises(_CapturedError):
        engine.connect()
    return seen


def test_postgres_connections_get_the_stores_defaults_and_the_url_can_say_otherwise() -> None:
    default = _connect_params(ps.create_store_engine("postgresql://u@127.0.0.1:1/db"))
    assert default.items() >= ps.POSTGRES_CONNECTION_DEFAULTS.items()
    assert default["connect_timeout"] == ps.CONNECT_TIMEOUT_SECONDS
    chosen = _connect_params(
        ps.create_store_engine(
            "postgresql://u@127.0.0.1:1/db?connect_timeout=3&tcp_user_timeout=0",
            connection_defaults={"connect_timeout": 5, "keepalives_idle": 60},
        )
    )
    assert (chosen["connect_timeout"], chosen["tcp_user_timeout"]) == ("3", "0")
    assert chosen["keepalives_idle"] == 60
    assert chosen["keepalives_count"] == ps.POSTGRES_CONNECTION_DEFAULTS["keepalives_count"]
    kept = _connect_params(
        ps.create_store_engine("postgresql://u@127.0.0.1:1/db", connect_args={"sslmode": "disable"})
    )
    assert (kept["connect_timeout"], kept["sslmode"]) == (ps.CONNECT_TIMEOUT_SECONDS, "disable")


@pytest.mark.postgres
def test_postgres_connections_detect_a_vanished_server_within_a_minute(postgres_url: str) -> None:
    """The defaults reach the connection's socket: libpq accepted them and set them."""
    engine = ps.create_store_engine(postgres_url)
    with engine.connect() as connection:
        driver_connection = connection.connection.driver_connection
        assert isinstance(driver_connection, psycopg.Connection)
        pgconn = driver_connection.pgconn
        with socket.socket(fileno=os.dup(pgconn.socket)) as sock:
            options = {
                name: sock.getsockopt(socket.IPPROTO_TCP, option)
                for name, option in [
                    ("tcp_user_timeout", socket.TCP_USER_TIMEOUT),
                    ("keepalives_idle", socket.TCP_KEEPIDLE),
                    ("keepalives_interval", socket.TCP_KEEPINTVL),
                    ("keepalives_count", socket.TCP_KEEPCNT),
                ]
            }
            keepalive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    engine.dispose()
    assert keepalive == 1
    assert options == {
        name: value
        for name, value in ps.POSTGRES_CONNECTION_DEFAULTS.items()
        if name != "connect_timeout"
    }
    probing = (
        options["keepalives_idle"] + options["keepalives_interval"] * options["keepalives_count"]
    )
    assert max(probing, options["tcp_user_timeout"] / 1000) <= 60


def test_the_models_outputs_are_registered_and_read_beside_the_reference(
    engine: sa.Engine,
) -> None:
    registration = ps.ModelRegistration(
        **{
            **_registration().__dict__,
            "positive_class": "bad",
            "decision_threshold": 0.5,
            "reference_outputs": [
                ps.ReferenceOutput(0.1, "good"),
                ps.ReferenceOutput(0.7, "bad"),
                ps.ReferenceOutput(0.4, "good"),
            ],
        }
    )
    ps.register_model(engine, registration)
    model = ps.get_model(engine, "credit-score", "1")
    assert model is not None
    assert (model.positive_class, model.decision_threshold) == ("bad", 0.5)
    with engine.connect() as connection:
        rows = connection.execute(
            ps.select_reference("credit-score", "1", SPECS, outputs=True)
        ).all()
    assert [tuple(r) for r in rows] == [
        (20.0, "own", 0.1, "good"),
        (21.0, "own", 0.7, "bad"),
        (22.0, "own", 0.4, "good"),
    ]


def test_a_registration_without_outputs_reads_them_as_missing(engine: sa.Engine) -> None:
    ps.register_model(engine, _registration(rows=1))
    model = ps.get_model(engine, "credit-score", "1")
    assert model is not None
    assert (model.positive_class, model.decision_threshold) == (None, None)
    with engine.connect() as connection:
        rows = connection.execute(
            ps.select_reference("credit-score", "1", SPECS, outputs=True)
        ).all()
    assert [tuple(r) for r in rows] == [(20.0, "own", None, None)]


def test_registrations_that_contradict_themselves_are_refused() -> None:
    with pytest.raises(ValueError, match="2 entries for 3 reference rows"):
        ps.ModelRegistration(
            **{
                **_registration().__dict__,
                "reference_outputs": [ps.ReferenceOutput(0.1, "good")] * 2,
            }
        )
    with pytest.raises(ValueError, match="positive_class 'default'"):
        ps.ModelRegistration(**{**_registration().__dict__, "positive_class": "default"})


def test_labelled_predictions_join_their_outcome_by_request_id(engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    _insert_predictions(
        engine, [{"age": 30 + i, "housing": "own"} for i in range(4)], now - timedelta(minutes=5)
    )
    with engine.begin() as connection:
        connection.execute(
            ps.feedback.insert(),
            [
                {"request_id": "r1", "outcome": "bad", "recorded_at": now},
                {"request_id": "r3", "outcome": "good", "recorded_at": now},
            ],
        )
    start, end = now - timedelta(hours=1), now
    with engine.connect() as connection:
        counts = connection.execute(ps.count_labelled("credit-score", None, start, end)).one()
        rows = connection.execute(
            ps.select_labelled("credit-score", "1", start, end, SPECS, dialect=engine.dialect.name)
        ).all()
        before = connection.execute(
            ps.count_labelled("credit-score", None, start, now - timedelta(minutes=10))
        ).one()
    assert tuple(counts) == (4, 2)
    assert tuple(before) == (0, 0)
    assert sorted(tuple(r) for r in rows) == [
        (31.0, "own", 0.2, "good", "bad"),
        (33.0, "own", 0.2, "good", "good"),
    ]
    assert rows[0]._fields == ("age", "housing", *ps.OUTPUT_COLUMNS, ps.OUTCOME_COLUMN)
