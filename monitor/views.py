"""What the history looks like as JSON: the values ``--json`` prints and the web API
serves, built in one place so the two always agree.

Record to JSON (``snapshot_json``, ``change_json``, ...) is pure; the views of a whole
answer (``snapshot_view``, ``models_view``, ``diff_view``, ``model_view``) read what they
need from the store they are given. :func:`json_text` writes any of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitor.errors import ConfigError, NotFoundError

if TYPE_CHECKING:  # the records come with SQLAlchemy: rendering JSON loads none of it
    from monitor.config import Config, Target
    from monitor.store import (
        ChangeRecord,
        DeliveryRecord,
        ModelEvent,
        ModelLife,
        SnapshotRecord,
        Store,
        TargetEventRecord,
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
        "still_at": {model: list(targets) for model, targets in c.still_at},
    }


def given_up_at(d: DeliveryRecord, now: datetime) -> datetime | None:
    """When a dead delivery was given up: the outbox sets its next attempt to that
    moment. A row closed another way (an older 'retry --to-current') may keep a next
    attempt in the future: then the moment is not known."""
    if d.status != "dead" or d.next_attempt_at > now:
        return None
    return d.next_attempt_at


def held_until(d: DeliveryRecord, now: datetime) -> datetime | None:
    """Until when a sender holds the delivery, while one does (it may be sending it)."""
    return d.lease_until if d.being_sent(now) else None


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
        "given_up_at": iso(given_up) if (given_up := given_up_at(d, now)) else None,
        "lease_until": iso(lease) if (lease := held_until(d, now)) else None,
        "url_in_config": d.url_hash in configured,
        "digest_at": iso(d.next_attempt_at) if d.status == "held" else None,
        "digest_id": d.digest_id,
    }


def model_event_json(event: ModelEvent) -> dict[str, Any]:
    """One entry of ``monitor model --json``'s events."""
    entry: dict[str, Any] = {"at": iso(event.at), "what": event.what}
    if event.change is not None:
        change = event.change
        entry.update(field=change.field, old=change.old, new=change.new)
    return {**entry, "event_id": event.change_id}


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


def check_target(config: Config, store: Store, name: str | None) -> None:
    """A ``target`` filter names a configured target or one in the history
    (NotFoundError otherwise); None is no filter."""
    if name is None or any(t.name == name for t in config.targets) or store.has_target(name):
        return
    known = ", ".join(t.name for t in config.targets) or "none configured"
    raise NotFoundError(f"unknown target {name!r} (configured: {known})")


def only_target(config: Config, key: str) -> str:
    """The one configured target, for a query that needs one and was not given any
    (ConfigError naming ``key`` when there are several or none)."""
    if len(config.targets) != 1:
        names = ", ".join(t.name for t in config.targets) or "none"
        raise ConfigError(f"{key}: pick one of the configured targets ({names})")
    return config.targets[0].name


def configured_urls(config: Config) -> set[str]:
    """The hashes deliveries name their URLs by, of every URL in ``config``: whether a
    delivery's URL is still configured."""
    from monitor.notify.outbox import url_hash

    return {url_hash(u) for u in config.all_urls()}


def snapshot_view(store: Store, snapshot_id: int) -> dict[str, Any]:
    """``monitor show ID --json``: a poll and its models (NotFoundError when none)."""
    snapshot = store.snapshot(snapshot_id)
    return {**snapshot_json(snapshot), "models": store.models(snapshot)}


def models_view(store: Store, target: str, when: datetime) -> dict[str, Any]:
    """``monitor models --json``: what ``target`` listed at ``when`` (its latest good poll
    then; NotFoundError when there is none)."""
    snapshot = store.models_at(target, when)
    if snapshot is None:
        raise NotFoundError(f"no good poll of {target!r} at or before {iso(when)}")
    return {
        "target": target,
        "at": iso(when),
        "snapshot_id": snapshot.id,
        "models": store.models(snapshot),
    }


def diff_view(store: Store, snapshot_a: int, snapshot_b: int) -> dict[str, Any]:
    """``monitor diff A B --json``: model IDs added and removed from A to B."""
    from monitor.diff import diff_models

    lists = []
    for snapshot_id in (snapshot_a, snapshot_b):
        snapshot = store.snapshot(snapshot_id)
        if not snapshot.ok:
            raise NotFoundError(
                f"snapshot {snapshot_id} is a failed poll ({snapshot.error}); it has no models"
            )
        lists.append((snapshot, frozenset(m["id"] for m in store.models(snapshot))))
    (a, ids_a), (b, ids_b) = lists
    result = diff_models(ids_a, ids_b)
    return {
        "from": {"id": a.id, "target": a.target, "fetched_at": iso(a.fetched_at)},
        "to": {"id": b.id, "target": b.target, "fetched_at": iso(b.fetched_at)},
        "added": sorted(result.added),
        "removed": sorted(result.removed),
    }


def model_view(store: Store, model_id: str, target: str | None = None) -> dict[str, Any]:
    """``monitor model ID --json``: the model's life on every target that listed it."""
    lives = store.model_life(model_id, target=target)
    if not lives:
        raise NotFoundError(f"no poll ever listed a model {model_id!r}")
    return model_json(model_id, lives)


def model_json(model_id: str, lives: Sequence[ModelLife]) -> dict[str, Any]:
    return {
        "id": model_id,
        "targets": [
            {
                "target": life.sighting.target,
                "first_seen": iso(life.sighting.first_seen),
                "last_seen": iso(life.sighting.last_seen),
                "listed_now": life.sighting.present,
                "events": [model_event_json(e) for e in life.events],
            }
            for life in lives
        ],
    }


def targets_view(targets: Sequence[Target], store: Store, now: datetime) -> list[dict[str, Any]]:
    """``/api/v1/targets``: each configured target now: its status (``ok``,
    ``failing``, ``down`` once ``alert_after_failures`` polls failed in a row, or
    ``unknown`` before its first poll), why, its model count and its last good poll
    and change."""
    summaries = store.target_summaries([t.name for t in targets])
    out = []
    for target in targets:
        summary = summaries.get(target.name)
        failures = summary.failures if summary is not None else 0
        reason = None
        if summary is None or summary.last_poll_at is None:
            status, reason = "unknown", "not polled yet"
        elif failures == 0:
            status = "ok"
        else:
            status = "down" if failures >= target.alert_after_failures else "failing"
            reason = summary.last_error

        out.append(
            {
                "name": target.name,
                "status": status,
                "reason": reason,
                "model_count": summary.good_count if summary is not None else None,
                "last_poll_at": _iso_or_none(summary.last_poll_at if summary else None),
                "last_good_at": _iso_or_none(summary.last_good_at if summary else None),
                "last_change_at": _iso_or_none(summary.last_change_at if summary else None),
                "consecutive_failures": failures,
            }
        )
    return out


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None
