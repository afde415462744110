"""List membership as spans over lineages of similar lists: a changed list stores the
objects it adds and closes the spans of those it drops, not a row per model.
``model_list_entries`` becomes a view with the columns the table had.

Existing lists each become a lineage of their own (their membership unchanged); lists
stored from now on join the lineage of their target's previous list.

For later migrations: SQLite rebuilds a table to alter it, and refuses while a view reads
it ("error in view model_list_entries"); PostgreSQL refuses to change the type of a
column a view reads. A migration that alters ``model_lists`` or ``model_list_spans``
drops the view first and creates it again after (``ENTRIES`` below is its query).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

ENTRIES = (
    "SELECT l.id AS list_id, s.object_id AS object_id "
    "FROM model_lists l JOIN model_list_spans s ON s.lineage_id = l.lineage_id "
    "WHERE s.first_seq <= l.seq AND (s.last_seq IS NULL OR s.last_seq >= l.seq)"
)


def upgrade() -> None:
    op.create_table(
        "model_list_lineages",
        sa.Column("id", Id, nullable=False),
        sa.Column("tip_seq", sa.Integer(), nullable=False),
        sa.Column("span_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_list_lineages"),
    )
    op.create_table(
        "model_list_spans",
        sa.Column("lineage_id", Id, nullable=False),
        sa.Column("object_id", Id, nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lineage_id"],
            ["model_list_lineages.id"],
            name="fk_model_list_spans_lineage_id_model_list_lineages",
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["model_objects.id"],
            name="fk_model_list_spans_object_id_model_objects",
        ),
        sa.PrimaryKeyConstraint("lineage_id", "object_id", "first_seq", name="pk_model_list_spans"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_model_list_spans_object_id", "model_list_spans", ["object_id"])
    # every existing list is a lineage of its own, numbered as the list
    op.execute(
        "INSERT INTO model_list_lineages (id, tip_seq, span_count) "
        "SELECT id, 0, model_count FROM model_lists"
    )
    if op.get_bind().dialect.name == "postgresql":  # new lineages are numbered after these
        op.execute(
            "SELECT setval(pg_get_serial_sequence('model_list_lineages', 'id'), "
            "coalesce(max(id), 0) + 1, false) FROM model_list_lineages"
        )
    op.execute(
        "INSERT INTO model_list_spans (lineage_id, object_id, first_seq) "
        "SELECT list_id, object_id, 0 FROM model_list_entries"
    )
    with op.batch_alter_table("model_lists") as batch:
        batch.add_column(sa.Column("lineage_id", Id, nullable=True))
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    op.execute("UPDATE model_lists SET lineage_id = id, seq = 0")
    with op.batch_alter_table("model_lists") as batch:
        batch.alter_column("lineage_id", existing_type=Id, nullable=False)
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            "fk_model_lists_lineage_id_model_list_lineages",
            "model_list_lineages",
            ["lineage_id"],
            ["id"],
        )
        batch.create_index("ix_model_lists_lineage_id_seq", ["lineage_id", "seq"], unique=True)
    op.drop_index("ix_model_list_entries_object_id", "model_list_entries")
    op.drop_table("model_list_entries")
    op.execute("CREATE VIEW model_list_entries AS " + ENTRIES)


def downgrade() -> None:
    op.execute("DROP VIEW model_list_entries")
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
    op.execute("INSERT INTO model_list_entries (list_id, object_id) " + ENTRIES)
    with op.batch_alter_table("model_lists") as batch:
        batch.drop_index("ix_model_lists_lineage_id_seq")
        batch.drop_constraint("fk_model_lists_lineage_id_model_list_lineages", type_="foreignkey")
        batch.drop_column("seq")
        batch.drop_column("lineage_id")
    op.drop_index("ix_model_list_spans_object_id", "model_list_spans")
    op.drop_table("model_list_spans")
    op.drop_table("model_list_lineages")
