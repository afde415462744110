"""What an alert says. Pure: values in, a title and a body out.

Bodies are Markdown that also reads well as plain text (email, SMS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.diff import ModelDiff


@dataclass(frozen=True)
class Message:
    title: str
    body: str


def change_message(target: str, diff: ModelDiff, detected_at: datetime) -> Message:
    lines = []
    if diff.added:
        lines.append(f"**Added ({len(diff.added)}):**")
        lines.extend(f"- `{model_id}`" for model_id in sorted(diff.added))
    if diff.removed:
        if lines:
            lines.append("")
        lines.append(f"**Removed ({len(diff.removed)}):**")
        lines.extend(f"- `{model_id}`" for model_id in sorted(diff.removed))
    lines.append("")
    lines.append(f"Target `{target}`, detected {_when(detected_at)}.")
    return Message(title=f"{target}: {diff.summary()}", body="\n".join(lines))


def test_message(target: str | None, now: datetime) -> Message:
    scope = f"target `{target}`" if target else "all targets"
    return Message(
        title="model-monitor: test notification",
        body=f"This is a test from model-monitor for {scope}, sent {_when(now)}. "
        "If you can read it, alerts will reach you here.",
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
