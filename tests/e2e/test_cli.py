"""The installed console script against a real provider, webhook and SMTP server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MONITOR, Workspace, dos_target, wait_until
from servers import SEED_KEY, Answer, ProviderServer, SmtpServer, WebhookServer, free_port


def test_a_change_is_alerted_once_by_webhook_and_email(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, smtp: SmtpServer
) -> None:
    workspace.write_config([dos_target(provider)], notify_urls=[webhook.url, smtp.url])

    first = workspace.run("check")
    assert first.code == 0, first.stderr
    assert "baseline" in first.stdout
    assert webhook.posts == [] and smtp.messages == []

    provider.set_ids(["dos-ai", "llama-3.3-70b", "deepseek-v3", "qwen3-coder"])
    second = workspace.run("check")
    assert second.code == 0, second.stderr
    (post,) = webhook.wait_for(1)
    assert post["title"] == "dos-ai: 1 model added, 1 removed"
    assert "qwen3-coder" in post["message"] and "llama-3.1-8b" in post["message"]
    (mail,) = smtp.wait_for(1)
    assert mail["Subject"] == "dos-ai: 1 model added, 1 removed"
    text = SmtpServer.text(mail)
    lines = [line.strip() for line in text.splitlines()]
    # plain text a person can read: each ID on its own list line, under its heading
    assert (
        lines.index("- qwen3-coder") < lines.index("Removed (1):") < lines.index("- llama-3.1-8b")
    )
    assert "Target dos-ai, detected" in text

    third = workspace.run("check")
    assert third.code == 0 and "no change" in third.stdout
    assert len(webhook.posts) == 1 and len(smtp.messages) == 1

    changes = workspace.run("changes", "--json").json()
    assert len(changes) == 1
    assert (changes[0]["added"], changes[0]["removed"]) == (["qwen3-coder"], ["llama-3.1-8b"])


FAILURES = {
    "bad-key": (None, "HTTP 401: authentication failed"),
    "server-error": (Answer(500, b"Internal Server Error", "text/plain"), "HTTP 500: server error"),
    "bad-gateway": (Answer(502, b"<html>Bad Gateway</html>", "text/html"), "HTTP 502"),
    "forbidden": (Answer(403, b'{"error":"forbidden"}'), "HTTP 403"),
    "not-found": (Answer(404, b"{}"), "HTTP 404"),
    "rate-limited": (Answer(429, b'{"error":{"message":"slow down"}}'), "HTTP 429: rate limited"),
    "html-200": (
        Answer(200, b"<!DOCTYPE html><html><body>Maintenance</body></html>", "text/html"),
        "not JSON",
    ),
    "truncated-json": (Answer(200, b'{"object":"list","data":[{"id":"dos-'), "not JSON"),
    "wrong-shape": (Answer(200, b'{"object":"list","models":[]}'), "wrong shape"),
    "data-not-list": (Answer(200, b'{"data":{"id":"x"}}'), "wrong shape"),
    "entry-without-id": (Answer(200, b'{"data":[{"id":"a"},{"object":"model"}]}'), 'no "id"'),
    "empty-id": (Answer(200, b'{"data":[{"id":""}]}'), '"id"'),
    "timeout": (Answer(200, b'{"data":[]}', delay=3), "timed out"),
}


@pytest.mark.parametrize("case", list(FAILURES), ids=list(FAILURES))
def test_a_failed_poll_is_recorded_and_never_counts_as_removal(
    case: str,
    sqlite_workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
) -> None:
    answer, reason = FAILURES[case]
    ws = sqlite_workspace
    ws.write_config([dos_target(provider, timeout="1s")], notify_urls=[webhook.url])
    assert ws.run("check").code == 0

    if answer is None:
        ws.env["DOS_API_KEY"] = "dos_sk_wrong"
    provider.answer = answer
    failed = ws.run("check")
    assert failed.code == 1
    assert reason in failed.stdout
    assert "Traceback" not in failed.stderr

    (latest, baseline) = ws.run("history", "--json").json()
    assert latest["ok"] is False and reason in latest["error"]
    assert latest["model_count"] is None
    assert baseline["ok"] is True

    ws.env["DOS_API_KEY"] = SEED_KEY
    provider.answer = None
    assert ws.run("check").code == 0
    assert ws.run("changes", "--json").json() == []
    assert webhook.posts == []


def test_connection_refused_is_a_failed_poll(sqlite_workspace: Workspace) -> None:
    port = free_port()
    sqlite_workspace.write_config(
        [{"name": "local", "base_url": f"http://127.0.0.1:{port}/v1", "timeout": "2s"}]
    )
    result = sqlite_workspace.run("check")
    assert result.code == 1
    assert "local: FAILED: connection refused" in result.stdout


def test_json_shapes_of_the_query_commands(workspace: Workspace, provider: ProviderServer) -> None:
    workspace.write_config([dos_target(provider)])
    assert workspace.run("check").code == 0
    provider.set_ids(["dos-ai", "deepseek-v3", "qwen3-coder"])
    assert workspace.run("check").code == 0
    provider.answer = Answer(500, b"oops", "text/plain")
    assert workspace.run("check").code == 1

    history = workspace.run("history", "--json").json()
    assert [h["ok"] for h in history] == [False, True, True]
    for entry in history:
        assert {"id", "target", "fetched_at", "ok", "http_status", "model_count", "error"} <= set(
            entry
        )
        assert entry["target"] == "dos-ai" and entry["fetched_at"].endswith("Z")
    assert history[0]["model_count"] is None and history[0]["http_status"] == 500
    assert history[1]["model_count"] == 3 and history[1]["error"] is None
    assert len(workspace.run("history", "--json", "--limit", "1").json()) == 1

    first_id, second_id = history[2]["id"], history[1]["id"]
    shown = workspace.run("show", str(first_id), "--json").json()
    assert {"id", "target", "fetched_at", "models"} <= set(shown)
    assert [m["id"] for m in shown["models"]] == sorted(
        ["dos-ai", "llama-3.3-70b", "deepseek-v3", "llama-3.1-8b"]
    )
    assert shown["models"][0] == {
        "id": "deepseek-v3",
        "object": "model",
        "created": 1711000000,
        "owned_by": "dos-ai",
    }

    (change,) = workspace.run("changes", "--json").json()
    assert {"id", "target", "detected_at", "added", "removed"} <= set(change)
    assert change["added"] == ["qwen3-coder"]
    assert change["removed"] == ["llama-3.1-8b", "llama-3.3-70b"]

    now = workspace.run("models", "--target", "dos-ai", "--json").json()
    assert {"target", "at", "snapshot_id", "models"} <= set(now)
    assert now["snapshot_id"] == second_id
    assert sorted(m["id"] for m in now["models"]) == ["deepseek-v3", "dos-ai", "qwen3-coder"]
    then = workspace.run("models", "--json", "--at", history[2]["fetched_at"]).json()
    assert then["snapshot_id"] == first_id

    diff = workspace.run("diff", str(first_id), str(second_id), "--json").json()
    assert diff["added"] == ["qwen3-coder"]
    assert diff["removed"] == ["llama-3.1-8b", "llama-3.3-70b"]
    text = workspace.run("diff", str(first_id), str(second_id))
    assert "+ qwen3-coder" in text.stdout and "- llama-3.1-8b" in text.stdout

    table = workspace.run("history").stdout
    assert "FAILED" in table and "HTTP 500: server error" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "999"], "no snapshot with id 999"),
        (["diff", "1", "999"], "no snapshot with id 999"),
        (["history", "--target", "nope"], "unknown target 'nope'"),
        (["changes", "--target", "nope"], "unknown target 'nope'"),
        (["models", "--target", "nope"], "unknown target 'nope'"),
        (["check", "--target", "nope"], "unknown target 'nope'"),
        (["history", "--since", "last tuesday"], "is not a time"),
    ],
    ids=["show", "diff", "history", "changes", "models", "check", "since"],
)
def test_unknown_snapshot_or_target_is_one_line_and_exit_2(
    sqlite_workspace: Workspace, provider: ProviderServer, args: list[str], message: str
) -> None:
    sqlite_workspace.write_config([dos_target(provider)])
    assert sqlite_workspace.run("check").code == 0
    result = sqlite_workspace.run(*args)
    assert result.code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_query_before_any_poll_says_so_and_creates_nothing(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    sqlite_workspace.write_config([dos_target(provider)])
    result = sqlite_workspace.run("history")
    assert result.code == 1
    assert "does not exist yet" in result.stderr and "monitor check" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (sqlite_workspace.root / "monitor.db").exists()


def test_the_listing_helper_never_hides_a_failed_command(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    """The helper of tests/e2e/conftest.py the waits rely on: a query command that fails
    fails the test, unless the caller waits for a database to be created."""
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)])
    assert ws.polls() == 0  # no database yet: no polls, said explicitly
    with pytest.raises(AssertionError, match="does not exist yet"):
        ws.listing("history")
    assert ws.run("check").code == 0
    assert ws.polls() == 1
    with pytest.raises(AssertionError, match="exited 2"):
        ws.listing("history", "--target", "nope")


def test_db_upgrade_from_another_directory_with_a_relative_path(
    sqlite_workspace: Workspace, provider: ProviderServer, tmp_path: Path
) -> None:
    ws = sqlite_workspace
    ws.db_url = "sqlite:///data/relative.db"
    ws.write_config([dos_target(provider)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = ws.run("db", "upgrade", cwd=elsewhere)
    assert result.code == 0, result.stderr
    assert (ws.root / "data" / "relative.db").exists()
    assert not (elsewhere / "data").exists()
    tables = {
        row[0]
        for row in sqlite3.connect(ws.root / "data" / "relative.db").execute(
            "select name from sqlite_master where type='table'"
        )
    }
    assert {"snapshots", "change_events", "alembic_version"} <= tables
    again = ws.run("history", cwd=elsewhere)
    assert again.code == 0, again.stderr


def test_default_database_lives_in_the_xdg_state_folder(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)], database=False)
    assert ws.run("check").code == 0
    assert (ws.root / "state" / "model-monitor" / "monitor.db").exists()


def test_the_api_key_never_leaks(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)], notify_urls=[webhook.url])
    assert ws.run("check", "--log-level", "debug").code == 0
    provider.set_ids(["dos-ai"])
    assert ws.run("check", "--log-level", "debug").code == 0
    # a provider that echoes the key back in its error
    provider.answer = Answer(
        401, json.dumps({"error": {"message": f"bad key {SEED_KEY}"}}).encode()
    )
    failed = ws.run("check", "--log-level", "debug")
    assert failed.code == 1 and "***" in failed.stdout
    for args in (["history"], ["history", "--json"], ["changes", "--json"], ["config", "check"]):
        assert ws.run(*args).code == 0, args  # (a command that failed printed no data)
    assert provider.requests[0]["headers"]["Authorization"] == f"Bearer {SEED_KEY}"
    for result in ws.results:
        assert SEED_KEY not in result.stdout
        assert SEED_KEY not in result.stderr
    database_files = list(ws.root.glob("monitor.db*"))
    assert database_files
    for path in database_files:
        assert SEED_KEY.encode() not in path.read_bytes()
    assert all(SEED_KEY not in json.dumps(p) for p in webhook.posts)


def test_logs_are_json_lines_with_the_poll_facts(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    sqlite_workspace.write_config([dos_target(provider)])
    result = sqlite_workspace.run("check")
    events = [json.loads(line) for line in result.stderr.splitlines()]
    (poll,) = [e for e in events if e["event"] == "poll ok"]
    assert poll["target"] == "dos-ai"
    assert poll["status"] == 200
    assert poll["model_count"] == 4
    assert isinstance(poll["duration_ms"], int)
    assert poll["level"] == "info" and poll["timestamp"].endswith("Z")


def test_notify_test_reports_each_url(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, smtp: SmtpServer
) -> None:
    dead = f"json://127.0.0.1:{free_port()}/"
    sqlite_workspace.write_config([dos_target(provider)], notify_urls=[webhook.url, smtp.url, dead])
    result = sqlite_workspace.run("notify-test")
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("ok") and f"127.0.0.1:{webhook.port}" in lines[0]
    assert lines[1].startswith("ok")
    assert lines[2].startswith("FAILED")
    (post,) = webhook.wait_for(1)
    assert post["title"] == "model-monitor: test notification"
    assert len(smtp.wait_for(1)) == 1


def test_python_dash_m_runs_the_same_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("model-monitor, version ")


def test_library_logs_share_the_json_output_at_debug(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    sqlite_workspace.write_config([dos_target(provider)])
    result = sqlite_workspace.run("check", "--log-level", "debug")
    events = [json.loads(line) for line in result.stderr.splitlines()]
    loggers = {e.get("logger", "").split(".")[0] for e in events}
    assert {"httpx", "monitor"} <= loggers
    quiet = sqlite_workspace.run("check", "--log-level", "warning")
    assert quiet.code == 0 and quiet.stderr == ""


def test_config_option_after_any_subcommand(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)])
    config = str(ws.config_path)
    env = {**os.environ, **ws.env}
    for args in (
        ["db", "upgrade", "-c", config],
        ["db", "-c", config, "upgrade"],
        ["config", "check", "--config", config],
        ["history", "--config", config],
    ):
        proc = subprocess.run(
            [MONITOR, *args], capture_output=True, text=True, env=env, check=False
        )
        assert proc.returncode == 0, (args, proc.stderr)
    env["MONITOR_CONFIG"] = config
    proc = subprocess.run(
        [MONITOR, "history"], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    same = [MONITOR, "-c", config, "history", "-c", config]  # the same file twice is one
    proc = subprocess.run(same, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr


def test_notification_url_secrets_never_reach_output_or_database(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    secret = "s3cretWebhookPassw0rd"
    good = f"json://monitor:{secret}@127.0.0.1:{webhook.port}/"
    # apprise itself logs this one's token at debug: "Apprise API POST URL: .../notify/<token>"
    dead = f"apprise://127.0.0.1:{free_port()}/{secret}"
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)], notify_urls=[good, dead])
    assert ws.run("notify-test", "--log-level", "debug").code == 1  # the dead URL
    assert ws.run("check", "--log-level", "debug").code == 0
    provider.set_ids(["dos-ai"])
    assert ws.run("check", "--log-level", "debug").code == 0
    for args in (["deliveries"], ["deliveries", "--json"], ["config", "check"]):
        assert ws.run(*args).code == 0, args  # (a command that failed printed no data)
    assert len(webhook.posts) == 2  # the test and the change
    for result in ws.results:
        assert secret not in result.stdout and secret not in result.stderr
    database_files = list(ws.root.glob("monitor.db*"))
    assert database_files
    for path in database_files:
        assert secret.encode() not in path.read_bytes()


def test_prune_by_hand(sqlite_workspace: Workspace, provider: ProviderServer) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)])
    for _ in range(3):
        assert ws.run("check").code == 0
    dry = ws.run("prune", "--older-than", "0.001s", "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    report = dry.json()
    assert report["dry_run"] is True
    # the baseline and the latest (good) poll are kept; the one in between goes
    assert (report["snapshots"], report["model_lists"]) == (1, 0)
    assert len(ws.run("history", "--json").json()) == 3
    done = ws.run("prune", "--older-than", "0.001s")
    assert done.code == 0 and "deleted 1 snapshots" in done.stdout
    assert len(ws.run("history", "--json").json()) == 2
    bad = ws.run("prune", "--older-than", "ninety days")
    assert bad.code == 2 and "--older-than" in bad.stderr


def test_defaults_apply_to_every_target(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider), dos_target(provider, name="second", timeout="3s")])
    text = ws.config_path.read_text()
    ws.config_path.write_text(
        '[defaults]\nmax_concurrency = 4\ntimeout = "7s"\nconfirm_polls = 2\n\n' + text
    )
    # the targets' own timeout wins; confirm_polls comes from the defaults
    checked = ws.run("config", "check")
    assert checked.code == 0, checked.stderr
    assert "target dos-ai: GET" in checked.stdout and "timeout 2s" in checked.stdout
    assert "timeout 3s" in checked.stdout
    ws.config_path.write_text('[defaults]\ninterval = "often"\n\n' + text)
    bad = ws.run("config", "check")
    assert bad.code == 2 and 'defaults.interval: "often" is not a duration' in bad.stderr


# -- a database this user cannot write -----------------------------------------

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _unprivileged() -> list[str]:
    """How to run the console script as a user file permissions apply to: root
    bypasses them, so as root it runs as nobody (skipped where that cannot work)."""
    if os.geteuid() != 0:
        return []
    probe = subprocess.run(
        [*AS_NOBODY, MONITOR, "--version"], capture_output=True, text=True, check=False, cwd="/"
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot run the console script as nobody: {probe.stderr.strip()[:200]}")
    return AS_NOBODY


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder the unprivileged user can reach (pytest's tmp_path is root's alone)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="monitor-ro-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)


@pytest.mark.parametrize(
    ("file_mode", "folder_mode", "command", "reason"),
    [
        # read-only for the owner too: the test means the same run as root (then as
        # nobody) or as any other user
        pytest.param(0o444, 0o777, "check", "the file is not writable by", id="ro-file-check"),
        pytest.param(0o444, 0o777, "db upgrade", "the file is not writable", id="ro-file-upgrade"),
        pytest.param(0o666, 0o555, "check", "the folder {folder} is not", id="ro-folder-check"),
        pytest.param(0o666, 0o555, "db upgrade", "monitor.db-wal", id="ro-folder-upgrade"),
        pytest.param(0o666, 0o555, "history", "the folder {folder} is not", id="ro-folder-read"),
        pytest.param(None, 0o555, "check", "cannot be created: the folder", id="no-file-ro-folder"),
    ],
)
def test_a_database_this_user_cannot_write_is_named_with_the_reason(
    open_folder: Path,
    file_mode: int | None,
    folder_mode: int,
    command: str,
    reason: str,
) -> None:
    prefix = _unprivileged()
    folder = open_folder / "data"
    folder.mkdir()
    config = open_folder / "config.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///data/monitor.db"\n\n'
        '[[targets]]\nname = "local"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    config.chmod(0o644)
    database = folder / "monitor.db"
    if file_mode is not None:
        made = subprocess.run([MONITOR, "-c", str(config), "db", "upgrade"], check=False)
        assert made.returncode == 0
        database.chmod(file_mode)
    folder.chmod(folder_mode)

    result = subprocess.run(
        [*prefix, MONITOR, "-c", str(config), *command.split()],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env={**os.environ, "HOME": "/nonexistent", "MONITOR_CONFIG": ""},
    )

    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"monitor: error: database {str(database)!r} cannot be ")
    assert reason.format(folder=repr(str(folder))) in line
    assert sorted(p.name for p in folder.iterdir()) == (["monitor.db"] if file_mode else [])


def test_a_read_only_database_file_can_still_be_read(open_folder: Path) -> None:
    prefix = _unprivileged()
    config = open_folder / "config.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///monitor.db"\n\n'
        '[[targets]]\nname = "local"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    config.chmod(0o644)
    made = subprocess.run([MONITOR, "-c", str(config), "db", "upgrade"], check=False)
    assert made.returncode == 0
    (open_folder / "monitor.db").chmod(0o444)
    open_folder.chmod(0o777)
    result = subprocess.run(
        [*prefix, MONITOR, "-c", str(config), "history", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


# -- bad invocations -----------------------------------------------------------

BAD_INVOCATIONS = {
    "export-no-format": (["export"], "--format (json or csv)"),
    "export-bad-format": (["export", "--format", "xml"], "--format: 'xml' is not one of"),
    "show-no-id": (["show"], "SNAPSHOT_ID"),
    "show-word": (["show", "abc"], "SNAPSHOT_ID: 'abc' is not a snapshot id (a whole number"),
    "show-zero": (["show", "0"], "SNAPSHOT_ID: '0' is not a snapshot id"),
    "show-huge": (["show", "9" * 30], "is not a snapshot id"),
    "diff-word": (["diff", "1", "x"], "SNAPSHOT_B: 'x' is not a snapshot id"),
    "diff-one": (["diff", "1"], "SNAPSHOT_B"),
    "retry-word": (["deliveries", "retry", "abc"], "DELIVERY_ID: 'abc' is not a delivery id"),
    "retry-no-id": (["deliveries", "retry"], "DELIVERY_ID"),
    "pending-dead": (["deliveries", "--pending", "--dead"], "--pending and --dead"),
    "three-states": (["deliveries", "--sent", "--pending", "--dead"], "--sent and --pending"),
    "limit-zero": (["history", "--limit", "0"], "--limit: '0' is not a whole number from 1"),
    "limit-word": (["changes", "--limit", "x"], "--limit: 'x' is not a whole number"),
    "limit-negative": (["events", "--limit", "-1"], "--limit"),
    "limit-no-value": (["history", "--limit"], "--limit"),
    "target-twice": (["history", "--target", "a", "--target", "b"], "--target given twice"),
    "since-twice": (["changes", "--since", "1d", "--since", "2d"], "--since given twice"),
    "at-twice": (["models", "--at", "now", "--at", "1d"], "--at given twice"),
    "limit-twice": (["deliveries", "--limit", "1", "--limit", "2"], "--limit given twice"),
    "config-twice": (["-c", "a.toml", "history"], "-c/--config given twice"),
    "config-before-and-after": (["history", "-c", "b.toml"], "-c/--config given twice ("),
    "level-twice": (["--log-level", "debug", "history", "--log-level", "info"], "--log-level"),
    "unknown-option": (["history", "--bogus"], "--bogus"),
    "unknown-command": (["bogus"], "bogus"),
    "unknown-subcommand": (["db", "downgrade"], "downgrade"),
    "extra-argument": (["config", "check", "extra"], "extra"),
    "bad-level": (["--log-level", "loud", "history"], "--log-level: 'loud' is not one of"),
    "bad-time": (["models", "--at", "yesterday"], "--at: 'yesterday' is not a time"),
    "no-older-than": (["prune"], "--older-than"),
    "bad-age": (["prune", "--older-than", "5x"], "--older-than: '5x' is not an age"),
    "model-no-id": (["model"], "MODEL_ID"),
    "target-no-value": (["check", "--target"], "--target"),
    "notify-target-no-value": (["notify-test", "--target"], "--target"),
    "run-unknown-option": (["run", "--bogus"], "--bogus"),
    "check-target-twice": (["check", "--target", "a", "--target", "b"], "--target given twice"),
}


@pytest.mark.parametrize(("args", "says"), BAD_INVOCATIONS.values(), ids=BAD_INVOCATIONS.keys())
def test_a_bad_invocation_is_one_line_and_exit_2(
    sqlite_workspace: Workspace, provider: ProviderServer, args: list[str], says: str
) -> None:
    sqlite_workspace.write_config([dos_target(provider)])
    result = sqlite_workspace.run(*args)
    assert result.code == 2, result.stderr
    first, *rest = result.stderr.splitlines()
    assert first.startswith("monitor: error: "), result.stderr
    assert says in first
    assert len(rest) <= 1 and all(line.startswith("hint: ") for line in rest), result.stderr
    assert result.stdout == ""
    assert not (sqlite_workspace.root / "monitor.db").exists()


# -- config check ------------------------------------------------------------


def test_config_check_says_a_key_is_present_not_that_it_works(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    ws = sqlite_workspace
    keyless = {k: v for k, v in dos_target(provider, name="local").items() if k != "api_key_env"}
    ws.write_config([dos_target(provider), keyless])
    result = ws.run("config", "check")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    (dos,) = [line for line in lines if line.startswith("target dos-ai:")]
    assert "key from environment variable DOS_API_KEY (present, not verified)" in dos
    (local,) = [line for line in lines if line.startswith("target local:")]
    assert "no key" in local and "verified" not in local
    assert "--online" in result.stdout
    assert provider.requests == []  # nothing asked of the provider without --online


@pytest.mark.parametrize(
    ("key", "code", "says"),
    [
        pytest.param(SEED_KEY, 0, "key accepted, 4 models", id="right-key"),
        pytest.param(
            "dos_sk_wrong_0123456789", 1, "FAILED: HTTP 401: authentication failed", id="wrong"
        ),
    ],
)
def test_config_check_online_asks_each_target_once(
    sqlite_workspace: Workspace, provider: ProviderServer, key: str, code: int, says: str
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)])
    ws.env["DOS_API_KEY"] = key
    result = ws.run("config", "check", "--online")
    assert result.code == code, result.stdout + result.stderr
    assert f"target dos-ai: {says}" in result.stdout
    assert len(provider.requests) == 1
    assert key not in result.stdout + result.stderr
    assert not (ws.root / "monitor.db").exists()  # a check stores nothing


def test_the_quick_start_with_the_example_config_queues_no_alerts(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    """README's quick start, run a few times while the list changes: the example's
    notification URLs are examples, not places to queue alerts for days."""
    ws = sqlite_workspace
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    ws.config_path.write_text(
        example.read_text().replace("https://api.dos.ai/v1", provider.base_url)
    )
    for ids in (["dos-ai", "deepseek-v3"], ["dos-ai", "qwen3-coder"], ["dos-ai"]):
        provider.set_ids(ids)
        result = ws.run("check")
        assert result.code == 0, result.stderr
        assert "alerts" not in result.stdout
    assert len(ws.listing("changes")) == 2
    assert ws.listing("deliveries") == []


def test_check_polls_targets_at_once_and_reports_them_in_config_order(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    ws = sqlite_workspace
    provider.delay = 0.5  # each answer: sequential polls of 40 targets would take 20 s
    names = [f"t{(i * 7) % 40:02d}" for i in range(40)]  # not in alphabetical order
    ws.write_config([dos_target(provider, name=name) for name in names])
    ws.config_path.write_text("[defaults]\nmax_concurrency = 8\n\n" + ws.config_path.read_text())

    result = ws.run("check")

    assert result.code == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == names
    assert all("first good poll (baseline)" in line for line in result.stdout.splitlines())
    assert 4 <= provider.max_in_flight <= 8  # at once, and never more than max_concurrency
    assert len(provider.requests) == 40
    checked = ws.run("check", "--json")
    assert [entry["target"] for entry in checked.json()] == names
    assert provider.max_in_flight <= 8


def test_ctrl_c_stops_check_without_polling_the_rest(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    ws = sqlite_workspace
    provider.delay = 1.0
    names = [f"t{i:02d}" for i in range(40)]
    ws.write_config([dos_target(provider, name=name) for name in names])
    ws.config_path.write_text("[defaults]\nmax_concurrency = 2\n\n" + ws.config_path.read_text())
    proc = subprocess.Popen(
        [MONITOR, "-c", str(ws.config_path), "check"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ws.env},
        stdin=subprocess.DEVNULL,
    )
    wait_until(lambda: len(provider.requests) >= 2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1 and stderr.endswith("monitor: error: aborted\n"), stderr
    assert len(provider.requests) <= 4  # the two in flight finish; none of the rest start
