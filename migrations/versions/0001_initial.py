"""Initial schema: model objects and lists stored once, snapshots, change events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_objects",
        sa.Column("id", Id, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_objects"),
        sa.UniqueConstraint("digest", name="uq_model_objects_digest"),
    )
    op.create_table(
        "model_lists",
        sa.Column("id", Id, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("model_count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_lists"),
        sa.UniqueConstraint("digest", name="uq_model_lists_digest"),
    )
    op.create_table(
        "model_list_entries",
        sa.Column("list_id", Id, nullable=False),
        sa.Column("object_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["model_lists.id"],
            name="fk_model_list_entries_list_id_model_lists",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["model_objects.id"],
            name="fk_model_list_entries_object_id_model_objects",
        ),
        sa.PrimaryKeyConstraint("list_id", "object_id", name="pk_model_list_entries"),
    )
    op.create_index("ix_model_list_entries_object_id", "model_list_entries", ["object_id"])
    op.create_table(
        "snapshots",
        sa.Column("id", Id, nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("fetched_at", When, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("model_count", sa.Integer(), nullable=True),
        sa.Column("model_list_id", Id, nullable=True),
        sa.ForeignKeyConstraint(
            ["model_list_id"], ["model_lists.id"], name="fk_snapshots_model_list_id_model_lists"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
    )
    op.create_index("ix_snapshots_target_fetched_at", "snapshots", ["target", "fetched_at"])
    op.create_index("ix_snapshots_fetched_at", "snapshots", ["fetched_at"])
    op.create_index("ix_snapshots_model_list_id", "snapshots", ["model_list_id"])
    op.create_table(
        "change_events",
        sa.Column("id", Id, nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("detected_at", When, nullable=False),
        sa.Column("from_snapshot_id", Id, nullable=False),
        sa.Column("to_snapshot_id", Id, nullable=False),
        sa.Column("added", Json, nullable=False),
        sa.Column("removed", Json, nullable=False),
        sa.ForeignKeyConstraint(
            ["from_snapshot_id"],
            ["snapshots.id"],
            name="fk_change_events_from_snapshot_id_snapshots",
        ),
        sa.ForeignKeyConstraint(
            ["to_snapshot_id"], ["snapshots.id"], name="fk_change_events_to_snapshot_id_snapshots"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_change_events"),
    )
    op.create_index(
        "ix_change_events_target_detected_at", "change_events", ["target", "detected_at"]
    )
    op.create_index("ix_change_events_detected_at", "change_events", ["detected_at"])


def downgrade() -> None:
    op.drop_table("change_events")
    op.drop_table("snapshots")
    op.drop_table("model_list_entries")
    op.drop_table("model_lists")
    op.drop_table("model_objects")
