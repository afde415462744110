"""The baseline a poll is measured against: a bare asyncio httpx client that does what
the daemon's schedule does and nothing more: each target every ``interval`` seconds, a
GET and a full ``json.loads`` of the answer.

``python -m bench.bare URLS_FILE INTERVAL WARMUP WINDOW`` polls the URLs (one a line)
for ``WARMUP + WINDOW`` seconds, then prints one JSON line: the polls completed within
the window, this process's CPU seconds in it (``time.process_time``), and its peak RSS.
Each target's first poll is spread as the daemon spreads them (50 ms apart).

``python -m bench.bare URLS_FILE`` (no schedule) is what ``monitor check`` is measured
against: a sync ``httpx.Client`` GETs each URL once and ``json.loads`` it; the JSON line
has the CPU of that loop and of the process before it (start-up: Python and httpx).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

SPREAD = 0.05  # seconds between two targets' first polls, as monitor.daemon does


async def _poll_every(
    client: httpx.AsyncClient, url: str, first: float, interval: float, until: float
) -> list[float]:
    """Poll ``url`` from ``first`` every ``interval`` until ``until`` (monotonic); the
    times each poll finished."""
    done: list[float] = []
    due = first
    while due < until:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        response = await client.get(url)
        json.loads(response.content)
        done.append(time.monotonic())
        due += interval
    return done


async def _main(urls: list[str], interval: float, warmup: float, window: float) -> dict[str, float]:
    start = time.monotonic()
    window_from, window_to = start + warmup, start + warmup + window
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        tasks = [
            asyncio.create_task(_poll_every(client, url, start + SPREAD * i, interval, window_to))
            for i, url in enumerate(urls)
        ]
        await asyncio.sleep(max(0.0, window_from - time.monotonic()))
        cpu_from = time.process_time()
        finished = await asyncio.gather(*tasks)
        cpu_to = time.process_time()
    polls = sum(1 for times in finished for t in times if window_from <= t < window_to)
    return {
        "polls": polls,
        "cpu_s": cpu_to - cpu_from,
        "hwm_mb": _hwm_mb(),
    }


def _hwm_mb() -> float:
    """This process's peak RSS (``VmHWM``: ``ru_maxrss`` keeps the parent's from before exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _once(urls: list[str]) -> dict[str, float]:
    started = time.process_time()
    with httpx.Client(timeout=30) as client:
        for url in urls:
            json.loads(client.get(url).content)
    return {
        "polls": len(urls),
        "startup_cpu_s": started,
        "cpu_s": time.process_time() - started,
        "hwm_mb": _hwm_mb(),
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        targets = [line.strip() for line in f if line.strip()]
    if len(sys.argv) == 2:
        print(json.dumps(_once(targets)), flush=True)
    else:
        interval, warmup, window = map(float, sys.argv[2:5])
        print(json.dumps(asyncio.run(_main(targets, interval, warmup, window))), flush=True)
