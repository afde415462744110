"""Records from rows, and a target's alert state to and from its row: one explicit
function each, so renaming a column or a field is a type error here, not a silent
mismatch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from monitor.alerts import TargetState
from monitor.diff import FieldChange
from monitor.store import schema
from monitor.store.records import ChangeRecord, DeliveryRecord, SnapshotRecord, TargetEventRecord


def snapshot_record(row: schema.Snapshot) -> SnapshotRecord:
    return SnapshotRecord(
        id=row.id,
        target=row.target,
        fetched_at=row.fetched_at,
        ok=row.ok,
        http_status=row.http_status,
        error=row.error,
        model_count=row.model_count,
        duration_ms=row.duration_ms,
        model_list_id=row.model_list_id,
    )


def change_record(row: schema.ChangeEvent) -> ChangeRecord:
    return ChangeRecord(
        id=row.id,
        target=row.target,
        detected_at=row.detected_at,
        from_snapshot_id=row.from_snapshot_id,
        to_snapshot_id=row.to_snapshot_id,
        added=tuple(row.added),
        removed=tuple(row.removed),
        changed=field_changes(row.changed),
    )


def field_changes(column: list[dict[str, Any]] | None) -> tuple[FieldChange, ...]:
    """The watched-field changes in a ``change_events.changed`` value (None before 0004)."""
    return tuple(FieldChange(c["id"], c["field"], c["old"], c["new"]) for c in column or ())


def changed_column(changes: Iterable[FieldChange]) -> list[dict[str, Any]]:
    """The ``change_events.changed`` JSON of watched-field changes."""
    return [c.as_json() for c in changes]


def target_event_record(row: schema.TargetEvent) -> TargetEventRecord:
    return TargetEventRecord(
        id=row.id,
        target=row.target,
        kind=row.kind,
        at=row.at,
        since=row.since,
        failures=row.failures,
        error=row.error,
        duration_s=row.duration_s,
        snapshot_id=row.snapshot_id,
    )


def delivery_record(row: schema.DeliveryRow) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        target=row.target,
        change_event_id=row.change_event_id,
        target_event_id=row.target_event_id,
        url_hash=row.url_hash,
        url=row.url,
        title=row.title,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        lease_until=row.lease_until,
    )


def target_state(row: schema.TargetStateRow) -> TargetState:
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


def write_target_state(row: schema.TargetStateRow, state: TargetState) -> None:
    row.confirmed_digest = state.confirmed_digest
    row.confirmed_count = state.confirmed_count
    row.candidate_digest = state.candidate_digest
    row.candidate_seen = state.candidate_seen
    row.failures = state.failures
    row.failing_since = state.failing_since
    row.last_error = state.last_error
    row.down_alerted_at = state.down_alerted_at
