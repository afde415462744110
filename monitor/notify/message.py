"""What an alert says. Pure: values in, a title and a body out.

Bodies are Markdown that also reads well as plain text (email, SMS). What a
provider sent (IDs, field values, its error messages) is shown with controls and
bidi overrides escaped (:mod:`monitor.text`), and as Markdown literals in a body:
a chat or a terminal is never driven by a provider's bytes (an ID ``<!here>``
pings nobody, ``[x](url)`` is no link).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.diff import ModelDiff
from monitor.routing import ServedAt

if TYPE_CHECKING:
    from monitor.store.records import DeliveryRecord
from monitor.text import markdown_literal, one_line, printable, shown


@dataclass(frozen=True)
class Message:
    title: str
    body: str


MAX_LINES = 50  # per section; the rest is summarised (monitor changes has them all)


def change_message(
    target: str,
    diff: ModelDiff,
    detected_at: datetime,
    *,
    markdown: bool = True,
    still_at: Mapping[str, Sequence[ServedAt]] | None = None,
) -> Message:
    """The alert of a change; ``markdown=False``: the same words as plain text.
    ``still_at``: where removed models are still served, said on their lines."""
    lit = markdown_literal if markdown else _same
    served = still_at or {}

    def removed_line(model_id: str) -> str:
        line = f"- {lit(shown(model_id))}"
        if at := served.get(model_id):
            places = ", ".join(
                shown(s.target) if s.as_id == model_id else f"{shown(s.target)} as {shown(s.as_id)}"
                for s in at
            )
            line += f" (still at: {lit(places)})"
        return line

    lines: list[str] = []
    sections = [
        ("Added", len(diff.added), [f"- {lit(shown(i))}" for i in sorted(diff.added)]),
        ("Removed", len(diff.removed), [removed_line(i) for i in sorted(diff.removed)]),
        (
            "Changed",
            len({c.id for c in diff.changed}),
            [
                f"- {lit(shown(c.id))}: {lit(shown(c.field))} "
                f"{lit(show_change(c.field, c.old, c.new))}"
                for c in diff.changed
            ],
        ),
    ]
    for heading, count, entries in sections:
        if not entries:
            continue
        if lines:
            lines.append("")
        lines.append(f"**{heading} ({count}):**" if markdown else f"{heading} ({count}):")
        lines.extend(entries[:MAX_LINES])
        if len(entries) > MAX_LINES:
            what = "field changes" if heading == "Changed" else "models"
            lines.append(
                f"- … and {len(entries) - MAX_LINES} more {what} "
                f"(monitor changes --target {target})"
            )
    lines.append("")
    lines.append(f"Target {target}, detected {_when(detected_at)}.")
    return Message(title=f"{target}: {diff.summary()}", body="\n".join(lines))


def mute_summary(
    items: Sequence[tuple[DeliveryRecord, Mapping[str, int]]], ended: datetime
) -> tuple[str, str]:
    """The one message per URL of the changes a mute held back:
    ``while muted: 1 target, 2 added, 1 removed``, then each target's changes."""
    title, body = digest_message(items, ended, heading="while muted")
    return title, body.replace("Digest of", "Held back by a mute:", 1)


def digest_message(
    items: Sequence[tuple[DeliveryRecord, Mapping[str, int]]],
    window_end: datetime,
    *,
    heading: str = "model changes",
) -> tuple[str, str]:
    """One message of the alerts a digest route collected in a window, across targets:
    ``model changes: 3 targets, 5 added, 2 removed``, then each target's alerts."""
    targets = sorted({d.target for d, _ in items})
    totals = {key: sum(s.get(key, 0) for _, s in items) for key in DIGEST_COUNTS}
    counted = [f"{n} {key}" for key, n in totals.items() if n]
    title = f"{heading}: {len(targets)} target{'s' if len(targets) != 1 else ''}"
    title += "".join(f", {c}" for c in counted)
    lines: list[str] = []
    for target in targets:
        for delivery, _ in items:
            if delivery.target != target:
                continue
            if lines:
                lines.append("")
            lines.append(f"**{markdown_literal(shown(delivery.title))}**")
            lines.append(delivery.body)
    lines += ["", f"Digest of {len(items)} alerts up to {_when(window_end)}."]
    return title, "\n".join(lines)


# what a digest's title counts, in this order
DIGEST_COUNTS = ("added", "removed", "changed", "down", "recovered")


def _same(text: str) -> str:
    return text


def test_message(target: str | None, now: datetime) -> Message:
    scope = f"target {target}" if target else "all targets"
    return Message(
        title="model-monitor: test notification",
        body=f"This is a test from model-monitor for {scope}, sent {_when(now)}. "
        "If you can read it, alerts will reach you here.",
    )


def show_change(field: str, old: object, new: object) -> str:
    """``old → new`` for people; prices per token shown per 1M tokens, both the same way."""
    numbers = [_price(field, v) for v in (old, new)]
    if all(n is not None for n in numbers) and any(0 < abs(n) < 0.01 for n in numbers if n):
        a, b = (f"{n * 1_000_000:g}" for n in numbers if n is not None)
        return f"{a} → {b} per 1M tokens"
    return f"{show_value(field, old)} → {show_value(field, new)}"


def _price(field: str, value: object) -> float | None:
    if field.split(".")[0] != "pricing" or isinstance(value, bool) or value is None:
        return None
    if not isinstance(value, str | int | float):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def show_value(field: str, value: object) -> str:
    """A field's value for people: a price per token as per 1M tokens, absent as "none"."""
    if value is None:
        return "none"
    number = _price(field, value)
    if number is not None:
        if 0 < number < 0.01:  # OpenRouter: dollars per token
            return f"{number * 1_000_000:g} per 1M tokens"
        return f"{number:g}"
    if isinstance(value, str):
        return one_line(value, 200)
    import json

    return one_line(json.dumps(value, ensure_ascii=False, sort_keys=True), 200)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def down_message(
    target: str, *, error: str, failures: int, since: datetime, repeat: bool
) -> Message:
    still = "still " if repeat else ""
    error = printable(error)
    return Message(
        title=f"{target} is {still}down: {error}",
        body=(
            f"The model list of {target} has failed {failures} polls in a row "
            f"since {_when(since)}.\n\nLast error: {markdown_literal(error)}\n\n"
            "Model changes cannot be seen until it answers again; you will get one "
            "message when it does."
        ),
    )


def recovered_message(
    target: str, *, since: datetime, duration: timedelta, at: datetime
) -> Message:
    return Message(
        title=f"{target} is back after {format_duration(duration)}",
        body=(
            f"The model list of {target} answers again ({_when(at)}); it was down "
            f"for {format_duration(duration)}, since {_when(since)}."
        ),
    )


def format_duration(duration: timedelta) -> str:
    """``"2h 5m"``, ``"3m 20s"``, ``"45s"``: the two largest units."""
    seconds = int(duration.total_seconds())
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])
