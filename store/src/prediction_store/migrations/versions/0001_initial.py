"""Initial schema: models, reference rows, predictions, feedback.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_features = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("decision_shares", sa.JSON(), nullable=False),
        sa.Column("reference_rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_models"),
    )
    op.create_table(
        "reference_rows",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("features", _features, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "row_id", name="pk_reference_rows"),
        sa.ForeignKeyConstraint(
            ["model", "version"],
            ["models.name", "models.version"],
            name="fk_reference_rows_model_models",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "predictions",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("features", _features, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_predictions"),
    )
    op.create_index("ix_predictions_model_created_at", "predictions", ["model", "created_at"])
    op.create_table(
        "feedback",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_feedback"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["predictions.request_id"],
            name="fk_feedback_request_id_predictions",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_index("ix_predictions_model_created_at", table_name="predictions")
    op.drop_table("predictions")
    op.drop_table("reference_rows")
    op.drop_table("models")
