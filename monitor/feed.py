"""The recent change events as an Atom feed (RFC 4287), for feed readers. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from monitor.diff import ModelDiff
from monitor.notify.message import change_message
from monitor.store import ChangeRecord

ATOM = "http://www.w3.org/2005/Atom"
FEED_ID = "urn:model-monitor:changes"


def atom_feed(changes: Sequence[ChangeRecord], *, now: datetime, self_url: str) -> bytes:
    """Newest first, as given; ``updated`` is the newest change (or ``now`` when none)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", FEED_ID)
    _text(feed, "title", "model-monitor: model list changes")
    _text(feed, "updated", _when(changes[0].detected_at if changes else now))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "model-monitor")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=self_url)
    for change in changes:
        diff = ModelDiff(frozenset(change.added), frozenset(change.removed), change.changed)
        message = change_message(change.target, diff, change.detected_at, markdown=False)
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", f"{FEED_ID}:{change.id}")
        _text(entry, "title", message.title)
        _text(entry, "updated", _when(change.detected_at))
        ET.SubElement(entry, f"{{{ATOM}}}category", term=_NOT_XML.sub("\ufffd", change.target))
        content = _text(entry, "content", message.body)
        content.set("type", "text")
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}")
    element.text = _NOT_XML.sub("\ufffd", text)  # XML 1.0 cannot carry control characters
    return element


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
