"""Slack mrkdwn from GitLab values, for the pure plan: ``Mrkdwn`` marks text that is already safe, so a value
is escaped exactly once however many templates it passes through. The dialect is ``bot.text.dialects.MRKDWN``
(nothing a GitLab user writes can mention, link or format anyone in Slack); these are its names for the plan."""

from __future__ import annotations

from bot.text import mrkdwn
from bot.text.dialects import MRKDWN
from bot.text.safe import Mrkdwn

__all__ = ["ZWJ", "Mrkdwn", "escape_mrkdwn", "first_line", "link"]

ZWJ = mrkdwn.WORD_JOINER
"""What breaks up an ``@``-handle (kept under this name for the plan's tests)."""


def escape_mrkdwn(value: object) -> Mrkdwn:
    """``&``, ``<``, ``>`` as entities, control characters dropped, and each ``@`` that starts a handle broken
    up, so ``@here``, ``@channel``, ``@everyone`` and ``@someone`` stay plain text."""
    return MRKDWN.escape(value)


def link(url: str, label: str) -> Mrkdwn:
    """A Slack link ``<url|label>`` (``label`` raw, escaped here); a URL that is not plain http(s) is shown as
    the escaped label instead."""
    return Mrkdwn(mrkdwn.slack_link(url, label))


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
