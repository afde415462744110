"""``monitor run`` as a real process: it polls on schedule, alerts, and stops cleanly."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from conftest import Workspace, dos_target, postgres_only, wait_until
from servers import ProviderServer, WebhookServer, free_port


def test_the_daemon_polls_alerts_and_stops_on_sigterm(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[[], subprocess.Popen[str]],
) -> None:
    workspace.write_config(
        [
            dos_target(provider, interval=1),
            # a broken target must not stop the others
            {"name": "down", "base_url": f"http://127.0.0.1:{free_port()}/v1", "interval": 1},
        ],
        notify_urls=[webhook.url],
    )
    proc = daemon()
    wait_until(lambda: workspace.polls("dos-ai") >= 2)
    provider.set_ids(["dos-ai", "deepseek-v3", "kimi-k2"])
    wait_until(lambda: any(p["title"].startswith("dos-ai") for p in webhook.posts))
    (post,) = [p for p in webhook.posts if p["title"].startswith("dos-ai")]
    assert post["title"] == "dos-ai: 1 model added, 2 removed"
    assert "kimi-k2" in post["message"]
    assert "llama-3.1-8b" in post["message"] and "llama-3.3-70b" in post["message"]
    # the broken target is reported down once, after 3 failed polls
    wait_until(lambda: workspace.polls("down") >= 4)
    down_polls = workspace.listing("history", "--target", "down")
    assert len(down_polls) >= 4 and not any(p["ok"] for p in down_polls)
    wait_until(lambda: any(p["title"].startswith("down ") for p in webhook.posts))

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    assert time.monotonic() - started < 10
    events = [json.loads(line)["event"] for line in stdout.splitlines()]
    assert "daemon started" in events and events[-1] == "daemon stopped"
    assert events.count("models changed") == 1
    assert "Traceback" not in stdout + stderr
    assert sorted(p["title"] for p in webhook.posts) == [
        "dos-ai: 1 model added, 2 removed",
        "down is down: connection refused",
    ]


def test_sigint_stops_it_too_and_library_logs_share_the_output(
    workspace: Workspace, provider: ProviderServer, daemon: Callable[..., subprocess.Popen[str]]
) -> None:
    workspace.write_config([dos_target(provider, interval=60)])
    # debug output is large: to a file, or the daemon blocks on a full pipe
    log_file = workspace.root / "daemon.log"
    proc = daemon("--log-level", "debug", log=log_file)
    wait_until(lambda: workspace.polls("dos-ai") >= 1)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)
    assert proc.returncode == 0
    stdout = log_file.read_text()
    loggers = {json.loads(line).get("logger", "").split(".")[0] for line in stdout.splitlines()}
    assert {"monitor", "apscheduler", "httpx", "sqlalchemy"} <= loggers


def test_a_bad_config_stops_the_daemon_before_it_starts(
    workspace: Workspace, provider: ProviderServer, daemon: Callable[[], subprocess.Popen[str]]
) -> None:
    workspace.write_config([dos_target(provider, interval="soon")])
    proc = daemon()
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert 'targets[0].interval: "soon" is not a duration' in stderr
    assert "Traceback" not in stderr


def queue_a_pending_alert(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    """A change whose alert the webhook refused: pending, and sent by any daemon start."""
    assert workspace.run("check").code == 0
    webhook.status = 503
    provider.set_ids(["dos-ai", "kimi-k2"])
    assert workspace.run("check").code == 0
    assert len(workspace.listing("deliveries", "--pending")) == 1
    webhook.status = 200


def test_a_busy_metrics_port_stops_the_daemon_before_it_polls_or_sends(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[[], subprocess.Popen[str]],
) -> None:
    workspace.write_config([dos_target(provider, interval=1)], notify_urls=[webhook.url])
    queue_a_pending_alert(workspace, provider, webhook)
    polled = len(provider.requests)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with workspace.config_path.open("a") as config:
            config.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')

        proc = daemon()
        stdout, stderr = proc.communicate(timeout=30)

    assert proc.returncode == 1
    assert stderr.splitlines() == [
        f"monitor: error: metrics.listen: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert len(provider.requests) == polled  # not polled
    assert webhook.attempts == 1 and webhook.posts == []  # the pending alert not sent
    assert "daemon started" not in stdout
    assert len(workspace.listing("deliveries", "--pending")) == 1


def test_an_unreachable_database_stops_the_daemon_before_it_polls(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    ws = sqlite_workspace
    ws.db_url = f"postgresql+psycopg://monitor@127.0.0.1:{free_port()}/monitor"
    ws.write_config([dos_target(provider, interval=1)])
    result = ws.run("run", timeout=30)
    assert result.code == 1
    (line,) = result.stderr.splitlines()
    # the connection failed, not a migration: the words say so
    assert line.startswith("monitor: error: cannot reach the database: connection failed")
    assert provider.requests == []


@postgres_only
def test_a_database_that_does_not_exist_stops_the_start_saying_it_cannot_be_reached(
    workspace: Workspace, provider: ProviderServer
) -> None:
    from sqlalchemy.engine import make_url

    workspace.db_url = (
        make_url(workspace.db_url).set(database="no_such_db").render_as_string(hide_password=False)
    )
    workspace.write_config([dos_target(provider, interval=1)])
    result = workspace.run("run", timeout=30)
    assert result.code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("monitor: error: cannot reach the database: ")
    assert "no_such_db" in line and "migration" not in line
    assert provider.requests == []


def test_a_broken_systemd_notify_socket_stops_the_daemon_before_it_polls(
    sqlite_workspace: Workspace, provider: ProviderServer, tmp_path: Path
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider, interval=1)])
    missing = tmp_path / "no-such-notify.sock"
    ws.env["NOTIFY_SOCKET"] = str(missing)
    result = ws.run("run", timeout=30)
    assert result.code == 1
    assert result.stderr.splitlines() == [
        f"monitor: error: NOTIFY_SOCKET: cannot reach systemd's notify socket {str(missing)!r}: "
        "No such file or directory"
    ]
    assert provider.requests == []


def test_run_right_after_check_says_when_each_first_poll_goes_and_why(
    workspace: Workspace, provider: ProviderServer, daemon: Callable[[], subprocess.Popen[str]]
) -> None:
    """A target polled moments ago (by check, or another replica) is first polled when
    the replicas' rule lets it, not at start, and the log says so at info."""
    # 20 s: the daemon must start within 80 % of it after check's poll (16 s of slack)
    workspace.write_config([dos_target(provider, interval=20)])
    assert workspace.run("check").code == 0
    (checked,) = workspace.listing("history")
    workspace.write_config(
        [dos_target(provider, interval=20), dos_target(provider, name="fresh", interval=20)]
    )
    proc = daemon()
    wait_until(lambda: workspace.polls("dos-ai") >= 2 and workspace.polls("fresh") >= 1, timeout=40)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=15)

    events = [json.loads(line) for line in stdout.splitlines()]
    first = {e["target"]: e for e in events if e["event"] == "first poll"}
    due = datetime.fromisoformat(checked["fetched_at"]) + timedelta(seconds=16)
    assert first["dos-ai"]["level"] == "info"
    assert first["dos-ai"]["at"] == due.isoformat().replace("+00:00", "Z")
    assert re.fullmatch(r"polled \d+s ago; interval 20s", first["dos-ai"]["reason"])
    assert first["fresh"]["level"] == "info"
    assert first["fresh"]["reason"] == "not polled before"
    polled = workspace.listing("history", "--target", "dos-ai")
    assert datetime.fromisoformat(polled[0]["fetched_at"]) >= due


def _events(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _reloaded(log: Path, count: int = 1) -> Callable[[], bool]:
    return lambda: sum(e["event"] == "config reloaded" for e in _events(log)) >= count


def test_a_target_changed_by_a_reload_is_polled_at_once_and_the_log_says_why(
    workspace: Workspace, provider: ProviderServer, daemon: Callable[..., subprocess.Popen[str]]
) -> None:
    """A fixed base_url is used at once, not an interval later: the replicas' rule does
    not hide a config change."""
    broken = dos_target(provider, interval=60, base_url=f"http://127.0.0.1:{free_port()}/v1")
    workspace.write_config([broken])
    log = workspace.root / "daemon.log"
    proc = daemon(log=log)
    wait_until(lambda: workspace.polls("dos-ai") >= 1)
    assert provider.requests == []
    workspace.write_config([dos_target(provider, interval=60)])
    proc.send_signal(signal.SIGHUP)
    wait_until(_reloaded(log))
    # well within 80 % of the 60 s interval
    wait_until(lambda: any(p["ok"] for p in workspace.listing("history")), timeout=15)
    first = [e for e in _events(log) if e["event"] == "first poll"]
    assert [(e["level"], e["reason"]) for e in first[1:]] == [("info", "config changed")]


def test_removing_a_target_changes_none_of_those_after_it(
    workspace: Workspace, provider: ProviderServer, daemon: Callable[..., subprocess.Popen[str]]
) -> None:
    """Targets compare by what they mean: deleting targets[0] moves the others up the
    file (their api_key_env now set by another config key) and changes none of them."""
    targets = [dos_target(provider, name=n, interval=60) for n in ("first", "second", "third")]
    workspace.write_config(targets)
    log = workspace.root / "daemon.log"
    proc = daemon(log=log)
    wait_until(lambda: workspace.polls() >= 3)
    workspace.write_config(targets[1:])
    proc.send_signal(signal.SIGHUP)
    wait_until(_reloaded(log))
    (reloaded,) = [e for e in _events(log) if e["event"] == "config reloaded"]
    assert (reloaded["removed"], reloaded["changed"], reloaded["added"]) == (["first"], [], [])
    # their schedules are untouched: no new first poll
    assert [e["target"] for e in _events(log) if e["event"] == "first poll"] == [
        "first",
        "second",
        "third",
    ]


def test_a_target_removed_while_its_poll_is_in_flight_leaves_no_metric_behind(
    workspace: Workspace, provider: ProviderServer, daemon: Callable[..., subprocess.Popen[str]]
) -> None:
    """Its poll is recorded, but its series, dropped at reload, do not come back (a
    staleness alert on them would fire for a target that no longer exists)."""
    import urllib.request

    port = free_port()
    metrics = f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
    kept = dos_target(provider, interval=60, timeout="10s")
    workspace.write_config([kept, dos_target(provider, name="gone", timeout="10s")])
    workspace.config_path.write_text(workspace.config_path.read_text() + metrics)
    provider.delay = 4.0  # every poll is in flight for 4 s
    log = workspace.root / "daemon.log"
    proc = daemon(log=log)
    wait_until(lambda: provider.in_flight >= 2)
    workspace.write_config([kept])
    workspace.config_path.write_text(workspace.config_path.read_text() + metrics)
    proc.send_signal(signal.SIGHUP)
    wait_until(_reloaded(log))

    def polled() -> list[str]:
        return sorted(p["target"] for p in workspace.listing("history"))

    assert polled() == []  # reloaded while both polls were in flight
    wait_until(lambda: polled() == ["dos-ai", "gone"])  # the removed one's is recorded

    def scraped() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    wait_until(lambda: 'monitor_last_good_poll_timestamp_seconds{target="dos-ai"}' in scraped())
    lines = [line for line in scraped().splitlines() if not line.startswith("#")]
    assert [line for line in lines if 'target="gone"' in line] == []


def test_a_target_changed_while_its_poll_is_in_flight_is_polled_again_at_once(
    workspace: Workspace, provider: ProviderServer, daemon: Callable[..., subprocess.Popen[str]]
) -> None:
    """The poll in flight finishes with the old definition; the new one is used right
    after it, not an interval later (one poll of a target runs at a time, so the run a
    reload schedules "now" cannot start while the old one is in flight)."""
    workspace.write_config([dos_target(provider, interval=60, timeout="10s")])
    provider.delay = 3.0
    log = workspace.root / "daemon.log"
    proc = daemon(log=log)
    wait_until(lambda: provider.in_flight >= 1)
    workspace.write_config([dos_target(provider, interval=60, timeout="10s", retries=0)])
    proc.send_signal(signal.SIGHUP)
    wait_until(_reloaded(log))
    (reloaded,) = [e for e in _events(log) if e["event"] == "config reloaded"]
    assert reloaded["changed"] == ["dos-ai"]
    assert len(provider.requests) == 1  # still in flight
    provider.delay = 0.0
    wait_until(lambda: len(workspace.listing("history")) >= 2, timeout=15)  # not 60 s


def test_a_key_fixed_on_reload_is_used_at_once(
    workspace: Workspace, provider: ProviderServer, daemon: Callable[..., subprocess.Popen[str]]
) -> None:
    """A wrong key replaced in its file, then SIGHUP: the next poll goes now with the
    new key (the target's definition is the same; its key is not)."""
    from servers import SEED_KEY

    key = workspace.root / "key"
    key.write_text("dos_sk_wrong_key_0000")
    target = dos_target(provider, interval=60)
    del target["api_key_env"]
    target["api_key_file"] = str(key)
    workspace.write_config([target])
    log = workspace.root / "daemon.log"
    proc = daemon(log=log)
    wait_until(lambda: workspace.polls("dos-ai") >= 1)
    assert not any(p["ok"] for p in workspace.listing("history"))  # 401
    key.write_text(SEED_KEY)
    proc.send_signal(signal.SIGHUP)
    wait_until(_reloaded(log))
    (reloaded,) = [e for e in _events(log) if e["event"] == "config reloaded"]
    assert reloaded["changed"] == ["dos-ai"]
    wait_until(lambda: any(p["ok"] for p in workspace.listing("history")), timeout=15)
