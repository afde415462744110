"""Benchmark 3: latency of the history commands' queries at 10k, 100k and 1M snapshots.

A generator fills the database through the project's schema (SQLAlchemy core bulk
inserts into :mod:`monitor.store.schema` tables, batches of 10k rows, one transaction
per step) with a realistic history: ``targets`` targets polled once a minute in turn,
sharing ``providers`` providers (4 targets per provider: keys, regions), each
provider's list in 12 revisions of 4 to 400 models (a few hundred distinct lists in
all); about 1 % of polls failed (5xx, timeout, 401, 429), and about every 100th poll
of a target moves it to another revision of its list (a change event). The database
grows in steps (10k, then 100k, then 1M snapshots: the same history, longer), and at
each step every query runs ``runs`` times (after two warm-up calls) through the
product's :class:`~monitor.store.Store`, with a warm connection pool; process start is
not included. Targets, times and snapshot IDs are drawn at random for each run.

SQLite: the fill runs with ``PRAGMA synchronous=OFF`` on its own connection, then the
database is used as the product opens it; the product never runs ``ANALYZE`` on SQLite,
so neither does the benchmark. PostgreSQL: a schema of its own, dropped at the end;
``ANALYZE`` after each fill step, as autovacuum would soon do.
"""

from __future__ import annotations

import random
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, delete, event, func, insert, select, text

from bench.common import percentile, table, verdict
from bench.models import or_model

GOAL_MS = 100.0
T0 = datetime(2025, 1, 1, tzinfo=UTC)
INTERVAL = 60.0  # seconds between two polls of a target
REVISIONS = 12  # list revisions per provider
SIZES = (4, 20, 60, 150, 400)  # models in a provider's list, by provider number
BATCH = 10_000
FAILURES = (
    (502, "HTTP 502: server error"),
    (503, "HTTP 503: server error"),
    (None, "timed out after 10s waiting for the answer"),
    (401, "HTTP 401: authentication failed — check the API key"),
    (429, "HTTP 429: rate limited"),
)
QUERIES = (
    "history --target T --limit 20",
    "history --limit 20",
    "changes --target T",
    "models --target T --at TIME",
    "show ID",
)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# -- the generator -------------------------------------------------------------


def _table(model: Any) -> Table:
    """The core table of a :mod:`monitor.store.schema` model, for bulk inserts."""
    table: Table = model.__table__
    return table


def _model(provider: int, index: int) -> dict[str, Any]:
    if SIZES[provider % len(SIZES)] <= 20:  # small lists: the DOS AI seed shape
        return {
            "id": f"p{provider:02d}-model-{index:04d}",
            "object": "model",
            "created": 1711000000,
            "owned_by": f"provider-{provider:02d}",
        }
    data = or_model(provider * 10_000 + index)
    data["id"] = f"p{provider:02d}/{data['id']}"
    return data


@dataclass
class _Target:
    name: str
    provider: int
    offset: float  # seconds after the round's start
    rev: int = 0
    polls: int = 0
    confirmed: int | None = None  # snapshot id of the last confirmed list
    next_change: int = 0
    last_at: datetime = T0


@dataclass
class Generator:
    """A deterministic, growing history; :meth:`fill` adds snapshots up to a total."""

    targets: int = 100
    providers: int = 25
    seed: int = 1
    snapshots: int = 0
    change_events: int = 0
    _rng: random.Random = field(init=False)
    _targets: list[_Target] = field(init=False)
    _lists: dict[tuple[int, int], tuple[int, frozenset[str]]] = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.providers = min(self.providers, self.targets)
        self._targets = [
            _Target(
                name=f"provider-{i % self.providers:02d}-key-{i // self.providers}",
                provider=i % self.providers,
                offset=i * INTERVAL / self.targets,
                rev=self._rng.randrange(REVISIONS),
            )
            for i in range(self.targets)
        ]
        for t in self._targets:
            t.next_change = self._gap()
        self._lists = {}

    def _gap(self) -> int:
        return max(1, round(self._rng.expovariate(1 / 100)))

    @property
    def names(self) -> list[str]:
        return [t.name for t in self._targets]

    def span(self) -> tuple[datetime, datetime]:
        rounds = self.snapshots // self.targets
        return T0, T0 + timedelta(seconds=rounds * INTERVAL)

    def _store_lists(self, conn: Any) -> None:
        """Every model object and list revision, stored once (digests as the product's)."""
        from monitor.modellist import ModelList
        from monitor.store import schema

        objects: dict[str, int] = {}
        object_rows = []
        lineage_rows = []
        list_rows = []
        span_rows = []
        next_object = 1
        next_list = 1
        for provider in range(self.providers):
            size = SIZES[provider % len(SIZES)]
            pool = [_model(provider, i) for i in range(size + REVISIONS)]
            lineage = provider + 1  # a provider's revisions: one lineage, seq = revision
            for rev in range(REVISIONS):
                models = ModelList.from_objects(pool[rev : rev + size])
                for m in models.models:
                    if m.digest not in objects:
                        objects[m.digest] = next_object
                        object_rows.append(
                            {
                                "id": next_object,
                                "digest": m.digest,
                                "model_id": m.id,
                                "data": dict(m.data),
                            }
                        )
                        next_object += 1
                list_rows.append(
                    {
                        "id": next_list,
                        "digest": models.digest,
                        "model_count": len(models),
                        "first_seen_at": T0,
                        "lineage_id": lineage,
                        "seq": rev,
                    }
                )
                self._lists[(provider, rev)] = (next_list, frozenset(m.id for m in models.models))
                next_list += 1
            # pool[i] is in revisions i - size + 1 .. i (those that exist)
            spans = 0
            for i, obj in enumerate(pool):
                first, last = max(0, i - size + 1), min(i, REVISIONS - 1)
                if first > last:
                    continue
                digest = ModelList.from_objects([obj]).models[0].digest
                span_rows.append(
                    {
                        "lineage_id": lineage,
                        "object_id": objects[digest],
                        "first_seq": first,
                        "last_seq": None if last == REVISIONS - 1 else last,
                    }
                )
                spans += 1
            lineage_rows.append({"id": lineage, "tip_seq": REVISIONS - 1, "span_count": spans})
        for rows, model in (
            (object_rows, schema.ModelObject),
            (lineage_rows, schema.ModelListLineage),
            (list_rows, schema.ModelListRow),
            (span_rows, schema.ModelListSpan),
        ):
            for start in range(0, len(rows), BATCH):
                conn.execute(insert(_table(model)), rows[start : start + BATCH])

    def fill(self, engine: Engine, total: int) -> float:
        """Add snapshots (in rounds over every target) until there are ``total``; seconds."""
        from monitor.store import schema

        started = time.perf_counter()
        sqlite = engine.dialect.name == "sqlite"
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if sqlite and raw is not None:  # outside a transaction, for this connection only
                raw.execute("PRAGMA synchronous=OFF")
                raw.execute("PRAGMA cache_size=-262144")  # 256 MB for the fill
            if not self._lists:
                self._store_lists(conn)
            snapshots: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            while self.snapshots < total:
                round_no = self.snapshots // self.targets
                t = self._targets[self.snapshots % self.targets]
                self.snapshots += 1
                snapshot_id = self.snapshots
                at = T0 + timedelta(
                    seconds=round_no * INTERVAL + t.offset + self._rng.random() * 0.5
                )
                t.last_at = at
                t.polls += 1
                row = {
                    "id": snapshot_id,
                    "target": t.name,
                    "fetched_at": at,
                    "duration_ms": self._rng.randrange(40, 900),
                }
                if t.polls > 1 and self._rng.random() < 0.01:
                    status, error = self._rng.choice(FAILURES)
                    row.update(
                        ok=False, http_status=status, error=error, model_count=None,
                        model_list_id=None,
                    )  # fmt: skip
                    snapshots.append(row)
                else:
                    if t.confirmed is not None and t.polls >= t.next_change:
                        old_ids = self._lists[(t.provider, t.rev)][1]
                        t.rev = (t.rev + self._rng.randrange(1, REVISIONS)) % REVISIONS
                        new_ids = self._lists[(t.provider, t.rev)][1]
                        self.change_events += 1
                        changes.append(
                            {
                                "id": self.change_events,
                                "target": t.name,
                                "detected_at": at,
                                "from_snapshot_id": t.confirmed,
                                "to_snapshot_id": snapshot_id,
                                "added": sorted(new_ids - old_ids),
                                "removed": sorted(old_ids - new_ids),
                            }
                        )
                        t.next_change = t.polls + self._gap()
                        t.confirmed = snapshot_id
                    elif t.confirmed is None:
                        t.confirmed = snapshot_id  # the baseline
                    list_id, ids = self._lists[(t.provider, t.rev)]
                    row.update(
                        ok=True, http_status=200, error=None, model_count=len(ids),
                        model_list_id=list_id,
                    )  # fmt: skip
                    snapshots.append(row)
                if len(snapshots) >= BATCH or self.snapshots >= total:
                    conn.execute(insert(_table(schema.Snapshot)), snapshots)
                    if changes:
                        conn.execute(insert(_table(schema.ChangeEvent)), changes)
                    snapshots, changes = [], []
            self._store_states(conn)
            conn.commit()
            if sqlite and raw is not None:
                raw.execute("PRAGMA synchronous=NORMAL")
                raw.execute("PRAGMA cache_size=-2000")
        if not sqlite:
            with engine.connect() as conn:
                for name in (
                    "snapshots",
                    "change_events",
                    "model_lists",
                    "model_list_lineages",
                    "model_objects",
                ):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {name}))"
                    )
                conn.commit()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        return time.perf_counter() - started

    def _store_states(self, conn: Any) -> None:
        from monitor.modellist import ids_digest
        from monitor.store import schema

        conn.execute(delete(_table(schema.TargetStateRow)))
        rows = []
        for t in self._targets:
            ids = self._lists[(t.provider, t.rev)][1]
            rows.append(
                {
                    "target": t.name,
                    "confirmed_snapshot_id": t.confirmed,
                    "confirmed_digest": ids_digest(ids),
                    "confirmed_count": len(ids),
                    "candidate_digest": None,
                    "candidate_seen": 0,
                    "failures": 0,
                    "failing_since": None,
                    "last_error": None,
                    "down_alerted_at": None,
                    "updated_at": t.last_at,
                }
            )
        conn.execute(insert(_table(schema.TargetStateRow)), rows)


# -- databases -----------------------------------------------------------------


@contextmanager
def sqlite_database(root: Path) -> Iterator[str]:
    yield f"sqlite:///{root / 'history.db'}"


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A fresh schema in the given database, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield parsed.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def postgres_available(url: str) -> str | None:
    """None when the database answers, else why not."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"


# -- the queries ---------------------------------------------------------------


class Queries:
    """The history commands' Store calls, with their arguments drawn at random."""

    def __init__(self, store: Any, gen: Generator, seed: int = 7) -> None:
        self.store = store
        self.gen = gen
        self.rng = random.Random(seed)

    def _target(self) -> str:
        return self.rng.choice(self.gen.names)

    def calls(self) -> dict[str, Callable[[], Callable[[], Any]]]:
        """Each query: a function drawing the arguments, returning the timed call."""
        store = self.store

        def history_target() -> Callable[[], Any]:
            target = self._target()
            return lambda: store.history(target=target, limit=20)

        def history_all() -> Callable[[], Any]:
            return lambda: store.history(limit=20)

        def changes() -> Callable[[], Any]:
            target = self._target()
            return lambda: store.changes(target=target)

        def models_at() -> Callable[[], Any]:
            target = self._target()
            start, end = self.gen.span()
            when = start + (end - start) * self.rng.random()

            def call() -> Any:
                snapshot = store.models_at(target, when)
                return store.models(snapshot) if snapshot is not None else []

            return call

        def show() -> Callable[[], Any]:
            snapshot_id = self.rng.randint(1, self.gen.snapshots)

            def call() -> Any:
                return store.models(store.snapshot(snapshot_id))

            return call

        return dict(
            zip(QUERIES, (history_target, history_all, changes, models_at, show), strict=True)
        )


def time_queries(store: Any, gen: Generator, runs: int, budget: float) -> dict[str, dict[str, Any]]:
    """Median and p95 (ms) of each query over ``runs`` runs (fewer when one query has
    used ``budget`` seconds, at least 5), after two warm-up calls."""
    out = {}
    for name, draw in Queries(store, gen).calls().items():
        for _ in range(2):
            draw()()
        samples: list[float] = []
        spent = 0.0
        rows = 0
        while len(samples) < runs and (len(samples) < 5 or spent < budget):
            call = draw()
            started = time.perf_counter()
            result = call()
            elapsed = time.perf_counter() - started
            samples.append(elapsed * 1000)
            spent += elapsed
            rows += len(result)
        out[name] = {
            "median": statistics.median(samples),
            "p95": percentile(samples, 95),
            "max": max(samples),
            "runs": len(samples),
            "rows": rows / len(samples),
        }
    return out


@contextmanager
def _capture(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SELECT 1")):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def explain(store: Any, gen: Generator) -> dict[str, list[dict[str, Any]]]:
    """The plan of every statement each query runs, and what in it scans or sorts."""
    engine: Engine = store.engine
    sqlite = engine.dialect.name == "sqlite"
    out: dict[str, list[dict[str, Any]]] = {}
    for name, draw in Queries(store, gen, seed=11).calls().items():
        call = draw()
        with _capture(engine) as statements:
            call()
        plans = []
        for statement, parameters in statements:
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
                cursor.execute(prefix + statement, parameters)
                rows = cursor.fetchall()
                cursor.close()
                raw.rollback()
            finally:
                raw.close()
            lines = [f"{r[0]}|{r[1]}| {r[3]}" for r in rows] if sqlite else [r[0] for r in rows]
            if sqlite:
                lines = _sqlite_tree(rows)
            flags = _with_sizes(engine, _flags(lines, sqlite))
            plans.append({"sql": " ".join(statement.split()), "plan": lines, "flags": flags})
        out[name] = plans
    return out


def _sqlite_tree(rows: Sequence[Any]) -> list[str]:
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


_SORT_NODE = re.compile(r"^(Incremental )?Sort\s+\(")
_SCANNED = re.compile(r"(?:^SCAN|Seq Scan on) (\w+)")


def _flags(lines: list[str], sqlite: bool) -> list[str]:
    flags = []
    for line in lines:
        detail = line.strip().lstrip("-> ").strip()
        if sqlite:
            if detail.startswith("SCAN "):
                if " USING " in detail:
                    flags.append(f"full index walk (stops early only with a LIMIT): {detail}")
                else:
                    flags.append(f"FULL TABLE SCAN: {detail}")
            elif "TEMP B-TREE" in detail:
                flags.append(f"sort: {detail}")
        elif "Seq Scan" in detail:
            flags.append(f"FULL TABLE SCAN: {detail}")
        elif _SORT_NODE.match(detail):
            flags.append(f"sort: {detail}")
    return flags


def _with_sizes(engine: Engine, flags: list[str]) -> list[str]:
    """A full table scan's flag, with how many rows that table holds."""
    out = []
    for flag in flags:
        match = _SCANNED.search(flag.removeprefix("FULL TABLE SCAN: "))
        if flag.startswith("FULL TABLE SCAN") and match:
            with engine.connect() as conn:
                rows = conn.scalar(text(f"SELECT COUNT(*) FROM {match.group(1)}"))
            flag += f" ({match.group(1)}: {rows:,} rows)"
        out.append(flag)
    return out


# -- the benchmark -------------------------------------------------------------


def run_backend(
    backend: str,
    url: str,
    sizes: tuple[int, ...],
    *,
    targets: int,
    runs: int,
    budget: float,
) -> dict[str, Any]:
    from monitor.store import Store, open_engine, upgrade

    engine = open_engine(url, create=True)
    upgrade(engine)
    gen = Generator(targets=targets)
    steps = []
    try:
        for size in sizes:
            fill_s = gen.fill(engine, size)
            engine.dispose()  # as a new command would: a fresh pool, the product's settings
            store = Store(engine)
            counts = _counts(engine)
            steps.append(
                {
                    "size": size,
                    "fill_s": fill_s,
                    "counts": counts,
                    "queries": time_queries(store, gen, runs, budget),
                }
            )
        plans = explain(Store(engine), gen)
        db_bytes = _db_bytes(engine, url)
    finally:
        engine.dispose()
    return {"backend": backend, "steps": steps, "plans": plans, "db_bytes": db_bytes}


def _counts(engine: Engine) -> dict[str, int]:
    from monitor.store import schema

    with engine.connect() as conn:
        return {
            "snapshots": conn.scalar(select(func.count()).select_from(schema.Snapshot)) or 0,
            "lists": conn.scalar(select(func.count()).select_from(schema.ModelListRow)) or 0,
            "changes": conn.scalar(select(func.count()).select_from(schema.ChangeEvent)) or 0,
            "failed": conn.scalar(
                select(func.count()).select_from(schema.Snapshot).where(~schema.Snapshot.ok)
            )
            or 0,
        }


def _db_bytes(engine: Engine, url: str) -> int:
    if engine.dialect.name == "sqlite":
        from bench.common import sqlite_used_bytes

        return sqlite_used_bytes(url.removeprefix("sqlite:///"))
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            )
            or 0
        )


def run(
    *,
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000),
    targets: int = 100,
    runs: int = 30,
    budget: float = 5.0,
    postgres: str | None = DEFAULT_POSTGRES,
) -> dict[str, Any]:
    results: dict[str, Any] = {"sizes": sizes, "targets": targets, "backends": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-history-") as tmp,
        sqlite_database(Path(tmp)) as url,
    ):
        results["backends"].append(
            run_backend("SQLite", url, sizes, targets=targets, runs=runs, budget=budget)
        )
    if postgres:
        why = postgres_available(postgres)
        if why is None:
            with postgres_database(postgres) as url:
                results["backends"].append(
                    run_backend("PostgreSQL", url, sizes, targets=targets, runs=runs, budget=budget)
                )
        else:
            results["postgres_skipped"] = why
    else:
        results["postgres_skipped"] = "no PostgreSQL URL given"
    return results


def report(results: dict[str, Any]) -> str:
    out = [
        "## 3. History queries at 10k, 100k and 1M snapshots",
        "",
        f"{results['targets']} targets, one poll a minute each; milliseconds per call through "
        "`Store` (warm connection pool, process start excluded), median and p95 over the runs. "
        f"Goal: under {GOAL_MS:.0f} ms each at the largest size.",
        "",
    ]
    if "postgres_skipped" in results:
        out += [f"PostgreSQL skipped: {results['postgres_skipped']}.", ""]
    largest = max(results["sizes"])
    worst: list[tuple[str, str, float]] = []
    for backend in results["backends"]:
        headers = ["query (Store calls)"]
        for step in backend["steps"]:
            headers += [f"{_size(step['size'])} median", f"{_size(step['size'])} p95"]
        rows = []
        for query in QUERIES:
            row: list[Any] = [f"`{query}`"]
            for step in backend["steps"]:
                q = step["queries"][query]
                row += [q["median"], q["p95"]]
                if step["size"] == largest:
                    worst.append((backend["backend"], query, q["p95"]))
            rows.append(row)
        out += [f"**{backend['backend']}**", "", table(headers, rows), ""]
        fills = ", ".join(
            f"{_size(s['size'])}: {s['fill_s']:.0f} s ({s['counts']['lists']} lists, "
            f"{s['counts']['changes']:,} changes, {s['counts']['failed']:,} failed polls)"
            for s in backend["steps"]
        )
        out += [
            f"Fill time (cumulative steps) and content: {fills}. Database at "
            f"{_size(largest)}: {backend['db_bytes'] / 1e6:,.0f} MB.",
            "",
        ]
    over = [(b, q, p) for b, q, p in worst if p >= GOAL_MS]
    if worst:
        out += [
            f"At {_size(largest)}: slowest p95 {max(p for _, _, p in worst):.1f} ms "
            f"(goal < {GOAL_MS:.0f} ms: {verdict(not over)})"
            + (
                "; over the goal: " + ", ".join(f"{b} `{q}` {p:.0f} ms" for b, q, p in over)
                if over
                else ""
            )
            + ".",
            "",
        ]
    out += [f"### Query plans at {_size(largest)}", ""]
    for backend in results["backends"]:
        for query, plans in backend["plans"].items():
            flags = [f for p in plans for f in p["flags"]]
            scans = [f for f in flags if "FULL TABLE" in f]
            marker = " ⚠ " + "; ".join(scans) if scans else ""
            out += [f"**{backend['backend']}, `{query}`**{marker}", "", "```"]
            for plan in plans:
                out.append(plan["sql"])
                out += ["  " + line for line in plan["plan"]]
            out += ["```", ""]
            other = [f for f in flags if "FULL TABLE" not in f]
            if other:
                out += ["Notes: " + "; ".join(other), ""]
    return "\n".join(out)


def _size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


def goals(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    largest = max(results["sizes"])
    out = []
    for backend in results["backends"]:
        step = next(s for s in backend["steps"] if s["size"] == largest)
        name, worst = max(step["queries"].items(), key=lambda kv: kv[1]["p95"])
        out.append(
            (
                f"3. History queries at {_size(largest)} snapshots, {backend['backend']}",
                f"slowest p95 {worst['p95']:.1f} ms (`{name}`)",
                f"< {GOAL_MS:.0f} ms each: {verdict(worst['p95'] < GOAL_MS)}",
            )
        )
    if "postgres_skipped" in results:
        out.append(("3. History queries, PostgreSQL", "skipped", results["postgres_skipped"]))
    return out
