"""Prometheus metrics of a running daemon, and the bodies of its operations endpoints
(served by :mod:`monitor.web.ops` when ``[metrics] listen`` is set)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


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


def json_body(status: int, value: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(value).encode() + b"\n"


def prometheus_body(metrics: Metrics) -> tuple[int, str, bytes]:
    return 200, CONTENT_TYPE_LATEST, metrics.render()
