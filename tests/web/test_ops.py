"""The operations app behind ``[metrics] listen``: what a scraper or feed reader gets
when a route fails, and the feed's own address on a wildcard listener."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.requests import Request
from starlette.types import ASGIApp
from structlog.testing import capture_logs

from monitor.web.ops import create_ops_app, served_url


def _get(app: ASGIApp, *paths: str) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(go())


def _broken(_request: Request) -> tuple[int, str, bytes]:
    raise RuntimeError("database said no with secret-ish details")


def test_a_failing_route_is_a_500_with_no_traceback_and_is_logged() -> None:
    app = create_ops_app(
        {"/healthz": lambda _r: (200, "application/json", b"{}\n"), "/feed.atom": _broken}
    )
    with capture_logs() as logs:
        answer, healthz = _get(app, "/feed.atom", "/healthz")
    assert healthz.status_code == 200
    assert answer.status_code == 500
    assert answer.text == "internal error\n"
    assert "secret-ish" not in answer.text and "Traceback" not in answer.text
    (logged,) = logs
    assert logged["event"] == "metrics route failed" and logged["path"] == "/feed.atom"
    assert logged["exc_info"] is True


def _request(host_header: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/feed.atom",
        "query_string": b"",
        "headers": [(b"host", host_header.encode())],
        "scheme": "http",
        "server": ("10.0.0.5", 9464),
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (("127.0.0.1", 9464), "http://127.0.0.1:9464/feed.atom"),
        (("::1", 9464, 0, 0), "http://[::1]:9464/feed.atom"),
        # a wildcard is no address to follow: the host the reader asked for
        (("0.0.0.0", 9464), "http://monitor.internal:9464/feed.atom"),
        (("::", 9464, 0, 0), "http://monitor.internal:9464/feed.atom"),
    ],
)
def test_the_feed_names_the_address_it_is_served_on(
    address: tuple[str, int], expected: str
) -> None:
    assert served_url(address, _request("monitor.internal:9464"), "/feed.atom") == expected
