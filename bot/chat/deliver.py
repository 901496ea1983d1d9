"""Send outbox messages through a :class:`ChatPort`, finding earlier posts again by their key.

A minimal stand-in with the shared API: each message is looked up in its conversation's recent history
(once per conversation) before it is posted, so a crash between posting and recording posts nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from bot.chat.ports import ChatAuthError, ChatMessage, ChatPort, ChatRefused, ChatUnavailable, Sent


class Outgoing(NamedTuple):
    message: ChatMessage
    ts: str | None  # where a summary already is (edited in place)
    sent: bool  # whether it was ever posted


@dataclass
class DeliveryReport:
    sent: list[Sent] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    unavailable: ChatUnavailable | None = None
    auth_error: ChatAuthError | None = None


def deliver(items: Sequence[Outgoing], port: ChatPort) -> DeliveryReport:
    """Post (or edit) each message in order; stop at the first outage or auth error (the rest wait)."""
    report = DeliveryReport()
    channels: dict[str, str] = {}
    history: dict[str, dict[str, str]] = {}
    for item in items:
        m = item.message
        try:
            if m.target not in channels:
                channels[m.target] = port.resolve(m.target)
            channel = channels[m.target]
            ts = item.ts
            if ts is None:
                if channel not in history:
                    history[channel] = port.posted_keys(channel)
                ts = history[channel].get(m.key)
                if ts is not None and not m.summary:
                    report.sent.append(Sent(m.key, channel, ts))
                    continue
            if ts is not None:
                port.update(channel, ts, m.text)
            else:
                ts = port.post(channel, m.text, m.key)
            report.sent.append(Sent(m.key, channel, ts))
        except ChatAuthError as exc:
            report.auth_error = exc
            return report
        except ChatUnavailable as exc:
            report.unavailable = exc
            return report
        except ChatRefused as exc:
            report.refused[m.key] = exc.reason
    return report
