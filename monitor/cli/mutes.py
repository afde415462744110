"""Muting alerts: ``mute``, ``unmute`` and ``mutes``. Mutes live in the database, so a
running daemon and every replica see them at once, without a reload."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from monitor.cli.app import cli, fatal
from monitor.cli.database import check_target, configured_store
from monitor.cli.options import common, json_option
from monitor.cli.render import print_json, print_table
from monitor.cli.state import current_state, start_logging, utcnow
from monitor.config import duration_seconds, parse_moment
from monitor.mutes import ALL, Mute
from monitor.text import printable
from monitor.views import iso

MAX_MUTE = timedelta(days=366)


def mute_json(m: Mute) -> dict[str, object]:
    """One mute as ``monitor mutes --json`` prints it."""
    return {
        "id": m.id,
        "target": None if m.target == ALL else m.target,
        "all": m.target == ALL,
        "since": iso(m.starts_at),
        "until": iso(m.ends_at),
        "reason": m.reason,
    }


def _scope(target_name: str | None, every: bool) -> str | None:
    if (target_name is None) == (not every):
        raise click.UsageError("give a TARGET or --all (one of them)")
    return None if every else target_name


@cli.command()
@common
@click.argument("target_name", metavar="TARGET", required=False)
@click.option("--all", "every", is_flag=True, help="Every target.")
@click.option("--for", "for_", metavar="DURATION", help="How long: 2h, 30m, 1d.")
@click.option("--until", metavar="TIME", help="Until when: ISO 8601 (2026-12-01T08:00Z).")
@click.option("--reason", metavar="TEXT", help="Why (shown by 'monitor mutes').")
def mute(
    target_name: str | None,
    every: bool,
    for_: str | None,
    until: str | None,
    reason: str | None,
) -> None:
    """Hold back a target's alerts (or every target's) for a while. Polls, snapshots and
    events are recorded as usual; when the mute ends, one summary per URL says what
    changed meanwhile."""
    scope = _scope(target_name, every)
    if (for_ is None) == (until is None):
        raise click.UsageError("give --for DURATION or --until TIME (one of them)")
    start_logging()
    now = utcnow()
    ends = _end(now, for_, until)
    with configured_store(write=True) as store:
        if scope is not None:
            check_target(current_state().config(), store, scope)
        made = store.add_mute(scope or ALL, now, ends, reason)
    who = "every target" if scope is None else scope
    click.echo(f"muted {who} until {iso(made.until)} (mute {made.id})")


def _end(now: datetime, for_: str | None, until: str | None) -> datetime:
    if for_ is not None:
        seconds = duration_seconds(for_)
        if seconds is None or seconds <= 0:
            raise click.BadParameter(f"{for_!r} is not a duration like 2h", param_hint="--for")
        if timedelta(seconds=seconds) > MAX_MUTE:
            raise click.BadParameter(f"{for_!r} is longer than a year", param_hint="--for")
        return now + timedelta(seconds=seconds)
    assert until is not None
    try:
        ends = parse_moment(until, now)
    except (ValueError, OverflowError):
        raise click.BadParameter(
            f"{until!r} is not a time; use ISO 8601 (2026-12-01T08:00Z)", param_hint="--until"
        ) from None
    if ends <= now:
        raise click.BadParameter(f"{until!r} is not in the future", param_hint="--until")
    if ends - now > MAX_MUTE:
        raise click.BadParameter(f"{until!r} is more than a year away", param_hint="--until")
    return ends


@cli.command()
@common
@click.argument("target_name", metavar="TARGET", required=False)
@click.option("--all", "every", is_flag=True, help="Every mute, of every target.")
def unmute(target_name: str | None, every: bool) -> None:
    """End a target's mutes (or every mute) now, and send what they held back."""
    from monitor.config import verify
    from monitor.notify import AppriseSender
    from monitor.notify.outbox import Outbox, describe_unrecorded

    scope = _scope(target_name, every)
    start_logging()
    config = current_state().config()
    verify(config)
    with configured_store(write=True) as store:
        if scope is not None:
            check_target(config, store, scope)
        ended = store.end_mutes(scope, utcnow())
        still = [m for m in store.mutes(utcnow()) if scope is not None and m.target == ALL]
        outbox = Outbox.for_config(config, store, AppriseSender(), now=utcnow)
        made = outbox.release()
        outcomes = outbox.deliver(ids=made, due_only=False) if made else []
        unrecorded = describe_unrecorded(outbox.settle())
    who = "every target" if scope is None else scope
    if not ended:
        click.echo(f"{who}: no mute in force")
    else:
        click.echo(f"unmuted {who} ({len(ended)} mute{'s' if len(ended) > 1 else ''} ended)")
    if still:
        click.echo(f"{scope} is still muted with every target until {iso(still[0].ends_at)}")
    for outcome in outcomes:
        d = outcome.delivery
        state = "sent" if outcome.ok else f"FAILED ({printable(outcome.error or '')}), retried"
        click.echo(f"delivery {d.id}: {printable(d.title)} to {d.url}: {state}")
    if unrecorded:
        fatal(unrecorded)


@cli.command()
@common
@json_option
def mutes(as_json: bool) -> None:
    """The mutes in force, the soonest to end first."""
    start_logging()
    with configured_store(write=False) as store:
        found = store.mutes(utcnow())
    if as_json:
        print_json([mute_json(m) for m in found])
        return
    print_table(
        ["ID", "TARGET", "SINCE", "UNTIL", "REASON"],
        [
            [
                m.id,
                "(every target)" if m.target == ALL else m.target,
                iso(m.starts_at),
                iso(m.ends_at),
                m.reason or "",
            ]
            for m in found
        ],
    )
