"""Read a body the way GitLab would: comrak (GitLab's Markdown engine, via the ``comrak-ext`` bindings), then
the parts of the Banzai pipeline that decide mentions, references and links.

- ``EscapedCharFilter``: a backslash-escaped character stays a separate ``<span data-escaped-char>`` only
  for ``$ % # & @ ! ~ ^``; every other escape is merged back into the text around it.
- Reference, mention and autolink filters then match on text nodes outside ``code``, ``pre`` and ``a``.

Patterns from gitlabhq: ``User.reference_pattern`` (``(?<!\\w)@`` + ``Gitlab::PathRegex`` namespace
segments), the issuable prefixes ``# ! % ~ $ &`` (``Issue``, ``MergeRequest``, ``Milestone``, ``Label``,
``Snippet``, ``Epic``), ``[vulnerability:7]``-style extended references, and ``AutolinkFilter``'s
``scheme://`` links.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import comrak

_REFERENCE_CHARS = "$%#&@!~^"
_ESCAPED_SPAN = re.compile(r'<span data-escaped-char>(.)</span>', re.S)

_SEGMENT = r"(?:[A-Za-z0-9_.][A-Za-z0-9_.\-]*[A-Za-z0-9_\-]|[A-Za-z0-9_])"
MENTION = re.compile(rf"(?<![A-Za-z0-9_])@(?P<user>{_SEGMENT}(?:/{_SEGMENT})*)")
REFERENCES = {
    "mention": MENTION,
    "url": re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+://[^\s<>]+"),
    "extended": re.compile(r"\[[a-z_]+:[^\]\s]+\]"),
    "issue": re.compile(r"(?:[A-Za-z0-9_./\-]*)#\d+"),
    "merge_request": re.compile(r"!\d+"),
    "milestone": re.compile(r"%[\"A-Za-z0-9_]"),
    "label": re.compile(r"~[\"A-Za-z0-9_]"),
    "snippet": re.compile(r"\$\d+"),
    "epic": re.compile(r"&\d+"),
}


def to_html(markdown: str) -> str:
    extension = comrak.ExtensionOptions(
        autolink=True, strikethrough=True, table=True, tasklist=True, footnotes=True, description_lists=True
    )
    parse = comrak.ParseOptions(escaped_char_spans=True)
    render = comrak.RenderOptions(escaped_char_spans=True)  # raw HTML is omitted, as sanitised
    html = comrak.markdown_to_html(markdown, extension, parse, render)
    return _ESCAPED_SPAN.sub(lambda m: m.group(0) if m.group(1) in _REFERENCE_CHARS else m.group(1), html)


class _Text(HTMLParser):
    """Text nodes outside code, pre and links; every tag ends a text node."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.nodes: list[str] = []
        self.text: list[str] = []  # all visible text, code included
        self._skip = 0
        self._current: list[str] = []

    def _flush(self) -> None:
        if self._current:
            self.nodes.append("".join(self._current))
            self._current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._flush()
        if tag in ("code", "pre", "a"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        self._flush()
        if tag in ("code", "pre", "a"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if not self._skip:
            self._current.append(data)


def read(markdown: str) -> tuple[list[str], str, str]:
    """(text nodes GitLab matches references in, all visible text, the HTML)."""
    html = to_html(markdown)
    parser = _Text()
    parser.feed(html)
    parser.close()
    parser._flush()
    return parser.nodes, "".join(parser.text), html


def mentions(markdown: str) -> list[str]:
    nodes, _, _ = read(markdown)
    return [m.group("user") for node in nodes for m in MENTION.finditer(node)]


def references(markdown: str) -> list[tuple[str, str]]:
    """(kind, text) of everything GitLab would link: mentions, references, URLs, and ``<a>`` links."""
    nodes, _, html = read(markdown)
    found = [(kind, m.group()) for node in nodes for kind, rx in REFERENCES.items() for m in rx.finditer(node)]
    found += [("link", m.group()) for m in re.finditer(r"<a [^>]*>", html)]
    return found
