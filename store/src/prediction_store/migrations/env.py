"""Alembic environment: runs on the connection `prediction_store.migrate` hands in."""

from __future__ import annotations

from alembic import context

from prediction_store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
)
with context.begin_transaction():
    context.run_migrations()
