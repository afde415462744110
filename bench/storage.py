"""Benchmark 2: bytes stored per unchanged and per changed poll, against a naive JSON copy.

Real polls (:func:`monitor.poll.poll_target`, the product's client and Store on a
fresh SQLite file, one notification URL so a change queues its alert as in real use)
against the provider process, a simulated clock one minute apart. The size of the
database is measured after a WAL checkpoint as pages in use times the page size,
before and after each phase:

1. ``unchanged``: the same list again and again;
2. ``changed (IDs)``: each poll one model replaced by a new one (a change event);
3. ``changed (metadata)``: each poll one model's metadata changed (its price; the
   seed shape's ``owned_by``): same IDs, a new list, no change event;
4. ``changed (long run)``, on the big list: the two alternating for long enough that the
   list's lineage restarts (a span per model again) at least once, so the average
   includes what a restart costs.

"New content" is the canonical JSON of the model objects a changed poll brings that
were never seen before: what an ideal store would have to add. The naive store is a
table ``(id, target, fetched_at, body)`` keeping each answer's JSON, measured the same
way. Per-table figures come from SQLite's ``dbstat``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    fmt_bytes,
    quiet_logging,
    sqlite_bytes_by_table,
    sqlite_used_bytes,
    table,
    verdict,
)
from bench.models import body, model_objects
from bench.provider import ProviderProcess

GOAL_UNCHANGED = 100  # bytes per unchanged poll, about
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOTIFY = ("json://127.0.0.1:9/",)


@dataclasses.dataclass
class Scenario:
    name: str
    shape: str
    targets: int
    unchanged: int  # polls of each target
    changed: int  # ID changes, in all (round-robin over the targets)
    metadata: int  # metadata-only changes, in all
    long_run: int = 0  # alternating changes of the long-run phase


class StoragePoller:
    def __init__(self, provider: ProviderProcess, scenario: Scenario, root: Path) -> None:
        from monitor.config import Target
        from monitor.fetch import make_client
        from monitor.store import Store, open_engine, upgrade

        self.provider = provider
        self.shape = scenario.shape
        self.path = root / f"{scenario.name}.db"
        engine = open_engine(f"sqlite:///{self.path}", create=True)
        upgrade(engine)
        self.store = Store(engine)
        self.client = make_client()
        self.clock = T0
        self.targets = [
            Target(
                name=f"provider-{i:02d}",
                base_url="",
                api_key=None,
                interval=60.0,
                timeout=10.0,
                notify_urls=(),
                max_response_bytes=16 * 1024 * 1024,
            )
            for i in range(scenario.targets)
        ]
        self.revs = {t.name: "0" for t in self.targets}

    def poll(self, target: Any, rev: str | None = None) -> Any:
        from monitor.poll import poll_target

        if rev is not None:
            self.revs[target.name] = rev
        rev = self.revs[target.name]
        self.clock += timedelta(seconds=60 / len(self.targets))
        at = self.clock
        result = poll_target(
            dataclasses.replace(target, base_url=self.provider.url(self.shape, rev, target.name)),
            client=self.client,
            api_key=None,
            store=self.store,
            notify_urls=NOTIFY,
            now=lambda: at,
        )
        if not result.ok:
            raise RuntimeError(f"poll failed: {result.snapshot.error}")
        return result

    def size(self) -> tuple[int, dict[str, int]]:
        return sqlite_used_bytes(self.path), sqlite_bytes_by_table(self.path)

    def lineages(self) -> int:
        with sqlite3.connect(self.path) as db:
            (n,) = db.execute("SELECT count(*) FROM model_list_lineages").fetchone()
        return int(n)

    def close(self) -> None:
        self.client.close()
        self.store.close()


def naive_bytes_per_poll(shape: str, root: Path) -> float:
    """The naive store: each answer's JSON in a row ``(id, target, fetched_at, body)``,
    in SQLite (WAL, as the product's), measured the same way over 10 MB of answers."""
    path = root / f"naive-{shape}.db"
    for stale in root.glob(f"naive-{shape}.db*"):
        stale.unlink()
    payload = body(shape).decode()
    polls = max(20, min(1000, 10_000_000 // len(payload)))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE polls (id INTEGER PRIMARY KEY, target TEXT, fetched_at TEXT, body TEXT)"
        )
        db.execute("INSERT INTO polls (target, fetched_at, body) VALUES ('t', 'x', 'y')")
    db.close()
    before = sqlite_used_bytes(path)
    with sqlite3.connect(path) as db:
        for i in range(polls):
            at = (T0 + timedelta(minutes=i)).isoformat()
            db.execute(
                "INSERT INTO polls (target, fetched_at, body) VALUES (?, ?, ?)",
                ("provider-00", at, payload),
            )
    db.close()
    return (sqlite_used_bytes(path) - before) / polls


def _new_content(shape: str, old_rev: str, new_rev: str) -> int:
    """Bytes of canonical JSON of the objects in ``new_rev`` that ``old_rev`` lacks."""
    from monitor.modellist import canonical_json

    old = {canonical_json(o) for o in model_objects(shape, old_rev)}
    return sum(
        len(c.encode())
        for o in model_objects(shape, new_rev)
        if (c := canonical_json(o)) not in old
    )


def run_scenario(provider: ProviderProcess, scenario: Scenario, root: Path) -> dict[str, Any]:
    poller = StoragePoller(provider, scenario, root)
    try:
        for target in poller.targets:  # the baselines
            poller.poll(target)
        phases: list[dict[str, Any]] = []
        size, tables = poller.size()

        def phase(name: str, polls: int, new_content: float) -> None:
            nonlocal size, tables
            after, after_tables = poller.size()
            growth = {
                k: after_tables.get(k, 0) - tables.get(k, 0)
                for k in after_tables.keys() | tables.keys()
            }
            phases.append(
                {
                    "phase": name,
                    "polls": polls,
                    "bytes_per_poll": (after - size) / polls if polls else float("nan"),
                    "new_content": new_content,
                    "by_table": {k: v / polls for k, v in growth.items() if v and polls},
                }
            )
            size, tables = after, after_tables

        for _ in range(scenario.unchanged):
            for target in poller.targets:
                poller.poll(target)
        phase("unchanged", scenario.unchanged * len(poller.targets), 0.0)

        new_total = 0
        for i in range(scenario.changed):
            target = poller.targets[i % len(poller.targets)]
            old = poller.revs[target.name]
            new = str(int(old.split(".")[0]) + 1)
            new_total += _new_content(scenario.shape, old, new)
            result = poller.poll(target, new)
            if result.change is None:
                raise RuntimeError("an ID change was not recorded as a change")
        phase("changed (1 ID replaced)", scenario.changed, new_total / max(1, scenario.changed))

        new_total = 0
        for i in range(scenario.metadata):
            target = poller.targets[i % len(poller.targets)]
            old = poller.revs[target.name]
            start, _, price = old.partition(".")
            new = f"{start}.{int(price or 0) + 1}"
            new_total += _new_content(scenario.shape, old, new)
            poller.poll(target, new)
        phase(
            "changed (1 model's metadata)", scenario.metadata, new_total / max(1, scenario.metadata)
        )
        if scenario.long_run:
            lineages_before = poller.lineages()
            new_total = 0
            for i in range(scenario.long_run):
                target = poller.targets[i % len(poller.targets)]
                old = poller.revs[target.name]
                start, _, price = old.partition(".")
                new = f"{int(start) + 1}.{price}" if i % 2 else f"{start}.{int(price or 0) + 1}"
                new_total += _new_content(scenario.shape, old, new)
                poller.poll(target, new)
            phase("changed (long run)", scenario.long_run, new_total / scenario.long_run)
            phases[-1]["lineage_restarts"] = poller.lineages() - lineages_before
        return {
            "scenario": dataclasses.asdict(scenario),
            "json_bytes": len(body(scenario.shape)),
            "naive_bytes_per_poll": naive_bytes_per_poll(scenario.shape, root),
            "phases": phases,
            "total_bytes": size,
        }
    finally:
        poller.close()


def scenarios(unchanged: int, changed: int, big_unchanged: int, long_run: int) -> list[Scenario]:
    return [
        Scenario("seed4-1-target", "seed4", 1, unchanged, changed, changed),
        Scenario("seed4-10-targets", "seed4", 10, max(1, unchanged // 10), changed, changed),
        Scenario("or400-1-target", "or400", 1, big_unchanged, changed, changed, long_run),
    ]


def run(
    *, unchanged: int = 1000, changed: int = 20, big_unchanged: int = 300, long_run: int = 0
) -> dict[str, Any]:
    """``long_run``: changes of the big list's long-run phase; a lineage of 400 models
    restarts after about ``400 + LINEAGE_SLACK`` of them (0: no such phase)."""
    quiet_logging()
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-bytes-") as tmp, ProviderProcess() as provider:
        for scenario in scenarios(unchanged, changed, big_unchanged, long_run):
            out.append(run_scenario(provider, scenario, Path(tmp)))
    return {"scenarios": out}


def report(results: dict[str, Any]) -> str:
    out = [
        "## 2. Bytes per poll (SQLite)",
        "",
        "Growth of the database file in use (after `PRAGMA wal_checkpoint(TRUNCATE)`, "
        "`(page_count - freelist_count) x page_size`) over real polls, one minute apart; "
        "one notification URL configured, so a change also queues its alert.",
        "",
    ]
    rows = []
    worst_unchanged = 0.0
    for result in results["scenarios"]:
        sc = result["scenario"]
        label = f"{sc['shape']}, {sc['targets']} target{'s' if sc['targets'] > 1 else ''}"
        for ph in result["phases"]:
            if ph["phase"] == "unchanged":
                worst_unchanged = max(worst_unchanged, ph["bytes_per_poll"])
            rows.append(
                (
                    label,
                    ph["phase"],
                    ph["polls"],
                    round(ph["bytes_per_poll"]),
                    fmt_bytes(ph["new_content"]) if ph["phase"] != "unchanged" else "0",
                    round(result["naive_bytes_per_poll"]),
                    f"{result['json_bytes']:,}",
                )
            )
    out.append(
        table(
            [
                "list",
                "poll",
                "polls",
                "bytes/poll",
                "new content/poll",
                "naive bytes/poll",
                "JSON bytes",
            ],
            rows,
        )
    )
    restarts = [
        (r["scenario"]["shape"], ph)
        for r in results["scenarios"]
        for ph in r["phases"]
        if "lineage_restarts" in ph
    ]
    for shape, ph in restarts:
        out += [
            "",
            f"The {shape} long run alternates the two changes over {ph['polls']} polls; its "
            f"list lineage restarted {ph['lineage_restarts']} time(s) in it (a span per "
            "model again), and the average above includes that.",
        ]
    out += [
        "",
        f"Unchanged poll: at most **{worst_unchanged:.0f} bytes** (goal ≤ ~{GOAL_UNCHANGED}: "
        f"{verdict(worst_unchanged <= GOAL_UNCHANGED * 1.1)}).",
        "",
        "Where the bytes go, per poll (dbstat, tables and indexes):",
        "",
    ]
    by: dict[str, dict[str, float]] = defaultdict(dict)
    columns = []
    for result in results["scenarios"]:
        sc = result["scenario"]
        for ph in result["phases"]:
            column = f"{sc['shape']}x{sc['targets']} {ph['phase']}"
            columns.append(column)
            for name, value in ph["by_table"].items():
                by[name][column] = value
    names = sorted(by, key=lambda n: -max(abs(v) for v in by[n].values()))
    out.append(
        table(
            ["table or index", *columns],
            [(n, *(round(by[n].get(c, 0.0)) for c in columns)) for n in names],
        )
    )
    return "\n".join(out)


CHANGE_OVERHEAD = 2048  # bytes a change may add beyond its new objects (rows, alert)


def goals(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    unchanged = max(
        ph["bytes_per_poll"]
        for r in results["scenarios"]
        for ph in r["phases"]
        if ph["phase"] == "unchanged"
    )
    out.append(
        (
            "2. Bytes per unchanged poll (worst list)",
            f"{unchanged:.0f} B",
            f"≤ ~{GOAL_UNCHANGED} B: {verdict(unchanged <= GOAL_UNCHANGED * 1.1)}",
        )
    )
    for r in results["scenarios"]:
        if r["scenario"]["targets"] != 1:
            continue
        for ph in r["phases"]:
            if ph["phase"] == "unchanged":
                continue
            ok = ph["bytes_per_poll"] <= ph["new_content"] + CHANGE_OVERHEAD
            out.append(
                (
                    f"2. Changed poll stores only what is new ({r['scenario']['shape']}, "
                    f"{ph['phase'].removeprefix('changed ')})",
                    f"{fmt_bytes(ph['bytes_per_poll'])} for {fmt_bytes(ph['new_content'])} new",
                    f"≤ new + {CHANGE_OVERHEAD // 1024} KB: {verdict(ok)}",
                )
            )
    return out
