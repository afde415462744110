"""Retention: deleting old snapshots, and the lists, spans and objects nobody points
at any more, without losing what history needs to read right."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, exists, func, select, update
from sqlalchemy.orm import Session

from monitor.store import schema
from monitor.store.records import PruneReport, VacuumReport
from monitor.store.sql import CHUNK, NEWEST_FIRST, Sessions, covers, db_errors, latest_good


class Retention(Sessions):
    """Pruning, in its own write transactions."""

    def prune(
        self, older_than: datetime, *, target: str | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Delete snapshots taken before ``older_than`` and the model lists and objects
        no snapshot points at any more. Never deleted: change events and the snapshots
        they point at, the snapshots down/recovered events point at, each target's
        baseline, each target's latest and latest good snapshot, and what each model's
        life needs (:meth:`_lives_to_keep`). With ``dry_run`` the same work is done and
        rolled back, so the counts are exact."""
        snap = schema.Snapshot
        with db_errors(), self._writers() as session:
            keep = self._snapshots_to_keep(session, target)
            query = select(snap.id, snap.target, snap.fetched_at).where(
                snap.fetched_at < older_than
            )
            if target is not None:
                query = query.where(snap.target == target)
            old = [row for row in session.execute(query.order_by(snap.id)) if row[0] not in keep]
            keep |= self._lives_to_keep(session, [(t, at) for _, t, at in old])
            doomed = [i for i, _, _ in old if i not in keep]
            for start in range(0, len(doomed), 5000):
                session.execute(
                    delete(schema.Snapshot).where(
                        schema.Snapshot.id.in_(doomed[start : start + 5000])
                    )
                )
                if not dry_run:
                    session.commit()
            lists = session.execute(
                delete(schema.ModelListRow).where(
                    ~exists().where(schema.Snapshot.model_list_id == schema.ModelListRow.id)
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

    def vacuum(self) -> VacuumReport:
        """Give the space prune freed back to the file system: prune only marks rows
        free for the database's own reuse. SQLite: ``VACUUM`` rewrites the file (it
        needs as much free disk again, and holds the write lock meanwhile).
        PostgreSQL: ``VACUUM FULL`` of the tables prune deletes from rewrites each
        under an exclusive lock (polls wait for it); autovacuum alone makes the space
        reusable but rarely returns it."""
        with db_errors(), self.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                before = _sqlite_bytes(connection)
                raw = connection.connection.dbapi_connection
                assert raw is not None
                raw.execute("VACUUM")  # outside any transaction
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return VacuumReport(before, _sqlite_bytes(connection))
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            before = postgres_bytes(autocommit)
            quote = connection.dialect.identifier_preparer.quote
            names = ", ".join(quote(t.__tablename__) for t in PRUNED)
            autocommit.exec_driver_sql(f"VACUUM (FULL, ANALYZE) {names}")
            return VacuumReport(before, postgres_bytes(autocommit))

    @staticmethod
    def _prune_spans(session: Session) -> None:
        """Drop spans no remaining list lies in, then lineages with no list left.

        Open spans describe the lineage's newest list, where its next list starts from;
        a lineage whose newest list is gone is first wound back to its newest remaining
        list, or the objects only the gone list held would be kept for ever."""
        span, lists, lineage = schema.ModelListSpan, schema.ModelListRow, schema.ModelListLineage
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
                ~exists().where(lists.lineage_id == span.lineage_id, covers(span, lists)),
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
    def _lives_to_keep(session: Session, old: Sequence[tuple[str, datetime]]) -> set[int]:
        """The good polls a model's life is read from, around each change event, per model
        it added or removed: its first sighting after the change's baseline (not the poll
        that confirmed it, under ``confirm_polls``) and the good poll before it; its last
        sighting before the change (not the baseline) and the good poll after it. So
        ``monitor model`` (first and last seen) and ``models --at`` read after a prune as
        before. Only changes with a prunable poll (``old``: target, time) inside them."""
        times: dict[str, list[datetime]] = {}
        for name, at in old:
            times.setdefault(name, []).append(at)
        for found in times.values():
            found.sort()
        change = schema.ChangeEvent
        start, end = schema.Snapshot.__table__.alias(), schema.Snapshot.__table__.alias()
        changes = session.execute(
            select(change.target, start.c.fetched_at, end.c.fetched_at)
            .add_columns(change.added, change.removed)
            .join(start, start.c.id == change.from_snapshot_id)
            .join(end, end.c.id == change.to_snapshot_id)
            .where(change.target.in_(list(times)))
        ).all()
        keep: set[int] = set()
        for name, since, until, added, removed in changes:
            found = times[name]
            # a prunable poll strictly inside the change's window, or nothing to do
            if not (added or removed) or bisect_right(found, since) == len(found):
                continue
            if found[bisect_right(found, since)] >= until:
                continue
            keep |= _around_sightings(session, name, since, until, added or [], removed or [])
        return keep

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
                latest.order_by(*NEWEST_FIRST).limit(1),
                latest_good(name, schema.Snapshot.id),
            ):
                found = session.scalar(query)
                if found is not None:
                    keep.add(found)
        return keep


def _around_sightings(
    session: Session,
    target: str,
    since: datetime,
    until: datetime,
    added: Iterable[str],
    removed: Iterable[str],
) -> set[int]:
    """:meth:`Retention._lives_to_keep` for one change of ``target`` between the polls
    at ``since`` (its baseline) and ``until``: the good polls in between, in time order,
    and the lists holding each model it added or removed."""
    snap, lists, span, obj = (
        schema.Snapshot,
        schema.ModelListRow,
        schema.ModelListSpan,
        schema.ModelObject,
    )
    polls = session.execute(
        select(snap.id, snap.model_list_id)
        .where(
            snap.target == target,
            snap.ok.is_(True),
            snap.fetched_at >= since,
            snap.fetched_at <= until,
        )
        .order_by(snap.fetched_at, snap.id)
    ).all()
    models = sorted(set(added) | set(removed))
    window = sorted({list_id for _, list_id in polls if list_id is not None})
    holding: dict[str, set[int]] = {m: set() for m in models}
    for first in range(0, len(models), CHUNK):
        for model_id, list_id in session.execute(
            select(obj.model_id, lists.id)
            .join(span, span.object_id == obj.id)
            .join(lists, lists.lineage_id == span.lineage_id)
            .where(
                obj.model_id.in_(models[first : first + CHUNK]),
                lists.id.in_(window),
                covers(span, lists),
            )
        ):
            holding[model_id].add(list_id)
    return _edges(polls, holding, added, removed)


def _edges(
    polls: Sequence[tuple[int, int | None]],
    holding: Mapping[str, set[int]],
    added: Iterable[str],
    removed: Iterable[str],
) -> set[int]:
    """Of ``polls`` (snapshot and list ids, in time order): for each added model the
    first poll listing it and the one before; for each removed model the last poll
    listing it and the one after."""
    keep: set[int] = set()
    for model_id in added:
        at = next((i for i, (_, lst) in enumerate(polls) if lst in holding[model_id]), None)
        if at is not None:
            keep.update(poll for poll, _ in polls[max(0, at - 1) : at + 1])
    for model_id in removed:
        at = next(
            (i for i in reversed(range(len(polls))) if polls[i][1] in holding[model_id]), None
        )
        if at is not None:
            keep.update(poll for poll, _ in polls[at : at + 2])
    return keep


# the tables prune deletes from
PRUNED = (
    schema.Snapshot,
    schema.ModelListRow,
    schema.ModelListSpan,
    schema.ModelListLineage,
    schema.ModelObject,
)


def _sqlite_bytes(connection: Connection) -> int:
    """The SQLite file's size: every page, in use or free."""
    pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
    size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
    connection.rollback()  # (the pragmas began a transaction VACUUM cannot run in)
    return int(pages) * int(size)


def postgres_bytes(connection: Connection) -> int:
    """The pruned tables' size, indexes and TOAST included."""
    total = 0
    for table in PRUNED:
        total += int(
            connection.exec_driver_sql(
                "SELECT pg_total_relation_size(to_regclass(%s))", (table.__tablename__,)
            ).scalar_one()
            or 0
        )
    return total
