"""Engines for the store: the same URL works for PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url


def normalise_url(url: str) -> sa.URL:
    """Accept the DSN forms people paste (postgres://, postgresql://) and pick psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


# How long a PostgreSQL connection may take to be established, handshake included. libpq
# waits forever by default: a server that accepts TCP and never answers (hung, or a proxy
# in front of a dead one) would hold a writer or a drift run for good.
CONNECT_TIMEOUT_SECONDS = 10

# libpq parameters every PostgreSQL connection gets unless its URL sets them. Once
# connected, a server that vanishes without a reset (a partition, a node lost) leaves a
# statement waiting on the kernel: about 15 minutes of retransmissions for data sent, and
# for an idle or waiting connection two hours before the first keepalive probe.
POSTGRES_CONNECTION_DEFAULTS: Mapping[str, int] = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    # Data sent and unacknowledged for 30 s (and failed keepalives) end the connection.
    "tcp_user_timeout": 30_000,
    # Probe a quiet connection after 30 s, every 10 s; three unanswered probes end it.
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def create_store_engine(
    url: str, connection_defaults: Mapping[str, int] | None = None, **kwargs: Any
) -> sa.Engine:
    """An engine tuned for the store: pre-ping, a connect timeout and dead-peer detection on
    PostgreSQL (`POSTGRES_CONNECTION_DEFAULTS`, overridden by `connection_defaults`; a
    parameter the URL sets wins over both), WAL and a busy timeout on SQLite."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": 30}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    defaults = {**POSTGRES_CONNECTION_DEFAULTS, **(connection_defaults or {})}
    kwargs["connect_args"] = {
        **{name: value for name, value in defaults.items() if name not in parsed.query},
        **kwargs.get("connect_args", {}),
    }
    return sa.create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the drift job read while the API writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
