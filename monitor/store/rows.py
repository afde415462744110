"""Records from rows, and a target's alert state to and from its row.

The records mirror their tables and are read column by column of the same name (a
column renamed without its field fails on the first read). The alert state
(:class:`monitor.alerts.TargetState`) is the state machine's own value, not a mirror
of the table: it is read and written field by field, named here, never by copying
attributes onto a row (where a field without a column would be set and lost);
``tests/store/test_polls.py`` checks every field survives the round trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any, TypeVar

from sqlalchemy import Row

from monitor.alerts import TargetState
from monitor.answers import KnownAnswer
from monitor.diff import FieldChange
from monitor.store import schema
from monitor.store.records import ChangeRecord, DeliveryRecord, SnapshotRecord, TargetEventRecord

_Record = TypeVar("_Record", SnapshotRecord, TargetEventRecord, DeliveryRecord, ChangeRecord)


def _copy(kind: type[_Record], row: schema.Base, **converted: Any) -> _Record:
    """A record of the row's same-named columns (``converted``: those that change
    type): these records mirror their tables, so a column renamed without its field
    fails here, loudly, on the first read."""
    names = [f.name for f in fields(kind) if f.name not in converted]
    return kind(**{name: getattr(row, name) for name in names}, **converted)


def snapshot_record(row: schema.Snapshot) -> SnapshotRecord:
    return _copy(SnapshotRecord, row)


def target_event_record(row: schema.TargetEvent) -> TargetEventRecord:
    return _copy(TargetEventRecord, row)


def delivery_record(row: schema.DeliveryRow) -> DeliveryRecord:
    return _copy(DeliveryRecord, row)


def change_record(row: schema.ChangeEvent) -> ChangeRecord:
    """JSON lists as tuples, watched-field changes as :class:`FieldChange` values."""
    added, removed = tuple(row.added), tuple(row.removed)
    still_at = tuple((m, tuple(at)) for m, at in sorted((row.still_at or {}).items()))
    return _copy(
        ChangeRecord,
        row,
        added=added,
        removed=removed,
        changed=field_changes(row.changed),
        still_at=still_at,
    )


def field_changes(column: list[dict[str, Any]] | None) -> tuple[FieldChange, ...]:
    """The watched-field changes in a ``change_events.changed`` value (None before 0004)."""
    return tuple(FieldChange(c["id"], c["field"], c["old"], c["new"]) for c in column or ())


def changed_column(changes: Iterable[FieldChange]) -> list[dict[str, Any]]:
    """The ``change_events.changed`` JSON of watched-field changes."""
    return [c.as_json() for c in changes]


def target_state(row: schema.TargetStateRow | Row[Any]) -> TargetState:
    return TargetState(
        confirmed_digest=row.confirmed_digest,
        confirmed_count=row.confirmed_count,
        candidate_digest=row.candidate_digest,
        candidate_seen=row.candidate_seen,
        failures=row.failures,
        failing_since=row.failing_since,
        last_error=row.last_error,
        down_alerted_at=row.down_alerted_at,
    )


def target_state_columns(state: TargetState) -> dict[str, Any]:
    """The ``target_states`` columns that hold ``state``."""
    return {
        "confirmed_digest": state.confirmed_digest,
        "confirmed_count": state.confirmed_count,
        "candidate_digest": state.candidate_digest,
        "candidate_seen": state.candidate_seen,
        "failures": state.failures,
        "failing_since": state.failing_since,
        "last_error": state.last_error,
        "down_alerted_at": state.down_alerted_at,
    }


def known_answer(row: schema.KnownAnswerRow) -> KnownAnswer:
    return KnownAnswer(
        asked=row.asked,
        etag=row.etag,
        last_modified=row.last_modified,
        body_digest=row.body_digest,
        list_digest=row.list_digest,
        count=row.model_count,
        watched=row.watched,
        warnings=tuple(row.warnings),
    )


def write_known_answer(row: schema.KnownAnswerRow, known: KnownAnswer) -> None:
    row.asked = known.asked
    # validators that echo the key stay in this process's memory: a new process asks
    # without them, and still knows the answer by the digest of its bytes
    row.etag = None if known.private else known.etag
    row.last_modified = None if known.private else known.last_modified
    row.body_digest = known.body_digest
    row.list_digest = known.list_digest
    row.model_count = known.count
    row.watched = known.watched
    row.warnings = list(known.warnings)
