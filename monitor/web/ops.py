"""``[metrics] listen``: the daemon's operations endpoints (``/metrics`` for
Prometheus, ``/healthz``, ``/feed.atom``) as a small app of their own, served the way
the web app is (:class:`monitor.web.app.BackgroundServer`) but without its password:
scrapers and feed readers do not log in, and nothing here is more than the metrics
say. Read-only and with the same headers (:class:`monitor.web.security.Guard`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from monitor.web.security import Guard

log = structlog.get_logger("monitor.metrics")

# what a route makes of a request: status, content type, body
Answer = Callable[[Request], tuple[int, str, bytes]]


def create_ops_app(answers: Mapping[str, Answer]) -> ASGIApp:
    """An app answering each path of ``answers``; a route that raises is a logged 500,
    never a traceback to the client."""

    def endpoint_of(path: str, answer: Answer) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:  # sync: run in a worker thread
            try:
                status, content_type, body = answer(request)
            except Exception:
                log.exception("metrics route failed", path=path)
                return PlainTextResponse("internal error\n", 500)
            return Response(body, status, media_type=content_type)

        return endpoint

    app = Starlette(
        routes=[Route(path, endpoint_of(path, answer)) for path, answer in answers.items()]
    )
    return Guard(app, None)


def served_url(address: tuple[str, int], request: Request, path: str) -> str:
    """The URL of ``path`` on the address the server listens on (its socket's, so it
    is right after a reload changed the config); for a wildcard address, the host the
    client asked for."""
    from monitor.config import show_address

    host, port = address[0], address[1]
    if host in ("0.0.0.0", "::", ""):
        return f"http://{request.url.netloc}{path}"
    return f"http://{show_address(host, port)}{path}"
