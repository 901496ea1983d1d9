"""The sending step: get planned messages into Slack exactly once, over any :class:`ChatPort`.

Exactly once without trusting local memory: every message carries its key in Slack metadata, so before
posting anything that may be in Slack already (``Outgoing.unsure``: tried before, or its memory may have
been lost) the target conversation's history is read, newest first, one page at a time, and a key found
there (in a message the bot itself posted) counts as sent. The read stops at the first page holding the
key, and never goes back past ``Outgoing.oldest`` (the first send attempt, or the incident's start): a kill
between a post and its bookkeeping, or an empty database, never posts twice, and a busy channel costs no
more than the pages since then. A summary with a known ``ts`` is edited in place.

Failures: a refused target fails its own messages and the rest go on; a history read Slack refuses or
rate-limits (a distributed app gets one a minute) holds back only the messages that needed it, until
``retry_after`` (``DeliveryReport.deferred``); a text Slack finds too long goes out shortened to its first
line; a token problem stops everything; Slack unavailable stops at once, reporting what was sent so far and
when to come back (the caller records the sent ones and retries the rest later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.integrations.slack.ports import (
    ChatAuthError,
    ChatError,
    ChatMessage,
    ChatPort,
    ChatTooLong,
    ChatUnavailable,
    Sent,
)

HISTORY_PAGES = 20
"""Pages of history read at most for one target in one delivery, back to ``oldest``."""
UNBOUNDED_PAGES = 5
"""The same without an ``oldest`` bound (a message from before the bound was recorded)."""
TOO_LONG = "\n_(The rest was too long for Slack: it is in GitLab.)_"


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
    oldest: float | None = None
    """Seconds since the epoch before which it cannot have been posted: the history read stops there."""


@dataclass
class DeliveryReport:
    """What one :func:`deliver` did."""

    sent: list[Sent] = field(default_factory=list)
    """Messages now in Slack (posted, edited, or found already there): the caller records them."""
    refused: dict[str, str] = field(default_factory=dict)
    """Message key → the one-line reason Slack refused its target (retrying will not help)."""
    deferred: dict[str, str] = field(default_factory=dict)
    """Message key → why it waits: the history read it needs was rate-limited or failed. Try again after
    ``defer_after`` seconds; the other messages went on."""
    defer_after: float | None = None
    unavailable: ChatUnavailable | None = None
    """Set when Slack was unavailable: delivery stopped there; try again after ``retry_after``."""
    auth_error: ChatAuthError | None = None
    """Set when the token was refused: delivery stopped; nothing can be sent until it is fixed."""
    calls: int = 0
    """Port calls made (each ``resolve``, ``history`` page, ``post``, ``update``)."""
    posted: int = 0
    updated: int = 0
    found: int = 0
    """Messages found already in Slack by their key (not posted again)."""

    @property
    def complete(self) -> bool:
        """Nothing left to retry later (refusals aside)."""
        return self.unavailable is None and self.auth_error is None and not self.deferred

    @property
    def retry_after(self) -> float | None:
        if self.unavailable is not None:
            return self.unavailable.retry_after
        return self.defer_after if self.deferred else None


class _Stop(Exception):
    pass


class _Defer(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Scan:
    """How far one target's history has been read: the bot's keys seen, and where the next page starts.
    Kept by the caller between deliveries when some were deferred, so a rate-limited read resumes."""

    oldest: float | None
    keys: dict[str, str] = field(default_factory=dict)
    cursor: str = ""
    pages: int = 0
    done: bool = False


class _Delivery:
    def __init__(self, port: ChatPort, oldest: dict[str, float | None], scans: dict[str, Scan]) -> None:
        self.port = port
        self.report = DeliveryReport()
        self.channels: dict[str, str | ChatError] = {}
        self.oldest = oldest
        self.scans = scans
        self.unreadable: dict[str, ChatError] = {}
        self.history_blocked: ChatUnavailable | None = None

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

    def scan(self, target: str) -> Scan:
        scan = self.scans.get(target)
        oldest = self.oldest.get(target)
        if scan is None or (scan.oldest is not None and (oldest is None or oldest < scan.oldest)):
            scan = self.scans[target] = Scan(oldest)
        return scan

    def lookup(self, target: str, channel: str, key: str) -> str | None:
        """The ``ts`` of the bot's message with ``key`` in the target's history, reading pages (newest
        first) only until it shows up; ``None`` when it is not there back to ``oldest``."""
        if target in self.unreadable:
            raise self.unreadable[target]
        scan = self.scan(target)
        limit = HISTORY_PAGES if scan.oldest is not None else UNBOUNDED_PAGES
        while key not in scan.keys and not scan.done:
            if self.history_blocked is not None:
                raise _Defer(self.history_blocked.reason)
            self.report.calls += 1
            try:
                page = self.port.history(channel, oldest=scan.oldest, cursor=scan.cursor)
            except ChatUnavailable as err:
                if not err.rate_limited:  # Slack is down: stop here
                    self.call_failed(err)
                # Rate-limited (a distributed app may read history once a minute): this target waits, the
                # others go on.
                self.history_blocked = err
                self.defer_for(err.retry_after)
                raise _Defer(err.reason) from None
            except ChatError as err:
                self.call_failed(err)
                self.unreadable[target] = err
                raise
            for found, ts in page.keys.items():
                scan.keys.setdefault(found, ts)
            scan.pages += 1
            scan.cursor = page.next_cursor
            scan.done = not page.next_cursor or scan.pages >= limit
        return scan.keys.get(key)

    def defer_for(self, after: float | None) -> None:
        wait = after if after is not None else 60.0
        current = self.report.defer_after
        self.report.defer_after = wait if current is None else max(current, wait)

    def one(self, item: Outgoing) -> None:
        msg = item.message
        channel = self.channel(msg.target)
        ts = item.ts
        if ts is None:
            ts = self.lookup(msg.target, channel, msg.key) if item.unsure else None
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
            found = self.lookup(msg.target, channel, msg.key)
            if found is not None and found != ts and self.edit(channel, found, msg):
                return
        self.report.calls += 1
        try:
            ts = self.port.post(channel, msg.text, msg.key)
        except ChatTooLong:  # the message's fault: its first line (what, where, the link) still goes
            self.report.calls += 1
            try:
                ts = self.port.post(channel, shortened(msg.text), msg.key)
            except ChatError as err:
                self.call_failed(err)
                raise
        except ChatError as err:
            self.call_failed(err)
            raise
        self.report.posted += 1
        self.scan(msg.target).keys[msg.key] = ts
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


def shortened(text: str) -> str:
    """A message Slack found too long: its first line, which names the incident and links to it."""
    return text.strip().splitlines()[0] + TOO_LONG if text.strip() else TOO_LONG.strip()


def deliver(items: Sequence[Outgoing], port: ChatPort, scans: dict[str, Scan] | None = None) -> DeliveryReport:
    """Send what is not known sent, in order, each key at most once; see the module docstring. ``scans``:
    how far each target's history was read by an earlier delivery that was deferred (updated in place)."""
    oldest: dict[str, float | None] = {}
    for item in items:
        if item.unsure and not item.sent:
            target = item.message.target
            if target not in oldest:
                oldest[target] = item.oldest
            else:  # the read goes back to the oldest bound any of the target's messages needs
                here = oldest[target]
                oldest[target] = None if here is None or item.oldest is None else min(here, item.oldest)
    run = _Delivery(port, oldest, scans if scans is not None else {})
    done: set[str] = set()
    held: dict[str, str] = {}
    try:
        for item in items:
            key = item.message.key
            if item.sent or key in done:
                continue
            done.add(key)
            target = item.message.target
            if target in held:  # keep each target's messages in order behind the one that waits
                run.report.deferred[key] = held[target]
                continue
            try:
                run.one(item)
            except _Defer as why:
                run.report.deferred[key] = held[target] = why.reason
            except ChatError as err:
                reason = err.reason
                channel = run.channels.get(item.message.target)
                if isinstance(channel, str) and channel != item.message.target:
                    reason = reason.replace(channel, f"{item.message.target} ({channel})")
                run.report.refused[key] = reason
    except _Stop:
        pass
    return run.report
