"""Alerts people keep reading (issue 15): model filters, routes, mutes and "still
served by", through the installed CLI and daemon against the real local provider and
webhook, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

from conftest import Workspace, dos_target, wait_until
from servers import ProviderServer, WebhookServer

LLAMAS = ["meta-llama/a", "meta-llama/b", "meta-llama/c:free"]


def titles(webhook: WebhookServer) -> list[str]:
    return [post["title"] for post in webhook.posts]


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
