"""Provider text made safe to show (monitor/text.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import one_line, printable, shown


@pytest.mark.parametrize(
    ("raw", "out"),
    [
        ("gpt-4o", "gpt-4o"),
        ("meta-llama/llama-3.3-70b:free", "meta-llama/llama-3.3-70b:free"),
        ("caf\u00e9 \U0001f600", "caf\u00e9 \U0001f600"),
        ("bad\x00id", "bad\\x00id"),
        ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("line\u2028break\nnew", "line\\u2028break\\x0anew"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("s\ud800x", "s\\ud800x"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
    ],
)
def test_printable_escapes_what_drives_a_terminal(raw: str, out: str) -> None:
    assert printable(raw) == out


def test_shown_quotes_an_escaped_id_so_it_differs_from_a_printable_one() -> None:
    assert shown("a\x00") == '"a\\x00"'
    assert shown("a\\x00") == "a\\x00"
    assert shown("plain") == "plain"


def test_one_line_joins_lines_and_cuts_long_text() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line("x" * 200, 20) == "x" * 17 + "..."
    assert one_line("bell\x07") == "bell\\x07"


@given(st.text())
def test_what_is_shown_is_always_printable_and_idempotent(text: str) -> None:
    out = printable(text)
    assert out.isprintable()
    assert printable(out) == out
    assert shown(text).isprintable() and one_line(text).isprintable()


def test_markdown_literal_escapes_what_starts_markup_and_nothing_else() -> None:
    from monitor.text import markdown_literal

    assert markdown_literal("meta-llama/llama-3.3-70b:free") == "meta-llama/llama-3.3-70b:free"
    assert markdown_literal("<!here>") == "\\<!here\\>"
    assert markdown_literal("[x](y) a*b_c `d` ~e~ &lt; \\") == (
        "\\[x\\](y) a\\*b\\_c \\`d\\` \\~e\\~ \\&lt; \\\\"
    )
