"""Each provider kind against a real local server playing that provider's documented shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from builders import make_target
from servers import ScriptedServer

from monitor.config import Secret, Target
from monitor.errors import FetchError
from monitor.fetch import ANTHROPIC_VERSION, fetch_models, make_client

KEY = Secret("sk-ant-test-0123456789")


def target(base_url: str, kind: str, **extra: Any) -> Target:
    return make_target(base_url, name="t", kind=kind, **extra)


CLAUDE = [
    {
        "type": "model",
        "id": f"claude-{i}",
        "display_name": f"Claude {i}",
        "created_at": "2025-01-01",
    }
    for i in range(7)
]


def anthropic_pages(page_size: int = 3) -> Any:
    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        if headers.get("x-api-key") != KEY.reveal():
            return 401, {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            }
        if headers.get("anthropic-version") != ANTHROPIC_VERSION:
            return 400, {"type": "error", "error": {"message": "anthropic-version required"}}
        after = query.get("after_id", [None])[0]
        start = 0 if after is None else [m["id"] for m in CLAUDE].index(after) + 1
        page = CLAUDE[start : start + page_size]
        return 200, {
            "data": page,
            "has_more": start + page_size < len(CLAUDE),
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }

    return route


def test_anthropic_follows_every_page_with_its_headers(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    scripted.route = anthropic_pages()
    fetched = fetch_models(client, target(scripted.base + "/v1", "anthropic"), KEY)
    assert [m.id for m in fetched.models.models] == sorted(m["id"] for m in CLAUDE)
    assert fetched.models.models[0].data["display_name"] == "Claude 0"
    assert [q.get("after_id") for _, q, _ in scripted.requests] == [
        None,
        ["claude-2"],
        ["claude-5"],
    ]
    assert all(q["limit"] == ["1000"] for _, q, _ in scripted.requests)
    assert all("authorization" not in h for _, _, h in scripted.requests)


def test_anthropic_bad_key_is_an_authentication_failure(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    scripted.route = anthropic_pages()
    with pytest.raises(FetchError) as caught:
        fetch_models(client, target(scripted.base + "/v1", "anthropic"), Secret("wrong"))
    assert caught.value.reason.startswith("HTTP 401: authentication failed")


def test_a_cursor_that_repeats_stops_the_poll(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    scripted.route = lambda *_: (
        200,
        {"data": [CLAUDE[0]], "has_more": True, "last_id": "claude-0"},
    )
    with pytest.raises(FetchError, match="pagination repeats itself"):
        fetch_models(client, target(scripted.base + "/v1", "anthropic"), KEY)
    assert len(scripted.requests) == 2  # the second page points back at itself


def test_pages_are_capped(scripted: ScriptedServer, client: httpx.Client) -> None:
    counter = iter(range(10_000))
    scripted.route = lambda *_: (
        200,
        {"data": [{"id": f"m{next(counter)}"}], "has_more": True, "last_id": f"c{next(counter)}"},
    )
    with pytest.raises(FetchError, match="more than 50 pages"):
        fetch_models(client, target(scripted.base + "/v1", "anthropic"), KEY)


def test_the_byte_cap_covers_all_pages(scripted: ScriptedServer, client: httpx.Client) -> None:
    scripted.route = anthropic_pages(page_size=1)
    small = target(scripted.base + "/v1", "anthropic", max_response_bytes=400)
    with pytest.raises(FetchError, match="response larger than"):
        fetch_models(client, small, KEY)


OPENROUTER = [
    {
        "id": f"vendor/model-{i}",
        "canonical_slug": f"vendor/model-{i}",
        "name": f"Model {i}",
        "context_length": 128000,
        "pricing": {"prompt": "0.00000027", "completion": "0.0000011"},
    }
    for i in range(5)
]


def test_openrouter_needs_no_key_and_follows_links_next(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        page = int(query.get("page", ["1"])[0])
        document: dict[str, Any] = {"data": OPENROUTER[(page - 1) * 2 : page * 2]}
        if page < 3:
            document["links"] = {"next": f"/api/v1/models?page={page + 1}"}
        return 200, document

    scripted.route = route
    fetched = fetch_models(client, target(scripted.base + "/api/v1", "openrouter"), None)
    assert sorted(m.id for m in fetched.models.models) == [m["id"] for m in OPENROUTER]
    assert [p for p, _, _ in scripted.requests] == ["/api/v1/models"] * 3
    assert all("authorization" not in h for _, _, h in scripted.requests)
    pricing = {m.id: m.data["pricing"] for m in fetched.models.models}
    assert pricing["vendor/model-0"] == {"prompt": "0.00000027", "completion": "0.0000011"}


@pytest.mark.parametrize(
    ("document", "ids"),
    [
        ({"object": "list", "data": [{"id": "a"}, {"id": "b"}]}, ["a", "b"]),
        ({"object": "list", "data": None}, []),  # Ollama with no models
        ([{"id": "together/a", "type": "chat"}], ["together/a"]),  # Together: a bare list
    ],
    ids=["openai", "data-null", "bare-list"],
)
def test_openai_kind_shapes(
    scripted: ScriptedServer, client: httpx.Client, document: Any, ids: list[str]
) -> None:
    scripted.route = lambda *_: (200, document)
    fetched = fetch_models(client, target(scripted.base + "/v1", "openai"), Secret("k"))
    assert [m.id for m in fetched.models.models] == ids
    (_, _, headers) = scripted.requests[0]
    assert headers["authorization"] == "Bearer k"


def test_extra_headers_are_sent(scripted: ScriptedServer, client: httpx.Client) -> None:
    scripted.route = lambda *_: (200, {"data": [{"id": "a"}]})
    gateway = target(scripted.base + "/v1", "openai", headers=(("X-Gateway-Tenant", "team-a"),))
    fetch_models(client, gateway, None)
    (_, _, headers) = scripted.requests[0]
    assert headers["x-gateway-tenant"] == "team-a"


def test_a_proxy_from_the_environment_is_used(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY (and HTTPS_PROXY, ALL_PROXY) apply: the scripted's host is never
    resolved here, the proxy is asked for it."""
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", scripted.base)
    scripted.route = lambda *_: (200, {"data": [{"id": "via-proxy"}]})
    with make_client() as proxied:
        fetched = fetch_models(proxied, target("http://models.scripted.invalid/v1", "openai"), None)
    assert [m.id for m in fetched.models.models] == ["via-proxy"]
    (_, _, headers) = scripted.requests[0]
    assert headers["host"] == "models.scripted.invalid"


def test_an_identical_answer_is_not_parsed_again(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    from monitor.fetch import ConditionalCache

    models = [{"id": "a"}, {"id": "a"}, {"id": "b"}]  # with a duplicate: its warning stays
    scripted.route = lambda *_: (200, {"data": models})
    cache = ConditionalCache()
    plain = target(scripted.base + "/v1", "openai")
    first = fetch_models(client, plain, None, cache)
    again = fetch_models(client, plain, None, cache)
    assert first.models is not None and again.models is None  # recognised, not read again
    assert (again.list_digest, again.count) == (first.list_digest, 2)
    assert again.warnings == first.warnings and len(first.warnings) == 1
    models.append({"id": "c"})
    changed = fetch_models(client, plain, None, cache)
    assert changed.models is not None
    assert [m.id for m in changed.models.models] == ["a", "b", "c"]


def test_a_cached_answer_is_not_used_for_a_changed_target(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    """After a reload that moved the target, an old ETag must not make the new list old."""
    from monitor.fetch import ConditionalCache

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        if path.startswith("/old/"):
            return 200, {"data": [{"id": "old-model"}]}
        if headers.get("if-none-match"):  # a server that 304s any validator it is given
            return 304, {}
        return 200, {"data": [{"id": "new-a"}, {"id": "new-b"}]}

    scripted.route = route
    cache = ConditionalCache()
    fetch_models(client, target(scripted.base + "/old/v1", "openai"), None, cache)
    moved = fetch_models(client, target(scripted.base + "/new/v1", "openai"), None, cache)
    assert [m.id for m in moved.models.models] == ["new-a", "new-b"]
    assert "if-none-match" not in scripted.requests[-1][2]


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        ("anthropic", (302, {"location": "http://elsewhere.example/v1/models"})),
        ("openrouter", (200, {"data": [{"id": "a"}], "links": {"next": "http://evil.example/p2"}})),
    ],
    ids=["redirect", "next-link"],
)
def test_keys_never_go_to_another_host(
    scripted: ScriptedServer, client: httpx.Client, kind: str, answer: Any
) -> None:
    status, document = answer
    scripted.route = lambda *_: (status, document)
    scripted.extra_headers = document if status == 302 else {}
    with pytest.raises(FetchError) as caught:
        fetch_models(client, target(scripted.base + "/v1", kind), KEY)
    assert "sent to another host" in caught.value.reason
    assert "evil" in caught.value.reason or "elsewhere" in caught.value.reason
    assert len(scripted.requests) == 1  # nothing was asked of the other host


def test_a_malformed_next_link_is_a_failed_poll(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    scripted.route = lambda *_: (200, {"data": [{"id": "a"}], "links": {"next": "http://[bad/p2"}})
    with pytest.raises(FetchError, match="invalid next-page link"):
        fetch_models(client, target(scripted.base + "/v1", "openrouter"), None)
