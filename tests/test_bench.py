"""The benchmark suite (``bench/``, ``python -m bench``) at tiny sizes, so it cannot rot.

These check that each benchmark runs and measures something sane; they do not check
the goals (``docs/benchmarks.md`` has the real figures).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # last: the installed monitor package still wins

from bench import check, cpu, process, queries, run, schedule, storage, web  # noqa: E402

TINY = run.SIZES["tiny"]


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    """The benchmarks log as the daemon does (into /dev/null); put the root logger back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level


def finite(value: float) -> bool:
    return isinstance(value, float | int) and math.isfinite(value)


def test_cpu_per_poll_measures_every_client() -> None:
    results = cpu.run(**TINY["cpu"])
    for shape, entry in results["shapes"].items():
        assert set(entry["rows"]) == {
            cpu.POLL_TARGET,
            cpu.DAEMON_POLL,
            cpu.DAEMON_ETAG,
            cpu.SYNC,
            cpu.SYNC_BIG,
            cpu.ASYNC,
            cpu.ASYNC_BIG,
        }, shape
        for name, row in entry["rows"].items():
            assert row["requests"] > 0, name
            assert 0 < row["cpu_ms"] < 1000, name
        assert 0 < entry["ratio"] < 100
        profile = entry["profile"]
        assert math.isclose(sum(share for _, share in profile["groups"]), 1.0, abs_tol=0.01)
        assert profile["top"]
    text = cpu.report(results)
    assert "## 1." in text and "seed4" in text and "or400" in text
    assert len(cpu.goals(results)) == 2


def test_bytes_per_poll_are_measured_against_a_naive_copy() -> None:
    results = storage.run(**TINY["bytes"])
    by_name = {r["scenario"]["name"]: r for r in results["scenarios"]}
    for result in by_name.values():
        assert result["naive_bytes_per_poll"] >= result["json_bytes"] > 0
        phases = {ph["phase"]: ph for ph in result["phases"]}
        assert 0 <= phases["unchanged"]["bytes_per_poll"] < 10_000
    big = {ph["phase"]: ph for ph in by_name["or400-1-target"]["phases"]}
    changed = big["changed (1 ID replaced)"]
    assert changed["new_content"] > 500  # one new ~1 KB model
    # a changed 400-model list costs a span per new object, not a row per model
    assert 0 <= changed["bytes_per_poll"] < 8192
    assert big["changed (long run)"]["polls"] == TINY["bytes"]["long_run"]
    assert "lineage_restarts" in big["changed (long run)"]
    assert "## 2." in storage.report(results)
    goals = storage.goals(results)
    assert len(goals) == 6  # unchanged, and each change of the one-target lists
    assert all(target.endswith(("met", "**missed**")) for _, _, target in goals)


def check_history_backend(backend: dict[str, Any]) -> None:
    (step,) = backend["steps"]
    counts = step["counts"]
    assert counts["snapshots"] == 1000
    assert 0 < counts["failed"] < 50  # about 1 %
    assert counts["changes"] > 0
    assert counts["lists"] == 10 * queries.REVISIONS  # 10 targets: 10 providers
    assert set(step["queries"]) == set(queries.QUERIES)
    for name, q in step["queries"].items():
        assert finite(q["median"]) and 0 < q["median"] <= q["p95"] < 10_000, name
    assert set(backend["plans"]) == set(queries.QUERIES)
    for plans in backend["plans"].values():
        assert plans and all(p["plan"] for p in plans)


def test_history_queries_time_every_command_and_explain_it() -> None:
    results = queries.run(**TINY["queries"], postgres=None)
    (sqlite,) = results["backends"]
    assert sqlite["backend"] == "SQLite"
    check_history_backend(sqlite)
    text = queries.report(results)
    assert "## 3." in text and "Query plans" in text
    assert "PostgreSQL skipped: no PostgreSQL URL given." in text
    measured, skipped = queries.goals(results)
    assert measured[0] == "3. History queries at 1k snapshots, SQLite"
    assert skipped == ("3. History queries, PostgreSQL", "skipped", "no PostgreSQL URL given")


@pytest.mark.postgres
def test_history_queries_on_postgres(postgres_url: str) -> None:
    results = queries.run(**TINY["queries"], postgres=postgres_url)
    assert "postgres_skipped" not in results
    sqlite, postgres = results["backends"]
    assert (sqlite["backend"], postgres["backend"]) == ("SQLite", "PostgreSQL")
    check_history_backend(postgres)
    assert "**PostgreSQL**" in queries.report(results)
    assert [goal[0] for goal in queries.goals(results)] == [
        "3. History queries at 1k snapshots, SQLite",
        "3. History queries at 1k snapshots, PostgreSQL",
    ]


def test_the_flags_name_full_scans() -> None:
    assert queries._flags(["SCAN snapshots"], sqlite=True) == ["FULL TABLE SCAN: SCAN snapshots"]
    assert queries._flags(["SEARCH snapshots USING INDEX ix (target=?)"], sqlite=True) == []
    assert "FULL TABLE SCAN" in queries._flags(["  ->  Seq Scan on snapshots"], sqlite=False)[0]
    postgres_sort = ["Sort  (cost=1.00..2.00 rows=9 width=8)", "  Sort Key: detected_at DESC"]
    assert len(queries._flags(postgres_sort, sqlite=False)) == 1


def test_the_daemon_keeps_its_schedule_with_a_few_targets() -> None:
    results = schedule.run(**TINY["schedule"])
    assert results["exit_code"] == 0
    assert results["never"] == 0
    assert results["polls"] >= results["targets"] * 2
    assert results["failed"] == 0
    assert 10 < results["hwm_mb"] < 2000
    assert results["cpu_s"] > 0
    assert finite(results["lateness"]["p50"])
    assert "## 4." in schedule.report(results)
    assert len(schedule.goals(results)) == 2  # polls on schedule, peak RSS


def test_check_is_timed_over_many_targets_with_and_without_latency() -> None:
    results = check.run(**TINY["check"])
    assert [(r["targets"], r["latency_ms"]) for r in results["rows"]] == [(3, 0), (3, 20)]
    for row in results["rows"]:
        assert row["codes"] == [0, 0], row["errors"]
        assert 0 < row["steady_s"] < 60 and 0 < row["first_s"] < 60
    (cpu_row,) = results["cpu"]
    assert cpu_row["codes"] == [0, 0] and cpu_row["startup_cpu_s"] > 0
    assert math.isfinite(cpu_row["per_target_ms"]) and cpu_row["bare_per_target_ms"] > 0
    assert "## 5." in check.report(results) and "bare sync" in check.report(results)
    assert len(check.goals(results)) == 3


def test_one_command_prints_a_markdown_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "report.md"
    raw = tmp_path / "raw.json"
    assert run.main(["--tiny", "--only", "bytes", "--output", str(output), "--json", str(raw)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# model-monitor benchmarks")
    assert "## Goals" in printed and "## 2." in printed
    assert "`python -m bench --tiny --only bytes`" in printed
    assert output.read_text().strip() == printed.strip()
    assert raw.read_text().startswith("{")


def test_the_report_refreshes_only_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nprose\n\n{run.BEGIN}\nold figures\n{run.END}\n\nmore prose\n")
    run.write_report(doc, "new figures")
    text = doc.read_text()
    assert "old figures" not in text and "new figures" in text
    assert text.startswith("# Benchmarks\n\nprose\n\n") and text.endswith("\n\nmore prose\n")
    plain = tmp_path / "plain.md"
    run.write_report(plain, "figures")
    assert plain.read_text() == "figures\n"


def test_the_whole_daemon_process_is_measured_against_a_bare_client() -> None:
    results = process.run(**TINY["process"])
    workloads = results["workloads"]
    assert set(workloads) == set(TINY["process"]["workloads"])
    for workload in workloads.values():
        daemon, bare = workload["daemon"], workload["bare"]
        assert daemon["polls"] > 0 and bare["polls"] > 0 and daemon["failed"] == 0
        assert daemon["cpu_s"] > 0 and bare["cpu_s"] > 0
        assert 10 < daemon["hwm_mb"] < 1000 and daemon["ready_s"] > 0
    unchanged, changing = workloads["150 x seed4, 3 s"], workloads["150 x or400 changing, 3 s"]
    assert unchanged["daemon"]["changes"] == 0
    # every poll of the changing list is a change, stored as what is new in it
    assert changing["daemon"]["changes"] == changing["daemon"]["polls"]
    assert changing["daemon"]["bytes_per_poll"] > unchanged["daemon"]["bytes_per_poll"]
    check = results["check"]
    assert check["codes"] == [0, 0] and check["targets"] == 3
    assert check["check_s"] > 0 and check["round_s"] > 0 and check["round_cpu_s"] > 0
    assert "## 6." in process.report(results)
    goals = [goal for goal, _, _ in process.goals(results)]
    assert any("CPU per poll" in goal for goal in goals)
    assert any("changed poll" in goal for goal in goals)
    assert any("one daemon round" in goal for goal in goals)


def test_the_web_benchmark_requests_every_page_and_call_of_a_real_server() -> None:
    results = web.run(**TINY["web"], postgres=None)
    (sqlite,) = results["backends"]
    assert sqlite["backend"] == "SQLite" and sqlite["size"] == TINY["web"]["size"]
    calls = sqlite["calls"]
    assert {"/", "/targets/T", "/models/ID", "/matrix", "api changes?before=(deep)"} <= set(calls)
    for name, call in calls.items():
        assert call["statuses"] == [200], name  # every page answers, none fails
        assert 0 < call["p50_ms"] <= call["p95_ms"]
    assert "## 7." in web.report(results)
    (goal,) = web.goals(results)
    assert goal[0].startswith("7. Every page and API call")


def test_prune_and_vacuum_sizes_are_measured(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import prune

    sys_argv, sys.argv = sys.argv, ["bench.prune", "--polls", "20", "--no-postgres"]
    try:
        prune.main()
    finally:
        sys.argv = sys_argv
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| SQLite")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "11 of 20"
    full, vacuumed = (int(cells[i].replace(",", "")) for i in (2, 4))
    assert vacuumed < full
