"""What the store hands out: frozen values, no SQLAlchemy. A record outlives the
session that read it, and callers never see a row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.alerts import TargetState
from monitor.diff import FieldChange


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
    changed: tuple[FieldChange, ...] = ()  # watched fields, in the order found
    # removed models other targets still listed when this was found: (model, targets)
    still_at: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def touched(self) -> frozenset[str]:
        """Every model ID the change is about: added, removed or changed."""
        return frozenset((*self.added, *self.removed, *(c.id for c in self.changed)))


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
    """One alert to one notification URL in the outbox, and how its sending went."""

    id: int
    target: str
    change_event_id: int | None
    target_event_id: int | None
    url_hash: str
    url: str  # redacted
    title: str
    body: str
    status: str  # "pending", "sent" or "dead"; "held" for a digest, then "digested"
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime  # held: when its digest is due
    sent_at: datetime | None
    lease_until: datetime | None = None  # a sender holds it until then (if in the future)
    digest_id: int | None = None  # digested: the digest delivery that took it in

    @property
    def event(self) -> str:
        if self.change_event_id is not None:
            return f"change {self.change_event_id}"
        if self.target_event_id is None:
            return "digest"
        return f"target event {self.target_event_id}"

    def being_sent(self, now: datetime) -> bool:
        """A sender holds it: it may be sending it right now."""
        return being_sent(self.status, self.lease_until, now)


def being_sent(status: str, lease_until: datetime | None, now: datetime) -> bool:
    """A pending delivery whose lease has not run out is held by a sender."""
    return status == "pending" and lease_until is not None and lease_until >= now


@dataclass(frozen=True)
class Redirected:
    """What :meth:`Store.redirect_delivery` did about one current URL."""

    url: str  # redacted
    delivery_id: int  # the delivery that carries the alert to this URL
    # "new", "reopened" (an unsent one, due now), "already sent", "being sent", or
    # "with a digest or mute" (it waits for, or went with, one; a mute may have swallowed it)
    action: str
    sent_at: datetime | None = None  # when it was, for "already sent"

    @property
    def to_send(self) -> bool:
        return self.action in ("new", "reopened")


@dataclass(frozen=True)
class TargetSummary:
    """Where a target stands: its last poll, last good poll, last change and failures."""

    target: str
    last_poll_at: datetime | None
    last_good_at: datetime | None
    good_count: int | None  # models in the last good poll
    last_change_at: datetime | None
    failures: int  # failed polls in a row, the last one included
    last_error: str | None


@dataclass(frozen=True)
class Sighting:
    """Where and when one model was listed."""

    target: str
    first_seen: datetime  # the first good poll that listed it
    last_seen: datetime  # the last good poll that listed it
    present: bool  # whether the target's latest good poll lists it


@dataclass(frozen=True)
class ModelEvent:
    """What one change event says about one model: ``what`` is "added", "removed" or
    "changed" (then ``change`` is the watched field's change)."""

    at: datetime
    change_id: int
    what: str
    change: FieldChange | None = None


@dataclass(frozen=True)
class ModelLife:
    """One model on one target: where it was seen, and its events in time order."""

    sighting: Sighting
    events: tuple[ModelEvent, ...]


@dataclass(frozen=True)
class PruneReport:
    """What a prune deleted (or would delete)."""

    snapshots: int
    lists: int
    objects: int


@dataclass(frozen=True)
class VacuumReport:
    """The database's size on disk before and after a vacuum, in bytes: SQLite's file
    (pages in use and free), PostgreSQL's tables a prune deletes from, indexes and
    TOAST included."""

    bytes_before: int
    bytes_after: int


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
