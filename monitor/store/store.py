"""Narrow, named storage operations over a SQLAlchemy engine.

Writes happen inside :meth:`Store.transaction`, which yields a
:class:`Transaction`; reads are methods of :class:`Store`. Every database
error leaves here as a :class:`~monitor.errors.StorageError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Engine,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts import TargetState
from monitor.errors import NotFoundError, StorageError
from monitor.modellist import ModelList as ModelListValue
from monitor.modellist import ids_digest
from monitor.store import schema
from monitor.store.engine import WRITE, describe_db_error

_CHUNK = 500  # bound on bound parameters per statement
# a lineage takes new lists while its spans stay within twice the list's size plus this
LINEAGE_SLACK = 64


@dataclass(frozen=True)
class SnapshotRecord:
    """One stored poll."""

    id: int
    target: str
    fetched_at: datetime
    ok: bool
    http_status: int | None
    error: str | None
    model_count: int | None  # None when the poll failed
    duration_ms: int | None
    model_list_id: int | None


@dataclass(frozen=True)
class ChangeRecord:
    """One stored change event."""

    id: int
    target: str
    detected_at: datetime
    from_snapshot_id: int
    to_snapshot_id: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[dict[str, Any], ...] = ()  # {"id", "field", "old", "new"}


@dataclass(frozen=True)
class TargetEventRecord:
    """A target went down or came back."""

    id: int
    target: str
    kind: str  # "down" or "recovered"
    at: datetime
    since: datetime  # when the outage began
    failures: int | None
    error: str | None
    duration_s: float | None  # for "recovered": how long it was down
    snapshot_id: int


@dataclass(frozen=True)
class DeliveryRecord:
    """One alert to one notification URL, and how its sending went."""

    id: int
    target: str
    change_event_id: int | None
    target_event_id: int | None
    url_hash: str
    url: str  # redacted
    title: str
    body: str
    status: str  # "pending", "sent" or "dead"
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    lease_until: datetime | None = None  # a sender holds it until then (if in the future)

    @property
    def event(self) -> str:
        if self.change_event_id is not None:
            return f"change {self.change_event_id}"
        return f"target event {self.target_event_id}"


@dataclass(frozen=True)
class Redirected:
    """What :meth:`Store.redirect_delivery` did about one current URL."""

    url: str  # redacted
    delivery_id: int  # the delivery that carries the alert to this URL
    action: str  # "new", "reopened" (an unsent one, due now), "already sent", "being sent"
    sent_at: datetime | None = None  # when it was, for "already sent"

    @property
    def to_send(self) -> bool:
        return self.action in ("new", "reopened")


@dataclass(frozen=True)
class Sighting:
    """Where and when one model was listed."""

    target: str
    first_seen: datetime  # the first good poll that listed it
    last_seen: datetime  # the last good poll that listed it
    present: bool  # whether the target's latest good poll lists it


@dataclass(frozen=True)
class PruneReport:
    """What a prune deleted (or would delete)."""

    snapshots: int
    lists: int
    objects: int


@dataclass(frozen=True)
class StoredState:
    """A target's alert state as stored, with its baseline snapshot."""

    state: TargetState
    confirmed_snapshot_id: int | None
    updated_at: datetime | None  # the poll time of the last poll that saved it


@dataclass(frozen=True)
class Baseline:
    """The latest good snapshot of a target and the digest of its list."""

    snapshot: SnapshotRecord
    list_digest: str


_Record = TypeVar("_Record")


def _record(kind: type[_Record], row: object) -> _Record:
    """A record (a frozen dataclass) from the same-named attributes of an ORM row."""
    names = [f.name for f in fields(kind)]  # type: ignore[arg-type]
    return kind(**{name: getattr(row, name) for name in names})


def _change(row: schema.ChangeEvent) -> ChangeRecord:
    return ChangeRecord(
        id=row.id,
        target=row.target,
        detected_at=row.detected_at,
        from_snapshot_id=row.from_snapshot_id,
        to_snapshot_id=row.to_snapshot_id,
        added=tuple(row.added),
        removed=tuple(row.removed),
        changed=tuple(row.changed or ()),
    )


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def _lock_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64-bit) for one of our named locks."""
    digest = hashlib.sha256(("model-monitor:" + name).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Transaction:
    """Write operations that commit together (a poll, its snapshot and its change)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def latest_good(self, target: str) -> Baseline | None:
        row = self._session.execute(
            _latest_good(target, schema.Snapshot, schema.ModelList.digest).join(
                schema.ModelList, schema.Snapshot.model_list_id == schema.ModelList.id
            )
        ).first()
        if row is None:
            return None
        return Baseline(snapshot=_record(SnapshotRecord, row[0]), list_digest=row[1])

    def model_ids(self, list_id: Any) -> frozenset[str]:
        return frozenset(
            self._session.scalars(_with_members(select(schema.ModelObject.model_id), list_id))
        )

    def snapshot_models(self, snapshot_id: int) -> dict[str, dict[str, Any]]:
        """The model objects of a snapshot by ID (none for a failed poll)."""
        rows = self._session.execute(
            _with_members(
                select(schema.ModelObject.model_id, schema.ModelObject.data),
                _list_of(snapshot_id),
            )
        )
        return {model_id: dict(data) for model_id, data in rows}

    def snapshot_model_ids(self, snapshot_id: int) -> frozenset[str]:
        return self.model_ids(_list_of(snapshot_id))

    def add_snapshot(
        self,
        *,
        target: str,
        fetched_at: datetime,
        ok: bool,
        http_status: int | None,
        error: str | None,
        duration_ms: int | None,
        models: ModelListValue | None,
    ) -> SnapshotRecord:
        list_id = self._ensure_list(models, fetched_at, target) if models is not None else None
        row = schema.Snapshot(
            target=target,
            fetched_at=fetched_at,
            ok=ok,
            http_status=http_status,
            error=error,
            duration_ms=duration_ms,
            model_count=len(models) if models is not None else None,
            model_list_id=list_id,
        )
        self._session.add(row)
        self._session.flush()
        return _record(SnapshotRecord, row)

    def add_change(
        self,
        *,
        target: str,
        detected_at: datetime,
        from_snapshot_id: int,
        to_snapshot_id: int,
        added: Sequence[str],
        removed: Sequence[str],
        changed: Sequence[Mapping[str, Any]] = (),
    ) -> ChangeRecord:
        row = schema.ChangeEvent(
            target=target,
            detected_at=detected_at,
            from_snapshot_id=from_snapshot_id,
            to_snapshot_id=to_snapshot_id,
            added=sorted(added),
            removed=sorted(removed),
            changed=[dict(c) for c in changed],
        )
        self._session.add(row)
        self._session.flush()
        return _change(row)

    def target_state(self, target: str) -> StoredState:
        """The alert state of a target, its baseline snapshot and when it was last saved,
        locked until this transaction ends: two processes recording a poll of the same
        target take turns (SQLite's writers already do: they BEGIN IMMEDIATE).

        A target polled before alert state was kept starts from its latest good poll.
        """
        if self._session.get_bind().dialect.name == "postgresql":
            self._session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key("state:" + target)}
            )
        row = self._session.get(schema.TargetStateRow, target)
        if row is not None:
            return StoredState(_record(TargetState, row), row.confirmed_snapshot_id, row.updated_at)
        baseline = self.latest_good(target)
        if baseline is None or baseline.snapshot.model_list_id is None:
            return StoredState(TargetState(), None, None)
        ids = self.model_ids(baseline.snapshot.model_list_id)
        state = TargetState(confirmed_digest=ids_digest(ids), confirmed_count=len(ids))
        return StoredState(state, baseline.snapshot.id, baseline.snapshot.fetched_at)

    def save_target_state(
        self, target: str, state: TargetState, confirmed_snapshot_id: int | None, now: datetime
    ) -> None:
        row = self._session.get(schema.TargetStateRow, target)
        if row is None:
            row = schema.TargetStateRow(target=target)
            self._session.add(row)
        for field in fields(TargetState):  # the row's columns are named as the state's
            setattr(row, field.name, getattr(state, field.name))
        row.confirmed_snapshot_id = confirmed_snapshot_id
        row.updated_at = now

    def add_target_event(
        self,
        *,
        target: str,
        kind: str,
        at: datetime,
        since: datetime,
        snapshot_id: int,
        failures: int | None = None,
        error: str | None = None,
        duration_s: float | None = None,
    ) -> TargetEventRecord:
        row = schema.TargetEvent(
            target=target,
            kind=kind,
            at=at,
            since=since,
            failures=failures,
            error=error,
            duration_s=duration_s,
            snapshot_id=snapshot_id,
        )
        self._session.add(row)
        self._session.flush()
        return _record(TargetEventRecord, row)

    def add_deliveries(
        self,
        *,
        target: str,
        urls: Sequence[tuple[str, str]],
        title: str,
        body: str,
        now: datetime,
        change_event_id: int | None = None,
        target_event_id: int | None = None,
    ) -> list[int]:
        """One pending delivery per ``(url_hash, redacted_url)``; returns their ids."""
        rows = [
            schema.DeliveryRow(
                target=target,
                change_event_id=change_event_id,
                target_event_id=target_event_id,
                url_hash=url_hash,
                url=shown,
                title=title,
                body=body,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
            for url_hash, shown in urls
        ]
        self._session.add_all(rows)
        self._session.flush()
        return [row.id for row in rows]

    def _ensure_list(self, models: ModelListValue, now: datetime, target: str) -> int:
        """The id of this list, storing it (and only its new objects) the first time.

        A new list joins the lineage of the target's previous good list: it stores a
        span for each object it adds and closes the spans of those it drops, so its
        cost is what changed. It starts a lineage of its own (a span per member) for a
        target's first list, or when the lineage has grown to twice this list's size.

        Safe against another process storing the same objects or list at the same
        moment (another target of the same provider, on another replica): inserts
        skip what exists, then the ids are read back; a lineage is extended under a
        row lock (SQLite writers are serialized already).
        """
        session = self._session
        list_id = self._find_list(models.digest)
        if list_id is not None:
            return list_id
        digests = [m.digest for m in models.models]
        object_ids = self._object_ids(digests)
        new = [m for m in models.models if m.digest not in object_ids]
        for start in range(0, len(new), _CHUNK):
            session.execute(
                _insert_skipping_existing(session, schema.ModelObject, "digest"),
                [
                    {"digest": m.digest, "model_id": m.id, "data": dict(m.data)}
                    for m in new[start : start + _CHUNK]
                ],
            )
        if new:
            object_ids.update(self._object_ids([m.digest for m in new]))
        members = {object_ids[d] for d in digests}
        extended = self._extend_lineage(models, members, now, target)
        if extended is not None:
            return extended
        lineage = schema.ModelListLineage(tip_seq=0, span_count=len(members))
        session.add(lineage)
        session.flush()
        list_id = self._insert_list(models, now, lineage.id, 0)
        if list_id is None:  # stored by another process just now, spans and all
            session.delete(lineage)
            return self._list_id(models.digest)
        self._insert_spans(lineage.id, members, 0)
        return list_id

    def _extend_lineage(
        self, models: ModelListValue, members: set[int], now: datetime, target: str
    ) -> int | None:
        """Store the list as the next of its target's lineage; None where it should
        start a lineage of its own instead."""
        session = self._session
        lineage_id = session.scalar(
            _latest_good(target, schema.ModelList.lineage_id).join(
                schema.Snapshot, schema.Snapshot.model_list_id == schema.ModelList.id
            )
        )
        if lineage_id is None:
            return None
        lineage = session.execute(
            select(schema.ModelListLineage.tip_seq, schema.ModelListLineage.span_count)
            .where(schema.ModelListLineage.id == lineage_id)
            .with_for_update()
        ).one()
        span = schema.ModelListSpan
        current = set(
            session.scalars(
                select(span.object_id).where(span.lineage_id == lineage_id, span.last_seq.is_(None))
            )
        )
        added = members - current
        dropped = current - members
        if lineage.span_count + len(added) > 2 * len(members) + LINEAGE_SLACK:
            return None
        seq = lineage.tip_seq + 1
        list_id = self._insert_list(models, now, lineage_id, seq)
        if list_id is None:
            return self._list_id(models.digest)
        gone = sorted(dropped)
        for start in range(0, len(gone), _CHUNK):
            session.execute(
                update(span)
                .where(
                    span.lineage_id == lineage_id,
                    span.last_seq.is_(None),
                    span.object_id.in_(gone[start : start + _CHUNK]),
                )
                .values(last_seq=lineage.tip_seq)
            )
        self._insert_spans(lineage_id, added, seq)
        session.execute(
            update(schema.ModelListLineage)
            .where(schema.ModelListLineage.id == lineage_id)
            .values(tip_seq=seq, span_count=lineage.span_count + len(added))
        )
        return list_id

    def _insert_list(
        self, models: ModelListValue, now: datetime, lineage_id: int, seq: int
    ) -> int | None:
        """The new list's id; None if another process stored the same list first."""
        list_id: int | None = self._session.scalar(
            _insert_skipping_existing(self._session, schema.ModelList, "digest")
            .values(
                digest=models.digest,
                model_count=len(models),
                first_seen_at=now,
                lineage_id=lineage_id,
                seq=seq,
            )
            .returning(schema.ModelList.id)
        )
        return list_id

    def _find_list(self, digest: str) -> int | None:
        list_id: int | None = self._session.scalar(
            select(schema.ModelList.id).where(schema.ModelList.digest == digest)
        )
        return list_id

    def _list_id(self, digest: str) -> int:
        """The id of a list another process has just stored."""
        list_id = self._find_list(digest)
        assert list_id is not None
        return list_id

    def _insert_spans(self, lineage_id: int, object_ids: set[int], seq: int) -> None:
        rows = [
            {"lineage_id": lineage_id, "object_id": i, "first_seq": seq} for i in sorted(object_ids)
        ]
        for start in range(0, len(rows), _CHUNK):
            self._session.execute(insert(schema.ModelListSpan), rows[start : start + _CHUNK])

    def _object_ids(self, digests: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(digests), _CHUNK):
            chunk = digests[start : start + _CHUNK]
            found.update(
                self._session.execute(
                    select(schema.ModelObject.digest, schema.ModelObject.id).where(
                        schema.ModelObject.digest.in_(chunk)
                    )
                ).all()
            )
        return found


@contextmanager
def _db_errors() -> Iterator[None]:
    """Database errors leave the store as a StorageError saying what went wrong."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(f"database error: {describe_db_error(exc)}") from None


_NEWEST_FIRST = (schema.Snapshot.fetched_at.desc(), schema.Snapshot.id.desc())


def _newest_first(
    table: Any, at: Any, target: str | None, since: datetime | None, limit: int | None
) -> Select[Any]:
    """Rows of a table of timed rows (snapshots, events), newest first, optionally of
    one target, since a time, at most ``limit``."""
    query = select(table)
    if target is not None:
        query = query.where(table.target == target)
    if since is not None:
        query = query.where(at >= since)
    query = query.order_by(at.desc(), table.id.desc())
    return query.limit(limit) if limit is not None else query


def _list_of(snapshot_id: int) -> Any:
    """The list id of a snapshot, as a scalar subquery (null for a failed poll)."""
    return (
        select(schema.Snapshot.model_list_id)
        .where(schema.Snapshot.id == snapshot_id)
        .scalar_subquery()
    )


def _latest_good(target: str, *columns: Any) -> Select[Any]:
    """``columns`` of the target's newest good snapshot (the baseline of its next list)."""
    return (
        select(*columns)
        .where(schema.Snapshot.target == target, schema.Snapshot.ok.is_(True))
        .order_by(*_NEWEST_FIRST)
        .limit(1)
    )


def _covers(span: type[schema.ModelListSpan], lists: type[schema.ModelList]) -> Any:
    """The span holds its object in the list (of the same lineage)."""
    return and_(
        span.first_seq <= lists.seq, or_(span.last_seq.is_(None), span.last_seq >= lists.seq)
    )


def _with_members(query: Select[Any], list_id: Any) -> Select[Any]:
    """``query`` over model_objects, narrowed to the objects of a list (an id, or a
    scalar subquery giving one) by a join: one span of a lineage covers an object at
    any one seq, so no object comes twice."""
    span = schema.ModelListSpan
    return (
        query.select_from(schema.ModelList)
        .join(span, span.lineage_id == schema.ModelList.lineage_id)
        .join(schema.ModelObject, schema.ModelObject.id == span.object_id)
        .where(schema.ModelList.id == list_id, _covers(span, schema.ModelList))
    )


def being_sent(delivery: schema.DeliveryRow | DeliveryRecord, now: datetime) -> bool:
    """A sender holds the delivery (a row or a record): it may be sending it right now."""
    return (
        delivery.status == "pending"
        and delivery.lease_until is not None
        and delivery.lease_until >= now
    )


def _same_event(delivery: schema.DeliveryRow | DeliveryRecord) -> Any:
    """Deliveries of the same alert (change or down/recovered event) as ``delivery``."""
    row = schema.DeliveryRow
    if delivery.change_event_id is not None:
        return row.change_event_id == delivery.change_event_id
    return row.target_event_id == delivery.target_event_id


def _reopen(row: schema.DeliveryRow, now: datetime) -> None:
    """Back in the queue, due now, with a fresh count of attempts."""
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now
    row.lease_until = None


def _insert_skipping_existing(session: Session, table: type[schema.Base], key: str) -> Any:
    """``INSERT … ON CONFLICT (key) DO NOTHING`` for the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=[key])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
    return insert(table)


class Store:
    """The database of one monitor: polls, model lists and change events."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writers = sessionmaker(engine.execution_options(**WRITE), expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._write() as session:
            yield Transaction(session)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with _db_errors(), self._writers.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with _db_errors(), self._sessions() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    # -- queries ---------------------------------------------------------------

    def history(
        self, *, target: str | None = None, limit: int | None = None, since: datetime | None = None
    ) -> list[SnapshotRecord]:
        """Polls, newest first."""
        query = _newest_first(schema.Snapshot, schema.Snapshot.fetched_at, target, since, limit)
        with self._read() as session:
            return [_record(SnapshotRecord, row) for row in session.scalars(query)]

    def snapshot(self, snapshot_id: int) -> SnapshotRecord:
        with self._read() as session:
            row = session.get(schema.Snapshot, snapshot_id)
            if row is None:
                raise NotFoundError(f"no snapshot with id {snapshot_id}")
            return _record(SnapshotRecord, row)

    def models(self, snapshot: SnapshotRecord) -> list[dict[str, Any]]:
        """The model objects of a snapshot, sorted by ID (empty for a failed poll), their
        keys in sorted order: PostgreSQL's jsonb does not keep the provider's order, and
        the same list reads back the same from every database."""
        if snapshot.model_list_id is None:
            return []
        with self._read() as session:
            rows = session.execute(
                _with_members(
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
                _latest_good(target, schema.Snapshot).where(schema.Snapshot.fetched_at <= when)
            ).first()
            return _record(SnapshotRecord, row) if row is not None else None

    def changes(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[ChangeRecord]:
        """Change events, newest first."""
        query = _newest_first(
            schema.ChangeEvent, schema.ChangeEvent.detected_at, target, since, limit
        )
        with self._read() as session:
            return [_change(row) for row in session.scalars(query)]

    def has_target(self, target: str) -> bool:
        """Whether any poll of ``target`` was ever stored."""
        with self._read() as session:
            return bool(session.scalar(select(exists().where(schema.Snapshot.target == target))))

    def target_events(
        self, *, target: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[TargetEventRecord]:
        """Down and recovered events, newest first."""
        query = _newest_first(schema.TargetEvent, schema.TargetEvent.at, target, since, limit)
        with self._read() as session:
            return [_record(TargetEventRecord, row) for row in session.scalars(query)]

    # -- the outbox ------------------------------------------------------------

    def deliveries(
        self,
        *,
        status: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> tuple[list[DeliveryRecord], int]:
        """Deliveries, newest first, and how many match in all (``limit`` aside)."""
        where = []
        if status is not None:
            where.append(schema.DeliveryRow.status == status)
        if target is not None:
            where.append(schema.DeliveryRow.target == target)
        if since is not None:
            where.append(schema.DeliveryRow.created_at >= since)
        query = select(schema.DeliveryRow).where(*where).order_by(schema.DeliveryRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._read() as session:
            rows = [_record(DeliveryRecord, row) for row in session.scalars(query)]
            total = len(rows)
            if limit is not None and total == limit:
                total = int(
                    session.scalar(
                        select(func.count()).select_from(schema.DeliveryRow).where(*where)
                    )
                    or 0
                )
            return rows, total

    def delivery(self, delivery_id: int) -> DeliveryRecord:
        with self._read() as session:
            row = session.get(schema.DeliveryRow, delivery_id)
            if row is None:
                raise NotFoundError(f"no delivery with id {delivery_id}")
            return _record(DeliveryRecord, row)

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
            return [_record(DeliveryRecord, row) for row in rows]

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
        False (nothing changed) when it was sent, or is being sent right now."""
        with self._write() as session:
            result = session.execute(
                update(schema.DeliveryRow)
                .where(
                    schema.DeliveryRow.id == delivery_id,
                    schema.DeliveryRow.status != "sent",
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
            if row.status == "sent":
                return []
            if being_sent(row, now):
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
                if sent is not None:
                    steps.append(Redirected(shown, sent.id, "already sent", sent.sent_at))
                elif mine and being_sent(mine[0], now):
                    steps.append(Redirected(shown, mine[0].id, "being sent"))
                elif mine:
                    _reopen(mine[0], now)
                    steps.append(Redirected(shown, mine[0].id, "reopened"))
                else:
                    (new_id,) = Transaction(session).add_deliveries(
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
            return _record(DeliveryRecord, row) if row is not None else None

    def last_polls(self) -> dict[str, datetime]:
        """When each target was last polled (by any process), in one query: the poll
        time its alert state was last saved with (a poll older than that one, recorded
        after it, is history and moves no state)."""
        with _db_errors(), self.engine.connect() as connection:
            rows = connection.execute(
                select(schema.TargetStateRow.target, schema.TargetStateRow.updated_at)
            )
            return {target: at for target, at in rows}

    def last_poll_at(self, target: str) -> datetime | None:
        """When ``target`` was last polled (by any process). On every scheduled poll's
        path: a plain connection, no ORM session."""
        with _db_errors(), self.engine.connect() as connection:
            return connection.scalar(
                select(schema.Snapshot.fetched_at)
                .where(schema.Snapshot.target == target)
                .order_by(schema.Snapshot.fetched_at.desc())
                .limit(1)
            )

    @contextmanager
    def poll_turn(
        self, target: str, *, now: datetime, min_gap: float | None = None, wait: bool = False
    ) -> Iterator[bool]:
        """Whether this process polls ``target`` now (True) or leaves it (False).

        On PostgreSQL the poll runs under a session advisory lock on the target: of
        several replicas only one polls it at a time, and the lock dies with the
        connection of a replica that dies. ``wait`` blocks for the lock instead of
        giving up. ``min_gap`` (scheduled polls) also gives up when any process
        polled the target less than that many seconds ago, so replicas that all
        schedule every target poll each about once per interval in total.
        """
        connection = None
        locked = False
        key = _lock_key("poll:" + target)
        try:
            if self.engine.dialect.name == "postgresql":
                connection = self.engine.connect()
                sql = "SELECT pg_advisory_lock(%s)" if wait else "SELECT pg_try_advisory_lock(%s)"
                result = connection.exec_driver_sql(sql, (key,)).scalar()
                connection.commit()  # the lock is the session's: no transaction left open
                locked = wait or bool(result)
                if not locked:
                    yield False
                    return
            if min_gap is not None:
                last = self.last_poll_at(target)
                if last is not None and (now - last).total_seconds() < min_gap:
                    yield False
                    return
            yield True
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {describe_db_error(exc)}") from None
        finally:
            if connection is not None:
                try:
                    if locked:
                        connection.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (key,))
                        connection.commit()
                    connection.close()
                except SQLAlchemyError:
                    connection.invalidate()  # the server went away; so did the lock

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError:
            return False

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

    # -- retention -------------------------------------------------------------

    def prune(
        self, older_than: datetime, *, target: str | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Delete snapshots taken before ``older_than`` and the model lists and objects
        no snapshot points at any more. Never deleted: change events and the snapshots
        they point at, the snapshots down/recovered events point at, each target's
        baseline, and each target's latest and latest good snapshot. With ``dry_run``
        the same work is done and rolled back, so the counts are exact."""
        with _db_errors(), self._writers() as session:
            keep = self._snapshots_to_keep(session, target)
            query = select(schema.Snapshot.id).where(schema.Snapshot.fetched_at < older_than)
            if target is not None:
                query = query.where(schema.Snapshot.target == target)
            doomed = [
                i for i in session.scalars(query.order_by(schema.Snapshot.id)) if i not in keep
            ]
            for start in range(0, len(doomed), 5000):
                session.execute(
                    delete(schema.Snapshot).where(
                        schema.Snapshot.id.in_(doomed[start : start + 5000])
                    )
                )
                if not dry_run:
                    session.commit()
            lists = session.execute(
                delete(schema.ModelList).where(
                    ~exists().where(schema.Snapshot.model_list_id == schema.ModelList.id)
                )
            ).rowcount  # type: ignore[attr-defined]
            self._prune_spans(session)
            objects = session.execute(
                delete(schema.ModelObject).where(
                    ~exists().where(schema.ModelListSpan.object_id == schema.ModelObject.id)
                )
            ).rowcount  # type: ignore[attr-defined]
            if dry_run:
                session.rollback()
            else:
                session.commit()
            return PruneReport(snapshots=len(doomed), lists=lists, objects=objects)

    @staticmethod
    def _prune_spans(session: Session) -> None:
        """Drop spans no remaining list lies in, then lineages with no list left.

        Open spans describe the lineage's newest list, where its next list starts from;
        a lineage whose newest list is gone is first wound back to its newest remaining
        list, or the objects only the gone list held would be kept for ever."""
        span, lists, lineage = schema.ModelListSpan, schema.ModelList, schema.ModelListLineage
        headless = session.scalars(
            select(lineage.id)
            .where(~exists().where(lists.lineage_id == lineage.id, lists.seq == lineage.tip_seq))
            .with_for_update()
        ).all()
        for lineage_id in headless:
            newest = session.scalar(
                select(func.max(lists.seq)).where(lists.lineage_id == lineage_id)
            )
            if newest is None:
                continue  # no list left: the lineage goes below
            session.execute(
                delete(span).where(span.lineage_id == lineage_id, span.first_seq > newest)
            )
            session.execute(
                update(span)
                .where(span.lineage_id == lineage_id, span.last_seq >= newest)
                .values(last_seq=None)
            )
            session.execute(update(lineage).where(lineage.id == lineage_id).values(tip_seq=newest))
        session.execute(
            delete(span).where(
                span.last_seq.is_not(None),
                ~exists().where(lists.lineage_id == span.lineage_id, _covers(span, lists)),
            )
        )
        empty = ~exists().where(lists.lineage_id == lineage.id)
        session.execute(
            delete(span).where(
                span.lineage_id.in_(select(lineage.id).where(empty).scalar_subquery())
            )
        )
        session.execute(delete(lineage).where(empty))
        counted = select(func.count()).where(span.lineage_id == lineage.id).scalar_subquery()
        session.execute(  # only the lineages that lost spans: no lock on the others
            update(lineage).where(lineage.span_count != counted).values(span_count=counted)
        )

    @staticmethod
    def _snapshots_to_keep(session: Session, target: str | None) -> set[int]:
        keep: set[int] = set()
        for from_id, to_id in session.execute(
            select(schema.ChangeEvent.from_snapshot_id, schema.ChangeEvent.to_snapshot_id)
        ):
            keep.update((from_id, to_id))
        keep.update(session.scalars(select(schema.TargetEvent.snapshot_id)))
        keep.update(
            i
            for i in session.scalars(select(schema.TargetStateRow.confirmed_snapshot_id))
            if i is not None
        )
        names = [target] if target else session.scalars(select(schema.Snapshot.target).distinct())
        for name in list(names):
            latest = select(schema.Snapshot.id).where(schema.Snapshot.target == name)
            for query in (
                latest.order_by(*_NEWEST_FIRST).limit(1),
                _latest_good(name, schema.Snapshot.id),
            ):
                found = session.scalar(query)
                if found is not None:
                    keep.add(found)
        return keep

    # -- one model's life ------------------------------------------------------

    def model_sightings(self, model_id: str, target: str | None = None) -> list[Sighting]:
        """Per target, the first and last good poll whose list held ``model_id``, and
        whether the target's latest good list holds it."""
        with self._read() as session:
            span = schema.ModelListSpan
            lists = (
                select(schema.ModelList.id)
                .join(span, span.lineage_id == schema.ModelList.lineage_id)
                .join(schema.ModelObject, schema.ModelObject.id == span.object_id)
                .where(schema.ModelObject.model_id == model_id, _covers(span, schema.ModelList))
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
                latest = session.scalar(_latest_good(name, schema.Snapshot.model_list_id))
                held = _with_members(select(schema.ModelObject.id), latest).where(
                    schema.ModelObject.model_id == model_id
                )
                present = bool(session.scalar(select(held.exists())))
                sightings.append(
                    Sighting(target=name, first_seen=first, last_seen=last, present=present)
                )
            return sorted(sightings, key=lambda s: s.target)  # not by the database's collation
