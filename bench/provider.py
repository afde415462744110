"""A local OpenAI-style provider in its own process, so its CPU never counts as the client's.

``python -m bench.provider`` listens on 127.0.0.1 (a free port), prints the port on the
first line of stdout, and serves until its stdin closes. ``GET /{shape}/{rev}/{any
path}/models`` answers the list ``shape`` at revision ``rev`` (see :mod:`bench.models`),
e.g. ``/seed4/0/t17/v1/models`` (``/seed4/0e/...``: with an ``ETag``, and ``304`` to a
matching ``If-None-Match``; ``/or400/0c/t17/...``: a changed list at every request, the
revision counting up from 0 per path); anything else is a 404. ``?hold=SECONDS`` answers after
a pause (to open many connections at once); a leading ``/waitMS`` segment
(``/wait50/seed4/0/t17/v1/models``) too, as a provider's latency. Stdlib only, HTTP/1.1 keep-alive.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.models import body

REPO = Path(__file__).resolve().parent.parent
NOT_FOUND = b'{"error":{"message":"Not found"}}'


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # 500 targets may connect at once


_revisions: dict[str, int] = {}
_revisions_lock = threading.Lock()


def _next_revision(path: str, start: int) -> str:
    """The next revision of a changing list (``.../0c/...``): one model replaced per request."""
    with _revisions_lock:
        rev = _revisions[path] = _revisions.get(path, start - 1) + 1
    return str(rev)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # as a real server: no Nagle stall between the headers and the body (40 ms per answer
    # with the client's delayed ACK), and headers and a small body in one write
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if query.startswith("hold="):  # keep the connection busy: opens many at once
            time.sleep(float(query[5:]))
        parts = path.split("/")
        if len(parts) > 1 and parts[1].startswith("wait"):  # /wait50/...: answer after 50 ms
            with contextlib.suppress(ValueError):
                time.sleep(int(parts[1][4:]) / 1000)
            parts = parts[:1] + parts[2:]
        status, payload, etag = 404, NOT_FOUND, None
        if len(parts) >= 4 and parts[-1] == "models":
            with contextlib.suppress(ValueError):  # an unknown shape: 404
                rev = parts[2]
                if rev.endswith("c"):  # changing: the next revision at every request
                    rev = _next_revision(path, int(rev[:-1]))
                status, payload = 200, body(parts[1], rev)
                if parts[2].endswith("e"):  # revalidation: ETag, 304 when it matches
                    etag = f'"{parts[1]}-{parts[2]}"'
                    if self.headers.get("If-None-Match") == etag:
                        status, payload = 304, b""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: Any) -> None:
        pass


def serve() -> None:
    server = _Server(("127.0.0.1", 0), _Handler)
    print(server.server_address[1], flush=True)

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    server.serve_forever(poll_interval=0.05)
    server.server_close()


class ProviderProcess:
    """Starts :func:`serve` in a child process; ``url()`` builds a target's base_url."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.provider"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=env,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("the benchmark provider did not start")
        self.port = int(line)
        self.pid = self._proc.pid

    def url(self, shape: str = "seed4", rev: str = "0", name: str = "t", wait_ms: int = 0) -> str:
        """The base_url of a target whose ``/models`` is ``shape`` at ``rev``, answered
        after ``wait_ms`` (a provider's latency)."""
        wait = f"/wait{wait_ms}" if wait_ms else ""
        return f"http://127.0.0.1:{self.port}{wait}/{shape}/{rev}/{name}/v1"

    def stop(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()

    def __enter__(self) -> ProviderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    serve()
