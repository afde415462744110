"""Real local servers the tests talk to: a provider, a JSON webhook, an SMTP server.

All bind to 127.0.0.1 on a free port and run in background threads.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEED_MODELS: list[dict[str, Any]] = [
    {"id": "dos-ai", "object": "model", "created": 1711000000, "owned_by": "dos-ai"},
    {"id": "llama-3.3-70b", "object": "model", "created": 1711000000, "owned_by": "dos-ai"},
    {"id": "deepseek-v3", "object": "model", "created": 1711000000, "owned_by": "dos-ai"},
    {"id": "llama-3.1-8b", "object": "model", "created": 1711000000, "owned_by": "dos-ai"},
]
SEED_KEY = "dos_sk_0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1711000000, "owned_by": "dos-ai"}


@dataclass
class Answer:
    """What the provider sends next: status, body, headers, and a delay before it."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # the status line's reason phrase (default: the standard one)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ProviderServer:
    """Plays an OpenAI-compatible provider at ``/v1/models``.

    By default it answers like the DOS AI seed page, and 401 when ``api_key``
    is set and the request's Bearer key differs.
    """

    def __init__(self) -> None:
        self.models: list[dict[str, Any]] = [dict(m) for m in SEED_MODELS]
        self.api_key: str | None = SEED_KEY
        self.answer: Answer | None = None  # overrides the model list when set
        self.queue: list[Answer] = []  # one-off answers, used (first to last) before the rest
        self.etag: str | None = None  # when set: sent, and a matching If-None-Match gets 304
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0  # seconds before every answer, as a provider's latency
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most there ever were at once
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with provider._lock:
                    provider.requests.append({"path": self.path, "headers": dict(self.headers)})
                    provider.in_flight += 1
                    provider.max_in_flight = max(provider.max_in_flight, provider.in_flight)
                try:
                    self._answer()
                finally:
                    with provider._lock:
                        provider.in_flight -= 1

            def _answer(self) -> None:
                if provider.delay:
                    time.sleep(provider.delay)
                answer = provider._answer_for(self.path, self.headers.get("Authorization"))
                if (
                    provider.etag is not None
                    and answer.status == 200
                    and self.headers.get("If-None-Match") == provider.etag
                ):
                    answer = Answer(304, b"", headers={"ETag": provider.etag})
                elif provider.etag is not None and answer.status == 200:
                    answer = Answer(200, answer.body, headers={"ETag": provider.etag})
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status, answer.reason)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(answer.body)))
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def _answer_for(self, path: str, authorization: str | None) -> Answer:
        if path.split("?")[0] != "/v1/models":
            return Answer(404, b'{"error":{"message":"Not found"}}')
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            return Answer(401, b'{"error":{"message":"Invalid or missing API key.","type":"auth"}}')
        with self._lock:
            if self.queue:
                return self.queue.pop(0)
        if self.answer is not None:
            return self.answer
        body = json.dumps({"object": "list", "data": self.models}).encode()
        return Answer(200, body)

    def set_ids(self, ids: Iterable[str]) -> None:
        self.models = [model(i) for i in ids]

    @property
    def ids(self) -> list[str]:
        return [m["id"] for m in self.models]

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class WebhookServer:
    """Receives apprise ``json://`` posts; answers ``status`` (set 503 to fail);
    ``on_post`` runs (once) while a post is being taken, before it is answered."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []  # the ones it accepted
        self.paths: list[str] = []  # the path each accepted post came to, in order
        self.attempts = 0  # every POST, accepted or not
        self.status = 200
        self.on_post: Callable[[], None] | None = None  # run once, before the next answer
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                hook.attempts += 1
                run, hook.on_post = hook.on_post, None
                if run is not None:
                    run()
                if hook.status == 200:
                    hook.posts.append(json.loads(body))
                    hook.paths.append(self.path)
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def url_at(self, path: str) -> str:
        """An apprise URL posting to ``/path`` on this server (see :meth:`posts_to`)."""
        return f"json://127.0.0.1:{self.port}/{path}"

    def posts_to(self, path: str) -> list[dict[str, Any]]:
        """The posts accepted at ``/path``."""
        return [p for p, at in zip(self.posts, self.paths, strict=True) if at == f"/{path}"]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.posts


class SmtpServer:
    """A real SMTP server (aiosmtpd) that keeps every message it is given."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                server.messages.append(
                    message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[arg-type]
                )
                return "250 OK"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.url = f"mailto://127.0.0.1:{self.port}?from=monitor@example.com&to=ops@example.com"

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())


class TcpProxy:
    """A TCP proxy on 127.0.0.1 to a local server, that can cut every connection and
    refuse new ones (``cut``) until ``restore``: a database going away, for real."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._open = True
        self._running = True
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if not self._open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._open = False
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self) -> None:
        self._open = True

    def stop(self) -> None:
        self.cut()
        self._running = False
        self._thread.join(timeout=2)
        self._listener.close()


class ScriptedServer:
    """Answers every GET with ``route(path, query, headers) -> (status, document)``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.route: Any = None
        self.extra_headers: dict[str, str] = {}  # e.g. a Location for a redirect
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                provider.requests.append((parts.path, query, headers))
                status, document = provider.route(parts.path, query, headers)
                body = json.dumps(document).encode()
                self.send_response(status)
                for name, value in provider.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def http_get(url: str) -> tuple[int, str]:
    """GET a local URL: (status, body); (0, the error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)
