"""Polling: ``run`` (the daemon) and ``check`` (every target once, now)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from monitor.cli.app import EXIT_FAILED, EXIT_OK, cli, fatal, resolve_keys
from monitor.cli.database import configured_store
from monitor.cli.options import common, json_option
from monitor.cli.render import check_line, print_json
from monitor.cli.state import current_state, start_logging, utcnow
from monitor.config import Config, Secret, Target, find_config_path, load_config, verify
from monitor.errors import ConfigError
from monitor.logs import configure_logging
from monitor.text import printable
from monitor.views import change_json, snapshot_json, target_event_json


@cli.command()
@common
def run() -> None:
    """Run the daemon: poll every target on its interval until SIGTERM."""
    from monitor.daemon import Daemon
    from monitor.fetch import make_client
    from monitor.notify import AppriseSender
    from monitor.sdnotify import SystemdNotifier

    configure_logging(
        current_state().log_level, stream=sys.stdout, journal=bool(os.environ.get("JOURNAL_STREAM"))
    )
    state = current_state()
    config = state.config()
    keys = _prepare_polling(config, config.targets)

    def reload() -> tuple[Config, dict[str, Secret | None]]:
        fresh = load_config(find_config_path(state.config_path, os.environ), os.environ)
        return fresh, _prepare_polling(fresh, fresh.targets)

    notifier = SystemdNotifier.from_environ(os.environ)
    try:
        with configured_store(write=True) as store, make_client() as client:
            Daemon(
                config,
                store=store,
                client=client,
                sender=AppriseSender(),
                keys=keys,
                now=utcnow,
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
    from monitor.fetch import ConditionalCache, make_client
    from monitor.notify import AppriseSender
    from monitor.notify.outbox import Outbox, describe_unrecorded
    from monitor.poll import Poller

    start_logging()
    state = current_state()
    config = state.config()
    targets = [config.target(target_name)] if target_name else list(config.targets)
    keys = _prepare_polling(config, targets)
    with configured_store(write=True) as store, make_client() as client:
        outbox = Outbox.for_config(config, store, AppriseSender(), now=utcnow)
        outbox.deliver(due_only=False)
        poller = Poller(
            store=store,
            client=client,
            outbox=outbox,
            now=utcnow,
            # answers seen by earlier runs: an unchanged one is recognised, not read
            cache=ConditionalCache(store.known_answers()),
            after_commit=state.after_commit,
        )
        # the daemon's pool size: one shared HTTP client, the engine's pool sized for it
        polled = poller.poll_each(
            targets, keys, config.audience_for, concurrency=config.max_concurrency
        )
        # a send the database did not record: written when it takes writes again, at
        # most until the lease (which keeps other senders off it) runs out
        unrecorded = describe_unrecorded(outbox.settle())
    done = [(p.result, p.sent) for p in polled if p.result is not None]
    if as_json:
        print_json(
            [
                {
                    **snapshot_json(r.snapshot),
                    "baseline": r.baseline,
                    "change": change_json(r.change) if r.change else None,
                    "events": [target_event_json(e) for e in r.events],
                    "deliveries": [
                        {"id": o.delivery.id, "url": o.delivery.url, "ok": o.ok, "error": o.error}
                        for o in sent
                    ],
                }
                for r, sent in done
            ]
        )
    for turn in polled:  # in config order
        if turn.result is None:
            reason = printable(turn.not_recorded or "")
            click.echo(f"{turn.target.name}: NOT RECORDED: {reason}", err=as_json)
        elif not as_json:
            click.echo(printable(check_line(turn.result, turn.sent)))
    if unrecorded:
        fatal(unrecorded)
    ok = len(done) == len(polled) and all(r.ok for r, _ in done)
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


def _prepare_polling(config: Config, targets: Sequence[Target]) -> dict[str, Secret | None]:
    """Check what polling needs before the first poll: targets, URLs, driver, keys."""
    if not targets:
        raise ConfigError("targets: no targets configured; add a [[targets]] table")
    verify(config)
    return resolve_keys(config, [t.name for t in targets])
