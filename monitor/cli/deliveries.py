"""The outbox: each alert to each notification URL (``deliveries``), and sending
one again (``deliveries retry``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from monitor.cli.app import EXIT_FAILED, EXIT_OK, cli, fatal
from monitor.cli.database import configured_store, read_rows
from monitor.cli.options import DELIVERY_ID, LIMIT, common, json_option
from monitor.cli.render import delivery_when, print_json, print_table, short, skipped_line
from monitor.cli.state import current_state, start_logging, utcnow
from monitor.config import verify
from monitor.errors import ConfigError, NotFoundError
from monitor.routing import Audience
from monitor.views import configured_urls, delivery_json, iso

if TYPE_CHECKING:
    from monitor.store import DeliveryRecord, Store


@cli.group(invoke_without_command=True)
@common
@click.option("--pending", "status", flag_value="pending", help="Only those not sent yet.")
@click.option("--dead", "status", flag_value="dead", help="Only those given up on.")
@click.option("--sent", "status", flag_value="sent", help="Only those sent.")
@click.option("--held", "status", flag_value="held", help="Only those waiting for a digest.")
@click.option("--muted", "status", flag_value="muted", help="Only those a mute keeps back.")
@click.option("--target", "target_name", metavar="NAME", help="Only this target's.")
@click.option("--since", metavar="TIME", help="Alerts raised since: ISO 8601 or an age (2h).")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@json_option
@click.pass_context
def deliveries(
    ctx: click.Context,
    status: str | None,
    target_name: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Each alert to each notification URL: sent, pending (retried) or dead; held for a
    digest, or digested (sent with one)."""
    if ctx.invoked_subcommand is not None:
        return
    rows, total = read_rows(
        target_name,
        since,
        lambda store, since_at: store.deliveries(
            status=status, target=target_name, since=since_at, limit=limit
        ),
    )
    now = utcnow()
    configured = configured_urls(current_state().config())
    if as_json:
        print_json([delivery_json(d, now, configured) for d in rows])
        return
    print_table(
        ["ID", "ALERT", "URL", "STATUS", "TRIES", "WHEN", "LAST ERROR"],
        [
            [
                d.id,
                short(d.title, 48),
                d.url,
                d.status,
                d.attempts,
                delivery_when(d, now, configured),
                short(d.last_error or "", 60),
            ]
            for d in rows
        ],
    )
    if total > len(rows):
        click.echo(f"(showing the newest {len(rows)} of {total}; see --limit)")


@deliveries.command("retry")
@common
@click.argument("delivery_id", type=DELIVERY_ID)
@click.option(
    "--to-current",
    is_flag=True,
    help="Send it to the target's notification URLs in today's config instead "
    "(for an alert whose URL was removed or replaced).",
)
def deliveries_retry(delivery_id: int, to_current: bool) -> None:
    """Send one pending or dead delivery again now."""
    from monitor.notify import AppriseSender
    from monitor.notify.outbox import Outbox, describe_unrecorded, url_refs

    start_logging()
    config = current_state().config()
    verify(config)
    with configured_store(write=True) as store:
        delivery = store.delivery(delivery_id)
        if delivery.status == "sent":
            sent_at = iso(delivery.sent_at or delivery.created_at)
            raise NotFoundError(f"delivery {delivery_id} was sent at {sent_at}; not sent twice")
        if delivery.status == "held":
            due = iso(delivery.next_attempt_at)
            raise NotFoundError(f"delivery {delivery_id} goes with the digest due {due}")
        if delivery.status == "digested":
            raise NotFoundError(
                f"delivery {delivery_id} went into digest delivery {delivery.digest_id}; "
                "retry that one"
            )
        if delivery.status == "muted":
            raise NotFoundError(
                f"delivery {delivery_id} is kept back by a mute of {delivery.target}; "
                "'monitor unmute' sends what the mute held back"
            )
        if delivery.status == "suppressed":
            raise NotFoundError(
                f"delivery {delivery_id} was swallowed by a mute (the target went down and "
                "came back inside it); not sent"
            )
        digest = delivery.change_event_id is None and delivery.target_event_id is None
        if to_current and digest:
            raise ConfigError(
                f"--to-current: delivery {delivery_id} is a digest or a mute's summary, made "
                "for its URL alone; retry it without --to-current"
            )
        skipped: list[str] = []
        if to_current:
            known = {t.name: t for t in config.targets}
            if delivery.target not in known:
                raise ConfigError(f"--to-current: target {delivery.target!r} is not configured")
            urls = current_urls(config.audience_for(known[delivery.target]), store, delivery)
            if not urls:
                raise ConfigError(
                    f"--to-current: target {delivery.target!r} has no notification URLs"
                )
            steps = store.redirect_delivery(delivery_id, url_refs(urls), utcnow())
            if steps is None:
                fatal(f"delivery {delivery_id} is being sent right now; see monitor deliveries")
            ids = [s.delivery_id for s in steps if s.to_send]
            skipped = [skipped_line(s) for s in steps if not s.to_send]
        else:
            twin = store.sent_twin(delivery)
            if twin is not None:
                sent_at = iso(twin.sent_at or twin.created_at)
                raise NotFoundError(
                    f"delivery {delivery_id}: this URL got the alert as delivery {twin.id} "
                    f"at {sent_at}; not sent twice"
                )
            if not store.reopen_delivery(delivery_id, utcnow()):
                fatal(f"delivery {delivery_id} is being sent right now; see monitor deliveries")
            ids = [delivery_id]
        outbox = Outbox.for_config(config, store, AppriseSender(), now=utcnow)
        outcomes = outbox.deliver(ids=ids, due_only=False) if ids else []
        unrecorded = describe_unrecorded(outbox.settle())
    for line in skipped:
        click.echo(line)
    failed = 0
    for outcome in outcomes:
        d = outcome.delivery
        if outcome.ok:
            click.echo(f"delivery {d.id}: sent to {d.url}")
        else:
            failed += 1
            state = "given up" if outcome.dead else "pending, retried later"
            click.echo(f"delivery {d.id}: FAILED to {d.url}: {outcome.error} ({state})")
    if unrecorded:
        fatal(unrecorded)
    # nothing to send is fine when every current URL has the alert or is being sent it
    sys.exit(EXIT_FAILED if failed or not (outcomes or skipped) else EXIT_OK)


def current_urls(audience: Audience, store: Store, delivery: DeliveryRecord) -> tuple[str, ...]:
    """The URLs today's routes send this delivery's alert to: those of the routes whose
    events (and models) it matches, at once or in a digest."""
    from monitor.diff import ModelDiff

    if delivery.change_event_id is not None:
        change = store.change(delivery.change_event_id)
        diff = ModelDiff(frozenset(change.added), frozenset(change.removed), change.changed)
        parts = audience.change_parts(diff)
    else:
        assert delivery.target_event_id is not None
        parts = audience.event_parts(store.target_event(delivery.target_event_id).kind)
    return tuple(dict.fromkeys(u for part in parts for u in part.urls))
