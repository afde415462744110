"""Keeping secrets out of what a user sees (monitor/redact.py)."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, quote_plus

import pytest
from builders import json_escaped

from monitor.redact import MASK, WITHHELD, Redactor

KEY = 'sk-Zz9+/="q\\0123456789'  # a key with characters every encoding changes
PLAIN = "dos_sk_0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "spelled",
    [
        pytest.param(KEY, id="raw"),
        pytest.param(quote(KEY, safe=""), id="url-encoded"),
        pytest.param(
            re.sub("%..", lambda m: m.group(0).lower(), quote(KEY, safe="")),
            id="url-encoded-lower-hex",
        ),
        pytest.param(quote_plus(KEY), id="form-encoded"),
        pytest.param(json.dumps(KEY)[1:-1], id="json-string"),
        pytest.param(repr(KEY)[1:-1], id="python-repr"),
    ],
)
def test_every_spelling_is_masked(spelled: str) -> None:
    redact = Redactor([KEY])
    out = redact(f"Location: http://x/?auth=Bearer%20{spelled}&y=1")
    assert MASK in out and spelled not in out
    assert redact.found(spelled) and redact.mask(spelled) == MASK


@pytest.mark.parametrize(
    "spelled",
    [
        pytest.param(json_escaped(PLAIN), id="every-char-json-escaped"),
        pytest.param(quote(quote(KEY, safe=""), safe=""), id="url-encoded-twice"),
        pytest.param("".join(f"&#{ord(c)};" for c in PLAIN), id="html-entities"),
    ],
)
def test_text_still_holding_a_key_once_decoded_is_withheld(spelled: str) -> None:
    assert Redactor([KEY, PLAIN])(f"starts with {spelled}") == WITHHELD


def test_values_are_redacted_keys_and_all() -> None:
    redact = Redactor([PLAIN])
    value = {"id": f"m-{PLAIN}", PLAIN: [1, {"k": f"x {PLAIN} y"}], "n": 1.5}
    assert redact.value(value) == {"id": "m-***", "***": [1, {"k": "x *** y"}], "n": 1.5}


def test_no_secret_no_change_and_short_strings_are_not_secrets() -> None:
    assert Redactor()("anything %41") == "anything %41"
    assert not Redactor()
    assert not Redactor(["abc"])  # too short to tell from ordinary text
    redact = Redactor()
    redact.add(PLAIN)
    assert redact(PLAIN) == MASK
