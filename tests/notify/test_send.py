"""Sending through apprise to real local services."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.diff import diff_models
from monitor.notify import AppriseSender, change_message


class Receiver:
    """A service with a 1,000-character limit (apprise's enigma2 plugin talks to it)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                receiver.texts.append(query.get("text", [""])[0])
                body = json.dumps({"result": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"enigma2://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def test_a_message_past_the_services_limit_is_split_not_dropped(receiver: Receiver) -> None:
    gone = frozenset(f"vendor/a-rather-long-model-name-{i:03d}" for i in range(40))
    message = change_message("openrouter", diff_models(gone, frozenset()), datetime.now(UTC))
    assert len(message.body) > 1500
    delivery = AppriseSender().send(receiver.url, message)
    assert delivery.ok, delivery.error
    assert len(receiver.texts) >= 2
    assert all(len(text) <= 1000 for text in receiver.texts)
    received = "".join(receiver.texts)
    assert all(model_id in received for model_id in gone)


def test_a_very_long_change_is_summarised() -> None:
    gone = frozenset(f"model-{i:03d}" for i in range(400))
    body = change_message("openrouter", diff_models(gone, frozenset()), datetime.now(UTC)).body
    lines = body.splitlines()
    assert lines[0] == "**Removed (400):**"
    assert "- model-049" in lines and "- model-050" not in lines
    assert "- … and 350 more models (monitor changes --target openrouter)" in lines
