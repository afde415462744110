"""One run of the command line: what the options filled in, the config (loaded once),
and the clock and logging the commands use."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

import click

from monitor.config import Config, find_config_path, load_config
from monitor.logs import configure_logging


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


def current_state() -> State:
    return click.get_current_context().ensure_object(State)


def start_logging(stream: TextIO | None = None) -> None:
    configure_logging(current_state().log_level, stream=stream)
