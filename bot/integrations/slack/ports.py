"""What the Slack side asks of Slack, and what it hands over: one narrow protocol and its value types.

``bot.integrations.slack.slackapi.SlackChat`` (the official ``slack_sdk`` Web API client) implements :class:`ChatPort`;
tests use the simulated Slack (``bot.simslack``) over real HTTP, or an in-memory fake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ChatMessage:
    """One message the plan wants in Slack.

    ``key`` names it for good: ``"<incident key>|<event>|<target>|<window>"``. It travels in the message's
    Slack metadata, so that after a crash or with an empty database the message is found again in the
    target's history instead of being posted twice. A ``summary`` message is posted once and then edited in place
    (``chat.update``) whenever its text changes: the incident's summary, and a window of status updates.
    """

    key: str
    target: str
    """A configured target: ``#channel-name``, a Slack channel id (``C…``), a user id (``U…``, a direct
    message) or ``email:someone@example.com`` (a direct message to the user with that email)."""
    text: str
    """Slack mrkdwn, already escaped (nothing from GitLab can mention or link anyone)."""
    summary: bool = False
    since: datetime | None = field(default=None, compare=False)
    """It cannot have been posted before this (the incident's start): bounds the history read for it."""


@dataclass(frozen=True)
class Sent:
    """Where a message is in Slack: the conversation id it was posted to and its ``ts``."""

    key: str
    channel: str
    ts: str


@dataclass(frozen=True)
class HistoryPage:
    """One page of a conversation's history, newest first: the keys of the bot's own messages on it."""

    keys: dict[str, str]
    """Message key (from metadata) -> its ``ts``, only for messages the bot itself posted (a key in anyone
    else's message is not believed)."""
    next_cursor: str = ""
    """Where the next (older) page starts; empty at the end or at ``oldest``."""


class ChatError(Exception):
    """Slack did not do what was asked. ``reason`` is one line a person can act on (no token in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChatUnavailable(ChatError):
    """Slack is down, slow, or rate-limiting: try again later (``retry_after`` seconds when Slack said)."""

    def __init__(self, reason: str, retry_after: float | None = None, *, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        """Slack answered 429 for this method: other methods may still be fine."""


class ChatRefused(ChatError):
    """Slack refused for this target (``channel_not_found``, ``not_in_channel``, ``users_not_found``):
    retrying cannot help until someone changes the config or invites the bot."""


class ChatTooLong(ChatRefused):
    """Slack refused this message's text as too long (``msg_too_long``): the message's fault, not its
    target's; other messages still go there."""


class ChatAuthError(ChatRefused):
    """The token is wrong, revoked or lacks a scope: nothing can be sent to any target."""


class ChatPort(Protocol):
    def resolve(self, target: str) -> str:
        """The conversation id to post to for a configured target (cached per process): ``#name`` by
        ``conversations.list``, ``U…``/``email:…`` by ``conversations.open`` (after ``users.lookupByEmail``)."""
        ...

    def history(self, channel: str, *, oldest: float | None = None, cursor: str = "") -> HistoryPage:
        """One page of ``conversations.history`` (newest first, back to ``oldest``, seconds since the epoch):
        the keys of the bot's own messages on it, and where the next page starts."""
        ...

    def post(self, channel: str, text: str, key: str) -> str:
        """Post ``text`` with ``key`` in its metadata; the new message's ``ts``."""
        ...

    def update(self, channel: str, ts: str, text: str) -> None:
        """Replace the text of the bot's message ``ts`` (a summary)."""
        ...

    def create_channel(self, name: str, *, private: bool) -> str:
        """Create the channel ``name`` (``#inc-12``), once: its id. A channel of that name the bot created
        before (an answer lost) is adopted; one anybody else created is :class:`ChatRefused`."""
        ...

    def invite(self, channel: str, people: list[str]) -> list[str]:
        """Invite ``people`` (user ids ``U…`` or ``email:…``) to ``channel``; those already in it, and the bot
        itself, count as done. The one-line reasons for those who could not be invited."""
        ...
