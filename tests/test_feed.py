"""The Atom feed of change events (monitor.feed), parsed back as Atom."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree

from monitor.diff import FieldChange
from monitor.feed import atom_feed
from monitor.store import ChangeRecord

A = "{http://www.w3.org/2005/Atom}"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def change(i: int, **extra: object) -> ChangeRecord:
    values: dict[str, object] = {
        "id": i,
        "target": "openrouter",
        "detected_at": datetime(2026, 11, 26, 10, i, tzinfo=UTC),
        "from_snapshot_id": 1,
        "to_snapshot_id": 2,
        "added": ("vendor/new",),
        "removed": (),
        "changed": (),
    }
    values.update(extra)
    return ChangeRecord(**values)  # type: ignore[arg-type]


def test_a_valid_atom_feed_with_one_entry_per_change() -> None:
    price = FieldChange("deepseek-v3", "pricing.prompt", "2.7e-07", "1.4e-07")
    xml = atom_feed(
        [change(2, added=(), changed=(price,)), change(1)],
        now=NOW,
        self_url="http://127.0.0.1:9464/feed.atom",
    )
    root = ElementTree.fromstring(xml)
    assert root.tag == f"{A}feed"
    # RFC 4287: a feed has id, title, updated, an author; each entry id, title, updated
    for required in ("id", "title", "updated"):
        assert root.findtext(f"{A}{required}")
    assert root.findtext(f"{A}author/{A}name") == "model-monitor"
    assert root.findtext(f"{A}updated") == "2026-11-26T10:02:00Z"
    entries = root.findall(f"{A}entry")
    assert [e.findtext(f"{A}title") for e in entries] == [
        "openrouter: 1 model changed",
        "openrouter: 1 model added",
    ]
    ids = [e.findtext(f"{A}id") for e in entries]
    assert len(set(ids)) == 2 and all(ids)
    content = entries[0].find(f"{A}content")
    assert content is not None and content.get("type") == "text"
    assert "pricing.prompt 0.27 → 0.14 per 1M tokens" in (content.text or "")
    assert "**" not in (content.text or "")


def test_an_empty_feed_is_still_valid() -> None:
    root = ElementTree.fromstring(atom_feed([], now=NOW, self_url="http://x/feed.atom"))
    assert root.findtext(f"{A}updated") == "2026-11-26T12:00:00Z"
    assert root.findall(f"{A}entry") == []


def test_control_characters_do_not_break_the_feed() -> None:
    odd = change(3, added=("model\x01with\x0bcontrols",))
    root = ElementTree.fromstring(atom_feed([odd], now=NOW, self_url="http://x/feed.atom"))
    (entry,) = root.findall(f"{A}entry")
    # shown escaped, like everywhere a provider's ID is shown: the reader sees what was sent
    assert '"model\\x01with\\x0bcontrols"' in (entry.findtext(f"{A}content") or "")


def test_a_bidi_override_in_an_id_is_shown_escaped_in_the_feed() -> None:
    xml = atom_feed([change(4, added=("evil\u202egnp.exe",))], now=NOW, self_url="http://x/f")
    (entry,) = ElementTree.fromstring(xml).findall(f"{A}entry")
    content = entry.findtext(f"{A}content") or ""
    assert "\u202e" not in content and '"evil\\u202egnp.exe"' in content
