"""Storage operations on a real database: SQLite and PostgreSQL (see the db_url fixture)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from builders import count_rows, models, record_poll
from sqlalchemy import event, text

from monitor.alerts import TargetState
from monitor.errors import NotFoundError
from monitor.modellist import ModelList
from monitor.store import Store, schema

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def add(store: Store, target: str, at: datetime, lst: ModelList | None, error: str | None = None):
    with store.transaction() as tx:
        status = 200 if lst is not None else 500
        return record_poll(tx, target, at, lst, http_status=status, error=error, duration_ms=5)


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def waits_for_a_lock(store: Store, pid: int) -> bool:
    """Whether the PostgreSQL backend ``pid`` is blocked on a lock another one holds."""
    with store.engine.connect() as connection:
        waiting = connection.scalar(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return waiting == "Lock"


def test_unchanged_polls_store_the_list_once(store: Store) -> None:
    for i in range(5):
        add(store, "dos-ai", T0 + timedelta(minutes=i), models("a", "b", "c"))
    assert count_rows(store, schema.Snapshot) == 5
    assert count_rows(store, schema.ModelListRow) == 1
    assert count_rows(store, schema.ModelObject) == 3


def test_a_changed_list_stores_only_new_objects(store: Store) -> None:
    add(store, "dos-ai", T0, models("a", "b", "c"))
    add(store, "dos-ai", T0 + timedelta(minutes=1), models("a", "b", "c", "d"))
    assert count_rows(store, schema.ModelListRow) == 2
    assert count_rows(store, schema.ModelObject) == 4


def test_lists_are_shared_across_targets(store: Store) -> None:
    add(store, "one", T0, models("a", "b"))
    add(store, "two", T0, models("a", "b"))
    assert count_rows(store, schema.ModelListRow) == 1


def test_latest_good_skips_failed_polls(store: Store) -> None:
    good = add(store, "dos-ai", T0, models("a"))
    add(store, "dos-ai", T0 + timedelta(minutes=1), None, error="HTTP 500: server error")
    add(store, "other", T0 + timedelta(minutes=2), models("z"))
    with store.transaction() as tx:
        baseline = tx.latest_good("dos-ai")
        assert baseline is not None
        assert baseline.snapshot.id == good.id
        assert baseline.list_digest == models("a").digest
        assert tx.model_ids(good.model_list_id or 0) == frozenset({"a"})
        assert tx.latest_good("never-polled") is None


def test_history_is_newest_first_with_filters(store: Store) -> None:
    for i in range(4):
        add(store, "dos-ai", T0 + timedelta(hours=i), models("a"))
    add(store, "other", T0 + timedelta(hours=10), None, error="connection refused")
    rows = store.history(target="dos-ai")
    assert [r.fetched_at for r in rows] == [T0 + timedelta(hours=i) for i in (3, 2, 1, 0)]
    assert all(r.fetched_at.tzinfo is not None for r in rows)
    assert len(store.history(limit=2)) == 2
    assert store.history(limit=1)[0].target == "other"
    since = store.history(target="dos-ai", since=T0 + timedelta(hours=2))
    assert [r.fetched_at.hour for r in since] == [15, 14]
    failed = store.history(target="other")[0]
    assert (failed.ok, failed.model_count, failed.error) == (False, None, "connection refused")


def test_models_at_a_past_moment(store: Store) -> None:
    first = add(store, "dos-ai", T0, models("a", "b"))
    add(store, "dos-ai", T0 + timedelta(hours=1), None, error="timed out")
    second = add(store, "dos-ai", T0 + timedelta(hours=2), models("a", "c"))
    assert store.models_at("dos-ai", T0 - timedelta(seconds=1)) is None
    at_first = store.models_at("dos-ai", T0 + timedelta(hours=1, minutes=30))
    assert at_first is not None and at_first.id == first.id
    assert [m["id"] for m in store.models(at_first)] == ["a", "b"]
    now = store.models_at("dos-ai", T0 + timedelta(days=1))
    assert now is not None and now.id == second.id


def test_models_keep_the_whole_object(store: Store) -> None:
    lst = ModelList.from_objects(
        [{"id": "m", "object": "model", "pricing": {"prompt": "0.27"}, "context_length": 128000}]
    )
    snap = add(store, "openrouter", T0, lst)
    assert store.models(store.snapshot(snap.id)) == [
        {"id": "m", "object": "model", "pricing": {"prompt": "0.27"}, "context_length": 128000}
    ]


def test_unknown_snapshot_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no snapshot with id 4242"):
        store.snapshot(4242)


def test_changes_round_trip_and_filter(store: Store) -> None:
    a = add(store, "dos-ai", T0, models("a", "b"))
    b = add(store, "dos-ai", T0 + timedelta(hours=1), models("a", "c"))
    with store.transaction() as tx:
        tx.add_change(
            target="dos-ai",
            detected_at=b.fetched_at,
            from_snapshot_id=a.id,
            to_snapshot_id=b.id,
            added=["c"],
            removed=["b"],
        )
    (change,) = store.changes(target="dos-ai")
    assert (change.added, change.removed) == (("c",), ("b",))
    assert (change.from_snapshot_id, change.to_snapshot_id) == (a.id, b.id)
    assert store.changes(target="other") == []
    assert store.changes(since=T0 + timedelta(hours=2)) == []
    assert store.has_target("dos-ai") and not store.has_target("other")


def test_a_failed_transaction_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        record_poll(tx, "dos-ai", T0, models("a"), duration_ms=1)
        raise RuntimeError("crash after the write, before the commit")
    assert store.history() == []
    assert count_rows(store, schema.ModelListRow) == 0


def test_two_writers_storing_the_same_new_list_at_once(store: Store) -> None:
    """Two targets of one provider, polled by two processes at the same moment: the second
    writer starts while the first, holding the new list uncommitted, is still in its
    transaction. On PostgreSQL it is seen waiting for the first's lock; on SQLite it is
    about to issue BEGIN IMMEDIATE when the first is let go, so whether it had to wait
    for the write lock is up to the scheduler (SQLite allows no other order anyway)."""
    lst = models("shared-a", "shared-b", "shared-c")
    first_wrote, second_started, release = (threading.Event() for _ in range(3))
    second_backend: list[int] = []
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with store.transaction() as tx:
                record_poll(tx, "one", T0, lst, duration_ms=1)
                first_wrote.set()
                if not release.wait(30):
                    raise AssertionError("the second writer never started")
        except BaseException as exc:  # reported below
            errors.append(exc)

    def second() -> None:
        try:
            add(store, "two", T0, lst)  # waits for the first writer, then finds its rows
        except BaseException as exc:  # reported below
            errors.append(exc)

    second_thread = threading.Thread(target=second)

    def on_statement(connection: Any, *_args: Any) -> None:
        if threading.current_thread() is second_thread and not second_started.is_set():
            if connection.dialect.name == "postgresql":
                second_backend.append(connection.connection.dbapi_connection.info.backend_pid)
            second_started.set()  # SQLite: about to BEGIN IMMEDIATE, which waits

    first_thread = threading.Thread(target=first)
    first_thread.start()
    assert first_wrote.wait(30), errors
    event.listen(store.engine, "before_cursor_execute", on_statement)
    try:
        second_thread.start()
        assert second_started.wait(30), errors
        if store.engine.dialect.name == "postgresql":
            (pid,) = second_backend
            wait_for(lambda: waits_for_a_lock(store, pid))
    finally:
        release.set()
        event.remove(store.engine, "before_cursor_execute", on_statement)
    first_thread.join(30)
    second_thread.join(30)
    assert not first_thread.is_alive() and not second_thread.is_alive()
    assert errors == []
    assert count_rows(store, schema.ModelListRow) == 1
    assert count_rows(store, schema.ModelObject) == 3
    assert {s.target for s in store.history()} == {"one", "two"}
    assert [m["id"] for m in store.models(store.history(target="two")[0])] == [
        "shared-a",
        "shared-b",
        "shared-c",
    ]


def test_a_models_life_is_its_sightings_and_what_each_change_said(store: Store) -> None:
    """``model_life``: per target that ever listed the model, first and last seen,
    whether it is listed now, and its events in time order (ties by event id)."""
    from monitor.diff import FieldChange

    minute = timedelta(minutes=1)
    polls = [
        add(store, "dos-ai", T0, models("a")),
        add(store, "dos-ai", T0 + minute, models("a", "x")),
        add(store, "dos-ai", T0 + 2 * minute, models("a")),
        add(store, "dos-ai", T0 + 3 * minute, models("a", "x")),
        add(store, "other", T0, models("x")),
    ]
    price = FieldChange("x", "pricing.prompt", "1", "0.5")
    with store.transaction() as tx:
        for (before, after), added, removed, changed in [
            ((0, 1), ["x"], [], []),
            ((1, 2), [], ["x"], []),
            ((2, 3), ["x"], [], [price, FieldChange("a", "pricing.prompt", "1", "2")]),
        ]:
            tx.add_change(
                target="dos-ai",
                detected_at=polls[after].fetched_at,
                from_snapshot_id=polls[before].id,
                to_snapshot_id=polls[after].id,
                added=added,
                removed=removed,
                changed=changed,
            )
    lives = store.model_life("x")
    assert [life.sighting.target for life in lives] == ["dos-ai", "other"]
    dos, other = lives
    assert (dos.sighting.first_seen, dos.sighting.last_seen) == (T0 + minute, T0 + 3 * minute)
    assert dos.sighting.present and other.sighting.present and other.events == ()
    assert [(e.at, e.what, e.change) for e in dos.events] == [
        (T0 + minute, "added", None),
        (T0 + 2 * minute, "removed", None),
        (T0 + 3 * minute, "added", None),
        (T0 + 3 * minute, "changed", price),
    ]
    assert [life.sighting.target for life in store.model_life("x", target="other")] == ["other"]
    assert store.model_life("never-listed") == []


def test_pages_read_with_before_give_the_whole_listing_once_in_order(store: Store) -> None:
    """Keyset pages (``before=`` the last id of the page before) walk the same rows as
    one listing, in the same order, ties in time included."""
    minute = timedelta(minutes=1)
    with store.transaction() as tx:
        for i in range(7):  # polls of two targets, some at the same moment
            record_poll(tx, "dos-ai", T0 + (i // 2) * minute, models("a"))
            record_poll(tx, "other", T0 + (i // 3) * minute, None, error="HTTP 503")
    whole = store.history()
    assert len(whole) == 14
    for target in (None, "dos-ai"):
        expected = [s.id for s in store.history(target=target)]
        pages: list[int] = []
        before = None
        while True:
            page = store.history(target=target, limit=3, before=before)
            if not page:
                break
            pages += [s.id for s in page]
            before = page[-1].id
        assert pages == expected


def test_a_summary_of_each_target_and_the_ids_each_lists_now(store: Store) -> None:
    minute = timedelta(minutes=1)
    with store.transaction() as tx:
        record_poll(tx, "dos-ai", T0, models("a", "b"))
        tx.save_target_state("dos-ai", TargetState(), None, T0)
        record_poll(tx, "mirror", T0, models("a", "b"))  # the same list, read once
        later = record_poll(tx, "mirror", T0 + minute, models("a", "b", "c"))
        tx.add_change(
            target="mirror",
            detected_at=T0 + minute,
            from_snapshot_id=later.id - 1,
            to_snapshot_id=later.id,
            added=["c"],
            removed=[],
        )
        record_poll(tx, "mirror", T0 + 2 * minute, None, error="HTTP 503")
        failing = TargetState(failures=1, failing_since=T0 + 2 * minute, last_error="HTTP 503")
        tx.save_target_state("mirror", failing, later.id, T0 + 2 * minute)
    summaries = store.target_summaries(["dos-ai", "mirror", "never-polled"])
    assert set(summaries) == {"dos-ai", "mirror"}  # no poll, no summary
    dos, mirror = summaries["dos-ai"], summaries["mirror"]
    assert (dos.last_poll_at, dos.last_good_at, dos.good_count) == (T0, T0, 2)
    assert dos.last_change_at is None and dos.failures == 0
    assert mirror.last_poll_at == T0 + 2 * minute and mirror.last_good_at == T0 + minute
    assert mirror.good_count == 3 and mirror.last_change_at == T0 + minute
    assert (mirror.failures, mirror.last_error) == (1, "HTTP 503")
    assert store.listed_now(["dos-ai", "mirror", "never-polled"]) == {
        "dos-ai": frozenset({"a", "b"}),
        "mirror": frozenset({"a", "b", "c"}),
        "never-polled": frozenset(),
    }


def test_changes_touching_a_model_glob_are_found_across_batches(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.diff import FieldChange
    from monitor.store import queries

    monkeypatch.setattr(queries, "_MODEL_BATCH", 3)  # the filter reads several batches
    minute = timedelta(minutes=1)
    ids = []
    with store.transaction() as tx:
        first = record_poll(tx, "dos-ai", T0, models("a"))
        for i in range(8):
            poll = record_poll(tx, "dos-ai", T0 + (i + 1) * minute, models("a", f"m{i}"))
            added, removed, changed = [f"deepseek/{i}"], [], []
            if i in (1, 6):
                added = ["meta-llama/x"]
            if i == 3:
                changed = [FieldChange("meta-llama/y", "pricing.prompt", "1", "2")]
            change = tx.add_change(
                target="dos-ai",
                detected_at=T0 + (i + 1) * minute,
                from_snapshot_id=first.id,
                to_snapshot_id=poll.id,
                added=added,
                removed=removed,
                changed=changed,
            )
            ids.append(change.id)
    touching = [c.id for c in store.changes(models=("meta-llama/*",))]
    assert touching == [ids[6], ids[3], ids[1]]  # newest first, a changed field counts
    assert [c.id for c in store.changes(models=("meta-llama/*",), limit=2)] == touching[:2]
    assert [c.id for c in store.changes(models=("meta-llama/*",), before=ids[6])] == touching[1:]
    assert [c.id for c in store.changes(models=("deepseek/7", "meta-llama/x"))] == [
        ids[7],
        ids[6],
        ids[1],
    ]
    assert store.changes(models=("Meta-Llama/*",)) == []  # case-sensitive
    # globs the database cannot pre-filter (a set; text JSON spells otherwise) still work
    assert [c.id for c in store.changes(models=("meta-llama/[x]",))] == [ids[6], ids[1]]
    with store.transaction() as tx:
        poll = record_poll(tx, "dos-ai", T0 + 20 * minute, models("a", "é"))
        odd = tx.add_change(
            target="dos-ai",
            detected_at=T0 + 20 * minute,
            from_snapshot_id=first.id,
            to_snapshot_id=poll.id,
            added=['mistral/"quoted" é'],
            removed=[],
        )
    assert [c.id for c in store.changes(models=('*"quoted" é',))] == [odd.id]
    assert [c.id for c in store.changes(models=("mistral/*",))] == [odd.id]
