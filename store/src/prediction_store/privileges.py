"""What each role of the store may do on PostgreSQL, next to the schema that needs it.

Three roles: the owner runs the migrations (owns the tables); the writer is a model service
(the credit API); the reader is the drift job. The owner grants the other two exactly this after
every migration (`upgrade(engine, writer=..., reader=...)`), revoking anything else first, so a
privilege removed here is removed from the database too. A migration that adds a table adds it
here; store/tests checks that every table of the schema is listed.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from prediction_store.schema import metadata

# Alembic's own table: the service reads it at start to see that the schema is current.
VERSION_TABLE = "alembic_version"

WRITER_PRIVILEGES: Mapping[str, str] = {
    VERSION_TABLE: "SELECT",
    # register_model: look the version up, insert it once.
    "models": "SELECT, INSERT",
    "reference_rows": "INSERT",
    # The prediction log inserts; feedback checks that the request id was scored.
    "predictions": "SELECT, INSERT",
    # A later outcome for the same prediction replaces the earlier one (an upsert).
    "feedback": "SELECT, INSERT, UPDATE (outcome, recorded_at)",
}

# Drift, quality and fairness runs read everything the services wrote, and change nothing.
READER_PRIVILEGES: Mapping[str, str] = {table: "SELECT" for table in metadata.tables}


def _quoted(connection: sa.Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(name)


def grant_privileges(connection: sa.Connection, role: str, privileges: Mapping[str, str]) -> None:
    """Give `role` exactly `privileges` on the store's tables (PostgreSQL; the caller owns
    them): everything else it held on them is revoked."""
    grantee = _quoted(connection, role)
    for table in (*metadata.tables, VERSION_TABLE):
        target = _quoted(connection, table)
        connection.execute(sa.text(f"REVOKE ALL ON TABLE {target} FROM {grantee}"))
        if table in privileges:
            granted = privileges[table]
            connection.execute(sa.text(f"GRANT {granted} ON TABLE {target} TO {grantee}"))
