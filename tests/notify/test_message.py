from __future__ import annotations

from datetime import UTC, datetime

from monitor.diff import diff_models
from monitor.notify import change_message

WHEN = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_title_counts_added_and_removed() -> None:
    diff = diff_models(frozenset({"a", "b"}), frozenset({"a", "c"}))
    message = change_message("dos-ai", diff, WHEN)
    assert message.title == "dos-ai: 1 model added, 1 removed"


def test_body_names_every_id_under_its_heading() -> None:
    diff = diff_models(frozenset({"old-1", "old-2", "kept"}), frozenset({"kept", "new-1"}))
    body = change_message("dos-ai", diff, WHEN).body
    added_part, removed_part = body.split("Removed")
    assert "- new-1" in added_part.splitlines() and "Added (1)" in added_part
    assert {"- old-1", "- old-2"} <= set(removed_part.splitlines())
    assert "(2)" in removed_part
    assert "kept" not in body
    assert "2026-11-26 10:00:00 UTC" in body


def test_only_removals_have_no_added_section() -> None:
    diff = diff_models(frozenset({"a", "b"}), frozenset({"a"}))
    message = change_message("groq", diff, WHEN)
    assert message.title == "groq: 1 model removed"
    assert "Added" not in message.body


def test_a_price_change_reads_per_million_tokens() -> None:
    from monitor.diff import FieldChange, ModelDiff

    diff = ModelDiff(
        frozenset(),
        frozenset(),
        (FieldChange("deepseek-v3", "pricing.prompt", "0.00000027", "0.00000014"),),
    )
    message = change_message("openrouter", diff, WHEN)
    assert message.title == "openrouter: 1 model changed"
    assert "- deepseek-v3: pricing.prompt 0.27 → 0.14 per 1M tokens" in message.body.splitlines()


def test_old_and_new_prices_are_scaled_the_same_way() -> None:
    from monitor.notify.message import show_change

    assert show_change("pricing.prompt", "0.000015", "0.02") == "15 → 20000 per 1M tokens"
    assert show_change("pricing.prompt", "2.5", "3") == "2.5 → 3"
    assert show_change("context_length", 64000, 128000) == "64000 → 128000"
    assert show_change("deprecation", None, "2026-12-31") == "none → 2026-12-31"


def test_a_providers_strings_never_drive_the_chat_or_terminal() -> None:
    from monitor.diff import FieldChange, ModelDiff
    from monitor.notify import down_message

    diff = ModelDiff(
        frozenset({"evil\u202egnp.exe", "bad\x00id"}),
        frozenset({"\x1b[2Jgone"}),
        (FieldChange("m\u2028x", "pricing.prompt", "1\x07", "2\nthird line"),),
    )
    message = change_message("dos-ai", diff, WHEN)
    lines = message.body.splitlines()  # Markdown: a backslash is written \\\\
    assert '- "evil\\\\u202egnp.exe"' in lines and '- "bad\\\\x00id"' in lines
    assert '- "\\\\x1b\\[2Jgone"' in lines
    assert '- "m\\\\u2028x": pricing.prompt 1\\\\x07 → 2 third line' in lines
    plain = change_message("dos-ai", diff, WHEN, markdown=False).body.splitlines()
    assert '- "evil\\u202egnp.exe"' in plain and '- "\\x1b[2Jgone"' in plain
    assert message.body.replace("\n", "").isprintable()
    down = down_message(
        "dos-ai", error="HTTP 401 (\u202eyek)", failures=3, since=WHEN, repeat=False
    )
    assert "\u202e" not in down.title + down.body and "\\u202eyek" in down.title


def test_a_providers_markup_is_shown_not_obeyed() -> None:
    diff = diff_models(
        frozenset(), frozenset({"<!here>", "[click](https://evil.example)", "a*b*c_d"})
    )
    body = change_message("dos-ai", diff, WHEN).body
    assert "- \\<!here\\>" in body.splitlines()
    assert "- \\[click\\](https://evil.example)" in body.splitlines()
    assert "- a\\*b\\*c\\_d" in body.splitlines()
    assert "<!here>" not in body.replace("\\<!here\\>", "")


def test_a_removed_model_says_where_it_is_still_served() -> None:
    from monitor.routing import ServedAt

    diff = diff_models(frozenset({"llama-3.3-70b", "old_model", "kept"}), frozenset({"kept"}))
    served = {
        "llama-3.3-70b": (
            ServedAt("together", "llama-3.3-70b"),
            ServedAt("openrouter", "meta-llama/llama-3.3-70b"),
        )
    }
    plain = change_message("dos-ai", diff, WHEN, markdown=False, still_at=served).body
    assert "- llama-3.3-70b (still at: together, openrouter as meta-llama/llama-3.3-70b)" in plain
    assert "- old_model\n" in plain  # served nowhere else: nothing added
    served["old_model"] = (ServedAt("eu_gateway", "old_model"),)
    markdown = change_message("dos-ai", diff, WHEN, still_at=served).body
    assert "- old\\_model (still at: eu\\_gateway)\n" in markdown  # escaped like any name
