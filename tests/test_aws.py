"""monitor.aws: what the log masker holds of AWS's secret parts."""

from __future__ import annotations

import pytest

from monitor import aws
from monitor.redact import LOGGED


def test_refreshed_credentials_replace_the_old_ones_in_the_log_masker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Temporary credentials refresh for as long as the daemon runs: the masker holds
    the ones in use, not every one ever seen (its pattern would grow without end)."""
    monkeypatch.setattr(aws, "_shown", ())
    first = ("first-secret-0001", "first-token-0001")
    second = ("second-secret-0002", "second-token-0002")
    try:
        aws._mask(first)
        assert LOGGED.mask(f"{first[0]} {first[1]}") == "*** ***"
        aws._mask(second)
        assert LOGGED.mask(f"{second[0]} {second[1]}") == "*** ***"
        assert LOGGED.mask(first[0]) == first[0]  # replaced, so no longer held
    finally:
        LOGGED.discard(*first, *second)
