"""The outbox: alerts are written to the database with the poll that found them,
and sent from there, one notification URL at a time, until each one has gone.

A URL that fails is retried with a backoff (30 s doubling to 1 h by default);
after ``max_attempts`` failures its delivery is marked dead. A URL that
succeeded is never sent the same alert again. A sender claims a delivery with
a lease before sending, so two senders never send the same one, and a sender
that dies mid-send only delays it until the lease runs out.

The one window that can still produce a duplicate: killed after apprise
returned success and before the success was written (a few milliseconds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from monitor.errors import StorageError
from monitor.notify.message import Message
from monitor.notify.send import Sender, redact_url
from monitor.store import DeliveryRecord, Store

log = structlog.get_logger("monitor.outbox")


def url_hash(url: str) -> str:
    """How a stored delivery names its URL without storing the URL's secrets."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def url_refs(urls: Iterable[str]) -> list[tuple[str, str]]:
    """``(hash, redacted)`` pairs for :meth:`Transaction.add_deliveries`."""
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


class Outbox:
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
        self._urls: Mapping[str, str] = {url_hash(u): u for u in urls}
        self._now = now
        self.policy = policy or RetryPolicy()

    def deliver(self, *, ids: Sequence[int] | None = None, due_only: bool = True) -> list[Outcome]:
        """Send pending deliveries (all of them, only those due, or only ``ids``)."""
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
                # the batch's lease was taken before the earlier sends: renew it, and
                # leave the delivery if it ran out (another sender may have it now)
                fresh = self._now() + self.policy.lease
                if not self._store.renew_lease(delivery.id, lease, fresh):
                    continue
                outcomes.append(self._send(delivery, fresh))
            if len(batch) < BATCH:
                return outcomes
            after_id = batch[-1].id

    def _send(self, delivery: DeliveryRecord, lease: datetime) -> Outcome:
        context = {
            "delivery_id": delivery.id,
            "target": delivery.target,
            "about": delivery.event,
            "url": delivery.url,
        }
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
            self._finish(delivery, lease, ok=True, error=None, dead=False)
            log.info("alert sent", **context, attempts=attempts, duration_ms=result.duration_ms)
            return Outcome(delivery, True, None, False)
        dead = attempts >= self.policy.max_attempts
        self._finish(delivery, lease, ok=False, error=result.error, dead=dead)
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
        return Outcome(delivery, False, result.error, dead)

    def _finish(
        self,
        delivery: DeliveryRecord,
        lease: datetime,
        *,
        ok: bool,
        error: str | None,
        dead: bool,
    ) -> None:
        now = self._now()
        attempts = delivery.attempts + 1
        recorded = self._store.finish_delivery(
            delivery.id,
            lease=lease,
            status="sent" if ok else "dead" if dead else "pending",
            attempts=attempts,
            error=error,
            next_attempt_at=now if ok or dead else now + self.policy.backoff(attempts),
            sent_at=now if ok else None,
        )
        if not recorded:  # our lease ran out mid-send and another sender took over
            log.warning(
                "outcome of a send that outlived its lease dropped", delivery_id=delivery.id
            )
