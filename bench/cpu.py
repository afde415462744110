"""Benchmark 1: CPU per poll of the daemon's poll path against bare HTTP clients.

Every variant does the same work against the same provider, which runs in another
process so only the client's CPU is counted (``time.process_time``: all threads of
this process). ``T`` targets (each its own URL) are polled ``k`` times each, one poll
of a target at a time, ``T`` of them concurrently, in a pool of the daemon's size
(``max(4, min(32, T + 1))`` threads):

- ``poll_target``: :func:`monitor.poll.poll_target` with a real :class:`Store` on
  SQLite and :func:`monitor.fetch.make_client`, logging JSON lines as the daemon does;
- ``Daemon.poll``: the daemon's whole job (:meth:`monitor.daemon.Daemon.poll`: the
  poll turn, ``poll_target``, metrics), also against a provider that sends an ``ETag``
  and answers ``304 Not Modified`` (the daemon revalidates);
- bare ``httpx.Client`` in the same thread pool, GET + ``json.loads``;
- bare ``httpx.AsyncClient`` on one asyncio loop, ``T`` tasks, GET + ``json.loads``;

the bare clients each with httpx's default limits (100 connections, 20 kept alive for
5 s) and with a big keep-alive pool (1000 kept alive for 120 s, as one would set to keep
a connection per target between polls a minute apart) into which ``warm`` connections
were first opened at once; the big-pool runs do a fifth of the polls (they are slow)
and run once. The others run ``repeat`` times, interleaved; the median is reported. A
separate, sequential run of ``poll_target`` under cProfile says where a poll's CPU goes.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import median, quiet_logging, table, utcnow, verdict
from bench.provider import ProviderProcess

GOAL_RATIO = 1.5
POLL_TARGET = "poll_target (Store on SQLite, make_client, threads)"
DAEMON_POLL = "Daemon.poll (poll turn + poll_target + metrics, threads)"
DAEMON_ETAG = "Daemon.poll, the provider sends an ETag (304 Not Modified)"
SYNC = "bare httpx.Client, threads, default limits"
SYNC_BIG = "bare httpx.Client, threads, big keep-alive pool"
ASYNC = "bare httpx.AsyncClient, asyncio, default limits"
ASYNC_BIG = "bare httpx.AsyncClient, asyncio, big keep-alive pool"
BIG_POOL = httpx.Limits(
    max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=120.0
)


@dataclass
class Run:
    cpu_s: float
    wall_s: float
    requests: int
    pool: int = -1  # connections in the client's pool when the measured run began

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.requests


def _workers(targets: int) -> int:
    return max(4, min(32, targets + 1))  # as monitor.daemon.Daemon sizes its pool


def _measure(fn: Callable[[], int]) -> Run:
    cpu, wall = time.process_time(), time.perf_counter()
    done = fn()
    return Run(time.process_time() - cpu, time.perf_counter() - wall, done)


# -- the product's poll path ---------------------------------------------------


class PollPath:
    """A Store on a fresh SQLite file, the product's client, T targets with a baseline."""

    def __init__(
        self, provider: ProviderProcess, shape: str, targets: int, root: Path, rev: str = "0"
    ) -> None:
        from monitor.config import Config, Target
        from monitor.fetch import make_client
        from monitor.store import Store, open_engine, upgrade

        self.root = root
        url = f"sqlite:///{root / f'cpu-{shape}-{rev}.db'}"
        engine = open_engine(url, create=True)
        upgrade(engine)
        self.store = Store(engine)
        self.client = make_client()
        # a tiny interval so the daemon's "polled moments ago" check never skips a poll
        self.targets = [
            Target(
                name=f"t{i:03d}",
                base_url=provider.url(shape, rev, f"t{i:03d}"),
                api_key=None,
                interval=0.001,
                timeout=10.0,
                notify_urls=(),
                max_response_bytes=16 * 1024 * 1024,
            )
            for i in range(targets)
        ]
        self.config = Config(path=None, database_url=url, notify_urls=(), targets=(*self.targets,))
        for target in self.targets:  # the baselines: first polls store the list
            self.poll(target)

    def poll(self, target: Any) -> None:
        from monitor.poll import poll_target

        result = poll_target(
            target, client=self.client, api_key=None, store=self.store, notify_urls=(), now=utcnow
        )
        if not result.ok:
            raise RuntimeError(f"poll failed: {result.snapshot.error}")

    def daemon(self) -> Any:
        from monitor.daemon import Daemon

        return Daemon(
            self.config,
            store=self.store,
            client=self.client,
            sender=_NoSender(),
            keys={t.name: None for t in self.targets},
            now=utcnow,
        )

    def snapshots(self) -> int:
        return len(self.store.history())

    def close(self) -> None:
        self.client.close()
        self.store.close()


class _NoSender:
    def send(self, url: str, message: Any) -> Any:  # pragma: no cover - no alerts here
        raise AssertionError("no notification URL is configured")


def run_poll_target(path: PollPath, per_target: int) -> Run:
    def job(target: Any) -> int:
        for _ in range(per_target):
            path.poll(target)
        return per_target

    with ThreadPoolExecutor(_workers(len(path.targets))) as pool:
        return _measure(lambda: sum(pool.map(job, path.targets)))


def run_daemon_poll(path: PollPath, per_target: int) -> Run:
    daemon = path.daemon()
    for target in path.targets:  # a first poll: the daemon learns any ETag
        daemon.poll(target.name)
    before = path.snapshots()

    def job(target: Any) -> int:
        for _ in range(per_target):
            daemon.poll(target.name)
        return per_target

    with ThreadPoolExecutor(_workers(len(path.targets))) as pool:
        run = _measure(lambda: sum(pool.map(job, path.targets)))
    recorded = path.snapshots() - before
    if recorded != run.requests:
        raise RuntimeError(f"Daemon.poll recorded {recorded} of {run.requests} polls")
    return run


# -- bare clients --------------------------------------------------------------


def _urls(provider: ProviderProcess, shape: str, targets: int) -> list[str]:
    return [provider.url(shape, "0", f"t{i:03d}") + "/models" for i in range(targets)]


def run_sync_threads(
    provider: ProviderProcess, shape: str, targets: int, per_target: int, *, big: bool, warm: int
) -> Run:
    urls = _urls(provider, shape, targets)
    limits = BIG_POOL if big else httpx.Limits()  # httpx's defaults: 100, 20 kept alive
    with httpx.Client(limits=limits) as client:
        if big and warm:
            hold = _hold_url(provider, warm)
            with ThreadPoolExecutor(warm) as opener:
                list(opener.map(lambda _: client.get(hold), range(warm)))
        pool_size = _pool_size(client)

        def job(url: str) -> int:
            for _ in range(per_target):
                response = client.get(url)
                response.raise_for_status()
                json.loads(response.content)
            return per_target

        with ThreadPoolExecutor(_workers(targets)) as pool:
            run = _measure(lambda: sum(pool.map(job, urls)))
        run.pool = pool_size
        return run


def run_async(
    provider: ProviderProcess, shape: str, targets: int, per_target: int, *, big: bool, warm: int
) -> Run:
    urls = _urls(provider, shape, targets)
    limits = BIG_POOL if big else httpx.Limits()

    async def main() -> Run:
        async with httpx.AsyncClient(limits=limits) as client:
            if big and warm:
                hold = _hold_url(provider, warm)
                await asyncio.gather(*(client.get(hold) for _ in range(warm)))

            async def job(url: str) -> int:
                for _ in range(per_target):
                    response = await client.get(url)
                    response.raise_for_status()
                    json.loads(response.content)
                return per_target

            pool_size = _pool_size(client)
            cpu, wall = time.process_time(), time.perf_counter()
            done = sum(await asyncio.gather(*(job(u) for u in urls)))
            return Run(time.process_time() - cpu, time.perf_counter() - wall, done, pool_size)

    return asyncio.run(main())


def _hold_url(provider: ProviderProcess, warm: int) -> str:
    """An answer slow enough that ``warm`` requests sent together each open a connection."""
    return provider.url("seed4", "0", "warm") + f"/models?hold={0.1 + warm / 200:g}"


def _pool_size(client: httpx.Client | httpx.AsyncClient) -> int:
    """Connections the client's pool holds (httpx internals; -1 when they moved)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "connections", None)
    return len(connections) if connections is not None else -1


# -- where the CPU goes --------------------------------------------------------

_BUCKETS = (
    ("HTTP (httpx, httpcore, h11, ssl, socket)", ("httpx", "httpcore", "h11", "ssl", "socket")),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("sqlite3 driver", ("sqlite3",)),
    ("logging (structlog, logging)", ("structlog", "logging")),
    ("JSON", ("json",)),
    ("hashlib", ("hashlib", "sha256")),
    ("model-monitor", ("/monitor/",)),
    ("threading, locks", ("threading", "lock", "_thread")),
)


def _bucket(file: str, name: str) -> str:
    where = f"{file}:{name}"
    for label, keys in _BUCKETS:
        if any(k in where for k in keys):
            return label
    return "other (stdlib, builtins)"


def profile_poll_path(path: PollPath, polls: int) -> dict[str, Any]:
    """Sequential ``Daemon.poll`` calls for one target (the daemon's poll path, which
    includes ``poll_target``) under cProfile: own time per module group, cumulative time
    of the phases, and the functions that cost most, as shares of the profiled total."""
    target = path.targets[0]
    daemon = path.daemon()
    daemon.poll(target.name)
    profiler = cProfile.Profile(time.process_time)  # CPU, not waiting
    profiler.enable()
    for _ in range(polls):
        daemon.poll(target.name)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-9
    groups: dict[str, float] = defaultdict(float)
    for (file, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        groups[_bucket(file, name)] += tottime
    top = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:15]
    cumulative: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, _tt, cumtime, _callers) in raw.items():
        key = _PHASES.get((Path(file).name, name))
        if key is not None:
            cumulative[key] = max(cumulative.get(key, 0.0), cumtime)
    return {
        "polls": polls,
        "total_ms_per_poll": 1000 * total / polls,
        "groups": sorted(((k, v / total) for k, v in groups.items()), key=lambda kv: -kv[1]),
        "top": [
            (f"{Path(file).name}:{line} {name}", tt / total, 1000 * tt / polls)
            for (file, line, name), (_cc, _nc, tt, _ct, _callers) in top
        ],
        "phases": {k: cumulative[k] / total for k in _PHASES.values() if k in cumulative},
    }


_PHASES = {
    ("daemon.py", "poll"): "Daemon.poll",
    ("poll.py", "poll"): "  Poller.poll (turn, poll, send)",
    ("locks.py", "poll_turn"): "  Store.poll_turn (is it this process's turn?)",
    ("locks.py", "_last_poll_at"): "    of which the last poll's time (one driver-level query)",
    ("poll.py", "poll_target"): "  poll_target",
    ("fetch.py", "fetch_models"): "    fetch_models (HTTP GET, read, parse, digests)",
    ("fetch.py", "parse_models"): "      of which parse_models (JSON)",
    ("fetch.py", "_json"): "      of which reading the JSON",
    ("fetch.py", "_checked"): "      of which checking the entries",
    ("modellist.py", "from_objects"): "      of which ModelList.from_objects (digests)",
    ("poll.py", "record"): "    record (decide and write, one transaction)",
    ("__init__.py", "transaction"): "      Store.transaction (begin, commit, session)",
    ("polls.py", "target_state"): "      Transaction.target_state",
    ("poll.py", "decide"): "      decide (pure)",
    ("polls.py", "add_snapshot"): "      Transaction.add_snapshot",
    ("lists.py", "store"): "        of which ListWriter.store",
    ("polls.py", "save_target_state"): "      Transaction.save_target_state",
    ("poll.py", "_log_result"): "    logging the poll",
    ("metrics.py", "observe_poll"): "  Metrics.observe_poll",
    ("daemon.py", "status"): "  Daemon.status (systemd status line)",
}


# -- the benchmark -------------------------------------------------------------


def _variants(
    provider: ProviderProcess,
    path: PollPath,
    etag_path: PollPath,
    shape: str,
    targets: int,
    k: int,
    warm: int,
) -> dict[str, Callable[[], Run]]:
    few = max(1, k // 5)
    return {
        POLL_TARGET: lambda: run_poll_target(path, k),
        DAEMON_POLL: lambda: run_daemon_poll(path, k),
        DAEMON_ETAG: lambda: run_daemon_poll(etag_path, k),
        SYNC: lambda: run_sync_threads(provider, shape, targets, k, big=False, warm=warm),
        ASYNC: lambda: run_async(provider, shape, targets, k, big=False, warm=warm),
        SYNC_BIG: lambda: run_sync_threads(provider, shape, targets, few, big=True, warm=warm),
        ASYNC_BIG: lambda: run_async(provider, shape, targets, few, big=True, warm=warm),
    }


def run(
    *,
    requests: int = 1000,
    big_requests: int = 60,
    targets: int = 31,
    repeat: int = 3,
    warm: int = 200,
    profile_polls: int = 200,
    shapes: tuple[str, ...] = ("seed4", "or400"),
) -> dict[str, Any]:
    quiet_logging()
    results: dict[str, Any] = {
        "targets": targets,
        "workers": _workers(targets),
        "repeat": repeat,
        "warm": warm,
        "shapes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp, ProviderProcess() as provider:
        for shape in shapes:
            n = requests if shape == shapes[0] else big_requests
            per_target = max(1, n // targets)
            path = PollPath(provider, shape, targets, Path(tmp))
            etag_path = PollPath(provider, shape, targets, Path(tmp), rev="0e")
            variants = _variants(provider, path, etag_path, shape, targets, per_target, warm)
            runs: dict[str, list[Run]] = {name: [] for name in variants}
            for i in range(repeat):
                for name, fn in variants.items():
                    if i == 0 or name not in (SYNC_BIG, ASYNC_BIG):
                        runs[name].append(fn())
            rows = {
                name: {
                    "cpu_ms": median([r.cpu_ms for r in rs]),
                    "cpu_ms_all": [r.cpu_ms for r in rs],
                    "requests": rs[0].requests,
                    "per_s": median([r.requests / r.wall_s for r in rs]),
                    "pool": max(r.pool for r in rs),
                }
                for name, rs in runs.items()
            }
            entry: dict[str, Any] = {"rows": rows}
            if profile_polls:
                polls = max(1, profile_polls * n // requests)
                entry["profile"] = profile_poll_path(path, polls)
            path.close()
            etag_path.close()
            results["shapes"][shape] = entry
    for entry in results["shapes"].values():
        rows = entry["rows"]
        async_ms = rows[ASYNC]["cpu_ms"]
        entry["ratio"] = rows[POLL_TARGET]["cpu_ms"] / async_ms
        entry["daemon_ratio"] = rows[DAEMON_POLL]["cpu_ms"] / async_ms
        entry["sync_vs_async"] = rows[SYNC]["cpu_ms"] / async_ms
        entry["big_vs_default"] = {
            "sync": rows[SYNC_BIG]["cpu_ms"] / rows[SYNC]["cpu_ms"],
            "async": rows[ASYNC_BIG]["cpu_ms"] / async_ms,
        }
    return results


def report(results: dict[str, Any]) -> str:
    out = [
        "## 1. CPU per poll: the poll path against bare httpx clients",
        "",
        f"{results['targets']} targets polled concurrently, one poll of a target at a time, "
        f"in a pool of {results['workers']} threads (the daemon's size for that many targets; "
        "asyncio: as many tasks). The provider is another process; CPU is this process's "
        "(all threads), median of "
        f"{results['repeat']} interleaved runs. Default limits: httpx's (100 connections, 20 "
        "kept alive 5 s). Big pool: `httpx.Limits(max_connections=1000, "
        "max_keepalive_connections=1000, keepalive_expiry=120)`, as one would set to keep a "
        f"connection per target between polls; {results['warm']} connections opened into it "
        "first (one run, a fifth of the polls). *pool*: connections the client held when the "
        "measured run began.",
        "",
    ]
    for shape, entry in results["shapes"].items():
        rows = entry["rows"]
        async_ms = rows[ASYNC]["cpu_ms"]
        out += [f"**{shape}** ({_shape_words(shape)})", ""]
        out.append(
            table(
                ["client", "polls", "CPU ms/poll", "runs (ms)", "vs bare async", "polls/s", "pool"],
                [
                    (
                        name,
                        row["requests"],
                        row["cpu_ms"],
                        " / ".join(f"{v:.2f}" for v in row["cpu_ms_all"]),
                        f"{row['cpu_ms'] / async_ms:.2f}x",
                        row["per_s"],
                        row["pool"] if row["pool"] >= 0 else "",
                    )
                    for name, row in rows.items()
                ],
            )
        )
        out += [
            "",
            f"Ratio Daemon.poll (the daemon's whole job per poll) / bare async: "
            f"**{entry['daemon_ratio']:.2f}x** (goal ≤ {GOAL_RATIO}: "
            f"{verdict(entry['daemon_ratio'] <= GOAL_RATIO)}); poll_target alone, without "
            f"the daemon's answer cache: {entry['ratio']:.2f}x; bare sync-in-threads / bare async: "
            f"{entry['sync_vs_async']:.2f}x. Big keep-alive pool vs default limits: "
            f"sync {entry['big_vs_default']['sync']:.2f}x, "
            f"async {entry['big_vs_default']['async']:.2f}x the CPU per request.",
            "",
        ]
        if "profile" in entry:
            out += _profile_report(entry["profile"])
    return "\n".join(out)


def _shape_words(shape: str) -> str:
    from bench.models import body, parse_shape

    kind, size = parse_shape(shape)
    what = "DOS AI seed shape" if kind == "seed" else "OpenRouter-like, ~1 KB each"
    return f"{size} models, {what}, {len(body(shape)):,} bytes of JSON"


def _profile_report(profile: dict[str, Any]) -> list[str]:
    out = [
        f"Where a poll's CPU goes (cProfile, {profile['polls']} sequential `Daemon.poll` "
        f"calls for one target; {profile['total_ms_per_poll']:.2f} ms/poll under the "
        "profiler, which slows Python code more than C):",
        "",
        table(
            ["own time in", "share"],
            [(name, f"{share:.0%}") for name, share in profile["groups"]],
        ),
        "",
        table(
            ["phase (cumulative)", "share"],
            [(name, f"{share:.0%}") for name, share in profile["phases"].items()],
        ),
        "",
        "<details><summary>Top functions by own time</summary>",
        "",
        table(
            ["function", "share", "ms/poll"],
            [(name, f"{share:.1%}", ms) for name, share, ms in profile["top"]],
        ),
        "",
        "</details>",
        "",
    ]
    return out


def goals(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for shape, entry in results["shapes"].items():
        out.append(
            (
                f"1. CPU per poll, the daemon (Daemon.poll) ÷ bare async httpx ({shape})",
                f"{entry['daemon_ratio']:.2f}x (poll_target without cache {entry['ratio']:.2f}x)",
                f"≤ {GOAL_RATIO}x: {verdict(entry['daemon_ratio'] <= GOAL_RATIO)}",
            )
        )
    return out
