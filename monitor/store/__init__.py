"""Storage: the schema, opening and migrating the database, and named queries."""

from monitor.store.engine import open_engine, upgrade
from monitor.store.store import (
    Baseline,
    ChangeRecord,
    DeliveryRecord,
    SnapshotRecord,
    Store,
    TargetEventRecord,
    Transaction,
)

__all__ = [
    "Baseline",
    "ChangeRecord",
    "DeliveryRecord",
    "SnapshotRecord",
    "Store",
    "TargetEventRecord",
    "Transaction",
    "open_engine",
    "upgrade",
]
