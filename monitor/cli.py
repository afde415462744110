"""The ``monitor`` command line. Thin: parse options, call the core, print.

It fails in one way: a :class:`~monitor.errors.MonitorError` becomes one line
on stderr and an exit code (2 for a bad config, option, snapshot or target;
1 for anything else), never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import structlog

from monitor import __version__
from monitor.config import (
    Config,
    Secret,
    duration_seconds,
    find_config_path,
    load_config,
    resolve_key,
    verify,
)
from monitor.errors import ConfigError, MonitorError, NotFoundError
from monitor.logs import LEVELS, configure_logging
from monitor.text import printable, shown

if TYPE_CHECKING:  # the store loads SQLAlchemy: only commands that need it import it
    from monitor.store import ModelEvent, ModelLife, Store

F = TypeVar("F", bound=Callable[..., Any])
_T = TypeVar("_T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = structlog.get_logger("monitor.cli")


if TYPE_CHECKING:  # newer click types ParamType by its value; older click takes no arguments
    _IntType = click.ParamType[int, Any]
else:
    _IntType = click.ParamType


class WholeNumber(_IntType):
    """A whole number from 1, as ids and limits are; an error says what was expected:
    ``SNAPSHOT_ID: 'abc' is not a snapshot id (a whole number from 1)``."""

    name = "integer"

    def __init__(self, what: str | None = None, maximum: int = 2**63 - 1) -> None:
        self.what = what  # "a snapshot id"; None: just "a whole number from 1"
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number: int | None = value
        else:
            text = str(value).strip()
            number = int(text) if text.isascii() and text.isdigit() else None
        if number is not None and 1 <= number <= self.maximum:
            return number
        expected = "a whole number from 1"
        if number is not None and number > self.maximum:
            expected += f" to {self.maximum}"
        shown = repr(str(value))
        if self.what:
            self.fail(f"{shown} is not {self.what} ({expected})", param, ctx)
        self.fail(f"{shown} is not {expected}", param, ctx)


SNAPSHOT_ID = WholeNumber("a snapshot id")
DELIVERY_ID = WholeNumber("a delivery id")
LIMIT = WholeNumber()


class _StrictParsing:
    """Options are given once: a repeated option, or two flags that set the same value
    (``--pending --dead``), is a usage error instead of the last one silently winning."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)  # type: ignore[misc]
        parse = parser.parse_args

        def parse_once(args: list[str]) -> Any:
            opts, rest, order = parse(args)
            _refuse_repeats(ctx, order)
            return opts, rest, order

        parser.parse_args = parse_once
        return parser


def _refuse_repeats(ctx: click.Context, order: Sequence[click.Parameter]) -> None:
    seen: dict[str | None, click.Parameter] = {}
    for i, param in enumerate(order):
        if not isinstance(param, click.Option) or param.multiple or param.count:
            continue
        first = seen.setdefault(param.name, param)
        if first is not param:
            raise click.UsageError(
                f"{_option_name(first)} and {_option_name(param)} cannot be combined; pick one",
                ctx,
            )
        if param in order[:i] and not param.is_flag:  # a flag twice asks for one thing
            raise click.UsageError(f"{_option_name(param)} given twice; give it once", ctx)


def _option_name(param: click.Parameter) -> str:
    return "/".join(param.opts) if isinstance(param, click.Option) else param.human_readable_name


class _Command(_StrictParsing, click.Command):
    pass


class _Group(_StrictParsing, click.Group):
    command_class = _Command
    group_class = type  # subgroups are _Group too


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class State:
    config_path: str | None = None
    log_level: str = "info"
    given_level: str | None = None  # --log-level as given on the command line
    _config: Config | None = field(default=None, repr=False)
    after_commit: Callable[[], None] | None = None  # see main()

    def config(self) -> Config:
        if self._config is None:
            path = find_config_path(self.config_path, os.environ)
            self._config = load_config(path, os.environ)
        return self._config


def _fatal(message: str, code: int = EXIT_FAILED, hint: str | None = None) -> NoReturn:
    # one line, whatever the message carried; a provider's bytes never drive the terminal
    message = printable(" ".join(message.split()))
    click.echo(f"monitor: error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


def _set_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        state = ctx.ensure_object(State)
        _once_across_levels(ctx, param, state.config_path, value)
        state.config_path = value


def _set_level(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        state = ctx.ensure_object(State)
        _once_across_levels(ctx, param, state.given_level, value)
        state.log_level = state.given_level = value


def _once_across_levels(
    ctx: click.Context, param: click.Parameter, before: str | None, now: str
) -> None:
    """``-c`` and ``--log-level`` may come before or after the subcommand, not both
    with different values."""
    if before is not None and before != now:
        raise click.UsageError(
            f"{_option_name(param)} given twice ({before!r} and {now!r}); give it once", ctx
        )


def common(func: F) -> F:
    """``-c/--config`` and ``--log-level``, accepted on the group and every subcommand."""
    func = click.option(
        "-c",
        "--config",
        type=click.Path(dir_okay=False),
        expose_value=False,
        is_eager=True,
        callback=_set_config,
        help="Config file (default: $MONITOR_CONFIG, else /etc/model-monitor/config.toml).",
    )(func)
    func = click.option(
        "--log-level",
        type=click.Choice(LEVELS, case_sensitive=False),
        expose_value=False,
        is_eager=True,
        callback=_set_level,
        help="Least severe log level to show (default: info).",
    )(func)
    return func


def event_filters(func: F) -> F:
    """--target, --since, --limit and --json, as the event listings take them."""
    func = json_option(func)
    func = click.option("--limit", type=LIMIT, default=None)(func)
    func = click.option("--since", metavar="TIME", help="ISO 8601 time, or an age like 2h or 7d.")(
        func
    )
    return click.option("--target", "target_name", metavar="NAME", help="Only this target.")(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="model-monitor")
@common
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Watch LLM providers' model lists; alert when a model appears or disappears."""
    _ROOT_STATE[:] = [ctx.ensure_object(State)]


def main(*, after_commit: Callable[[], None] | None = None) -> None:
    """The ``monitor`` console script. ``after_commit`` is a seam for tests only, called
    right after each poll of ``run`` or ``check`` commits (tests/e2e/launcher.py crashes
    or hangs the process there); the console script passes none, and no environment
    variable or config key sets one."""
    try:
        cli.main(prog_name="monitor", standalone_mode=False, obj=State(after_commit=after_commit))
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        _fatal("aborted", EXIT_FAILED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f"see '{exc.ctx.command_path} --help'" if exc.ctx else None
        _fatal(_usage_message(exc), EXIT_USAGE, hint)
    except click.ClickException as exc:
        _fatal(exc.format_message(), exc.exit_code)
    except (ConfigError, NotFoundError) as exc:
        _fatal(str(exc), EXIT_USAGE)
    except MonitorError as exc:
        _fatal(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, the traceback only when asked for
        if _root_state().log_level == "debug":
            import traceback

            traceback.print_exc()
        _fatal(
            f"internal error: {type(exc).__name__}: {exc}",
            EXIT_FAILED,
            "please report it; --log-level debug shows the traceback",
        )


def _usage_message(exc: click.UsageError) -> str:
    """Click's complaint in our form, on one line: ``--limit: '0' is not a whole number
    from 1``, ``missing option --format (json or csv)``."""
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        param = exc.param
        kind = "option" if isinstance(param, click.Option) else "argument"
        message = f"missing {kind} {_option_name(param)}"
        if isinstance(param.type, click.Choice):
            *most, last = [str(c) for c in param.type.choices]
            message += f" ({', '.join(most)} or {last})" if most else f" ({last})"
        return message
    if isinstance(exc, click.BadParameter):
        named = exc.param_hint or (_option_name(exc.param) if exc.param is not None else None)
        if named:
            where = named if isinstance(named, str) else "/".join(named)
            return f"{where}: {exc.message}"
    return exc.format_message()


_ROOT_STATE: list[State] = []


def _root_state() -> State:
    return _ROOT_STATE[0] if _ROOT_STATE else State()


# -- helpers -------------------------------------------------------------------


def _state() -> State:
    return click.get_current_context().ensure_object(State)


def _logging(stream: Any = None) -> None:
    configure_logging(_state().log_level, stream=stream)


@contextmanager
def _open_store(*, write: bool) -> Iterator[Any]:
    """The store of the configured database; writers migrate it first."""
    from sqlalchemy.engine import make_url

    from monitor.redact import LOGGED
    from monitor.store import Store, open_engine, upgrade
    from monitor.store.engine import require_current

    config = _state().config()
    password = make_url(config.database_url).password
    if password:
        LOGGED.add(str(password))  # never in a log line, whatever a driver logs
    # two per poll in flight (its lock and its transaction), and a few for the rest
    engine = open_engine(
        config.database_url, create=write, connections=2 * config.max_concurrency + 4
    )
    try:
        if write:
            upgrade(engine)
        else:
            require_current(engine)
        store = Store(engine)
        yield store
    finally:
        engine.dispose()


def _keys(config: Config, names: Sequence[str]) -> dict[str, Secret | None]:
    return {t.name: resolve_key(t.api_key, os.environ) for t in config.targets if t.name in names}


def _read_rows(
    target_name: str | None, since: str | None, fetch: Callable[[Store, datetime | None], _T]
) -> _T:
    """What ``fetch`` reads from the database, ``--since`` parsed and ``--target``
    checked against the config and the history first."""
    _logging()
    since_at = parse_time(since, utcnow(), "--since") if since else None
    with _open_store(write=False) as store:
        _check_target(_state().config(), store, target_name)
        return fetch(store, since_at)


def _check_target(config: Config, store: Any, name: str | None) -> None:
    if name is None or any(t.name == name for t in config.targets) or store.has_target(name):
        return
    known = ", ".join(t.name for t in config.targets) or "none configured"
    raise NotFoundError(f"unknown target {name!r} (configured: {known})")


def parse_time(text: str, now: datetime, option: str) -> datetime:
    """ISO 8601 (naive means UTC), ``now``, or an age like ``2h`` or ``7d`` (that long ago)."""
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        age = duration_seconds(value) if value[-1:].isalpha() else None
        if age is not None:
            return now - timedelta(seconds=age)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time; use ISO 8601 (2026-11-26T10:00Z), 'now', "
            "or an age like 2h or 7d",
            param_hint=option,
        ) from None
    except OverflowError:
        raise click.BadParameter(f"{text!r} is out of range", param_hint=option) from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _print_json(value: Any) -> None:
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


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
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


def _snapshot_json(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "target": s.target,
        "fetched_at": _iso(s.fetched_at),
        "ok": s.ok,
        "http_status": s.http_status,
        "model_count": s.model_count if s.ok else None,
        "error": None if s.ok else s.error,
        "duration_ms": s.duration_ms,
    }


def _target_event_json(e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "target": e.target,
        "kind": e.kind,
        "at": _iso(e.at),
        "since": _iso(e.since),
        "failures": e.failures,
        "error": e.error,
        "duration_s": e.duration_s,
        "snapshot_id": e.snapshot_id,
    }


def _change_json(c: Any) -> dict[str, Any]:
    return {
        "id": c.id,
        "target": c.target,
        "detected_at": _iso(c.detected_at),
        "added": list(c.added),
        "removed": list(c.removed),
        "changed": [x.as_json() for x in c.changed],
        "from_snapshot_id": c.from_snapshot_id,
        "to_snapshot_id": c.to_snapshot_id,
    }


def _model_rows(models: Sequence[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for m in models:
        created = m.get("created")
        when = (
            _iso(datetime.fromtimestamp(created, UTC))
            if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2**33
            else ""
        )
        rows.append([shown(m["id"]), m.get("owned_by", ""), when])
    return rows


# -- commands ------------------------------------------------------------------


@cli.command()
@common
def run() -> None:
    """Run the daemon: poll every target on its interval until SIGTERM."""
    from monitor.daemon import Daemon
    from monitor.fetch import make_client
    from monitor.notify import AppriseSender
    from monitor.sdnotify import SystemdNotifier

    configure_logging(
        _state().log_level, stream=sys.stdout, journal=bool(os.environ.get("JOURNAL_STREAM"))
    )
    state = _state()
    config = state.config()
    keys = _prepare_polling(config, config.targets)

    def reload() -> tuple[Config, dict[str, Secret | None]]:
        fresh = load_config(find_config_path(state.config_path, os.environ), os.environ)
        return fresh, _prepare_polling(fresh, fresh.targets)

    notifier = SystemdNotifier.from_environ(os.environ)
    try:
        with _open_store(write=True) as store, make_client() as client:
            Daemon(
                config,
                store=store,
                client=client,
                sender=AppriseSender(),
                keys=keys,
                now=utcnow,
                reload=reload,
                notifier=notifier,
                after_commit=state.after_commit,
            ).run_until_stopped()
    finally:
        notifier.close()


@cli.command()
@common
@click.option("--target", "target_name", metavar="NAME", help="Poll only this target.")
@json_option
def check(target_name: str | None, as_json: bool) -> None:
    """Poll every target (or one) once now, store, compare, alert, exit.

    Alerts still pending from earlier runs are sent first. Targets are polled
    ``[defaults] max_concurrency`` at a time and reported in config order. Exits 0
    when every poll was good, 1 when any failed.
    """
    from monitor.fetch import make_client
    from monitor.notify import AppriseSender
    from monitor.notify.outbox import Outbox, describe_unrecorded
    from monitor.poll import Poller

    _logging()
    state = _state()
    config = state.config()
    targets = [config.target(target_name)] if target_name else list(config.targets)
    keys = _prepare_polling(config, targets)
    with _open_store(write=True) as store, make_client() as client:
        outbox = Outbox.for_config(config, store, AppriseSender(), now=utcnow)
        outbox.deliver(due_only=False)
        poller = Poller(
            store=store, client=client, outbox=outbox, now=utcnow, after_commit=state.after_commit
        )
        # the daemon's pool size: one shared HTTP client, the engine's pool sized for it
        polled = poller.poll_each(
            targets, keys, config.urls_for, concurrency=config.max_concurrency
        )
        # a send the database did not record: written when it takes writes again, at
        # most until the lease (which keeps other senders off it) runs out
        unrecorded = describe_unrecorded(outbox.settle())
    done = [(p.result, p.sent) for p in polled if p.result is not None]
    if as_json:
        _print_json(
            [
                {
                    **_snapshot_json(r.snapshot),
                    "baseline": r.baseline,
                    "change": _change_json(r.change) if r.change else None,
                    "events": [_target_event_json(e) for e in r.events],
                    "deliveries": [
                        {"id": o.delivery.id, "url": o.delivery.url, "ok": o.ok, "error": o.error}
                        for o in sent
                    ],
                }
                for r, sent in done
            ]
        )
    for turn in polled:
        if turn.result is None:
            reason = printable(turn.not_recorded or "")
            click.echo(f"{turn.target.name}: NOT RECORDED: {reason}", err=as_json)
        elif not as_json:
            click.echo(printable(_check_line(turn.result, turn.sent)))
    if unrecorded:
        _fatal(unrecorded)
    ok = len(done) == len(polled) and all(r.ok for r, _ in done)
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


def _check_line(result: Any, outcomes: Sequence[Any]) -> str:
    s = result.snapshot
    if not s.ok:
        line = f"{s.target}: FAILED: {s.error}"
    elif result.change:
        c = result.change
        line = f"{s.target}: {_models(s.model_count)}, changed (+{len(c.added)} -{len(c.removed)})"
    elif result.baseline:
        line = f"{s.target}: {_models(s.model_count)}, first good poll (baseline)"
    else:
        line = f"{s.target}: {_models(s.model_count)}, no change"
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


def _models(count: int | None) -> str:
    return f"{count} model" if count == 1 else f"{count} models"


def _prepare_polling(config: Config, targets: Sequence[Any]) -> dict[str, Secret | None]:
    """Check what polling needs before the first poll: targets, URLs, driver, keys."""
    if not targets:
        raise ConfigError("targets: no targets configured; add a [[targets]] table")
    verify(config)
    return _keys(config, [t.name for t in targets])


@cli.command()
@common
@click.option("--target", "target_name", metavar="NAME", help="Only this target.")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@click.option("--since", metavar="TIME", help="ISO 8601 time, or an age like 2h or 7d.")
@json_option
def history(target_name: str | None, limit: int, since: str | None, as_json: bool) -> None:
    """The polls, newest first."""
    rows = _read_rows(
        target_name,
        since,
        lambda store, since_at: store.history(target=target_name, limit=limit, since=since_at),
    )
    if as_json:
        _print_json([_snapshot_json(s) for s in rows])
        return
    _print_table(
        ["ID", "TARGET", "FETCHED AT", "OK", "HTTP", "MODELS", "ERROR"],
        [
            [
                s.id,
                s.target,
                _iso(s.fetched_at),
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
    _logging()
    with _open_store(write=False) as store:
        snapshot = store.snapshot(snapshot_id)
        models = store.models(snapshot)
    if as_json:
        _print_json({**_snapshot_json(snapshot), "models": models})
        return
    state = "ok" if snapshot.ok else f"FAILED: {printable(snapshot.error or '')}"
    click.echo(
        f"snapshot {snapshot.id} of {snapshot.target} at {_iso(snapshot.fetched_at)}: {state}"
    )
    if snapshot.ok:
        click.echo(f"{len(models)} models")
        _print_table(["ID", "OWNED BY", "CREATED"], _model_rows(models))


@cli.command()
@common
@event_filters
def changes(target_name: str | None, since: str | None, limit: int | None, as_json: bool) -> None:
    """The change events, newest first."""
    rows = _read_rows(
        target_name,
        since,
        lambda store, since_at: store.changes(target=target_name, since=since_at, limit=limit),
    )
    if as_json:
        _print_json([_change_json(c) for c in rows])
        return
    _print_table(
        ["ID", "TARGET", "DETECTED AT", "ADDED", "REMOVED", "CHANGED"],
        [
            [
                c.id,
                c.target,
                _iso(c.detected_at),
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
    _logging()
    config = _state().config()
    when = parse_time(at, utcnow(), "--at") if at else utcnow()
    with _open_store(write=False) as store:
        _check_target(config, store, target_name)
        if target_name is None:
            if len(config.targets) != 1:
                names = ", ".join(t.name for t in config.targets) or "none"
                raise ConfigError(f"--target: pick one of the configured targets ({names})")
            target_name = config.targets[0].name
        snapshot = store.models_at(target_name, when)
        if snapshot is None:
            raise NotFoundError(f"no good poll of {target_name!r} at or before {_iso(when)}")
        found = store.models(snapshot)
    if as_json:
        _print_json(
            {"target": target_name, "at": _iso(when), "snapshot_id": snapshot.id, "models": found}
        )
        return
    click.echo(
        f"{target_name}: {len(found)} models at {_iso(when)} "
        f"(snapshot {snapshot.id}, polled {_iso(snapshot.fetched_at)})"
    )
    _print_table(["ID", "OWNED BY", "CREATED"], _model_rows(found))


@cli.command()
@common
@click.argument("snapshot_a", type=SNAPSHOT_ID)
@click.argument("snapshot_b", type=SNAPSHOT_ID)
@json_option
def diff(snapshot_a: int, snapshot_b: int, as_json: bool) -> None:
    """Models added and removed between two snapshots (A, then B)."""
    from monitor.diff import diff_models

    _logging()
    with _open_store(write=False) as store:
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
    if as_json:
        _print_json(
            {
                "from": {"id": a.id, "target": a.target, "fetched_at": _iso(a.fetched_at)},
                "to": {"id": b.id, "target": b.target, "fetched_at": _iso(b.fetched_at)},
                "added": sorted(result.added),
                "removed": sorted(result.removed),
            }
        )
        return
    click.echo(
        f"{a.target} #{a.id} ({_iso(a.fetched_at)}) -> "
        f"{b.target} #{b.id} ({_iso(b.fetched_at)}): {result.summary()}"
    )
    for model_id in sorted(result.added):
        click.echo(f"+ {shown(model_id)}")
    for model_id in sorted(result.removed):
        click.echo(f"- {shown(model_id)}")


@cli.command()
@common
@event_filters
def events(target_name: str | None, since: str | None, limit: int | None, as_json: bool) -> None:
    """Targets that went down or came back, newest first (model changes: see changes)."""
    rows = _read_rows(
        target_name,
        since,
        lambda store, since_at: store.target_events(
            target=target_name, since=since_at, limit=limit
        ),
    )
    if as_json:
        _print_json([_target_event_json(e) for e in rows])
        return
    _print_table(
        ["ID", "TARGET", "KIND", "AT", "DETAIL"],
        [[e.id, e.target, e.kind, _iso(e.at), _event_detail(e)] for e in rows],
    )


def _event_detail(event: Any) -> str:
    from monitor.notify.message import format_duration

    if event.kind == "recovered" and event.duration_s is not None:
        return f"down for {format_duration(timedelta(seconds=event.duration_s))}"
    return f"{event.failures} failed polls since {_iso(event.since)}: {event.error}"


@cli.group(invoke_without_command=True)
@common
@click.option("--pending", "status", flag_value="pending", help="Only those not sent yet.")
@click.option("--dead", "status", flag_value="dead", help="Only those given up on.")
@click.option("--sent", "status", flag_value="sent", help="Only those sent.")
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
    """Each alert to each notification URL: sent, pending (retried) or dead."""
    if ctx.invoked_subcommand is not None:
        return
    from monitor.notify.outbox import url_hash

    rows, total = _read_rows(
        target_name,
        since,
        lambda store, since_at: store.deliveries(
            status=status, target=target_name, since=since_at, limit=limit
        ),
    )
    now = utcnow()
    configured = {url_hash(u) for u in _state().config().all_urls()}
    if as_json:
        _print_json([_delivery_json(d, now, configured) for d in rows])
        return
    _print_table(
        ["ID", "ALERT", "URL", "STATUS", "TRIES", "WHEN", "LAST ERROR"],
        [
            [
                d.id,
                _short(d.title, 48),
                d.url,
                d.status,
                d.attempts,
                _delivery_when(d, now, configured),
                _short(d.last_error or "", 60),
            ]
            for d in rows
        ],
    )
    if total > len(rows):
        click.echo(f"(showing the newest {len(rows)} of {total}; see --limit)")


def _delivery_when(d: Any, now: datetime, configured: set[str]) -> str:
    """What happened to a delivery, or what it waits for, with the time that goes with it:
    never a time in the future for something already over."""
    if d.status == "sent":
        return f"sent {_iso(d.sent_at)}" if d.sent_at else "sent"
    if d.status == "dead":
        given_up = _given_up_at(d, now)
        return f"gave up {_iso(given_up)}" if given_up else "gave up (time not recorded)"
    if d.being_sent(now):
        return f"being sent (lease until {_iso(d.lease_until)})"
    if d.url_hash not in configured:
        return "waiting: its URL is not in the config"
    if d.next_attempt_at <= now:
        return f"due since {_iso(d.next_attempt_at)}"
    return f"next try {_iso(d.next_attempt_at)}"


def _given_up_at(d: Any, now: datetime) -> datetime | None:
    """When a dead delivery was given up: the outbox sets its next attempt to that
    moment. A row closed another way (an older 'retry --to-current') may keep a next
    attempt in the future: then the moment is not known."""
    if d.status != "dead" or d.next_attempt_at > now:
        return None
    return d.next_attempt_at  # type: ignore[no-any-return]


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _delivery_json(d: Any, now: datetime, configured: set[str]) -> dict[str, Any]:
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
        "created_at": _iso(d.created_at),
        "next_attempt_at": _iso(d.next_attempt_at) if d.status == "pending" else None,
        "sent_at": _iso(d.sent_at) if d.sent_at else None,
        "given_up_at": _iso(given_up) if (given_up := _given_up_at(d, now)) else None,
        "lease_until": _iso(d.lease_until) if d.being_sent(now) else None,
        "url_in_config": d.url_hash in configured,
    }


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

    _logging()
    config = _state().config()
    verify(config)
    with _open_store(write=True) as store:
        delivery = store.delivery(delivery_id)
        if delivery.status == "sent":
            sent_at = _iso(delivery.sent_at or delivery.created_at)
            raise NotFoundError(f"delivery {delivery_id} was sent at {sent_at}; not sent twice")
        skipped: list[str] = []
        if to_current:
            known = {t.name: t for t in config.targets}
            if delivery.target not in known:
                raise ConfigError(f"--to-current: target {delivery.target!r} is not configured")
            urls = config.urls_for(known[delivery.target])
            if not urls:
                raise ConfigError(
                    f"--to-current: target {delivery.target!r} has no notification URLs"
                )
            steps = store.redirect_delivery(delivery_id, url_refs(urls), utcnow())
            if steps is None:
                _fatal(f"delivery {delivery_id} is being sent right now; see monitor deliveries")
            ids = [s.delivery_id for s in steps if s.to_send]
            skipped = [_skipped_line(s) for s in steps if not s.to_send]
        else:
            twin = store.sent_twin(delivery)
            if twin is not None:
                sent_at = _iso(twin.sent_at or twin.created_at)
                raise NotFoundError(
                    f"delivery {delivery_id}: this URL got the alert as delivery {twin.id} "
                    f"at {sent_at}; not sent twice"
                )
            if not store.reopen_delivery(delivery_id, utcnow()):
                _fatal(f"delivery {delivery_id} is being sent right now; see monitor deliveries")
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
        _fatal(unrecorded)
    # nothing to send is fine when every current URL has the alert or is being sent it
    sys.exit(EXIT_FAILED if failed or not (outcomes or skipped) else EXIT_OK)


def _skipped_line(step: Any) -> str:
    if step.action == "already sent":
        when = f" at {_iso(step.sent_at)}" if step.sent_at else ""
        return f"delivery {step.delivery_id}: not sent to {step.url}: it got this alert{when}"
    return f"delivery {step.delivery_id}: not sent to {step.url}: it is being sent right now"


@cli.command()
@common
@click.option(
    "--older-than", "older_than", metavar="AGE", required=True, help="e.g. 90d, 12w, 2160h."
)
@click.option("--target", "target_name", metavar="NAME", help="Only this target's snapshots.")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@json_option
def prune(older_than: str, target_name: str | None, dry_run: bool, as_json: bool) -> None:
    """Delete old snapshots and the model lists nobody points at any more.

    Kept whatever their age: change events and the snapshots they compare, the snapshots
    down/recovered events point at, and each target's baseline, latest and latest good
    snapshot. Deliveries and events are never pruned.
    """
    _logging()
    age = duration_seconds(older_than)
    if age is None or age <= 0:
        raise click.BadParameter(
            f"{older_than!r} is not an age like 90d", param_hint="--older-than"
        )
    cutoff = utcnow() - timedelta(seconds=age)
    with _open_store(write=True) as store:
        _check_target(_state().config(), store, target_name)
        report = store.prune(cutoff, target=target_name, dry_run=dry_run)
    if as_json:
        _print_json(
            {
                "dry_run": dry_run,
                "older_than": _iso(cutoff),
                "snapshots": report.snapshots,
                "model_lists": report.lists,
                "model_objects": report.objects,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {report.snapshots} snapshots taken before {_iso(cutoff)}, "
        f"{report.lists} model lists and {report.objects} model objects nobody points at"
    )


@cli.command("model")
@common
@click.argument("model_id")
@click.option("--target", "target_name", metavar="NAME", help="Only this target.")
@json_option
def model_life(model_id: str, target_name: str | None, as_json: bool) -> None:
    """The life of one model: first seen, each time it went and came back, last seen,
    and its watched-field changes."""
    _logging()
    with _open_store(write=False) as store:
        _check_target(_state().config(), store, target_name)
        lives = store.model_life(model_id, target=target_name)
    if not lives:
        raise NotFoundError(f"no poll ever listed a model {model_id!r}")
    if as_json:
        _print_json(
            {
                "id": model_id,
                "targets": [
                    {
                        "target": life.sighting.target,
                        "first_seen": _iso(life.sighting.first_seen),
                        "last_seen": _iso(life.sighting.last_seen),
                        "listed_now": life.sighting.present,
                        "events": [_model_event_json(e) for e in life.events],
                    }
                    for life in lives
                ],
            }
        )
        return
    for life in lives:
        state = "listed now" if life.sighting.present else "not listed now"
        click.echo(f"{shown(model_id)} on {life.sighting.target} ({state})")
        for at, what in _timeline(life):
            click.echo(f"  {_iso(at)}  {what}")


def _model_event_json(event: ModelEvent) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": _iso(event.at), "what": event.what}
    if event.change is not None:
        change = event.change
        entry.update(field=change.field, old=change.old, new=change.new)
    return {**entry, "event_id": event.change_id}


def _timeline(life: ModelLife) -> list[tuple[datetime, str]]:
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
            _read_rows(
                target_name,
                since,
                lambda store, since_at: store.changes(target=target_name, since=since_at),
            )
        )
    )
    if fmt == "json":
        _print_json([_change_json(c) for c in rows])
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        ["event_id", "target", "detected_at", "change", "model_id", "field", "old", "new"]
    )
    for c in rows:
        base = [c.id, c.target, _iso(c.detected_at)]
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


@cli.command("notify-test")
@common
@click.option("--target", "target_name", metavar="NAME", help="Only this target's URLs.")
def notify_test(target_name: str | None) -> None:
    """Send a test alert to every configured URL and report each result."""
    from monitor.notify import AppriseSender, test_message

    _logging()
    config = _state().config()
    verify(config)
    urls = config.urls_for(config.target(target_name)) if target_name else config.all_urls()
    if not urls:
        _fatal("no notification URLs configured", EXIT_FAILED, "add [notify] urls = [...]")
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

    _logging()
    with _open_store(write=True) as store:
        revision = current_revision(store.engine)
    shown = make_url(_state().config().database_url).render_as_string(hide_password=True)
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

    config = _state().config()
    verify(config)
    keys = _keys(config, [t.name for t in config.targets])
    click.echo(f"config {config.path}: OK")
    url = make_url(config.database_url)
    untested = "" if url.get_backend_name() in ("sqlite", "postgresql") else f" ({TESTED})"
    click.echo(f"database: {url.render_as_string(hide_password=True)}{untested}")
    click.echo(f"notification URLs: {len(config.notify_urls)}")
    for t in config.targets:
        key = "no key"
        if t.api_key is not None:
            key = f"key from {_KEY_FROM[t.api_key.kind]} {t.api_key.ref} (present, not verified)"
        click.echo(
            f"target {t.name}: GET {t.models_url} every {t.interval:g}s, "
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


def _try_targets(config: Config, keys: dict[str, Secret | None]) -> Iterator[tuple[Any, str]]:
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
            yield t, f"{answered}, {_models(len(fetched.models))}"
