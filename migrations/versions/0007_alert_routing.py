"""Alerts people keep reading (issue 15). Mutes live in the database (``mutes``), so
every process sees them at once. Change events keep where each removed model was still
served when the change was found (``{"model": ["target", ...]}``; null for changes found
before). Deliveries can be held for a digest: ``summary`` counts what a held one is
about, ``digest_id`` names the digest delivery that took it in. The URLs deliveries show
lose path segments that may be tokens (``json://host/in/…``), as new deliveries now
store them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTCDateTime = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")  # see 0003


def _masked(shown: str) -> str:
    """What monitor.notify.send.mask_path makes of a stored URL (as of this revision)."""
    scheme, sep, rest = shown.partition("://")
    host, slash, path = rest.partition("/")
    if not sep or not slash:
        return shown

    def kept(segment: str) -> str:
        if len(segment) < 6 or "..." in segment or "****" in segment:
            return segment
        if re.fullmatch(r"[^/@%]+(@|%40)[\w.-]+\.\w+", segment):
            return segment
        return "…"

    return f"{scheme}://{host}/" + "/".join(kept(s) for s in path.split("/"))


def upgrade() -> None:
    connection = op.get_bind()
    deliveries = sa.table("deliveries", sa.column("id", Id), sa.column("url", sa.Text))
    for delivery_id, url in connection.execute(sa.select(deliveries.c.id, deliveries.c.url)):
        if (masked := _masked(url)) != url:
            connection.execute(
                deliveries.update().where(deliveries.c.id == delivery_id).values(url=masked)
            )
    op.create_table(
        "mutes",
        sa.Column("id", Id, nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("until", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mutes_closed_at", "mutes", ["closed_at"])
    with op.batch_alter_table("change_events") as batch:
        batch.add_column(sa.Column("still_at", Json, nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("summary", Json, nullable=True))
        batch.add_column(sa.Column("digest_id", Id, nullable=True))
        batch.create_index("ix_deliveries_digest_id", ["digest_id"])


def downgrade() -> None:
    # before 0007 there are no digests: what waits for one is sent on its own, and what a
    # digest took in counts as sent (the digest deliveries themselves stay as they are)
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status IN ('held', 'muted')")
    op.execute("UPDATE deliveries SET status = 'dead' WHERE status = 'suppressed'")
    op.execute("UPDATE deliveries SET status = 'sent' WHERE status = 'digested'")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_digest_id")
        batch.drop_column("digest_id")
        batch.drop_column("summary")
    with op.batch_alter_table("change_events") as batch:
        batch.drop_column("still_at")
    op.drop_index("ix_mutes_closed_at", "mutes")
    op.drop_table("mutes")
