"""The shipped artefacts: the installed distribution, the systemd unit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib.metadata import distribution
from pathlib import Path

import pytest

import monitor
from monitor.store.engine import migrations_path

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "model-monitor.service"


def _editable() -> bool:
    text = distribution("model-monitor").read_text("direct_url.json")
    return bool(text and json.loads(text).get("dir_info", {}).get("editable"))


def test_the_installed_package_carries_its_migrations() -> None:
    if _editable():
        if os.environ.get("MONITOR_TEST_REQUIRE_INSTALLED"):
            pytest.fail("CI must test a non-editable install (pip install .)")
        pytest.skip("an editable install reads migrations/ from the checkout")
    files = {str(f) for f in distribution("model-monitor").files or []}
    assert "monitor/migrations/env.py" in files
    assert "monitor/migrations/versions/0001_initial.py" in files
    # the web app's templates and stylesheet: nothing is fetched at run time
    assert "monitor/web/templates/base.html" in files
    assert "monitor/web/static/style.css" in files
    # and the code finds them there, not in a checkout
    assert migrations_path() == Path(monitor.__file__).parent / "migrations"


def test_the_unit_runs_the_console_script_daemon() -> None:
    exec_start = next(
        line.split("=", 1)[1]
        for line in UNIT.read_text().splitlines()
        if line.startswith("ExecStart=")
    )
    program, *args = exec_start.split()
    assert Path(program).name == "monitor"
    assert args[-1] == "run"
    entry_points = distribution("model-monitor").entry_points
    assert any(ep.name == "monitor" and ep.value == "monitor.cli:main" for ep in entry_points)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_unit_is_hardened() -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    last = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
    assert last, result.stdout + result.stderr
    exposure = float(last[0].split(":")[1].split()[0])
    assert exposure <= 1.5, last[0]
