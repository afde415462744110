"""Looking after the monitor: ``config check``, ``notify-test``, ``db upgrade`` and
``prune``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import click

from monitor.cli.app import EXIT_FAILED, EXIT_OK, cli, fatal, log, resolve_keys
from monitor.cli.database import check_target, configured_engine, configured_store
from monitor.cli.options import common, json_option
from monitor.cli.render import models_text, print_json
from monitor.cli.state import current_state, start_logging, utcnow
from monitor.config import Config, Secret, Target, duration_seconds, verify
from monitor.routing import EVENTS
from monitor.views import iso


@cli.command()
@common
@click.option(
    "--older-than", "older_than", metavar="AGE", required=True, help="e.g. 90d, 12w, 2160h."
)
@click.option("--target", "target_name", metavar="NAME", help="Only this target's snapshots.")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option(
    "--vacuum",
    is_flag=True,
    help="Then give the freed space back to the disk (SQLite VACUUM, PostgreSQL VACUUM FULL).",
)
@json_option
def prune(
    older_than: str, target_name: str | None, dry_run: bool, vacuum: bool, as_json: bool
) -> None:
    """Delete old snapshots and the model lists nobody points at any more.

    Kept whatever their age: change events and the snapshots they compare, the snapshots
    down/recovered events point at, each target's baseline, latest and latest good
    snapshot, and, for each model a change added or removed, its first or last sighting
    and the poll beside it (so `monitor model` reads as before). Deliveries and events
    are never pruned.

    Prune frees rows for the database to reuse; the file (or PostgreSQL's tables) keeps
    its size. --vacuum rewrites them to give the space back: it needs as much free disk
    as the database takes, and the daemon's polls wait for it while it runs.
    """
    start_logging()
    age = duration_seconds(older_than)
    if age is None or age <= 0:
        raise click.BadParameter(
            f"{older_than!r} is not an age like 90d", param_hint="--older-than"
        )
    if vacuum and dry_run:
        raise click.BadParameter(
            "deletes nothing, so there is nothing to vacuum", param_hint="--dry-run --vacuum"
        )
    cutoff = utcnow() - timedelta(seconds=age)
    with configured_store(write=True) as store:
        check_target(current_state().config(), store, target_name)
        report = store.prune(cutoff, target=target_name, dry_run=dry_run)
        vacuumed = store.vacuum() if vacuum else None
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "older_than": iso(cutoff),
                "snapshots": report.snapshots,
                "model_lists": report.lists,
                "model_objects": report.objects,
                "vacuum": (
                    {"bytes_before": vacuumed.bytes_before, "bytes_after": vacuumed.bytes_after}
                    if vacuumed is not None
                    else None
                ),
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {report.snapshots} snapshots taken before {iso(cutoff)}, "
        f"{report.lists} model lists and {report.objects} model objects nobody points at"
    )
    if vacuumed is not None:
        click.echo(
            f"vacuumed: {vacuumed.bytes_before:,} bytes on disk before, "
            f"{vacuumed.bytes_after:,} after"
        )


@cli.command("notify-test")
@common
@click.option("--target", "target_name", metavar="NAME", help="Only this target's URLs.")
def notify_test(target_name: str | None) -> None:
    """Send a test alert to every configured URL and report each result."""
    from monitor.notify import AppriseSender, test_message

    start_logging()
    config = current_state().config()
    verify(config)
    urls = config.urls_for(config.target(target_name)) if target_name else config.all_urls()
    if not urls:
        fatal("no notification URLs configured", EXIT_FAILED, "add [notify] urls = [...]")
    sender = AppriseSender()
    message = test_message(target_name, utcnow())
    failed = 0
    for url in urls:
        delivery = sender.send(url, message)
        if delivery.ok:
            click.echo(f"ok      {delivery.url} ({delivery.duration_ms} ms)")
        else:
            failed += 1
            click.echo(f"FAILED  {delivery.url}: {delivery.error}")
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@cli.group()
@common
def db() -> None:
    """Database maintenance."""


@db.command()
@common
def upgrade() -> None:
    """Create or migrate the database to this version's schema."""
    from sqlalchemy.engine import make_url

    from monitor.store.engine import current_revision

    start_logging()
    with configured_engine(write=True) as engine:
        revision = current_revision(engine)
    shown = make_url(current_state().config().database_url).render_as_string(hide_password=True)
    click.echo(f"database {shown} is at revision {revision} (newest)")


@cli.group("config")
@common
def config_group() -> None:
    """Configuration."""


@config_group.command("check")
@common
@click.option(
    "--online",
    is_flag=True,
    help="Also ask each target for its model list once, to check its key and URL "
    "(nothing is stored).",
)
def config_check(online: bool) -> None:
    """Validate the config file, notification URLs and API keys; print a summary.

    Without --online a key is only found, not tried: the provider alone can say
    whether it accepts it. Exits 1 when --online found a target that failed.
    """
    from sqlalchemy.engine import make_url

    from monitor.store.engine import TESTED

    config = current_state().config()
    verify(config)
    keys = resolve_keys(config, [t.name for t in config.targets])
    click.echo(f"config {config.path}: OK")
    url = make_url(config.database_url)
    untested = "" if url.get_backend_name() in ("sqlite", "postgresql") else f" ({TESTED})"
    click.echo(f"database: {url.render_as_string(hide_password=True)}{untested}")
    click.echo(f"notification URLs: {len(config.notify_urls)}")
    for line in route_lines(config):
        click.echo(line)
    for t in config.targets:
        key = "AWS credentials from the standard chain" if t.shape.signed else "no key"
        if t.api_key is not None:
            key = f"key from {_KEY_FROM[t.api_key.kind]} {t.api_key.ref} (present, not verified)"
        query = "?" + urlencode(t.shape.params) if t.shape.params else ""
        click.echo(
            f"target {t.name}: GET {t.models_url}{query} every {t.interval:g}s, "
            f"timeout {t.timeout:g}s, {key}, {len(config.urls_for(t))} notification URLs"
        )
    if not online:
        if config.targets:
            click.echo(
                "(keys are not tried; 'monitor config check --online' asks each target once)"
            )
        return
    failed = 0
    for t, outcome in _try_targets(config, keys):
        failed += outcome.startswith("FAILED")
        click.echo(f"target {t.name}: {outcome}")
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


_KEY_FROM = {"env": "environment variable", "file": "file", "credential": "credential"}


def _try_targets(config: Config, keys: dict[str, Secret | None]) -> Iterator[tuple[Target, str]]:
    """Each target's answer to one fetch of its list (every page, no retries), as a line:
    ``key accepted, 12 models`` or ``FAILED: <reason>`` (fetch keeps keys out of it)."""
    from monitor.errors import FetchError
    from monitor.fetch import fetch_models, make_client

    with make_client() as client:
        for t in config.targets:
            try:
                fetched = fetch_models(client, t, keys[t.name])
            except FetchError as exc:
                yield t, f"FAILED: {exc.reason}"
                continue
            except Exception as exc:  # a bug met by one target: the others are still tried
                log.exception("unexpected error asking a target", target=t.name)
                yield t, f"FAILED: internal error: {type(exc).__name__}"
                continue
            answered = "key accepted" if keys[t.name] is not None else "answered"
            yield t, f"{answered}, {models_text(fetched.count)}"


def route_lines(config: Config) -> list[str]:
    """What ``config check`` says of each ``[[notify.routes]]`` table, with what is
    allowed but probably not meant: a digest shorter than the targets' polls, globs
    that match no configured target."""
    lines = []
    for i, route in enumerate(config.routes):
        served = [t for t in config.targets if route.serves(t.name)]
        events = ", ".join(e for e in EVENTS if e in route.events)
        models = f", models {', '.join(route.models)}" if route.models else ""
        when = f", in a digest every {route.digest:g}s" if route.digest else ", at once"
        urls = f"{len(route.urls)} URL{'s' if len(route.urls) != 1 else ''}"
        lines.append(f"route {i}: {events} of {len(served)} targets{models}{when} to {urls}")
        if route.targets and not served:
            lines.append(
                f"  note: notify.routes[{i}].targets matches no configured target "
                f"({', '.join(route.targets)})"
            )
        if route.digest and served and route.digest < min(t.interval for t in served):
            shortest = min(t.interval for t in served)
            lines.append(
                f"  note: notify.routes[{i}].digest ({route.digest:g}s) is shorter than the "
                f"shortest interval of its targets ({shortest:g}s): most digests will hold "
                "one poll's alerts"
            )
    return lines


def no_key(kind: str) -> str:
    from monitor.shapes import KIND_SHAPES

    return "(AWS credentials)" if KIND_SHAPES[kind].signed else "(no key)"


@cli.command()
@common
@json_option
def presets(as_json: bool) -> None:
    """The providers a target can name with ``preset = "NAME"``: kind, URL, key variable."""
    from monitor.cli.render import print_table
    from monitor.presets import PRESETS
    from monitor.shapes import KIND_SHAPES

    found = list(PRESETS.values())
    if as_json:
        print_json(
            [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "base_url": p.base_url,
                    "list_url": p.base_url + KIND_SHAPES[p.kind].path,
                    "api_key_env": p.api_key_env,
                    "watch_fields": list(p.watch),
                }
                for p in found
            ]
        )
        return
    print_table(
        ["PRESET", "KIND", "BASE URL", "KEY VARIABLE", "WORTH WATCHING"],
        [
            [p.name, p.kind, p.base_url, p.api_key_env or no_key(p.kind), ", ".join(p.watch)]
            for p in found
        ],
    )
