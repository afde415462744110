"""What ``monitor prune`` frees on disk, and what ``--vacuum`` gives back.

``python -m bench.prune [--polls N] [--postgres URL | --no-postgres]``: a history of
N polls a minute apart of one target (20 OpenRouter-like models, their prices moving
at every poll, so every poll has a list and objects of its own, as a busy provider
does), written through the store; then the real ``monitor prune --older-than 10m``
process, then ``monitor prune --older-than 10m --vacuum``. Sizes: the SQLite file on
disk (after a WAL checkpoint), PostgreSQL's pruned tables (``pg_total_relation_size``,
indexes and TOAST included). Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import tempfile
import time
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import monitor_command, monitor_env, table, utcnow
from bench.models import or_model
from bench.queries import postgres_available, postgres_database, sqlite_database


def fill(db_url: str, polls: int) -> None:
    """``polls`` good polls of ``or-ai``, one a minute, ending now."""
    from monitor.modellist import ModelList
    from monitor.store import Store, open_engine, upgrade

    engine = open_engine(db_url, create=True)
    upgrade(engine)
    store = Store(engine)
    try:
        end = utcnow()
        for n in range(polls):
            at = end - timedelta(minutes=polls - n)
            models = ModelList.from_objects([or_model(i, price_rev=n) for i in range(20)])
            with store.transaction() as tx:
                tx.add_snapshot(
                    target="or-ai",
                    fetched_at=at,
                    ok=True,
                    http_status=200,
                    error=None,
                    duration_ms=5,
                    models=models,
                )
    finally:
        store.close()


def on_disk(db_url: str) -> int:
    """The SQLite file's size after a checkpoint, or PostgreSQL's pruned tables'."""
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return os.stat(path).st_size
    from monitor.store import open_engine
    from monitor.store.retention import postgres_bytes

    engine = open_engine(db_url, create=False)
    try:
        with engine.connect() as connection:
            return postgres_bytes(connection)
    finally:
        engine.dispose()


def prune(root: Path, *args: str) -> tuple[dict[str, Any], float]:
    """The real ``monitor prune`` process: its JSON, and its wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [*monitor_command(), "-c", str(root / "config.toml"), "prune", "--json", *args],
        capture_output=True,
        text=True,
        env=monitor_env(),
        check=True,
    )
    return json.loads(done.stdout), time.perf_counter() - started


def measure(kind: str, database: AbstractContextManager[str], polls: int) -> list[Any]:
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmp, database as db_url:
        root = Path(tmp)
        (root / "config.toml").write_text(f"[database]\nurl = {json.dumps(db_url)}\n")
        fill(db_url, polls)
        full = on_disk(db_url)
        pruned, prune_s = prune(root, "--older-than", "10m")
        after_prune = on_disk(db_url)
        vacuumed, vacuum_s = prune(root, "--older-than", "10m", "--vacuum")
        after_vacuum = on_disk(db_url)
        return [
            kind,
            f"{pruned['snapshots']} of {polls}",
            f"{full:,}",
            f"{after_prune:,}",
            f"{after_vacuum:,}",
            f"{vacuumed['vacuum']['bytes_before']:,} → {vacuumed['vacuum']['bytes_after']:,}",
            f"{prune_s:.2f} s / {vacuum_s:.2f} s",
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=351)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("MONITOR_TEST_POSTGRES_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-prune-db-") as tmp:
        rows.append(measure("SQLite", sqlite_database(Path(tmp)), args.polls))
    if not args.no_postgres and postgres_available(args.postgres) is None:
        rows.append(measure("PostgreSQL", postgres_database(args.postgres), args.polls))
    print(
        table(
            [
                "database",
                "snapshots pruned",
                "bytes before",
                "after prune",
                "after --vacuum",
                "--vacuum reported",
                "prune / prune --vacuum",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
