"""What the command line accepts: option types, options every command shares, and
strict parsing (an option is given once)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from monitor.cli.state import State
from monitor.config import parse_moment
from monitor.logs import LEVELS

F = TypeVar("F", bound=Callable[..., Any])


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
                f"{option_name(first)} and {option_name(param)} cannot be combined; pick one",
                ctx,
            )
        if param in order[:i] and not param.is_flag:  # a flag twice asks for one thing
            raise click.UsageError(f"{option_name(param)} given twice; give it once", ctx)


def option_name(param: click.Parameter) -> str:
    return "/".join(param.opts) if isinstance(param, click.Option) else param.human_readable_name


class StrictCommand(_StrictParsing, click.Command):
    pass


class StrictGroup(_StrictParsing, click.Group):
    command_class = StrictCommand
    group_class = type  # subgroups are StrictGroup too


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
            f"{option_name(param)} given twice ({before!r} and {now!r}); give it once", ctx
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


def parse_time(text: str, now: datetime, option: str) -> datetime:
    """ISO 8601 (naive means UTC), ``now``, or an age like ``2h`` or ``7d`` (that long ago)."""
    try:
        return parse_moment(text, now)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time; use ISO 8601 (2026-11-26T10:00Z), 'now', "
            "or an age like 2h or 7d",
            param_hint=option,
        ) from None
    except OverflowError:
        raise click.BadParameter(f"{text!r} is out of range", param_hint=option) from None
