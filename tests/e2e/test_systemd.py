"""``monitor run`` started the way systemd starts it: a notify socket, a watchdog,
a credentials directory, journald's stream; metrics and health; SIGHUP and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

import pytest
from conftest import Workspace, dos_target, monitor_command, wait_until
from servers import SEED_KEY, ProviderServer, WebhookServer, free_port, http_get


class NotifySocket:
    """The systemd side of sd_notify: a datagram socket that keeps what it is sent."""

    def __init__(self, abstract: bool = False) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"model-monitor-test-{uuid.uuid4().hex}"
            self._sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self._dir = tempfile.mkdtemp(prefix="mm-notify-")  # short: AF_UNIX paths max 108
            self.address = os.path.join(self._dir, "notify.sock")
            self._sock.bind(self.address)
        self._sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._running = True
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while self._running:
            try:
                data = self._sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def count(self, key: str) -> int:
        return sum(1 for _, fields in self.messages if key in fields)

    def wait_for(self, key: str, value: str | None = None, timeout: float = 20) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, fields in self.messages:
                if key in fields and (value is None or fields[key] == value):
                    return fields
            time.sleep(0.05)
        raise AssertionError(f"no {key}={value} from the daemon: {self.messages}")

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._sock.close()


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    directory = tmp_path / "credentials"
    directory.mkdir()
    (directory / "dos_api_key").write_text(SEED_KEY + "\n")
    return directory


@pytest.fixture
def systemd_env(workspace: Workspace, credentials: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "DOS_API_KEY"}
    env.update({k: v for k, v in workspace.env.items() if k != "DOS_API_KEY"})
    env.update(
        {
            "CREDENTIALS_DIRECTORY": str(credentials),
            "WATCHDOG_USEC": "1500000",
            "JOURNAL_STREAM": "8:123456",
        }
    )
    yield env


def start(
    workspace: Workspace,
    env: dict[str, str],
    failpoint: str | None = None,
    stdout: IO[str] | int = subprocess.PIPE,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*monitor_command(failpoint), "-c", str(workspace.config_path), "run"],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def credential_target(provider: ProviderServer, name: str = "dos-ai") -> dict[str, object]:
    target = dos_target(provider, name=name, interval=1, timeout="2s")
    del target["api_key_env"]
    target["api_key_credential"] = "dos_api_key"
    return target


def test_run_as_a_systemd_service(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    systemd_env: dict[str, str],
) -> None:
    notify = NotifySocket()
    port = free_port()
    workspace.write_config([credential_target(provider)], notify_urls=[webhook.url])
    with workspace.config_path.open("a") as config:
        config.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    log_path = workspace.root / "daemon.log"  # read while it runs
    with log_path.open("w") as log:
        proc = start(workspace, {**systemd_env, "NOTIFY_SOCKET": notify.address}, stdout=log)
    try:
        ready = notify.wait_for("READY", "1")
        assert "1 targets" in ready["STATUS"]
        notify.wait_for("WATCHDOG", "1")
        wait_until(lambda: workspace.polls("dos-ai") >= 1)
        # the key came from $CREDENTIALS_DIRECTORY, its newline stripped
        assert provider.requests[0]["headers"]["Authorization"] == f"Bearer {SEED_KEY}"

        provider.set_ids(["dos-ai", "deepseek-v3", "kimi-k2"])
        (post,) = webhook.wait_for(1, timeout=20)
        assert post["title"] == "dos-ai: 1 model added, 2 removed"

        # the webhook has the alert a moment before the daemon has recorded it as sent
        sent = 'monitor_deliveries_total{outcome="sent"} 1.0'
        wait_until(lambda: sent in http_get(f"http://127.0.0.1:{port}/metrics")[1])
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'monitor_polls_total{outcome="ok",target="dos-ai"}' in text
        assert 'monitor_models{target="dos-ai"} 3.0' in text
        assert 'monitor_changes_total{target="dos-ai"} 1.0' in text
        assert 'monitor_deliveries_total{outcome="sent"} 1.0' in text
        assert "monitor_deliveries_pending 0.0" in text
        assert 'monitor_consecutive_failures{target="dos-ai"} 0.0' in text
        assert "monitor_last_good_poll_timestamp_seconds" in text
        assert "monitor_poll_duration_seconds_bucket" in text
        status, feed = http_get(f"http://127.0.0.1:{port}/feed.atom")
        assert status == 200
        atom = "{http://www.w3.org/2005/Atom}"
        root = ElementTree.fromstring(feed)
        assert root.tag == f"{atom}feed"
        (entry,) = root.findall(f"{atom}entry")
        assert entry.findtext(f"{atom}title") == "dos-ai: 1 model added, 2 removed"
        assert "kimi-k2" in (entry.findtext(f"{atom}content") or "")
        status, body = http_get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
        assert json.loads(body) == {
            "status": "ok",
            "scheduler": "running",
            "database": "ok",
            "targets": 1,
        }
        # the status line follows the polls
        wait_until(
            lambda: any(
                "1 targets, 0 failing; last poll dos-ai ok" in fields.get("STATUS", "")
                for _, fields in notify.messages
            )
        )

        # SIGHUP: a new target is picked up without a restart
        workspace.write_config(
            [credential_target(provider), credential_target(provider, name="second")],
            notify_urls=[webhook.url],
        )
        with workspace.config_path.open("a") as config:
            config.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: workspace.polls("second") >= 1)

        # a broken config on SIGHUP is logged, and the running one kept
        before = workspace.polls("second")
        good_config = workspace.config_path.read_text()
        workspace.config_path.write_text(
            good_config.replace("interval = 1", 'interval = "soon"', 1)
        )
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "config not reloaded" in log_path.read_text())
        workspace.config_path.write_text(good_config)  # for the history commands below
        wait_until(lambda: workspace.polls("second") >= before + 2)

        stopping_from = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
    stdout = log_path.read_text()
    assert proc.returncode == 0, stderr
    assert time.monotonic() - stopping_from < 10
    assert notify.count("STOPPING") == 1
    assert notify.count("WATCHDOG") >= 2

    lines = stdout.splitlines()
    # journald: every line starts with its syslog priority, then JSON
    assert all(line[:3] in ("<3>", "<4>", "<6>") for line in lines), lines[:3]
    events = [(line[:3], json.loads(line[3:])) for line in lines]
    assert any(p == "<6>" and e["event"] == "config reloaded" for p, e in events)
    (refused,) = [(p, e) for p, e in events if e["event"].startswith("config not reloaded")]
    assert refused[0] == "<3>" and '"soon" is not a duration' in refused[1]["error"]
    assert SEED_KEY not in stdout + stderr


def test_abstract_notify_socket(
    workspace: Workspace, provider: ProviderServer, systemd_env: dict[str, str]
) -> None:
    notify = NotifySocket(abstract=True)
    workspace.write_config([credential_target(provider)])
    proc = start(workspace, {**systemd_env, "NOTIFY_SOCKET": notify.address})
    try:
        notify.wait_for("READY", "1")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
    assert proc.returncode == 0
    assert notify.count("STOPPING") == 1


def test_no_watchdog_ping_while_a_poll_is_stuck(
    workspace: Workspace, provider: ProviderServer, systemd_env: dict[str, str], tmp_path: Path
) -> None:
    notify = NotifySocket()
    target = credential_target(provider)
    target.update(timeout="1s", retries=0, interval=3600)
    workspace.write_config([target])
    log_path = tmp_path / "daemon.log"

    def stuck_decisions() -> int:
        """Turns of the main loop that found the poll stuck and so sent no ping."""
        return log_path.read_text().count("a poll is stuck: no watchdog ping")

    with log_path.open("w") as log:
        proc = start(
            workspace,
            {**systemd_env, "NOTIFY_SOCKET": notify.address},
            failpoint="hang-after-poll",  # the first poll commits, then never returns
            stdout=log,
        )
    try:
        notify.wait_for("READY", "1")
        wait_until(lambda: workspace.polls("dos-ai") >= 1)
        hanging_since = time.monotonic()
        # stuck_after(timeout 1 s, no retries) = 12 s after the poll started: until then
        # a poll in flight is no reason to stop pinging (every 0.5 s: WATCHDOG_USEC / 3)
        wait_until(lambda: stuck_decisions() >= 1, timeout=40)
        pings_while_in_flight = [
            t for t, fields in notify.messages if "WATCHDOG" in fields and t > hanging_since
        ]
        assert len(pings_while_in_flight) >= 2
        wait_until(lambda: stuck_decisions() >= 2)  # a ping sent before is received by now
        pings, decisions = notify.count("WATCHDOG"), stuck_decisions()
        # the loop decides every 0.5 s: eight more decisions, eight chances to ping
        wait_until(lambda: stuck_decisions() >= decisions + 8)
        assert notify.count("WATCHDOG") == pings
        assert proc.poll() is None  # alive, stuck: for systemd to restart
    finally:
        proc.kill()
        proc.communicate()
        notify.close()


def test_a_missing_credential_stops_the_start_naming_it(
    workspace: Workspace, provider: ProviderServer, systemd_env: dict[str, str], tmp_path: Path
) -> None:
    target = credential_target(provider)
    target["api_key_credential"] = "missing_key"
    workspace.write_config([target])
    proc = start(workspace, systemd_env)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert "targets[0].api_key_credential" in stderr and "missing_key" in stderr
    assert "Traceback" not in stderr
