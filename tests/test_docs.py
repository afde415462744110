"""The example queries of docs/schema.md run against a real database of ours."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import record_poll
from sqlalchemy import text

from monitor.modellist import ModelList
from monitor.store import Store

DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)


@pytest.fixture
def populated(store: Store) -> Store:
    now = datetime.now(UTC)
    lists = [
        ModelList.from_objects([{"id": "a", "pricing": {"prompt": "1"}}]),
        ModelList.from_objects([{"id": "a", "pricing": {"prompt": "1"}}, {"id": "b"}]),
    ]
    with store.transaction() as tx:
        ids = []
        for day, lst in enumerate([lists[0], lists[0], lists[1]]):
            at = now - timedelta(days=3 - day)
            ids.append(record_poll(tx, "openrouter", at, lst, duration_ms=5).id)
        tx.add_change(
            target="openrouter",
            detected_at=now - timedelta(days=1),
            from_snapshot_id=ids[1],
            to_snapshot_id=ids[2],
            added=["b"],
            removed=[],
        )
    return store


def runs_on(query: str, dialect: str) -> bool:
    postgres_only = ("date_trunc", "now()", "->")
    if dialect == "sqlite":
        return not any(token in query for token in postgres_only)
    return "unixepoch" not in query


def test_the_documented_queries_run(populated: Store) -> None:
    store = populated
    dialect = store.engine.dialect.name
    chosen = [q for q in QUERIES if runs_on(q, dialect)]
    assert len(chosen) >= 3
    with store.engine.connect() as connection:
        results = [connection.execute(text(q)).fetchall() for q in chosen]
    per_day = results[0]
    assert [row[2] for row in per_day] == [1, 1, 2]  # models per day: a, a, then a and b
    changes = results[1]
    assert len(changes) == 1
