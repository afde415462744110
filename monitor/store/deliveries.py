"""The outbox queue: deliveries (one alert to one notification URL) waiting to be
sent, claimed under a lease, finished, reopened or redirected. Each operation is
its own short write transaction; at most one send of an event to one URL."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from monitor.errors import NotFoundError
from monitor.store import schema
from monitor.store.locks import lock_key
from monitor.store.records import DeliveryRecord, Redirected, being_sent
from monitor.store.rows import delivery_record
from monitor.store.sql import Sessions

DIGEST_TARGET = "(digest)"  # a digest's target column: any number of targets, no name

# what makes a digest's title and body of the deliveries it takes in, with their summaries
Compose = Callable[[Sequence[tuple[DeliveryRecord, Mapping[str, int]]], datetime], tuple[str, str]]


class DeliveryQueue(Sessions):
    """Reading and moving deliveries through pending → sent or dead."""

    def deliveries(
        self,
        *,
        status: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> tuple[list[DeliveryRecord], int]:
        """Deliveries, newest first, and how many match in all (``limit`` and ``before``
        aside); ``before``: only those older than the delivery with this id (the next
        page)."""
        where = []
        if status is not None:
            where.append(schema.DeliveryRow.status == status)
        if target is not None:
            where.append(schema.DeliveryRow.target == target)
        if since is not None:
            where.append(schema.DeliveryRow.created_at >= since)
        query = select(schema.DeliveryRow).where(*where).order_by(schema.DeliveryRow.id.desc())
        if before is not None:
            query = query.where(schema.DeliveryRow.id < before)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as session:
            rows = [delivery_record(row) for row in session.scalars(query)]
            total = len(rows)
            if before is not None or (limit is not None and total == limit):
                total = int(
                    session.scalar(
                        select(func.count()).select_from(schema.DeliveryRow).where(*where)
                    )
                    or 0
                )
            return rows, total

    def delivery(self, delivery_id: int) -> DeliveryRecord:
        return self._get(schema.DeliveryRow, delivery_id, "delivery", delivery_record)

    def claim_deliveries(
        self,
        now: datetime,
        lease_until: datetime,
        *,
        ids: Sequence[int] | None = None,
        due_only: bool = True,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        """Take pending deliveries for sending, oldest first, leasing them until
        ``lease_until``: those leased by another sender are left alone, and on
        PostgreSQL rows another transaction is claiming are skipped (``FOR UPDATE
        SKIP LOCKED``), so two senders never hold the same delivery."""
        query = select(schema.DeliveryRow).where(
            schema.DeliveryRow.status == "pending",
            or_(schema.DeliveryRow.lease_until.is_(None), schema.DeliveryRow.lease_until < now),
            schema.DeliveryRow.id > after_id,
        )
        if due_only:
            query = query.where(schema.DeliveryRow.next_attempt_at <= now)
        if ids is not None:
            query = query.where(schema.DeliveryRow.id.in_(list(ids)))
        query = query.order_by(schema.DeliveryRow.id).limit(limit)
        with self._write() as session:
            rows = list(session.scalars(query.with_for_update(skip_locked=True)))
            for row in rows:
                row.lease_until = lease_until
            session.flush()
            return [delivery_record(row) for row in rows]

    def renew_lease(self, delivery_id: int, held: datetime, until: datetime) -> bool:
        """Extend a lease this sender still holds; False when it ran out and another
        sender may have the delivery (then this one must not send it)."""
        with self._write() as session:
            result = session.execute(
                update(schema.DeliveryRow)
                .where(
                    schema.DeliveryRow.id == delivery_id,
                    schema.DeliveryRow.lease_until == held,
                    schema.DeliveryRow.status == "pending",
                )
                .values(lease_until=until)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        lease: datetime,
        status: str,
        attempts: int,
        error: str | None,
        next_attempt_at: datetime,
        sent_at: datetime | None,
    ) -> bool:
        """Record how a send went and release the lease; False (nothing written) when
        the lease was lost meanwhile, so a stale outcome never undoes a newer one."""
        with self._write() as session:
            result = session.execute(
                update(schema.DeliveryRow)
                .where(
                    schema.DeliveryRow.id == delivery_id, schema.DeliveryRow.lease_until == lease
                )
                .values(
                    status=status,
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=next_attempt_at,
                    sent_at=sent_at,
                    lease_until=None,
                )
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def reopen_delivery(self, delivery_id: int, now: datetime) -> bool:
        """Put a pending or dead delivery back in the queue, due now, with a fresh count;
        False (nothing changed) when it was sent, is being sent right now, or goes (or
        went) with a digest."""
        with self._write() as session:
            result = session.execute(
                update(schema.DeliveryRow)
                .where(
                    schema.DeliveryRow.id == delivery_id,
                    schema.DeliveryRow.status.in_(("pending", "dead")),
                    or_(
                        schema.DeliveryRow.lease_until.is_(None),
                        schema.DeliveryRow.lease_until < now,
                    ),
                )
                .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def redirect_delivery(
        self, delivery_id: int, urls: Sequence[tuple[str, str]], now: datetime
    ) -> list[Redirected] | None:
        """Queue a delivery's alert to the current URLs (``(hash, redacted)`` pairs),
        for an alert whose URL left the config; None (nothing changed) while it is
        being sent, ``[]`` when it was sent.

        At most one send of an event to one URL: a URL that already has a sent
        delivery of this event is left out; an unsent one (this delivery, when its own
        URL is still current, or another) is reopened, due now, rather than doubled;
        only a URL with none gets a new delivery. This delivery, when its URL is no
        longer current, is closed as dead (given up now), naming what replaced it.
        """
        row_type = schema.DeliveryRow
        with self._write() as session:
            row = session.get(row_type, delivery_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no delivery with id {delivery_id}")
            if row.status in _NOT_ALONE or row.status == "sent":
                return []  # sent, or goes (went) with a digest or a mute's summary
            if row.change_event_id is None and row.target_event_id is None:
                return []  # a digest or summary: other URLs had theirs
            if _being_sent(row, now):
                return None
            kin = list(
                session.scalars(
                    select(row_type).where(_same_event(row)).order_by(row_type.id).with_for_update()
                )
            )
            current = dict(urls)
            steps: list[Redirected] = []
            for url_hash, shown in current.items():
                mine = sorted(
                    (d for d in kin if d.url_hash == url_hash), key=lambda d: d.id != row.id
                )
                sent = next((d for d in mine if d.status == "sent"), None)
                taken = next((d for d in mine if d.status in _NOT_ALONE), None)
                if sent is not None:
                    steps.append(Redirected(shown, sent.id, "already sent", sent.sent_at))
                elif taken is not None:  # it goes, or went, with a digest or summary
                    steps.append(Redirected(shown, taken.id, "with a digest or mute"))
                elif mine and _being_sent(mine[0], now):
                    steps.append(Redirected(shown, mine[0].id, "being sent"))
                elif mine:
                    _reopen(mine[0], now)
                    steps.append(Redirected(shown, mine[0].id, "reopened"))
                else:
                    (new_id,) = queue(
                        session,
                        target=row.target,
                        urls=[(url_hash, shown)],
                        title=row.title,
                        body=row.body,
                        now=now,
                        change_event_id=row.change_event_id,
                        target_event_id=row.target_event_id,
                    )
                    steps.append(Redirected(shown, new_id, "new"))
            if row.url_hash not in current:
                ids = ", ".join(str(s.delivery_id) for s in steps)
                row.status = "dead"
                row.lease_until = None
                row.next_attempt_at = now
                row.last_error = (
                    f"sent instead to the current URLs: deliveries {ids}"
                    if any(s.to_send for s in steps)
                    else f"not sent again: the current URLs have it already (deliveries {ids})"
                )
            return steps

    def sent_twin(self, delivery: DeliveryRecord) -> DeliveryRecord | None:
        """Another delivery of the same event to the same URL that was sent already:
        then this one must not be (at most one send of an event to one URL)."""
        row_type = schema.DeliveryRow
        query = (
            select(row_type)
            .where(
                _same_event(delivery),
                row_type.url_hash == delivery.url_hash,
                row_type.status == "sent",
                row_type.id != delivery.id,
            )
            .order_by(row_type.id)
            .limit(1)
        )
        with self._read() as session:
            row = session.scalars(query).first()
            return delivery_record(row) if row is not None else None

    def digests_due(self, now: datetime) -> bool:
        """Whether a held delivery's digest window has ended (one index lookup)."""
        row = schema.DeliveryRow
        query = select(row.id).where(row.status == "held", row.next_attempt_at <= now).limit(1)
        with self._read() as session:
            return session.scalar(query) is not None

    def close_digests(self, now: datetime, compose: Compose) -> list[int]:
        """Every held delivery whose digest window has ended, taken into one pending
        digest delivery per URL and window (``compose`` writes its title and body), in
        one transaction: each held delivery is in exactly one digest, even with
        replicas closing digests at once; the new deliveries' ids."""
        row = schema.DeliveryRow
        query = (
            select(row)
            .where(row.status == "held", row.next_attempt_at <= now)
            .order_by(row.url_hash, row.next_attempt_at, row.id)
        )
        with self._write() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(lock_key("digests"))))
            groups: dict[tuple[str, datetime], list[schema.DeliveryRow]] = {}
            for held in session.scalars(query.with_for_update()):
                groups.setdefault((held.url_hash, held.next_attempt_at), []).append(held)
            return [
                take_in(session, rows, compose, now, window_end)
                for (_, window_end), rows in groups.items()
            ]

    def count_pending(self) -> int:
        with self._read() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(schema.DeliveryRow)
                    .where(schema.DeliveryRow.status == "pending")
                )
                or 0
            )


def take_in(
    session: Session,
    rows: Sequence[schema.DeliveryRow],
    compose: Compose,
    now: datetime,
    moment: datetime,
) -> int:
    """One pending delivery, due now, that sends ``rows`` (deliveries to one URL) as one
    message (``compose`` of them, as of ``moment``): they become ``digested`` into it. Its
    target is theirs when they share one, else :data:`DIGEST_TARGET`; its id."""
    items = [(delivery_record(r), r.summary or {}) for r in rows]
    title, body = compose(items, moment)
    totals: dict[str, int] = {}
    for _, summary in items:
        for key, n in summary.items():
            totals[key] = totals.get(key, 0) + n
    names = {r.target for r in rows}
    made = schema.DeliveryRow(
        target=names.pop() if len(names) == 1 else DIGEST_TARGET,
        url_hash=rows[0].url_hash,
        url=rows[0].url,
        title=title,
        body=body,
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
        summary=totals,
    )
    session.add(made)
    session.flush()
    for row in rows:
        row.status, row.digest_id = "digested", made.id
    return made.id


# a delivery that is not sent on its own: it waits for, or went with, a digest or the
# summary of a mute, or a mute swallowed it
_NOT_ALONE = ("held", "digested", "muted", "suppressed")


def _being_sent(row: schema.DeliveryRow, now: datetime) -> bool:
    return being_sent(row.status, row.lease_until, now)


def _same_event(delivery: schema.DeliveryRow | DeliveryRecord) -> ColumnElement[bool]:
    """Deliveries of the same alert (change or down/recovered event) as ``delivery``; a
    digest is an alert of its own (only its own row)."""
    row = schema.DeliveryRow
    if delivery.change_event_id is not None:
        return row.change_event_id == delivery.change_event_id
    if delivery.target_event_id is not None:
        return row.target_event_id == delivery.target_event_id
    return row.id == delivery.id


def _reopen(row: schema.DeliveryRow, now: datetime) -> None:
    """Back in the queue, due now, with a fresh count of attempts."""
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now
    row.lease_until = None


def queue(
    session: Session,
    target: str,
    urls: Sequence[tuple[str, str]],
    title: str,
    body: str,
    now: datetime,
    change_event_id: int | None = None,
    target_event_id: int | None = None,
    *,
    held_until: datetime | None = None,
    summary: Mapping[str, int] | None = None,
    muted: bool = False,
) -> list[int]:
    """Queue an alert: one pending delivery per ``(url_hash, redacted_url)``, due now,
    in ``session``'s transaction; their ids. ``held_until``: held for a digest instead,
    until that window's end (``summary``: what it counts in the digest's title), or
    ``muted``: kept back while its target is muted (with its ``summary`` too)."""
    rows = [
        schema.DeliveryRow(
            target=target,
            change_event_id=change_event_id,
            target_event_id=target_event_id,
            url_hash=url_hash,
            url=shown,
            title=title,
            body=body,
            status="muted" if muted else "pending" if held_until is None else "held",
            attempts=0,
            created_at=now,
            next_attempt_at=now if held_until is None or muted else held_until,
            summary=dict(summary) if summary is not None else None,
        )
        for url_hash, shown in urls
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]
