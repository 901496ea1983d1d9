"""The plain-text dialect's reading of the bot's Markdown: as a person reads it in GitLab, for ``plan -v``; a
small pass over the subset the templates write (headings, lists, task items, emphasis, code spans, backslash
escapes, hidden markers).

It is a preview, not a renderer: GitLab stays the authority (``plan --raw`` prints the exact Markdown).
A full CommonMark parser (comrak) is a test dependency only; the tests compare this pass with it.
"""

from __future__ import annotations

import re

from bot.text.markers import strip_markers

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_TASK = re.compile(r"^(\s*)[-*+][ \t]+\[([ xX])\][ \t]+")
_BULLET = re.compile(r"^(\s*)[-*+][ \t]+")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*\\])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_PLACEHOLDER = "\x00{}\x00"


def as_read(markdown: str) -> str:
    """The text a reader sees: no markers or comments, no Markdown syntax, escapes resolved; bullets as ``•``,
    task items as ``[ ]``/``[x]``, table cells separated by ``|``; blank lines kept (they separate paragraphs)."""
    text = _HTML_COMMENT.sub("", strip_markers(markdown))
    out = []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):  # a table row: its cells, separated by " | "
            if not _TABLE_DELIMITER.match(line):
                cells = [_inline(c.strip()) for c in line.strip().strip("|").split("|")]
                out.append(" | ".join(cells).strip())
            continue
        heading = _HEADING.match(line)
        if heading:
            out.append(_inline(heading.group(1)))
            continue
        task = _TASK.match(line)
        if task:
            box = "[x]" if task.group(2) in "xX" else "[ ]"
            out.append(f"{task.group(1)}{box} {_inline(line[task.end():])}")
            continue
        bullet = _BULLET.match(line)
        if bullet:
            out.append(f"{bullet.group(1)}• {_inline(line[bullet.end():])}")
            continue
        out.append(_inline(line))
    return "\n".join(out).strip("\n")


def _inline(line: str) -> str:
    # Code spans first: their content is literal (no escapes, no emphasis); GitLab drops one padding space.
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        content = match.group(2)
        if len(content) > 2 and content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]
        spans.append(content)
        return _PLACEHOLDER.format(len(spans) - 1)

    line = _CODE_SPAN.sub(keep, line)
    line = _STRONG.sub(r"\2", line)
    line = _EMPHASIS.sub(r"\2", line)
    line = _ESCAPE.sub(r"\1", line).rstrip()
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], line)
