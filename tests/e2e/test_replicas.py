"""Several ``monitor run`` replicas on one PostgreSQL database behave like one monitor
that cannot die; a database that goes away and comes back loses nothing."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from conftest import MONITOR, Workspace, dos_target, postgres_only, wait_until
from servers import ProviderServer, TcpProxy, WebhookServer, free_port, http_get

from monitor.daemon import SKIP_IF_POLLED_WITHIN

# db_url on PostgreSQL only; re-parametrizing drops the fixture param's mark, so it is
# given again (the postgres_url fixture refuses an unmarked test)


def poll_gaps(workspace: Workspace) -> list[float]:
    """Seconds between consecutive stored polls, whichever replica made them."""
    polls = workspace.listing("history", "--limit", "1000")
    times = sorted(datetime.fromisoformat(p["fetched_at"]) for p in polls)
    return [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]


def started(log: Path) -> bool:
    return '"daemon started"' in log.read_text()


@postgres_only
def test_two_replicas_poll_once_per_interval_alert_once_and_fail_over(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    interval = 2
    workspace.write_config([dos_target(provider, interval=interval)], notify_urls=[webhook.url])
    logs = [workspace.root / "first.log", workspace.root / "second.log"]
    first, second = (daemon(log=log) for log in logs)
    wait_until(lambda: all(started(log) for log in logs))

    # both schedule the target every 2 s; sharing, they poll it about once per interval
    # in all: no two polls closer than SKIP_IF_POLLED_WITHIN of it (replicas that did not
    # share would poll twice per interval, gaps of 1 s or less between them)
    wait_until(lambda: workspace.polls() >= 6, timeout=40)
    assert min(poll_gaps(workspace)) >= interval * SKIP_IF_POLLED_WITHIN

    provider.set_ids(["dos-ai", "deepseek-v3", "kimi-k2"])
    wait_until(lambda: len(webhook.posts) >= 1)
    # three more polls of the new list, by either replica: none alerts it again
    alerted_at = workspace.polls()
    wait_until(lambda: workspace.polls() >= alerted_at + 3)
    assert [p["title"] for p in webhook.posts] == ["dos-ai: 1 model added, 2 removed"]
    assert len(workspace.run("changes", "--json").json()) == 1
    (delivery,) = workspace.run("deliveries", "--json").json()
    assert (delivery["status"], delivery["attempts"]) == ("sent", 1)

    first.kill()  # SIGKILL: its locks die with its connections
    first.communicate()
    killed_at = workspace.polls()
    wait_until(lambda: workspace.polls() >= killed_at + 3)  # the other carries on alone

    provider.set_ids(["dos-ai", "kimi-k2"])
    wait_until(lambda: len(webhook.posts) >= 2)
    alerted_at = workspace.polls()
    wait_until(lambda: workspace.polls() >= alerted_at + 2)
    assert [p["title"] for p in webhook.posts][1] == "dos-ai: 1 model removed"
    assert len(webhook.posts) == 2
    second.send_signal(signal.SIGTERM)
    second.communicate(timeout=15)
    assert second.returncode == 0


@postgres_only
def test_replicas_migrating_at_once(workspace: Workspace, provider: ProviderServer) -> None:
    workspace.write_config([dos_target(provider)])
    env = {**os.environ, **workspace.env}
    command = [MONITOR, "-c", str(workspace.config_path), "db", "upgrade"]
    procs = [
        subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    assert workspace.run("history").code == 0


@postgres_only
def test_the_database_going_away_loses_no_change(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
    db_proxy: TcpProxy,
) -> None:
    proxy = db_proxy
    port = free_port()
    workspace.write_config([dos_target(provider, interval=1)], notify_urls=[webhook.url])
    with workspace.config_path.open("a") as config:
        config.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    proc = daemon()
    wait_until(lambda: workspace.polls() >= 2)

    proxy.cut()  # the database is gone
    provider.set_ids(["dos-ai", "deepseek-v3"])
    # a poll of the changed list that could not be recorded: nothing may be alerted
    unrecorded = 'monitor_polls_total{outcome="error",target="dos-ai"}'
    wait_until(lambda: unrecorded in http_get(f"http://127.0.0.1:{port}/metrics")[1])
    status, body = http_get(f"http://127.0.0.1:{port}/healthz")
    assert status == 503 and json.loads(body)["database"] == "unreachable"
    assert webhook.posts == []

    proxy.restore()  # back: the next poll finds the change against the stored list
    wait_until(lambda: len(webhook.posts) >= 1, timeout=30)
    assert [p["title"] for p in webhook.posts] == ["dos-ai: 2 models removed"]
    status, _ = http_get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200
    assert proc.poll() is None  # recovered without a restart
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    events = [json.loads(line) for line in stdout.splitlines()]
    assert any(e["event"] == "poll not recorded" and e["level"] == "error" for e in events)
