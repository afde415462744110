"""Alerts that are never lost, never doubled, never false: the installed CLI and daemon
against a real provider, webhook and SMTP server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import MONITOR, Workspace, dos_target, postgres_only, wait_until
from servers import SEED_KEY, Answer, ProviderServer, SmtpServer, TcpProxy, WebhookServer

NEW_IDS = ["dos-ai", "llama-3.3-70b", "deepseek-v3", "qwen3-coder"]  # llama-3.1-8b gone


def postpone(
    db_url: str, delivery_id: object, hours: float, column: str = "next_attempt_at"
) -> None:
    """Move a delivery's next attempt (or another of its times) ``hours`` from now, behind
    the monitor's back."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine, text

    from monitor.store.schema import to_micros

    engine = create_engine(db_url)
    later: object = datetime.now(UTC) + timedelta(hours=hours)
    if engine.dialect.name == "sqlite":  # times are integer microseconds there
        later = to_micros(later)  # type: ignore[arg-type]
    with engine.begin() as connection:
        connection.execute(
            text(f"UPDATE deliveries SET {column} = :t WHERE id = :id"),
            {"t": later, "id": delivery_id},
        )
    engine.dispose()


def refuse_an_alert(
    ws: Workspace, provider: ProviderServer, webhook: WebhookServer, **notify: Any
) -> None:
    """One target alerting the webhook (``notify``: ``[notify]`` settings), its baseline
    polled, then its list changed while the webhook refuses every post (503): the next
    check queues an alert that fails."""
    ws.write_config([dos_target(provider)], notify_urls=[webhook.url], **notify)
    assert ws.run("check").code == 0
    webhook.status = 503
    provider.set_ids(NEW_IDS)


def titles(webhook: WebhookServer) -> list[str]:
    return [p["title"] for p in webhook.posts]


def test_a_failing_webhook_is_retried_and_the_email_is_not_resent(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, smtp: SmtpServer
) -> None:
    workspace.write_config([dos_target(provider)], notify_urls=[webhook.url, smtp.url])
    assert workspace.run("check").code == 0

    webhook.status = 503
    provider.set_ids(NEW_IDS)
    changed = workspace.run("check")
    assert changed.code == 0  # the poll was good; the alert is pending, not lost
    assert "alerts sent 1 of 2" in changed.stdout
    assert len(smtp.wait_for(1)) == 1 and webhook.posts == []

    (pending,) = workspace.run("deliveries", "--pending", "--json").json()
    assert f"127.0.0.1:{webhook.port}" in pending["url"]
    assert pending["attempts"] == 1 and pending["last_error"]
    assert pending["title"] == "dos-ai: 1 model added, 1 removed"

    webhook.status = 200
    assert workspace.run("check").code == 0  # sends what is pending first
    assert titles(webhook) == ["dos-ai: 1 model added, 1 removed"]
    assert len(smtp.messages) == 1

    (unchanged,) = workspace.run("check", "--json").json()
    assert unchanged["change"] is None and unchanged["deliveries"] == []  # sends in-process
    assert len(webhook.posts) == 1 and len(smtp.messages) == 1
    everything = workspace.run("deliveries", "--json").json()
    assert sorted(d["status"] for d in everything) == ["sent", "sent"]
    assert all(d["sent_at"] for d in everything)
    assert workspace.run("deliveries", "--pending", "--json").json() == []


def test_killed_between_commit_and_send_the_restarted_daemon_sends_it(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    # a short interval: the restarted daemon polls the same list again at once
    workspace.write_config([dos_target(provider, interval=1)], notify_urls=[webhook.url])
    assert workspace.run("check").code == 0

    provider.set_ids(NEW_IDS)
    crashed = workspace.run("check", failpoint="after-commit")
    assert crashed.code == -signal.SIGKILL
    assert webhook.posts == []
    assert len(workspace.run("changes", "--json").json()) == 1
    (pending,) = workspace.run("deliveries", "--pending", "--json").json()
    assert pending["attempts"] == 0
    # not due for an hour: only the start-up pass, which ignores backoff, sends it now
    postpone(workspace.db_url, pending["id"], hours=1)

    proc = daemon()
    wait_until(lambda: len(webhook.posts) >= 1)
    assert titles(webhook) == ["dos-ai: 1 model added, 1 removed"]
    # the restarted daemon's own poll of the same list must not alert it again;
    # a poll's alerts go out before the daemon exits on SIGTERM
    wait_until(lambda: workspace.polls() >= 3)  # two checks, then the daemon's poll
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stdout.splitlines()]
    assert "poll ok" in events and "models changed" not in events
    assert events[-1] == "daemon stopped"
    assert len(webhook.posts) == 1
    assert len(workspace.run("changes", "--json").json()) == 1
    (sent,) = workspace.run("deliveries", "--json").json()
    assert (sent["status"], sent["attempts"]) == ("sent", 1)


def test_no_environment_variable_crashes_or_hangs_a_poll(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    """The crash and hang points of the tests above are installed by a test launcher;
    a variable inherited from the environment never reaches them."""
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)], notify_urls=[webhook.url])
    assert ws.run("check").code == 0
    for point in ("after-commit", "hang-after-poll"):
        provider.set_ids([*provider.ids, point])
        ws.env["MONITOR_FAILPOINT"] = point
        result = ws.run("check", timeout=30)
        assert result.code == 0, (point, result.stderr)
    assert titles(webhook) == [
        "dos-ai: 1 model added",
        "dos-ai: 1 model added",
    ]


def test_a_running_daemon_retries_with_backoff(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    workspace.write_config(
        [dos_target(provider, interval=1)],
        notify_urls=[webhook.url],
        retry_initial="15s",
        retry_max="1m",
    )
    webhook.status = 503
    daemon()
    wait_until(lambda: workspace.polls() >= 1)
    provider.set_ids(NEW_IDS)
    wait_until(lambda: webhook.attempts >= 1)
    first_attempt = time.monotonic()
    webhook.status = 200
    # the outbox job runs every 5 s, but this delivery is not due before 15 s: the retry,
    # which succeeds, comes no sooner (so no earlier retry was made either)
    wait_until(lambda: len(webhook.posts) >= 1, timeout=40)
    assert time.monotonic() - first_attempt >= 14
    assert titles(webhook) == ["dos-ai: 1 model added, 1 removed"]
    # recorded a moment after the webhook has it
    wait_until(lambda: workspace.listing("deliveries", "--sent") != [])
    (sent,) = workspace.run("deliveries", "--json").json()
    assert (sent["status"], sent["attempts"]) == ("sent", 2)


def test_confirm_polls_ignores_a_flap_and_reports_a_real_removal_once(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    workspace.write_config([dos_target(provider, confirm_polls=2)], notify_urls=[webhook.url])
    seed = provider.ids
    assert workspace.run("check").code == 0

    provider.set_ids(seed[:-1])  # gone for one poll ...
    assert workspace.run("check").code == 0
    provider.set_ids(seed)  # ... and back
    assert workspace.run("check").code == 0
    assert workspace.run("changes", "--json").json() == []

    provider.set_ids(seed[:-1])  # gone for good
    assert workspace.run("check").code == 0
    assert webhook.posts == []
    assert workspace.run("check").code == 0
    assert titles(webhook) == ["dos-ai: 1 model removed"]
    assert workspace.run("check").code == 0
    (change,) = workspace.run("changes", "--json").json()
    assert change["removed"] == [seed[-1]] and change["added"] == []
    assert len(webhook.posts) == 1


@pytest.mark.parametrize(
    "empty",
    [b'{"object":"list","data":[]}', b'{"object":"list","data":null}', b"[]"],
    ids=["empty-list", "data-null", "bare-empty-array"],
)
def test_an_empty_list_is_a_failed_poll_not_a_mass_removal(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, empty: bytes
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider)], notify_urls=[webhook.url])
    assert ws.run("check").code == 0
    provider.answer = Answer(200, empty)
    failed = ws.run("check")
    assert failed.code == 1
    assert "empty model list" in failed.stdout
    latest = ws.run("history", "--json").json()[0]
    assert latest["ok"] is False and "empty model list" in latest["error"]
    provider.answer = None
    assert ws.run("check").code == 0
    assert ws.run("changes", "--json").json() == []
    assert webhook.posts == []


def test_allow_empty_reports_the_removal(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider, allow_empty=True)], notify_urls=[webhook.url])
    assert ws.run("check").code == 0
    provider.set_ids([])
    assert ws.run("check").code == 0
    assert titles(webhook) == ["dos-ai: 4 models removed"]


def test_down_is_alerted_once_and_recovery_with_the_change_seen_meanwhile(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    workspace.write_config(
        [dos_target(provider, alert_after_failures=2, retries=0)], notify_urls=[webhook.url]
    )
    assert workspace.run("check").code == 0
    workspace.env["DOS_API_KEY"] = "dos_sk_revoked"
    assert workspace.run("check").code == 1
    assert webhook.posts == []
    assert workspace.run("check").code == 1
    assert titles(webhook) == [
        "dos-ai is down: HTTP 401: authentication failed — check the API key "
        "(Invalid or missing API key.)"
    ]
    assert workspace.run("check").code == 1
    assert len(webhook.posts) == 1  # not repeated

    workspace.env["DOS_API_KEY"] = SEED_KEY
    provider.set_ids(NEW_IDS)
    assert workspace.run("check").code == 0
    assert titles(webhook)[1].startswith("dos-ai is back after ")
    assert titles(webhook)[2] == "dos-ai: 1 model added, 1 removed"

    recovered, down = workspace.run("events", "--json").json()
    assert (down["kind"], down["failures"]) == ("down", 2)
    assert "HTTP 401" in down["error"]
    assert recovered["kind"] == "recovered" and recovered["duration_s"] > 0
    assert recovered["since"] == down["since"]
    (change,) = workspace.run("changes", "--json").json()  # events are not model changes
    assert change["added"] == ["qwen3-coder"]
    table = workspace.run("events").stdout
    assert "down for" in table and "HTTP 401" in table


def test_dead_deliveries_and_retry_by_hand(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    ws = sqlite_workspace
    refuse_an_alert(ws, provider, webhook, max_attempts=2)
    assert ws.run("check").code == 0  # attempt 1
    assert ws.run("check").code == 0  # attempt 2: given up
    (dead,) = ws.run("deliveries", "--dead", "--json").json()
    assert dead["attempts"] == 2 and dead["status"] == "dead" and dead["last_error"]
    assert ws.run("deliveries", "--pending", "--json").json() == []

    webhook.status = 200
    assert ws.run("check").code == 0
    assert webhook.posts == []  # dead is dead until someone says otherwise
    listing = ws.run("deliveries").stdout
    assert "dead" in listing and f"127.0.0.1:{webhook.port}" in listing

    retried = ws.run("deliveries", "retry", str(dead["id"]))
    assert retried.code == 0, retried.stderr
    assert titles(webhook) == ["dos-ai: 1 model added, 1 removed"]
    again = ws.run("deliveries", "retry", str(dead["id"]))
    assert again.code == 2 and "not sent twice" in again.stderr
    missing = ws.run("deliveries", "retry", "999")
    assert missing.code == 2 and "no delivery with id 999" in missing.stderr
    assert len(webhook.posts) == 1


def test_a_price_change_is_alerted_with_old_and_new_value(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    priced = [
        {
            "id": "deepseek/deepseek-v3",
            "pricing": {"prompt": "0.00000027", "completion": "1e-06"},
            "context_length": 64000,
            "created": 1,
        },
        {
            "id": "qwen/qwen3",
            "pricing": {"prompt": "0.0000001", "completion": "2e-07"},
            "context_length": 32000,
            "created": 1,
        },
    ]
    provider.models = [dict(m) for m in priced]
    provider.api_key = None
    target = {
        "name": "openrouter",
        "base_url": provider.base_url,
        "kind": "openrouter",
        "watch_fields": ["pricing", "context_length"],
    }
    workspace.write_config([target], notify_urls=[webhook.url])
    assert workspace.run("check").code == 0
    provider.models[0] = {
        **priced[0],
        "pricing": {"prompt": "0.00000014", "completion": "1e-06"},
        "created": 2,
    }
    provider.models[1] = {**priced[1], "created": 2}  # a rewritten created is no change
    assert workspace.run("check").code == 0
    (post,) = webhook.wait_for(1)
    assert post["title"] == "openrouter: 1 model changed"
    assert (
        "- deepseek/deepseek-v3: pricing.prompt 0.27 → 0.14 per 1M tokens"
        in post["message"].splitlines()
    )
    (change,) = workspace.run("changes", "--json").json()
    assert change["changed"] == [
        {
            "id": "deepseek/deepseek-v3",
            "field": "pricing.prompt",
            "old": "0.00000027",
            "new": "0.00000014",
        }
    ]
    assert (change["added"], change["removed"]) == ([], [])


def _row(table: str, delivery_id: int) -> str:
    (line,) = [row for row in table.splitlines() if row.startswith(f"{delivery_id} ")]
    return line


def _times(text: str) -> list[datetime]:
    found = re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+Z", text)
    return [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in found]


def test_a_dead_delivery_shows_when_it_was_given_up_never_a_future_time(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    ws = workspace
    refuse_an_alert(ws, provider, webhook, max_attempts=1)
    before = datetime.now(UTC)
    assert ws.run("check").code == 0  # its one attempt fails: given up
    after = datetime.now(UTC)

    (dead,) = ws.run("deliveries", "--dead", "--json").json()
    given_up = datetime.fromisoformat(dead["given_up_at"].replace("Z", "+00:00"))
    assert before <= given_up <= after and dead["next_attempt_at"] is None
    assert f"gave up {dead['given_up_at']}" in _row(ws.run("deliveries").stdout, dead["id"])

    # a dead row whose next attempt lies ahead (as 'retry --to-current' leaves the row
    # it replaced): when it was given up is not known, and no future time is shown
    postpone(ws.db_url, dead["id"], hours=5)
    now = datetime.now(UTC)
    row = _row(ws.run("deliveries").stdout, dead["id"])
    assert "gave up (time not recorded)" in row and all(t <= now for t in _times(row))
    (dead,) = ws.run("deliveries", "--dead", "--json").json()
    assert dead["given_up_at"] is None and dead["next_attempt_at"] is None


def test_a_pending_delivery_says_what_it_waits_for(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    ws = sqlite_workspace
    refuse_an_alert(ws, provider, webhook)
    assert ws.run("check").code == 0
    (pending,) = ws.run("deliveries", "--pending", "--json").json()
    delivery_id = pending["id"]
    assert f"next try {pending['next_attempt_at']}" in _row(
        ws.run("deliveries").stdout, delivery_id
    )
    assert pending["lease_until"] is None and pending["url_in_config"] is True

    postpone(ws.db_url, delivery_id, hours=-1)  # overdue: no sender ran since
    row = _row(ws.run("deliveries").stdout, delivery_id)
    assert "due since" in row and "next try" not in row

    postpone(ws.db_url, delivery_id, hours=0.03, column="lease_until")  # a sender has it
    row = _row(ws.run("deliveries").stdout, delivery_id)
    assert "being sent (lease until" in row
    (pending,) = ws.run("deliveries", "--pending", "--json").json()
    assert pending["lease_until"] is not None

    postpone(ws.db_url, delivery_id, hours=-1, column="lease_until")  # the lease ran out
    ws.write_config([dos_target(provider)], notify_urls=[])  # and its URL left the config
    row = _row(ws.run("deliveries").stdout, delivery_id)
    assert "waiting: its URL is not in the config" in row and "due since" not in row
    (pending,) = ws.run("deliveries", "--pending", "--json").json()
    assert pending["url_in_config"] is False and pending["lease_until"] is None


def test_retry_to_current_never_resends_to_a_url_that_has_the_alert(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    """Two URLs, one down: sending the pending one to the current URLs reaches the one
    that missed it, and not again the one that got it."""
    other = WebhookServer().start()
    try:
        workspace.write_config([dos_target(provider)], notify_urls=[webhook.url, other.url])
        assert workspace.run("check").code == 0
        other.status = 503
        provider.set_ids(NEW_IDS)
        assert "alerts sent 1 of 2" in workspace.run("check").stdout
        (pending,) = workspace.run("deliveries", "--pending", "--json").json()
        (sent,) = workspace.run("deliveries", "--sent", "--json").json()
        other.status = 200

        retried = workspace.run("deliveries", "retry", str(pending["id"]), "--to-current")

        assert retried.code == 0, retried.stderr
        assert titles(webhook) == ["dos-ai: 1 model added, 1 removed"]  # once, not twice
        assert titles(other) == ["dos-ai: 1 model added, 1 removed"]
        lines = retried.stdout.splitlines()
        assert f"delivery {pending['id']}: sent to {pending['url']}" in lines
        assert any(
            line.startswith(f"delivery {sent['id']}: not sent to {sent['url']}: it got this")
            for line in lines
        ), lines
        everything = workspace.run("deliveries", "--json").json()
        assert sorted((d["id"], d["status"]) for d in everything) == sorted(
            [(pending["id"], "sent"), (sent["id"], "sent")]
        )
    finally:
        other.stop()


def test_retry_by_hand_of_a_delivery_whose_url_got_the_alert_otherwise_is_refused(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    """An older version's --to-current left a dead delivery beside the one that reached
    the same URL: retrying the dead one must not send the alert a second time."""
    from sqlalchemy import create_engine, text

    workspace.write_config([dos_target(provider)], notify_urls=[webhook.url])
    assert workspace.run("check").code == 0
    provider.set_ids(NEW_IDS)
    assert workspace.run("check").code == 0
    (sent,) = workspace.run("deliveries", "--json").json()
    engine = create_engine(workspace.db_url)
    with engine.begin() as connection:  # the replaced delivery, as an older version left it
        connection.execute(
            text(
                "INSERT INTO deliveries (target, change_event_id, url_hash, url, title, body,"
                " status, attempts, last_error, created_at, next_attempt_at)"
                " SELECT target, change_event_id, url_hash, url, title, body, 'dead', 3,"
                " 'sent instead to the current URLs', created_at, next_attempt_at"
                " FROM deliveries WHERE id = :id"
            ),
            {"id": sent["id"]},
        )
    engine.dispose()
    dead = next(d for d in workspace.run("deliveries", "--json").json() if d["status"] == "dead")

    retried = workspace.run("deliveries", "retry", str(dead["id"]))

    assert retried.code == 2
    assert retried.stderr.startswith(
        f"monitor: error: delivery {dead['id']}: this URL got the alert as delivery {sent['id']}"
    )
    assert "not sent twice" in retried.stderr
    assert len(webhook.posts) == 1  # the retry has exited: it would have posted by now


def run_while_the_database_goes_away(
    workspace: Workspace, proxy: TcpProxy, *args: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run ``monitor ARGS``; once it logs that a send was not recorded, bring the
    database back. The log lines up to that one, parsed."""
    proc = subprocess.Popen(
        [MONITOR, "-c", str(workspace.config_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **workspace.env},
        stdin=subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    logged = []
    for line in proc.stderr:
        logged.append(json.loads(line) if line.startswith("{") else {"event": line})
        if "did not record it yet" in logged[-1]["event"]:
            break
    proxy.restore()
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr), logged


@postgres_only
def test_a_sent_alert_the_database_did_not_record_is_recorded_once_it_is_back(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, db_proxy: TcpProxy
) -> None:
    """The database goes away while the webhook takes the alert: check says so, writes
    the success once the database is back, and nothing sends the alert again."""
    workspace.write_config([dos_target(provider)], notify_urls=[webhook.url])
    assert workspace.run("check").code == 0
    provider.set_ids(NEW_IDS)
    webhook.on_post = db_proxy.cut  # gone between the send and the write of its success

    done, logged = run_while_the_database_goes_away(workspace, db_proxy, "check")

    assert done.returncode == 0, done.stderr
    (error,) = [e for e in logged if e.get("level") == "error"]
    assert error["event"] == (
        "alert sent, but the database did not record it yet; retrying the write"
    )
    assert error["url"] == f"json://127.0.0.1:{webhook.port}/"
    assert error["error"].startswith("database error:")
    assert "alert outcome recorded after all" in done.stderr
    assert "alerts sent 1 of 1" in done.stdout
    (delivery,) = workspace.run("deliveries", "--json").json()
    assert (delivery["status"], delivery["attempts"]) == ("sent", 1)
    assert workspace.run("check").code == 0
    assert titles(webhook) == ["dos-ai: 1 model added, 1 removed"]


@postgres_only
def test_a_retry_by_hand_whose_success_the_database_missed_records_it_when_back(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, db_proxy: TcpProxy
) -> None:
    refuse_an_alert(workspace, provider, webhook)
    assert workspace.run("check").code == 0
    (pending,) = workspace.run("deliveries", "--pending", "--json").json()
    webhook.status = 200
    webhook.on_post = db_proxy.cut

    done, _ = run_while_the_database_goes_away(
        workspace, db_proxy, "deliveries", "retry", str(pending["id"])
    )

    assert done.returncode == 0, done.stderr
    assert f"delivery {pending['id']}: sent to" in done.stdout
    (delivery,) = workspace.run("deliveries", "--json").json()
    assert (delivery["status"], delivery["attempts"]) == ("sent", 1)
    again = workspace.run("deliveries", "retry", str(pending["id"]))
    assert again.code == 2 and "not sent twice" in again.stderr
    assert titles(webhook) == ["dos-ai: 1 model added, 1 removed"]
