"""The ``monitor`` group and what every command shares: its options, the option
types, the one way to fail, and the state a run of the command line carries.

It fails in one way: a :class:`~monitor.errors.MonitorError` becomes one line
on stderr and an exit code (2 for a bad config, option, snapshot or target;
1 for anything else), never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

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
)
from monitor.errors import ConfigError, MonitorError, NotFoundError
from monitor.logs import LEVELS, configure_logging
from monitor.text import printable

F = TypeVar("F", bound=Callable[..., Any])

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
    """One run of the command line: main() makes it, -c and --log-level fill it in
    (on the group or the subcommand), commands read it through current_state()."""

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


def fatal(message: str, code: int = EXIT_FAILED, hint: str | None = None) -> NoReturn:
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


# its commands are added by the modules monitor/cli/__init__.py imports
@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="model-monitor")
@common
def cli() -> None:
    """Watch LLM providers' model lists; alert when a model appears or disappears."""


def main(*, after_commit: Callable[[], None] | None = None) -> None:
    """The ``monitor`` console script. ``after_commit`` is a seam for tests only, called
    right after each poll of ``run`` or ``check`` commits (tests/e2e/launcher.py crashes
    or hangs the process there); the console script passes none, and no environment
    variable or config key sets one."""
    # the options fill in this run's state; the handler below reads --log-level from it
    state = State(after_commit=after_commit)
    try:
        cli.main(prog_name="monitor", standalone_mode=False, obj=state)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        fatal("aborted", EXIT_FAILED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f"see '{exc.ctx.command_path} --help'" if exc.ctx else None
        fatal(_usage_message(exc), EXIT_USAGE, hint)
    except click.ClickException as exc:
        fatal(exc.format_message(), exc.exit_code)
    except (ConfigError, NotFoundError) as exc:
        fatal(str(exc), EXIT_USAGE)
    except MonitorError as exc:
        fatal(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, the traceback only when asked for
        if state.log_level == "debug":
            import traceback

            traceback.print_exc()
        fatal(
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


def current_state() -> State:
    return click.get_current_context().ensure_object(State)


def start_logging(stream: TextIO | None = None) -> None:
    configure_logging(current_state().log_level, stream=stream)


def resolve_keys(config: Config, names: Sequence[str]) -> dict[str, Secret | None]:
    return {t.name: resolve_key(t.api_key, os.environ) for t in config.targets if t.name in names}


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
