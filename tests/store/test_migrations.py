"""Alembic owns the schema: upgrade, downgrade, and the models agree with the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from monitor.store import open_engine, upgrade
from monitor.store.engine import current_revision, downgrade, head_revision
from monitor.store.schema import Base

TABLES = {"snapshots", "model_lists", "model_objects", "model_list_spans", "change_events"}


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = open_engine(db_url, create=True)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert "model_list_entries" in inspect(engine).get_view_names()
        upgrade(engine)  # a second run is a no-op
        downgrade(engine, "base")
        assert not TABLES & set(inspect(engine).get_table_names())
        assert not inspect(engine).get_view_names()
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


def test_a_database_full_of_history_upgrades_and_downgrades(db_url: str) -> None:
    """Lists written by 0.1 (one entry row per model) read back the same after 0005,
    new lists extend them as spans, and a downgrade spells every list out again."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from monitor.modellist import ModelList
    from monitor.store import SnapshotRecord, Store

    engine = open_engine(db_url, create=True)
    try:
        upgrade(engine, "0002")  # 0.1's schema: 0003 rebuilds tables that rows point at
        at = datetime(2026, 11, 1, tzinfo=UTC)
        stamp = "2026-11-01 00:00:00.000000" if engine.dialect.name == "sqlite" else at
        with engine.begin() as connection:
            for model in ("a", "b", "c"):
                connection.execute(
                    text(
                        "INSERT INTO model_objects (digest, model_id, data) "
                        "VALUES (:digest, :model, :data)"
                    ),
                    {"digest": model, "model": model, "data": f'{{"id": "{model}"}}'},
                )
            for name, members in (("L1", ("a", "b")), ("L2", ("a", "b", "c"))):
                connection.execute(
                    text(
                        "INSERT INTO model_lists (digest, model_count, first_seen_at) "
                        "VALUES (:name, :n, :at)"
                    ),
                    {"name": name, "n": len(members), "at": stamp},
                )
                for model in members:
                    connection.execute(
                        text(
                            "INSERT INTO model_list_entries "
                            "SELECT l.id, o.id FROM model_lists l, model_objects o "
                            "WHERE l.digest = :name AND o.digest = :model"
                        ),
                        {"name": name, "model": model},
                    )
                connection.execute(
                    text(
                        "INSERT INTO snapshots (target, fetched_at, ok, model_count, "
                        "model_list_id) SELECT 'dos-ai', :at, true, :n, id "
                        "FROM model_lists WHERE digest = :name"
                    ),
                    {"at": stamp, "n": len(members), "name": name},
                )
        upgrade(engine)
        store = Store(engine)
        newest, older = store.history()
        assert [m["id"] for m in store.models(older)] == ["a", "b"]
        assert [m["id"] for m in store.models(newest)] == ["a", "b", "c"]

        def poll(target: str, day: int, *ids: str) -> SnapshotRecord:
            with store.transaction() as tx:
                return tx.add_snapshot(
                    target=target,
                    fetched_at=at.replace(day=day),
                    ok=True,
                    http_status=200,
                    error=None,
                    duration_ms=1,
                    models=ModelList.from_objects([{"id": i} for i in ids]),
                )

        poll("dos-ai", 2, "a", "c", "d")  # extends the lineage the migration made
        fresh = poll("fresh", 3, "e")  # a lineage of its own, numbered after the old
        assert [m["id"] for m in store.models(fresh)] == ["e"]
        downgrade(engine, "0004")
        with engine.connect() as connection:
            spelled = connection.execute(
                text(
                    "SELECT s.id, o.model_id FROM snapshots s "
                    "JOIN model_list_entries e ON e.list_id = s.model_list_id "
                    "JOIN model_objects o ON o.id = e.object_id ORDER BY s.id, o.model_id"
                )
            ).all()
        rank = {i: n for n, i in enumerate(sorted({i for i, _ in spelled}))}
        assert [(rank[i], m) for i, m in spelled] == [
            (0, "a"),
            (0, "b"),
            (1, "a"),
            (1, "b"),
            (1, "c"),
            (2, "a"),
            (2, "c"),
            (2, "d"),
            (3, "e"),
        ]
        upgrade(engine)
        assert [m["id"] for m in store.models(store.history(target="dos-ai")[0])] == ["a", "c", "d"]
    finally:
        engine.dispose()


def test_delivery_urls_stored_before_0007_lose_their_path_tokens(db_url: str) -> None:
    """Deliveries store the URL as shown; before 0007 that kept what apprise leaves in a
    path (a webhook's token, an ntfy topic): 0007 masks it in rows already stored."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from monitor.store import Store

    engine = open_engine(db_url, create=True)
    try:
        upgrade(engine, "0006")
        at = datetime(2026, 11, 1, tzinfo=UTC)
        stamp = 1_793_491_200_000_000 if engine.dialect.name == "sqlite" else at
        shown = {
            "json://hooks.example.com/webhook/SECRETTOKEN123": "json://hooks.example.com/…/…",
            "ntfy://ntfy.sh/mysecrettopic": "ntfy://ntfy.sh/…",
            "slack://T...2/A...D/T...l/": "slack://T...2/A...D/T...l/",  # apprise's own mask
            "mailto://u...r:****@smtp.example.com/ops%40example.com": (
                "mailto://u...r:****@smtp.example.com/ops%40example.com"
            ),
            "json://127.0.0.1:8080/all": "json://127.0.0.1:8080/all",
        }
        with engine.begin() as connection:
            for url in shown:
                connection.execute(
                    text(
                        "INSERT INTO deliveries (target, url_hash, url, title, body, status, "
                        "attempts, created_at, next_attempt_at) VALUES ('dos-ai', 'h', :url, "
                        "'t', 'b', 'sent', 1, :at, :at)"
                    ),
                    {"url": url, "at": stamp},
                )
        upgrade(engine)
        rows, _ = Store(engine).deliveries()
        assert sorted(d.url for d in rows) == sorted(shown.values())
        assert not any("SECRET" in d.url or "secrettopic" in d.url for d in rows)
    finally:
        engine.dispose()
