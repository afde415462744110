"""Each provider kind against a real local server playing that provider's documented shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import provider_fakes
import pytest
from builders import make_target
from servers import ScriptedServer

from monitor.config import Secret, Target
from monitor.errors import FetchError
from monitor.fetch import fetch_models, make_client
from monitor.shapes import ANTHROPIC_VERSION

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


# -- the native shapes: Gemini, Cohere, Ollama, Azure OpenAI, Bedrock, and kind json --


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """The AWS chain sees only the test's credentials (no profile, no instance role)."""
    from monitor import aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": provider_fakes.AWS_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": provider_fakes.AWS_SECRET_KEY,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(aws, "_session", None)
    yield
    aws._session = None


def configured(raw: dict[str, Any]) -> Target:
    """A target as the config reads it (kinds, presets and shapes applied)."""
    from monitor.config import parse_config

    return parse_config({"targets": [raw]}, path=None, environ={"HOME": "/h"}).targets[0]


def ids(fetched: Any) -> list[str]:
    return [m.id for m in fetched.models.models]


def data_of(fetched: Any, model_id: str) -> dict[str, Any]:
    (found,) = [m.data for m in fetched.models.models if m.id == model_id]
    return dict(found)


def test_gemini_reads_every_page_and_takes_models_prefix_off(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    scripted.route = provider_fakes.gemini(provider_fakes.GEMINI_MODELS, size=2)
    t = configured({"preset": "gemini", "base_url": scripted.base + "/v1beta"})
    fetched = fetch_models(client, t, Secret(provider_fakes.GEMINI_KEY))
    assert ids(fetched) == ["gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro"]
    assert [q.get("pageToken") for _, q, _ in scripted.requests] == [None, ["2"]]
    flash = data_of(fetched, "gemini-2.0-flash")
    assert flash["name"] == "models/gemini-2.0-flash"  # kept whole
    assert flash["outputTokenLimit"] == 8192
    with pytest.raises(FetchError, match=r"HTTP 400: bad request \(API key not valid"):
        fetch_models(client, t, Secret("AIza-wrong-key"))


def test_cohere_reads_every_page_with_a_bearer_key(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    scripted.route = provider_fakes.cohere(provider_fakes.COHERE_MODELS, size=2)
    t = configured({"preset": "cohere", "base_url": scripted.base + "/v1"})
    fetched = fetch_models(client, t, Secret(provider_fakes.COHERE_KEY))
    assert ids(fetched) == ["command-a-03-2025", "command-r", "command-r-plus"]
    assert [q.get("page_token") for _, q, _ in scripted.requests] == [None, ["2"]]
    with pytest.raises(FetchError, match="HTTP 401: authentication failed"):
        fetch_models(client, t, Secret("co-wrong"))


def test_ollama_lists_local_models_by_name_and_tag(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    scripted.route = provider_fakes.ollama(provider_fakes.OLLAMA_MODELS)
    t = configured({"preset": "ollama", "base_url": scripted.base})
    fetched = fetch_models(client, t, None)
    assert ids(fetched) == ["llama3:latest", "qwen3:8b"]
    assert scripted.requests[0][0] == "/api/tags"
    scripted.route = lambda *_: (200, {"models": None})  # nothing pulled yet
    assert (
        ids(fetch_models(client, configured({"preset": "ollama", "base_url": scripted.base}), None))
        == []
    )


def test_azure_sends_api_key_and_api_version_and_keeps_lifecycle_fields(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    scripted.route = provider_fakes.azure(provider_fakes.AZURE_MODELS, api_version="2025-04-01")
    t = configured({"preset": "azure", "base_url": scripted.base, "api_version": "2025-04-01"})
    fetched = fetch_models(client, t, Secret(provider_fakes.AZURE_KEY))
    assert ids(fetched) == ["gpt-35-turbo-0613", "gpt-4o-2024-08-06"]
    assert data_of(fetched, "gpt-35-turbo-0613")["deprecation"] == {"inference": 1740000000}
    assert scripted.requests[0][1]["api-version"] == ["2025-04-01"]
    # the default api_version is the one the fake answers by default
    scripted.route = provider_fakes.azure(provider_fakes.AZURE_MODELS)
    fetched = fetch_models(
        client,
        configured({"preset": "azure", "base_url": scripted.base}),
        Secret(provider_fakes.AZURE_KEY),
    )
    assert len(fetched.models) == 2


def test_bedrock_requests_are_sigv4_signed_for_bedrock_in_the_region(
    scripted: ScriptedServer, client: httpx.Client, aws_env: None
) -> None:
    scripted.route = provider_fakes.bedrock(provider_fakes.BEDROCK_MODELS)
    t = configured(
        {"preset": "bedrock", "region": provider_fakes.AWS_REGION, "base_url": scripted.base}
    )
    fetched = fetch_models(client, t, None)
    assert ids(fetched) == [
        "amazon.titan-text-express-v1",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-v2:1",
    ]
    legacy = data_of(fetched, "anthropic.claude-v2:1")
    assert legacy["modelLifecycle"] == {"status": "LEGACY"}
    # the fake checks the signature: another region is refused, and says why
    wrong = configured({"preset": "bedrock", "region": "us-east-1", "base_url": scripted.base})
    with pytest.raises(FetchError) as caught:
        fetch_models(client, wrong, None)
    assert caught.value.reason == (
        "HTTP 403: forbidden — the AWS credentials may not list models "
        "(Credential should be scoped to bedrock in eu-west-3)"
    )


def test_bedrock_without_credentials_is_a_failed_poll_saying_so(
    scripted: ScriptedServer, client: httpx.Client, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    scripted.route = provider_fakes.bedrock(provider_fakes.BEDROCK_MODELS)
    t = configured(
        {"kind": "bedrock", "name": "b", "region": "eu-west-3", "base_url": scripted.base}
    )
    with pytest.raises(FetchError, match="no AWS credentials found"):
        fetch_models(client, t, None)
    assert scripted.requests == []  # nothing unsigned was sent


def test_a_provider_echoing_the_aws_secret_never_shows_it(
    scripted: ScriptedServer, client: httpx.Client, aws_env: None
) -> None:
    secret = provider_fakes.AWS_SECRET_KEY
    scripted.route = lambda *_: (403, {"message": f"bad signature for {secret}"})
    t = configured(
        {"kind": "bedrock", "name": "b", "region": "eu-west-3", "base_url": scripted.base}
    )
    with pytest.raises(FetchError) as caught:
        fetch_models(client, t, None)
    assert secret not in caught.value.reason and "***" in caught.value.reason


@pytest.mark.parametrize("kind", ["gemini", "bedrock"])
def test_a_secret_in_the_names_of_an_answers_keys_is_masked_in_the_reason(
    scripted: ScriptedServer, client: httpx.Client, aws_env: None, kind: str
) -> None:
    """A wrong-shaped answer's reason lists the keys it has: a provider echoing the key
    (or the AWS secret) in one must not put it in the reason, stored and printed."""
    secret = provider_fakes.GEMINI_KEY if kind == "gemini" else provider_fakes.AWS_SECRET_KEY
    scripted.route = lambda *_: (200, {f"echo-{secret}": 1})
    raw = {"preset": kind, "base_url": scripted.base}
    if kind == "bedrock":
        raw["region"] = provider_fakes.AWS_REGION
    with pytest.raises(FetchError) as caught:
        fetch_models(
            client, configured(raw), Secret(provider_fakes.GEMINI_KEY) if kind == "gemini" else None
        )
    assert "JSON of the wrong shape" in caught.value.reason
    assert secret not in caught.value.reason and "***" in caught.value.reason


def test_a_same_host_redirect_with_a_query_is_signed_for_its_own_url(
    scripted: ScriptedServer, client: httpx.Client, aws_env: None
) -> None:
    answer = provider_fakes.bedrock(provider_fakes.BEDROCK_MODELS)

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        if not query:  # characters AWS encodes where an HTTP client need not
            scripted.extra_headers = {"Location": "/foundation-models?by=a,b&x=a:b+c&y=%7Ez"}
            return 302, {}
        scripted.extra_headers = {}
        return answer(path, query, headers)

    scripted.route = route
    t = configured(
        {"preset": "bedrock", "region": provider_fakes.AWS_REGION, "base_url": scripted.base}
    )
    assert len(fetch_models(client, t, None).models) == 3
    assert scripted.requests[1][1] == {"by": ["a,b"], "x": ["a:b c"], "y": ["~z"]}


def test_rotated_aws_credentials_are_read_again_after_a_reload(
    scripted: ScriptedServer,
    client: httpx.Client,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    from monitor import aws

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    credentials.write_text(
        "[default]\naws_access_key_id = AKIAOLDKEY0000000000\n"
        "aws_secret_access_key = old-secret-key-0000\n"
    )
    scripted.route = provider_fakes.bedrock(provider_fakes.BEDROCK_MODELS)
    t = configured(
        {"preset": "bedrock", "region": provider_fakes.AWS_REGION, "base_url": scripted.base}
    )
    with pytest.raises(FetchError, match="HTTP 403"):
        fetch_models(client, t, None)
    credentials.write_text(
        f"[default]\naws_access_key_id = {provider_fakes.AWS_ACCESS_KEY}\n"
        f"aws_secret_access_key = {provider_fakes.AWS_SECRET_KEY}\n"
    )
    with pytest.raises(FetchError, match="HTTP 403"):
        fetch_models(client, t, None)  # found once per process ...
    aws.forget()  # ... and again on SIGHUP
    assert len(fetch_models(client, t, None).models) == 3


def in_house(models: list[dict[str, Any]]) -> Any:
    """A gateway of our own invention: nested items, slugs with a prefix, a cursor in
    ``result.cursor`` sent back as ``after``, a ``X-Gateway-Token`` key with no scheme."""

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        if headers.get("x-gateway-token") != KEY.reveal():
            return 401, {"error": "bad token"}
        if path != "/api/catalog" or query.get("limit") != ["50"]:
            return 404, {"error": "no such list"}
        start = int(query.get("after", ["0"])[0])
        end = start + 2
        return 200, {
            "result": {
                "models": models[start:end],
                "cursor": end if end < len(models) else None,
            }
        }

    return route


def test_kind_json_reads_a_list_as_the_target_spells_it_out(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    models = [{"slug": f"acme/m{i}", "ctx": 1000 * i} for i in range(5)]
    scripted.route = in_house(models)
    t = configured(
        {
            "name": "in-house",
            "kind": "json",
            "base_url": scripted.base,
            "path": "/api/catalog",
            "params": {"limit": 50},
            "items": "result.models",
            "id": "slug",
            "strip_prefix": "acme/",
            "next": "result.cursor",
            "next_param": "after",
            "auth_header": "X-Gateway-Token",
            "auth_scheme": "",
        }
    )
    fetched = fetch_models(client, t, KEY)
    assert ids(fetched) == ["m0", "m1", "m2", "m3", "m4"]
    assert [q.get("after") for _, q, _ in scripted.requests] == [None, ["2"], ["4"]]
    assert data_of(fetched, "m3") == {"id": "m3", "slug": "acme/m3", "ctx": 3000}


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        ({"preset": "gemini"}, {"models": [], "nextPageToken": "same"}),
        ({"preset": "cohere"}, {"models": [], "next_page_token": "same"}),
        (
            {"kind": "json", "name": "j", "items": "list", "next": "x", "next_param": "p"},
            {"list": [], "x": "same"},
        ),
    ],
    ids=["gemini", "cohere", "json"],
)
def test_a_repeating_cursor_stops_every_kind(
    scripted: ScriptedServer, client: httpx.Client, raw: dict[str, Any], answer: Any
) -> None:
    scripted.route = lambda *_: (200, answer)
    t = configured({**raw, "base_url": scripted.base})
    with pytest.raises(FetchError, match="pagination repeats itself"):
        fetch_models(client, t, KEY)
    assert len(scripted.requests) == 2


@pytest.mark.parametrize(
    ("raw", "status", "document"),
    [
        ({"preset": "azure"}, 302, {"location": "http://elsewhere.example/openai/models"}),
        ({"preset": "gemini"}, 307, {"location": "http://elsewhere.example/v1beta/models"}),
        (
            {"kind": "json", "name": "j", "next": "next"},
            200,
            {"data": [{"id": "a"}], "next": "http://evil.example/p2"},
        ),
    ],
    ids=["azure-redirect", "gemini-redirect", "json-next-url"],
)
def test_keys_of_every_kind_never_go_to_another_host(
    scripted: ScriptedServer,
    client: httpx.Client,
    raw: dict[str, Any],
    status: int,
    document: Any,
) -> None:
    scripted.route = lambda *_: (status, document)
    scripted.extra_headers = document if status != 200 else {}
    with pytest.raises(FetchError) as caught:
        fetch_models(client, configured({**raw, "base_url": scripted.base}), KEY)
    assert "sent to another host" in caught.value.reason
    assert len(scripted.requests) == 1


def test_a_json_kind_next_url_on_the_same_host_is_followed(
    scripted: ScriptedServer, client: httpx.Client
) -> None:
    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        if query.get("page") == ["2"]:
            return 200, [{"id": "b"}]  # the last page need not say so in the same way
        return 200, {"data": [{"id": "a"}], "next": "/models?page=2"}

    scripted.route = route
    t = configured({"kind": "json", "name": "j", "next": "next", "base_url": scripted.base})
    with pytest.raises(FetchError, match=r'no "data" list|expected an object'):
        fetch_models(client, t, None)  # a bare list where a "data" object was: refused
    scripted.route = lambda p, q, h: (
        (200, {"data": [{"id": "b"}]}) if q.get("page") == ["2"] else route(p, q, h)
    )
    assert ids(fetch_models(client, t, None)) == ["a", "b"]
