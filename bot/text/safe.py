"""``Safe`` text and the template error: the two names the pure core shares with the renderer.

They live apart from ``bot.text.templates`` so that the core can use them without importing Jinja2.
"""

from __future__ import annotations

__all__ = ["Safe", "TemplateRenderError"]


class Safe(str):
    """Markdown produced by one of the renderer's filters; printed unchanged.

    Never wrap text from GitLab in ``Safe``: that switches its escaping off.
    """

    __slots__ = ()


class TemplateRenderError(Exception):
    """A template could not be rendered. The message is one line naming template and line."""

    def __init__(self, message: str, template: str | None = None, lineno: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.template = template
        self.lineno = lineno
