"""``monitor web``: the JSON API over the history, served by the real console script
against a database filled by real polls of the local provider, on SQLite and
PostgreSQL; read-only, with its security headers, its password, and a clean stop."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from conftest import MONITOR, Workspace, dos_target, wait_until
from servers import Answer, ProviderServer, WebhookServer, free_port, model

XSS = "<img src=x onerror=alert(1)>"
SLASHED = "meta-llama/llama-3.3-70b"


def request(
    url: str, method: str = "GET", auth: tuple[str, str] | None = None
) -> tuple[int, Message, str]:
    """(status, headers (any case), body) of one request to the local web app."""
    req = urllib.request.Request(url, method=method)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


@pytest.fixture
def web(workspace: Workspace) -> Iterator[Callable[..., str]]:
    """Starts ``monitor web`` on a free loopback port; its base URL. Stopped with
    SIGTERM after the test, which must end it cleanly (exit 0) within 10 s."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [
                MONITOR,
                "-c",
                str(workspace.config_path),
                "web",
                "--listen",
                f"127.0.0.1:{port}",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **workspace.env},
            stdin=subprocess.DEVNULL,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert proc.poll() is None, proc.communicate()
            try:
                request(base + "/api/v1/targets")
            except OSError:
                return False
            return True

        wait_until(answers)
        return base

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err


def api(base: str, path: str, **params: str) -> Any:
    query = urllib.parse.urlencode(params)
    status, headers, body = request(f"{base}/api/v1/{path}" + (f"?{query}" if query else ""))
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    return json.loads(body)


def test_each_api_answer_is_what_the_cli_prints_with_json(
    workspace: Workspace, provider: ProviderServer, web: Callable[..., str]
) -> None:
    workspace.write_config(
        [dos_target(provider, watch_fields=["owned_by"])],
        notify_urls=[f"json://127.0.0.1:{free_port()}/"],  # nothing listens: alerts wait
    )
    assert workspace.run("check").code == 0
    provider.models = [*provider.models, model(SLASHED), model(XSS)]
    assert workspace.run("check").code == 0  # the alert could not be sent: still pending
    provider.answer = Answer(503, b"busy")
    for _ in range(3):  # down, with its event
        workspace.run("check")
    provider.answer = None
    assert workspace.run("check").code == 0  # recovered, with another
    base = web()

    history = workspace.run("history", "--target", "dos-ai", "--json").json()
    assert api(base, "history", target="dos-ai") == history
    for flags, params in [
        (["--since", "1d", "--limit", "2"], {"since": "1d", "limit": "2"}),
        (["--target", "dos-ai", "--limit", "3"], {"target": "dos-ai", "limit": "3"}),
    ]:
        for listing in ("history", "changes", "events"):
            assert api(base, listing, **params) == workspace.run(listing, *flags, "--json").json()
    events = workspace.run("events", "--target", "dos-ai", "--json").json()
    assert [e["kind"] for e in events] == ["recovered", "down"]
    # the next page: the rows after the last one shown, as the whole listing has them
    assert api(base, "events", before=str(events[0]["id"])) == events[1:]
    assert api(base, "history", before=str(history[2]["id"]), limit="2") == history[3:5]
    # a full page names the next one in a Link header; the last page names none
    _, headers, _ = request(base + "/api/v1/history?target=dos-ai&limit=2")
    nxt = f"/api/v1/history?target=dos-ai&limit=2&before={history[1]['id']}"
    assert headers["Link"] == f'<{nxt}>; rel="next"'
    _, headers, body = request(base + f"/api/v1/history?limit=50&before={history[1]['id']}")
    assert "Link" not in headers and json.loads(body) == history[2:]
    first, second = history[-1]["id"], history[0]["id"]
    changes = workspace.run("changes", "--target", "dos-ai", "--json").json()
    assert len(changes) == 1 and sorted(changes[0]["added"]) == sorted([SLASHED, XSS])
    assert api(base, "changes", target="dos-ai") == changes
    assert api(base, "changes", target="dos-ai", limit="1", since="1d") == changes
    assert api(base, f"snapshots/{second}") == workspace.run("show", str(second), "--json").json()
    at = history[0]["fetched_at"]
    assert api(base, "models", target="dos-ai", at=at) == (
        workspace.run("models", "--target", "dos-ai", "--at", at, "--json").json()
    )
    assert api(base, "diff", **{"from": str(first), "to": str(second)}) == (
        workspace.run("diff", str(first), str(second), "--json").json()
    )
    assert api(base, "events") == workspace.run("events", "--json").json()
    deliveries = workspace.run("deliveries", "--json").json()
    assert [d["status"] for d in deliveries] == ["pending"] * 3  # change, down, recovered
    assert api(base, "deliveries") == deliveries
    for model_id in (SLASHED, XSS):  # an ID with a slash, an ID made to be HTML
        assert api(base, "model", id=model_id) == (
            workspace.run("model", model_id, "--json").json()
        )
        assert api(base, "model", id=model_id, target="dos-ai") == (
            workspace.run("model", model_id, "--target", "dos-ai", "--json").json()
        )
    (target,) = api(base, "targets")
    assert target == {
        "name": "dos-ai",
        "status": "ok",
        "reason": None,
        "model_count": len(provider.models),
        "last_poll_at": history[0]["fetched_at"],
        "last_good_at": history[0]["fetched_at"],
        "last_change_at": changes[0]["detected_at"],
        "consecutive_failures": 0,
    }


def test_a_failing_target_reads_failing_then_down_with_its_reason(
    workspace: Workspace, provider: ProviderServer, web: Callable[..., str]
) -> None:
    workspace.write_config([dos_target(provider, alert_after_failures=2, retries=0)])
    assert workspace.run("check").code == 0
    provider.api_key = "another key"  # every poll now gets a 401
    workspace.run("check")
    base = web()
    (target,) = api(base, "targets")
    assert target["status"] == "failing" and target["consecutive_failures"] == 1
    assert "401" in target["reason"]
    workspace.run("check")
    (target,) = api(base, "targets")
    assert target["status"] == "down" and target["consecutive_failures"] == 2
    assert target["model_count"] == len(provider.models)  # its last good list


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("history?limit=abc", "limit: 'abc' is not a whole number"),
        ("history?since=yesterday", "since: 'yesterday' is not a time"),
        ("changes?target=nope", "unknown target 'nope'"),
        ("snapshots/0", "snapshot id: '0' is not an id"),
        ("changes?before=x", "before: 'x' is not an id"),
        ("snapshots/999999", "no snapshot with id 999999"),
        ("diff?from=1", "to: a snapshot id is required"),
        ("model?id=gpt-9", "no poll ever listed a model 'gpt-9'"),
        ("deliveries?status=lost", "status: 'lost' is not one of pending, sent, dead"),
    ],
)
def test_a_request_the_api_cannot_answer_says_which_parameter_and_value(
    sqlite_workspace: Workspace,
    provider: ProviderServer,
    path: str,
    says: str,
    tmp_path: Any,
) -> None:
    workspace = sqlite_workspace
    workspace.write_config([dos_target(provider)])
    assert workspace.run("check").code == 0
    port = free_port()
    proc = subprocess.Popen(
        [MONITOR, "-c", str(workspace.config_path), "web", "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **workspace.env},
        stdin=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v1/"
        wait_until(lambda: _answers(base + "targets"))
        status, headers, body = request(base + path)
        assert status in (400, 404), body
        assert says in json.loads(body)["error"]
        assert headers["Content-Type"].startswith("application/json")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def _answers(url: str) -> bool:
    try:
        request(url)
    except OSError:
        return False
    return True


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_app_is_read_only_and_tells_browsers_to_run_nothing_else(
    workspace: Workspace, provider: ProviderServer, web: Callable[..., str]
) -> None:
    workspace.write_config([dos_target(provider)])
    assert workspace.run("check").code == 0
    base = web()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = request(base + "/api/v1/targets", method)
        assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, _ = request(base + "/api/v1/targets", "HEAD")
    assert status == 200
    status, headers, _ = request(base + "/api/v1/targets")
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in headers


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_password_turns_on_basic_auth_and_never_shows(
    workspace: Workspace, provider: ProviderServer, web: Callable[..., str]
) -> None:
    secret = "correct horse battery staple"
    (workspace.root / "web.password").write_text(secret + "\n")
    workspace.write_config([dos_target(provider)])
    with workspace.config_path.open("a") as config:
        config.write('\n[web]\npassword_file = "web.password"\n')
    assert workspace.run("check").code == 0
    base = web()
    status, headers, body = request(base + "/api/v1/targets")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert request(base + "/api/v1/targets", auth=("monitor", "wrong"))[0] == 401
    assert request(base + "/api/v1/targets", auth=("admin", secret))[0] == 401
    status, _, body = request(base + "/api/v1/targets", auth=("monitor", secret))
    assert status == 200 and secret not in body
    assert all(secret not in r.stdout + r.stderr for r in workspace.results)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_password_can_come_from_a_systemd_credential(
    workspace: Workspace, provider: ProviderServer, web: Callable[..., str]
) -> None:
    secret = "credential-held-password"
    credentials = workspace.root / "credentials"
    credentials.mkdir()
    (credentials / "web_password").write_text(secret + "\n")  # as LoadCredential= gives it
    workspace.env["CREDENTIALS_DIRECTORY"] = str(credentials)
    workspace.write_config([dos_target(provider)])
    with workspace.config_path.open("a") as config:
        config.write('\n[web]\npassword_credential = "web_password"\n')
    assert workspace.run("check").code == 0
    base = web()
    assert request(base + "/", auth=None)[0] == 401
    assert request(base + "/", auth=("monitor", secret + "\n"))[0] == 401
    status, _, page = request(base + "/", auth=("monitor", secret))
    assert status == 200 and secret not in page
    # a credential that is not there: exit 2 naming the key, before serving anything
    del workspace.env["CREDENTIALS_DIRECTORY"]
    missing = workspace.run("web", "--listen", f"127.0.0.1:{free_port()}")
    assert missing.code == 2
    assert "web.password_credential" in missing.stderr and secret not in missing.stderr


def test_an_address_other_hosts_reach_needs_a_password_or_a_said_yes(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    workspace = sqlite_workspace
    workspace.write_config([dos_target(provider)])
    refused = workspace.run("web", "--listen", "0.0.0.0:8080")
    assert refused.code == 2
    assert "--listen: '0.0.0.0:8080' is reachable from other hosts" in refused.stderr
    with workspace.config_path.open("a") as config:
        config.write('\n[web]\nlisten = "0.0.0.0:8080"\n')
    refused = workspace.run("config", "check")
    assert refused.code == 2
    assert 'web.listen: "0.0.0.0:8080" is reachable from other hosts' in refused.stderr


def test_the_daemon_serves_the_api_while_it_polls_and_stops_cleanly(
    workspace: Workspace,
    provider: ProviderServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    port = free_port()
    workspace.write_config([dos_target(provider, interval=1)])
    with workspace.config_path.open("a") as config:
        config.write(f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    proc = daemon()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base + "/api/v1/targets"))
    wait_until(lambda: api(base, "targets")[0]["status"] == "ok")
    assert api(base, "changes") == []
    provider.models = [*provider.models, model(SLASHED)]  # a change at the provider ...
    wait_until(lambda: api(base, "changes") != [])  # ... is served after the next poll
    (change,) = api(base, "changes")
    assert change["added"] == [SLASHED]
    assert api(base, "model", id=SLASHED)["targets"][0]["listed_now"] is True
    assert request(base + "/api/v1/targets", "POST")[0] == 405
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    assert "web app served" in stdout and "daemon stopped" in stdout
    assert not _answers(base + "/api/v1/targets")  # the port is closed with it


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_metrics_port_is_served_by_the_same_framework_and_says_where_it_is(
    workspace: Workspace,
    provider: ProviderServer,
    daemon: Callable[..., subprocess.Popen[str]],
) -> None:
    port, moved = free_port(), free_port()
    workspace.write_config([dos_target(provider, interval=1)])
    good = workspace.config_path.read_text()
    workspace.config_path.write_text(good + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    log = workspace.root / "daemon.log"
    proc = daemon(log=log)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base + "/healthz"))
    wait_until(
        lambda: 'monitor_polls_total{outcome="ok",target="dos-ai"}' in request(base + "/metrics")[2]
    )
    status, headers, body = request(base + "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert headers["Content-Type"].startswith("application/json")
    status, headers, _ = request(base + "/metrics")
    assert headers["Content-Type"].startswith("text/plain; version=")
    assert request(base + "/metrics", "POST")[0] == 405
    assert request(base + "/nothing-here")[0] == 404
    assert "Server" not in request(base + "/metrics")[1]

    # a reload that moves [metrics] listen needs a restart: until then the feed's own
    # link names the address still served, host and port
    workspace.config_path.write_text(good + f'\n[metrics]\nlisten = "localhost:{moved}"\n')
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "metrics.listen changed" in log.read_text())
    status, headers, feed = request(base + "/feed.atom")
    assert status == 200 and headers["Content-Type"].startswith("application/atom+xml")
    assert f'href="{base}/feed.atom"' in feed
    assert not _answers(f"http://127.0.0.1:{moved}/healthz")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["address"] for line in lines if line["event"] == "metrics served"] == [
        f"{base}/metrics"
    ]
    # uvicorn's own start and stop lines stay out of the daemon's log
    assert not [line for line in lines if line.get("logger", "").startswith("uvicorn")]
    assert not _answers(base + "/healthz")


def test_a_busy_web_port_stops_the_daemon_before_it_polls(
    sqlite_workspace: Workspace, provider: ProviderServer
) -> None:
    workspace = sqlite_workspace
    workspace.write_config([dos_target(provider, interval=1)])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with workspace.config_path.open("a") as config:
            config.write(f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
        result = workspace.run("run", timeout=30)
    assert result.code == 1
    assert f"web.listen: cannot listen on 127.0.0.1:{port}: Address already in use" in (
        result.stderr
    )
    assert provider.requests == []


def test_the_pages_show_status_changes_models_and_escape_what_providers_send(
    workspace: Workspace, provider: ProviderServer, web: Callable[..., str]
) -> None:
    workspace.write_config(
        [dos_target(provider, watch_fields=["owned_by"]), dos_target(provider, name="mirror")]
    )
    assert workspace.run("check").code == 0
    bare = {"id": "bare-model", "object": "model"}
    provider.models = [*provider.models, model(SLASHED), model(XSS), bare]
    assert workspace.run("check").code == 0
    base = web()

    status, headers, overview = request(base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<a href="/targets/dos-ai">dos-ai</a>' in overview
    assert '<span class="status ok">ok</span>' in overview
    assert "<img src=x" not in overview  # a provider's HTML is text, on every page
    assert "&lt;img src=x onerror=alert(1)&gt;" in overview
    assert f'href="/models/{SLASHED}"' in overview  # the change links its models

    status, _, changes = request(base + "/changes?target=dos-ai")
    assert status == 200 and SLASHED in changes and "<img src=x" not in changes
    (change,) = workspace.run("changes", "--target", "dos-ai", "--json").json()
    pair = f"/diff?from={change['from_snapshot_id']}&amp;to={change['to_snapshot_id']}"
    assert pair in changes  # and its two snapshots
    status, _, diff = request(base + pair.replace("&amp;", "&"))
    assert status == 200 and SLASHED in diff

    status, _, page = request(base + "/targets/dos-ai?q=llama")
    assert status == 200 and SLASHED in page and "deepseek" not in page.split("Changes")[0]
    assert '<svg class="chart"' in page and "<script" not in page

    status, _, life = request(base + "/models/" + SLASHED)
    assert status == 200 and "first seen" in life
    assert '<a href="/targets/mirror">mirror</a>' in life  # listed there too
    escaped = urllib.parse.quote(XSS, safe="/")
    status, _, life = request(base + "/models/" + escaped)
    assert status == 200 and "&lt;img src=x onerror=alert(1)&gt;" in life
    assert "<img src=x" not in life

    second = workspace.run("history", "--target", "dos-ai", "--limit", "1", "--json").json()
    status, _, snapshot = request(base + f"/snapshots/{second[0]['id']}")
    assert status == 200 and "bare-model" in snapshot  # a model without owned_by too
    status, _, grid = request(base + "/matrix?q=LLAMA")
    assert status == 200 and SLASHED in grid and "dos-ai" in grid and "deepseek-v3" not in grid
    status, _, missing = request(base + "/models/gpt-9")
    assert status == 404 and "no poll ever listed a model" in missing
    status, headers, css = request(base + "/static/style.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and "status" in css


def test_events_and_deliveries_pages_filter_by_target_time_and_status_and_page_on(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    web: Callable[..., str],
) -> None:
    dead_port = free_port()
    workspace.write_config(
        [
            dos_target(provider),
            {"name": "gone", "base_url": f"http://127.0.0.1:{dead_port}/v1", "retries": 0},
        ],
        notify_urls=[webhook.url],
    )
    for _ in range(3):  # three failed polls: "gone" is down, with an alert for each
        workspace.run("check")
    provider.set_ids(["dos-ai", "kimi-k2"])  # and a change of dos-ai, alerted too
    workspace.run("check")
    webhook.wait_for(2)
    base = web()

    _, _, events = request(base + "/events")
    assert "<td>gone</td>" not in events and '<a href="/targets/gone">gone</a>' in events
    _, _, events = request(base + "/events?target=dos-ai")
    assert '<a href="/targets/gone">' not in events and "No target has gone down." in events
    _, _, events = request(base + "/events?since=2000-01-01")
    assert '<a href="/targets/gone">gone</a>' in events
    _, _, events = request(base + "/events?since=now")
    assert "No target has gone down." in events
    status, _, bad = request(base + "/events?target=nope")
    assert status == 404 and "nope" in bad

    every = workspace.run("deliveries", "--json").json()
    assert sorted(d["target"] for d in every) == ["dos-ai", "gone"]
    _, _, page = request(base + "/deliveries?target=gone")
    assert "gone is down" in page and "dos-ai: 1 model added" not in page
    assert "1 matching" in page
    _, _, page = request(base + "/deliveries?status=pending")
    assert "No alerts yet." in page and "0 matching" in page
    status, _, bad = request(base + "/deliveries?status=lost")
    assert status == 400 and "status: &#39;lost&#39; is not one of pending, sent, dead, held" in bad
    _, _, page = request(base + "/deliveries?limit=1")
    assert "2 matching" in page and "Older →" in page
    older = page.split('<p class="pager"><a href="')[1].split('"')[0].replace("&amp;", "&")
    _, _, second = request(base + older)
    # newest first, the next page going on where the first ended
    newest, oldest = (d["title"] for d in every)
    assert newest in page and oldest not in page
    assert oldest in second and newest not in second and "Older →" not in second
    assert api(base, "deliveries", limit="1", before=str(every[0]["id"])) == every[1:]


def test_a_webhook_token_in_a_url_path_shows_nowhere(
    workspace: Workspace,
    provider: ProviderServer,
    webhook: WebhookServer,
    web: Callable[..., str],
) -> None:
    token = "in/abcdEFGH12345678"  # a token-in-path webhook, as Slack's and Teams' are
    workspace.write_config([dos_target(provider)], notify_urls=[webhook.url_at(token)])
    assert workspace.run("check").code == 0
    provider.set_ids(["dos-ai", "kimi-k2"])
    assert workspace.run("check").code == 0
    assert len(webhook.posts_to(token)) == 1  # it was sent there ...
    base = web()
    seen = [
        request(base + "/deliveries")[2],
        request(base + "/api/v1/deliveries")[2],
        workspace.run("deliveries").stdout,
        workspace.run("deliveries", "--json").stdout,
        workspace.run("config", "check").stdout,
    ]
    shown = api(base, "deliveries")[0]["url"]
    assert shown == f"json://127.0.0.1:{webhook.port}/in/…"  # ... and is shown without it
    assert not [text for text in seen if "abcdEFGH12345678" in text]
    if workspace.db_url.startswith("sqlite"):
        database = Path(workspace.db_url.removeprefix("sqlite:///"))
        for file in (database, database.with_name(database.name + "-wal")):
            assert not file.exists() or b"abcdEFGH12345678" not in file.read_bytes()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_target_sorts_numbers_as_numbers_both_ways_and_listings_link_their_records(
    workspace: Workspace, provider: ProviderServer, web: Callable[..., str]
) -> None:
    sized = [("small", 8192), ("large", 131072), ("medium", 32768), ("unknown", None)]
    provider.models = [
        {**model(i), **({"context_length": n} if n is not None else {})} for i, n in sized
    ]
    workspace.write_config(
        [dos_target(provider, watch_fields=["context_length"]), dos_target(provider, name="b")]
    )
    assert workspace.run("check", "--target", "dos-ai").code == 0
    assert workspace.run("check", "--target", "b").code == 0
    provider.models = provider.models[1:]  # "small" goes from dos-ai (b still lists it)
    assert workspace.run("check", "--target", "dos-ai").code == 0
    base = web()

    def order(query: str) -> list[str]:
        _, _, page = request(base + "/targets/dos-ai" + query)
        table = page.split("<h2>Models now")[1].split("</table>")[0]
        return sorted(("large", "medium", "unknown"), key=table.index)

    assert order("?sort=context_length") == ["medium", "large", "unknown"]  # 32768 < 131072
    assert order("?sort=context_length&dir=desc") == ["large", "medium", "unknown"]
    _, _, page = request(base + "/targets/dos-ai?sort=context_length")
    assert "sort=context_length&amp;dir=desc" in page  # clicking again flips it
    assert "over its last 2 polls" in page

    (change,) = workspace.run("changes", "--json").json()
    assert change["still_at"] == {"small": ["b"]}
    _, _, listing = request(base + "/changes")
    assert f'href="/snapshots/{change["from_snapshot_id"]}"' in listing
    assert f'href="/snapshots/{change["to_snapshot_id"]}"' in listing
    assert 'still at: <a href="/targets/b">b</a>' in listing
    req = urllib.request.Request(base + f"/changes/{change['id']}")
    with urllib.request.urlopen(req, timeout=10) as followed:  # the redirect, followed
        assert followed.url.endswith(
            f"/diff?from={change['from_snapshot_id']}&to={change['to_snapshot_id']}"
        )
    assert request(base + "/changes/999999")[0] == 404
    _, _, life = request(base + "/models/small")
    assert f'href="/changes/{change["id"]}"' in life  # its going links the change
    _, _, overview = request(base + "/")
    assert 'href="/changes?target=dos-ai"' in overview


def test_the_listening_socket_says_tcp_so_answers_are_not_held_back() -> None:
    """asyncio turns Nagle off only on sockets created with IPPROTO_TCP said outright;
    without it each answer on a kept-alive connection waited 40 ms (benchmark 7)."""
    from monitor.web.app import bind

    sock = bind("127.0.0.1", 0, "web.listen")
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
