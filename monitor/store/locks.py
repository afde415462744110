"""Replicas taking turns: which process polls a target now, and when any process
last polled each target. On PostgreSQL a poll runs under a session advisory lock
on its target; the poll transaction takes a transaction lock on the target's state
(:func:`lock_key` names both)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StorageError
from monitor.store import schema
from monitor.store.driver import Statement
from monitor.store.engine import describe_db_error
from monitor.store.sql import Sessions, db_errors


def lock_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64-bit) for one of our named locks."""
    digest = hashlib.sha256(("model-monitor:" + name).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PollLocks(Sessions):
    """Who polls which target now."""

    def last_polls(self) -> dict[str, datetime]:
        """When each target was last polled (by any process), in one query: the poll
        time its alert state was last saved with (a poll older than that one, recorded
        after it, is history and moves no state)."""
        with db_errors(), self.engine.connect() as connection:
            rows = connection.execute(
                select(schema.TargetStateRow.target, schema.TargetStateRow.updated_at)
            )
            return {target: at for target, at in rows}

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
        key = 0
        last: datetime | None = None
        try:
            if self.engine.dialect.name == "postgresql":
                key = lock_key("poll:" + target)
                connection = self.engine.connect()
                sql = "SELECT pg_advisory_lock(%s)" if wait else "SELECT pg_try_advisory_lock(%s)"
                result = connection.exec_driver_sql(sql, (key,)).scalar()
                locked = wait or bool(result)
                if locked and min_gap is not None:
                    last = _LAST_POLL.scalar(connection, {"target": target})
                connection.commit()  # the lock is the session's: no transaction left open
                if not locked:
                    yield False
                    return
            elif min_gap is not None:  # SQLite: a read outside any transaction
                last = _LAST_POLL.scalar_outside_transaction(self.engine, {"target": target})
            if min_gap is not None and last is not None and (now - last).total_seconds() < min_gap:
                yield False
                return
            yield True
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {describe_db_error(exc)}") from None
        finally:
            if connection is not None:
                try:
                    if locked and not connection.invalidated:  # else the lock died with it
                        connection.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (key,))
                        connection.commit()
                    connection.close()
                except SQLAlchemyError:
                    connection.invalidate()  # the server went away; so did the lock


# on every scheduled poll's path, so on the driver (its index:
# ``ix_snapshots_target_fetched_at``)
_LAST_POLL = Statement(
    select(schema.Snapshot.fetched_at)
    .where(schema.Snapshot.target == bindparam("target"))
    .order_by(schema.Snapshot.fetched_at.desc())
    .limit(1)
)
