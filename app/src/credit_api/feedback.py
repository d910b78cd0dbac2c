"""Record the observed outcome of a prediction in the store's feedback table."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from prediction_store import feedback, predictions


def record_feedback(engine: sa.Engine, request_id: str, outcome: str) -> datetime | None:
    """Store (or correct) the outcome; None when no prediction has this request id."""
    recorded_at = datetime.now(UTC)
    row = {"request_id": request_id, "outcome": outcome, "recorded_at": recorded_at}
    with engine.begin() as connection:
        known = connection.execute(
            sa.select(predictions.c.request_id).where(predictions.c.request_id == request_id)
        ).first()
        if known is None:
            return None
        connection.execute(_upsert(engine.dialect.name), row)
    return recorded_at


def _upsert(dialect: str) -> sa.Executable:
    # A later report of the same prediction's outcome replaces the earlier one.
    if dialect == "postgresql":
        pg = postgresql.insert(feedback)
        return pg.on_conflict_do_update(
            index_elements=["request_id"],
            set_={"outcome": pg.excluded.outcome, "recorded_at": pg.excluded.recorded_at},
        )
    if dialect == "sqlite":
        lite = sqlite.insert(feedback)
        return lite.on_conflict_do_update(
            index_elements=["request_id"],
            set_={"outcome": lite.excluded.outcome, "recorded_at": lite.excluded.recorded_at},
        )
    raise ValueError(f"the prediction store supports PostgreSQL and SQLite, not {dialect}")
