"""systemd's notify protocol, without a dependency: one datagram per message.

``$NOTIFY_SOCKET`` names the socket (a leading ``@`` is an abstract socket);
without it every call does nothing. ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``,
when set, must be this process) asks for ``WATCHDOG=1`` pings within that time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

from monitor.errors import MonitorError

log = structlog.get_logger("monitor.systemd")


class SystemdNotifier:
    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self._address = address
        self.watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SystemdNotifier:
        address = environ.get("NOTIFY_SOCKET") or None
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        usec: int | None = None
        raw = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if raw.isdigit() and int(raw) > 0 and (not pid or pid == str(os.getpid())):
            usec = int(raw)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    @property
    def watchdog_interval(self) -> float | None:
        """How often to ping: under half of what systemd waits for."""
        if not self.enabled or not self.watchdog_usec:
            return None
        return self.watchdog_usec / 1_000_000 / 3

    def check(self) -> None:
        """At start, before anything else happens: tell systemd we are starting, and
        fail (a :class:`MonitorError` naming ``NOTIFY_SOCKET``) if it cannot be reached;
        later failures are only logged, so systemd going away never stops the daemon."""
        if self._socket is None or self._address is None:
            return
        try:
            self._socket.sendto(b"STATUS=starting", self._address)
        except OSError as exc:
            shown = "@" + self._address[1:] if self._address.startswith("\0") else self._address
            raise MonitorError(
                f"NOTIFY_SOCKET: cannot reach systemd's notify socket {shown!r}: "
                f"{exc.strerror or exc}"
            ) from None

    def notify(self, *fields: str) -> None:
        if self._socket is None or self._address is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:  # systemd going away must not take the daemon with it
            log.warning("systemd notification failed", error=str(exc))

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
