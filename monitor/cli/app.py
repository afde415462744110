"""The ``monitor`` group and its one way to fail: a
:class:`~monitor.errors.MonitorError` becomes one line on stderr and an exit code (2
for a bad config, option, snapshot or target; 1 for anything else), never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import click
import structlog

from monitor import __version__
from monitor.cli.options import StrictGroup, common, option_name
from monitor.cli.state import State
from monitor.config import Config, Secret, resolve_key
from monitor.errors import ConfigError, MonitorError, NotFoundError
from monitor.text import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = structlog.get_logger("monitor.cli")


def fatal(message: str, code: int = EXIT_FAILED, hint: str | None = None) -> NoReturn:
    # one line, whatever the message carried; a provider's bytes never drive the terminal
    message = printable(" ".join(message.split()))
    click.echo(f"monitor: error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


# its commands are added by the modules monitor/cli/__init__.py imports
@click.group(cls=StrictGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
        message = f"missing {kind} {option_name(param)}"
        if isinstance(param.type, click.Choice):
            *most, last = [str(c) for c in param.type.choices]
            message += f" ({', '.join(most)} or {last})" if most else f" ({last})"
        return message
    if isinstance(exc, click.BadParameter):
        named = exc.param_hint or (option_name(exc.param) if exc.param is not None else None)
        if named:
            where = named if isinstance(named, str) else "/".join(named)
            return f"{where}: {exc.message}"
    return exc.format_message()


def resolve_keys(config: Config, names: Sequence[str]) -> dict[str, Secret | None]:
    return {t.name: resolve_key(t.api_key, os.environ) for t in config.targets if t.name in names}
