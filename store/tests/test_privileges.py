"""The writer's and the reader's privileges, granted by the owner's migration on PostgreSQL."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa

import prediction_store as ps
from prediction_store.privileges import READER_PRIVILEGES, VERSION_TABLE, WRITER_PRIVILEGES

pytestmark = pytest.mark.postgres

TABLES = (*ps.metadata.tables, VERSION_TABLE)
KINDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")


def privileges(connection: sa.Connection, role: str) -> dict[str, set[str]]:
    """What `role` may do on each table of the store, as PostgreSQL answers."""
    found: dict[str, set[str]] = {}
    for table in TABLES:
        found[table] = {
            kind
            for kind in KINDS
            if connection.execute(
                sa.text("SELECT has_table_privilege(:role, :table, :kind)"),
                {"role": role, "table": table, "kind": kind},
            ).scalar()
        }
        # A privilege on some columns only (feedback's outcome may be corrected).
        if connection.execute(
            sa.text("SELECT has_any_column_privilege(:role, :table, 'UPDATE')"),
            {"role": role, "table": table},
        ).scalar():
            found[table].add("UPDATE")
    return found


def test_every_table_is_readable_by_the_reader_and_listed_for_the_writer() -> None:
    assert set(READER_PRIVILEGES) == set(ps.metadata.tables)
    assert set(WRITER_PRIVILEGES) <= set(TABLES)


def test_the_migration_grants_exactly_the_listed_privileges(postgres_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    writer, reader = f"writer_{suffix}", f"reader_{suffix}"
    engine = ps.create_store_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE ROLE {writer}"))
        connection.execute(sa.text(f"CREATE ROLE {reader}"))
    try:
        ps.upgrade(engine, writer=writer, reader=reader)
        with engine.begin() as connection:
            # A privilege granted by hand is taken back by the next migration.
            connection.execute(sa.text(f"GRANT DELETE, TRUNCATE ON predictions TO {writer}"))
        ps.upgrade(engine, writer=writer, reader=reader)
        with engine.connect() as connection:
            granted = privileges(connection, writer)
            read = privileges(connection, reader)
        assert granted == {
            VERSION_TABLE: {"SELECT"},
            "models": {"SELECT", "INSERT"},
            "reference_rows": {"INSERT"},
            "predictions": {"SELECT", "INSERT"},
            "feedback": {"SELECT", "INSERT", "UPDATE"},
        }
        assert read == {table: {"SELECT"} for table in ps.metadata.tables} | {VERSION_TABLE: set()}
    finally:
        with engine.begin() as connection:
            for role in (writer, reader):
                connection.execute(sa.text(f"DROP OWNED BY {role}"))
                connection.execute(sa.text(f"DROP ROLE {role}"))
        engine.dispose()


def test_a_role_that_does_not_exist_fails_the_migration(postgres_url: str) -> None:
    engine = ps.create_store_engine(postgres_url)
    with pytest.raises(sa.exc.ProgrammingError) as raised:
        ps.upgrade(engine, writer="nobody_here")
    assert isinstance(raised.value.orig, psycopg.errors.UndefinedObject)
    engine.dispose()
