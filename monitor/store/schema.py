"""The database schema (SQLAlchemy 2 typed ORM). Alembic migrations own its evolution.

Each distinct model object and each distinct model list is stored once, keyed
by a content digest; a snapshot (one poll) points at its list, so an unchanged
poll costs one small row. A list's membership is stored as spans over a lineage
of similar lists, so a changed list costs the rows of what changed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor.jsonsafe import map_strings

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# PostgreSQL's text and jsonb cannot hold U+0000, which SQLite and JSON can. On
# PostgreSQL, a string that holds one (or starts with the marker, U+FDD0, a
# noncharacter) is stored as the marker followed by the string with each U+0000
# written as marker + "0" and each marker doubled; reading reverses it. Every
# other string is stored as it is, so the same data reads back identical from
# both databases.
NUL_MARK = "\ufdd0"
_MARKED = re.compile(NUL_MARK + "(.)", re.DOTALL)


def pg_encode(text: str) -> str:
    if "\x00" not in text and not text.startswith(NUL_MARK):
        return text
    return NUL_MARK + text.replace(NUL_MARK, NUL_MARK * 2).replace("\x00", NUL_MARK + "0")


def pg_decode(text: str) -> str:
    if not text.startswith(NUL_MARK):
        return text
    return _MARKED.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), text[1:])


class SafeText(TypeDecorator[str]):
    """Text that may hold U+0000 (a provider's model ID), on every database."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return pg_encode(value) if value is not None and dialect.name == "postgresql" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return pg_decode(value) if value is not None and dialect.name == "postgresql" else value


class JsonDocument(TypeDecorator[Any]):
    """A JSON document: jsonb on PostgreSQL (queryable by SQL tools), JSON text
    elsewhere; strings holding U+0000 kept on both (see :func:`pg_encode`)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        seen = json.dumps(value)  # C speed: walk in Python only when there is work
        if "\\u0000" not in seen and "\\ufdd0" not in seen:
            return value
        return map_strings(value, pg_encode)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        if "\\ufdd0" not in json.dumps(value):
            return value
        return map_strings(value, pg_decode)


# Integer primary keys that are 64-bit on PostgreSQL and ROWID aliases on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC moment; always handed back as an aware UTC datetime.

    PostgreSQL stores ``timestamptz``. SQLite stores integer microseconds since the
    Unix epoch: exact, sortable, and 8 bytes where ISO text takes 26 in the row and
    again in every index (``datetime(col / 1000000, 'unixepoch')`` reads it in SQL).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return to_micros(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int):
            return from_micros(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def to_micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ModelObject(Base):
    """One distinct model object (a provider's JSON for one model), stored once."""

    __tablename__ = "model_objects"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    model_id: Mapped[str] = mapped_column(SafeText)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument())


class ModelListLineage(Base):
    """A run of similar lists stored together as spans of membership.

    The first list of a lineage stores a span per member; each later list (one
    ``seq`` on) stores spans only for the objects it adds, and closes the spans of
    the objects it drops. A changed list therefore costs the rows of what changed,
    not a row per model. A new lineage starts when a lineage's spans would exceed
    twice its newest list's size, so reading any list reads a bounded number of rows.
    """

    __tablename__ = "model_list_lineages"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    tip_seq: Mapped[int] = mapped_column(Integer)  # the seq of its newest list
    span_count: Mapped[int] = mapped_column(Integer)


class ModelListRow(Base):
    """One distinct list of model objects, stored once whatever the number of polls."""

    __tablename__ = "model_lists"
    __table_args__ = (Index("ix_model_lists_lineage_id_seq", "lineage_id", "seq", unique=True),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    model_count: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lineage_id: Mapped[int] = mapped_column(Id, ForeignKey("model_list_lineages.id"))
    seq: Mapped[int] = mapped_column(Integer)


class ModelListSpan(Base):
    """Model object ``object_id`` is in every list of the lineage whose ``seq`` lies in
    ``first_seq..last_seq`` (``last_seq`` null: up to the lineage's newest list).

    The view ``model_list_entries (list_id, object_id)`` (migration 0005) spells
    spans out as one row per member of each list, for SQL tools.
    """

    __tablename__ = "model_list_spans"
    __table_args__ = ({"sqlite_with_rowid": False},)

    lineage_id: Mapped[int] = mapped_column(
        Id, ForeignKey("model_list_lineages.id"), primary_key=True
    )
    object_id: Mapped[int] = mapped_column(
        Id, ForeignKey("model_objects.id"), primary_key=True, index=True
    )
    first_seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int | None] = mapped_column(Integer)


class Snapshot(Base):
    """One poll of one target, good or failed."""

    __tablename__ = "snapshots"
    __table_args__ = (
        Index("ix_snapshots_target_fetched_at", "target", "fetched_at"),
        Index("ix_snapshots_fetched_at", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool]
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(SafeText)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    model_count: Mapped[int | None] = mapped_column(Integer)
    model_list_id: Mapped[int | None] = mapped_column(Id, ForeignKey("model_lists.id"), index=True)


class ChangeEvent(Base):
    """Model IDs added or removed between two good snapshots of a target."""

    __tablename__ = "change_events"
    __table_args__ = (Index("ix_change_events_target_detected_at", "target", "detected_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    from_snapshot_id: Mapped[int] = mapped_column(Id, ForeignKey("snapshots.id"), index=True)
    to_snapshot_id: Mapped[int] = mapped_column(Id, ForeignKey("snapshots.id"), index=True)
    added: Mapped[list[str]] = mapped_column(JsonDocument())
    removed: Mapped[list[str]] = mapped_column(JsonDocument())
    # watched fields that changed: [{"id", "field", "old", "new"}]; null before 0.1's 0004
    changed: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonDocument())
    # where each removed model was still listed when found: {"model": ["target", ...]};
    # null before 0007
    still_at: Mapped[dict[str, list[str]] | None] = mapped_column(JsonDocument())


class TargetStateRow(Base):
    """The alert state machine's memory for one target (see monitor.alerts)."""

    __tablename__ = "target_states"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    confirmed_snapshot_id: Mapped[int | None] = mapped_column(Id, ForeignKey("snapshots.id"))
    confirmed_digest: Mapped[str | None] = mapped_column(String(64))
    confirmed_count: Mapped[int] = mapped_column(Integer)
    candidate_digest: Mapped[str | None] = mapped_column(String(64))
    candidate_seen: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(SafeText)
    down_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TargetEvent(Base):
    """A target went down (``kind="down"``) or came back (``kind="recovered"``)."""

    __tablename__ = "target_events"
    __table_args__ = (Index("ix_target_events_target_at", "target", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)  # when the outage began
    failures: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(SafeText)
    duration_s: Mapped[float | None] = mapped_column(Float)
    snapshot_id: Mapped[int] = mapped_column(Id, ForeignKey("snapshots.id"), index=True)


class DeliveryRow(Base):
    """One alert to one notification URL: the outbox.

    ``url`` is redacted for display; ``url_hash`` (sha256 of the full URL) finds
    the configured URL when it is sent, so no secret is stored.
    """

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    change_event_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("change_events.id"), index=True
    )
    target_event_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("target_events.id"), index=True
    )
    url_hash: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(SafeText)
    title: Mapped[str] = mapped_column(SafeText)
    body: Mapped[str] = mapped_column(SafeText)
    # pending, sent, dead; held (waits for its digest until next_attempt_at), digested
    # (sent with digest_id); muted (its target is muted), suppressed (ended muted: a
    # down/recovered pair inside a mute, never sent)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(SafeText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # a held delivery: what it is about ({"added": 1, "removed": 2, "down": 1, ...})
    summary: Mapped[dict[str, int] | None] = mapped_column(JsonDocument())
    # a digested delivery: the digest delivery that took it in
    digest_id: Mapped[int | None] = mapped_column(Id, index=True)


class MuteRow(Base):
    """A target (or ``*``: every target) whose alerts are held back until ``until`` or
    until unmuted (``ended_at``); ``closed_at``: when what it held back was summarised."""

    __tablename__ = "mutes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(SafeText)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class KnownAnswerRow(Base):
    """The last one-page answer of a target, by digests (see :mod:`monitor.answers`):
    a new process recognises the same answer again without reading it."""

    __tablename__ = "known_answers"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    asked: Mapped[bytes] = mapped_column(LargeBinary(16))
    etag: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_modified: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_digest: Mapped[bytes] = mapped_column(LargeBinary(16))
    list_digest: Mapped[str] = mapped_column(String(64))
    model_count: Mapped[int] = mapped_column(Integer)
    watched: Mapped[str] = mapped_column(String(64))
    warnings: Mapped[list[str]] = mapped_column(JsonDocument())
