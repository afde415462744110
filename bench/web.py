"""Benchmark 7: the dashboard's pages and the JSON API at 1M snapshots, as a user gets
them: the real ``monitor web`` process over a database filled by the generator of
benchmark 3 (100 targets, 1M snapshots, SQLite and PostgreSQL), each page and API call
requested over HTTP on 127.0.0.1 ``runs`` times (after two warm-up requests) with
arguments drawn at random: a target, a snapshot, a model, a deep page (``before=`` an
id far down the history). Latency is from sending the request to the last byte.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.common import (
    free_port,
    monitor_command,
    monitor_env,
    percentile,
    table,
    verdict,
    write_config,
)
from bench.queries import Generator, postgres_available, postgres_database, sqlite_database

GOAL_MS = 200.0


def _targets(gen: Generator) -> list[tuple[str, str]]:
    return [(name, "http://127.0.0.1:9/v1") for name in gen.names]  # never polled


def _samples(url: str) -> dict[str, Any]:
    """Ids and names to draw from: snapshots, the oldest changes and events (deep
    pages), model IDs."""
    from monitor.store import Store, open_engine, schema

    engine = open_engine(url, create=False)
    try:
        with engine.connect() as conn:
            top = conn.scalar(select(func.max(schema.Snapshot.id))) or 1
            changes = list(
                conn.scalars(
                    select(schema.ChangeEvent.id).order_by(schema.ChangeEvent.detected_at).limit(50)
                )
            )
            good = list(
                conn.scalars(
                    select(schema.Snapshot.id)
                    .where(schema.Snapshot.ok)
                    .order_by(schema.Snapshot.id.desc())
                    .limit(200)
                )
            )
        store = Store(engine)
        model_ids = sorted({m["id"] for m in store.models(store.snapshot(good[0]))})
    finally:
        engine.dispose()
    return {"top": top, "deep_changes": changes, "good": good, "model_ids": model_ids}


def _requests(
    gen: Generator, samples: dict[str, Any], rng: random.Random
) -> dict[str, Callable[[], str]]:
    start, end = gen.span()

    def target() -> str:
        return urllib.parse.quote(rng.choice(gen.names))

    def moment() -> str:
        return (start + (end - start) * rng.random()).isoformat().replace("+00:00", "Z")

    def snapshot() -> int:
        return rng.randint(1, samples["top"])

    def model() -> str:
        return urllib.parse.quote(rng.choice(samples["model_ids"]), safe="/")

    def deep() -> int:
        return int(rng.choice(samples["deep_changes"][1:]))

    def glob() -> str:  # one model's ID: the changes touching it are few, far apart
        return urllib.parse.quote(rng.choice(samples["model_ids"]), safe="")

    def pair() -> str:
        a, b = rng.sample(samples["good"], 2)
        return f"from={a}&to={b}"

    return {
        "/": lambda: "/",
        "/targets/T": lambda: f"/targets/{target()}",
        "/changes": lambda: "/changes",
        "/changes?before=(deep)": lambda: f"/changes?before={deep()}",
        "/models/ID": lambda: f"/models/{model()}",
        "/matrix": lambda: "/matrix",
        "/snapshots/ID": lambda: f"/snapshots/{snapshot()}",
        "/diff": lambda: f"/diff?{pair()}",
        "/changes?model=GLOB": lambda: f"/changes?model={glob()}",
        "/matrix?q=": lambda: f"/matrix?q={model()[:3]}",
        "/events": lambda: "/events",
        "/events?target=T": lambda: f"/events?target={target()}",
        "/deliveries": lambda: "/deliveries",
        "/deliveries?status=dead": lambda: "/deliveries?status=dead",
        "api targets": lambda: "/api/v1/targets",
        "api history?target=T": lambda: f"/api/v1/history?target={target()}",
        "api history?before=(deep)": lambda: f"/api/v1/history?before={rng.randint(1, 1000)}",
        "api changes (a page: 1,000)": lambda: "/api/v1/changes",
        "api changes?target=T": lambda: f"/api/v1/changes?target={target()}",
        "api changes?model=GLOB": lambda: f"/api/v1/changes?model={glob()}&limit=50",
        "api changes?before=(deep)": lambda: f"/api/v1/changes?before={deep()}",
        "api models?target=T&at=TIME": lambda: f"/api/v1/models?target={target()}&at={moment()}",
        "api snapshots/ID": lambda: f"/api/v1/snapshots/{snapshot()}",
        "api diff": lambda: f"/api/v1/diff?{pair()}",
        "api events": lambda: "/api/v1/events?limit=50",
        "api events (a page: 1,000)": lambda: "/api/v1/events",
        "api deliveries": lambda: "/api/v1/deliveries",
        "api model?id=ID": lambda: f"/api/v1/model?id={model()}",
    }


def time_web(url: str, gen: Generator, runs: int) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        root = Path(tmp)
        config = write_config(root, url, _targets(gen), concurrency=None)
        port = free_port()
        err = (root / "web.err").open("w")
        proc = subprocess.Popen(
            [
                *monitor_command(),
                "-c",
                str(config),
                "--log-level",
                "warning",
                "web",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=monitor_env(),
            cwd=root,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get("/static/style.css")
                        break
                    except httpx.TransportError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            said = (root / "web.err").read_text()[-2000:]
                            raise RuntimeError(f"monitor web did not start: {said}") from None
                        time.sleep(0.1)
                samples = _samples(url)
                rng = random.Random(11)
                results: dict[str, dict[str, Any]] = {}
                for name, path in _requests(gen, samples, rng).items():
                    times, statuses = [], set()
                    for i in range(runs + 2):
                        started = time.perf_counter()
                        response = client.get(path())
                        elapsed = (time.perf_counter() - started) * 1000
                        statuses.add(response.status_code)
                        if i >= 2:
                            times.append(elapsed)
                    results[name] = {
                        "p50_ms": percentile(times, 50),
                        "p95_ms": percentile(times, 95),
                        "statuses": sorted(statuses),
                    }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            err.close()
    return results


EVENTS_PER_TARGET = 200  # down/recovered pairs' rows a target has in the history
DELIVERIES = 50_000  # alerts in the outbox (2 URLs a change, most sent)


def add_alerts(engine: Any, gen: Generator) -> None:
    """Down and recovered events for every target and the deliveries of changes and
    events (sent, a few dead or pending), so ``/events`` and ``/deliveries`` read a
    history of the size 1M snapshots comes with."""
    from sqlalchemy import insert

    from monitor.store import schema

    rng = random.Random(5)
    start, end = gen.span()
    span = (end - start).total_seconds()
    with engine.begin() as conn:
        change_ids = list(conn.scalars(select(schema.ChangeEvent.id)))
        some_snapshot = conn.scalar(select(func.min(schema.Snapshot.id)))
        events = []
        for name in gen.names:
            for i in range(EVENTS_PER_TARGET):
                at = start + (end - start) * ((i + rng.random()) / EVENTS_PER_TARGET)
                down = i % 2 == 0
                events.append(
                    {
                        "target": name,
                        "kind": "down" if down else "recovered",
                        "at": at,
                        "since": at,
                        "failures": 3 if down else None,
                        "error": "HTTP 503: server error" if down else None,
                        "duration_s": None if down else rng.random() * span / 1000,
                        "snapshot_id": some_snapshot,
                    }
                )
        conn.execute(insert(schema.TargetEvent), events)
        event_ids = list(conn.scalars(select(schema.TargetEvent.id)))
        rows = []
        for i in range(DELIVERIES):
            on_change = i % 3 != 0 and change_ids
            at = start + (end - start) * (i / DELIVERIES)
            status = rng.choices(["sent", "dead", "pending"], [96, 2, 2])[0]
            rows.append(
                {
                    "target": rng.choice(gen.names),
                    "change_event_id": rng.choice(change_ids) if on_change else None,
                    "target_event_id": None if on_change else rng.choice(event_ids),
                    "url_hash": f"{i % 2:064d}",
                    "url": f"json://hooks.example.com/{i % 2}",
                    "title": "provider-00-key-0: 1 model added",
                    "body": "**Added (1):**\n- a-model",
                    "status": status,
                    "attempts": 1,
                    "created_at": at,
                    "next_attempt_at": at,
                    "sent_at": at if status == "sent" else None,
                }
            )
        conn.execute(insert(schema.DeliveryRow), rows)


def run_backend(backend: str, url: str, size: int, targets: int, runs: int) -> dict[str, Any]:
    from monitor.store import open_engine, upgrade

    engine = open_engine(url, create=True)
    upgrade(engine)
    gen = Generator(targets=targets)
    try:
        fill_s = gen.fill(engine, size)
        add_alerts(engine, gen)
    finally:
        engine.dispose()
    return {"backend": backend, "size": size, "fill_s": fill_s, "calls": time_web(url, gen, runs)}


def run(
    *,
    size: int = 1_000_000,
    targets: int = 100,
    runs: int = 20,
    postgres: str | None = None,
) -> dict[str, Any]:
    results: dict[str, Any] = {"size": size, "targets": targets, "backends": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-web-db-") as tmp,
        sqlite_database(Path(tmp)) as url,
    ):
        results["backends"].append(run_backend("SQLite", url, size, targets, runs))
    if postgres and postgres_available(postgres) is None:
        with postgres_database(postgres) as url:
            results["backends"].append(run_backend("PostgreSQL", url, size, targets, runs))
    else:
        results["postgres_skipped"] = "no PostgreSQL" if postgres else "not asked for"
    return results


def report(r: dict[str, Any]) -> str:
    names = list(r["backends"][0]["calls"]) if r["backends"] else []
    headers = ["page or call", *(f"{b['backend']} p50 / p95 (ms)" for b in r["backends"])]
    rows = []
    for name in names:
        cells = []
        for b in r["backends"]:
            c = b["calls"][name]
            bad = [s for s in c["statuses"] if s != 200]
            cells.append(
                f"{c['p50_ms']:.1f} / {c['p95_ms']:.1f}" + (f" (HTTP {bad})" if bad else "")
            )
        rows.append([f"`{name}`", *cells])
    return "\n".join(
        [
            "## 7. The dashboard and the API at 1M snapshots",
            "",
            f"The real `monitor web` over {r['size']:,} snapshots of {r['targets']} targets "
            "(benchmark 3's generator), each page or call requested over HTTP with random "
            "arguments; from sending the request to the last byte.",
            "",
            table(headers, rows),
        ]
    )


def goals(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for b in r["backends"]:
        worst = max(b["calls"].items(), key=lambda kv: kv[1]["p95_ms"])
        ok = all(c["p95_ms"] < GOAL_MS and c["statuses"] == [200] for c in b["calls"].values())
        slow = [n for n, c in b["calls"].items() if c["p95_ms"] >= GOAL_MS]
        out.append(
            (
                f"7. Every page and API call at {b['size']:,} snapshots, {b['backend']}",
                f"slowest p95 {worst[1]['p95_ms']:.0f} ms (`{worst[0]}`)"
                + (f"; over the goal: {', '.join(slow)}" if slow else ""),
                f"< {GOAL_MS:.0f} ms p95 each: {verdict(ok)}",
            )
        )
    return out
