"""The dashboard's pages: server-rendered HTML (Jinja2, everything escaped), usable
without JavaScript, each built from the same views as the JSON API
(:mod:`monitor.views`), every listing linking to the related pages."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, Undefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from monitor.config import Config
from monitor.errors import NotFoundError, StorageError
from monitor.store import Store
from monitor.views import (
    change_json,
    check_target,
    configured_urls,
    delivery_json,
    diff_view,
    iso,
    model_view,
    snapshot_json,
    snapshot_view,
    target_event_json,
    targets_view,
)
from monitor.web.api import (
    BadRequest,
    before_of,
    diff_ids,
    id_of,
    limit_of,
    model_globs_of,
    status_of,
    time_of,
)

PAGE = 50  # rows of a listing page
RECENT = 20  # changes on the overview and a target's page
CHART_POLLS = 2000  # polls a target's chart reads, newest first
MATRIX_ROWS = 100  # models a page of the matrix shows


def model_url(model_id: str) -> str:
    """``/models/<id>``: the ID in the path, slashes kept, anything else encoded."""
    return "/models/" + urllib.parse.quote(model_id, safe="/")


def target_url(name: str) -> str:
    return "/targets/" + urllib.parse.quote(name, safe="")


def _shown(value: Any) -> str:
    """A field's value as text: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, Undefined):  # a field this model lacks
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _when(iso_text: str | None) -> str:
    """An ISO 8601 UTC time as people read it: ``2026-11-30 17:34:05 UTC``."""
    if not iso_text:
        return ""
    return iso_text[:19].replace("T", " ") + " UTC"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("monitor.web", "templates"), autoescape=True)
    env.globals.update(model_url=model_url, target_url=target_url)
    env.filters["shown"] = _shown
    env.filters["when"] = _when
    return env


def routes(config: Callable[[], Config], store: Store, now: Callable[[], datetime]) -> list[Route]:
    env = _environment()

    def page(
        render: Callable[[Request], tuple[str, dict[str, Any]] | Response],
    ) -> Callable[..., Response]:
        def endpoint(request: Request) -> Response:
            try:
                rendered = render(request)
                if isinstance(rendered, Response):  # a redirect
                    return rendered
                template, context = rendered
                status = 200
            except BadRequest as exc:
                template, context, status = "error.html", _error(400, "Bad request", exc), 400
            except NotFoundError as exc:
                template, context, status = "error.html", _error(404, "Not found", exc), 404
            except StorageError as exc:
                template, context, status = "error.html", _error(503, "No database", exc), 503
            html = env.get_template(template).render(**context)
            return HTMLResponse(html, status)

        return endpoint

    def names() -> list[str]:
        return [t.name for t in config().targets]

    def overview(_: Request) -> tuple[str, dict[str, Any]]:
        changes = [change_json(c) for c in store.changes(limit=RECENT)]
        return "overview.html", {
            "targets": targets_view(config().targets, store, now()),
            "changes": changes,
        }

    def target(request: Request) -> tuple[str, dict[str, Any]]:
        name = request.path_params["name"]
        configured = next((t for t in config().targets if t.name == name), None)
        if configured is None:
            raise NotFoundError(f"no target {name!r} is configured")
        (status,) = targets_view([configured], store, now())
        good = store.models_at(name, now())
        models = store.models(good) if good is not None else []
        q = request.query_params.get("q", "").strip()
        columns = ["id", *configured.watch_fields]
        sort = request.query_params.get("sort", "id")
        if sort not in columns:
            sort = "id"
        rows = [[m.get("id"), *(_field(m, f) for f in configured.watch_fields)] for m in models]
        if q:
            rows = [r for r in rows if q.lower() in str(r[0]).lower()]
        index = columns.index(sort)
        descending = request.query_params.get("dir") == "desc"
        rows = _sorted(rows, index, descending)
        polls = store.history(target=name, limit=CHART_POLLS)
        return "target.html", {
            "target": status,
            "snapshot_id": good.id if good is not None else None,
            "rows": rows,
            "columns": columns,
            "q": q,
            "sort": sort,
            "descending": descending,
            "chart_polls": len(polls),
            "chart_since": iso(polls[-1].fetched_at) if polls else None,
            "changes": [change_json(c) for c in store.changes(target=name, limit=RECENT)],
            "failed": [snapshot_json(s) for s in polls[:500] if not s.ok][:RECENT],
            "recent": min(500, len(polls)),
            "chart": count_chart([(s.fetched_at, s.model_count) for s in polls if s.ok]),
        }

    def changes(request: Request) -> tuple[str, dict[str, Any]]:
        read = store.changes(**filters(request), models=model_globs_of(request))
        rows, pager = _paged(request, read)
        context = {
            "changes": [change_json(c) for c in rows],
            "model": request.query_params.get("model") or "",
            **form(request, "/changes"),
        }
        return "changes.html", {**context, **pager}

    def one_change(request: Request) -> Response:
        """``/changes/ID``: a change is the difference of its two snapshots."""
        change = store.change(id_of(request.path_params["change_id"], "change id"))
        where = f"/diff?from={change.from_snapshot_id}&to={change.to_snapshot_id}"
        return RedirectResponse(where, 303)

    def model(request: Request) -> tuple[str, dict[str, Any]]:
        return "model.html", {"life": model_view(store, request.path_params["model_id"])}

    def matrix(request: Request) -> tuple[str, dict[str, Any]]:
        q = request.query_params.get("q", "").strip()
        targets = names()
        listed_by = store.listed_now(targets)
        ids = sorted({i for listed in listed_by.values() for i in listed if q.lower() in i.lower()})
        page_no = _page_number(request)
        shown = ids[(page_no - 1) * MATRIX_ROWS : page_no * MATRIX_ROWS]
        rows = [(i, [i in listed_by[n] for n in targets]) for i in shown]
        more = len(ids) > page_no * MATRIX_ROWS
        query = urllib.parse.urlencode({"q": q, "page": page_no + 1})
        return "matrix.html", {
            "names": targets,
            "rows": rows,
            "q": q,
            "total": len(ids),
            "first": (page_no - 1) * MATRIX_ROWS + 1,
            "next_url": f"/matrix?{query}" if more else None,
        }

    def snapshot(request: Request) -> tuple[str, dict[str, Any]]:
        snapshot_id = id_of(request.path_params["snapshot_id"], "snapshot id")
        return "snapshot.html", {"s": snapshot_view(store, snapshot_id)}

    def diff(request: Request) -> tuple[str, dict[str, Any]]:
        return "diff.html", {"d": diff_view(store, *diff_ids(request))}

    def filters(request: Request) -> dict[str, Any]:
        """``target`` and ``since`` of a listing page, and what its form shows."""
        target = request.query_params.get("target") or None
        check_target(config(), store, target)
        return {
            "target": target,
            "since": time_of(request, "since", now()),
            "limit": _page_limit(request),
            "before": before_of(request),
        }

    def form(request: Request, action: str) -> dict[str, Any]:
        return {
            "action": action,
            "target_names": names(),
            "target": request.query_params.get("target") or None,
            "since": request.query_params.get("since") or None,
        }

    def events(request: Request) -> tuple[str, dict[str, Any]]:
        rows, pager = _paged(request, store.target_events(**filters(request)))
        context = {"events": [target_event_json(e) for e in rows], **form(request, "/events")}
        return "events.html", {**context, **pager}

    def deliveries(request: Request) -> tuple[str, dict[str, Any]]:
        status = status_of(request)
        read, total = store.deliveries(status=status, **filters(request))
        rows, pager = _paged(request, read)
        configured, moment = configured_urls(config()), now()
        return "deliveries.html", {
            "deliveries": [delivery_json(d, moment, configured) for d in rows],
            "total": total,
            "status": status,
            **form(request, "/deliveries"),
            **pager,
        }

    return [
        Route("/", page(overview)),
        Route("/targets/{name}", page(target)),
        Route("/changes", page(changes)),
        Route("/changes/{change_id}", page(one_change)),
        Route("/models/{model_id:path}", page(model)),
        Route("/matrix", page(matrix)),
        Route("/snapshots/{snapshot_id}", page(snapshot)),
        Route("/diff", page(diff)),
        Route("/events", page(events)),
        Route("/deliveries", page(deliveries)),
    ]


def _sorted(rows: list[list[Any]], index: int, descending: bool) -> list[list[Any]]:
    """Rows by one column: numbers as numbers (before text), text as shown, empty
    cells last either way; ties by ID."""

    def key(row: list[Any]) -> tuple[Any, ...]:
        value = row[index]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return (0 if number else 1, value if number else 0, _shown(value), _shown(row[0]))

    present = sorted((r for r in rows if r[index] is not None), key=key, reverse=descending)
    return present + sorted((r for r in rows if r[index] is None), key=key)


def _field(model: dict[str, Any], path: str) -> Any:
    """A dotted field of a model object (``pricing.prompt``), None when absent."""
    value: Any = model
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _paged(request: Request, rows: Sequence[Any]) -> tuple[Sequence[Any], dict[str, Any]]:
    """The rows of a listing page, read one past the page (:func:`_page_limit`), and the
    link to the next page (``before=`` the last shown row's id) when there is one."""
    size = limit_of(request, PAGE) or PAGE
    if len(rows) <= size:
        return rows, {"next_before": None, "next_url": None}
    shown = rows[:size]
    params = {k: v for k, v in request.query_params.items() if k != "before"}
    params["before"] = str(shown[-1].id)
    return shown, {
        "next_before": shown[-1].id,
        "next_url": request.url.path + "?" + urllib.parse.urlencode(params),
    }


def _page_limit(request: Request) -> int:
    """Rows to read for a listing page: one more than it shows, to know whether an older
    page exists."""
    return (limit_of(request, PAGE) or PAGE) + 1


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    if not text.isdigit() or not 0 < int(text) <= 100_000:
        raise BadRequest(f"page: {text!r} is not a page number")
    return int(text)


def _error(status: int, title: str, exc: Exception) -> dict[str, Any]:
    return {"status": status, "title": title, "message": str(exc)}


def count_chart(points: Sequence[tuple[datetime, int | None]], width: int = 720) -> str:
    """An SVG line of a target's model count over its polls (newest first in), oldest
    on the left; no script, no external font."""
    series = [(at, count) for at, count in reversed(points) if count is not None]
    height, pad = 160, 36
    if len(series) < 2:
        return '<p class="muted">Not enough good polls for a chart yet.</p>'
    t0, t1 = series[0][0].timestamp(), series[-1][0].timestamp()
    low, high = min(c for _, c in series), max(c for _, c in series)
    span_t, span_c = max(t1 - t0, 1.0), max(high - low, 1)

    def x(at: datetime) -> float:
        return pad + (at.timestamp() - t0) / span_t * (width - 2 * pad)

    def y(count: int) -> float:
        return height - pad / 2 - (count - low) / span_c * (height - pad)

    steps: list[str] = []
    previous: int | None = None
    for at, count in series:  # a step line: the count holds until the next poll
        if previous is not None and count != previous:
            steps.append(f"{x(at):.1f},{y(previous):.1f}")
        steps.append(f"{x(at):.1f},{y(count):.1f}")
        previous = count
    first, last = series[0][0], series[-1][0]
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="model count from {low} to {high}">'
        f'<polyline points="{" ".join(steps)}"/>'
        f'<text x="2" y="{y(high) + 4:.0f}">{high}</text>'
        f'<text x="2" y="{y(low) + 4:.0f}">{low}</text>'
        f'<text x="{pad}" y="{height - 2}">{first:%Y-%m-%d %H:%M}</text>'
        f'<text x="{width - pad}" y="{height - 2}" text-anchor="end">{last:%Y-%m-%d %H:%M}</text>'
        "</svg>"
    )
