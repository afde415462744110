"""Content-addressed model lists: each distinct model object and each distinct list
is stored once, keyed by its digest; a list's membership is stored as spans over a
lineage of similar lists (see :class:`monitor.store.schema.ModelListLineage`), so a
changed list costs the rows of what changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from monitor.modellist import ModelList
from monitor.store import schema
from monitor.store.driver import Statement
from monitor.store.sql import CHUNK, insert_skipping_existing, latest_good

# a lineage takes new lists while its spans stay within twice the list's size plus this
LINEAGE_SLACK = 64


class ListWriter:
    """Stores model lists within a write transaction's session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def store(self, models: ModelList, now: datetime, target: str) -> int:
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
        list_id = find_list(self._session.connection(), models.digest)
        if list_id is not None:
            return list_id
        digests = [m.digest for m in models.models]
        object_ids = self._object_ids(digests)
        new = [m for m in models.models if m.digest not in object_ids]
        for start in range(0, len(new), CHUNK):
            session.execute(
                insert_skipping_existing(session, schema.ModelObject, "digest"),
                [
                    {"digest": m.digest, "model_id": m.id, "data": dict(m.data)}
                    for m in new[start : start + CHUNK]
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
        self, models: ModelList, members: set[int], now: datetime, target: str
    ) -> int | None:
        """Store the list as the next of its target's lineage; None where it should
        start a lineage of its own instead."""
        session = self._session
        lineage_id = session.scalar(
            latest_good(target, schema.ModelListRow.lineage_id).join(
                schema.Snapshot, schema.Snapshot.model_list_id == schema.ModelListRow.id
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
        for start in range(0, len(gone), CHUNK):
            session.execute(
                update(span)
                .where(
                    span.lineage_id == lineage_id,
                    span.last_seq.is_(None),
                    span.object_id.in_(gone[start : start + CHUNK]),
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
        self, models: ModelList, now: datetime, lineage_id: int, seq: int
    ) -> int | None:
        """The new list's id; None if another process stored the same list first."""
        list_id: int | None = self._session.scalar(
            insert_skipping_existing(self._session, schema.ModelListRow, "digest")
            .values(
                digest=models.digest,
                model_count=len(models),
                first_seen_at=now,
                lineage_id=lineage_id,
                seq=seq,
            )
            .returning(schema.ModelListRow.id)
        )
        return list_id

    def _list_id(self, digest: str) -> int:
        """The id of a list another process has just stored."""
        list_id = find_list(self._session.connection(), digest)
        assert list_id is not None
        return list_id

    def _insert_spans(self, lineage_id: int, object_ids: set[int], seq: int) -> None:
        rows = [
            {"lineage_id": lineage_id, "object_id": i, "first_seq": seq} for i in sorted(object_ids)
        ]
        for start in range(0, len(rows), CHUNK):
            self._session.execute(insert(schema.ModelListSpan), rows[start : start + CHUNK])

    def _object_ids(self, digests: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(digests), CHUNK):
            chunk = digests[start : start + CHUNK]
            found.update(
                self._session.execute(
                    select(schema.ModelObject.digest, schema.ModelObject.id).where(
                        schema.ModelObject.digest.in_(chunk)
                    )
                ).all()
            )
        return found


def find_list(connection: Connection, digest: str) -> int | None:
    """The id of the stored list with this digest, if there is one (on every poll's
    path: on the driver, see :mod:`monitor.store.driver`)."""
    list_id: int | None = _FIND.scalar(connection, {"digest": digest})
    return list_id


_FIND = Statement(
    select(schema.ModelListRow.id).where(schema.ModelListRow.digest == bindparam("digest"))
)
