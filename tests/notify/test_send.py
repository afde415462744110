"""Sending through apprise to real local services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from servers import ScriptedServer

from monitor.diff import diff_models
from monitor.notify import AppriseSender, change_message


def test_a_message_past_the_services_limit_is_split_not_dropped(scripted: ScriptedServer) -> None:
    """A service with a 1,000-character limit (apprise's enigma2 plugin talks to it)."""
    scripted.route = lambda *_: (200, {"result": True})
    gone = frozenset(f"vendor/a-rather-long-model-name-{i:03d}" for i in range(40))
    message = change_message("openrouter", diff_models(gone, frozenset()), datetime.now(UTC))
    assert len(message.body) > 1500
    delivery = AppriseSender().send(scripted.base.replace("http://", "enigma2://"), message)
    assert delivery.ok, delivery.error
    texts = [query.get("text", [""])[0] for _, query, _ in scripted.requests]
    assert len(texts) >= 2
    assert all(len(text) <= 1000 for text in texts)
    received = "".join(texts)
    assert all(model_id in received for model_id in gone)


def test_a_very_long_change_is_summarised() -> None:
    gone = frozenset(f"model-{i:03d}" for i in range(400))
    body = change_message("openrouter", diff_models(gone, frozenset()), datetime.now(UTC)).body
    lines = body.splitlines()
    assert lines[0] == "**Removed (400):**"
    assert "- model-049" in lines and "- model-050" not in lines
    assert "- … and 350 more models (monitor changes --target openrouter)" in lines


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://hooks.example.com/webhook/SECRETTOKEN123", "json://hooks.example.com/…/…"),
        ("form://host/in/abcdEFGH12345678", "form://host/in/…"),
        ("ntfy://ntfy.sh/mysecrettopic", "ntfy://ntfy.sh/…"),
        ("tgram://123456789:AABBccDDeeFFgg/987654", "tgram://1...g/…/"),
        ("json://127.0.0.1:8080/all", "json://127.0.0.1:8080/all"),  # short: a name
        (
            "mailto://user:hunter22@smtp.example.com?to=ops@example.com",
            "mailto://user:****@smtp.example.com/ops%40example.com",  # a recipient stays
        ),
    ],
)
def test_a_shown_url_keeps_no_token_apprise_leaves_in_its_path(url: str, shown: str) -> None:
    from monitor.notify.send import redact_url, url_secrets

    assert redact_url(url) == shown
    for secret in url_secrets(url):
        assert secret not in redact_url(url)
