"""The escaped-string type and the template error: the names the pure core shares with the renderers.

``Escaped`` is text already safe in one dialect (``bot.text.dialects``): GitLab Markdown (``Safe``), Slack
mrkdwn (``Mrkdwn``) or plain text for a terminal (``Plain``). A dialect prints its own kind unchanged and
escapes everything else, the other dialects' kinds included: text safe for Slack is not safe for GitLab.

They live apart from ``bot.text.templates`` so that the core can use them without importing Jinja2.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["Escaped", "Mrkdwn", "Plain", "Safe", "TemplateRenderError"]


class Escaped(str):
    """Text already escaped for ``dialect`` (or written by the bot itself). Never wrap text from GitLab in
    one: that switches its escaping off."""

    __slots__ = ()
    dialect: ClassVar[str] = ""


class Safe(Escaped):
    """GitLab Markdown produced by one of the renderer's filters or the bot's own words; printed unchanged."""

    __slots__ = ()
    dialect = "markdown"


class Mrkdwn(Escaped):
    """Slack mrkdwn already safe (escaped, or written by the bot itself)."""

    __slots__ = ()
    dialect = "mrkdwn"


class Plain(Escaped):
    """Plain text safe for a terminal: no control character, so no escape sequence."""

    __slots__ = ()
    dialect = "plain"


class TemplateRenderError(Exception):
    """A template could not be rendered. The message is one line naming template and line."""

    def __init__(self, message: str, template: str | None = None, lineno: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.template = template
        self.lineno = lineno
