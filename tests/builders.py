"""Values the tests build again and again: targets, model lists, stored polls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from monitor.config import Target
from monitor.modellist import ModelList
from monitor.store import SnapshotRecord, Store, Transaction, schema


def make_target(base_url: str, **overrides: Any) -> Target:
    """A target as the config would give it: ``dos-ai``, no key, 60 s, 5 s timeout."""
    settings: dict[str, Any] = {
        "name": "dos-ai",
        "base_url": base_url,
        "api_key": None,
        "interval": 60.0,
        "timeout": 5.0,
        "notify_urls": (),
        "max_response_bytes": 1024 * 1024,
    }
    return Target(**{**settings, **overrides})


def models(*ids: str, **extra: object) -> ModelList:
    """A list of seed-shaped model objects with these IDs (and ``extra`` fields)."""
    return ModelList.from_objects([{"id": i, "object": "model", **extra} for i in ids])


def record_poll(
    tx: Transaction,
    target: str,
    at: datetime,
    lst: ModelList | None,
    *,
    http_status: int | None = None,
    error: str | None = None,
    duration_ms: int = 3,
) -> SnapshotRecord:
    """Store one poll: good with ``lst``, or failed (``lst`` None) with ``error``."""
    ok = lst is not None
    return tx.add_snapshot(
        target=target,
        fetched_at=at,
        ok=ok,
        http_status=http_status if http_status is not None else 200 if ok else 503,
        error=error,
        duration_ms=duration_ms,
        models=lst,
    )


def count_rows(store: Store, table: type[schema.Base]) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def json_escaped(text: str) -> str:
    """``text`` with every character written as a JSON ``\\uXXXX`` escape, as a provider
    may spell a key it echoes back."""
    return "".join(f"\\u{ord(c):04x}" for c in text)
