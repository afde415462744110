"""Notifications: what an alert says (pure) and delivering it through apprise."""

from monitor.notify.message import (
    Message,
    change_message,
    down_message,
    recovered_message,
    test_message,
)
from monitor.notify.send import AppriseSender, Sender, SendResult, check_urls, redact_url

__all__ = [
    "AppriseSender",
    "Message",
    "SendResult",
    "Sender",
    "change_message",
    "check_urls",
    "down_message",
    "recovered_message",
    "redact_url",
    "test_message",
]
