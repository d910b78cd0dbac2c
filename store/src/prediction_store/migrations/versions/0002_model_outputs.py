"""The model's outputs: its positive class and decision threshold, and its reference scores.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: versions registered before this revision have none of them.
    with op.batch_alter_table("models") as models:
        models.add_column(sa.Column("positive_class", sa.String(32), nullable=True))
        models.add_column(sa.Column("decision_threshold", sa.Float(), nullable=True))
    with op.batch_alter_table("reference_rows") as reference_rows:
        reference_rows.add_column(sa.Column("score", sa.Float(), nullable=True))
        reference_rows.add_column(sa.Column("decision", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reference_rows") as reference_rows:
        reference_rows.drop_column("decision")
        reference_rows.drop_column("score")
    with op.batch_alter_table("models") as models:
        models.drop_column("decision_threshold")
        models.drop_column("positive_class")
