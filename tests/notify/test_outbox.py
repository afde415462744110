"""The outbox (monitor/notify/outbox.py) on a real database: SQLite and PostgreSQL.

Alerts are queued with Transaction.add_deliveries, as a poll does, and sent by
:class:`Outbox` through a fake sender that records every call and fails for the
URLs it is told to. Time is a clock the tests move by hand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from builders import count_rows, models, record_poll
from fakes import T0, Clock, FakeSender, RefusingStore
from sqlalchemy import select
from structlog.testing import capture_logs

from monitor.errors import NotFoundError
from monitor.notify.message import Message
from monitor.notify.outbox import (
    Outbox,
    RetryPolicy,
    describe_unrecorded,
    url_hash,
    url_refs,
)
from monitor.store import Store, schema

TITLE = "dos-ai: 1 added"
BODY = "**Added (1):**\n- deepseek-v3\n\nTarget dos-ai, detected 2026-11-01 12:00 UTC."
HOOK_A = "json://hooks.example/a"
HOOK_B = "json://hooks.example/b"
HOOK_C = "json://hooks.example/c"
PASSWORD = "s3cretpassw0rd"
SECRET_URL = f"json://user:{PASSWORD}@127.0.0.1:9/"
TOKEN = "AAHs3cretBotT0ken42"
TELEGRAM_URL = f"tgram://123456789:{TOKEN}/987654"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


def queue_alert(store: Store, urls: Sequence[str], at: datetime = T0) -> list[int]:
    """What a poll that found a change writes: two snapshots, the change, its deliveries."""
    with store.transaction() as tx:
        before = record_poll(
            tx,
            "dos-ai",
            at - timedelta(minutes=1),
            models("dos-ai", "llama-3.3-70b"),
            duration_ms=5,
        )
        after = record_poll(
            tx, "dos-ai", at, models("dos-ai", "llama-3.3-70b", "deepseek-v3"), duration_ms=5
        )
        change = tx.add_change(
            target="dos-ai",
            detected_at=at,
            from_snapshot_id=before.id,
            to_snapshot_id=after.id,
            added=["deepseek-v3"],
            removed=[],
        )
        return tx.add_deliveries(change, url_refs(urls), title=TITLE, body=BODY, now=at)


# -- sending ------------------------------------------------------------------------


def test_an_alert_goes_to_every_url_and_each_is_recorded(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    ids = queue_alert(store, [HOOK_A, HOOK_B])
    pending = [store.delivery(i) for i in ids]
    assert [(d.status, d.attempts, d.sent_at) for d in pending] == [("pending", 0, None)] * 2
    clock.advance(seconds=2)

    outcomes = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock).deliver()

    assert sender.calls == [(HOOK_A, Message(TITLE, BODY)), (HOOK_B, Message(TITLE, BODY))]
    assert [(o.delivery.id, o.ok, o.error, o.dead) for o in outcomes] == [
        (ids[0], True, None, False),
        (ids[1], True, None, False),
    ]
    for delivery_id, url in zip(ids, [HOOK_A, HOOK_B], strict=True):
        d = store.delivery(delivery_id)
        assert (d.status, d.attempts, d.last_error, d.sent_at) == ("sent", 1, None, clock.now)
        assert (d.url, d.url_hash, d.target) == (url, url_hash(url), "dos-ai")
        assert d.event.startswith("change ")


def test_a_sent_alert_is_never_sent_again(store: Store, clock: Clock, sender: FakeSender) -> None:
    queue_alert(store, [HOOK_A])
    outbox = Outbox(store, sender, [HOOK_A], now=clock)
    assert [o.ok for o in outbox.deliver()] == [True]
    assert outbox.deliver() == []
    assert outbox.deliver(due_only=False) == []
    clock.advance(days=2)
    assert Outbox(store, sender, [HOOK_A], now=clock).deliver(due_only=False) == []
    assert sender.urls == [HOOK_A]


def test_deliver_with_ids_sends_only_those(store: Store, clock: Clock, sender: FakeSender) -> None:
    old = queue_alert(store, [HOOK_A])
    new = queue_alert(store, [HOOK_B, HOOK_C], at=T0 + timedelta(minutes=5))
    clock.advance(minutes=5)
    outbox = Outbox(store, sender, [HOOK_A, HOOK_B, HOOK_C], now=clock)
    assert [o.delivery.id for o in outbox.deliver(ids=new, due_only=False)] == new
    assert sender.urls == [HOOK_B, HOOK_C]
    assert store.delivery(old[0]).status == "pending"


def test_one_failing_url_does_not_stop_or_resend_the_others(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    a, b, c = queue_alert(store, [HOOK_A, HOOK_B, HOOK_C])
    sender.failing[HOOK_B] = "HTTP 503 from hooks.example"
    outbox = Outbox(store, sender, [HOOK_A, HOOK_B, HOOK_C], now=clock)

    outcomes = outbox.deliver()

    assert sender.urls == [HOOK_A, HOOK_B, HOOK_C]
    assert [(o.ok, o.error, o.dead) for o in outcomes] == [
        (True, None, False),
        (False, "HTTP 503 from hooks.example", False),
        (True, None, False),
    ]
    failed = store.delivery(b)
    assert (failed.status, failed.attempts, failed.sent_at) == ("pending", 1, None)
    assert failed.last_error == "HTTP 503 from hooks.example"
    assert failed.next_attempt_at == T0 + timedelta(seconds=30)
    assert [store.delivery(i).status for i in (a, c)] == ["sent", "sent"]

    del sender.failing[HOOK_B]
    clock.advance(seconds=30)
    assert [(o.delivery.id, o.ok) for o in outbox.deliver()] == [(b, True)]
    assert sender.urls == [HOOK_A, HOOK_B, HOOK_C, HOOK_B]
    done = store.delivery(b)
    assert (done.status, done.attempts, done.sent_at) == ("sent", 2, clock.now)
    assert done.last_error is None


# -- retries ------------------------------------------------------------------------


def test_a_failing_url_backs_off_from_30s_doubling_to_an_hour(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (delivery_id,) = queue_alert(store, [HOOK_A])
    sender.failing[HOOK_A] = "connection refused"
    outbox = Outbox(store, sender, [HOOK_A], now=clock)
    waits = []
    for attempt in range(1, 10):
        assert [o.ok for o in outbox.deliver()] == [False]
        d = store.delivery(delivery_id)
        assert (d.status, d.attempts) == ("pending", attempt)
        waits.append((d.next_attempt_at - clock.now).total_seconds())
        clock.now = d.next_attempt_at - timedelta(seconds=1)
        assert outbox.deliver() == []  # not due yet: not sent
        clock.advance(seconds=1)
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert len(sender.calls) == 9


def test_a_delivery_not_yet_due_is_sent_only_when_forced(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (delivery_id,) = queue_alert(store, [HOOK_A])
    sender.failing[HOOK_A] = "HTTP 502"
    outbox = Outbox(store, sender, [HOOK_A], now=clock)
    outbox.deliver()
    del sender.failing[HOOK_A]
    clock.advance(seconds=29)
    assert outbox.deliver() == []
    assert len(sender.calls) == 1
    assert [o.ok for o in outbox.deliver(due_only=False)] == [True]
    assert len(sender.calls) == 2
    assert store.delivery(delivery_id).status == "sent"


def test_after_max_attempts_the_delivery_is_dead_and_left_alone(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (delivery_id,) = queue_alert(store, [HOOK_A])
    sender.failing[HOOK_A] = "HTTP 410: webhook deleted"
    outbox = Outbox(store, sender, [HOOK_A], now=clock, policy=RetryPolicy(max_attempts=3))

    dead_flags = [o.dead for _ in range(3) for o in outbox.deliver(due_only=False)]

    assert dead_flags == [False, False, True]
    d = store.delivery(delivery_id)
    assert (d.status, d.attempts, d.sent_at) == ("dead", 3, None)
    assert d.last_error == "HTTP 410: webhook deleted"
    assert [x.id for x in store.deliveries(status="dead")[0]] == [delivery_id]
    clock.advance(days=1)
    del sender.failing[HOOK_A]
    assert outbox.deliver() == []
    assert outbox.deliver(due_only=False) == []
    assert len(sender.calls) == 3


def test_a_url_no_longer_configured_waits_and_goes_when_it_is_back(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    kept, removed = queue_alert(store, [HOOK_A, HOOK_B])
    outcomes = Outbox(store, sender, [HOOK_A], now=clock).deliver()
    assert sender.urls == [HOOK_A]
    gone = [o for o in outcomes if o.delivery.id == removed]
    assert [(o.ok, o.dead) for o in gone] == [(False, False)]
    d = store.delivery(removed)
    assert (d.status, d.attempts, d.sent_at) == ("pending", 0, None)  # no attempt counted
    assert d.last_error is not None and "no longer in the config" in d.last_error
    assert d.last_error.endswith("--to-current' sends it to the current ones")
    assert store.delivery(kept).status == "sent"
    # the config is fixed: the URL is back, and the alert goes out (once)
    back = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock)
    assert [o.ok for o in back.deliver(due_only=False)] == [True]
    assert back.deliver(due_only=False) == []
    assert sender.urls == [HOOK_A, HOOK_B]


def test_an_alert_whose_url_left_goes_to_the_current_urls(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (old,) = queue_alert(store, [HOOK_B])
    Outbox(store, sender, [HOOK_A], now=clock).deliver()
    clock.advance(minutes=5)
    steps = store.redirect_delivery(old, url_refs([HOOK_A, HOOK_C]), clock.now)
    assert steps is not None
    assert [(s.url, s.action) for s in steps] == [(HOOK_A, "new"), (HOOK_C, "new")]
    new_ids = [s.delivery_id for s in steps]
    outcomes = Outbox(store, sender, [HOOK_A, HOOK_C], now=clock).deliver(ids=new_ids)
    assert [o.ok for o in outcomes] == [True, True]
    assert sorted(sender.urls) == [HOOK_A, HOOK_C]
    replaced = store.delivery(old)
    assert replaced.status == "dead" and str(new_ids[0]) in (replaced.last_error or "")
    assert replaced.next_attempt_at == clock.now  # "gave up" then, not at its last try
    assert {store.delivery(i).title for i in new_ids} == {replaced.title}


def test_to_current_never_resends_to_a_url_that_got_the_alert(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    """Two URLs, one down: --to-current of the pending one must not go to the other."""
    a, b = queue_alert(store, [HOOK_A, HOOK_B])
    sender.failing[HOOK_B] = "HTTP 503"
    outbox = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock)
    outbox.deliver()
    del sender.failing[HOOK_B]
    clock.advance(seconds=5)

    steps = store.redirect_delivery(b, url_refs([HOOK_A, HOOK_B]), clock.now)

    assert steps is not None
    assert [(s.url, s.delivery_id, s.action) for s in steps] == [
        (HOOK_A, a, "already sent"),
        (HOOK_B, b, "reopened"),  # its own URL is still current: the same delivery
    ]
    assert steps[0].sent_at == T0
    outbox.deliver(ids=[s.delivery_id for s in steps if s.to_send], due_only=False)
    assert sender.urls == [HOOK_A, HOOK_B, HOOK_B]
    assert [store.delivery(i).status for i in (a, b)] == ["sent", "sent"]
    assert count_rows(store, schema.DeliveryRow) == 2


def test_to_current_reuses_an_unsent_delivery_instead_of_adding_a_second(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    a, b = queue_alert(store, [HOOK_A, HOOK_B])
    sender.failing[HOOK_A] = "HTTP 503"
    Outbox(store, sender, [HOOK_A, HOOK_C], now=clock).deliver()  # B left the config
    del sender.failing[HOOK_A]
    clock.advance(seconds=5)

    steps = store.redirect_delivery(b, url_refs([HOOK_A, HOOK_C]), clock.now)

    assert steps is not None
    (reused, added) = steps
    assert (reused.url, reused.delivery_id, reused.action) == (HOOK_A, a, "reopened")
    assert (added.url, added.action) == (HOOK_C, "new")
    d = store.delivery(a)
    assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 0, clock.now)
    assert count_rows(store, schema.DeliveryRow) == 3
    outbox = Outbox(store, sender, [HOOK_A, HOOK_C], now=clock)
    outbox.deliver(ids=[a, added.delivery_id], due_only=False)
    assert outbox.deliver(due_only=False) == []
    assert sender.urls == [HOOK_A, HOOK_A, HOOK_C]  # the failed try, then once each
    assert store.delivery(b).status == "dead"


def test_to_current_refuses_a_delivery_being_sent(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (b,) = queue_alert(store, [HOOK_B])
    outbox = Outbox(store, sender, [HOOK_B, HOOK_C], now=clock)
    answers = []
    sender.hooks[HOOK_B] = lambda: answers.append(
        store.redirect_delivery(b, url_refs([HOOK_C]), clock.now)
    )
    outbox.deliver()
    assert answers == [None]  # refused: it was being sent
    assert store.delivery(b).status == "sent"
    assert count_rows(store, schema.DeliveryRow) == 1
    assert outbox.deliver(due_only=False) == []
    assert sender.urls == [HOOK_B]


def test_to_current_leaves_a_current_urls_delivery_that_is_being_sent(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    a, b = queue_alert(store, [HOOK_A, HOOK_B])
    outbox = Outbox(store, sender, [HOOK_A], now=clock)  # B left the config
    answers = []
    sender.hooks[HOOK_A] = lambda: answers.append(
        store.redirect_delivery(b, url_refs([HOOK_A]), clock.now)
    )
    outbox.deliver(ids=[a])
    ((step,),) = answers
    assert (step.delivery_id, step.action, step.to_send) == (a, "being sent", False)
    assert outbox.deliver(due_only=False) == []
    assert sender.urls == [HOOK_A]
    assert count_rows(store, schema.DeliveryRow) == 2


def test_the_outbox_never_sends_an_alert_twice_to_one_url_whatever_made_the_rows(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    """A second delivery of the same event to the same URL (an old --to-current, say)
    is finished unsent once the first one went: at most one send per event and URL."""
    (first,) = queue_alert(store, [HOOK_A])
    with store.transaction() as tx:
        (change,) = [c for c in store.changes() if c.id == store.delivery(first).change_event_id]
        (second,) = tx.add_deliveries(change, url_refs([HOOK_A]), title=TITLE, body=BODY, now=T0)
    outbox = Outbox(store, sender, [HOOK_A], now=clock)

    outcomes = outbox.deliver()

    assert sender.urls == [HOOK_A]
    assert [(o.delivery.id, o.ok) for o in outcomes] == [(first, True), (second, False)]
    d = store.delivery(second)
    assert (d.status, d.attempts, d.sent_at) == ("dead", 0, None)
    assert d.last_error == f"not sent: this URL already got this alert (delivery {first})"
    assert store.sent_twin(d) == store.delivery(first)
    store.reopen_delivery(second, clock.now)
    assert [o.ok for o in outbox.deliver(due_only=False)] == [False]
    assert sender.urls == [HOOK_A]


def test_retry_by_hand_waits_for_a_send_in_flight(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (delivery_id,) = queue_alert(store, [HOOK_A])
    outbox = Outbox(store, sender, [HOOK_A], now=clock)
    reopened = []
    sender.hooks[HOOK_A] = lambda: reopened.append(store.reopen_delivery(delivery_id, clock.now))
    outbox.deliver()
    assert reopened == [False]  # it was being sent
    assert store.delivery(delivery_id).status == "sent"
    assert outbox.deliver(due_only=False) == []
    assert sender.urls == [HOOK_A]


def test_many_attempts_keep_backing_off_an_hour(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    """notify.max_attempts may be up to 1000; the 43rd failure must not break the outbox."""
    (delivery_id,) = queue_alert(store, [HOOK_A])
    lease = clock.now + RetryPolicy().lease
    assert [d.id for d in store.claim_deliveries(clock.now, lease)] == [delivery_id]
    store.finish_delivery(
        delivery_id,
        lease=lease,
        status="pending",
        attempts=42,
        error="HTTP 503",
        next_attempt_at=clock.now,
        sent_at=None,
    )
    sender.failing[HOOK_A] = "HTTP 503"
    outbox = Outbox(store, sender, [HOOK_A], now=clock, policy=RetryPolicy(max_attempts=1000))
    assert [(o.ok, o.dead) for o in outbox.deliver()] == [(False, False)]
    d = store.delivery(delivery_id)
    assert (d.status, d.attempts) == ("pending", 43)
    assert d.next_attempt_at == clock.now + timedelta(hours=1)


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [
        pytest.param(0, 30, id="0-none-yet"),
        pytest.param(1, 30, id="1-30s"),
        pytest.param(2, 60, id="2-1min"),
        pytest.param(3, 120, id="3-2min"),
        pytest.param(4, 240, id="4-4min"),
        pytest.param(5, 480, id="5-8min"),
        pytest.param(6, 960, id="6-16min"),
        pytest.param(7, 1920, id="7-32min"),
        pytest.param(8, 3600, id="8-capped-1h"),
        pytest.param(10, 3600, id="10-capped-1h"),
        pytest.param(43, 3600, id="43-capped-1h"),
        pytest.param(1000, 3600, id="1000-capped-1h"),
    ],
)
def test_backoff_doubles_from_30s_up_to_an_hour(attempts: int, seconds: int) -> None:
    assert RetryPolicy().backoff(attempts) == timedelta(seconds=seconds)


def test_backoff_follows_the_configured_policy() -> None:
    policy = RetryPolicy(initial=timedelta(seconds=10), maximum=timedelta(seconds=45))
    assert [policy.backoff(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 45, 45]


# -- leases: two senders -------------------------------------------------------------


def test_a_crashed_senders_delivery_waits_for_its_lease_then_goes_once(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (delivery_id,) = queue_alert(store, [HOOK_A])
    lease = RetryPolicy().lease
    # the first sender claimed it and died before sending or recording anything
    claimed = store.claim_deliveries(clock.now, clock.now + lease)
    assert [d.id for d in claimed] == [delivery_id]
    assert store.claim_deliveries(clock.now, clock.now + lease) == []

    second = Outbox(store, sender, [HOOK_A], now=clock)
    assert second.deliver() == []
    assert second.deliver(due_only=False) == []
    clock.now = T0 + lease  # the lease ends after this moment
    assert second.deliver(due_only=False) == []
    assert sender.calls == []

    clock.advance(seconds=1)
    assert [o.ok for o in second.deliver()] == [True]
    assert second.deliver(due_only=False) == []
    assert sender.urls == [HOOK_A]
    assert store.delivery(delivery_id).status == "sent"


def test_two_senders_at_once_send_each_alert_once(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    a, b = queue_alert(store, [HOOK_A, HOOK_B])
    first = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock)
    second = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock)
    # while the first sends A (having listed A and B), the second runs
    second_outcomes = []
    sender.hooks[HOOK_A] = lambda: second_outcomes.extend(second.deliver(due_only=False))

    first_outcomes = first.deliver()

    assert sorted(sender.urls) == [HOOK_A, HOOK_B]
    # whoever claimed a delivery sent it; nobody sent one twice
    assert sorted(o.delivery.id for o in first_outcomes + second_outcomes) == [a, b]
    assert [store.delivery(i).status for i in (a, b)] == ["sent", "sent"]


def test_a_sender_with_a_stale_list_does_not_resend_a_url_that_just_failed(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    """The first sender listed B before the second tried it; B must wait its backoff."""
    _, b = queue_alert(store, [HOOK_A, HOOK_B])
    sender.failing[HOOK_B] = "HTTP 503"
    first = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock)
    second = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock)
    sender.hooks[HOOK_A] = lambda: second.deliver()

    first.deliver()

    assert sender.urls.count(HOOK_B) == 1
    d = store.delivery(b)
    assert (d.status, d.attempts) == ("pending", 1)
    assert d.next_attempt_at == clock.now + timedelta(seconds=30)


def test_a_stalled_sender_cannot_undo_a_later_success(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    """A send outlives its lease; another sender sends it; the late failure is stale."""
    (delivery_id,) = queue_alert(store, [HOOK_A])
    policy = RetryPolicy()
    first = Outbox(store, sender, [HOOK_A], now=clock)
    second = Outbox(store, sender, [HOOK_A], now=clock)

    def stall() -> None:
        clock.advance(seconds=policy.lease.total_seconds() + 1)
        second.deliver()  # succeeds: the lease ran out
        sender.failing[HOOK_A] = "timed out"  # then the first sender's own send fails

    sender.hooks[HOOK_A] = stall
    first.deliver()

    assert sender.urls == [HOOK_A, HOOK_A]
    assert store.delivery(delivery_id).status == "sent"
    clock.advance(hours=2)
    del sender.failing[HOOK_A]
    first.deliver(due_only=False)
    assert sender.urls == [HOOK_A, HOOK_A]  # not a third time


# -- reopening ---------------------------------------------------------------------


def test_reopen_puts_a_dead_delivery_back_in_the_queue(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (delivery_id,) = queue_alert(store, [HOOK_A])
    sender.failing[HOOK_A] = "HTTP 404: no such hook"
    outbox = Outbox(store, sender, [HOOK_A], now=clock, policy=RetryPolicy(max_attempts=2))
    outbox.deliver(due_only=False)
    outbox.deliver(due_only=False)
    assert store.delivery(delivery_id).status == "dead"

    clock.advance(hours=3)
    store.reopen_delivery(delivery_id, clock.now)
    d = store.delivery(delivery_id)
    assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 0, clock.now)

    del sender.failing[HOOK_A]
    assert [o.ok for o in outbox.deliver()] == [True]
    d = store.delivery(delivery_id)
    assert (d.status, d.attempts, d.sent_at) == ("sent", 1, clock.now)
    assert len(sender.calls) == 3


def test_reopen_refuses_a_sent_delivery(store: Store, clock: Clock, sender: FakeSender) -> None:
    (delivery_id,) = queue_alert(store, [HOOK_A])
    outbox = Outbox(store, sender, [HOOK_A], now=clock)
    outbox.deliver()
    before = store.delivery(delivery_id)

    clock.advance(hours=1)
    store.reopen_delivery(delivery_id, clock.now)

    assert store.delivery(delivery_id) == before
    assert outbox.deliver(due_only=False) == []
    assert sender.urls == [HOOK_A]


# -- what is stored ------------------------------------------------------------------


def test_the_stored_url_never_holds_a_secret(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    ids = queue_alert(store, [SECRET_URL, TELEGRAM_URL])
    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.DeliveryRow.__table__)).all()
    stored = repr(rows)
    assert len(rows) == 2
    assert PASSWORD not in stored
    assert TOKEN not in stored
    assert store.delivery(ids[0]).url == "json://user:****@127.0.0.1:9/"
    assert store.delivery(ids[0]).url_hash == hashlib.sha256(SECRET_URL.encode()).hexdigest()

    Outbox(store, sender, [SECRET_URL, TELEGRAM_URL], now=clock).deliver()
    assert sender.urls == [SECRET_URL, TELEGRAM_URL]  # the real URL, from the config
    with store.engine.connect() as conn:
        stored = repr(conn.execute(select(schema.DeliveryRow.__table__)).all())
    assert PASSWORD not in stored
    assert TOKEN not in stored


def test_urls_alike_once_redacted_are_still_told_apart(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    other = SECRET_URL.replace(PASSWORD, "an0therpassw0rd")
    assert url_refs([SECRET_URL])[0][1] == url_refs([other])[0][1]
    assert url_hash(SECRET_URL) != url_hash(other)
    first, second = queue_alert(store, [SECRET_URL, other])
    sender.failing[other] = "HTTP 401"
    Outbox(store, sender, [other, SECRET_URL], now=clock).deliver()
    assert sender.urls == [SECRET_URL, other]
    assert [store.delivery(i).status for i in (first, second)] == ["sent", "pending"]


def test_deliveries_lists_newest_first_and_filters(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    a, b, c = queue_alert(store, [HOOK_A, HOOK_B, HOOK_C])
    sender.failing[HOOK_B] = "HTTP 500"
    Outbox(store, sender, [HOOK_A, HOOK_B, HOOK_C], now=clock).deliver()
    assert [d.id for d in store.deliveries()[0]] == [c, b, a]
    rows, total = store.deliveries(limit=2)
    assert ([d.id for d in rows], total) == ([c, b], 3)
    assert [d.id for d in store.deliveries(status="sent")[0]] == [c, a]
    assert [d.id for d in store.deliveries(status="pending")[0]] == [b]
    assert store.deliveries(status="dead") == ([], 0)
    assert store.deliveries(target="elsewhere") == ([], 0)
    # the next page: older than the last one shown, the total still of every match
    rows, total = store.deliveries(limit=2, before=b)
    assert ([d.id for d in rows], total) == ([a], 3)
    rows, total = store.deliveries(status="sent", limit=1, before=c)
    assert ([d.id for d in rows], total) == ([a], 2)
    with pytest.raises(NotFoundError, match="no delivery with id 4242"):
        store.delivery(4242)


def test_a_batch_outliving_its_lease_leaves_what_another_sender_took(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    """The first sender claimed both; its first send stalls past the lease; a second
    sender sends the other one meanwhile; the first must not send that one again."""
    a, b = queue_alert(store, [HOOK_A, HOOK_B])
    first = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock)
    second = Outbox(store, sender, [HOOK_A, HOOK_B], now=clock)
    taken: list[int] = []

    def stall() -> None:
        clock.advance(seconds=RetryPolicy().lease.total_seconds() + 1)
        taken.extend(o.delivery.id for o in second.deliver())

    sender.hooks[HOOK_A] = stall
    first.deliver()
    assert b in taken
    # A's own send outlived its lease: that one may go twice (the documented window);
    # B, which the first sender had claimed but not started, goes once
    assert sender.urls.count(HOOK_B) == 1
    assert [store.delivery(i).status for i in (a, b)] == ["sent", "sent"]


# -- a database that refuses the outcome's write ------------------------------------


def test_a_send_the_database_did_not_record_is_written_first_and_never_sent_again(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    a, b = queue_alert(store, [HOOK_A, HOOK_B])
    refusing = RefusingStore(store)
    refusing.refuse = 1
    outbox = Outbox(refusing, sender, [HOOK_A, HOOK_B], now=clock)  # type: ignore[arg-type]

    with capture_logs() as logs:
        outcomes = outbox.deliver()

    assert sender.urls == [HOOK_A]  # B waits: nothing more until A's outcome is written
    assert [(o.delivery.id, o.ok, o.recorded) for o in outcomes] == [(a, True, False)]
    assert [u.delivery.id for u in outbox.unrecorded] == [a]
    (error,) = [e for e in logs if e["log_level"] == "error"]
    assert error["event"] == (
        "alert sent, but the database did not record it yet; retrying the write"
    )
    assert (error["delivery_id"], error["url"], error["error"]) == (a, HOOK_A, refusing.ERROR)
    assert not any(e["event"] == "alert sent" for e in logs)

    # the lease runs out while the database still refuses: nothing is claimed or sent
    refusing.down = True
    clock.advance(minutes=3)
    assert outbox.deliver(due_only=False) == []
    assert sender.urls == [HOOK_A]

    refusing.down = False
    with capture_logs() as logs:
        outcomes = outbox.deliver(due_only=False)
    assert [o.delivery.id for o in outcomes] == [b]
    assert sender.urls == [HOOK_A, HOOK_B]  # A not again
    d = store.delivery(a)
    assert (d.status, d.attempts, d.sent_at) == ("sent", 1, T0)  # when it really went
    assert outbox.unrecorded == []
    assert any(e["event"] == "alert outcome recorded after all" for e in logs)
    assert Outbox(store, sender, [HOOK_A, HOOK_B], now=clock).deliver(due_only=False) == []
    assert sender.urls == [HOOK_A, HOOK_B]


def test_a_failed_send_the_database_did_not_record_keeps_its_count_and_backoff(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (a,) = queue_alert(store, [HOOK_A])
    refusing = RefusingStore(store)
    refusing.refuse = 1
    sender.failing[HOOK_A] = "HTTP 503"
    outbox = Outbox(refusing, sender, [HOOK_A], now=clock)  # type: ignore[arg-type]
    with capture_logs() as logs:
        assert [(o.ok, o.recorded) for o in outbox.deliver()] == [(False, False)]
    assert any(
        e["event"].startswith("alert failed, and the database did not record it yet") for e in logs
    )
    clock.advance(seconds=10)
    assert outbox.deliver() == []  # written first; not due for 30 s from the try
    d = store.delivery(a)
    assert (d.status, d.attempts, d.last_error) == ("pending", 1, "HTTP 503")
    assert d.next_attempt_at == T0 + timedelta(seconds=30)
    assert sender.urls == [HOOK_A]


def test_settle_retries_the_write_until_the_database_takes_it(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (a,) = queue_alert(store, [HOOK_A])
    refusing = RefusingStore(store)
    refusing.refuse = 6
    outbox = Outbox(refusing, sender, [HOOK_A], now=clock)  # type: ignore[arg-type]
    outbox.deliver()
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(seconds=seconds)

    assert outbox.settle(sleep=sleep) == []
    assert naps == [1.0] * 5  # the sixth refusal was the send's own write
    assert store.delivery(a).status == "sent"
    assert sender.urls == [HOOK_A]


def test_settle_gives_up_when_the_lease_runs_out_and_says_the_alert_was_sent(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    (a,) = queue_alert(store, [SECRET_URL])
    refusing = RefusingStore(store)
    refusing.refuse = 1000
    outbox = Outbox(refusing, sender, [SECRET_URL], now=clock)  # type: ignore[arg-type]
    outbox.deliver()
    lease_end = T0 + RetryPolicy().lease

    left = outbox.settle(sleep=lambda s: clock.advance(seconds=s))

    assert clock.now == lease_end  # no longer: after it, another sender may have it
    assert [u.delivery.id for u in left] == [a]
    line = describe_unrecorded(left)
    assert line == (
        f"the alert of delivery {a} to json://user:****@127.0.0.1:9/ WAS sent, but the "
        f"database did not record it ({refusing.ERROR}); it may be sent again once the "
        "lease ends at 2026-11-01T12:02:00Z"
    )
    assert PASSWORD not in line
    assert outbox.settle(timeout=0) == left  # bounded by the caller too


def test_an_outcome_written_after_its_lease_yields_to_the_sender_that_took_over(
    store: Store, clock: Clock, sender: FakeSender
) -> None:
    """The documented window: the database refused the write for longer than the lease,
    and another sender sent it meanwhile. The late write does not undo that."""
    (a,) = queue_alert(store, [HOOK_A])
    refusing = RefusingStore(store)
    refusing.refuse = 1
    first = Outbox(refusing, sender, [HOOK_A], now=clock)  # type: ignore[arg-type]
    first.deliver()
    clock.advance(seconds=RetryPolicy().lease.total_seconds() - 1)
    assert Outbox(store, sender, [HOOK_A], now=clock).deliver(due_only=False) == []
    clock.advance(seconds=2)
    assert [o.ok for o in Outbox(store, sender, [HOOK_A], now=clock).deliver()] == [True]
    with capture_logs() as logs:
        assert first.flush()
    assert any(e["event"].startswith("alert outcome dropped") for e in logs)
    d = store.delivery(a)
    assert (d.status, d.sent_at) == ("sent", clock.now)
    assert sender.urls == [HOOK_A, HOOK_A]
