"""The poll transaction (monitor.store.polls) on a real database: SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

from builders import models, record_poll

from monitor.alerts import TargetState
from monitor.store import Store

T0 = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


def test_every_field_of_a_target_state_reads_back_as_saved(store: Store) -> None:
    """The state machine's memory survives a restart whole: no field is left behind by
    the row it is saved in (each one set, to a value that is not its default)."""
    saved = TargetState(
        confirmed_digest="c" * 64,
        confirmed_count=12,
        candidate_digest="d" * 64,
        candidate_seen=2,
        failures=4,
        failing_since=T0 - timedelta(minutes=7),
        last_error="HTTP 502: bad gateway \x00 ünïcode",
        down_alerted_at=T0 - timedelta(minutes=3),
    )
    assert all(getattr(saved, f.name) != f.default for f in fields(TargetState))
    with store.transaction() as tx:
        snapshot = record_poll(tx, "dos-ai", T0, models("a"))
        tx.save_target_state("dos-ai", saved, snapshot.id, T0)
    with store.transaction() as tx:
        back = tx.target_state("dos-ai")
    assert back.state == saved
    assert (back.confirmed_snapshot_id, back.updated_at) == (snapshot.id, T0)


def test_a_target_without_saved_state_starts_from_its_latest_good_poll(store: Store) -> None:
    with store.transaction() as tx:
        record_poll(tx, "dos-ai", T0, models("a", "b"))
        latest = record_poll(tx, "dos-ai", T0 + timedelta(minutes=1), models("a", "b", "c"))
        record_poll(tx, "dos-ai", T0 + timedelta(minutes=2), None, error="HTTP 503")
    with store.transaction() as tx:
        stored = tx.target_state("dos-ai")
        fresh = tx.target_state("never-polled")
    assert stored.confirmed_snapshot_id == latest.id
    assert stored.state.confirmed_count == 3 and stored.state.failures == 0
    assert fresh.state == TargetState() and fresh.confirmed_snapshot_id is None
