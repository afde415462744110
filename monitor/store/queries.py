"""Reading the history: polls, the models a poll listed, change and down/recovered
events, and one model's life across targets. Reads only."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from monitor.answers import KnownAnswer
from monitor.globs import matches
from monitor.store import schema
from monitor.store.records import (
    ChangeRecord,
    ModelEvent,
    ModelLife,
    Sighting,
    SnapshotRecord,
    TargetEventRecord,
    TargetSummary,
)
from monitor.store.rows import (
    change_record,
    field_changes,
    known_answer,
    snapshot_record,
    target_event_record,
)
from monitor.store.sql import Sessions, covers, latest_good, with_members

_MODEL_BATCH = 500  # change events read at a time when filtering them by model


class Queries(Sessions):
    """Named reads over the history, each in its own session."""

    def history(
        self,
        *,
        target: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
        before: int | None = None,
    ) -> list[SnapshotRecord]:
        """Polls, newest first (``before``: those after that poll, the next page)."""
        return self._newest(schema.Snapshot, snapshot_record, (target, since, limit), before)

    def snapshot(self, snapshot_id: int) -> SnapshotRecord:
        return self._get(schema.Snapshot, snapshot_id, "snapshot", snapshot_record)

    def models(self, snapshot: SnapshotRecord) -> list[dict[str, Any]]:
        """The model objects of a snapshot, sorted by ID (empty for a failed poll), their
        keys in sorted order: PostgreSQL's jsonb does not keep the provider's order, and
        the same list reads back the same from every database."""
        if snapshot.model_list_id is None:
            return []
        with self._read() as session:
            rows = session.execute(
                with_members(
                    select(schema.ModelObject.model_id, schema.ModelObject.data),
                    snapshot.model_list_id,
                )
            )
            # sorted here: the database's collation is not Python's order by code point
            return [_sorted_keys(data) for _, data in sorted(rows, key=lambda row: row[0])]

    def models_at(self, target: str, when: datetime) -> SnapshotRecord | None:
        """The latest good snapshot of ``target`` taken at or before ``when``."""
        with self._read() as session:
            row = session.scalars(
                latest_good(target, schema.Snapshot).where(schema.Snapshot.fetched_at <= when)
            ).first()
            return snapshot_record(row) if row is not None else None

    def changes(
        self,
        *,
        target: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        before: int | None = None,
        models: tuple[str, ...] = (),
    ) -> list[ChangeRecord]:
        """Change events, newest first (``before``: those after that one, the next page);
        ``models``: globs, only the events that touch a matching model (added, removed or
        changed), read a batch at a time until ``limit`` of them are found."""
        if not models:
            return self._newest(schema.ChangeEvent, change_record, (target, since, limit), before)
        found: list[ChangeRecord] = []
        maybe = _mentions(models)
        while limit is None or len(found) < limit:
            batch = self._newest(
                schema.ChangeEvent, change_record, (target, since, _MODEL_BATCH), before, maybe
            )
            found += [c for c in batch if any(matches(i, models) for i in c.touched)]
            if len(batch) < _MODEL_BATCH:
                break
            before = batch[-1].id
        return found[:limit] if limit is not None else found

    def change(self, change_id: int) -> ChangeRecord:
        """One change event (NotFoundError when there is none with that id)."""
        return self._get(schema.ChangeEvent, change_id, "change event", change_record)

    def target_event(self, event_id: int) -> TargetEventRecord:
        """One down or recovered event (NotFoundError when there is none with that id)."""
        return self._get(schema.TargetEvent, event_id, "target event", target_event_record)

    def target_summaries(self, targets: Sequence[str]) -> dict[str, TargetSummary]:
        """Where each of ``targets`` stands, in one statement (each figure an index
        lookup): what a dashboard of many targets needs without a query per figure.
        A target with no recorded poll is left out."""
        if not targets:
            return {}
        snap, state, change = schema.Snapshot, schema.TargetStateRow, schema.ChangeEvent
        good = snap.ok.is_(True)
        query = select(
            state.target,
            _newest_of_target(snap.fetched_at, snap.fetched_at),
            _newest_of_target(snap.fetched_at, snap.fetched_at, good),
            _newest_of_target(snap.model_count, snap.fetched_at, good),
            _newest_of_target(change.detected_at, change.detected_at),
            state.failures,
            state.last_error,
        ).where(state.target.in_(list(targets)))
        with self._read() as session:
            return {row[0]: TargetSummary(*row) for row in session.execute(query)}

    def has_target(self, target: str) -> bool:
        """Whether any poll of ``target`` was ever stored."""
        with self._read() as session:
            return bool(session.scalar(select(exists().where(schema.Snapshot.target == target))))

    def target_events(
        self,
        *,
        target: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[TargetEventRecord]:
        """Down and recovered events, newest first (``before``: the next page)."""
        return self._newest(schema.TargetEvent, target_event_record, (target, since, limit), before)

    def known_answers(self) -> dict[str, KnownAnswer]:
        """Each target's last one-page answer, by digests (see :mod:`monitor.answers`)."""
        with self._read() as session:
            rows = session.scalars(select(schema.KnownAnswerRow))
            return {row.target: known_answer(row) for row in rows}

    def listed_now(self, targets: Sequence[str]) -> dict[str, frozenset[str]]:
        """The model IDs each target's latest good poll listed (IDs only, the lists found
        in one statement, each distinct list read once): what the matrix shows."""
        with self._read() as session:
            return listed_now(session, targets)

    def model_sightings(self, model_id: str, target: str | None = None) -> list[Sighting]:
        """Per target, the first and last good poll whose list held ``model_id``, and
        whether the target's latest good list holds it."""
        with self._read() as session:
            span = schema.ModelListSpan
            lists = (
                select(schema.ModelListRow.id)
                .join(span, span.lineage_id == schema.ModelListRow.lineage_id)
                .join(schema.ModelObject, schema.ModelObject.id == span.object_id)
                .where(schema.ModelObject.model_id == model_id, covers(span, schema.ModelListRow))
            )
            query = (
                select(
                    schema.Snapshot.target,
                    func.min(schema.Snapshot.fetched_at),
                    func.max(schema.Snapshot.fetched_at),
                )
                .where(schema.Snapshot.model_list_id.in_(lists), schema.Snapshot.ok.is_(True))
                .group_by(schema.Snapshot.target)
                .order_by(schema.Snapshot.target)
            )
            if target is not None:
                query = query.where(schema.Snapshot.target == target)
            sightings = []
            for name, first, last in session.execute(query):
                latest = session.scalar(latest_good(name, schema.Snapshot.model_list_id))
                held = with_members(select(schema.ModelObject.id), latest).where(
                    schema.ModelObject.model_id == model_id
                )
                present = bool(session.scalar(select(held.exists())))
                sightings.append(
                    Sighting(target=name, first_seen=first, last_seen=last, present=present)
                )
            return sorted(sightings, key=lambda s: s.target)  # not by the database's collation

    def model_life(self, model_id: str, target: str | None = None) -> list[ModelLife]:
        """One model on each target that ever listed it (or on ``target``): when it was
        first and last seen, whether it is listed now, and what each change event of the
        target says about it, in time order (ties by event id). Empty when no good poll
        ever listed it."""
        sightings = self.model_sightings(model_id, target)
        found: dict[str, list[ModelEvent]] = {s.target: [] for s in sightings}
        change = schema.ChangeEvent
        query = (
            select(change.id, change.target, change.detected_at, change.added, change.removed)
            .add_columns(change.changed)
            .where(change.target.in_(list(found)))
            .order_by(change.detected_at, change.id)
        )
        with self._read() as session:
            for change_id, name, at, added, removed, changed in session.execute(query):
                events = found[name]
                if model_id in added:
                    events.append(ModelEvent(at, change_id, "added"))
                if model_id in removed:
                    events.append(ModelEvent(at, change_id, "removed"))
                events += [
                    ModelEvent(at, change_id, "changed", field)
                    for field in field_changes(changed)
                    if field.id == model_id
                ]
        return [ModelLife(s, tuple(found[s.target])) for s in sightings]


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


_PLAIN = re.compile(r"[A-Za-z0-9._:/@+ -]*")  # spelled the same in JSON text, on both databases


def _mentions(globs: Sequence[str]) -> list[ColumnElement[bool]]:
    """A condition the database can check without decoding JSON that every change
    touching a model matching one of ``globs`` meets: the JSON text of its IDs holds
    each literal part of the glob. Only a pre-filter (matches are then checked glob by
    glob); none when a glob's parts could be spelled otherwise in JSON or it has sets."""
    event = schema.ChangeEvent
    text_of = (
        func.coalesce(cast(event.added, Text), "")
        + func.coalesce(cast(event.removed, Text), "")
        + func.coalesce(cast(event.changed, Text), "")
    )
    each = []
    for glob in globs:
        parts = [p for p in re.split(r"[*?]", glob) if p]
        if "[" in glob or not all(_PLAIN.fullmatch(p) for p in parts):
            return []
        if not parts:  # "*": every change
            return []
        each.append(and_(*(text_of.contains(p, autoescape=True) for p in parts)))
    return [or_(*each)]


def listed_now(session: Session, targets: Sequence[str]) -> dict[str, frozenset[str]]:
    """:meth:`Queries.listed_now` on ``session`` (a poll's transaction reads it too)."""
    snap, state = schema.Snapshot, schema.TargetStateRow
    latest = _newest_of_target(snap.model_list_id, snap.fetched_at, snap.ok.is_(True))
    out: dict[str, frozenset[str]] = dict.fromkeys(targets, frozenset())
    if not targets:
        return out
    by_list: dict[int, frozenset[str]] = {}
    found = session.execute(
        select(state.target, latest).where(state.target.in_(list(targets)))
    ).all()
    for name, list_id in found:
        if list_id is None:
            continue
        if list_id not in by_list:
            by_list[list_id] = frozenset(
                session.scalars(with_members(select(schema.ModelObject.model_id), list_id))
            )
        out[name] = by_list[list_id]
    return out


def _newest_of_target(column: Any, at: Any, *where: Any) -> Any:
    """``column`` of the newest row (by ``at``) of its table for the target of the
    ``target_states`` row it is correlated with: one index lookup per target."""
    table = at.class_
    return (
        select(column)
        .where(table.target == schema.TargetStateRow.target, *where)
        .order_by(at.desc())
        .limit(1)
        .scalar_subquery()
    )
