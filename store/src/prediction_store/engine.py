"""Engines for the store: the same URL works for PostgreSQL and SQLite."""

from __future__ import annotations

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


def create_store_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine tuned for the store: pre-ping and a connect timeout on PostgreSQL (the URL's
    own `connect_timeout` wins), WAL and a busy timeout on SQLite."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": 30}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
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
