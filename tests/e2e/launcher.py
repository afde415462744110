"""``monitor`` with a fault right after each poll commits, for the crash and watchdog
tests: ``python launcher.py POINT ARGS...`` runs the real console entry point,
:func:`monitor.cli.main`, on ARGS, with its ``after_commit`` seam set to POINT:

- ``after-commit``: SIGKILL the process (the alert is stored, not sent yet);
- ``hang-after-poll``: hang there (the poll never finishes; the watchdog must notice);
- ``bug-once``: raise RuntimeError once, in the first poll to commit (a bug met by one
  target: the others must go on).

Only the tests start this; the installed ``monitor`` script has no such hook.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _hang() -> None:
    time.sleep(3600)


_raised: list[bool] = []


def _bug_once() -> None:
    if not _raised:
        _raised.append(True)
        raise RuntimeError("a bug met by one target")


POINTS: dict[str, Callable[[], None]] = {
    "after-commit": _kill,
    "hang-after-poll": _hang,
    "bug-once": _bug_once,
}


def main() -> None:
    point, *args = sys.argv[1:]
    from monitor.cli import main as monitor_main

    sys.argv = ["monitor", *args]
    monitor_main(after_commit=POINTS[point])


if __name__ == "__main__":
    main()
