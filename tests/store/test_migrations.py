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


def test_upgrading_keeps_every_stored_time(db_url: str) -> None:
    """A database written by 0.1 (times as text on SQLite) reads the same after 0003."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from monitor.store import Store

    engine = open_engine(db_url, create=True)
    try:
        upgrade(engine, "0002")
        when = datetime(2026, 11, 26, 1, 56, 10, 123456, tzinfo=UTC)
        stored = "2026-11-26 01:56:10.123456" if engine.dialect.name == "sqlite" else when
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO snapshots (target, fetched_at, ok, http_status, error) "
                    "VALUES ('dos-ai', :at, false, 500, 'HTTP 500: server error')"
                ),
                {"at": stored},
            )
        upgrade(engine)
        (snapshot,) = Store(engine).history()
        assert snapshot.fetched_at == when
        assert Store(engine).history(since=when) == [snapshot]
        downgrade(engine, "0002")
        with engine.connect() as connection:
            back = connection.execute(text("SELECT fetched_at FROM snapshots")).scalar()
        if engine.dialect.name == "sqlite":
            assert back == "2026-11-26 01:56:10.123456"
    finally:
        engine.dispose()
