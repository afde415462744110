"""Polling: ``run`` (the daemon) and ``check`` (every target once, now)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from monitor.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    _fatal,
    _keys,
    _logging,
    _state,
    cli,
    common,
    json_option,
    log,
    utcnow,
)
from monitor.cli.database import _open_store
from monitor.cli.render import (
    _change_json,
    _check_line,
    _print_json,
    _snapshot_json,
    _target_event_json,
)
from monitor.config import Config, Secret, Target, find_config_path, load_config, verify
from monitor.errors import ConfigError, StorageError
from monitor.logs import configure_logging
from monitor.text import printable

if TYPE_CHECKING:  # the outbox loads apprise and the store: only when a command sends
    from monitor.notify.outbox import RetryPolicy


@cli.command()
@common
def run() -> None:
    """Run the daemon: poll every target on its interval until SIGTERM."""
    from monitor.daemon import Daemon
    from monitor.fetch import make_client
    from monitor.notify import AppriseSender
    from monitor.sdnotify import SystemdNotifier

    configure_logging(
        _state().log_level, stream=sys.stdout, journal=bool(os.environ.get("JOURNAL_STREAM"))
    )
    state = _state()
    config = state.config()
    keys = _prepare_polling(config, config.targets)

    def reload() -> tuple[Config, dict[str, Secret | None]]:
        fresh = load_config(find_config_path(state.config_path, os.environ), os.environ)
        return fresh, _prepare_polling(fresh, fresh.targets)

    notifier = SystemdNotifier.from_environ(os.environ)
    try:
        with _open_store(write=True) as store, make_client() as client:
            Daemon(
                config,
                store=store,
                client=client,
                sender=AppriseSender(),
                keys=keys,
                now=utcnow,
                retry=retry_policy,
                reload=reload,
                notifier=notifier,
                after_commit=state.after_commit,
            ).run_until_stopped()
    finally:
        notifier.close()


@cli.command()
@common
@click.option("--target", "target_name", metavar="NAME", help="Poll only this target.")
@json_option
def check(target_name: str | None, as_json: bool) -> None:
    """Poll every target (or one) once now, store, compare, alert, exit.

    Alerts still pending from earlier runs are sent first. Targets are polled
    ``[defaults] max_concurrency`` at a time and reported in config order. Exits 0
    when every poll was good, 1 when any failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    from monitor.fetch import make_client
    from monitor.notify import AppriseSender
    from monitor.notify.outbox import Outbox, Outcome, describe_unrecorded
    from monitor.worker import PollResult, poll_target

    _logging()
    config = _state().config()
    targets = [config.target(target_name)] if target_name else list(config.targets)
    keys = _prepare_polling(config, targets)
    with _open_store(write=True) as store, make_client() as client:
        outbox = Outbox(
            store, AppriseSender(), config.all_urls(), now=utcnow, policy=retry_policy(config)
        )
        outbox.deliver(due_only=False)
        after_commit = _state().after_commit  # click's context is this thread's only

        def poll_one(target: Target) -> tuple[PollResult, list[Outcome]] | str:
            """What the target's poll found and the sends it made, or why it was not
            recorded: one target's trouble must not stop the others."""
            try:
                # a daemon replica polling this target right now: wait for it, then poll
                with store.poll_turn(target.name, now=utcnow(), wait=True):
                    result = poll_target(
                        target,
                        client=client,
                        api_key=keys[target.name],
                        store=store,
                        notify_urls=config.urls_for(target),
                        now=utcnow,
                        after_commit=after_commit,
                    )
            except StorageError as exc:
                return str(exc)
            except Exception as exc:  # a bug: this target's, never the others' trouble
                log.exception("unexpected error polling; not recorded", target=target.name)
                return f"internal error: {type(exc).__name__}"
            if not result.delivery_ids:
                return result, []
            return result, outbox.deliver(ids=result.delivery_ids, due_only=False)

        # the daemon's pool size: one shared HTTP client, the engine's pool sized for it
        workers = max(1, min(config.max_concurrency, len(targets)))
        with ThreadPoolExecutor(workers, thread_name_prefix="check") as pool:
            # in config order; interrupted (Ctrl-C, a bug), map cancels what has not started
            polled = list(pool.map(poll_one, targets))
        # a send the database did not record: written when it takes writes again, at
        # most until the lease (which keeps other senders off it) runs out
        unrecorded = describe_unrecorded(outbox.settle())
    done = [p for p in polled if not isinstance(p, str)]
    if as_json:
        _print_json(
            [
                {
                    **_snapshot_json(r.snapshot),
                    "baseline": r.baseline,
                    "change": _change_json(r.change) if r.change else None,
                    "events": [_target_event_json(e) for e in r.events],
                    "deliveries": [
                        {"id": o.delivery.id, "url": o.delivery.url, "ok": o.ok, "error": o.error}
                        for o in sent
                    ],
                }
                for r, sent in done
            ]
        )
    for target, outcome in zip(targets, polled, strict=True):
        if isinstance(outcome, str):
            click.echo(f"{target.name}: NOT RECORDED: {printable(outcome)}", err=as_json)
        elif not as_json:
            click.echo(printable(_check_line(*outcome)))
    if unrecorded:
        _fatal(unrecorded)
    ok = len(done) == len(polled) and all(r.ok for r, _ in done)
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


def _prepare_polling(config: Config, targets: Sequence[Target]) -> dict[str, Secret | None]:
    """Check what polling needs before the first poll: targets, URLs, driver, keys."""
    if not targets:
        raise ConfigError("targets: no targets configured; add a [[targets]] table")
    verify(config)
    return _keys(config, [t.name for t in targets])


def retry_policy(config: Config) -> RetryPolicy:
    """The outbox's retries as [delivery] configures them: for run, check and
    deliveries retry."""
    from monitor.notify.outbox import RetryPolicy

    return RetryPolicy(
        max_attempts=config.delivery.max_attempts,
        initial=timedelta(seconds=config.delivery.retry_initial),
        maximum=timedelta(seconds=config.delivery.retry_max),
    )
