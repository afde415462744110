"""Fetching and reading a provider's model list (monitor/fetch.py).

Parser cases call :func:`parse_models` directly; everything that involves HTTP
talks to a real local server (the ``provider`` fixture, or the small chunked
server below for bodies sent without a Content-Length).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from builders import json_escaped, make_target
from servers import SEED_KEY, SEED_MODELS, Answer, ProviderServer, free_port, model

import monitor
from monitor.config import Secret, Target
from monitor.errors import FetchError
from monitor.fetch import fetch_models, parse_models

KEY = Secret(SEED_KEY)
SEED_IDS = {m["id"] for m in SEED_MODELS}


def leaks_key(text: str, key: str = SEED_KEY, window: int = 16) -> bool:
    """Whether any 16 characters in a row of the key show in ``text``."""
    return any(key[i : i + window] in text for i in range(len(key) - window + 1))


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def fetch_error(client: httpx.Client, target: Target, api_key: Secret | None) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch_models(client, target, api_key)
    return caught.value


class ChunkedServer:
    """Answers every GET with 200 and ``chunks`` sent chunked (no Content-Length).

    With ``hang_up`` set it closes the connection without answering.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.hang_up = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if server.hang_up:
                    self.close_connection = True
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in server.chunks:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ChunkedServer:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def chunked() -> Iterator[ChunkedServer]:
    with ChunkedServer() as server:
        yield server


# -- parse_models: what counts as a good list ---------------------------------------


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        pytest.param(
            body({"object": "list", "data": [model("a"), model("b")]}), ["a", "b"], id="openai"
        ),
        pytest.param(body({"object": "list", "data": None}), [], id="data-null-is-empty"),
        pytest.param(body([{"id": "a"}, {"id": "b"}]), ["a", "b"], id="bare-array"),
    ],
)
def test_parse_accepts_good_lists(raw: bytes, ids: list[str]) -> None:
    objects, warnings = parse_models(raw)
    assert [o["id"] for o in objects] == ids
    assert warnings == ()


def test_parse_keeps_each_object_as_sent() -> None:
    entry = {"id": "a", "object": "model", "context_length": 8192, "pricing": {"in": 1}}
    objects, _ = parse_models(body({"data": [entry]}))
    assert objects == [entry]


@pytest.mark.parametrize(
    ("raw", "content_type", "reason"),
    [
        pytest.param(
            b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
            "text/html; charset=utf-8",
            "response is not JSON (text/html, starts with '<!DOCTYPE html><html><body>502 Bad",
            id="html-page",
        ),
        pytest.param(
            b"", "application/json", "response is not JSON (application/json", id="empty-body"
        ),
        pytest.param(
            body({"object": "list", "models": []}),
            "application/json",
            'JSON of the wrong shape: no "data" list (keys: models, object)',
            id="no-data-key",
        ),
        pytest.param(
            body({"data": {"a": {}}}),
            "application/json",
            'JSON of the wrong shape: "data" is an object, not a list',
            id="data-object",
        ),
        pytest.param(
            body("ok"),
            "application/json",
            "JSON of the wrong shape: expected an object",
            id="top-level-string",
        ),
        pytest.param(
            body({"data": ["gpt-4o"]}),
            "application/json",
            "JSON of the wrong shape: data[0] is a string, not an object",
            id="entry-string",
        ),
        pytest.param(
            body({"data": [{"id": "a"}, {"object": "model"}]}),
            "application/json",
            'model entry data[1] has no "id"',
            id="entry-without-id",
        ),
        pytest.param(
            body({"data": [{"id": None}]}),
            "application/json",
            'model entry data[0] has an invalid "id" (null); expected a non-empty string',
            id="id-null",
        ),
        pytest.param(
            body({"data": [{"id": 42}]}),
            "application/json",
            'model entry data[0] has an invalid "id" (a number); expected a non-empty string',
            id="id-number",
        ),
        pytest.param(
            body({"data": [{"id": ""}]}),
            "application/json",
            'model entry data[0] has an invalid "id"',
            id="id-empty",
        ),
        pytest.param(
            body({"data": [{"id": "   "}]}),
            "application/json",
            "expected a non-empty string",
            id="id-blank",
        ),
    ],
)
def test_parse_rejects_with_a_readable_reason(raw: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(FetchError) as caught:
        parse_models(raw, content_type=content_type, status=200)
    assert reason in caught.value.reason
    assert caught.value.status == 200


def test_parse_keeps_a_duplicate_id_once_and_warns() -> None:
    raw = body({"data": [{"id": "a", "v": 1}, {"id": "b"}, {"id": "a", "v": 2}]})
    objects, warnings = parse_models(raw)
    assert objects == [{"id": "a", "v": 1}, {"id": "b"}]
    assert warnings == ("duplicate model id 'a' at data[2]; kept the first",)


# -- fetch_models against a real provider: good answers ----------------------------


def test_fetch_returns_the_providers_models(provider: ProviderServer, client: httpx.Client) -> None:
    fetched = fetch_models(client, make_target(provider.base_url), KEY)
    assert fetched.status == 200
    assert fetched.models.ids == SEED_IDS
    assert fetched.warnings == ()


def test_fetch_accepts_a_base_url_with_trailing_slash(
    provider: ProviderServer, client: httpx.Client
) -> None:
    fetched = fetch_models(client, make_target(provider.base_url + "/"), KEY)
    assert fetched.models.ids == SEED_IDS
    assert provider.requests[-1]["path"] == "/v1/models"


def test_fetch_sends_the_key_as_bearer_and_names_the_project(
    provider: ProviderServer, client: httpx.Client
) -> None:
    fetch_models(client, make_target(provider.base_url), KEY)
    headers = {k.lower(): v for k, v in provider.requests[-1]["headers"].items()}
    assert headers["authorization"] == f"Bearer {SEED_KEY}"
    assert headers["user-agent"].startswith(f"model-monitor/{monitor.__version__}")


def test_fetch_without_a_key_sends_no_authorization(
    provider: ProviderServer, client: httpx.Client
) -> None:
    provider.api_key = None
    fetched = fetch_models(client, make_target(provider.base_url), None)
    assert fetched.models.ids == SEED_IDS
    headers = {k.lower() for k in provider.requests[-1]["headers"]}
    assert "authorization" not in headers


@pytest.mark.parametrize(
    ("document", "ids"),
    [
        pytest.param({"object": "list", "data": None}, set(), id="data-null"),
        pytest.param([model("a"), model("b")], {"a", "b"}, id="bare-array"),
    ],
)
def test_fetch_accepts_the_other_list_forms(
    provider: ProviderServer, client: httpx.Client, document: Any, ids: set[str]
) -> None:
    provider.answer = Answer(200, body(document))
    fetched = fetch_models(client, make_target(provider.base_url), KEY)
    assert fetched.models.ids == ids


def test_fetch_keeps_duplicate_ids_once_with_a_warning(
    provider: ProviderServer, client: httpx.Client
) -> None:
    provider.set_ids(["a", "b", "a"])
    fetched = fetch_models(client, make_target(provider.base_url), KEY)
    assert [m.id for m in fetched.models.models] == ["a", "b"]
    assert len(fetched.warnings) == 1
    assert "duplicate model id 'a'" in fetched.warnings[0]


# -- fetch_models: failures a user reads about -------------------------------------


def test_wrong_key_is_an_authentication_failure(
    provider: ProviderServer, client: httpx.Client
) -> None:
    error = fetch_error(client, make_target(provider.base_url), Secret("dos_sk_wrong"))
    assert error.status == 401
    assert error.reason.startswith("HTTP 401: authentication failed — check the API key")
    assert "Invalid or missing API key." in error.reason  # the provider's own words


def test_missing_key_is_an_authentication_failure(
    provider: ProviderServer, client: httpx.Client
) -> None:
    error = fetch_error(client, make_target(provider.base_url), None)
    assert error.status == 401
    assert "authentication failed — check the API key" in error.reason


def test_wrong_base_url_is_not_found(provider: ProviderServer, client: httpx.Client) -> None:
    base_url = provider.base_url.removesuffix("/v1")  # forgot the /v1
    error = fetch_error(client, make_target(base_url), KEY)
    assert error.status == 404
    assert error.reason.startswith("HTTP 404: not found — check base_url")


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        pytest.param(
            Answer(403, body({"error": {"message": "This key cannot list models"}})),
            ["HTTP 403: forbidden", "(This key cannot list models)"],
            id="403",
        ),
        pytest.param(
            Answer(429, body({"error": "slow down"}), headers={"Retry-After": "30"}),
            ["HTTP 429: rate limited", "(slow down)"],
            id="429",
        ),
        pytest.param(
            Answer(500, body({"detail": "internal error"})),
            ["HTTP 500: server error", "(internal error)"],
            id="500",
        ),
        pytest.param(
            Answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
            ["HTTP 502: server error"],
            id="502-html",
        ),
        pytest.param(Answer(503, b""), ["HTTP 503: server error"], id="503-empty"),
    ],
)
def test_http_errors_say_what_went_wrong(
    provider: ProviderServer, client: httpx.Client, answer: Answer, fragments: list[str]
) -> None:
    provider.answer = answer
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert error.status == answer.status
    for fragment in fragments:
        assert fragment in error.reason
    assert "<html" not in error.reason  # an error page is not pasted into the reason
    assert len(error.reason) < 200


def test_html_page_with_200_is_not_json(provider: ProviderServer, client: httpx.Client) -> None:
    provider.answer = Answer(200, b"<!DOCTYPE html>\n<html><p>Sign in</p></html>", "text/html")
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert error.status == 200
    assert error.reason.startswith("response is not JSON (text/html, starts with '<!DOCTYPE html>")


def test_wrong_shape_from_the_provider(provider: ProviderServer, client: httpx.Client) -> None:
    provider.answer = Answer(200, body({"object": "list", "models": [model("a")]}))
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert error.status == 200
    assert error.reason == 'JSON of the wrong shape: no "data" list (keys: models, object)'


def test_timeout(provider: ProviderServer, client: httpx.Client) -> None:
    provider.answer = Answer(200, body({"data": []}), delay=30)  # not waited for
    started = time.monotonic()
    error = fetch_error(client, make_target(provider.base_url, timeout=0.3), KEY)
    assert time.monotonic() - started < 10  # gave up long before the answer (any retries too)
    assert error.reason == "timed out after 0.3s waiting for the answer"
    assert error.status is None


def test_connection_refused(client: httpx.Client) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    error = fetch_error(client, make_target(base_url, timeout=2.0), KEY)
    assert error.reason == "connection refused"
    assert error.status is None


def test_server_hanging_up_is_a_transport_error(
    chunked: ChunkedServer, client: httpx.Client
) -> None:
    chunked.hang_up = True
    error = fetch_error(client, make_target(chunked.base_url), KEY)
    assert error.reason.startswith("HTTP transport error: ")
    assert "disconnected" in error.reason
    assert error.status is None


def test_redirect_loop(provider: ProviderServer, client: httpx.Client) -> None:
    provider.answer = Answer(301, b"", headers={"Location": "/v1/models"})
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert error.reason == "too many redirects"


# -- the response size cap -----------------------------------------------------------


def padded_list(size: int) -> bytes:
    """A good one-model list padded with spaces to exactly ``size`` bytes."""
    raw = body({"data": [{"id": "a"}]})
    return raw[:-1] + b" " * (size - len(raw)) + raw[-1:]


@pytest.mark.parametrize(
    ("size", "ok"),
    [pytest.param(1024, True, id="at-the-limit"), pytest.param(1025, False, id="one-over")],
)
def test_size_cap_with_content_length(
    provider: ProviderServer, client: httpx.Client, size: int, ok: bool
) -> None:
    provider.answer = Answer(200, padded_list(size))
    target = make_target(provider.base_url, max_response_bytes=1024)
    if ok:
        assert fetch_models(client, target, KEY).models.ids == {"a"}
    else:
        error = fetch_error(client, target, KEY)
        assert error.reason == "response larger than 1,024 bytes (max_response_bytes)"
        assert error.status == 200


def test_size_cap_counts_decompressed_bytes(provider: ProviderServer, client: httpx.Client) -> None:
    raw = padded_list(200_000)  # valid JSON, tiny once gzipped
    compressed = gzip.compress(raw)
    assert len(compressed) < 4096
    provider.answer = Answer(200, compressed, headers={"Content-Encoding": "gzip"})
    error = fetch_error(client, make_target(provider.base_url, max_response_bytes=4096), KEY)
    assert error.reason == "response larger than 4,096 bytes (max_response_bytes)"


def test_size_cap_on_a_chunked_body(chunked: ChunkedServer, client: httpx.Client) -> None:
    chunked.chunks = [b" " * 1024] * 64  # 64 KiB, no Content-Length
    error = fetch_error(client, make_target(chunked.base_url, max_response_bytes=4096), KEY)
    assert error.reason == "response larger than 4,096 bytes (max_response_bytes)"
    assert error.status == 200


def test_chunked_body_under_the_cap_is_read_whole(
    chunked: ChunkedServer, client: httpx.Client
) -> None:
    raw = body({"object": "list", "data": [model("a"), model("b")]})
    chunked.chunks = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # splits mid-token
    fetched = fetch_models(client, make_target(chunked.base_url, max_response_bytes=4096), KEY)
    assert fetched.models.ids == {"a", "b"}


# -- the API key never shows in a reason -------------------------------------------


def test_key_echoed_in_a_401_message_is_redacted(
    provider: ProviderServer, client: httpx.Client
) -> None:
    provider.answer = Answer(
        401, body({"error": {"message": f"Incorrect API key provided: {SEED_KEY}."}})
    )
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert error.status == 401
    assert "authentication failed — check the API key" in error.reason
    assert "Incorrect API key provided" in error.reason
    assert not leaks_key(error.reason)


def test_key_echoed_at_the_end_of_a_long_message_is_not_shown_in_part(
    provider: ProviderServer, client: httpx.Client
) -> None:
    # The provider's message is cut to 160 characters; the cut falls inside the key.
    message = "The API key you sent is not valid for this organisation, project or region. " * 2
    message = message[:129] + " " + SEED_KEY  # 169 characters: cut to 157 + "...", in the key
    provider.answer = Answer(401, body({"error": {"message": message}}))
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert error.status == 401
    assert "authentication failed" in error.reason
    assert not leaks_key(error.reason), error.reason


def test_key_echoed_in_a_non_json_body_is_not_shown(
    provider: ProviderServer, client: httpx.Client
) -> None:
    provider.answer = Answer(200, f"Invalid API key: {SEED_KEY}\n".encode(), "text/plain")
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert error.reason.startswith("response is not JSON (text/plain")
    assert not leaks_key(error.reason), error.reason


def test_key_in_a_transport_error_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"proxy refused {request.headers['Authorization']}")

    with httpx.Client(transport=httpx.MockTransport(handler)) as mock:
        error = fetch_error(mock, make_target("http://provider.invalid/v1"), KEY)
    assert error.reason.startswith("HTTP transport error: proxy refused Bearer ")
    assert not leaks_key(error.reason)


def test_key_that_cannot_go_in_a_header_is_a_fetch_error(
    provider: ProviderServer, client: httpx.Client
) -> None:
    key = Secret("dos_sk_0123456789abcdéf0123456789abcdef")  # a pasted typographic letter
    error = fetch_error(client, make_target(provider.base_url), key)
    assert "api key" in error.reason.lower()
    assert not leaks_key(error.reason, key.reveal())
    assert provider.requests == []


# -- whatever the provider sends: a good list or a short reason, never an exception ----

DEEP_MODEL = b'{"data":[{"id":"a","x":' + b"[" * 40 + b"1" + b"]" * 40 + b"}]}"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b"[" * 5000 + b"]" * 5000, "JSON nested too deep", id="nested-5000"),
        pytest.param(DEEP_MODEL, "JSON nested too deep (data[0] has more than", id="deep-model"),
        pytest.param(
            b'{"data":[{"id":"s\\ud800x"}]}',
            "invalid string in data[0].id (not valid Unicode)",
            id="lone-surrogate-escaped",
        ),
        pytest.param(
            b'{"data":[{"id":"s\xed\xa0\x80x"}]}',
            "invalid string in data[0].id",
            id="lone-surrogate-as-utf8-bytes",
        ),
        pytest.param(
            b'{"data":[{"id":"a"},{"id":"b"},{"id":"c"},{"id":"d","description":"x\\udfff"}]}',
            "invalid string in data[3].description",
            id="lone-surrogate-in-a-field",
        ),
        pytest.param(
            b'{"data":[{"id":"a","\\ud800":1}]}',
            "invalid string in data[0] (an object key)",
            id="lone-surrogate-key",
        ),
        pytest.param(b'{"data":[{"id":"caf\xe9"}]}', "response is not UTF-8 text", id="latin-1"),
    ],
)
def test_an_answer_that_cannot_be_stored_is_a_failed_poll_with_a_short_reason(
    raw: bytes, reason: str, provider: ProviderServer, client: httpx.Client
) -> None:
    provider.answer = Answer(200, raw)
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert reason in error.reason
    assert len(error.reason) < 200 and error.reason.isprintable()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            b'{"data":[{"id":"a","p":NaN,"q":Infinity,"r":-Infinity,"s":1e999}]}',
            {"id": "a", "p": "NaN", "q": "Infinity", "r": "-Infinity", "s": "1e999"},
            id="non-finite-numbers",
        ),
        pytest.param(
            b'{"data":[{"id":"a","n":' + b"7" * 5000 + b"}]}",
            {"id": "a", "n": "7" * 5000},
            id="5000-digit-number",
        ),
        pytest.param(
            b'{"data":[{"id":"a","v":1,"v":2,"id":"b"}]}', {"id": "b", "v": 2}, id="duplicate-keys"
        ),
        pytest.param(
            b'{"data":[{"id":"bad\\u0000id","description":"nul\\u0000byte"}]}',
            {"id": "bad\x00id", "description": "nul\x00byte"},
            id="nul-characters",
        ),
        pytest.param(
            b'{"data":[{"id":"\\u202egnp.exe\\u001b[2J","n":-0.0,"m":1e20}]}',
            {"id": "\u202egnp.exe\x1b[2J", "n": 0.0, "m": 10**20},
            id="controls-and-numbers",
        ),
    ],
)
def test_an_odd_but_storable_answer_is_a_good_poll(
    raw: bytes, expected: dict[str, Any], provider: ProviderServer, client: httpx.Client
) -> None:
    provider.answer = Answer(200, raw)
    fetched = fetch_models(client, make_target(provider.base_url), KEY)
    assert [dict(m.data) for m in fetched.models.models] == [expected]
    assert fetched.models.models[0].id == expected["id"]
    json.dumps([dict(m.data) for m in fetched.models.models], allow_nan=False)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"error":' * 5000 + b"1" + b"}" * 5000, id="nested-5000"),
        pytest.param(b'{"error":{"message":"bad \\ud800 key"}}', id="lone-surrogate"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
    ],
)
def test_an_odd_error_page_is_still_the_status_reason(
    raw: bytes, provider: ProviderServer, client: httpx.Client
) -> None:
    provider.answer = Answer(401, raw)
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert error.status == 401
    assert error.reason.startswith("HTTP 401: authentication failed")
    assert error.reason.isprintable()


def test_a_providers_message_is_shown_on_one_line_with_its_controls_escaped(
    provider: ProviderServer, client: httpx.Client
) -> None:
    message = "bad\x1b[2J key\u202e\nsecond line\x00"
    provider.answer = Answer(401, body({"error": {"message": message}}))
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert "(bad\\x1b[2J key\\u202e second line\\x00)" in error.reason


def test_validators_that_are_not_ascii_go_back_as_they_came(
    provider: ProviderServer, client: httpx.Client
) -> None:
    from monitor.fetch import ConditionalCache

    cache = ConditionalCache()
    target = make_target(provider.base_url)
    provider.answer = Answer(200, body({"data": SEED_MODELS}), headers={"ETag": '"caf\xe9"'})
    first = fetch_models(client, target, KEY, cache)
    assert first.status == 200
    again = fetch_models(client, target, KEY, cache)  # asks If-None-Match: "café"
    assert again.models is None and again.list_digest == first.list_digest  # not read again
    assert provider.requests[-1]["headers"]["If-None-Match"] == '"caf\xe9"'


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        pytest.param(
            f"http://127.0.0.1:99999/?auth=Bearer%20{SEED_KEY}",
            "invalid redirect location",
            id="bad-port-with-key",
        ),
        pytest.param(f"http://[::1/?k={SEED_KEY}", "location", id="bad-ipv6-with-key"),
        pytest.param(
            f"http://{SEED_KEY}.example/", "sent to another host", id="key-in-the-host-name"
        ),
        pytest.param("/v1/models\x07?x=1", "location", id="control-character"),
    ],
)
def test_a_bad_redirect_is_a_failed_poll_that_shows_no_key(
    location: str, reason: str, provider: ProviderServer, client: httpx.Client
) -> None:
    provider.answer = Answer(302, b"", headers={"Location": location})
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert reason in error.reason
    assert not leaks_key(error.reason), error.reason
    assert error.reason.isprintable()


def test_a_key_spelled_with_json_escapes_in_a_model_is_not_kept(
    provider: ProviderServer, client: httpx.Client
) -> None:
    escaped = json_escaped(SEED_KEY)
    raw = (
        '{"data":[{"id":"a","description":"your key is ' + escaped + '",'
        '"created":"' + escaped + '","url":"https://x/?k=Bearer%20' + SEED_KEY + '"}]}'
    )
    provider.answer = Answer(200, raw.encode())
    fetched = fetch_models(client, make_target(provider.base_url), KEY)
    (m,) = fetched.models.models
    assert not leaks_key(json.dumps(dict(m.data)))
    assert m.data["description"] == "your key is ***"


def test_a_key_in_an_error_body_spelled_with_json_escapes_is_not_shown(
    provider: ProviderServer, client: httpx.Client
) -> None:
    escaped = json_escaped(SEED_KEY)
    provider.answer = Answer(200, ("Invalid key " + escaped).encode(), "text/plain")
    error = fetch_error(client, make_target(provider.base_url), KEY)
    assert "withheld" in error.reason and "0123" not in error.reason
