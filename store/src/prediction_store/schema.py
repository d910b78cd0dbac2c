"""The prediction store's tables: the one definition shared by writers and the drift job.

Any model service can write here: one row per registered model version (`models`), its
reference sample (`reference_rows`), one row per prediction (`predictions`) and the observed
outcomes (`feedback`). Features are a JSON object keyed by feature name (JSONB on PostgreSQL),
so one schema serves any tabular model; readers extract typed columns in SQL (see `queries`).
Timestamps are stored in UTC.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# Bump together with a new Alembic revision in migrations/versions/.
SCHEMA_REVISION = "0002"

# JSON everywhere, JSONB on PostgreSQL (indexable, and ->> extraction is cheap).
FeaturesJSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    # [{"name": ..., "kind": "numerical" | "categorical", "categories": [...]}]
    sa.Column("features", sa.JSON(), nullable=False),
    sa.Column("metrics", sa.JSON(), nullable=False),
    # The decisions the model makes, and the reference share of each (e.g. {"bad": 0.3}).
    sa.Column("decision_shares", sa.JSON(), nullable=False),
    sa.Column("reference_rows", sa.Integer(), nullable=False),
    # The decision the score is the probability of (e.g. "bad"), and the score from which the
    # model decides it. NULL for versions registered before revision 0002.
    sa.Column("positive_class", sa.String(32)),
    sa.Column("decision_threshold", sa.Float()),
)

reference_rows = sa.Table(
    "reference_rows",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("row_id", sa.Integer(), primary_key=True),
    sa.Column("features", FeaturesJSON, nullable=False),
    # The model's own output on the row, scored at registration: the reference of the output
    # drift (NULL when the service registered no scores).
    sa.Column("score", sa.Float()),
    sa.Column("decision", sa.String(32)),
    sa.ForeignKeyConstraint(
        ["model", "version"], ["models.name", "models.version"], ondelete="CASCADE"
    ),
)

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("features", FeaturesJSON, nullable=False),
    # Probability of the positive class (the model's `positive_class`; "bad" for credit-score).
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("decision", sa.String(32), nullable=False),
    # The drift job's window query: one model, a time range.
    sa.Index(None, "model", "created_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column(
        "request_id",
        sa.String(64),
        sa.ForeignKey("predictions.request_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)
