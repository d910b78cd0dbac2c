"""Create or upgrade the store's schema with Alembic, safely from many replicas at once, and
grant the writer and reader roles what they need (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from prediction_store.privileges import READER_PRIVILEGES, WRITER_PRIVILEGES, grant_privileges

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: every replica takes the same PostgreSQL advisory lock before migrating.
_ADVISORY_LOCK_KEY = 0x50524544  # "PRED"


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision these migrations know."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (None when the schema was never created)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine, *, writer: str | None = None, reader: str | None = None) -> str:
    """Bring the schema to the newest revision; returns it. Idempotent.

    On PostgreSQL, `writer` and `reader` name roles to grant exactly the privileges of
    `prediction_store.privileges` (the engine's user must own the tables: the schema owner).
    A user at the newest revision already needs only SELECT on the version table, so a service
    connecting as the writer may call this too: it changes nothing.
    """
    with engine.connect() as connection, _migration_lock(connection):
        command.upgrade(_config(connection), "head")
        if connection.dialect.name == "postgresql":
            # Inside the lock: concurrent GRANTs on one table fail ("tuple concurrently updated").
            for role, privileges in ((writer, WRITER_PRIVILEGES), (reader, READER_PRIVILEGES)):
                if role:
                    grant_privileges(connection, role, privileges)
        connection.commit()
    return head_revision()


@contextmanager
def _migration_lock(connection: sa.Connection) -> Iterator[None]:
    if connection.dialect.name != "postgresql":
        yield  # SQLite serialises writers itself
        return
    connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    try:
        yield
    except BaseException:
        # A failed statement leaves the transaction aborted: end it, or the unlock fails too and
        # hides the error. The lock belongs to the session: the rollback keeps it.
        connection.rollback()
        raise
    finally:
        connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
