"""Benchmark 6: what a user pays, the whole ``monitor run`` process on its schedule,
against a bare asyncio httpx client (GET + ``json.loads``) polling the same targets on
the same schedule, side by side in one run.

For each workload (targets x list shape, interval) the real console script runs as a
subprocess on a fresh SQLite database against one provider process (pre-encoded bodies);
then :mod:`bench.bare` polls the same URLs. Both are measured the same way over the same
window, after a warm-up in which every target was polled at least once (so what is
measured is the steady state: unchanged answers):

- CPU per poll: the process's own CPU time in the window (``/proc/PID/stat`` for the
  daemon, ``time.process_time`` for the bare client) over the polls it completed in it
  (the daemon's counted from the database);
- peak RSS: ``VmHWM`` of each process (its whole life);
- start-up: from spawning ``monitor run`` to its "daemon started" log line (READY), and
  the CPU it took;
- on time: the share of polls that came within the interval plus the daemon's jitter
  (5 %, at most 5 s) plus 1 s of the target's previous poll.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    fmt_bytes,
    free_port,
    median,
    monitor_command,
    monitor_env,
    table,
    verdict,
    write_config,
)
from bench.models import body
from bench.provider import REPO, ProviderProcess
from bench.schedule import FIRST_RUN_SPREAD, JITTER, proc_cpu, proc_status
from monitor.poll import SKIP_IF_POLLED_WITHIN

# name: (targets, list shape, revision, interval s, window s); revision "0c": the list
# changes at every poll (one model replaced), so every poll measured is a changed one
WORKLOADS = {
    "150 x or400, 3 s": (150, "or400", "0", 3.0, 30.0),
    "150 x seed4, 3 s": (150, "seed4", "0", 3.0, 30.0),
    "150 x or400 changing, 3 s": (150, "or400", "0c", 3.0, 30.0),
    "150 x seed4, 3 s, [web] listen": (150, "seed4", "0", 3.0, 30.0),
    "1000 x or400, 60 s": (1000, "or400", "0", 60.0, 180.0),
}
GOAL_RSS_150 = 100.0
GOAL_RSS_1000 = 120.0
GOAL_CPU_BIG = 1.2
GOAL_CPU_SMALL = 1.5
GOAL_READY_S = 5.0
GOAL_ON_TIME = 0.99
GOAL_CHECK_ROUND = 1.5  # monitor check's wall time over one daemon round's
# the daemon serving the web app too ([web] listen, nobody browsing): its CPU per poll
# over the same workload's without, within this machine's run-to-run noise
WITH_WEB = frozenset({"150 x seed4, 3 s, [web] listen"})
GOAL_WEB_RATIO = 1.15


def _urls(
    provider: ProviderProcess, shape: str, targets: int, rev: str = "0"
) -> list[tuple[str, str]]:
    return [(f"t{i:04d}", provider.url(shape, rev, f"t{i:04d}")) for i in range(targets)]


def _used_bytes(db: Path) -> int:
    """Bytes the database uses now (pages in use, the WAL's included), read beside the
    daemon without a checkpoint."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        page_size, pages, free = (
            connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_size", "page_count", "freelist_count")
        )
    return int((pages - free) * page_size)


@contextlib.contextmanager
def _daemon(config: Path, log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """``monitor run`` with ``config``, logging into ``log_path``: the process and when it
    was spawned (monotonic); stopped with SIGTERM at the end, killed if it hangs."""
    with open(log_path, "w") as log:
        spawned = time.monotonic()
        proc = subprocess.Popen(
            [*monitor_command(), "-c", str(config), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=monitor_env(),
            cwd=config.parent,
        )
        try:
            yield proc, spawned
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _warmup(targets: int, interval: float) -> float:
    """Seconds until every target was polled once and its cache is warm."""
    return FIRST_RUN_SPREAD * targets + 1.5 * interval


def run_daemon(
    provider: ProviderProcess,
    targets: int,
    shape: str,
    interval: float,
    window: float,
    rev: str = "0",
    web: bool = False,
) -> dict[str, Any]:
    from monitor.store import Store, open_engine

    with tempfile.TemporaryDirectory(prefix="bench-process-") as tmp:
        root = Path(tmp)
        db = root / "monitor.db"
        config = write_config(
            root,
            f"sqlite:///{db}",
            _urls(provider, shape, targets, rev),
            concurrency=32,
            interval=interval,
        )
        if web:
            with config.open("a") as extra:
                extra.write(f'\n[web]\nlisten = "127.0.0.1:{free_port()}"\n')
        log_path = root / "daemon.log"
        with _daemon(config, log_path) as (proc, spawned):
            while "daemon started" not in log_path.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > spawned + 120:
                    raise RuntimeError("no start:\n" + log_path.read_text()[-2000:])
                time.sleep(0.02)
            ready_s = time.monotonic() - spawned
            ready_cpu = proc_cpu(proc.pid)
            time.sleep(_warmup(targets, interval))
            bytes0 = _used_bytes(db)
            cpu0, provider0, t0 = proc_cpu(proc.pid), proc_cpu(provider.pid), _now()
            time.sleep(window)
            cpu1, provider1, t1 = proc_cpu(proc.pid), proc_cpu(provider.pid), _now()
            bytes1 = _used_bytes(db)
            hwm_mb = proc_status(proc.pid).get("VmHWM", 0) / 1024
        engine = open_engine(f"sqlite:///{db}", create=False)
        try:
            polls = Store(engine).history()
            changes = Store(engine).changes()
        finally:
            engine.dispose()
        size_mb = db.stat().st_size / 1e6
    in_window = [p for p in polls if t0 <= p.fetched_at < t1]
    return {
        "ready_s": ready_s,
        "ready_cpu_s": ready_cpu,
        "cpu_s": cpu1 - cpu0,
        "provider_cpu_s": provider1 - provider0,
        "polls": len(in_window),
        "failed": sum(1 for p in in_window if not p.ok),
        "hwm_mb": hwm_mb,
        "on_time": _on_time(polls, interval, t0, t1),
        "db_mb": size_mb,
        "changes": sum(1 for c in changes if t0 <= c.detected_at < t1),
        "bytes_per_poll": (bytes1 - bytes0) / max(1, len(in_window)),
    }


def _on_time(polls: list[Any], interval: float, t0: datetime, t1: datetime) -> float:
    """Share of the window's polls that came within interval + jitter + 1 s of the
    target's previous poll."""
    late_after = timedelta(seconds=interval + min(interval * JITTER, 5.0) + 1.0)
    last: dict[str, datetime] = {}
    counted = on_time = 0
    for p in sorted(polls, key=lambda p: p.fetched_at):
        before = last.get(p.target)
        last[p.target] = p.fetched_at
        if before is not None and t0 <= p.fetched_at < t1:
            counted += 1
            on_time += p.fetched_at - before <= late_after
    return on_time / counted if counted else float("nan")


def run_bare(
    provider: ProviderProcess,
    targets: int,
    shape: str,
    interval: float,
    window: float,
    rev: str = "0",
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        urls = Path(tmp) / "urls.txt"
        urls.write_text("\n".join(f"{u}/models" for _, u in _urls(provider, shape, targets, rev)))
        timing = (interval, _warmup(targets, interval), window)
        out = subprocess.run(
            [sys.executable, "-m", "bench.bare", str(urls), *map(str, timing)],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
            timeout=_warmup(targets, interval) + window + 120,
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _now() -> datetime:
    return datetime.now(UTC)


def check_and_round(
    provider: ProviderProcess, targets: int, shape: str, interval: float
) -> dict[str, Any]:
    """``monitor check`` over ``targets`` against one daemon round of the same targets,
    both on the same database with every answer known (a first check stored the
    baselines), every list unchanged:

    - check: a steady ``monitor check``, spawn to exit, its CPU (``wait4``) and peak RSS;
    - round: ``monitor run`` started on that database once the replicas' rule lets it
      poll at once (the last check's polls are older than 80 % of the interval), from
      spawn until every target's poll is in its log; its CPU at that moment.
    """
    from bench.check import measured_check, timed_check

    with tempfile.TemporaryDirectory(prefix="bench-round-") as tmp:
        root = Path(tmp)
        names = _urls(provider, shape, targets)
        config = write_config(
            root, f"sqlite:///{root / 'monitor.db'}", names, concurrency=32, interval=interval
        )
        first_s, first_code, _ = timed_check(config, root)  # the baselines
        check_s, check_code, tail, check_cpu, check_hwm = measured_check(config, root)
        time.sleep(interval * SKIP_IF_POLLED_WITHIN + 0.5)
        log_path = root / "daemon.log"
        seen: set[str] = set()
        with _daemon(config, log_path) as (proc, spawned):
            with open(log_path, errors="replace") as lines:
                while len(seen) < targets:
                    if proc.poll() is not None or time.monotonic() > spawned + 2 * interval:
                        raise RuntimeError("no round:\n" + log_path.read_text()[-2000:])
                    for line in lines:
                        if '"poll ok"' in line:
                            seen.add(json.loads(line[line.index("{") :])["target"])
                    time.sleep(0.01)
            round_s = time.monotonic() - spawned
            round_cpu = proc_cpu(proc.pid)
            round_hwm = proc_status(proc.pid).get("VmHWM", 0) / 1024
    return {
        "targets": targets,
        "shape": shape,
        "bytes": len(body(shape)),
        "first_s": first_s,
        "check_s": check_s,
        "check_cpu_s": check_cpu,
        "check_hwm_mb": check_hwm,
        "codes": [first_code, check_code],
        "error": tail if check_code else None,
        "round_s": round_s,
        "round_cpu_s": round_cpu,
        "round_hwm_mb": round_hwm,
        "spread_s": FIRST_RUN_SPREAD * (targets - 1),
    }


def run(
    *,
    workloads: tuple[str, ...] = tuple(WORKLOADS),
    scale: float = 1.0,
    check_targets: int = 500,
    check_interval: float = 30.0,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    check = None
    with ProviderProcess() as provider:
        if check_targets:
            check = check_and_round(provider, check_targets, "or400", check_interval)
        for name in workloads:
            targets, shape, rev, interval, window = WORKLOADS[name]
            targets = max(2, int(targets * scale))
            window = max(2 * interval, window * scale)
            daemon = run_daemon(provider, targets, shape, interval, window, rev, name in WITH_WEB)
            bare = run_bare(provider, targets, shape, interval, window, rev)
            results[name] = {
                "targets": targets,
                "shape": shape,
                "changing": rev.endswith("c"),
                "web": name in WITH_WEB,
                "bytes": len(body(shape)),
                "interval": interval,
                "window": window,
                "daemon": daemon,
                "bare": bare,
            }
    return {"workloads": results, "check": check}


def _ms(r: dict[str, Any]) -> float:
    return 1000 * r["cpu_s"] / r["polls"] if r["polls"] else float("nan")


def ratio(w: dict[str, Any]) -> float:
    return _ms(w["daemon"]) / _ms(w["bare"])


def report(r: dict[str, Any]) -> str:
    results = r["workloads"]
    rows = []
    for name, w in results.items():
        d, b = w["daemon"], w["bare"]
        rows.append(
            (
                name,
                fmt_bytes(w["bytes"]),
                f"{d['polls']:,} / {b['polls']:,}",
                f"{_ms(d):.2f} / {_ms(b):.2f}",
                f"{ratio(w):.2f}x",
                f"{d['hwm_mb']:.0f} / {b['hwm_mb']:.0f} MB",
                f"{d['ready_s']:.1f} s ({d['ready_cpu_s']:.1f} s CPU)",
                f"{100 * d['on_time']:.1f} %",
                f"{d['provider_cpu_s'] / max(1, d['polls']) * 1000:.2f}",
                f"{d.get('changes', 0):,}",
                fmt_bytes(d.get("bytes_per_poll", float("nan"))),
            )
        )
    return "\n".join(
        [
            "## 6. The whole `monitor run` process against a bare async client",
            "",
            "Same targets, same schedule, one provider process; the window starts once every "
            "target was polled (its answer known), so the polls measured are unchanged "
            "answers, as most are; in the *changing* workload every answer is a new "
            "revision of the list (one model replaced), so every poll measured is a change "
            "(found, stored, recorded as an event; no notification URL is configured, so "
            "nothing is sent). *daemon / bare* in each cell; *DB bytes/poll*: growth of the "
            "SQLite database over the window (pages in use) per poll.",
            "",
            table(
                [
                    "workload",
                    "list",
                    "polls in window",
                    "CPU ms/poll",
                    "daemon / bare",
                    "peak RSS",
                    "daemon READY after",
                    "polls on time",
                    "provider CPU ms/poll",
                    "changes in window",
                    "DB bytes/poll",
                ],
                rows,
            ),
            *_check_report(r.get("check")),
        ]
    )


def _check_report(c: dict[str, Any] | None) -> list[str]:
    if not c:
        return []
    return [
        "",
        f"`monitor check` against one daemon round, {c['targets']} targets x a "
        f"{c['bytes'] / 1000:,.0f} KB list ({c['shape']}), every answer known and unchanged, "
        "one SQLite database: the check from spawn to exit; the round from spawning "
        "`monitor run` until every target's poll is logged. The daemon starts its targets "
        f"{FIRST_RUN_SPREAD * 1000:.0f} ms apart ({c['spread_s']:.1f} s for these), so "
        "a round's wall time is mostly that spread; the CPU is the work.",
        "",
        table(
            ["run", "wall", "CPU", "peak RSS"],
            [
                (
                    "monitor check",
                    f"{c['check_s']:.1f} s",
                    f"{c['check_cpu_s']:.1f} s",
                    f"{c['check_hwm_mb']:.0f} MB",
                ),
                (
                    "monitor run, first round",
                    f"{c['round_s']:.1f} s",
                    f"{c['round_cpu_s']:.1f} s",
                    f"{c['round_hwm_mb']:.0f} MB",
                ),
            ],
        ),
        "",
        f"The first check (every baseline stored) took {c['first_s']:.1f} s; exit codes "
        f"{' / '.join(map(str, c['codes']))}" + (f"; `{c['error']}`" if c["error"] else "") + ".",
    ]


def goals(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    results = r["workloads"]
    out: list[tuple[str, str, str]] = []
    c = r.get("check")
    if c:
        wall, cpu = c["check_s"] / c["round_s"], c["check_cpu_s"] / c["round_cpu_s"]
        out += [
            (
                f"4. `monitor check` / one daemon round, {c['targets']} x {c['shape']}",
                f"{c['check_s']:.1f} s / {c['round_s']:.1f} s = {wall:.2f}x wall ({cpu:.2f}x CPU)",
                f"≤ {GOAL_CHECK_ROUND}x: "
                + verdict(wall <= GOAL_CHECK_ROUND and c["codes"] == [0, 0]),
            ),
            (
                f"4. Peak RSS of `monitor check`, {c['targets']} x {c['shape']}",
                f"{c['check_hwm_mb']:.0f} MB",
                f"≤ {GOAL_RSS_150:.0f} MB: {verdict(c['check_hwm_mb'] <= GOAL_RSS_150)}",
            ),
        ]
    unchanged = {
        (w["targets"], w["shape"], w["interval"]): w
        for w in results.values()
        if not w.get("changing") and not w.get("web")
    }
    for name, w in results.items():
        d = w["daemon"]
        if w.get("changing"):
            same = unchanged.get((w["targets"], w["shape"], w["interval"]))
            beside = f"; unchanged {_ms(same['daemon']):.2f} ms" if same else ""
            out.append(
                (
                    f"6. CPU of a changed poll of `monitor run`, {name}",
                    f"{_ms(d):.2f} ms/poll ({ratio(w):.2f}x bare{beside}), "
                    f"{fmt_bytes(d['bytes_per_poll'])} stored a poll",
                    "reported beside the unchanged one",
                )
            )
            continue
        if w.get("web"):
            same = unchanged.get((w["targets"], w["shape"], w["interval"]))
            if same is not None:
                web_ratio = _ms(d) / _ms(same["daemon"])
                out.append(
                    (
                        f"6. CPU per poll with `[web] listen` ÷ without, {name}",
                        f"{_ms(d):.2f} / {_ms(same['daemon']):.2f} ms = {web_ratio:.2f}x",
                        f"≤ {GOAL_WEB_RATIO}x: {verdict(web_ratio <= GOAL_WEB_RATIO)}",
                    )
                )
            continue
        big = w["shape"].startswith("or")
        cpu_goal = GOAL_CPU_BIG if big else GOAL_CPU_SMALL
        out.append(
            (
                f"6. CPU per poll of `monitor run` / bare async client, {name}",
                f"{ratio(w):.2f}x",
                f"≤ {cpu_goal}x: {verdict(ratio(w) <= cpu_goal)}",
            )
        )
        rss_goal = GOAL_RSS_1000 if w["targets"] >= 1000 else GOAL_RSS_150
        out.append(
            (
                f"6. Peak RSS of `monitor run`, {name}",
                f"{d['hwm_mb']:.0f} MB",
                f"≤ {rss_goal:.0f} MB: {verdict(d['hwm_mb'] <= rss_goal)}",
            )
        )
        if w["targets"] >= 1000:
            out.append(
                (
                    f"6. Polls on time / READY, {name}",
                    f"{100 * d['on_time']:.1f} %, READY {d['ready_s']:.1f} s",
                    f"≥ 99 %, ≤ {GOAL_READY_S:g} s: "
                    + verdict(d["on_time"] >= GOAL_ON_TIME and d["ready_s"] <= GOAL_READY_S),
                )
            )
    big = [
        w
        for w in results.values()
        if w["shape"].startswith("or")
        and w["targets"] < 1000
        and not w.get("changing")
        and not w.get("web")
    ]
    small = [w for w in results.values() if w["shape"].startswith("seed") and not w.get("web")]
    if big and small:
        a, b = big[0]["daemon"]["hwm_mb"], small[0]["daemon"]["hwm_mb"]
        out.append(
            (
                "6. Peak RSS, big lists vs 4-model lists (150 targets)",
                f"{a:.0f} vs {b:.0f} MB ({100 * (a / b - 1):+.0f} %)",
                f"within 15 %: {verdict(a <= 1.15 * b)}",
            )
        )
    return out


__all__ = ["goals", "median", "report", "run"]
