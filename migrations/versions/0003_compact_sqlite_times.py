"""SQLite times as integer microseconds (8 bytes, not 26, in rows and indexes);
indexes for retention (what change and target events point at).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIME_COLUMNS = {
    "model_lists": ["first_seen_at"],
    "snapshots": ["fetched_at"],
    "change_events": ["detected_at"],
    "target_states": ["failing_since", "down_alerted_at", "updated_at"],
    "target_events": ["at", "since"],
    "deliveries": ["created_at", "next_attempt_at", "lease_until", "sent_at"],
}


def _to_micros(column: str) -> str:
    # 'YYYY-MM-DD HH:MM:SS.ffffff' as SQLAlchemy wrote it, UTC
    return (
        f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000"
        f" + (CASE WHEN length({column}) > 20"
        f" THEN CAST(substr({column} || '000000', 21, 6) AS INTEGER) ELSE 0 END)"
    )


def _to_text(column: str) -> str:
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', {column} / 1000000, 'unixepoch')"
        f" || printf('.%06d', {column} % 1000000)"
    )


def upgrade() -> None:
    op.create_index("ix_change_events_from_snapshot_id", "change_events", ["from_snapshot_id"])
    op.create_index("ix_change_events_to_snapshot_id", "change_events", ["to_snapshot_id"])
    op.create_index("ix_target_events_snapshot_id", "target_events", ["snapshot_id"])
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in TIME_COLUMNS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = {_to_micros(column)} "
                f"WHERE typeof({column}) = 'text'"
            )
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column, type_=sa.BigInteger(), existing_type=sa.DateTime(timezone=True)
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, columns in TIME_COLUMNS.items():
            with op.batch_alter_table(table) as batch:
                for column in columns:
                    batch.alter_column(
                        column, type_=sa.DateTime(timezone=True), existing_type=sa.BigInteger()
                    )
            for column in columns:
                op.execute(
                    f"UPDATE {table} SET {column} = {_to_text(column)} "
                    f"WHERE typeof({column}) = 'integer'"
                )
    op.drop_index("ix_target_events_snapshot_id", "target_events")
    op.drop_index("ix_change_events_to_snapshot_id", "change_events")
    op.drop_index("ix_change_events_from_snapshot_id", "change_events")
