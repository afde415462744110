"""Storage: the schema, opening and migrating the database, and the :class:`Store`.

The store's parts, one concept each: :mod:`~monitor.store.records` (the values it
hands out), :mod:`~monitor.store.lists` (content-addressed model lists),
:mod:`~monitor.store.polls` (the poll transaction), :mod:`~monitor.store.queries`
(reading the history), :mod:`~monitor.store.deliveries` (the outbox queue),
:mod:`~monitor.store.locks` (replicas taking turns), :mod:`~monitor.store.mutes`
(mutes and what they held back) and
:mod:`~monitor.store.retention` (pruning). Every database error leaves the store as
a :class:`~monitor.errors.StorageError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from monitor.store.deliveries import DeliveryQueue
from monitor.store.engine import open_engine, upgrade
from monitor.store.locks import PollLocks
from monitor.store.mutes import Mutes
from monitor.store.polls import Transaction
from monitor.store.queries import Queries
from monitor.store.records import (
    Baseline,
    ChangeRecord,
    DeliveryRecord,
    ModelEvent,
    ModelLife,
    PruneReport,
    Redirected,
    Sighting,
    SnapshotRecord,
    StoredState,
    TargetEventRecord,
    TargetSummary,
    VacuumReport,
)
from monitor.store.retention import Retention
from monitor.store.sql import db_errors


class Store(Queries, DeliveryQueue, PollLocks, Retention, Mutes):
    """The database of one monitor: one interface over its parts. A poll's writes go
    through :meth:`transaction`; the outbox queue and retention write in short
    transactions of their own; everything else reads."""

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One poll's writes, committed together (rolled back on any error). A plain
        connection: an ORM session joins it only for the writes that need one (a
        change, an event, an alert, a new list), not for a poll that changed nothing."""
        tx: Transaction | None = None
        try:
            with db_errors(), self._writer.begin() as connection:
                tx = Transaction(connection)
                yield tx
                tx.flush()
        finally:
            if tx is not None:
                tx.close()

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()


__all__ = [
    "Baseline",
    "ChangeRecord",
    "DeliveryRecord",
    "ModelEvent",
    "ModelLife",
    "PruneReport",
    "Redirected",
    "Sighting",
    "SnapshotRecord",
    "Store",
    "StoredState",
    "TargetEventRecord",
    "TargetSummary",
    "Transaction",
    "VacuumReport",
    "open_engine",
    "upgrade",
]
