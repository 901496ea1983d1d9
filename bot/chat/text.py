"""Slack mrkdwn from GitLab values: nothing a GitLab user writes can mention, link or format anyone in Slack.

A minimal stand-in for the shared escaping module; ``Mrkdwn`` marks text that is already safe.
"""

from __future__ import annotations

import re

ZWJ = "\u200d"
_AT = re.compile(r"@(?=[\w.-])")
_URL = re.compile(r"^https?://[^\s<>|]+$")


class Mrkdwn(str):
    """Text already safe for Slack mrkdwn (escaped, or written by the bot itself)."""

    __slots__ = ()


def escape_mrkdwn(value: object) -> Mrkdwn:
    """``&``, ``<``, ``>`` as entities, and a zero-width joiner after each ``@`` that starts a word, so
    ``@here``, ``@channel``, ``@everyone`` and ``@someone`` stay plain text."""
    if isinstance(value, Mrkdwn):
        return value
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Mrkdwn(_AT.sub("@" + ZWJ, text))


def link(url: str, label: object) -> Mrkdwn:
    """A Slack link ``<url|label>``; a URL that is not plain http(s) is shown as escaped text instead."""
    shown = escape_mrkdwn(label).replace("|", "¦")
    if not _URL.match(url):
        return Mrkdwn(shown)
    return Mrkdwn(f"<{url.replace('&', '&amp;')}|{shown}>")


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
