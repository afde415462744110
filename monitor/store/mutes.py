"""Mutes in the database, so every process (replicas, a running daemon, ``monitor
check``) sees them at once: adding and ending them, and releasing what they held back
(:mod:`monitor.mutes` decides what; this writes it, in one transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from monitor.mutes import ALL, Held, Mute, release
from monitor.store import schema
from monitor.store.deliveries import Compose, take_in
from monitor.store.locks import lock_key
from monitor.store.sql import Sessions


def mute_record(row: schema.MuteRow) -> Mute:
    return Mute(row.id, row.target, row.starts_at, row.until, row.reason, row.ended_at)


def _kind(summary: Mapping[str, int] | None) -> str:
    summary = summary or {}
    return "down" if summary.get("down") else "recovered" if summary.get("recovered") else "change"


def _in_force(now: datetime) -> Any:
    mute = schema.MuteRow
    return and_(mute.ended_at.is_(None), mute.until > now)


def _orphan(now: datetime) -> Any:
    """A muted delivery whose target no mute holds now (one statement, an index on the
    deliveries' status)."""
    delivery, mute = schema.DeliveryRow, schema.MuteRow
    holding = (
        select(mute.id)
        .where(_in_force(now), or_(mute.target == ALL, mute.target == delivery.target))
        .exists()
    )
    return select(delivery.id).where(delivery.status == "muted", ~holding).limit(1)


class Mutes(Sessions):
    """Muting targets, and what the mutes held back."""

    def add_mute(
        self, target: str, starts_at: datetime, until: datetime, reason: str | None
    ) -> Mute:
        with self._write() as session:
            row = schema.MuteRow(target=target, starts_at=starts_at, until=until, reason=reason)
            session.add(row)
            session.flush()
            return mute_record(row)

    def end_mutes(self, target: str | None, now: datetime) -> list[Mute]:
        """End the mutes in force of ``target`` (its own, not a mute of every target), or
        of every target and all of them (None); those it ended."""
        row = schema.MuteRow
        query = select(row).where(row.ended_at.is_(None), row.until > now)
        if target is not None:
            query = query.where(row.target == target)
        with self._write() as session:
            ended = list(session.scalars(query.with_for_update()))
            for mute in ended:
                mute.ended_at = now
            session.flush()
            return [mute_record(m) for m in ended]

    def mutes(self, now: datetime) -> list[Mute]:
        """The mutes in force at ``now``, the soonest to end first."""
        row = schema.MuteRow
        query = (
            select(row).where(row.ended_at.is_(None), row.until > now).order_by(row.until, row.id)
        )
        with self._read() as session:
            return [mute_record(m) for m in session.scalars(query)]

    def mutes_due(self, now: datetime) -> bool:
        """Whether a mute ended and what it held back is still to be released, or a
        muted alert no mute holds any more (a poll that started inside a mute and was
        recorded after its release)."""
        row = schema.MuteRow
        ended = (
            select(row.id)
            .where(row.closed_at.is_(None), or_(row.until <= now, row.ended_at.is_not(None)))
            .limit(1)
        )
        with self._read() as session:
            return session.scalar(ended) is not None or session.scalar(_orphan(now)) is not None

    def close_mutes(self, now: datetime, compose: Compose) -> list[int]:
        """Release what ended mutes held back (see :func:`monitor.mutes.release`), in one
        transaction: a summary delivery per URL of the changes, the latest "down" of a
        target still down, the rest never sent; the deliveries now to send."""
        mute, delivery = schema.MuteRow, schema.DeliveryRow
        with self._write() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(lock_key("mutes"))))
            due = list(
                session.scalars(
                    select(mute)
                    .where(
                        mute.closed_at.is_(None),
                        or_(mute.until <= now, mute.ended_at.is_not(None)),
                    )
                    .with_for_update()
                )
            )
            if not due and session.scalar(_orphan(now)) is None:
                return []
            active = [
                mute_record(m)
                for m in session.scalars(
                    select(mute).where(mute.ended_at.is_(None), mute.until > now)
                )
            ]
            rows = {
                r.id: r
                for r in session.scalars(
                    select(delivery)
                    .where(delivery.status == "muted")
                    .order_by(delivery.id)
                    .with_for_update()
                )
            }
            held = [Held(r.id, r.target, r.url_hash, _kind(r.summary)) for r in rows.values()]
            targets = {h.target for h in held}
            still = {t for t in targets if any(m.covers(t, now) for m in active)}
            states = schema.TargetStateRow
            down = set(
                session.scalars(
                    select(states.target).where(
                        states.target.in_(targets), states.down_alerted_at.is_not(None)
                    )
                )
            )
            plan = release(held, still, down)
            made: list[int] = []
            by_url: dict[str, list[schema.DeliveryRow]] = {}
            for h in plan.summarise:
                by_url.setdefault(h.url_hash, []).append(rows[h.id])
            made += [take_in(session, taken, compose, now, now) for taken in by_url.values()]
            for h in plan.resend:
                r = rows[h.id]
                r.status, r.attempts, r.next_attempt_at = "pending", 0, now
                made.append(r.id)
            for h in plan.suppress:
                rows[h.id].status = "suppressed"
            for m in due:
                m.closed_at = now
            session.flush()
            return made


__all__ = ["ALL", "Mutes", "mute_record"]
