"""Putting text that came from GitLab into a Slack message (mrkdwn) so that it reads as written and does
nothing: no ``<!channel>``/``<!here>``, no ``<@U…>`` or ``<#C…>`` mention, no disguised link.

Slack parses ``<…>`` as its control sequences and only ``&``, ``<`` and ``>`` need escaping for that
(https://api.slack.com/reference/surfaces/formatting#escaping). Bare ``@here``/``@channel``/``@name`` only
mention with ``link_names`` on, which the bot never sets; they are broken up anyway (a word joiner after
the ``@``), so a message stays inert if it is ever sent by other means. ``*_~``` formatting is left as is:
it can change how a value looks, never who is notified.
"""

from __future__ import annotations

import re

__all__ = ["WORD_JOINER", "escape_mrkdwn", "slack_link"]

WORD_JOINER = "\u2060"
"""Invisible, zero width, and not a word character: ``@\u2060here`` mentions no one."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_AT = re.compile(r"(?<![\w.])@(?=[\w.\-])")  # an @ that starts a handle (not the one inside an email)
_URL_UNSAFE = re.compile(r"[\s|<>\x00-\x1f\x7f]")


def escape_mrkdwn(value: str) -> str:
    """``value`` as literal mrkdwn text: ``&<>`` escaped, handles broken up, control characters dropped."""
    text = _CONTROL.sub("", value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _AT.sub("@" + WORD_JOINER, text)


def slack_link(url: str, label: str) -> str:
    """``<url|label>`` for an http(s) ``url``; anything else gives the escaped label alone (no link).

    Characters that would end the link early (``|``, ``>``) or start another (``<``), and whitespace, are
    removed from the url; the label is escaped like any other value.
    """
    shown = escape_mrkdwn(label)
    clean = _URL_UNSAFE.sub("", url)
    if not re.match(r"https?://[^/?#\s]", clean, flags=re.IGNORECASE):
        return shown
    clean = clean.replace("&", "&amp;")
    return f"<{clean}|{shown}>" if shown else f"<{clean}>"
