"""Benchmark 5: ``monitor check`` over many targets, the way cron runs it.

The real console script (next to ``sys.executable``) runs as a subprocess against one
provider process (:mod:`bench.provider`) that serves every target under its own path, on
a fresh SQLite database (and PostgreSQL when one answers). For each size, the first
check stores every target's baseline and the second is the steady case: every list
unchanged, as most cron runs are. Wall time is the process's, start to exit: config,
migrations and the pending-alert pass included. ``[defaults] max_concurrency`` is the
default (32) unless given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import monitor_command, monitor_env, table, verdict, write_config
from bench.provider import REPO, ProviderProcess
from bench.queries import postgres_available, postgres_database
from bench.schedule import proc_status

# the daemon polls 500 targets every 5 s and keeps that schedule (benchmark 4): 100 polls/s
GOAL_POLLS_PER_SECOND = 100.0
GOAL_CHECK_CPU = 1.5  # an unchanged check's CPU per target over a bare client's


def check_config(
    root: Path,
    db_url: str,
    provider: ProviderProcess,
    targets: int,
    concurrency: int | None,
    wait_ms: int = 0,
) -> Path:
    names = [f"t{i:05d}" for i in range(targets)]
    return write_config(
        root,
        db_url,
        [(name, provider.url("seed4", "0", name, wait_ms)) for name in names],
        concurrency=concurrency,
    )


def timed_check(config: Path, root: Path, *args: str) -> tuple[float, int, str]:
    """Seconds, exit code and the last stderr line of one ``monitor check``."""
    seconds, code, tail, _, _ = measured_check(config, root, *args)
    return seconds, code, tail


def measured_check(config: Path, root: Path, *args: str) -> tuple[float, int, str, float, float]:
    """:func:`timed_check`, with the process's own CPU seconds (``wait4``: this child
    alone) and peak RSS in MB (``VmHWM``, read while it runs: ``ru_maxrss`` would keep
    what the forked child held before ``exec``)."""
    started = time.perf_counter()
    hwm = 0
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [*monitor_command(), "-c", str(config), "--log-level", "warning", "check", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=monitor_env(),
            cwd=root,
            stdin=subprocess.DEVNULL,
        )
        while True:
            hwm = max(hwm, proc_status(proc.pid).get("VmHWM", 0))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, proc.returncode, (lines or [""])[-1], cpu, hwm / 1024


@contextmanager
def _database(kind: str, root: Path, postgres: str | None) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{root / 'monitor.db'}"
        return
    assert postgres is not None
    with postgres_database(postgres) as url:
        yield url


def cpu_per_target(provider: ProviderProcess, targets: int, shape: str) -> dict[str, Any]:
    """An unchanged ``monitor check`` over ``targets`` lists of ``shape``: its CPU per
    target, its start-up apart (a run of one target), against a bare sync client."""
    with tempfile.TemporaryDirectory(prefix="bench-check-cpu-") as tmp:
        root = Path(tmp)
        names = [(f"t{i:05d}", provider.url(shape, "0", f"t{i:05d}")) for i in range(targets)]
        config = write_config(root, f"sqlite:///{root / 'monitor.db'}", names, concurrency=None)
        timed_check(config, root)  # the baselines
        one = measured_check(config, root, "--target", names[0][0])
        steady = measured_check(config, root)
        urls = root / "urls.txt"
        urls.write_text("\n".join(f"{u}/models" for _, u in names))
        out = subprocess.run(
            [sys.executable, "-m", "bench.bare", str(urls)],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
            timeout=600,
        )
    bare = json.loads(out.stdout.strip().splitlines()[-1])
    startup, cpu = one[3], steady[3]
    return {
        "targets": targets,
        "shape": shape,
        "startup_cpu_s": startup,
        "check_cpu_s": cpu,
        "check_s": steady[0],
        "codes": [one[1], steady[1]],
        "hwm_mb": steady[4],
        "per_target_ms": 1000 * (cpu - startup) / max(1, targets - 1),
        "bare_per_target_ms": 1000 * bare["cpu_s"] / targets,
        "bare_startup_cpu_s": bare["startup_cpu_s"],
    }


def run(
    *,
    sizes: Sequence[tuple[int, int]] = ((1_000, 0), (10_000, 0), (1_000, 50)),
    postgres: str | None = None,
    concurrency: int | None = None,
    cpu: Sequence[tuple[int, str]] = ((150, "or400"),),
) -> dict[str, Any]:
    """``sizes``: (targets, the provider's latency in ms) pairs; ``cpu``: (targets,
    shape) pairs for :func:`cpu_per_target`."""
    kinds = ["sqlite"]
    skipped = None
    if postgres:
        skipped = postgres_available(postgres)
        if skipped is None:
            kinds.append("postgres")
    rows: list[dict[str, Any]] = []
    with ProviderProcess() as provider:
        for kind in kinds:
            for count, wait_ms in sizes:
                with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
                    root = Path(tmp)
                    with _database(kind, root, postgres) as db_url:
                        config = check_config(root, db_url, provider, count, concurrency, wait_ms)
                        first = timed_check(config, root)
                        steady = timed_check(config, root)
                rows.append(
                    {
                        "database": kind,
                        "targets": count,
                        "latency_ms": wait_ms,
                        "first_s": first[0],
                        "steady_s": steady[0],
                        "codes": [first[1], steady[1]],
                        "errors": [t for (_, code, t) in (first, steady) if code != 0],
                    }
                )
        per_target = [cpu_per_target(provider, count, shape) for count, shape in cpu]
    return {
        "rows": rows,
        "cpu": per_target,
        "concurrency": concurrency or 32,
        "postgres_skipped": skipped if postgres else "not asked for",
    }


def report(r: dict[str, Any]) -> str:
    lines = [
        "## 5. `monitor check` over many targets",
        "",
        "The real `monitor check` (a process, start to exit) against one provider process, "
        "every target a 4-model list under its own path, answered at once or after a "
        "latency; a fresh database per size. *first*: "
        "every target's baseline is stored; *steady*: the second run, every list unchanged. "
        f"`[defaults] max_concurrency` {r['concurrency']}.",
        "",
        table(
            [
                "database",
                "targets",
                "provider latency",
                "first (s)",
                "steady (s)",
                "steady polls/s",
                "exit codes",
            ],
            [
                (
                    row["database"],
                    f"{row['targets']:,}",
                    f"{row['latency_ms']} ms",
                    f"{row['first_s']:.1f}",
                    f"{row['steady_s']:.1f}",
                    f"{row['targets'] / row['steady_s']:.0f}",
                    " / ".join(map(str, row["codes"])),
                )
                for row in r["rows"]
            ],
        ),
    ]
    if r.get("cpu"):
        lines += [
            "",
            "CPU of an unchanged `monitor check` (its own, from `wait4`), per target, with the "
            "process's start-up (imports, config, migrations check: a run of one target) "
            "apart, against a bare sync `httpx.Client` doing the same GETs and `json.loads`:",
            "",
            table(
                [
                    "targets",
                    "check CPU ms/target",
                    "bare ms/target",
                    "ratio",
                    "start-up CPU",
                    "bare start-up",
                    "wall",
                    "peak RSS",
                ],
                [
                    (
                        f"{c['targets']} x {c['shape']}",
                        f"{c['per_target_ms']:.2f}",
                        f"{c['bare_per_target_ms']:.2f}",
                        f"{_check_ratio(c):.2f}x",
                        f"{c['startup_cpu_s']:.2f} s",
                        f"{c['bare_startup_cpu_s']:.2f} s",
                        f"{c['check_s']:.1f} s",
                        f"{c['hwm_mb']:.0f} MB",
                    )
                    for c in r["cpu"]
                ],
            ),
        ]
    errors = [e for row in r["rows"] for e in row["errors"]]
    if errors:
        lines += ["", "Errors: " + "; ".join(f"`{e}`" for e in errors[:3])]
    if r["postgres_skipped"] not in (None, "not asked for"):
        lines += ["", f"PostgreSQL skipped: {r['postgres_skipped']}"]
    return "\n".join(lines)


def goals(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = [
        (
            f"5. Unchanged `monitor check` CPU per target / bare client, "
            f"{c['targets']} x {c['shape']}",
            f"{_check_ratio(c):.2f}x (start-up {c['startup_cpu_s']:.2f} s CPU apart)",
            f"≤ {GOAL_CHECK_CPU}x: {verdict(_check_ratio(c) <= GOAL_CHECK_CPU)}",
        )
        for c in r.get("cpu", [])
    ]
    for row in r["rows"]:
        rate = row["targets"] / row["steady_s"]
        ok = rate >= GOAL_POLLS_PER_SECOND and row["codes"] == [0, 0]
        out.append(
            (
                f"5. `monitor check`, {row['targets']:,} targets, {row['latency_ms']} ms "
                f"latency, {row['database']}",
                f"{row['steady_s']:.1f} s ({rate:.0f} polls/s)",
                f">= {GOAL_POLLS_PER_SECOND:.0f} polls/s (the daemon's pace): {verdict(ok)}",
            )
        )
    return out


def _check_ratio(c: dict[str, Any]) -> float:
    return float(c["per_target_ms"] / c["bare_per_target_ms"])
