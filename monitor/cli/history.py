"""Reading the history: polls, snapshots, model lists, changes, down/recovered
events and one model's life; for people (tables) and scripts (``--json``, ``export``)."""

from __future__ import annotations

import json
import sys

import click

from monitor.cli.app import cli
from monitor.cli.database import check_target, configured_store, read_rows
from monitor.cli.options import LIMIT, SNAPSHOT_ID, common, event_filters, json_option, parse_time
from monitor.cli.render import event_detail, model_rows, print_json, print_table, timeline
from monitor.cli.state import current_state, start_logging, utcnow
from monitor.errors import NotFoundError
from monitor.globs import glob_problem
from monitor.text import printable, shown
from monitor.views import (
    change_json,
    diff_view,
    iso,
    model_json,
    models_view,
    only_target,
    snapshot_json,
    snapshot_view,
    target_event_json,
)


@cli.command()
@common
@click.option("--target", "target_name", metavar="NAME", help="Only this target.")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@click.option("--since", metavar="TIME", help="ISO 8601 time, or an age like 2h or 7d.")
@json_option
def history(target_name: str | None, limit: int, since: str | None, as_json: bool) -> None:
    """The polls, newest first."""
    rows = read_rows(
        target_name,
        since,
        lambda store, since_at: store.history(target=target_name, limit=limit, since=since_at),
    )
    if as_json:
        print_json([snapshot_json(s) for s in rows])
        return
    print_table(
        ["ID", "TARGET", "FETCHED AT", "OK", "HTTP", "MODELS", "ERROR"],
        [
            [
                s.id,
                s.target,
                iso(s.fetched_at),
                "ok" if s.ok else "FAILED",
                s.http_status,
                s.model_count if s.ok else "",
                s.error or "",
            ]
            for s in rows
        ],
    )


@cli.command()
@common
@click.argument("snapshot_id", type=SNAPSHOT_ID)
@json_option
def show(snapshot_id: int, as_json: bool) -> None:
    """The models in one snapshot."""
    start_logging()
    with configured_store(write=False) as store:
        view = snapshot_view(store, snapshot_id)
    if as_json:
        print_json(view)
        return
    state = "ok" if view["ok"] else f"FAILED: {printable(view['error'] or '')}"
    click.echo(f"snapshot {view['id']} of {view['target']} at {view['fetched_at']}: {state}")
    if view["ok"]:
        click.echo(f"{len(view['models'])} models")
        print_table(["ID", "OWNED BY", "CREATED"], model_rows(view["models"]))


@cli.command()
@common
@event_filters
@click.option(
    "--model",
    "model_globs",
    metavar="GLOB",
    multiple=True,
    help="Only changes touching a model matching this glob (repeatable), e.g. 'meta-llama/*'.",
)
def changes(
    target_name: str | None,
    since: str | None,
    limit: int | None,
    as_json: bool,
    model_globs: tuple[str, ...],
) -> None:
    """The change events, newest first."""
    for glob in model_globs:
        if problem := glob_problem(glob):
            raise click.BadParameter(f"{glob!r} {problem}", param_hint="--model")
    rows = read_rows(
        target_name,
        since,
        lambda store, since_at: store.changes(
            target=target_name, since=since_at, limit=limit, models=model_globs
        ),
    )
    if as_json:
        print_json([change_json(c) for c in rows])
        return
    print_table(
        ["ID", "TARGET", "DETECTED AT", "ADDED", "REMOVED", "CHANGED"],
        [
            [
                c.id,
                c.target,
                iso(c.detected_at),
                " ".join(map(shown, c.added)),
                " ".join(map(shown, c.removed)),
                "; ".join(f"{shown(x.id)} {shown(x.field)}" for x in c.changed),
            ]
            for c in rows
        ],
    )


@cli.command()
@common
@click.option("--target", "target_name", metavar="NAME", help="Only this target.")
@click.option("--at", "at", metavar="TIME", help="A past moment (default: now).")
@json_option
def models(target_name: str | None, at: str | None, as_json: bool) -> None:
    """The models a target listed at a point in time (its latest good poll then)."""
    start_logging()
    config = current_state().config()
    when = parse_time(at, utcnow(), "--at") if at else utcnow()
    with configured_store(write=False) as store:
        check_target(config, store, target_name)
        if target_name is None:
            target_name = only_target(config, "--target")
        view = models_view(store, target_name, when)
        polled = store.snapshot(view["snapshot_id"]).fetched_at
    if as_json:
        print_json(view)
        return
    found = view["models"]
    click.echo(
        f"{target_name}: {len(found)} models at {iso(when)} "
        f"(snapshot {view['snapshot_id']}, polled {iso(polled)})"
    )
    print_table(["ID", "OWNED BY", "CREATED"], model_rows(found))


@cli.command()
@common
@click.argument("snapshot_a", type=SNAPSHOT_ID)
@click.argument("snapshot_b", type=SNAPSHOT_ID)
@json_option
def diff(snapshot_a: int, snapshot_b: int, as_json: bool) -> None:
    """Models added and removed between two snapshots (A, then B)."""
    from monitor.diff import ModelDiff

    start_logging()
    with configured_store(write=False) as store:
        view = diff_view(store, snapshot_a, snapshot_b)
    if as_json:
        print_json(view)
        return
    a, b = view["from"], view["to"]
    summary = ModelDiff(frozenset(view["added"]), frozenset(view["removed"])).summary()
    click.echo(
        f"{a['target']} #{a['id']} ({a['fetched_at']}) -> "
        f"{b['target']} #{b['id']} ({b['fetched_at']}): {summary}"
    )
    for model_id in view["added"]:
        click.echo(f"+ {shown(model_id)}")
    for model_id in view["removed"]:
        click.echo(f"- {shown(model_id)}")


@cli.command()
@common
@event_filters
def events(target_name: str | None, since: str | None, limit: int | None, as_json: bool) -> None:
    """Targets that went down or came back, newest first (model changes: see changes)."""
    rows = read_rows(
        target_name,
        since,
        lambda store, since_at: store.target_events(
            target=target_name, since=since_at, limit=limit
        ),
    )
    if as_json:
        print_json([target_event_json(e) for e in rows])
        return
    print_table(
        ["ID", "TARGET", "KIND", "AT", "DETAIL"],
        [[e.id, e.target, e.kind, iso(e.at), event_detail(e)] for e in rows],
    )


@cli.command()
@common
@click.option("--target", "target_name", metavar="NAME", help="Only this target.")
@click.option("--since", metavar="TIME", help="ISO 8601 time, or an age like 30d.")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), required=True, help="Output format."
)
def export(target_name: str | None, since: str | None, fmt: str) -> None:
    """Change events for spreadsheets and scripts, oldest first, on stdout.

    CSV has one row per model per event: event_id, target, detected_at, change
    (added, removed, changed), model_id, field, old, new.
    """
    import csv

    rows = list(
        reversed(
            read_rows(
                target_name,
                since,
                lambda store, since_at: store.changes(target=target_name, since=since_at),
            )
        )
    )
    if fmt == "json":
        print_json([change_json(c) for c in rows])
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        ["event_id", "target", "detected_at", "change", "model_id", "field", "old", "new"]
    )
    for c in rows:
        base = [c.id, c.target, iso(c.detected_at)]
        for model_id in c.added:
            writer.writerow([*base, "added", model_id, "", "", ""])
        for model_id in c.removed:
            writer.writerow([*base, "removed", model_id, "", "", ""])
        for item in c.changed:
            old, new = (
                v if isinstance(v, str) or v is None else json.dumps(v)
                for v in (item.old, item.new)
            )
            writer.writerow([*base, "changed", item.id, item.field, old, new])


@cli.command("model")
@common
@click.argument("model_id")
@click.option("--target", "target_name", metavar="NAME", help="Only this target.")
@json_option
def model_life(model_id: str, target_name: str | None, as_json: bool) -> None:
    """The life of one model: first seen, each time it went and came back, last seen,
    and its watched-field changes."""
    start_logging()
    with configured_store(write=False) as store:
        check_target(current_state().config(), store, target_name)
        lives = store.model_life(model_id, target=target_name)
    if not lives:
        raise NotFoundError(f"no poll ever listed a model {model_id!r}")
    if as_json:
        print_json(model_json(model_id, lives))
        return
    for life in lives:
        state = "listed now" if life.sighting.present else "not listed now"
        click.echo(f"{shown(model_id)} on {life.sighting.target} ({state})")
        for at, what in timeline(life):
            click.echo(f"  {iso(at)}  {what}")
