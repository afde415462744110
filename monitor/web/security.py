"""What every answer of the web app goes through: only GET and HEAD, headers that keep
a browser from running or framing anything it did not come with, and HTTP basic auth
(user ``monitor``) when a password is configured, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

USER = "monitor"
HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class Guard:
    """ASGI middleware: read-only methods, security headers, optional basic auth."""

    def __init__(self, app: ASGIApp, password: str | None) -> None:
        self._app = app
        self._expected = None if password is None else f"{USER}:{password}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        if scope["method"] not in ("GET", "HEAD"):
            await _plain(
                send_with_headers,
                405,
                b"read-only: GET and HEAD only\n",
                [(b"allow", b"GET, HEAD")],
            )
            return
        if self._expected is not None and not self._authorized(scope):
            await _plain(
                send_with_headers,
                401,
                b"a password is required\n",
                [(b"www-authenticate", b'Basic realm="model-monitor", charset="UTF-8"')],
            )
            return
        await self._app(scope, receive, send_with_headers)

    def _authorized(self, scope: Scope) -> bool:
        assert self._expected is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, encoded = value.partition(b" ")
                if scheme.lower() != b"basic":
                    return False
                try:
                    given = base64.b64decode(encoded.strip(), validate=True)
                except (binascii.Error, ValueError):
                    return False
                return hmac.compare_digest(given, self._expected)
        return False


async def _plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
