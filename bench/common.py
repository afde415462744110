"""Helpers shared by the benchmarks: Markdown, percentiles, machine facts, SQLite size."""

from __future__ import annotations

import atexit
import json
import os
import platform
import sqlite3
import statistics
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

_devnull: TextIO | None = None


def quiet_logging() -> None:
    """Log as the daemon does (structlog JSON lines, level info), into /dev/null: the
    formatting CPU of each poll's log line counts, the terminal stays clean."""
    global _devnull
    from monitor.logs import configure_logging

    if _devnull is None:
        _devnull = open(os.devnull, "w")  # noqa: SIM115 - kept for the process's life
        atexit.register(_devnull.close)
    configure_logging("info", stream=_devnull, json=True)


_SYSTEMD_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS")


def monitor_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m monitor``."""
    script = Path(sys.executable).parent / "monitor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]


def monitor_env() -> dict[str, str]:
    """This environment for a ``monitor`` process, without systemd's variables (a
    benchmark run from a unit must not talk to its notify socket)."""
    return {k: v for k, v in os.environ.items() if k not in _SYSTEMD_ENV}


def write_config(
    root: Path,
    db_url: str,
    targets: Iterable[tuple[str, str]],
    *,
    concurrency: int | None,
    interval: float | None = None,
) -> Path:
    """``root/config.toml``: the database, ``[defaults] max_concurrency`` when given,
    and a target per ``(name, base_url)``, with ``interval`` when given."""
    lines = ["[database]", f"url = {json.dumps(db_url)}", ""]
    if concurrency is not None:
        lines += ["[defaults]", f"max_concurrency = {concurrency}", ""]
    for name, base_url in targets:
        lines += ["[[targets]]", f"name = {json.dumps(name)}", f"base_url = {json.dumps(base_url)}"]
        if interval is not None:
            lines.append(f"interval = {interval:g}")
        lines += ['timeout = "10s"', ""]
    path = root / "config.toml"
    path.write_text("\n".join(lines))
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def utcnow() -> datetime:
    return datetime.now(UTC)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; numbers right-aligned."""
    rows = [[_cell(v) for v in row] for row in rows]
    align = ["---:" if rows and _numeric(rows[0][i]) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").replace("x", "").isdigit()


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def sqlite_used_bytes(path: Path | str) -> int:
    """Bytes the database really uses: after a WAL checkpoint, pages in use times page size."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
    db.close()
    return int((pages - free) * page_size)


def sqlite_bytes_by_table(path: Path | str) -> dict[str, int]:
    """Bytes in use per table and index (SQLite's dbstat), after a checkpoint."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try:
            rows = db.execute(
                "SELECT name, SUM(pgsize) - SUM(unused) FROM dbstat GROUP BY name"
            ).fetchall()
        except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
            rows = []
    db.close()
    return {name: int(size) for name, size in rows}


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import httpx
    import sqlalchemy

    return {
        "cpus": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "sqlite": sqlite3.sqlite_version,
        "httpx": httpx.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "executable": sys.executable,
    }


def fmt_bytes(n: float) -> str:
    if n != n:
        return "n/a"
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"
