"""What every part of the store shares: its sessions, the translation of database
errors, and the query pieces several parts build on (newest first, a target's
latest good snapshot, a list's members)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Engine,
    Insert,
    ScalarSelect,
    Select,
    and_,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from monitor.errors import NotFoundError, StorageError
from monitor.store import schema
from monitor.store.engine import WRITE, describe_db_error

CHUNK = 500  # bound on bound parameters per statement
_Row = TypeVar("_Row", bound=schema.Base)
Timed = TypeVar("Timed", schema.Snapshot, schema.ChangeEvent, schema.TargetEvent)
# what each timed table is ordered by
TIME_OF: dict[type[schema.Base], InstrumentedAttribute[datetime]] = {
    schema.Snapshot: schema.Snapshot.fetched_at,
    schema.ChangeEvent: schema.ChangeEvent.detected_at,
    schema.TargetEvent: schema.TargetEvent.at,
}
_Value = TypeVar("_Value")

# a model list by its id, or a scalar subquery giving one
ListRef = int | ScalarSelect[int | None]


@contextmanager
def db_errors() -> Iterator[None]:
    """Database errors leave the store as a StorageError saying what went wrong."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(f"database error: {describe_db_error(exc)}") from None


class Sessions:
    """The engine and its sessions: reads on a plain session, writes on a session
    that begins as a writer (SQLite: BEGIN IMMEDIATE) and commits at the end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writer = engine.execution_options(**WRITE)  # SQLite: BEGIN IMMEDIATE
        self._writers = sessionmaker(self._writer, expire_on_commit=False)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with db_errors(), self._writers.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with db_errors(), self._sessions() as session:
            yield session

    def _get(
        self, table: type[_Row], key: int, what: str, record: Callable[[_Row], _Value]
    ) -> _Value:
        """The record of one row by its id; NotFoundError naming ``what`` when none."""
        with self._read() as session:
            row = session.get(table, key)
            if row is None:
                raise NotFoundError(f"no {what} with id {key}")
            return record(row)

    def _newest(
        self,
        table: type[Timed],
        record: Callable[[Timed], _Value],
        filters: tuple[str | None, datetime | None, int | None],
        before: int | None = None,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> list[_Value]:
        """Records of a timed table's rows, newest first: ``filters`` are the target, a
        time since, and at most how many; ``before``: only rows after that one in this
        order (see :func:`newest_first`); ``where``: more conditions."""
        query = newest_first(table, *filters, before=before).where(*where)
        with self._read() as session:
            return [record(row) for row in session.scalars(query)]


NEWEST_FIRST = (schema.Snapshot.fetched_at.desc(), schema.Snapshot.id.desc())


def newest_first(
    table: type[Timed],
    target: str | None,
    since: datetime | None,
    limit: int | None,
    *,
    before: int | None = None,
) -> Select[Any]:
    """Rows of a table of timed rows (snapshots, events), newest first, optionally of
    one target, since a time, at most ``limit``; ``before`` (a row's id): the rows that
    come after that row in this order, for the next page (keyset: as fast deep in the
    history as at its start)."""
    at = TIME_OF[table]
    query = select(table)
    if target is not None:
        query = query.where(table.target == target)
    if since is not None:
        query = query.where(at >= since)
    if before is not None:
        time_of = select(at).where(table.id == before).scalar_subquery()
        # "at <= time_of" first: a range the time index can serve; the rest filters ties
        query = query.where(at <= time_of, or_(at < time_of, table.id < before))
    query = query.order_by(at.desc(), table.id.desc())
    return query.limit(limit) if limit is not None else query


def list_of(snapshot_id: int) -> ScalarSelect[int | None]:
    """The list id of a snapshot, as a scalar subquery (null for a failed poll)."""
    return (
        select(schema.Snapshot.model_list_id)
        .where(schema.Snapshot.id == snapshot_id)
        .scalar_subquery()
    )


def latest_good(target: str, *columns: Any) -> Select[Any]:
    """``columns`` of the target's newest good snapshot (the baseline of its next list)."""
    return (
        select(*columns)
        .where(schema.Snapshot.target == target, schema.Snapshot.ok.is_(True))
        .order_by(*NEWEST_FIRST)
        .limit(1)
    )


def covers(
    span: type[schema.ModelListSpan], lists: type[schema.ModelListRow]
) -> ColumnElement[bool]:
    """The span holds its object in the list (of the same lineage)."""
    return and_(
        span.first_seq <= lists.seq, or_(span.last_seq.is_(None), span.last_seq >= lists.seq)
    )


def with_members(query: Select[Any], list_id: ListRef) -> Select[Any]:
    """``query`` over model_objects, narrowed to the objects of a list (an id, or a
    scalar subquery giving one) by a join: one span of a lineage covers an object at
    any one seq, so no object comes twice."""
    span = schema.ModelListSpan
    return (
        query.select_from(schema.ModelListRow)
        .join(span, span.lineage_id == schema.ModelListRow.lineage_id)
        .join(schema.ModelObject, schema.ModelObject.id == span.object_id)
        .where(schema.ModelListRow.id == list_id, covers(span, schema.ModelListRow))
    )


def insert_skipping_existing(session: Session, table: type[schema.Base], key: str) -> Insert:
    """``INSERT … ON CONFLICT (key) DO NOTHING`` for the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=[key])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
    return insert(table)
