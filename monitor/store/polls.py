"""The poll transaction: what one poll writes, in one transaction (see
:meth:`monitor.store.Store.transaction`), and the reads it decides from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from monitor.alerts import TargetState
from monitor.answers import KnownAnswer
from monitor.diff import FieldChange
from monitor.errors import ListGoneError
from monitor.modellist import ModelList, ids_digest
from monitor.mutes import ALL
from monitor.store import schema
from monitor.store.deliveries import queue
from monitor.store.driver import Statement
from monitor.store.lists import ListWriter, find_list
from monitor.store.locks import lock_key
from monitor.store.queries import listed_now
from monitor.store.records import (
    Baseline,
    ChangeRecord,
    SnapshotRecord,
    StoredState,
    TargetEventRecord,
)
from monitor.store.rows import (
    change_record,
    changed_column,
    snapshot_record,
    target_event_record,
    target_state,
    target_state_columns,
    write_known_answer,
)
from monitor.store.sql import ListRef, latest_good, list_of, with_members


class Transaction:
    """The writes of one poll, which commit together: its snapshot (and list), its
    change or down/recovered event, their deliveries and the target's alert state.

    It runs on one connection in one transaction. The statements every poll runs go
    to the driver directly (:mod:`monitor.store.driver`); an ORM session joins the
    transaction only when something needs one: a write of a change, an event, an
    alert, a new list or a new answer, or a read of a stored list to compare."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._orm: Session | None = None

    @property
    def _session(self) -> Session:
        if self._orm is None:
            self._orm = Session(bind=self._connection, expire_on_commit=False)
        return self._orm

    @property
    def _core(self) -> Connection:
        """The transaction's connection, for the statements every poll runs (ORM objects
        added before are flushed first)."""
        self.flush()
        return self._connection

    def flush(self) -> None:
        """Send what the ORM session holds (before the transaction commits)."""
        if self._orm is not None:
            self._orm.flush()

    def close(self) -> None:
        if self._orm is not None:
            self._orm.close()

    def latest_good(self, target: str) -> Baseline | None:
        row = self._session.execute(
            latest_good(target, schema.Snapshot, schema.ModelListRow.digest).join(
                schema.ModelListRow, schema.Snapshot.model_list_id == schema.ModelListRow.id
            )
        ).first()
        if row is None:
            return None
        return Baseline(snapshot=snapshot_record(row[0]), list_digest=row[1])

    def model_ids(self, list_id: ListRef) -> frozenset[str]:
        return frozenset(
            self._session.scalars(with_members(select(schema.ModelObject.model_id), list_id))
        )

    def snapshot_models(self, snapshot_id: int) -> dict[str, dict[str, Any]]:
        """The model objects of a snapshot by ID (none for a failed poll)."""
        rows = self._session.execute(
            with_members(
                select(schema.ModelObject.model_id, schema.ModelObject.data),
                list_of(snapshot_id),
            )
        )
        return {model_id: dict(data) for model_id, data in rows}

    def snapshot_model_ids(self, snapshot_id: int) -> frozenset[str]:
        return self.model_ids(list_of(snapshot_id))

    def listed_now(self, targets: Sequence[str]) -> dict[str, frozenset[str]]:
        """The IDs each of ``targets``' latest good poll listed, as this transaction sees
        them (where a removed model is still served)."""
        return listed_now(self._session, targets)

    def add_snapshot(
        self,
        *,
        target: str,
        fetched_at: datetime,
        ok: bool,
        http_status: int | None,
        error: str | None,
        duration_ms: int | None,
        models: ModelList | None,
        seen: tuple[str, int] | None = None,
    ) -> SnapshotRecord:
        """A poll; a good one with ``models`` (stored, the first time), or with ``seen``,
        the digest and size of a list stored already (ListGoneError when it is not)."""
        list_id: int | None = None
        count: int | None = None
        if models is not None:
            list_id = ListWriter(self._session).store(models, fetched_at, target)
            count = len(models)
        elif seen is not None:
            list_digest, count = seen
            list_id = find_list(self._core, list_digest)
            if list_id is None:
                raise ListGoneError(f"list {list_digest[:12]} is no longer stored")
        values: dict[str, Any] = {
            "target": target,
            "fetched_at": fetched_at,
            "ok": ok,
            "http_status": http_status,
            "error": error,
            "duration_ms": duration_ms,
            "model_count": count,
            "model_list_id": list_id,
        }
        # on the driver: every poll does it
        snapshot_id = _ADD_SNAPSHOT.scalar(self._core, values)
        return SnapshotRecord(id=snapshot_id, **values)

    def add_change(
        self,
        *,
        target: str,
        detected_at: datetime,
        from_snapshot_id: int,
        to_snapshot_id: int,
        added: Sequence[str],
        removed: Sequence[str],
        changed: Sequence[FieldChange] = (),
        still_at: Mapping[str, Sequence[str]] | None = None,
    ) -> ChangeRecord:
        row = schema.ChangeEvent(
            target=target,
            detected_at=detected_at,
            from_snapshot_id=from_snapshot_id,
            to_snapshot_id=to_snapshot_id,
            added=sorted(added),
            removed=sorted(removed),
            changed=changed_column(changed),
            still_at={m: list(at) for m, at in (still_at or {}).items()},
        )
        self._session.add(row)
        self._session.flush()
        return change_record(row)

    def target_state(self, target: str) -> StoredState:
        """The alert state of a target, its baseline snapshot and when it was last saved,
        locked until this transaction ends: two processes recording a poll of the same
        target take turns (SQLite's writers already do: they BEGIN IMMEDIATE).

        A target polled before alert state was kept starts from its latest good poll.
        """
        if self._connection.dialect.name == "postgresql":
            _STATE_LOCK.first(self._core, {"key": lock_key("state:" + target)})
        row = _STATE.first(self._core, {"target": target})
        if row is not None:
            return StoredState(target_state(row), row.confirmed_snapshot_id, row.updated_at)
        baseline = self.latest_good(target)
        if baseline is None or baseline.snapshot.model_list_id is None:
            return StoredState(TargetState(), None, None)
        ids = self.model_ids(baseline.snapshot.model_list_id)
        state = TargetState(confirmed_digest=ids_digest(ids), confirmed_count=len(ids))
        return StoredState(state, baseline.snapshot.id, baseline.snapshot.fetched_at)

    def save_target_state(
        self, target: str, state: TargetState, confirmed_snapshot_id: int | None, now: datetime
    ) -> None:
        values = {
            **target_state_columns(state),
            "confirmed_snapshot_id": confirmed_snapshot_id,
            "updated_at": now,
            "state_of": target,
        }
        if _SAVE_STATE.rowcount(self._core, values) == 0:  # its first poll
            values["target"] = values.pop("state_of")
            self._core.execute(insert(schema.TargetStateRow), values)

    def save_known_answer(self, target: str, known: KnownAnswer | None) -> None:
        """Remember the target's last one-page answer (None: forget it)."""
        row = self._session.get(schema.KnownAnswerRow, target)
        if known is None:
            if row is not None:
                self._session.delete(row)
            return
        if row is None:
            row = schema.KnownAnswerRow(target=target)
            self._session.add(row)
        write_known_answer(row, known)

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
        return target_event_record(row)

    def add_deliveries(
        self,
        about: ChangeRecord | TargetEventRecord,
        urls: Sequence[tuple[str, str]],
        *,
        title: str,
        body: str,
        now: datetime,
        held_until: datetime | None = None,
        summary: Mapping[str, int] | None = None,
        muted: bool = False,
    ) -> list[int]:
        """The alert about a change or down/recovered event this poll wrote: one pending
        delivery per ``(url_hash, redacted_url)``, held for a digest until
        ``held_until``, or ``muted`` (its target is); their ids."""
        change = about.id if isinstance(about, ChangeRecord) else None
        event = None if isinstance(about, ChangeRecord) else about.id
        return queue(
            self._session,
            about.target,
            urls,
            title,
            body,
            now,
            change,
            event,
            held_until=held_until,
            summary=summary,
            muted=muted,
        )

    def muted(self, target: str, at: datetime) -> bool:
        """Whether a mute holds back ``target``'s alerts at ``at``."""
        mute = schema.MuteRow
        query = (
            select(mute.id)
            .where(
                mute.target.in_((target, ALL)),
                mute.starts_at <= at,
                mute.until > at,
                or_(mute.ended_at.is_(None), mute.ended_at > at),
            )
            .limit(1)
        )
        return self._session.scalar(query) is not None


# the statements every poll runs, built once, run on the driver
_STATE_LOCK = Statement(select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger))))
_STATE = Statement(
    select(*schema.TargetStateRow.__table__.columns).where(
        schema.TargetStateRow.target == bindparam("target")
    )
)
_SAVE_STATE = Statement(
    update(schema.TargetStateRow)
    .where(schema.TargetStateRow.target == bindparam("state_of"))
    .values(
        {
            column: bindparam(column)
            for column in (
                *target_state_columns(TargetState()),
                "confirmed_snapshot_id",
                "updated_at",
            )
        }
    )
)
_ADD_SNAPSHOT = Statement(
    insert(schema.Snapshot)
    .values(
        {
            column.name: bindparam(column.name)
            for column in schema.Snapshot.__table__.columns
            if column.name != "id"
        }
    )
    .returning(schema.Snapshot.id)
)
