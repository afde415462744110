"""Benchmark 4: polls kept to schedule by the real daemon, many targets, compressed time.

500 targets at a 60 s interval, compressed: 500 targets every 5 s. The real console
script (``monitor run``, next to ``sys.executable``) runs as a subprocess on a fresh
SQLite database against one provider process serving every target under its own base
path. The daemon starts the targets' first polls 50 ms apart (25 s for 500), so it runs
for that spread plus ``window`` seconds; the polls are counted from the database
afterwards, in the steady window (every target started) and in the first ``window``
seconds. Peak RSS is the daemon's ``VmHWM`` (``/proc/PID/status``) just before SIGTERM;
its CPU is ``utime + stime`` from ``/proc/PID/stat``.

Lateness of a poll is its ``fetched_at`` minus its nominal time: a target's k-th poll is
due at ``start + 50 ms * index + k * interval`` (``start`` from the daemon's "daemon
started" log line). A gap over 1.5 intervals between two polls of a target counts as a
missed poll.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    median,
    monitor_command,
    monitor_env,
    percentile,
    table,
    verdict,
    write_config,
)
from bench.provider import ProviderProcess

GOAL_RSS_MB = 150.0
FIRST_RUN_SPREAD = 0.05  # seconds between the first polls of two targets (monitor.daemon)
JITTER = 0.05  # share of the interval APScheduler may add to each run (monitor.daemon)


def schedule_config(root: Path, provider: ProviderProcess, targets: int, interval: float) -> Path:
    """The config; ``[defaults] max_concurrency = 32`` when this version knows the key."""
    names = [f"t{i:03d}" for i in range(targets)]
    return write_config(
        root,
        f"sqlite:///{root / 'monitor.db'}",
        [(name, provider.url("seed4", "0", name)) for name in names],
        concurrency=32 if _knows_max_concurrency() else None,
        interval=interval,
    )


def _knows_max_concurrency() -> bool:
    from monitor.config import parse_config
    from monitor.errors import ConfigError

    try:
        parse_config({"defaults": {"max_concurrency": 32}}, path=None, environ={})
    except ConfigError:
        return False
    return True


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS in KB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _log_events(path: Path) -> tuple[datetime | None, Counter[str], list[str]]:
    """When the daemon started, its warnings and errors by event, and the first exception
    it logged (last line) followed by any lines that were not JSON."""
    started = None
    events: Counter[str] = Counter()
    problems: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line[line.index("{") :])
        except ValueError:
            problems.append(line)
            continue
        name = str(entry.get("event", ""))
        level = entry.get("level", "info")
        if name == "daemon started" and started is None:
            started = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
        if level in ("warning", "error", "critical"):
            events[f"{level}: {name[:90]}"] += 1
            if entry.get("exception") and not any(p.startswith("exception: ") for p in problems):
                problems.insert(0, "exception: " + str(entry["exception"]).strip().splitlines()[-1])
    return started, events, problems


def run(
    *, targets: int = 500, interval: float = 5.0, window: float = 60.0, startup: float = 60.0
) -> dict[str, Any]:
    from monitor.store import Store, open_engine

    spread = FIRST_RUN_SPREAD * (targets - 1)
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp, ProviderProcess() as provider:
        root = Path(tmp)
        config = schedule_config(root, provider, targets, interval)
        env = monitor_env()
        log_path = root / "daemon.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [*monitor_command(), "-c", str(config), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=root,
            )
            try:
                deadline = time.monotonic() + startup
                while time.monotonic() < deadline and proc.poll() is None:
                    if "daemon started" in log_path.read_text(errors="replace"):
                        break
                    time.sleep(0.1)
                else:
                    raise RuntimeError("the daemon did not start:\n" + log_path.read_text()[-2000:])
                up = time.monotonic()
                peak_rss = 0
                while time.monotonic() < up + spread + window + 0.5:
                    if proc.poll() is not None:
                        raise RuntimeError("the daemon exited:\n" + log_path.read_text()[-2000:])
                    peak_rss = max(peak_rss, proc_status(proc.pid).get("VmRSS", 0))
                    time.sleep(0.5)
                status = proc_status(proc.pid)
                cpu_s = proc_cpu(proc.pid)
                wall_s = time.monotonic() - up
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        started, events, problems = _log_events(log_path)
        engine = open_engine(f"sqlite:///{root / 'monitor.db'}", create=False)
        try:
            polls = Store(engine).history()
        finally:
            engine.dispose()
    if started is None:
        raise RuntimeError("no 'daemon started' line in the daemon's log")
    return _analyse(
        polls,
        started,
        targets=targets,
        interval=interval,
        window=window,
        extra={
            "hwm_mb": status.get("VmHWM", 0) / 1024,
            "rss_mb": max(peak_rss, status.get("VmRSS", 0)) / 1024,
            "cpu_s": cpu_s,
            "wall_s": wall_s,
            "exit_code": code,
            "log_warnings": dict(events.most_common(8)),
            "log_exception": next((p for p in problems if p.startswith("exception: ")), None),
            "max_concurrency_in_config": _knows_max_concurrency(),
        },
    )


def _analyse(
    polls: list[Any],
    started: datetime,
    *,
    targets: int,
    interval: float,
    window: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    spread = FIRST_RUN_SPREAD * (targets - 1)
    names = [f"t{i:03d}" for i in range(targets)]
    by_target: dict[str, list[Any]] = {n: [] for n in names}
    for p in polls:
        by_target.setdefault(p.target, []).append(p)
    steady_from = started + timedelta(seconds=spread)
    steady_to = steady_from + timedelta(seconds=window)
    first_to = started + timedelta(seconds=window)
    steady, first, lateness, gaps = [], [], [], []
    missed = 0
    for index, name in enumerate(names):
        rows = sorted(by_target[name], key=lambda p: p.fetched_at)
        steady.append(sum(1 for p in rows if steady_from <= p.fetched_at < steady_to))
        first.append(sum(1 for p in rows if p.fetched_at < first_to))
        due0 = started + timedelta(seconds=FIRST_RUN_SPREAD * index)
        for k, p in enumerate(rows):
            lateness.append((p.fetched_at - due0).total_seconds() - k * interval)
        for a, b in itertools.pairwise(rows):
            gap = (b.fetched_at - a.fetched_at).total_seconds()
            gaps.append(gap)
            missed += gap > 1.5 * interval
    # APScheduler adds the daemon's jitter (up to 5 % of the interval, at most 5 s) to each
    # run's planned time and plans the next from it: the mean period is interval + jitter / 2
    expected = window / (interval + min(interval * JITTER, 5.0) / 2)
    total = len(polls)
    return {
        "targets": targets,
        "interval": interval,
        "window": window,
        "spread": spread,
        "expected": expected,
        "polls": total,
        "failed": sum(1 for p in polls if not p.ok),
        "steady": {"min": min(steady), "median": median(steady), "max": max(steady)},
        "first": {"min": min(first), "median": median(first), "max": max(first)},
        # fewer than the schedule allows, less one for where the window cuts
        "starved": sum(1 for c in steady if c < max(1, math.floor(expected) - 1)),
        "never": sum(1 for n in names if not by_target[n]),
        "lateness": {
            "p50": percentile(lateness, 50),
            "p95": percentile(lateness, 95),
            "max": max(lateness, default=float("nan")),
        },
        "gaps": {
            "p50": percentile(gaps, 50),
            "p95": percentile(gaps, 95),
            "max": max(gaps, default=float("nan")),
        },
        "missed": missed,
        "cpu_ms_per_poll": 1000 * extra["cpu_s"] / total if total else float("nan"),
        **extra,
    }


def report(r: dict[str, Any]) -> str:
    minute = r["window"]
    rows = [
        (
            f"polls per target, steady {minute:g} s (all started)",
            f"{r['steady']['min']} / {r['steady']['median']:g} / {r['steady']['max']}",
            f"~{r['expected']:.1f} each, none starved",
        ),
        (
            f"polls per target, first {minute:g} s after start",
            f"{r['first']['min']} / {r['first']['median']:g} / {r['first']['max']}",
            f"(first polls spread over {r['spread']:.1f} s)",
        ),
        (
            "targets starved (2+ polls short in the steady window) / never polled",
            f"{r['starved']} / {r['never']}",
            "0",
        ),
        ("polls in all / failed", f"{r['polls']:,} / {r['failed']:,}", ""),
        (
            "gap between polls of a target, p50 / p95 / max (s)",
            f"{r['gaps']['p50']:.2f} / {r['gaps']['p95']:.2f} / {r['gaps']['max']:.2f}",
            f"{r['interval']:g} + jitter",
        ),
        ("missed polls (gap > 1.5 intervals)", f"{r['missed']:,}", "0"),
        (
            "lateness vs nominal schedule, p50 / p95 / max (s)",
            f"{r['lateness']['p50']:.2f} / {r['lateness']['p95']:.2f} / {r['lateness']['max']:.2f}",
            "",
        ),
        (
            "daemon peak RSS (VmHWM)",
            f"{r['hwm_mb']:.0f} MB",
            f"< {GOAL_RSS_MB:.0f} MB: {verdict(r['hwm_mb'] < GOAL_RSS_MB)}",
        ),
        (
            "daemon CPU",
            f"{r['cpu_s']:.1f} s in {r['wall_s']:.0f} s "
            f"({100 * r['cpu_s'] / r['wall_s']:.0f} % of one core), "
            f"{r['cpu_ms_per_poll']:.1f} ms/poll",
            "",
        ),
    ]
    ok_counts = r["starved"] == 0 and r["never"] == 0 and r["missed"] == 0
    out = [
        "## 4. Polls kept to schedule: the daemon with many targets",
        "",
        f"`monitor run` (subprocess), {r['targets']} targets every {r['interval']:g} s "
        f"(compressed from 60 s), SQLite, one provider process; ran "
        f"{r['spread']:.0f} s of start-up spread + {minute:g} s; "
        "`[defaults] max_concurrency = 32` "
        + (
            "set."
            if r["max_concurrency_in_config"]
            else "not known to this version (pool: min(32, targets + 1))."
        ),
        "",
        table(["measure", "value (min / median / max)", "goal"], rows),
        "",
        f"Every target polled ~{r['expected']:.1f} times, none starved: {verdict(ok_counts)}; "
        f"exit code after SIGTERM: {r['exit_code']}.",
    ]
    if r["log_warnings"]:
        out += [
            "",
            "Warnings and errors in the daemon's log: "
            + "; ".join(f"{k} x{v}" for k, v in r["log_warnings"].items())
            + ".",
        ]
    if r["log_exception"]:
        out += ["", f"First exception logged: `{r['log_exception']}`."]
    return "\n".join(out)


def goals(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    ok_counts = r["starved"] == 0 and r["never"] == 0 and r["missed"] == 0
    return [
        (
            f"4. Polls per target, {r['targets']} targets every {r['interval']:g} s "
            f"for {r['window']:g} s",
            f"min {r['steady']['min']}, median {r['steady']['median']:g}; "
            f"{r['missed']} missed, {r['starved']} starved",
            f"~{r['expected']:.1f} each, none starved: {verdict(ok_counts)}",
        ),
        (
            "4. Daemon peak RSS",
            f"{r['hwm_mb']:.0f} MB",
            f"< {GOAL_RSS_MB:.0f} MB: {verdict(r['hwm_mb'] < GOAL_RSS_MB)}",
        ),
    ]
