"""``/api/v1/``: the history as JSON, each answer the same value the matching CLI
command prints with ``--json`` (built by :mod:`monitor.views`), with the same filters:
``target``, ``since`` (ISO 8601 or an age such as ``7d``) and ``limit``; the listings
(history, changes, events, deliveries) also take ``before=ID`` for the next page.

A request the API cannot answer is ``{"error": "..."}`` naming the parameter and the
value: 400 for a bad parameter, 404 for something that is not there, 503 when the
database does not answer.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.config import Config, parse_moment
from monitor.errors import ConfigError, MonitorError, NotFoundError, StorageError
from monitor.globs import glob_problem
from monitor.store import Store
from monitor.views import (
    change_json,
    check_target,
    configured_urls,
    delivery_json,
    diff_view,
    json_text,
    model_view,
    models_view,
    only_target,
    snapshot_json,
    snapshot_view,
    target_event_json,
    targets_view,
)

MAX_LIMIT = 10_000
# changes and events a call returns unless it says limit=: the CLI prints them all, the
# API a page at a time (a full page's Link header names the next one)
PAGE = 1_000


@dataclass(frozen=True)
class Page:
    """A listing's answer: its items, and the ``before`` of the next page, if any."""

    items: list[Any]
    next_before: int | None


DELIVERY_STATES = ("pending", "sent", "dead", "held", "digested", "muted", "suppressed")


class BadRequest(MonitorError):
    """A query parameter the API cannot use."""


def routes(config: Callable[[], Config], store: Store, now: Callable[[], datetime]) -> list[Route]:
    """The API's routes over ``store``; ``config`` gives the config in force."""

    def answer(read: Callable[[Request], Any]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                value = read(request)
            except BadRequest as exc:
                return _json({"error": str(exc)}, 400)
            except NotFoundError as exc:
                return _json({"error": str(exc)}, 404)
            except StorageError as exc:
                return _json({"error": str(exc)}, 503)
            if isinstance(value, Page):
                response = _json(value.items, 200)
                if value.next_before is not None:  # a full page: there may be more
                    query = {k: v for k, v in request.query_params.items() if k != "before"}
                    query["before"] = str(value.next_before)
                    link = f"{request.url.path}?{urllib.parse.urlencode(query)}"
                    response.headers["Link"] = f'<{link}>; rel="next"'
                return response
            return _json(value, 200)

        return endpoint

    def page(request: Request, rows: Sequence[Any], items: list[Any], default: int) -> Page:
        """A listing's page: ``items`` (the rows' JSON), and the next page's ``before``
        when the page is full."""
        full = len(rows) == (limit_of(request, default) or default)
        return Page(items, rows[-1].id if full and rows else None)

    def target_of(request: Request, *, required: bool = False) -> str | None:
        name = request.query_params.get("target") or None
        if name is None and required:
            try:
                return only_target(config(), "target")
            except ConfigError as exc:
                raise BadRequest(str(exc)) from None
        check_target(config(), store, name)
        return name

    def filters(request: Request, default_limit: int | None = None) -> dict[str, Any]:
        return {
            "target": target_of(request),
            "since": time_of(request, "since", now()),
            "limit": limit_of(request, default_limit),
        }

    def targets(_: Request) -> list[dict[str, Any]]:
        return targets_view(config().targets, store, now())

    def history(request: Request) -> Any:
        rows = store.history(**filters(request, 50), before=before_of(request))
        return page(request, rows, [snapshot_json(s) for s in rows], 50)

    def snapshot(request: Request) -> Any:
        return snapshot_view(store, id_of(request.path_params["snapshot_id"], "snapshot id"))

    def changes(request: Request) -> Any:
        rows = store.changes(
            **filters(request, PAGE), before=before_of(request), models=model_globs_of(request)
        )
        return page(request, rows, [change_json(c) for c in rows], PAGE)

    def models(request: Request) -> Any:
        name = target_of(request, required=True)
        assert name is not None
        at = time_of(request, "at", now()) or now()
        return models_view(store, name, at)

    def diff(request: Request) -> Any:
        return diff_view(store, *diff_ids(request))

    def events(request: Request) -> Any:
        rows = store.target_events(**filters(request, PAGE), before=before_of(request))
        return page(request, rows, [target_event_json(e) for e in rows], PAGE)

    def deliveries(request: Request) -> Any:
        rows, _ = store.deliveries(
            status=status_of(request), **filters(request, 50), before=before_of(request)
        )
        configured, moment = configured_urls(config()), now()
        return page(request, rows, [delivery_json(d, moment, configured) for d in rows], 50)

    def model(request: Request) -> Any:
        model_id = request.query_params.get("id")
        if not model_id:
            raise BadRequest("id: a model ID is required (model?id=meta-llama/llama-3.3-70b)")
        return model_view(store, model_id, target_of(request))

    return [
        Route("/api/v1/targets", answer(targets)),
        Route("/api/v1/history", answer(history)),
        Route("/api/v1/snapshots/{snapshot_id}", answer(snapshot)),
        Route("/api/v1/changes", answer(changes)),
        Route("/api/v1/models", answer(models)),
        Route("/api/v1/diff", answer(diff)),
        Route("/api/v1/events", answer(events)),
        Route("/api/v1/deliveries", answer(deliveries)),
        Route("/api/v1/model", answer(model)),
    ]


def _json(value: Any, status: int) -> Response:
    return Response(json_text(value) + "\n", status, media_type="application/json")


def id_of(text: str, name: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise BadRequest(f"{name}: {text!r} is not an id (a positive whole number)")
    return int(text)


def diff_ids(request: Request) -> tuple[int, int]:
    """``from=A&to=B``: the two snapshots a diff compares."""
    for key in ("from", "to"):
        if key not in request.query_params:
            raise BadRequest(f"{key}: a snapshot id is required (diff?from=A&to=B)")
    return id_of(request.query_params["from"], "from"), id_of(request.query_params["to"], "to")


def model_globs_of(request: Request) -> tuple[str, ...]:
    """``model=GLOB`` (repeatable): the changes touching a matching model."""
    globs = tuple(g for g in request.query_params.getlist("model") if g)
    for glob in globs:
        if problem := glob_problem(glob):
            raise BadRequest(f"model: {glob!r} {problem}")
    return globs


def status_of(request: Request) -> str | None:
    """``status=``: the deliveries in one state (pending, sent or dead)."""
    status = request.query_params.get("status") or None
    if status not in (None, *DELIVERY_STATES):
        raise BadRequest(f"status: {status!r} is not one of {', '.join(DELIVERY_STATES)}")
    return status


def before_of(request: Request) -> int | None:
    """``before=ID``: the next page, the rows after the one with this id (the last one
    of the page before)."""
    text = request.query_params.get("before")
    return id_of(text, "before") if text else None


def limit_of(request: Request, default: int | None) -> int | None:
    text = request.query_params.get("limit")
    if text is None or text == "":
        return default
    if not text.isdigit() or not 0 < int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit: {text!r} is not a whole number from 1 to {MAX_LIMIT:,}")
    return int(text)


def time_of(request: Request, name: str, now: datetime) -> datetime | None:
    """``name`` as ISO 8601 (naive means UTC), ``now``, or an age like ``2h``."""
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return parse_moment(text, now)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"{name}: {text!r} is not a time; use ISO 8601 (2026-11-26T10:00Z), 'now', "
            "or an age like 2h or 7d"
        ) from None
