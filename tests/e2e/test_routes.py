"""Alerts people keep reading (issue 15): model filters, routes, mutes and "still
served by", through the installed CLI and daemon against the real local provider and
webhook, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest
from conftest import Workspace, dos_target, wait_until
from servers import SEED_KEY, Answer, ProviderServer, SmtpServer, WebhookServer

LLAMAS = ["meta-llama/a", "meta-llama/b", "meta-llama/c:free"]


def titles(webhook: WebhookServer) -> list[str]:
    return [post["title"] for post in webhook.posts]


@pytest.fixture
def second_provider() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


def add_routes(workspace: Workspace, *routes: str) -> None:
    """Appends ``[[notify.routes]]`` tables, each given as its TOML body."""
    with workspace.config_path.open("a") as config:
        for body in routes:
            config.write(f"\n[[notify.routes]]\n{body.strip()}\n")


def test_include_and_exclude_choose_what_is_compared_and_editing_them_alerts_nothing(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    filtered = {"include": ["meta-llama/*"], "exclude": ["*:free"]}
    workspace.write_config([dos_target(provider, **filtered)], notify_urls=[webhook.url])
    provider.set_ids([*LLAMAS, "deepseek/x"])
    assert workspace.run("check").code == 0

    # changes outside the filter: stored, not compared, not alerted
    provider.set_ids([*LLAMAS, "qwen/y", "meta-llama/d:free"])
    assert workspace.run("check").code == 0
    assert workspace.run("changes", "--json").json() == []
    listed = [m["id"] for m in workspace.run("models", "--json").json()["models"]]
    assert "qwen/y" in listed and "meta-llama/d:free" in listed  # every model is stored

    # a change inside it: alerted, naming only the models that pass
    provider.set_ids(["meta-llama/a", "meta-llama/e", "meta-llama/c:free", "qwen/z"])
    assert workspace.run("check").code == 0
    assert titles(webhook) == ["dos-ai: 1 model added, 1 removed"]
    message = webhook.posts[0]["message"]
    assert "meta-llama/b" in message and "meta-llama/e" in message
    assert "qwen" not in message and ":free" not in message
    (change,) = workspace.run("changes", "--json").json()
    assert (change["added"], change["removed"]) == (["meta-llama/e"], ["meta-llama/b"])

    # the filter edited (a restart): the comparison re-bases, with no alert
    workspace.write_config([dos_target(provider)], notify_urls=[webhook.url])
    assert workspace.run("check").code == 0
    assert workspace.run("check").code == 0
    assert len(webhook.posts) == 1 and len(workspace.run("changes", "--json").json()) == 1

    # and on reload: the running daemon re-bases too, then alerts what the new filter sees
    workspace.write_config(
        [dos_target(provider, interval=1, include=["qwen/*"])], notify_urls=[webhook.url]
    )
    log = workspace.root / "daemon.log"
    proc = daemon(log=log)
    wait_until(lambda: workspace.polls("dos-ai") >= 6)
    workspace.write_config(
        [dos_target(provider, interval=1, include=["meta-llama/*"])], notify_urls=[webhook.url]
    )
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in log.read_text())
    polls = workspace.polls("dos-ai")
    wait_until(lambda: workspace.polls("dos-ai") >= polls + 2)
    assert len(webhook.posts) == 1
    provider.set_ids(["meta-llama/a", "meta-llama/c:free", "qwen/z"])
    wait_until(lambda: len(webhook.posts) == 2)
    assert titles(webhook)[1] == "dos-ai: 1 model removed"
    assert "meta-llama/e" in webhook.posts[1]["message"]


def test_changes_model_glob_lists_the_events_touching_matching_models_cli_and_api(
    workspace: Workspace, provider: ProviderServer
) -> None:
    import json
    import os
    import urllib.request

    from conftest import MONITOR
    from servers import free_port

    workspace.write_config([dos_target(provider)])
    provider.set_ids(["meta-llama/a", "deepseek/x"])
    assert workspace.run("check").code == 0
    provider.set_ids(["meta-llama/a", "deepseek/x", "deepseek/y"])  # no llama touched
    assert workspace.run("check").code == 0
    provider.set_ids(["deepseek/x", "deepseek/y"])  # meta-llama/a removed
    assert workspace.run("check").code == 0
    every = workspace.run("changes", "--json").json()
    assert len(every) == 2
    llama = workspace.run("changes", "--model", "meta-llama/*", "--json").json()
    assert llama == [every[0]] and llama[0]["removed"] == ["meta-llama/a"]
    both = workspace.run("changes", "--model", "meta-llama/*", "--model", "*/y", "--json")
    assert both.json() == every
    assert workspace.run("changes", "--model", "gpt-*", "--json").json() == []
    bad = workspace.run("changes", "--model", "meta-llama/[")
    assert bad.code == 2 and "--model" in bad.stderr and "no closing ']'" in bad.stderr

    port = free_port()
    proc = subprocess.Popen(
        [MONITOR, "-c", str(workspace.config_path), "web", "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, **workspace.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/changes?model=meta-llama/*"

        def answered() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    return json.loads(answer.read()) == llama
            except OSError:
                return False

        wait_until(answered)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_routes_send_each_url_its_events_and_models_once_and_say_where_models_remain(
    workspace: Workspace,
    provider: ProviderServer,
    second_provider: ProviderServer,
    webhook: WebhookServer,
    smtp: SmtpServer,
) -> None:
    everything, news = webhook.url_at("all"), webhook.url_at("news")
    workspace.write_config(
        [
            dos_target(provider, name="openrouter", retries=0),
            dos_target(second_provider, name="together"),
        ],
        notify_urls=[everything],
    )
    add_routes(
        workspace,
        # page me when a model we depend on disappears
        f'urls = ["{smtp.url}"]\nevents = ["removed"]\nmodels = ["meta-llama/*"]',
        # new models of one target to the news channel
        f'urls = ["{news}"]\nevents = ["added"]\ntargets = ["open*"]',
        # the same URL as notify.urls, for "down": still one message
        f'urls = ["{everything}"]\nevents = ["down"]',
    )
    provider.set_ids(["meta-llama/llama-3.3-70b", "meta-llama/llama-3.1-8b", "deepseek/r1"])
    second_provider.set_ids(["Llama-3.3-70B", "deepseek/r1", "qwen/q"])
    assert workspace.run("config", "check").code == 0
    assert workspace.run("check").code == 0

    provider.set_ids(["meta-llama/llama-3.1-8b", "mistral/m"])
    assert workspace.run("check").code == 0
    (mail,) = smtp.wait_for(1)
    assert mail["Subject"] == "openrouter: 1 model removed"
    text = mail.get_body().get_content()  # type: ignore[union-attr]
    assert "llama-3.3-70b (still at: together as Llama-3.3-70B)" in text
    assert "deepseek" not in text and "mistral" not in text
    (added,) = webhook.posts_to("news")
    assert added["title"] == "openrouter: 1 model added" and "mistral/m" in added["message"]
    assert "llama" not in added["message"]
    (whole,) = webhook.posts_to("all")
    assert whole["title"] == "openrouter: 1 model added, 2 removed"
    assert "deepseek/r1 (still at: together)" in whole["message"]
    (change,) = workspace.run("changes", "--json").json()
    assert change["still_at"] == {
        "deepseek/r1": ["together"],
        "meta-llama/llama-3.3-70b": ["together"],
    }
    assert len(workspace.run("deliveries", "--json").json()) == 3

    provider.answer = Answer(503, b"busy")
    for _ in range(3):  # down after three failed polls: one alert, at one URL
        workspace.run("check", "--target", "openrouter")
    assert [p["title"] for p in webhook.posts_to("all")][1:] == [
        "openrouter is down: HTTP 503: server error"
    ]
    assert len(webhook.posts_to("news")) == 1 and len(smtp.messages) == 1


def _end_digest_windows(db_url: str) -> int:
    """Ends every held delivery's digest window now, behind the monitor's back (as if
    the window's time had passed); how many it moved."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine, text

    from monitor.store.schema import to_micros

    engine = create_engine(db_url)
    past: object = datetime.now(UTC) - timedelta(seconds=1)
    if engine.dialect.name == "sqlite":
        past = to_micros(past)  # type: ignore[arg-type]
    try:
        with engine.begin() as connection:
            moved = connection.execute(
                text("UPDATE deliveries SET next_attempt_at = :t WHERE status = 'held'"),
                {"t": past},
            )
            return int(moved.rowcount)
    finally:
        engine.dispose()


def test_a_digest_route_sends_one_message_per_window_across_targets_and_restarts(
    workspace: Workspace,
    provider: ProviderServer,
    second_provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    daily, now_url = webhook.url_at("daily"), webhook.url_at("now")
    workspace.write_config(
        [dos_target(provider, name="openrouter"), dos_target(second_provider, name="together")]
    )
    add_routes(
        workspace,
        f'urls = ["{daily}"]\ndigest = "1d"',
        f'urls = ["{now_url}"]\nevents = ["removed"]\ntargets = ["together"]',
    )
    provider.set_ids(["a/1", "a/2"])
    second_provider.set_ids(["b/1", "b/2"])
    assert workspace.run("check").code == 0

    provider.set_ids(["a/1", "a/2", "a/3"])
    assert workspace.run("check").code == 0  # a change of one target: held for the digest
    second_provider.set_ids(["b/1"])
    assert workspace.run("check").code == 0  # a new process in the same window, another
    assert [p["title"] for p in webhook.posts] == ["together: 1 model removed"]  # at once
    held = workspace.run("deliveries", "--held", "--json").json()
    assert sorted(d["target"] for d in held) == ["openrouter", "together"]
    assert all(d["status"] == "held" and d["digest_at"].endswith("T00:00:00Z") for d in held)
    assert workspace.run("deliveries", "retry", str(held[0]["id"])).code != 0  # not alone

    assert _end_digest_windows(workspace.db_url) == 2  # the window's time has come ...
    proc = daemon()  # ... for a daemon and a check run at once: still one digest
    assert workspace.run("check").code == 0
    wait_until(lambda: len(webhook.posts_to("daily")) >= 1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=15)
    assert workspace.run("check").code == 0
    (digest,) = webhook.posts_to("daily")
    assert digest["title"] == "model changes: 2 targets, 1 added, 1 removed"
    body = digest["message"]
    assert body.index("openrouter: 1 model added") < body.index("together: 1 model removed")
    assert "a/3" in body and "b/2" in body
    every = workspace.run("deliveries", "--json").json()
    (made,) = [d for d in every if d["change_event_id"] is None and d["target_event_id"] is None]
    assert made["status"] == "sent" and made["title"] == digest["title"]
    assert sorted(d["digest_id"] for d in every if d["status"] == "digested") == [
        made["id"],
        made["id"],
    ]


def test_a_mute_holds_alerts_back_across_processes_and_ends_with_one_summary(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    workspace.write_config([dos_target(provider, interval=1, retries=0)], notify_urls=[webhook.url])
    provider.set_ids(["a", "b", "c"])
    daemon()
    wait_until(lambda: workspace.polls("dos-ai") >= 2)
    muted = workspace.run("mute", "dos-ai", "--for", "1h", "--reason", "gateway migration")
    assert muted.code == 0 and "muted dos-ai until" in muted.stdout
    (shown,) = workspace.run("mutes", "--json").json()
    assert (shown["target"], shown["all"], shown["reason"]) == (
        "dos-ai",
        False,
        "gateway migration",
    )

    # the running daemon sees the mute at once: no reload
    provider.set_ids(["a", "b"])
    wait_until(lambda: len(workspace.run("changes", "--json").json()) == 1)
    provider.answer = Answer(503, b"busy")  # down ...
    wait_until(lambda: any(e["kind"] == "down" for e in workspace.listing("events")))
    provider.answer = None  # ... and back, inside the mute
    wait_until(lambda: any(e["kind"] == "recovered" for e in workspace.listing("events")))
    provider.set_ids(["a", "b", "d"])
    wait_until(lambda: len(workspace.run("changes", "--json").json()) == 2)
    polls = workspace.polls("dos-ai")
    wait_until(lambda: workspace.polls("dos-ai") >= polls + 2)
    assert webhook.posts == []
    statuses = [d["status"] for d in workspace.run("deliveries", "--json").json()]
    assert statuses == ["muted"] * 4  # two changes, a down, a recovery
    assert len(workspace.run("deliveries", "--muted", "--json").json()) == 4

    ended = workspace.run("unmute", "dos-ai")
    assert ended.code == 0 and "unmuted dos-ai" in ended.stdout
    (summary,) = webhook.wait_for(1)
    assert summary["title"] == "while muted: 1 target, 1 added, 1 removed"
    assert "dos-ai: 1 model removed" in summary["message"]
    assert "dos-ai: 1 model added" in summary["message"]
    assert workspace.run("mutes", "--json").json() == []
    after = {d["status"] for d in workspace.run("deliveries", "--json").json()}
    assert after == {"sent", "digested", "suppressed"}  # the pair inside it: never sent

    # muted again and down when the mute ends: one "down" follows the summary
    from datetime import UTC, datetime, timedelta

    later = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%MZ")
    assert workspace.run("mute", "--all", "--until", later).code == 0
    provider.answer = Answer(503, b"busy")
    before = len(workspace.listing("events"))
    wait_until(lambda: len(workspace.listing("events")) > before)
    assert workspace.run("unmute", "--all").code == 0
    webhook.wait_for(2)
    assert [p["title"] for p in webhook.posts][1:] == ["dos-ai is down: HTTP 503: server error"]
    provider.answer = None  # the recovery after the mute is alerted as usual
    webhook.wait_for(3)
    assert webhook.posts[2]["title"].startswith("dos-ai is back")
    assert len(webhook.posts) == 3

    # a mute that runs out: the daemon sends its summary by itself
    assert workspace.run("mute", "dos-ai", "--for", "4s").code == 0
    provider.set_ids(["a", "e"])
    webhook.wait_for(4, timeout=30)
    assert webhook.posts[3]["title"] == "while muted: 1 target, 1 added, 2 removed"
    assert workspace.run("mutes", "--json").json() == []


def _readme_routing() -> tuple[list[str], str]:
    """The Routing part of the README: its TOML snippets and its shell snippet."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    part = readme.split("### Routing\n", 1)[1].split("\n## ", 1)[0]
    tomls = re.findall(r"```toml\n(.*?)```", part, re.S)
    (shell,) = re.findall(r"```sh\n(.*?)```", part, re.S)
    return tomls, shell


def test_the_readme_routing_examples_work_as_written(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, smtp: SmtpServer
) -> None:
    import re
    import shlex

    (pager, news), shell = _readme_routing()
    database = f"[database]\nurl = {json_quote(workspace.db_url)}\n"
    for snippet in (pager, news):  # as written: valid, every URL one apprise takes
        workspace.config_path.write_text(database + snippet)
        checked = workspace.run("config", "check")
        assert checked.code == 0, checked.stderr
        assert "route 0:" in checked.stdout

    def local(snippet: str) -> str:  # the same, pointed at this machine's fakes
        snippet = snippet.replace("https://openrouter.ai/api/v1", provider.base_url)
        snippet = re.sub(r'urls = \["mailto://[^"]*"\]', f'urls = ["{smtp.url}"]', snippet)
        return re.sub(r'urls = \["slack://[^"]*"\]', f'urls = ["{webhook.url}"]', snippet)

    provider.api_key = None  # OpenRouter's list needs no key
    provider.set_ids(["meta-llama/llama-3.3-70b-instruct", "deepseek/deepseek-r1", "qwen/q"])
    # both at once: the news example's target (its exclude too) and both routes
    pager_route = local(pager).split("\n\n", 1)[1]
    workspace.config_path.write_text(database + local(news) + "\n" + pager_route)
    assert workspace.run("check").code == 0
    provider.set_ids(["meta-llama/llama-3.3-70b-instruct", "mistral/new", "x/y:free"])
    assert workspace.run("check").code == 0
    (mail,) = smtp.wait_for(1)  # the pager: the dependency that went, and only it
    assert mail["Subject"] == "openrouter: 1 model removed"
    assert "deepseek-r1" in mail.get_body().get_content()  # type: ignore[union-attr]
    assert webhook.posts == []  # the news: held for the day's digest
    assert _end_digest_windows(workspace.db_url) == 1
    assert workspace.run("check").code == 0
    (daily,) = webhook.posts
    assert daily["title"] == "model changes: 1 target, 1 added"  # :free left out
    assert "mistral/new" in daily["message"] and ":free" not in daily["message"]

    # the mute, as written (with "gateway" a target of ours)
    workspace.write_config([dos_target(provider, name="gateway")], notify_urls=[webhook.url])
    provider.api_key = SEED_KEY
    assert workspace.run("check").code == 0
    commands = [line.split("#")[0].strip() for line in shell.strip().splitlines()]
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "monitor"
        result = workspace.run(*args[1:])
        assert result.code == 0, result.stderr
    assert workspace.run("mutes", "--json").json() == []  # unmuted by the last line


def json_quote(text: str) -> str:
    import json

    return json.dumps(text)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_config_check_lists_routes_and_says_what_is_probably_not_meant(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    workspace.write_config([dos_target(provider, interval="5m")])
    add_routes(
        workspace,
        f'urls = ["{webhook.url}"]\nevents = ["added", "removed"]\ndigest = "2m"',
        f'urls = ["{webhook.url}"]\ntargets = ["openrouter*"]',
    )
    checked = workspace.run("config", "check")
    assert checked.code == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert "route 0: added, removed of 1 targets, in a digest every 120s to 1 URL" in lines
    assert any("notify.routes[0].digest (120s) is shorter than" in line for line in lines)
    assert any("notify.routes[1].targets matches no configured target" in line for line in lines)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_retry_to_current_sends_to_the_routes_that_take_the_alert_today(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer
) -> None:
    from servers import free_port

    gone = f"json://127.0.0.1:{free_port()}/"  # nothing listens: the alert waits there
    workspace.write_config([dos_target(provider)], notify_urls=[gone], max_attempts=1)
    provider.set_ids(["a"])
    assert workspace.run("check").code == 0
    provider.set_ids(["a", "b"])
    assert workspace.run("check").code == 0
    (dead,) = workspace.run("deliveries", "--json").json()
    assert dead["status"] == "dead"
    # today: no notify.urls; new models go to /news, outages to /pager
    workspace.write_config([dos_target(provider)], max_attempts=1)
    add_routes(
        workspace,
        f'urls = ["{webhook.url_at("news")}"]\nevents = ["added"]',
        f'urls = ["{webhook.url_at("pager")}"]\nevents = ["down"]',
    )
    retried = workspace.run("deliveries", "retry", str(dead["id"]), "--to-current")
    assert retried.code == 0, retried.stderr
    assert [p["title"] for p in webhook.posts_to("news")] == ["dos-ai: 1 model added"]
    assert webhook.posts_to("pager") == []
