"""Change events keep where each removed model was still served when the change was
found (``{"model": ["target", ...]}``; null for changes found before). Deliveries can be
held for a digest: ``summary`` counts what a held one is about, ``digest_id`` names the
digest delivery that took it in.

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
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("change_events") as batch:
        batch.add_column(sa.Column("still_at", Json, nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("summary", Json, nullable=True))
        batch.add_column(sa.Column("digest_id", Id, nullable=True))
        batch.create_index("ix_deliveries_digest_id", ["digest_id"])


def downgrade() -> None:
    # before 0007 there are no digests: what waits for one is sent on its own, and what a
    # digest took in counts as sent (the digest deliveries themselves stay as they are)
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'held'")
    op.execute("UPDATE deliveries SET status = 'sent' WHERE status = 'digested'")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_digest_id")
        batch.drop_column("digest_id")
        batch.drop_column("summary")
    with op.batch_alter_table("change_events") as batch:
        batch.drop_column("still_at")
