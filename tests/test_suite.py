"""The test suite's own rule: PostgreSQL is reached only through the ``postgres_url``
fixture (tests/conftest.py), which refuses a test not marked ``postgres``.

CI runs ``pytest`` without $MONITOR_TEST_POSTGRES_URL, then ``pytest -m postgres`` with
it: a test that read the variable itself would run on PostgreSQL in neither.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_only_the_conftest_reads_the_postgres_url() -> None:
    readers = [
        str(path.relative_to(TESTS))
        for path in sorted(TESTS.rglob("*.py"))
        if path not in (TESTS / "conftest.py", Path(__file__).resolve())
        and "MONITOR_TEST_POSTGRES_URL" in path.read_text()
    ]
    assert readers == [], "use the postgres_url fixture (and mark the test postgres)"
