"""What the commands print: JSON, tables and lines, from the records they read.

Pure: no commands, no database; a provider's strings never drive the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from monitor.text import printable, shown
from monitor.views import (
    given_up_at,
    held_until,
    iso,
    json_text,
)

if TYPE_CHECKING:  # the records come with SQLAlchemy and apprise: printing loads neither
    from monitor.notify.outbox import Outcome
    from monitor.poll import PollResult
    from monitor.store import (
        DeliveryRecord,
        ModelLife,
        Redirected,
        TargetEventRecord,
    )


def print_json(value: Any) -> None:
    click.echo(json_text(value))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    # a provider's strings never drive the terminal: controls and bidi overrides escaped
    cells = [[("" if c is None else printable(str(c))) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    click.echo(line.rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def model_rows(models: Sequence[dict[str, Any]]) -> list[list[object]]:
    rows = []
    for m in models:
        created = m.get("created")
        when = (
            iso(datetime.fromtimestamp(created, UTC))
            if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2**33
            else ""
        )
        rows.append([shown(m["id"]), m.get("owned_by", ""), when])
    return rows


def check_line(result: PollResult, outcomes: Sequence[Outcome]) -> str:
    s = result.snapshot
    if not s.ok:
        line = f"{s.target}: FAILED: {s.error}"
    elif result.change:
        c = result.change
        line = (
            f"{s.target}: {models_text(s.model_count)}, changed (+{len(c.added)} -{len(c.removed)})"
        )
    elif result.baseline:
        line = f"{s.target}: {models_text(s.model_count)}, first good poll (baseline)"
    else:
        line = f"{s.target}: {models_text(s.model_count)}, no change"
    for event in result.events:
        line += f"; {event.kind}"
    queued = len(result.delivery_ids)  # those not sent now (the outbox waited) are pending
    if queued:
        ok = sum(o.ok for o in outcomes)
        dead = sum(o.dead for o in outcomes)
        line += f"; alerts sent {ok} of {queued}"
        if ok + dead < queued:
            line += f" ({queued - ok - dead} to retry: see monitor deliveries)"
        if dead:
            line += f" ({dead} given up)"
    return line


def models_text(count: int | None) -> str:
    return f"{count} model" if count == 1 else f"{count} models"


def event_detail(event: TargetEventRecord) -> str:
    from monitor.notify.message import format_duration

    if event.kind == "recovered" and event.duration_s is not None:
        return f"down for {format_duration(timedelta(seconds=event.duration_s))}"
    return f"{event.failures} failed polls since {iso(event.since)}: {event.error}"


def delivery_when(d: DeliveryRecord, now: datetime, configured: set[str]) -> str:
    """What happened to a delivery, or what it waits for, with the time that goes with it:
    never a time in the future for something already over."""
    if d.status == "sent":
        return f"sent {iso(d.sent_at)}" if d.sent_at else "sent"
    if d.status == "held":
        return f"in the digest due {iso(d.next_attempt_at)}"
    if d.status == "digested":
        return f"sent with digest delivery {d.digest_id}"
    if d.status == "dead":
        given_up = given_up_at(d, now)
        return f"gave up {iso(given_up)}" if given_up else "gave up (time not recorded)"
    if (lease := held_until(d, now)) is not None:
        return f"being sent (lease until {iso(lease)})"
    if d.url_hash not in configured:
        return "waiting: its URL is not in the config"
    if d.next_attempt_at <= now:
        return f"due since {iso(d.next_attempt_at)}"
    return f"next try {iso(d.next_attempt_at)}"


def short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def skipped_line(step: Redirected) -> str:
    if step.action == "already sent":
        when = f" at {iso(step.sent_at)}" if step.sent_at else ""
        return f"delivery {step.delivery_id}: not sent to {step.url}: it got this alert{when}"
    if step.action == "with a digest or mute":
        return (
            f"delivery {step.delivery_id}: not sent to {step.url}: it goes (or went) with a "
            "digest or a mute's summary"
        )
    return f"delivery {step.delivery_id}: not sent to {step.url}: it is being sent right now"


def timeline(life: ModelLife) -> list[tuple[datetime, str]]:
    """One model's life on one target as (time, text) lines in time order: first seen,
    its events, last seen. At the same moment first seen comes first and last seen last;
    a model is last seen *before* the poll that found it gone."""
    from monitor.notify.message import show_change

    sighting = life.sighting
    lines: list[tuple[datetime, int, int, str]] = [(sighting.first_seen, 0, 0, "first seen")]
    gone = False
    for event in life.events:
        if event.change is not None:
            field = event.change.field
            text = f"{shown(field)} {show_change(field, event.change.old, event.change.new)}"
        elif event.what == "removed":
            text, gone = "went away", True
        else:  # an addition after a removal is a return, else the first appearance
            text, gone = ("came back" if gone else "added"), False
        lines.append((event.at, 1, event.change_id, text))
    lines.append((sighting.last_seen, 2, 0, "last seen"))
    lines.sort(key=lambda line: line[:3])
    return [(at, text) for at, _, _, text in lines]
