"""Building the web app and serving it."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from monitor.config import Config, WebSettings, resolve_key, show_address
from monitor.errors import MonitorError
from monitor.store import Store
from monitor.web import api, pages
from monitor.web.security import Guard


def create_app(
    config: Callable[[], Config], store: Store, now: Callable[[], datetime], password: str | None
) -> ASGIApp:
    """The app over ``store``: read-only, behind basic auth when ``password`` is set.
    ``config`` gives the config in force (the daemon's changes on reload)."""
    static = StaticFiles(packages=[("monitor.web", "static")])
    app = Starlette(
        routes=[
            *api.routes(config, store, now),
            *pages.routes(config, store, now),
            Mount("/static", app=static, name="static"),
        ]
    )
    return Guard(app, password)


def password_of(web: WebSettings) -> str | None:
    """The password ``[web]`` asks for (basic auth), read from where it says; None:
    no password (a ConfigError names the key when it cannot be read)."""
    secret = resolve_key(web.password, os.environ, "password")
    return secret.reveal() if secret is not None else None


def bind(host: str, port: int, key: str) -> socket.socket:
    """A listening socket on ``host:port`` (MonitorError naming ``key`` when it cannot)."""
    shown = show_address(host, port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said outright: asyncio sets TCP_NODELAY only on sockets that say it,
    # and without it every answer on a kept-alive connection waits 40 ms (Nagle and
    # the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        return sock
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise MonitorError(f"{key}: cannot listen on {shown}: {reason}") from None


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` in this thread until SIGTERM or SIGINT; then finish the
    requests in flight (5 s at most) and return."""
    import uvicorn

    server = uvicorn.Server(_uvicorn_config(app))

    def stop(*_: object) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class BackgroundServer:
    """The app served from a thread (the daemon's ``[web] listen``) until :meth:`stop`."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        import threading

        import uvicorn

        self.address = sock.getsockname()
        self._server = uvicorn.Server(_uvicorn_config(app))
        # not the main thread: uvicorn leaves the process's signals alone
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)


def _uvicorn_config(app: ASGIApp) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_config=None,  # ours, set up already
        server_header=False,
        timeout_graceful_shutdown=3,  # requests in flight finish, then it stops
    )
