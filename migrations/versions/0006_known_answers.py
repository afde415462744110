"""The last one-page answer of each target, by digests, so a new process (``monitor
check``, a restarted daemon) recognises an unchanged answer without reading it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "known_answers",
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("asked", sa.LargeBinary(16), nullable=False),
        sa.Column("etag", sa.LargeBinary(), nullable=True),
        sa.Column("last_modified", sa.LargeBinary(), nullable=True),
        sa.Column("body_digest", sa.LargeBinary(16), nullable=False),
        sa.Column("list_digest", sa.String(64), nullable=False),
        sa.Column("model_count", sa.Integer(), nullable=False),
        sa.Column("watched", sa.String(64), nullable=False),
        sa.Column("warnings", Json, nullable=False),
        sa.PrimaryKeyConstraint("target", name="pk_known_answers"),
    )


def downgrade() -> None:
    op.drop_table("known_answers")
