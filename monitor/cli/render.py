"""What the commands print: JSON, tables and lines, from the records they read.

Pure: no commands, no database; a provider's strings never drive the terminal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from monitor.text import printable, shown

if TYPE_CHECKING:  # the records come with SQLAlchemy and apprise: printing loads neither
    from monitor.notify.outbox import Outcome
    from monitor.poll import PollResult
    from monitor.store import (
        ChangeRecord,
        DeliveryRecord,
        ModelEvent,
        ModelLife,
        Redirected,
        SnapshotRecord,
        TargetEventRecord,
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def print_json(value: Any) -> None:
    click.echo(json_text(value))


def json_text(value: Any) -> str:
    """Always valid JSON (a NaN stored by an older version is written as the string
    "NaN"), and safe on a terminal: characters that are not printable are written as
    JSON escapes (``\\u202e``), which read back as the same string."""
    text = json.dumps(_finite(value), indent=2, ensure_ascii=False, allow_nan=False)
    return "\n".join(
        line if line.isprintable() else "".join(map(_json_char, line)) for line in text.split("\n")
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_char(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    if code > 0xFFFF:  # as a surrogate pair, the way JSON spells it
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


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


def snapshot_json(s: SnapshotRecord) -> dict[str, Any]:
    return {
        "id": s.id,
        "target": s.target,
        "fetched_at": iso(s.fetched_at),
        "ok": s.ok,
        "http_status": s.http_status,
        "model_count": s.model_count if s.ok else None,
        "error": None if s.ok else s.error,
        "duration_ms": s.duration_ms,
    }


def target_event_json(e: TargetEventRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "target": e.target,
        "kind": e.kind,
        "at": iso(e.at),
        "since": iso(e.since),
        "failures": e.failures,
        "error": e.error,
        "duration_s": e.duration_s,
        "snapshot_id": e.snapshot_id,
    }


def change_json(c: ChangeRecord) -> dict[str, Any]:
    return {
        "id": c.id,
        "target": c.target,
        "detected_at": iso(c.detected_at),
        "added": list(c.added),
        "removed": list(c.removed),
        "changed": [x.as_json() for x in c.changed],
        "from_snapshot_id": c.from_snapshot_id,
        "to_snapshot_id": c.to_snapshot_id,
    }


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
    if d.status == "dead":
        given_up = _given_up_at(d, now)
        return f"gave up {iso(given_up)}" if given_up else "gave up (time not recorded)"
    if (lease := _held_until(d, now)) is not None:
        return f"being sent (lease until {iso(lease)})"
    if d.url_hash not in configured:
        return "waiting: its URL is not in the config"
    if d.next_attempt_at <= now:
        return f"due since {iso(d.next_attempt_at)}"
    return f"next try {iso(d.next_attempt_at)}"


def _given_up_at(d: DeliveryRecord, now: datetime) -> datetime | None:
    """When a dead delivery was given up: the outbox sets its next attempt to that
    moment. A row closed another way (an older 'retry --to-current') may keep a next
    attempt in the future: then the moment is not known."""
    if d.status != "dead" or d.next_attempt_at > now:
        return None
    return d.next_attempt_at


def _held_until(d: DeliveryRecord, now: datetime) -> datetime | None:
    """Until when a sender holds the delivery, while one does (it may be sending it)."""
    return d.lease_until if d.being_sent(now) else None


def short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def delivery_json(d: DeliveryRecord, now: datetime, configured: set[str]) -> dict[str, Any]:
    return {
        "id": d.id,
        "target": d.target,
        "change_event_id": d.change_event_id,
        "target_event_id": d.target_event_id,
        "url": d.url,
        "title": d.title,
        "status": d.status,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "created_at": iso(d.created_at),
        "next_attempt_at": iso(d.next_attempt_at) if d.status == "pending" else None,
        "sent_at": iso(d.sent_at) if d.sent_at else None,
        "given_up_at": iso(given_up) if (given_up := _given_up_at(d, now)) else None,
        "lease_until": iso(lease) if (lease := _held_until(d, now)) else None,
        "url_in_config": d.url_hash in configured,
    }


def skipped_line(step: Redirected) -> str:
    if step.action == "already sent":
        when = f" at {iso(step.sent_at)}" if step.sent_at else ""
        return f"delivery {step.delivery_id}: not sent to {step.url}: it got this alert{when}"
    return f"delivery {step.delivery_id}: not sent to {step.url}: it is being sent right now"


def model_event_json(event: ModelEvent) -> dict[str, Any]:
    """One entry of ``monitor model --json``'s events."""
    entry: dict[str, Any] = {"at": iso(event.at), "what": event.what}
    if event.change is not None:
        change = event.change
        entry.update(field=change.field, old=change.old, new=change.new)
    return {**entry, "event_id": event.change_id}


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
