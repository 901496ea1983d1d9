"""What a person sees of a body the bot writes: the text GitLab renders, block by block.

GitLab renders Markdown with comrak and soft line breaks (a single newline inside a paragraph is a space, as in
CommonMark; ``lib/banzai/filter/markdown_engines/glfm_markdown.rb`` sets no ``hardbreaks`` option). So two lines
of source meant as two lines show as one unless a block boundary (a blank line, a list item, a heading) or a hard
break (a trailing backslash) separates them; and a line holding only ``-`` or ``=`` under a paragraph turns that
paragraph into a heading (a setext heading). These helpers turn a body into the lines a reader sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

from tests.security.gitlab_render import to_html

_BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre", "blockquote", "table", "ul", "ol", "hr"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


@dataclass(frozen=True)
class Line:
    """One line as displayed: its text, the block it belongs to (``p``, ``li``, ``h2``, ...)."""

    text: str
    block: str


class _Lines(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[Line] = []
        self._stack: list[str] = []
        self._buf: list[str] = []

    def _flush(self) -> None:
        text = " ".join("".join(self._buf).split())
        if text:
            block = next((t for t in reversed(self._stack) if t in _BLOCKS), "p")
            self.lines.append(Line(text, block))
        self._buf = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS or tag == "br":
            self._flush()
        if tag == "input":  # a task-list checkbox
            self._buf.append("[x] " if any(k == "checked" for k, _ in attrs) else "[ ] ")
        if tag != "br":
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self._flush()
        while self._stack:
            if self._stack.pop() == tag:
                break

    def handle_data(self, data: str) -> None:
        self._buf.append(data)


def rendered_lines(markdown: str) -> list[Line]:
    """The lines a reader sees in GitLab, in order."""
    parser = _Lines()
    parser.feed(to_html(markdown))
    parser.close()
    parser._flush()
    return parser.lines


def rendered_text(markdown: str) -> list[str]:
    return [line.text for line in rendered_lines(markdown)]


def headings(markdown: str) -> list[Line]:
    return [line for line in rendered_lines(markdown) if line.block in _HEADINGS]
