"""The long-running service: one APScheduler interval job per target.

A failing target never stops the scheduler; each job binds its target to the
log context; SIGTERM and SIGINT stop scheduling, let in-flight polls finish
(each bounded by its own timeout) and close the database.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import httpx
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, Secret, Target
from monitor.errors import MonitorError
from monitor.notify import Sender
from monitor.notify.outbox import Outbox, RetryPolicy
from monitor.store import Store
from monitor.worker import poll_target

log = structlog.get_logger("monitor.daemon")


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        store: Store,
        client: httpx.Client,
        sender: Sender,
        keys: Mapping[str, Secret | None],
        now: Callable[[], datetime],
        retry: RetryPolicy | None = None,
        outbox_every: float = 5.0,
    ) -> None:
        self._config = config
        self._store = store
        self._client = client
        self._keys = keys
        self._now = now
        self._outbox = Outbox(store, sender, config.all_urls(), now=now, policy=retry)
        self._outbox_every = outbox_every
        workers = max(4, min(32, len(config.targets)))
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        self._stop = threading.Event()

    def poll(self, target: Target) -> None:
        """One scheduled poll; any error is logged here and never reaches the scheduler."""
        with structlog.contextvars.bound_contextvars(target=target.name):
            try:
                result = poll_target(
                    target,
                    client=self._client,
                    api_key=self._keys.get(target.name),
                    store=self._store,
                    notify_urls=self._config.urls_for(target),
                    now=self._now,
                )
                if result.delivery_ids:
                    self._outbox.deliver(ids=result.delivery_ids, due_only=False)
            except MonitorError as exc:
                log.error("poll not recorded", error=str(exc))
            except Exception:
                log.exception("unexpected error in poll; the daemon goes on")

    def retry_deliveries(self) -> None:
        """The outbox job: send deliveries whose backoff has run out."""
        try:
            self._outbox.deliver()
        except MonitorError as exc:
            log.error("outbox not processed", error=str(exc))
        except Exception:
            log.exception("unexpected error in the outbox; the daemon goes on")

    def start(self) -> None:
        # alerts left pending by an earlier run (a crash, a notification service down)
        self._outbox.deliver(due_only=False)
        start = self._now()
        for index, target in enumerate(self._config.targets):
            self._scheduler.add_job(
                self.poll,
                IntervalTrigger(
                    seconds=target.interval, jitter=min(target.interval * 0.1, 5.0), timezone="UTC"
                ),
                args=[target],
                id=target.name,
                name=target.name,
                # the first poll at start, spread a little so many targets don't burst
                next_run_time=start + timedelta(milliseconds=50 * index),
            )
        self._scheduler.add_job(
            self.retry_deliveries,
            IntervalTrigger(seconds=self._outbox_every, timezone="UTC"),
            id="outbox",
            name="outbox",
        )
        self._scheduler.start()
        log.info(
            "daemon started",
            targets=[t.name for t in self._config.targets],
            intervals={t.name: t.interval for t in self._config.targets},
        )

    def stop(self) -> None:
        self._stop.set()

    def run_until_stopped(self) -> None:
        """Block until SIGTERM/SIGINT (or :meth:`stop`), then shut down cleanly."""

        def on_signal(signum: int, _frame: object) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self._stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._stop.wait(0.5):
                pass
        finally:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log.info("daemon stopped")
