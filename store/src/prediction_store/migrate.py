"""Create or upgrade the store's schema with Alembic, safely from many replicas at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

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


def upgrade(engine: sa.Engine) -> str:
    """Bring the schema to the newest revision; returns it. Idempotent."""
    with engine.connect() as connection, _migration_lock(connection):
        command.upgrade(_config(connection), "head")
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
    finally:
        connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
