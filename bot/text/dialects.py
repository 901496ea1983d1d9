"""The three dialects the bot writes, each with its escaped-string type and its one escaping rule:

- ``MARKDOWN``: GitLab Flavored Markdown (issue descriptions, comments), ``bot.text.escape.escape_inline``;
- ``MRKDWN``: Slack mrkdwn, ``bot.text.mrkdwn.escape_mrkdwn`` (no mention, link or channel from a value);
- ``PLAIN``: plain text for a terminal (the command line), control characters shown as ``?``.

``dialect.escape(value)`` returns a value already of the dialect's kind unchanged and escapes anything else,
so a value is escaped exactly once in its dialect however many templates it passes through, and text made
safe for one dialect is escaped again when it reaches another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.text import escape as markdown
from bot.text import mrkdwn
from bot.text.safe import Escaped, Mrkdwn, Plain, Safe

__all__ = ["DIALECTS", "MARKDOWN", "MRKDWN", "PLAIN", "Dialect"]

E = TypeVar("E", bound=Escaped)

_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Dialect(Generic[E]):
    """One output language: its name, the type of text already safe in it, and how to make text safe."""

    name: str
    kind: type[E]
    _escape: Callable[[str], str]

    def escape(self, value: object) -> E:
        """``value`` safe in this dialect: unchanged when it already is, escaped otherwise."""
        if isinstance(value, self.kind):
            return value
        return self.kind(self._escape(str(value)))


def _plain(text: str) -> str:
    """Terminal-safe: no escape sequence from GitLab data reaches the user's terminal."""
    return _TERMINAL_CONTROL.sub("?", text)


MARKDOWN: Dialect[Safe] = Dialect("markdown", Safe, markdown.escape_inline)
MRKDWN: Dialect[Mrkdwn] = Dialect("mrkdwn", Mrkdwn, mrkdwn.escape_mrkdwn)
PLAIN: Dialect[Plain] = Dialect("plain", Plain, _plain)
DIALECTS = {d.name: d for d in (MARKDOWN, MRKDWN, PLAIN)}
