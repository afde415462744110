"""Durable alerts: per-target alert state, down/recovered events, a delivery outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "target_states",
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("confirmed_snapshot_id", Id, nullable=True),
        sa.Column("confirmed_digest", sa.String(64), nullable=True),
        sa.Column("confirmed_count", sa.Integer(), nullable=False),
        sa.Column("candidate_digest", sa.String(64), nullable=True),
        sa.Column("candidate_seen", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", When, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("down_alerted_at", When, nullable=True),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["confirmed_snapshot_id"],
            ["snapshots.id"],
            name="fk_target_states_confirmed_snapshot_id_snapshots",
        ),
        sa.PrimaryKeyConstraint("target", name="pk_target_states"),
    )
    op.create_table(
        "target_events",
        sa.Column("id", Id, nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("since", When, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("snapshot_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name="fk_target_events_snapshot_id_snapshots"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_target_events"),
    )
    op.create_index("ix_target_events_target_at", "target_events", ["target", "at"])
    op.create_index("ix_target_events_at", "target_events", ["at"])
    op.create_table(
        "deliveries",
        sa.Column("id", Id, nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("change_event_id", Id, nullable=True),
        sa.Column("target_event_id", Id, nullable=True),
        sa.Column("url_hash", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("lease_until", When, nullable=True),
        sa.Column("sent_at", When, nullable=True),
        sa.ForeignKeyConstraint(
            ["change_event_id"],
            ["change_events.id"],
            name="fk_deliveries_change_event_id_change_events",
        ),
        sa.ForeignKeyConstraint(
            ["target_event_id"],
            ["target_events.id"],
            name="fk_deliveries_target_event_id_target_events",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index(
        "ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_deliveries_change_event_id", "deliveries", ["change_event_id"])
    op.create_index("ix_deliveries_target_event_id", "deliveries", ["target_event_id"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("target_events")
    op.drop_table("target_states")
