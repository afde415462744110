"""The statements every poll runs on the driver's own cursor (monitor.store.driver), on
SQLite and PostgreSQL: what they write reads back as the ORM reads it, a driver error
leaves as a StorageError that says what went wrong, and a connection the server
dropped in the middle of a poll is not handed to the next one."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from builders import models, record_poll
from sqlalchemy import event

from monitor.errors import StorageError
from monitor.store import Store, open_engine, upgrade

T0 = datetime(2026, 2, 1, 9, 30, 12, 345678, tzinfo=UTC)


def test_a_poll_written_on_the_driver_reads_back_as_the_history_shows_it(store: Store) -> None:
    with store.transaction() as tx:
        good = record_poll(tx, "dos-ai", T0, models("a", "b"))
        failed = record_poll(
            tx, "dos-ai", T0 + timedelta(seconds=1), None, error="HTTP 503: ünïcode \x00 down"
        )
    with store.transaction() as tx:
        again = tx.add_snapshot(
            target="dos-ai",
            fetched_at=T0 + timedelta(seconds=2),
            ok=True,
            http_status=200,
            error=None,
            duration_ms=7,
            models=None,
            seen=(models("a", "b").digest, 2),  # unchanged: points at the stored list
        )
    newest_first = store.history(target="dos-ai")
    assert [s.id for s in newest_first] == [again.id, failed.id, good.id]
    back_again, back_failed, back_good = newest_first
    assert back_again.fetched_at == T0 + timedelta(seconds=2)  # to the microsecond, UTC
    assert back_again.fetched_at.tzinfo is not None
    assert back_again.ok is True and back_again.model_list_id == good.model_list_id
    assert [m["id"] for m in store.models(back_again)] == ["a", "b"]
    assert back_failed.ok is False and back_failed.error == "HTTP 503: ünïcode \x00 down"
    assert (back_good.http_status, back_good.duration_ms, back_good.model_count) == (200, 3, 2)


def test_the_replicas_rule_reads_the_last_poll_to_the_microsecond(store: Store) -> None:
    """A scheduled poll gives up when the target was polled less than ``min_gap`` ago."""
    with store.transaction() as tx:
        record_poll(tx, "dos-ai", T0, models("a"))
    just_inside = T0 + timedelta(seconds=10) - timedelta(microseconds=1)
    with store.poll_turn("dos-ai", now=just_inside, min_gap=10.0) as mine:
        assert mine is False
    with store.poll_turn("dos-ai", now=T0 + timedelta(seconds=10), min_gap=10.0) as mine:
        assert mine is True
    with store.poll_turn("never-polled", now=T0, min_gap=10.0) as mine:
        assert mine is True


def test_a_driver_error_is_a_storage_error_naming_it_and_nothing_is_half_written(
    store: Store,
) -> None:
    with store.transaction() as tx:
        record_poll(tx, "dos-ai", T0, models("a"))
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE target_states RENAME TO target_states_away")
    with pytest.raises(StorageError, match="target_states"), store.transaction() as tx:
        record_poll(tx, "dos-ai", T0 + timedelta(seconds=1), models("a"))
        tx.target_state("dos-ai")
    assert len(store.history()) == 1  # the snapshot written first was rolled back with it
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE target_states_away RENAME TO target_states")
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE snapshots RENAME TO snapshots_away")
    with (
        pytest.raises(StorageError, match="snapshots"),
        store.poll_turn("dos-ai", now=T0, min_gap=10.0),
    ):
        pass
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE snapshots_away RENAME TO snapshots")
    with store.poll_turn("dos-ai", now=T0 + timedelta(minutes=1), min_gap=10.0) as mine:
        assert mine is True  # the same pool, working again
    with store.transaction() as tx:
        record_poll(tx, "dos-ai", T0 + timedelta(minutes=1), models("a"))
        assert tx.target_state("dos-ai").state.confirmed_count == 1
    assert len(store.history()) == 2


def test_a_value_the_column_refuses_is_a_storage_error(store: Store) -> None:
    naive = datetime(2026, 2, 1, 9, 30)
    with pytest.raises(StorageError, match="naive datetime"), store.transaction() as tx:
        record_poll(tx, "dos-ai", naive, models("a"))
    assert store.history() == []


def test_a_sqlite_database_gone_from_under_the_daemon_is_a_storage_error(tmp_path: Path) -> None:
    """The turn read opens its own connection: a database that cannot be opened any more
    is the same StorageError the poll's transaction gives, not a driver traceback."""
    folder = tmp_path / "data"
    engine = open_engine(f"sqlite:///{folder / 'monitor.db'}", create=True)
    upgrade(engine)
    store = Store(engine)
    engine.dispose()  # no connection kept open
    shutil.rmtree(folder)
    try:
        gone = pytest.raises(StorageError, match="unable to open database file")
        with gone, store.poll_turn("dos-ai", now=T0, min_gap=10.0):
            pass
        gone = pytest.raises(StorageError, match="unable to open database file")
        with gone, store.transaction() as tx:
            tx.target_state("dos-ai")
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_connection_the_server_drops_mid_poll_fails_that_poll_only(
    store: Store, postgres_url: str
) -> None:
    pids: list[int] = []

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        pids.append(dbapi_connection.info.backend_pid)

    with store.transaction() as tx:  # a connection in the pool
        record_poll(tx, "dos-ai", T0, models("a"))
    event.listen(store.engine, "checkout", on_checkout)
    try:
        with pytest.raises(StorageError), store.transaction() as tx:
            with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pids[-1],))
            tx.target_state("dos-ai")
    finally:
        event.remove(store.engine, "checkout", on_checkout)
    with store.transaction() as tx:  # the next poll is recorded
        record_poll(tx, "dos-ai", T0 + timedelta(minutes=1), models("a"))
        tx.target_state("dos-ai")
    assert len(store.history()) == 2
