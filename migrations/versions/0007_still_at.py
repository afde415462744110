"""Change events keep where each removed model was still served when the change was
found (``{"model": ["target", ...]}``; null for changes found before).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("change_events") as batch:
        batch.add_column(sa.Column("still_at", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("change_events") as batch:
        batch.drop_column("still_at")
