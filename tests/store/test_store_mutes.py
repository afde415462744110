"""Mutes in the database, on SQLite and PostgreSQL: what a poll recorded late is still
released, and a redirect never sends what a digest or a mute took care of."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from builders import models, record_poll

from monitor.mutes import ALL
from monitor.store import DeliveryRecord, Store

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
URL = ("a" * 64, "json://hooks.example.com/…")
OTHER = ("b" * 64, "json://other.example.com/")


def compose(
    items: Sequence[tuple[DeliveryRecord, Mapping[str, int]]], _at: datetime
) -> tuple[str, str]:
    return f"summary of {len(items)}", "\n".join(d.title for d, _ in items)


def muted_change(store: Store, at: datetime, n: int, urls: Sequence[tuple[str, str]]) -> int:
    """A change of dos-ai recorded at ``at`` with its alert muted; the delivery's id."""
    with store.transaction() as tx:
        before = record_poll(tx, "dos-ai", at, models("a"))
        after = record_poll(tx, "dos-ai", at + timedelta(seconds=1), models("a", f"m{n}"))
        change = tx.add_change(
            target="dos-ai",
            detected_at=at,
            from_snapshot_id=before.id,
            to_snapshot_id=after.id,
            added=[f"m{n}"],
            removed=[],
        )
        assert tx.muted("dos-ai", at)
        (first, *_) = tx.add_deliveries(
            change, list(urls), title=f"change {n}", body="b", now=at, summary={"added": 1},
            muted=True,
        )  # fmt: skip
    return first


def test_a_muted_alert_recorded_after_its_mute_was_released_is_released_too(
    store: Store,
) -> None:
    mute = store.add_mute("dos-ai", T0, T0 + timedelta(hours=1), "migration")
    muted_change(store, T0 + timedelta(minutes=5), 1, [URL])
    end = T0 + timedelta(minutes=10)
    store.end_mutes("dos-ai", end)
    assert store.mutes_due(end)
    (summary,) = store.close_mutes(end, compose)
    assert store.delivery(summary).title == "summary of 1"
    assert not store.mutes_due(end)
    # a poll that began inside the mute and was written after that release
    late = muted_change(store, T0 + timedelta(minutes=9), 2, [URL])
    assert store.delivery(late).status == "muted"
    assert store.mutes_due(end)  # not forgotten: no mute holds it any more
    (again,) = store.close_mutes(end, compose)
    assert store.delivery(late).status == "digested" and store.delivery(again).title == (
        "summary of 1"
    )
    assert not store.mutes_due(end)
    assert [m.id for m in store.mutes(T0)] == []  # ended by hand
    assert mute.id


def test_a_mute_of_every_target_holds_each_and_ends_with_unmute_all(store: Store) -> None:
    store.add_mute(ALL, T0, T0 + timedelta(hours=1), None)
    store.add_mute("dos-ai", T0, T0 + timedelta(hours=2), None)
    muted_change(store, T0 + timedelta(minutes=1), 1, [URL])
    store.end_mutes("dos-ai", T0 + timedelta(minutes=2))  # its own ends; --all still holds
    assert store.close_mutes(T0 + timedelta(minutes=2), compose) == []
    assert [d.status for d in store.deliveries()[0]] == ["muted"]
    store.end_mutes(None, T0 + timedelta(minutes=3))
    assert len(store.close_mutes(T0 + timedelta(minutes=3), compose)) == 1


def test_a_redirect_never_sends_what_a_digest_or_a_mute_took_care_of(store: Store) -> None:
    store.add_mute("dos-ai", T0, T0 + timedelta(hours=1), None)
    first = muted_change(store, T0 + timedelta(minutes=1), 1, [URL, OTHER])
    # the muted delivery itself: not redirected (it goes with the mute's summary)
    assert store.redirect_delivery(first, [URL, OTHER], T0 + timedelta(minutes=2)) == []
    store.end_mutes("dos-ai", T0 + timedelta(minutes=3))
    made = store.close_mutes(T0 + timedelta(minutes=3), compose)
    assert len(made) == 2  # a summary for each URL
    # a summary: made for its URL alone, never sent elsewhere
    assert store.redirect_delivery(made[0], [URL, OTHER], T0 + timedelta(minutes=4)) == []
    rows, _ = store.deliveries()
    assert sorted(d.status for d in rows) == ["digested", "digested", "pending", "pending"]


def test_a_redirect_leaves_out_a_url_whose_digest_carries_the_alert(store: Store) -> None:
    with store.transaction() as tx:
        before = record_poll(tx, "dos-ai", T0, models("a"))
        after = record_poll(tx, "dos-ai", T0 + timedelta(seconds=1), models("a", "b"))
        change = tx.add_change(
            target="dos-ai",
            detected_at=T0,
            from_snapshot_id=before.id,
            to_snapshot_id=after.id,
            added=["b"],
            removed=[],
        )
        (at_once,) = tx.add_deliveries(change, [URL], title="t", body="b", now=T0)
        tx.add_deliveries(
            change, [OTHER], title="t", body="b", now=T0, held_until=T0 + timedelta(hours=1),
            summary={"added": 1},
        )  # fmt: skip
    (digest,) = store.close_digests(T0 + timedelta(hours=1), compose)
    third = ("c" * 64, "json://third.example.com/")
    steps = store.redirect_delivery(at_once, [third, OTHER], T0 + timedelta(hours=2))
    assert steps is not None
    assert [(s.url, s.action) for s in steps] == [
        (third[1], "new"),
        (OTHER[1], "with a digest or mute"),  # its digest has it: not a second time
    ]
    assert store.delivery(digest).status == "pending"
