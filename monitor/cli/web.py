"""``monitor web``: the web app on its own, over the configured database (no daemon,
no polling, no API keys)."""

from __future__ import annotations

import os
import sys

import click

from monitor.cli.app import cli
from monitor.cli.database import configured_store
from monitor.cli.options import common
from monitor.cli.state import current_state, utcnow
from monitor.config import parse_listen, show_address, web_exposure_problem
from monitor.errors import ConfigError
from monitor.logs import configure_logging


@cli.command()
@common
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where to listen (default: [web] listen, else 127.0.0.1:8080).",
)
def web(listen: str | None) -> None:
    """Serve the dashboard and JSON API over the database until SIGTERM. Read-only."""
    from monitor.sdnotify import SystemdNotifier
    from monitor.web.app import bind, create_app, password_of, serve

    configure_logging(
        current_state().log_level, stream=sys.stderr, journal=bool(os.environ.get("JOURNAL_STREAM"))
    )
    config = current_state().config()
    settings = config.web
    if listen is not None:
        host, port = parse_listen(listen, "--listen")
        problem = web_exposure_problem(host, settings)
        if problem:
            raise ConfigError(f"--listen: {listen!r} {problem}")
    else:
        host, port = settings.listen or ("127.0.0.1", 8080)
    password = password_of(settings)
    notifier = SystemdNotifier.from_environ(os.environ)
    with configured_store(write=False) as store:
        sock = bind(host, port, "--listen" if listen is not None else "web.listen")
        shown = f"http://{show_address(host, port)}/"
        click.echo(f"serving {shown} (read-only); stop with Ctrl-C or SIGTERM", err=True)
        notifier.ready(f"serving {shown}")
        serve(create_app(lambda: config, store, utcnow, password), sock)
        notifier.stopping()
