"""The ``monitor`` command line. Thin: parse options, call the core, print.

:mod:`~monitor.cli.app` holds the group and its one way to fail,
:mod:`~monitor.cli.options` what the command line accepts and
:mod:`~monitor.cli.state` what one run carries; the commands, grouped by what a
user does, are in :mod:`~monitor.cli.history`,
:mod:`~monitor.cli.deliveries`, :mod:`~monitor.cli.polling`, :mod:`~monitor.cli.mutes` and
:mod:`~monitor.cli.admin`, and print through :mod:`~monitor.cli.render`.
"""

# each command module adds its commands to the group as it is imported
from monitor.cli import admin, deliveries, history, mutes, polling, web  # noqa: F401
from monitor.cli.app import cli, main

__all__ = ["cli", "main"]
