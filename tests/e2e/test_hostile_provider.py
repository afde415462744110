"""A hostile provider against the installed console script: every answer becomes a
recorded poll, the same list reads back the same from SQLite and PostgreSQL, what a
provider sends never drives a terminal or a chat, and a key it echoes back reaches
nothing a user can see."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from builders import json_escaped
from conftest import MONITOR, Workspace, dos_target, wait_until
from servers import SEED_MODELS, Answer, ProviderServer, SmtpServer, WebhookServer


def strict_json(text: str) -> Any:
    """JSON as the RFC has it: no NaN, no Infinity."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def calm() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


HOSTILE: dict[str, tuple[Answer, str | None]] = {
    # an answer, and the reason its poll fails with (None: a good poll)
    "nested-5000": (Answer(200, b"[" * 5000 + b"]" * 5000), "JSON nested too deep"),
    "lone-surrogate-id": (
        Answer(200, b'{"data":[{"id":"s\\ud800x"}]}'),
        "invalid string in data[0].id",
    ),
    "401-nested-5000": (
        Answer(401, b'{"error":' * 5000 + b"1" + b"}" * 5000),
        "HTTP 401: authentication failed",
    ),
    "not-utf8": (Answer(200, b'{"data":[{"id":"caf\xe9"}]}'), "response is not UTF-8 text"),
    "nan-infinity-1e999": (
        Answer(200, b'{"data":[{"id":"a","p":NaN,"q":-Infinity,"r":1e999,"s":0.5}]}'),
        None,
    ),
    "5000-digit-number": (Answer(200, b'{"data":[{"id":"a","n":' + b"7" * 5000 + b"}]}"), None),
    "duplicate-keys": (Answer(200, b'{"data":[{"id":"a","v":1,"v":2}]}'), None),
    "nul-character": (Answer(200, b'{"data":[{"id":"a\\u0000b","d":"x\\u0000"}]}'), None),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_every_answer_becomes_a_recorded_poll_and_the_next_target_is_polled(
    case: str, sqlite_workspace: Workspace, provider: ProviderServer, calm: ProviderServer
) -> None:
    ws = sqlite_workspace
    answer, reason = HOSTILE[case]
    provider.answer = answer
    ws.write_config(
        [dos_target(provider, name="hostile", retries=0), dos_target(calm, name="calm")]
    )
    result = ws.run("check")
    assert "internal error" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.code == (0 if reason is None else 1), result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("hostile: ") and second == "calm: 4 models, first good poll (baseline)"
    (poll,) = strict_json(ws.run("history", "--target", "hostile", "--json").stdout)
    assert poll["ok"] is (reason is None)
    if reason is not None:
        assert reason in poll["error"] and first == f"hostile: FAILED: {poll['error']}"
        assert len(poll["error"]) < 200
    shown = ws.run("show", str(poll["id"]), "--json")
    assert shown.code == 0
    strict_json(shown.stdout)  # valid JSON whatever the provider sent


def test_the_daemon_alerts_down_for_answers_it_cannot_read(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    provider.answer = HOSTILE["nested-5000"][0]
    workspace.write_config(
        [dos_target(provider, interval=1, retries=0, alert_after_failures=2)],
        notify_urls=[webhook.url],
    )
    proc = daemon()
    wait_until(lambda: len(webhook.posts) >= 1)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=15)
    assert [p["title"] for p in webhook.posts] == ["dos-ai is down: JSON nested too deep"]
    assert "Traceback" not in stdout + stderr and "unexpected error" not in stdout
    polls = strict_json(workspace.run("history", "--json").stdout)
    assert len(polls) >= 2 and all(p["error"] == "JSON nested too deep" for p in polls)


ODD_MODELS_RAW = (
    b'{"id":"evil\\u202egnp.exe","description":"bad\\u0000byte","price":NaN,"big":1e20},'
    b'{"id":"bad\\u0000id","ctl":"\\u001b[2J\\u0007","z":1,"a":{"y":-0.0,"b":[1e999]}}'
)
ODD_MODELS = [  # as every database gives them back: keys sorted, odd numbers as strings
    {"a": {"b": ["1e999"], "y": 0.0}, "ctl": "\x1b[2J\x07", "id": "bad\x00id", "z": 1},
    {"big": 10**20, "description": "bad\x00byte", "id": "evil\u202egnp.exe", "price": "NaN"},
]
RAW_CONTROLS = ("\x00", "\x1b", "\x07", "\u202e")


def test_the_same_odd_list_reads_back_the_same_and_is_shown_escaped(
    workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, smtp: SmtpServer
) -> None:
    workspace.write_config([dos_target(provider)], notify_urls=[webhook.url, smtp.url])
    assert workspace.run("check").code == 0
    seed = json.dumps(SEED_MODELS).encode()[1:-1]
    provider.answer = Answer(
        200, b'{"object":"list","data":[' + seed + b"," + ODD_MODELS_RAW + b"]}"
    )
    check = workspace.run("check")
    assert check.code == 0, check.stdout + check.stderr
    assert check.stdout == "dos-ai: 6 models, changed (+2 -0); alerts sent 2 of 2\n"

    (change,) = strict_json(workspace.run("changes", "--json").stdout)
    assert change["added"] == ["bad\x00id", "evil\u202egnp.exe"]  # exact, as stored
    shown = strict_json(workspace.run("show", str(change["to_snapshot_id"]), "--json").stdout)
    odd = [m for m in shown["models"] if m["id"] in change["added"]]
    assert odd == ODD_MODELS  # the same on SQLite and PostgreSQL
    listed = strict_json(workspace.run("models", "--json").stdout)
    assert [m for m in listed["models"] if m["id"] in change["added"]] == ODD_MODELS

    # shown escaped wherever a person reads it
    (post,) = webhook.wait_for(1)
    (mail,) = smtp.wait_for(1)
    text = SmtpServer.text(mail)  # the Markdown body as a person reads it
    assert '"evil\\u202egnp.exe"' in text and '"bad\\x00id"' in text
    # the JSON webhook gets the Markdown itself: the escapes' backslashes escaped
    assert '"evil\\\\u202egnp.exe"' in post["message"]
    for raw in (text, post["message"]):
        assert not any(c in raw for c in RAW_CONTROLS)
    outputs = [
        workspace.run("changes"),
        workspace.run("show", str(change["to_snapshot_id"])),
        workspace.run("models"),
        workspace.run("diff", str(change["from_snapshot_id"]), str(change["to_snapshot_id"])),
        workspace.run("model", "evil\u202egnp.exe"),
        workspace.run("changes", "--json"),
        workspace.run("export", "--format", "json"),
    ]
    for result in outputs:
        assert result.code == 0, result.stderr
        assert not any(c in result.stdout + result.stderr for c in RAW_CONTROLS), result.stdout
    assert '"evil\\u202egnp.exe"' in outputs[0].stdout and '"bad\\x00id"' in outputs[0].stdout
    assert '+ "bad\\x00id"' in outputs[3].stdout.splitlines()


# -- the key never leaks, whatever the provider echoes ---------------------------------

KEY = "dos-sk_ZZ+leak/TEST=9876543210qwertyuiop"


def key_forms() -> list[str]:
    """The key as it could show up: raw, URL- and form-encoded, JSON-escaped."""
    escaped = json_escaped(KEY)
    return [KEY, quote(KEY, safe=""), quote_plus(KEY), json.dumps(KEY)[1:-1], escaped]


def leaks(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        return [f for f in key_forms() if f.encode() in text]
    return [f for f in key_forms() if f in text]


def echoing_list(*extra: str) -> Answer:
    """A good list whose objects, headers and status line echo the key."""
    escaped = json_escaped(KEY)
    models = [
        *SEED_MODELS,
        {"id": f"ft:gpt-4o:{KEY}", "object": "model"},
        {"id": "echo", "url": f"https://x.example/?key={quote(KEY, safe='')}", "created": KEY},
        *({"id": i} for i in extra),
    ]
    body = json.dumps({"data": models})
    body = body[:-2] + ',{"id":"escaped","description":"your key: ' + escaped + '"}]}'
    return Answer(
        200, body.encode(), headers={"ETag": f'"{KEY}"', "X-Echo": KEY}, reason=f"OK {KEY}"
    )


def test_the_key_never_leaks_whatever_the_provider_echoes(
    sqlite_workspace: Workspace, provider: ProviderServer, webhook: WebhookServer, smtp: SmtpServer
) -> None:
    ws = sqlite_workspace
    ws.env["DOS_API_KEY"] = KEY
    provider.api_key = KEY
    ws.write_config(
        [dos_target(provider, retries=0, alert_after_failures=2)],
        notify_urls=[webhook.url, smtp.url],
    )
    escaped = json_escaped(KEY)
    echoes = [
        echoing_list(),  # the baseline
        echoing_list(f"new-{quote_plus(KEY)}"),  # a change: alerted
        Answer(302, b"", headers={"Location": f"http://127.0.0.1:99999/?auth=Bearer%20{KEY}"}),
        Answer(
            401,
            json.dumps({"error": {"message": f"bad key {KEY} / {quote(KEY, safe='')}"}}).encode(),
            reason=f"Unauthorized {KEY}",
        ),  # the second failure in a row: "down"
        Answer(200, f"Invalid key {escaped}".encode(), "text/plain"),
        Answer(302, b"", headers={"Location": f"http://{quote(KEY, safe='')}.example/"}),
        echoing_list(),  # back: "recovered", and the model that went away
    ]
    for answer in echoes:
        provider.answer = answer
        result = ws.run("check", "--log-level", "debug")
        assert "Traceback" not in result.stderr
    assert provider.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    titles = [p["title"] for p in webhook.wait_for(4)]
    assert len(titles) == 4 and titles[1].startswith("dos-ai is down: ")

    # the daemon at debug level, polling the echoing provider
    provider.answer = echoing_list("daemon")
    ws.write_config(
        [dos_target(provider, retries=0, interval=1)], notify_urls=[webhook.url, smtp.url]
    )
    log_path = ws.root / "daemon.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [MONITOR, "-c", str(ws.config_path), "run", "--log-level", "debug"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ws.env},
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(lambda: ws.polls("dos-ai") >= len(echoes) + 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    daemon_log = log_path.read_text()
    assert "receive_response_headers" in daemon_log and "ETag" in daemon_log  # debug is on

    snapshots = strict_json(ws.run("history", "--json", "--limit", "1000").stdout)
    changes = strict_json(ws.run("changes", "--json").stdout)
    for args in (
        ["history"],
        ["changes"],
        ["events"],
        ["events", "--json"],
        ["deliveries"],
        ["deliveries", "--json"],
        ["models"],
        ["models", "--json"],
        ["export", "--format", "json"],
        ["export", "--format", "csv"],
        ["model", "echo"],
        ["model", "echo", "--json"],
        ["diff", str(changes[0]["from_snapshot_id"]), str(changes[0]["to_snapshot_id"])],
        ["config", "check"],
        *(["show", str(s["id"]), *j] for s in snapshots for j in ([], ["--json"])),
    ):
        assert ws.run(*args).code == 0, args
    seen: list[tuple[str, list[str]]] = []
    for result in ws.results:
        seen.append(("stdout", leaks(result.stdout)))
        seen.append(("stderr", leaks(result.stderr)))
    seen.append(("daemon log", leaks(daemon_log)))
    seen += [(f"webhook {p['title']}", leaks(json.dumps(p))) for p in webhook.posts]
    for mail in smtp.messages:
        seen.append(
            (f"mail {mail['Subject']}", leaks(str(mail["Subject"]) + SmtpServer.text(mail)))
        )
    for path in ws.root.glob("monitor.db*"):
        seen.append((path.name, leaks(path.read_bytes())))
    assert [(where, found) for where, found in seen if found] == []
    assert len(smtp.messages) == len(webhook.posts) >= 4


def test_a_bug_met_by_one_target_in_check_leaves_the_others_alone(
    sqlite_workspace: Workspace, provider: ProviderServer, calm: ProviderServer
) -> None:
    ws = sqlite_workspace
    ws.write_config([dos_target(provider, name="first"), dos_target(calm, name="second")])
    text = ws.config_path.read_text()
    ws.config_path.write_text("[defaults]\nmax_concurrency = 1\n\n" + text)  # in order
    result = ws.run("check", failpoint="bug-once")  # raises once, in the first poll
    assert result.code == 1
    assert result.stdout.splitlines() == [
        "first: NOT RECORDED: internal error: RuntimeError",
        "second: 4 models, first good poll (baseline)",
    ]
    assert "Traceback" in result.stderr  # in the log, for the bug report
    assert ws.polls("second") == 1
