"""Alembic owns the schema: upgrade, downgrade, and the models agree with the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from monitor.store import open_engine, upgrade
from monitor.store.engine import current_revision, downgrade, head_revision
from monitor.store.schema import Base

TABLES = {"snapshots", "model_lists", "model_objects", "model_list_entries", "change_events"}


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = open_engine(db_url, create=True)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        upgrade(engine)  # a second run is a no-op
        downgrade(engine, "base")
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrations_match_the_models(db_url: str) -> None:
    engine = open_engine(db_url, create=True)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        engine.dispose()
