"""The long-running service: one APScheduler interval job per target, an outbox job,
systemd's notify protocol, metrics, reload on SIGHUP, a bounded stop on SIGTERM.

Whatever can fail at start (systemd's notify socket, the metrics port; the config,
keys and database before the daemon is made) fails before the first poll or send.
Each target's first poll goes at once, or when the replicas' rule lets it
(:func:`first_poll`). A failing target never stops the scheduler; each job binds
its target to the log context. One outbox serves every job for the daemon's life.
SIGTERM and SIGINT stop scheduling, let in-flight polls finish and write what the
outbox holds (at most ``stop_timeout`` seconds), close the database and exit 0. SIGHUP
re-reads the config: targets added, removed or changed take effect at once; a
config that does not load is logged and the running one kept.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import aws
from monitor.config import Config, Secret, Target, show_address
from monitor.errors import MonitorError
from monitor.fetch import MAX_RETRY_AFTER, ConditionalCache
from monitor.metrics import Metrics, json_body, prometheus_body
from monitor.notify import Sender
from monitor.notify.message import format_duration
from monitor.notify.outbox import Outbox, Outcome, describe_unrecorded
from monitor.poll import SKIP_IF_POLLED_WITHIN, Poller, PollResult
from monitor.routing import Audience
from monitor.sdnotify import SystemdNotifier
from monitor.store import Store

log = structlog.get_logger("monitor.daemon")

Keys = Mapping[str, Secret | None]
Reloader = Callable[[], tuple[Config, Keys]]


# Jitter stays below what SKIP_IF_POLLED_WITHIN leaves of an interval, so a process
# never skips its own next poll.
JITTER = 0.05


def first_poll(now: datetime, last: datetime | None, interval: float) -> tuple[datetime, str]:
    """When a target's first poll after a start (or reload) goes, and why: at once,
    unless it was polled (by this or another process) less than the replicas' share of
    its interval ago; then as soon as that rule lets a poll run, not at once and skipped."""
    if last is None:
        return now, "not polled before"
    ago = max(0.0, (now - last).total_seconds())
    reason = (
        f"polled {format_duration(timedelta(seconds=ago))} ago; "
        f"interval {format_duration(timedelta(seconds=interval))}"
    )
    due = last + timedelta(seconds=interval * SKIP_IF_POLLED_WITHIN)
    return max(now, due), reason


def stuck_after(target: Target) -> float:
    """How long one poll may run before the daemon counts as stuck (the watchdog stops)."""
    longest = target.timeout * (target.retries + 1) + MAX_RETRY_AFTER * target.retries
    return 2 * longest + 10


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        store: Store,
        client: httpx.Client,
        sender: Sender,
        keys: Keys,
        now: Callable[[], datetime],
        reload: Reloader | None = None,
        notifier: SystemdNotifier | None = None,
        outbox_every: float = 5.0,
        stop_timeout: float = 10.0,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """``after_commit``: see :func:`monitor.poll.poll_target` (tests only)."""
        self._config = config
        self._targets = {t.name: t for t in config.targets}  # each poll looks its target up
        self._keys = keys
        self._store = store
        self._now = now
        self._reload = reload
        self._notifier = notifier or SystemdNotifier(None, None)
        # one outbox for the daemon's life: it keeps the outcomes of sends the database
        # has not recorded yet, written before it sends anything else (reloads too)
        self._outbox = Outbox.for_config(config, store, sender, now=now)
        self._outbox_every = outbox_every
        self._stop_timeout = stop_timeout
        self._lock = threading.Lock()
        self._inflight: dict[str, float] = {}  # target -> monotonic start of its poll
        # targets a reload changed: their next poll goes whatever the replicas' rule says
        self._changed: set[str] = set()
        self._last: tuple[str, bool, datetime] | None = None  # the latest poll
        self._failing: dict[str, int] = {}
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._conditional = ConditionalCache()  # ETag / Last-Modified per target
        self._poller = Poller(
            store=store,
            client=client,
            outbox=self._outbox,
            now=now,
            cache=self._conditional,
            after_commit=after_commit,
        )
        self.metrics = Metrics()
        self.metrics.pending.set_function(self._pending)
        self._server: Any = None  # monitor.web.app.BackgroundServer, when [metrics] listen is set
        self._web: Any = None  # monitor.web.app.BackgroundServer, when [web] listen is set
        self._prepared = False
        # polls in flight at once: [defaults] max_concurrency, plus room for the outbox
        # and retention jobs; one shared HTTP client and connection pool
        workers = config.max_concurrency + 2  # threads start only when needed
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )

    # -- jobs ------------------------------------------------------------------

    def poll(self, name: str) -> None:
        """One scheduled poll (see :class:`Poller`); no error reaches the scheduler. A
        reload that changes the target while its poll is in flight polls it again at
        once, with the new definition (the scheduler runs one poll of a target at a
        time, so the run the reload scheduled "now" would be skipped)."""
        while True:
            self._poll_once(name)  # (takes the target out of _changed)
            with self._lock:
                again = name in self._changed and name in self._targets
            if not again or self._stop.is_set():
                return

    def _poll_once(self, name: str) -> None:
        with self._lock:
            target = self._targets.get(name)
            key = self._keys.get(name)
            urls = self._config.audience_for(target) if target else Audience()
            changed = name in self._changed
            self._changed.discard(name)
        if target is None:
            return
        with structlog.contextvars.bound_contextvars(target=name):
            started = time.monotonic()
            self._inflight[name] = started

            def observe(result: PollResult) -> None:  # recorded: seen before alerts go
                self._inflight.pop(name, None)
                self._observe(result, time.monotonic() - started)

            try:
                # a changed target's first poll is not skipped by the replicas' rule: it
                # waits for a replica polling it right now, then polls with the new config
                polled = self._poller.poll(
                    target, key, urls, scheduled=not changed, observe=observe
                )
            finally:
                self._inflight.pop(name, None)
            if polled is None:
                log.debug("poll skipped: another process has it or just did it")
            elif polled.result is None:
                if not polled.bug:  # a bug is logged where it happened, with its traceback
                    log.error("poll not recorded", error=polled.not_recorded)
                with self._lock:
                    if name in self._targets:  # a removed target's series stay dropped
                        self.metrics.polls.labels(name, "error").inc()
            self._count(polled.sent if polled is not None else ())

    def _observe(self, result: PollResult, seconds: float) -> None:
        """A recorded poll in the metrics and the status; none of it for a target a
        reload removed while its poll was in flight (its snapshot is recorded, but its
        series, dropped at the reload, must not come back and go stale)."""
        snapshot = result.snapshot
        with self._lock:  # apply() removes targets and drops their series under it too
            if result.target not in self._targets:
                return
            self.metrics.observe_poll(
                result.target,
                ok=snapshot.ok,
                seconds=seconds,
                model_count=snapshot.model_count,
                failures=result.failures,
                at=snapshot.fetched_at.timestamp(),
                changed=result.change is not None,
            )
            self._last = (result.target, snapshot.ok, snapshot.fetched_at)
            self._failing[result.target] = result.failures
        if self._notifier.enabled:  # status() walks every target
            self._notifier.status(self.status())

    def retry_deliveries(self) -> None:
        """The outbox job: send deliveries whose backoff has run out."""
        try:
            self._count(self._outbox.deliver())
        except MonitorError as exc:
            log.error("outbox not processed", error=str(exc))
        except Exception:
            log.exception("unexpected error in the outbox; the daemon goes on")

    def _count(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.metrics.observe_delivery(ok=outcome.ok, dead=outcome.dead)

    # -- state -----------------------------------------------------------------

    def status(self) -> str:
        targets = self._config.targets
        failing = sum(1 for t in targets if self._failing.get(t.name, 0) > 0)
        text = f"{len(targets)} targets, {failing} failing"
        if self._last is not None:
            name, ok, at = self._last
            text += f"; last poll {name} {'ok' if ok else 'failed'} at {at:%H:%M:%S}Z"
        return text

    def healthy(self) -> bool:
        """The scheduler runs and no poll is stuck past what its settings allow."""
        if not self._scheduler.running:
            return False
        now = time.monotonic()
        limits = {t.name: stuck_after(t) for t in self._config.targets}
        for name, started in list(self._inflight.items()):
            if now - started > limits.get(name, 600):
                return False
        return True

    def _pending(self) -> float:
        try:
            return float(self._store.count_pending())
        except MonitorError:
            return math.nan

    def _healthz(self, _request: Any) -> tuple[int, str, bytes]:
        scheduler = self.healthy()
        database = self._store.ping()
        ok = scheduler and database
        return json_body(
            200 if ok else 503,
            {
                "status": "ok" if ok else "unhealthy",
                "scheduler": "running" if scheduler else "stuck or stopped",
                "database": "ok" if database else "unreachable",
                "targets": len(self._config.targets),
            },
        )

    def _feed(self, request: Any) -> tuple[int, str, bytes]:
        from monitor.feed import atom_feed
        from monitor.web.ops import served_url

        assert self._server is not None
        body = atom_feed(
            self._store.changes(limit=50),
            now=self._now(),
            self_url=served_url(self._server.address, request, "/feed.atom"),
        )
        return 200, "application/atom+xml; charset=utf-8", body

    # -- lifecycle -------------------------------------------------------------

    def _add_job(self, target: Target, first_run: datetime) -> None:
        self._scheduler.add_job(
            self.poll,
            IntervalTrigger(
                seconds=target.interval, jitter=min(target.interval * JITTER, 5.0), timezone="UTC"
            ),
            args=[target.name],
            id=f"poll:{target.name}",
            name=target.name,
            next_run_time=first_run,
            replace_existing=True,
        )

    def _schedule_first_polls(
        self, targets: Sequence[Target], now: datetime, changed: Iterable[str] = ()
    ) -> None:
        """A job per target, its first run when :func:`first_poll` says (at once, spread
        a little so many targets don't burst, or when the replicas' rule lets it run),
        logged per target with when and why. A target in ``changed`` (its definition
        changed on reload) is polled at once: the replicas' rule must not hide a config
        change for up to an interval."""
        if not targets:
            return
        changed = set(changed)
        last: Mapping[str, datetime] = {}
        if any(t.name not in changed for t in targets):
            try:
                last = self._store.last_polls()
            except MonitorError as exc:  # polled at once; each poll checks the rule itself
                log.warning("last polls not read; every first poll goes at once", error=str(exc))
        for index, target in enumerate(targets):
            if target.name in changed:
                when, reason = now, "config changed"
            else:
                when, reason = first_poll(now, last.get(target.name), target.interval)
            when = max(when, now + timedelta(milliseconds=50 * index))
            self._add_job(target, when)
            log.info(
                "first poll",
                target=target.name,
                at=when.isoformat().replace("+00:00", "Z"),
                reason=reason,
            )

    def send_backlog(self) -> None:
        """At start, once: every alert left pending by an earlier run (a crash, a
        notification service down), backoff or not. A job, so polling starts at once."""
        try:
            self._count(self._outbox.deliver(due_only=False))
        except MonitorError as exc:
            log.error("pending alerts not sent at start", error=str(exc))
        except Exception:
            log.exception("unexpected error sending pending alerts; the daemon goes on")

    def prune(self) -> None:
        """The retention job: once a day, what is older than [retention] keep."""
        keep = self._config.retention_keep
        if keep is None:
            return
        try:
            report = self._store.prune(self._now() - timedelta(seconds=keep))
            log.info(
                "history pruned",
                snapshots=report.snapshots,
                model_lists=report.lists,
                model_objects=report.objects,
            )
        except MonitorError as exc:
            log.error("history not pruned", error=str(exc))
        except Exception:
            log.exception("unexpected error pruning; the daemon goes on")

    def prepare(self) -> None:
        """Everything that can fail at start and is not done yet, before any poll or
        send: systemd's notify socket is reached, the metrics port bound (a
        :class:`MonitorError` each, naming what failed). The config, the keys and the
        database were checked before the daemon was made."""
        if self._prepared:
            return
        self._notifier.check()
        if self._config.metrics_listen is not None:
            self._server = self._metrics_server(*self._config.metrics_listen)
        if self._config.web.listen is not None:
            self._web = self._web_server()
        self._prepared = True

    def _metrics_server(self, host: str, port: int) -> Any:
        """``[metrics] listen``: ``/metrics``, ``/healthz`` and ``/feed.atom``, bound now
        (so a port in use fails the start), served from a thread once the daemon starts."""
        from monitor.web.app import BackgroundServer, bind
        from monitor.web.ops import create_ops_app

        app = create_ops_app(
            {
                "/metrics": lambda _request: prometheus_body(self.metrics),
                "/healthz": self._healthz,
                "/feed.atom": self._feed,
            }
        )
        return BackgroundServer(app, bind(host, port, "metrics.listen"))

    def _web_server(self) -> Any:
        """``[web] listen``: the web app over this daemon's store, bound now (so a port in
        use fails the start), served from a thread once the daemon starts."""
        from monitor.web.app import BackgroundServer, bind, create_app, password_of

        web = self._config.web
        assert web.listen is not None
        app = create_app(lambda: self._config, self._store, self._now, password_of(web))
        return BackgroundServer(app, bind(*web.listen, "web.listen"))

    def start(self) -> None:
        self.prepare()
        try:  # the answers polls before this process saw: an unchanged one is not read
            self._conditional.load(self._store.known_answers())
        except MonitorError as exc:
            log.warning("answers seen before not read; every first answer is", error=str(exc))
        start = self._now()
        self._scheduler.add_job(
            self.prune,
            IntervalTrigger(days=1, timezone="UTC"),
            id="retention",
            name="retention",
            next_run_time=start + timedelta(minutes=10),
        )
        self._scheduler.add_job(
            self.send_backlog, "date", run_date=start, id="backlog", name="backlog"
        )
        self._schedule_first_polls(self._config.targets, start)
        self._scheduler.add_job(
            self.retry_deliveries,
            IntervalTrigger(seconds=self._outbox_every, timezone="UTC"),
            id="outbox",
            name="outbox",
        )
        self._scheduler.start()
        if self._server is not None:
            self._server.start()
            shown = show_address(*self._server.address[:2])
            log.info("metrics served", address=f"http://{shown}/metrics")
        if self._web is not None:
            self._web.start()
            log.info("web app served", address=f"http://{show_address(*self._web.address[:2])}/")
        log.info(
            "daemon started",
            targets=[t.name for t in self._config.targets],
            intervals={t.name: t.interval for t in self._config.targets},
        )
        self._notifier.ready(self.status())

    def apply(self, config: Config, keys: Keys) -> None:
        """Switch to a new config: jobs for added, removed and changed targets."""
        old = {t.name: t for t in self._config.targets}
        new = {t.name: t for t in config.targets}
        if config.database_url != self._config.database_url:
            log.warning("database.url changed: restart the daemon to use the new database")
        if config.metrics_listen != self._config.metrics_listen:
            log.warning("metrics.listen changed: restart the daemon to move the metrics server")
        if config.web != self._config.web:
            log.warning("[web] changed: restart the daemon to apply it to the web app")
        removed = sorted(old.keys() - new.keys())
        # a target changes with its definition or its key (a fixed key is used at once)
        changed = sorted(
            n
            for n in new.keys() & old.keys()
            if old[n] != new[n] or self._keys.get(n) != keys.get(n)
        )
        with self._lock:
            self._config, self._keys = config, keys
            self._targets = new
            self._changed = (self._changed & new.keys()) | set(changed)
            # the same outbox: outcomes the database has not recorded yet stay with it
            self._outbox.reload(config)
            for name in removed:  # a poll in flight finds its target gone: no metric
                self.metrics.forget(name)
                self._failing.pop(name, None)
        now = self._now()
        for name in removed:
            self._conditional.put(name, None)
            self._scheduler.remove_job(f"poll:{name}")
        # (a cached answer checks what it was asked)
        self._schedule_first_polls(
            [t for n, t in new.items() if n not in old or n in changed], now, changed=changed
        )
        log.info(
            "config reloaded",
            added=sorted(new.keys() - old.keys()),
            removed=removed,
            changed=changed,
        )
        self._notifier.status(self.status())

    def reload(self) -> None:
        if self._reload is None:
            return
        try:
            config, keys = self._reload()
        except MonitorError as exc:
            log.error("config not reloaded; the running one is kept", error=str(exc))
            return
        aws.forget()  # keys are read again on reload; so are AWS credentials
        self.apply(config, keys)

    def run_until_stopped(self) -> None:
        """Block until SIGTERM/SIGINT, then shut down within ``stop_timeout`` seconds."""
        self.prepare()  # what fails at start fails here, before any poll or send

        def on_stop(signum: int, _frame: object) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self._stop.set()

        def on_hup(_signum: int, _frame: object) -> None:
            self._reload_requested.set()

        handlers = {signal.SIGTERM: on_stop, signal.SIGINT: on_stop, signal.SIGHUP: on_hup}
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        ping_every = self._notifier.watchdog_interval
        next_ping = 0.0
        try:
            self.start()
            while not self._stop.wait(min(0.5, ping_every or 0.5)):
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self.reload()
                if ping_every and time.monotonic() >= next_ping:
                    if self.healthy():
                        self._notifier.watchdog()
                        next_ping = time.monotonic() + ping_every
                    else:
                        log.error("a poll is stuck: no watchdog ping, systemd will restart us")
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _shutdown(self) -> None:
        self._notifier.stopping()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        deadline = time.monotonic() + self._stop_timeout
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self._outbox.settle(timeout=max(0.0, deadline - time.monotonic()))
        if unrecorded := describe_unrecorded(left):
            log.error("stopping with " + unrecorded)
        if self._server is not None:
            self._server.stop()
        if self._web is not None:
            self._web.stop()
        if self._inflight:
            log.error(
                "polls still running at shutdown; exiting anyway", targets=list(self._inflight)
            )
            self._store.close()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # worker threads would keep the interpreter alive
        log.info("daemon stopped")
