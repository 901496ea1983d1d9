"""The sending step: get planned messages into Slack exactly once, over any :class:`ChatPort`.

Exactly once without trusting local memory: every message carries its key in Slack metadata, so before
posting anything that may be in Slack already (``Outgoing.unsure``: tried before, or its memory may have
been lost) the target conversation's recent history is read (once per conversation per call) and a key
found there counts as sent. A kill between a post and its bookkeeping, or an empty database, therefore
never posts twice. A summary with a known ``ts`` is edited in place.

Failures: a refused target fails its own messages and the rest go on; a token problem stops everything;
Slack unavailable stops at once, reporting what was sent so far and when to come back (the caller records
the sent ones and retries the rest later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.chat.ports import ChatAuthError, ChatError, ChatMessage, ChatPort, ChatUnavailable, Sent


@dataclass(frozen=True)
class Outgoing:
    """A planned message and what is already known of it."""

    message: ChatMessage
    ts: str | None = None
    """Where it already is, if known: a summary's ``ts`` (to edit), or a message known to be posted."""
    sent: bool = False
    """Known sent with this very text: nothing to do."""
    unsure: bool = True
    """It may be in Slack already though no ``ts`` is known (a send was cut short, or the memory of it was
    lost): its key is looked for in the conversation's history before posting. ``False`` only when the
    caller knows it was never tried, which saves the history read."""


@dataclass
class DeliveryReport:
    """What one :func:`deliver` did."""

    sent: list[Sent] = field(default_factory=list)
    """Messages now in Slack (posted, edited, or found already there): the caller records them."""
    refused: dict[str, str] = field(default_factory=dict)
    """Message key → the one-line reason Slack refused its target (retrying will not help)."""
    unavailable: ChatUnavailable | None = None
    """Set when Slack was unavailable: delivery stopped there; try again after ``retry_after``."""
    auth_error: ChatAuthError | None = None
    """Set when the token was refused: delivery stopped; nothing can be sent until it is fixed."""
    calls: int = 0
    """Port calls made (each ``resolve``, ``posted_keys``, ``post``, ``update``)."""
    posted: int = 0
    updated: int = 0
    found: int = 0
    """Messages found already in Slack by their key (not posted again)."""

    @property
    def complete(self) -> bool:
        """Nothing left to retry later (refusals aside)."""
        return self.unavailable is None and self.auth_error is None

    @property
    def retry_after(self) -> float | None:
        return self.unavailable.retry_after if self.unavailable is not None else None


class _Stop(Exception):
    pass


class _Delivery:
    def __init__(self, port: ChatPort) -> None:
        self.port = port
        self.report = DeliveryReport()
        self.channels: dict[str, str | ChatError] = {}
        self.history: dict[str, dict[str, str]] = {}
        self.unreadable: dict[str, ChatError] = {}

    def call_failed(self, err: ChatError) -> None:
        """Stop on unavailable/auth; otherwise the caller records the refusal."""
        if isinstance(err, ChatUnavailable):
            self.report.unavailable = err
            raise _Stop
        if isinstance(err, ChatAuthError):
            self.report.auth_error = err
            raise _Stop

    def channel(self, target: str) -> str:
        known = self.channels.get(target)
        if isinstance(known, ChatError):
            raise known
        if known is not None:
            return known
        self.report.calls += 1
        try:
            channel = self.port.resolve(target)
        except ChatError as err:
            self.call_failed(err)
            self.channels[target] = err
            raise
        self.channels[target] = channel
        return channel

    def posted(self, channel: str) -> dict[str, str]:
        if channel in self.unreadable:
            raise self.unreadable[channel]
        if channel not in self.history:
            self.report.calls += 1
            try:
                self.history[channel] = dict(self.port.posted_keys(channel))
            except ChatError as err:
                self.call_failed(err)
                self.unreadable[channel] = err
                raise
        return self.history[channel]

    def one(self, item: Outgoing) -> None:
        msg = item.message
        channel = self.channel(msg.target)
        ts = item.ts
        if ts is None:
            ts = self.posted(channel).get(msg.key) if item.unsure else None
            if ts is not None:
                self.report.found += 1
                if not msg.summary:
                    self.sent(msg.key, channel, ts)
                    return
        elif not msg.summary:
            self.sent(msg.key, channel, ts)
            return
        if ts is not None and self.edit(channel, ts, msg):
            return
        if ts is not None and item.ts is not None:
            # The remembered summary is gone or not editable: another copy may be in the history.
            found = self.posted(channel).get(msg.key)
            if found is not None and found != ts and self.edit(channel, found, msg):
                return
        self.report.calls += 1
        try:
            ts = self.port.post(channel, msg.text, msg.key)
        except ChatError as err:
            self.call_failed(err)
            raise
        self.report.posted += 1
        self.history.setdefault(channel, {})[msg.key] = ts
        self.sent(msg.key, channel, ts)

    def edit(self, channel: str, ts: str, msg: ChatMessage) -> bool:
        """Edit the summary at ``ts``; False when Slack refused (the message is gone or not the bot's)."""
        self.report.calls += 1
        try:
            self.port.update(channel, ts, msg.text)
        except ChatError as err:
            self.call_failed(err)
            return False
        self.report.updated += 1
        self.sent(msg.key, channel, ts)
        return True

    def sent(self, key: str, channel: str, ts: str) -> None:
        self.report.sent.append(Sent(key, channel, ts))


def deliver(items: Sequence[Outgoing], port: ChatPort) -> DeliveryReport:
    """Send what is not known sent, in order, each key at most once; see the module docstring."""
    run = _Delivery(port)
    done: set[str] = set()
    try:
        for item in items:
            key = item.message.key
            if item.sent or key in done:
                continue
            done.add(key)
            try:
                run.one(item)
            except ChatError as err:
                reason = err.reason
                channel = run.channels.get(item.message.target)
                if isinstance(channel, str) and channel != item.message.target:
                    reason = reason.replace(channel, f"{item.message.target} ({channel})")
                run.report.refused[key] = reason
    except _Stop:
        pass
    return run.report
