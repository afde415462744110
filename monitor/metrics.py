"""Prometheus metrics of a running daemon, and the small HTTP server that serves
them with ``/healthz``. Off unless ``[metrics] listen`` is set."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from monitor.config import show_address
from monitor.errors import MonitorError

log = structlog.get_logger("monitor.metrics")


class Metrics:
    """The daemon's instruments, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter(
            "monitor_polls",
            "Polls by target and outcome (ok, failed).",
            ["target", "outcome"],
            registry=r,
        )
        self.poll_duration = Histogram(
            "monitor_poll_duration_seconds",
            "Time a poll took, retries included.",
            ["target"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.models = Gauge(
            "monitor_models", "Models in the last good list.", ["target"], registry=r
        )
        self.last_good = Gauge(
            "monitor_last_good_poll_timestamp_seconds",
            "Unix time of the last good poll.",
            ["target"],
            registry=r,
        )
        self.failures = Gauge(
            "monitor_consecutive_failures", "Failed polls in a row.", ["target"], registry=r
        )
        self.changes = Counter(
            "monitor_changes", "Model list changes detected.", ["target"], registry=r
        )
        self.deliveries = Counter(
            "monitor_deliveries",
            "Alert sends by outcome (sent, failed, dead).",
            ["outcome"],
            registry=r,
        )
        self.pending = Gauge(
            "monitor_deliveries_pending", "Alerts waiting to be sent or retried.", registry=r
        )

    def observe_poll(
        self,
        target: str,
        *,
        ok: bool,
        seconds: float,
        model_count: int | None,
        failures: int,
        at: float,
        changed: bool,
    ) -> None:
        self.polls.labels(target, "ok" if ok else "failed").inc()
        self.poll_duration.labels(target).observe(seconds)
        self.failures.labels(target).set(failures)
        if ok:
            self.last_good.labels(target).set(at)
            if model_count is not None:
                self.models.labels(target).set(model_count)
        if changed:
            self.changes.labels(target).inc()

    def observe_delivery(self, *, ok: bool, dead: bool) -> None:
        self.deliveries.labels("sent" if ok else "dead" if dead else "failed").inc()

    def forget(self, target: str) -> None:
        """Drop a removed target's series."""
        for family in (self.models, self.last_good, self.failures):
            with contextlib.suppress(KeyError):
                family.remove(target)

    def render(self) -> bytes:
        return generate_latest(self.registry)


Route = Callable[[], tuple[int, str, bytes]]


class MetricsServer:
    """``/metrics``, ``/healthz`` and any extra routes, on one loopback-friendly port.

    The port is bound when the server is made (a :class:`MonitorError` naming
    ``metrics.listen`` when it cannot be); requests are served once it is started."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    status, ctype, body = 404, "text/plain", b"not found\n"
                else:
                    try:
                        status, ctype, body = route()
                    except Exception:
                        log.exception("metrics route failed", path=self.path)
                        status, ctype, body = 500, "text/plain", b"internal error\n"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        try:  # bound here, before the daemon polls or sends anything
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            shown = show_address(host, port)
            reason = exc.strerror or str(exc)
            raise MonitorError(f"metrics.listen: cannot listen on {shown}: {reason}") from None
        self._server.daemon_threads = True
        self.address = self._server.server_address
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def json_body(status: int, value: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(value).encode() + b"\n"


def prometheus_body(metrics: Metrics) -> tuple[int, str, bytes]:
    return 200, CONTENT_TYPE_LATEST, metrics.render()
