"""Retention (Store.prune) on a real database: SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from builders import count_rows, models, record_poll

from monitor.alerts import TargetState
from monitor.modellist import ModelList
from monitor.store import Store, schema

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def poll(store: Store, target: str, at: datetime, lst: ModelList | None) -> int:
    with store.transaction() as tx:
        error = None if lst else "HTTP 503: server error"
        return record_poll(tx, target, at, lst, error=error).id


@pytest.fixture
def history(store: Store) -> dict[str, int]:
    """dos-ai polled daily for 100 days: a one-day list on day 10, a change on day 50,
    a failure on day 60 with a down event; 'old' polled once on day 1 only."""
    ids: dict[str, int] = {}
    before, after = models("a", "b"), models("a", "c")
    for day in range(100):
        lst = before if day < 50 else after
        if day == 10:
            lst = models("a", "b", "one-day-only")
        if day == 60:
            lst = None
        ids[f"day{day}"] = poll(store, "dos-ai", T0 + day * DAY, lst)
    with store.transaction() as tx:
        tx.add_change(
            target="dos-ai",
            detected_at=T0 + 50 * DAY,
            from_snapshot_id=ids["day49"],
            to_snapshot_id=ids["day50"],
            added=["c"],
            removed=["b"],
        )
        tx.add_target_event(
            target="dos-ai",
            kind="down",
            at=T0 + 60 * DAY,
            since=T0 + 60 * DAY,
            snapshot_id=ids["day60"],
            failures=1,
            error="HTTP 503",
        )
        tx.save_target_state("dos-ai", TargetState(), ids["day50"], T0 + 99 * DAY)
    ids["old"] = poll(store, "old", T0 + DAY, models("x"))
    return ids


def test_prune_keeps_what_history_needs(store: Store, history: dict[str, int]) -> None:
    report = store.prune(T0 + 80 * DAY)
    remaining = {s.id for s in store.history(limit=None)}
    kept_old = {history["day49"], history["day50"], history["day60"], history["old"]}
    assert remaining == kept_old | {history[f"day{d}"] for d in range(80, 100)}
    assert report.snapshots == 100 + 1 - len(remaining)
    # the one-day list and its one object are gone; what remains still reads whole
    assert report.lists == 1 and report.objects == 1
    assert count_rows(store, schema.ModelListRow) == 3  # (a, b), (a, c), (x)
    assert [m["id"] for m in store.models(store.snapshot(history["day49"]))] == ["a", "b"]
    assert [m["id"] for m in store.models(store.snapshot(history["old"]))] == ["x"]
    (change,) = store.changes()
    assert (change.from_snapshot_id, change.to_snapshot_id) == (history["day49"], history["day50"])
    at = store.models_at("old", T0 + 200 * DAY)
    assert at is not None and at.id == history["old"]  # a target's latest poll stays


def test_a_dry_run_counts_exactly_and_deletes_nothing(
    store: Store, history: dict[str, int]
) -> None:
    before = count_rows(store, schema.Snapshot), count_rows(store, schema.ModelObject)
    dry = store.prune(T0 + 80 * DAY, dry_run=True)
    assert (count_rows(store, schema.Snapshot), count_rows(store, schema.ModelObject)) == before
    assert store.prune(T0 + 80 * DAY) == dry


def test_prune_one_target(store: Store, history: dict[str, int]) -> None:
    poll(store, "old", T0 + 2 * DAY, models("x"))
    report = store.prune(T0 + 80 * DAY, target="old")
    assert report.snapshots == 1  # its first poll; its latest stays
    assert len(store.history(target="dos-ai", limit=None)) == 100


def test_the_latest_good_poll_survives_a_run_of_failures(store: Store) -> None:
    good = poll(store, "flaky", T0, models("a"))
    for day in range(1, 5):
        poll(store, "flaky", T0 + day * DAY, None)
    store.prune(T0 + 10 * DAY)
    at = store.models_at("flaky", T0 + 10 * DAY)
    assert at is not None and at.id == good


def test_vacuum_gives_what_prune_freed_back_to_the_disk(store: Store) -> None:
    """Prune frees rows, not disk; vacuum shrinks the file (SQLite) or the tables
    (PostgreSQL), and the history left reads the same."""
    padding = "x" * 2000
    for day in range(60):  # a list of its own every day: objects prune can delete
        ids = [f"m{day}-{n}" for n in range(10)]
        poll(store, "dos-ai", T0 + day * DAY, models(*ids, padding=padding))
    latest = store.models_at("dos-ai", T0 + 100 * DAY)
    assert latest is not None
    kept = store.models(latest)
    report = store.prune(T0 + 59 * DAY)
    assert report.objects > 500
    vacuumed = store.vacuum()
    assert vacuumed.bytes_after < vacuumed.bytes_before / 2, vacuumed
    assert store.models(latest) == kept
    if store.engine.dialect.name == "sqlite":
        path = store.engine.url.database
        assert path is not None
        from pathlib import Path

        assert Path(path).stat().st_size == vacuumed.bytes_after
    assert store.vacuum().bytes_before == vacuumed.bytes_after  # nothing more to give
