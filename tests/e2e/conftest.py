"""End-to-end fixtures: the installed ``monitor`` console script, run in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from servers import SEED_KEY, ProviderServer, TcpProxy

MONITOR = str(Path(sys.executable).parent / "monitor")
LAUNCHER = str(Path(__file__).with_name("launcher.py"))


def monitor_command(failpoint: str | None = None) -> list[str]:
    """The installed console script; with a ``failpoint``, its entry point run through
    launcher.py, which crashes or hangs it right after each poll commits."""
    return [MONITOR] if failpoint is None else [sys.executable, LAUNCHER, failpoint]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


# what the query commands say until `monitor run` or `check` has created the database
_NO_DATABASE_YET = ("does not exist yet", "has no model-monitor tables yet")


@dataclass
class Workspace:
    """A config file, a database and an environment for running ``monitor``."""

    root: Path
    db_url: str
    env: dict[str, str] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    def write_config(
        self,
        targets: list[dict[str, Any]],
        notify_urls: list[str] = (),  # type: ignore[assignment]
        database: bool = True,
        **notify: Any,
    ) -> Path:
        """The config; ``notify`` adds ``[notify]`` settings (``max_attempts=2``)."""
        lines = []
        if database:
            lines += ["[database]", f"url = {json.dumps(self.db_url)}", ""]
        lines += ["[notify]", f"urls = {json.dumps(list(notify_urls))}"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in notify.items()] + [""]
        for target in targets:
            lines.append("[[targets]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in target.items()]
            lines.append("")
        self.config_path.write_text("\n".join(lines))
        return self.config_path

    def listing(self, *args: str, before_database: bool = False) -> list[Any]:
        """A query command's JSON list. The command must succeed; ``before_database``:
        a database not created yet (a daemon starting up creates it) is an empty list."""
        result = self.run(*args, "--json")
        if result.code == 0:
            return result.json()  # type: ignore[no-any-return]
        if before_database and any(m in result.stderr for m in _NO_DATABASE_YET):
            return []
        raise AssertionError(
            f"monitor {' '.join(args)} --json exited {result.code}: {result.stderr.strip()}"
        )

    def polls(self, target: str | None = None) -> int:
        """How many polls (of a target) are stored; 0 before the database exists."""
        args = ["history", "--limit", "100000"] + (["--target", target] if target else [])
        return len(self.listing(*args, before_database=True))

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 60,
        failpoint: str | None = None,
    ) -> Result:
        env = {**os.environ, **self.env}
        proc = subprocess.run(
            [*monitor_command(failpoint), "-c", str(self.config_path), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd or self.root,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        self.results.append(result)
        return result


def dos_target(provider: ProviderServer, **overrides: Any) -> dict[str, Any]:
    target = {
        "name": "dos-ai",
        "base_url": provider.base_url,
        "api_key_env": "DOS_API_KEY",
        "interval": "5m",
        "timeout": "2s",
    }
    target.update(overrides)
    return target


def _workspace(root: Path, db_url: str) -> Workspace:
    """A home, a state directory and the seed key, nothing from the real environment."""
    home = root / "home"
    home.mkdir()
    return Workspace(
        root=root,
        db_url=db_url,
        env={
            "DOS_API_KEY": SEED_KEY,
            "HOME": str(home),
            "XDG_STATE_HOME": str(root / "state"),
            "MONITOR_CONFIG": "",
        },
    )


@pytest.fixture
def workspace(tmp_path: Path, db_url: str) -> Workspace:
    return _workspace(tmp_path, db_url)


@pytest.fixture
def sqlite_workspace(tmp_path: Path) -> Workspace:
    """For tests about files and processes, where the database backend does not matter."""
    return _workspace(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


# a test of what only PostgreSQL does (replicas, a database behind a proxy)
postgres_only = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def db_proxy(workspace: Workspace) -> Iterator[TcpProxy]:
    """The workspace's (PostgreSQL) database behind a proxy the test can cut and restore,
    as a database going away for real."""
    from sqlalchemy.engine import make_url

    upstream = make_url(workspace.db_url)
    proxy = TcpProxy(upstream.port or 5432, upstream.host or "127.0.0.1").start()
    workspace.db_url = upstream.set(port=proxy.port).render_as_string(hide_password=False)
    yield proxy
    proxy.stop()


@pytest.fixture
def daemon(workspace: Workspace) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts ``monitor run`` on the workspace (extra CLI args, a file for its output to
    read while it runs, extra env); stops it after."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, log: Path | None = None, **env: str) -> subprocess.Popen[str]:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(log.open("w")) if log is not None else subprocess.PIPE
            proc = subprocess.Popen(
                [MONITOR, "-c", str(workspace.config_path), "run", *args],
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **workspace.env, **env},
                stdin=subprocess.DEVNULL,
            )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
