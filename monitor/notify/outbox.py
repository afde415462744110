"""The outbox: alerts are written to the database with the poll that found them,
and sent from there, one notification URL at a time, until each one has gone.

A URL that fails is retried with a backoff (30 s doubling to 1 h by default);
after ``max_attempts`` failures its delivery is marked dead. A URL that
succeeded is never sent the same alert again: not by this delivery, nor by
another delivery of the same event to the same URL. A sender claims a delivery
with a lease (two minutes) before sending, so two senders never send the same
one, and a sender that dies mid-send only delays it until the lease runs out.

What can still produce a duplicate, and how long:

- Killed after apprise returned success and before the success was written (a
  single-row update, normally milliseconds; on a busy SQLite database up to its
  30 s busy timeout): the delivery is sent again once its lease has run out.
- The database refuses that write (gone, disk full): the outcome is kept in
  this :class:`Outbox` (:attr:`Outbox.unrecorded`), logged at error, and
  written before this outbox claims or sends anything else (:meth:`flush`, at
  the start of every :meth:`deliver`; :meth:`settle` retries it until the
  lease runs out). The lease keeps every other sender off the delivery
  meanwhile. Only when it is still unwritten after the lease has run out can
  another sender that reaches the database (a replica, the next ``monitor
  check``) claim and send it again; then the late write finds the lease taken
  and is dropped, with a warning.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from monitor.config import Config, RetrySettings
from monitor.errors import StorageError
from monitor.notify.message import Message, digest_message, mute_summary
from monitor.notify.send import Sender, redact_url
from monitor.store import DeliveryRecord, Store

log = structlog.get_logger("monitor.outbox")


def url_hash(url: str) -> str:
    """How a stored delivery names its URL without storing the URL's secrets."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def url_refs(urls: Iterable[str]) -> list[tuple[str, str]]:
    """``(hash, redacted)`` pairs for :meth:`Transaction.add_deliveries` (apprise
    parses each URL: :meth:`Outbox.refs` keeps the configured ones parsed)."""
    return [(url_hash(u), redact_url(u)) for u in urls]


URL_GONE = (
    "this notification URL is no longer in the config; "
    "'monitor deliveries retry ID --to-current' sends it to the current ones"
)
BATCH = 20  # deliveries claimed at a time: a lease must not outlive its batch's sends


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    initial: timedelta = timedelta(seconds=30)
    maximum: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=2)  # longer than any one send

    @classmethod
    def from_settings(cls, settings: RetrySettings) -> RetryPolicy:
        """The policy of a config's ``[notify]`` retry settings."""
        return cls(
            max_attempts=settings.max_attempts,
            initial=timedelta(seconds=settings.retry_initial),
            maximum=timedelta(seconds=settings.retry_max),
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failure: initial, doubling, capped."""
        doublings = min(max(0, attempts - 1), 40)  # 2**40 times anything is past any cap
        delay: timedelta = self.initial * (2**doublings)
        return min(self.maximum, delay)


@dataclass(frozen=True)
class Outcome:
    delivery: DeliveryRecord
    ok: bool
    error: str | None
    dead: bool
    recorded: bool = True  # False: the database did not take the outcome yet (kept)


@dataclass(frozen=True)
class Unrecorded:
    """The outcome of a send the database did not take yet: written by :meth:`Outbox.flush`."""

    delivery: DeliveryRecord
    lease: datetime  # the lease it was sent under: the write holds only while it is ours
    status: str  # "sent", "pending" (retried) or "dead"
    attempts: int
    error: str | None  # the send's error (None when it went)
    next_attempt_at: datetime
    sent_at: datetime | None
    db_error: str  # why the database refused the write, last time

    @property
    def ok(self) -> bool:
        """The send went through."""
        return self.status == "sent"


class Outbox:
    """Sends deliveries; thread-safe, so one outbox serves every job of the daemon and
    keeps the outcomes the database has not taken yet across config reloads."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        urls: Sequence[str],
        *,
        now: Callable[[], datetime],
        policy: RetryPolicy | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._now = now
        self._urls: Mapping[str, str] = {}
        self._refs: Mapping[str, tuple[str, str]] = {}
        self.policy = policy or RetryPolicy()
        self.configure(urls, self.policy)
        self._held: dict[int, Unrecorded] = {}  # by delivery id, under _lock
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one writer of held outcomes at a time

    @classmethod
    def for_config(
        cls, config: Config, store: Store, sender: Sender, *, now: Callable[[], datetime]
    ) -> Outbox:
        """The outbox of a process: every URL of the config, its retry settings."""
        return cls(
            store,
            sender,
            config.all_urls(),
            now=now,
            policy=RetryPolicy.from_settings(config.retry),
        )

    def configure(self, urls: Sequence[str], policy: RetryPolicy) -> None:
        """The URLs and policy of a reloaded config; outcomes not recorded yet stay."""
        self._urls = {url_hash(u): u for u in urls}
        self._refs = dict(zip(urls, url_refs(urls), strict=True))
        self.policy = policy

    def refs(self, urls: Sequence[str]) -> list[tuple[str, str]]:
        """:func:`url_refs` of ``urls``; those of the config parsed once, at configure."""
        known = self._refs
        return [known.get(u) or (url_hash(u), redact_url(u)) for u in urls]

    def reload(self, config: Config) -> None:
        """Switch to a reloaded config's URLs and retry settings."""
        self.configure(config.all_urls(), RetryPolicy.from_settings(config.retry))

    @property
    def unrecorded(self) -> list[Unrecorded]:
        """Outcomes of sends the database has not taken yet, oldest first."""
        with self._lock:
            return sorted(self._held.values(), key=lambda u: u.delivery.id)

    def release(self) -> list[int]:
        """Digests whose window has ended, and what ended mutes held back, made into
        deliveries (sent by the next :meth:`deliver`, or by this one when it called
        this); their ids. A database error is logged, and they wait for the next call."""
        now = self._now()
        made: list[int] = []
        try:
            if self._store.digests_due(now):
                made += self._store.close_digests(now, digest_message)
                log.info("digests made", delivery_ids=made)
            if self._store.mutes_due(now):
                released = self._store.close_mutes(now, mute_summary)
                log.info("mutes ended; what they held back is sent", delivery_ids=released)
                made += released
        except StorageError as exc:
            log.error("digests or mute summaries not made", error=str(exc))
        return made

    def deliver(self, *, ids: Sequence[int] | None = None, due_only: bool = True) -> list[Outcome]:
        """Send pending deliveries (all of them, only those due, or only ``ids``).

        Nothing is claimed or sent while an earlier outcome is not recorded yet (it
        is written first, when the database takes it); a database error stops the
        call, logged, and never reaches the caller."""
        if not self.flush():
            log.debug("outbox waits: an earlier outcome is not recorded yet")
            return []
        if ids is None:
            self.release()
        outcomes: list[Outcome] = []
        after_id = 0  # each delivery at most once per call, even one that failed just now
        while True:
            now = self._now()
            lease = now + self.policy.lease
            try:
                batch = self._store.claim_deliveries(
                    now, lease, ids=ids, due_only=due_only, after_id=after_id, limit=BATCH
                )
            except StorageError as exc:
                log.error("outbox not read", error=str(exc))
                return outcomes
            for delivery in batch:
                if self._has_held():  # another thread's outcome waits for the database
                    return outcomes
                try:
                    # the batch's lease was taken before the earlier sends: renew it, and
                    # leave the delivery if it ran out (another sender may have it now)
                    fresh = self._now() + self.policy.lease
                    if not self._store.renew_lease(delivery.id, lease, fresh):
                        continue
                    outcome = self._send(delivery, fresh)
                except StorageError as exc:  # nothing sent: it waits for its lease to end
                    log.error("outbox stopped", delivery_id=delivery.id, error=str(exc))
                    return outcomes
                outcomes.append(outcome)
                if not outcome.recorded:
                    return outcomes
            if len(batch) < BATCH:
                return outcomes
            after_id = batch[-1].id

    def flush(self) -> bool:
        """Write the outcomes the database did not take before; True when none is left."""
        with self._flushing:
            for held in self.unrecorded:
                try:
                    recorded = self._write(held)
                except StorageError as exc:
                    with self._lock:
                        self._held[held.delivery.id] = _with_db_error(held, str(exc))
                    log.debug(
                        "outcome still not recorded", delivery_id=held.delivery.id, error=str(exc)
                    )
                    return False
                with self._lock:
                    del self._held[held.delivery.id]
                context = _context(held.delivery)
                if recorded:
                    log.info(
                        "alert outcome recorded after all",
                        **context,
                        status=held.status,
                        lease_until=held.lease.isoformat(),
                    )
                else:  # the lease ran out first and another sender took the delivery
                    log.warning(
                        "alert outcome dropped: its lease ran out before the database took it, "
                        "and another sender took the delivery (it may have sent it again)",
                        **context,
                        sent=held.ok,
                    )
            return True

    def settle(
        self, *, timeout: float | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> list[Unrecorded]:
        """Retry writing the held outcomes, once a second, until all are written, the
        first of their leases runs out (after that another sender may have it, and
        waiting longer keeps nothing off it), or ``timeout`` seconds; what is left."""
        waited = 0.0
        while not self.flush():
            left = self.unrecorded
            until = min(u.lease for u in left)
            pause = min(1.0, (until - self._now()).total_seconds())
            if timeout is not None:
                pause = min(pause, timeout - waited)
            if pause <= 0:
                return left
            sleep(pause)
            waited += pause
        return []

    def _has_held(self) -> bool:
        with self._lock:
            return bool(self._held)

    def _send(self, delivery: DeliveryRecord, lease: datetime) -> Outcome:
        context = _context(delivery)
        url = self._urls.get(delivery.url_hash)
        if url is None:
            # kept, not counted: the URL may come back (a config being fixed), or
            # `monitor deliveries retry ID --to-current` sends it to today's URLs
            error = URL_GONE
            self._store.finish_delivery(
                delivery.id,
                lease=lease,
                status="pending",
                attempts=delivery.attempts,
                error=error,
                next_attempt_at=self._now() + self.policy.maximum,
                sent_at=None,
            )
            log.error("alert waiting: its URL is no longer in the config", **context)
            return Outcome(delivery, False, error, False)
        twin = self._store.sent_twin(delivery)
        if twin is not None:
            # at most one send of an event to one URL, whatever made the rows (an old
            # `--to-current`, a retry by hand of a delivery another one replaced)
            error = f"not sent: this URL already got this alert (delivery {twin.id})"
            self._store.finish_delivery(
                delivery.id,
                lease=lease,
                status="dead",
                attempts=delivery.attempts,
                error=error,
                next_attempt_at=self._now(),
                sent_at=None,
            )
            log.warning("alert not sent: this URL already got it", **context, sent_as=twin.id)
            return Outcome(delivery, False, error, True)
        result = self._sender.send(url, Message(delivery.title, delivery.body))
        attempts = delivery.attempts + 1
        if result.ok:
            recorded = self._finish(delivery, lease, ok=True, error=None, dead=False)
            if recorded:
                log.info("alert sent", **context, attempts=attempts, duration_ms=result.duration_ms)
            return Outcome(delivery, True, None, False, recorded)
        dead = attempts >= self.policy.max_attempts
        recorded = self._finish(delivery, lease, ok=False, error=result.error, dead=dead)
        if dead:
            log.error("alert given up", **context, attempts=attempts, error=result.error)
        else:
            log.warning(
                "alert failed; will retry",
                **context,
                attempts=attempts,
                error=result.error,
                retry_in_s=self.policy.backoff(attempts).total_seconds(),
            )
        return Outcome(delivery, False, result.error, dead, recorded)

    def _finish(
        self,
        delivery: DeliveryRecord,
        lease: datetime,
        *,
        ok: bool,
        error: str | None,
        dead: bool,
    ) -> bool:
        """Record how a send went; False when the database refused (the outcome is
        kept, and written before this outbox claims or sends anything else)."""
        now = self._now()
        attempts = delivery.attempts + 1
        outcome = Unrecorded(
            delivery=delivery,
            lease=lease,
            status="sent" if ok else "dead" if dead else "pending",
            attempts=attempts,
            error=error,
            next_attempt_at=now if ok or dead else now + self.policy.backoff(attempts),
            sent_at=now if ok else None,
            db_error="",
        )
        try:
            recorded = self._write(outcome)
        except StorageError as exc:
            with self._lock:
                self._held[delivery.id] = _with_db_error(outcome, str(exc))
            log.error(
                "alert sent, but the database did not record it yet; retrying the write"
                if ok
                else "alert failed, and the database did not record it yet; retrying the write",
                **_context(delivery),
                error=str(exc),
                lease_until=lease.isoformat(),
            )
            return False
        if not recorded:  # our lease ran out mid-send and another sender took over
            log.warning(
                "outcome of a send that outlived its lease dropped", delivery_id=delivery.id
            )
        return True

    def _write(self, outcome: Unrecorded) -> bool:
        return self._store.finish_delivery(
            outcome.delivery.id,
            lease=outcome.lease,
            status=outcome.status,
            attempts=outcome.attempts,
            error=outcome.error,
            next_attempt_at=outcome.next_attempt_at,
            sent_at=outcome.sent_at,
        )


def describe_unrecorded(held: Sequence[Unrecorded]) -> str:
    """One line for a process that ends with sent alerts the database has not recorded."""
    sent = [u for u in held if u.ok]
    if not sent:
        return ""
    which = ", ".join(f"{u.delivery.id} to {u.delivery.url}" for u in sent)
    lease = min(u.lease for u in sent).strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(sent) == 1:
        what, it = f"the alert of delivery {which} WAS sent", "it"
    else:
        what, it = f"the alerts of deliveries {which} WERE sent", "they"
    return (
        f"{what}, but the database did not record {it} ({sent[-1].db_error}); "
        f"{it} may be sent again once the lease ends at {lease}"
    )


def _context(delivery: DeliveryRecord) -> dict[str, object]:
    return {
        "delivery_id": delivery.id,
        "target": delivery.target,
        "about": delivery.event,
        "url": delivery.url,
    }


def _with_db_error(outcome: Unrecorded, error: str) -> Unrecorded:
    return replace(outcome, db_error=error)
