"""Several ``monitor run`` replicas on one PostgreSQL database behave like one monitor
that cannot die; a database that goes away and comes back loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
from conftest import MONITOR, Workspace, dos_target, wait_until
from servers import ProviderServer, TcpProxy, WebhookServer, free_port, http_get
from sqlalchemy.engine import make_url

# db_url on PostgreSQL only; re-parametrizing drops the fixture param's mark, so it is
# given again (the postgres_url fixture refuses an unmarked test)
postgres_only = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def model_requests(provider: ProviderServer) -> int:
    return sum(1 for r in provider.requests if r["path"].startswith("/v1/models"))


def requests_during(provider: ProviderServer, seconds: float) -> int:
    before = model_requests(provider)
    time.sleep(seconds)
    return model_requests(provider) - before


@postgres_only
def test_two_replicas_poll_once_per_interval_alert_once_and_fail_over(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    workspace.write_config([dos_target(provider, interval=2)], notify_urls=[webhook.url])
    first, second = daemon(), daemon()
    wait_until(lambda: model_requests(provider) >= 2)

    # one replica alone would poll 6 times in 12 s; two that did not share would poll 12
    polls = requests_during(provider, 12)
    assert 4 <= polls <= 8, polls

    provider.set_ids(["dos-ai", "deepseek-v3", "kimi-k2"])
    wait_until(lambda: len(webhook.posts) >= 1)
    time.sleep(5)  # both replicas have polled the new list by now
    assert [p["title"] for p in webhook.posts] == ["dos-ai: 1 model added, 2 removed"]
    assert len(workspace.run("changes", "--json").json()) == 1
    assert len(workspace.run("deliveries", "--json").json()) == 1

    first.kill()  # SIGKILL: its locks die with its connections
    first.communicate()
    polls = requests_during(provider, 10)
    assert 3 <= polls <= 7, polls  # the other replica carries on alone

    provider.set_ids(["dos-ai", "kimi-k2"])
    wait_until(lambda: len(webhook.posts) >= 2)
    time.sleep(3)
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
) -> None:
    direct = workspace.db_url
    upstream = make_url(direct)
    proxy = TcpProxy(upstream.port or 5432, upstream.host or "127.0.0.1").start()
    try:
        workspace.db_url = upstream.set(port=proxy.port).render_as_string(hide_password=False)
        port = free_port()
        workspace.write_config([dos_target(provider, interval=1)], notify_urls=[webhook.url])
        with workspace.config_path.open("a") as config:
            config.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
        proc = daemon()
        wait_until(lambda: workspace.polls() >= 2)

        proxy.cut()  # the database is gone
        provider.set_ids(["dos-ai", "deepseek-v3"])
        time.sleep(3)
        status, body = http_get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503 and json.loads(body)["database"] == "unreachable"
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        assert 'monitor_polls_total{outcome="error",target="dos-ai"}' in text
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
    finally:
        proxy.stop()
