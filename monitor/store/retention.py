"""Retention: deleting old snapshots, and the lists, spans and objects nobody points
at any more, without losing what history needs to read right."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from monitor.store import schema
from monitor.store.records import PruneReport
from monitor.store.sql import NEWEST_FIRST, Sessions, covers, db_errors, latest_good


class Retention(Sessions):
    """Pruning, in its own write transactions."""

    def prune(
        self, older_than: datetime, *, target: str | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Delete snapshots taken before ``older_than`` and the model lists and objects
        no snapshot points at any more. Never deleted: change events and the snapshots
        they point at, the snapshots down/recovered events point at, each target's
        baseline, and each target's latest and latest good snapshot. With ``dry_run``
        the same work is done and rolled back, so the counts are exact."""
        with db_errors(), self._writers() as session:
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
