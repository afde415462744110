"""Run the whole suite and print one Markdown report (``python -m bench --help``).

Sizes: the defaults are the issue's (1000-poll CPU runs, 10k/100k/1M snapshots, 500
targets for a minute, `monitor check` over 1,000 and 10,000 targets; a few minutes on 2
cores); ``--quick`` is smaller; ``SIZES["tiny"]``
is what ``tests/test_bench.py`` runs. Progress goes to stderr, the report to stdout
(and ``--output FILE``); ``--json FILE`` keeps the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import check, cpu, process, queries, schedule, storage, web
from bench.common import machine, table

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = ("cpu", "bytes", "queries", "schedule", "check", "process", "web")

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "cpu": {"requests": 620, "big_requests": 93, "repeat": 3, "warm": 200},
        "bytes": {"unchanged": 1000, "changed": 100, "big_unchanged": 300, "long_run": 600},
        "queries": {"sizes": (10_000, 100_000, 1_000_000), "runs": 30},
        "schedule": {"targets": 500, "interval": 5.0, "window": 60.0},
        "check": {"sizes": ((1_000, 0), (10_000, 0), (1_000, 50))},
        "process": {},
        "web": {"size": 1_000_000, "targets": 100, "runs": 20},
    },
    "quick": {
        "cpu": {"requests": 155, "big_requests": 31, "repeat": 1, "warm": 50},
        "bytes": {"unchanged": 200, "changed": 20, "big_unchanged": 40, "long_run": 600},
        "queries": {"sizes": (10_000, 100_000), "runs": 10},
        "schedule": {"targets": 100, "interval": 5.0, "window": 15.0},
        "check": {"sizes": ((200, 0), (200, 50)), "cpu": ((75, "or400"),)},
        "process": {
            "workloads": ("150 x or400, 3 s", "150 x seed4, 3 s", "150 x or400 changing, 3 s"),
            "scale": 0.5,
            "check_targets": 100,
            "check_interval": 10.0,
        },
        "web": {"size": 100_000, "targets": 100, "runs": 10},
    },
    "tiny": {
        "cpu": {
            "requests": 8,
            "big_requests": 4,
            "targets": 4,
            "repeat": 1,
            "warm": 8,
            "profile_polls": 4,
        },
        "bytes": {"unchanged": 8, "changed": 2, "big_unchanged": 2, "long_run": 4},
        "queries": {"sizes": (1_000,), "targets": 10, "runs": 3, "budget": 1.0},
        "schedule": {"targets": 5, "interval": 1.0, "window": 2.0},
        "check": {"sizes": ((3, 0), (3, 20)), "cpu": ((3, "or400"),)},
        "process": {
            "workloads": ("150 x seed4, 3 s", "150 x or400 changing, 3 s"),
            "scale": 0.02,
            "check_targets": 3,
            "check_interval": 2.0,
        },
        "web": {"size": 2_000, "targets": 10, "runs": 3},
    },
}

MODULES: dict[str, Any] = {
    "cpu": cpu,
    "bytes": storage,
    "queries": queries,
    "schedule": schedule,
    "check": check,
    "process": process,
    "web": web,
}


def run_one(name: str, size: str, postgres: str | None = None) -> dict[str, Any]:
    params = dict(SIZES[size][name])
    if name in ("queries", "check", "web"):
        params["postgres"] = postgres
    results: dict[str, Any] = MODULES[name].run(**params)
    return results


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "monitor", "migrations"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.rstrip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if dirty:
        changed = ", ".join(line[3:] for line in dirty.splitlines())
        return f"{head} + uncommitted changes to {changed}"
    return head


def header(command: str, started: datetime) -> str:
    m = machine()
    return "\n".join(
        [
            "# model-monitor benchmarks",
            "",
            table(
                ["", ""],
                [
                    ("date", started.strftime("%Y-%m-%d %H:%M UTC")),
                    ("machine", f"{m['cpus']} CPUs (`nproc`), {m['cpu']}, {m['os']}"),
                    (
                        "software",
                        f"Python {m['python']}, SQLite {m['sqlite']}, httpx {m['httpx']}, "
                        f"SQLAlchemy {m['sqlalchemy']}",
                    ),
                    ("code", _git()),
                    ("command", f"`{command}`"),
                ],
            ),
        ]
    )


def summary(goals: list[tuple[str, str, str]]) -> str:
    return "\n".join(["## Goals", "", table(["goal", "measured", "target"], goals)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the tests
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        help="run only this benchmark (repeatable)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("MONITOR_BENCH_POSTGRES_URL")
        or os.environ.get("MONITOR_TEST_POSTGRES_URL")
        or queries.DEFAULT_POSTGRES,
        help="PostgreSQL for the query and check benchmarks (a schema is created and dropped); "
        "default $MONITOR_BENCH_POSTGRES_URL, $MONITOR_TEST_POSTGRES_URL or %(default)s",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="also write the report here (between the bench:begin/end markers if it has them)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the raw results as JSON")
    args = parser.parse_args(argv)
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    selected = args.only or list(BENCHMARKS)
    command = "python -m bench" + {"full": "", "quick": " --quick", "tiny": " --tiny"}[size]
    if args.only:
        command += "".join(f" --only {name}" for name in args.only)
    if args.no_postgres:
        command += " --no-postgres"
    started = datetime.now(UTC)
    sections: list[str] = []
    goals: list[tuple[str, str, str]] = []
    raw: dict[str, Any] = {}
    for name in selected:
        module = MODULES[name]
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results = run_one(name, size, None if args.no_postgres else args.postgres)
        elapsed = time.perf_counter() - t0
        print(f"bench: {name} done in {elapsed:.0f} s", file=sys.stderr, flush=True)
        raw[name] = results
        goals += module.goals(results)
        sections.append(module.report(results) + f"\n\n_({name}: {elapsed:.0f} s)_")
    total = (datetime.now(UTC) - started).total_seconds()
    report = "\n\n".join(
        [
            header(command, started),
            summary(goals),
            *sections,
            f"_Whole run: {total / 60:.1f} min._",
        ]
    )
    print(report)
    if args.output:
        write_report(Path(args.output), report)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1, default=_jsonable) + "\n")
    return 0


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_report(path: Path, report: str) -> None:
    """Write the report; into a file that has the markers, only between them (so
    ``--output docs/benchmarks.md`` refreshes the figures and keeps the prose)."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text.split(BEGIN, 1)[1]:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        path.write_text(f"{before}{BEGIN}\n\n{report}\n\n{END}{after}")
    else:
        path.write_text(report + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)
