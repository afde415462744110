"""Change events record changes in watched fields of models in both lists.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("change_events") as batch:
        batch.add_column(sa.Column("changed", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("change_events") as batch:
        batch.drop_column("changed")
