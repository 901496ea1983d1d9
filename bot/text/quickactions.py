"""Quick actions in text a person wrote (a team's issue template): which lines GitLab would run, and the same
text with none that any GitLab version could run.

GitLab's reading (gitlabhq ``lib/gitlab/quick_actions/extractor.rb``, with
``lib/banzai/pipeline/quick_action_pipeline.rb`` and ``lib/banzai/filter/quick_action_filter.rb``):

- every ``\\r`` is deleted first, and the text GitLab stores is that text;
- only *top-level paragraphs* are searched (not code blocks or fences, block quotes or ``>>>`` quotes, HTML
  blocks, lists, tables, headings, front matter): Markdown is parsed with source positions and each ``<p>``
  that is a child of the document gives its lines;
- inside such a paragraph, inline code (`` `.+?` ``, across lines) and ``<tag>`` ... ``</tag>`` runs are
  skipped, and a command is ``^/name`` (case-insensitive) then either the end of the line or one space and
  its argument (the rest of the line).

``quick_actions`` follows that reading with a small block scanner (table-tested against comrak, GitLab's
Markdown engine, in ``tests/test_quickactions.py``). ``neutralise`` is stricter on purpose: a line GitLab
would run becomes a code span (what GitLab's own ``redact_commands`` does for Service Desk e-mails), and
every other line that starts with ``/`` and a non-space under any reading of line breaks gets a backslash
before the ``/`` (``\\/`` renders as ``/``), so ``bot.text.hazards.find_hazards`` finds no quick action in
the result, whatever the GitLab version.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from bot.text.escape import code_span
from bot.text.hazards import indent_width

#: GitLab's quick actions and their aliases (issues, merge requests, epics, work items), a generous union; the
#: no-op ``/cc`` counts too: GitLab leaves its line in the text, where it mentions people.
_NAMES_TEXT = """
    add_child add_contacts add_email approve assign assign_reviewer award blocked_by blocks board_move cc
    checkin_reminder child_epic clear_health_status clear_weight clone close confidential convert_to_ticket
    copy_metadata create_merge_request done draft due duplicate epic escalate estimate estimate_time
    health_status invite_email iteration label labels link lock merge milestone move page parent parent_epic
    promote promote_to promote_to_incident publish q react ready reassign reassign_reviewer rebase relabel relate
    remove_child remove_child_epic remove_contacts remove_due_date remove_email remove_epic remove_estimate
    remove_iteration remove_label remove_milestone remove_parent remove_parent_epic remove_reviewer
    remove_time_estimate remove_time_spent remove_zoom reopen request_changes request_review reviewer set_parent
    severity shrug spend spend_time spent status submit_review subscribe summarize_diff tableflip tag
    target_branch timeline title todo type unapprove unassign unassign_reviewer unlabel unlink unlock unrelate
    unsubscribe weight wip zoom
"""
NAMES: frozenset[str] = frozenset(_NAMES_TEXT.split())


@dataclass(frozen=True)
class QuickAction:
    """One line GitLab would run: its 1-based line number (in the text with ``\\r`` deleted), the command's
    name in lower case, its argument (stripped) and the line as written."""

    line: int
    name: str
    arg: str
    text: str


_NAMES_RE = "|".join(sorted((re.escape(n) for n in NAMES), key=len, reverse=True))
# Extractor#commands_regex's command alternative (flags /mix: case-insensitive, ``\s`` may cross lines).
_COMMAND_RE = re.compile(rf"/(?P<cmd>{_NAMES_RE})(?:[ ](?P<arg>[^\n]*))?(?:\s*\n|$)", re.I)
# Extractor::HTML_BLOCK_REGEX's ends, one line each (``^<[^>]+?>\n`` ... ``\n</[^>]+?>$``).
_OPEN_TAG_RE = re.compile(r"<[^>\n]+>")
_CLOSE_TAG_RE = re.compile(r"</[^>\n]+>")
_CANDIDATE_RE = re.compile(r"`|^[</]", re.M)


# ---- block structure (CommonMark + GitLab's extensions), just enough to find top-level paragraphs --------
_FRONT_MATTER = ("---", "+++", ";;;")
_FENCE_RE = re.compile(r"(`{3,})(?!.*`)|(~{3,})")
_ATX_RE = re.compile(r"#{1,6}(?:[ \t]|$)")
_HR_RE = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_SETEXT_RE = re.compile(r"(?:=+|-+)[ \t]*$")
_BULLET_RE = re.compile(r"([-+*])([ \t]+|$)")
_ORDERED_RE = re.compile(r"(\d{1,9})([.)])([ \t]+|$)")
_FOOTNOTE_RE = re.compile(r"\[\^[^\]\s]+\]:")
_DETAILS_RE = re.compile(r":[ \t]")
_DELIMITER_ROW_RE = re.compile(r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_HTML_1 = re.compile(r"<(?:script|pre|style|textarea)(?:[ \t>]|$)", re.I)
_HTML_1_END = re.compile(r"</(?:script|pre|style|textarea)>", re.I)
_HTML_ENDS = ((re.compile(r"<!--"), re.compile(r"-->")), (re.compile(r"<\?"), re.compile(r"\?>")),
              (re.compile(r"<![A-Za-z]"), re.compile(r">")), (re.compile(r"<!\[CDATA\["), re.compile(r"\]\]>")))
_HTML_6_TAGS = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|details|dialog|dir|div|dl|"
    "dt|fieldset|figcaption|figure|footer|form|frame|frameset|h1|h2|h3|h4|h5|h6|head|header|hr|html|iframe|legend|"
    "li|link|main|menu|menuitem|nav|noframes|ol|optgroup|option|p|param|search|section|summary|table|tbody|td|"
    "tfoot|th|thead|title|tr|track|ul"
)
_HTML_6 = re.compile(rf"</?(?:{_HTML_6_TAGS})(?:[ \t>]|/>|$)", re.I)
_HTML_7 = re.compile(
    r"(?:<[A-Za-z][A-Za-z0-9-]*(?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*(?:\s*=\s*(?:[^\s\"'=<>`]+|'[^']*'|\"[^\"]*\"))?)*"
    r"\s*/?>|</[A-Za-z][A-Za-z0-9-]*\s*>)[ \t]*$"
)


def _indent(line: str) -> tuple[int, str]:
    """(columns of leading whitespace with tab stops of 4, the rest of the line)."""
    cols, count = indent_width(line)
    return cols, line[count:]


def _list_item(rest: str, indent: int) -> tuple[int, bool, bool] | None:
    """(content column, empty item, may interrupt a paragraph) when ``rest`` starts a list item."""
    bullet = _BULLET_RE.match(rest)
    ordered = None if bullet else _ORDERED_RE.match(rest)
    found = bullet or ordered
    if found is None:
        return None
    spaces = found.group(found.lastindex or 0)
    marker = len(found.group(0)) - len(spaces)
    empty = not rest[found.end():].strip()
    gap = 1 if empty or len(spaces.expandtabs(4)) > 4 else len(spaces.expandtabs(4))
    starts_at_one = bullet is not None or (ordered is not None and int(ordered.group(1)) == 1)
    return indent + marker + gap, empty, starts_at_one and not empty


def _html_start(rest: str) -> tuple[re.Pattern[str] | None, bool] | None:
    """(end pattern, or None for "ends at a blank line"; may interrupt a paragraph) for an HTML block start."""
    if _HTML_1.match(rest):
        return _HTML_1_END, True
    for start, end in _HTML_ENDS:
        if start.match(rest):
            return end, True
    if _HTML_6.match(rest):
        return None, True
    if _HTML_7.match(rest):
        return None, False
    return None


def _starts_block(rest: str, indent: int) -> bool:
    """Whether a line after a container's paragraph opens a block at the document level instead of continuing
    that paragraph lazily. The container is not a paragraph there, so (as in cmark and comrak) every HTML block
    and list item counts, not only those that may interrupt a paragraph."""
    if indent > 3:
        return False
    return bool(
        _FENCE_RE.match(rest)
        or _ATX_RE.match(rest)
        or _HR_RE.match(rest)
        or rest.startswith(">")
        or _list_item(rest, indent) is not None
        or _html_start(rest) is not None
    )


def _cells(row: str) -> int:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return len(re.split(r"(?<!\\)\|", row))


def _table_header(previous: str, first: bool, rest: str) -> bool:
    """Whether ``rest`` is a table's delimiter row under the paragraph's last line ``previous`` (``first``: the
    paragraph's only line). As comrak reads it, a line that looked like a delimiter row and was not one is no
    header later."""
    if "|" not in previous or "|" not in rest or not _DELIMITER_ROW_RE.fullmatch(rest.rstrip()):
        return False
    if not first and _DELIMITER_ROW_RE.fullmatch(previous.strip()):
        return False
    return _cells(previous) == _cells(rest)


_QUOTE_MARKERS_RE = re.compile(r"(?:[ ]{0,3}>[ ]?)+")


def _quote_line(rest: str, fence: str, open_before: bool) -> tuple[str, bool]:
    """A block quote's line: (the fence open inside the quote after it, whether it leaves a paragraph open there,
    which a lazy line may continue)."""
    content = rest[_QUOTE_MARKERS_RE.match(rest).end() :]  # type: ignore[union-attr]
    inner = content.strip()
    if fence:
        closed = inner.startswith(fence) and set(inner) == {fence[0]}
        return ("" if closed else fence), False
    opened = _FENCE_RE.match(content.lstrip(" "))
    if opened:
        return opened.group(1) or opened.group(2), False
    return "", _leaves_paragraph(content, open_before)


def _leaves_paragraph(content: str, open_before: bool) -> bool:
    """Whether a container's line (``content``: after its markers) leaves a paragraph open in the container."""
    indent, inner = _indent(content)
    if not inner:
        return False
    if indent >= 4:
        return open_before  # indented code, unless it continues the paragraph
    if _FENCE_RE.match(inner) or _ATX_RE.match(inner) or _HR_RE.match(inner):
        return False
    if open_before and _SETEXT_RE.match(inner):
        return False  # the paragraph became a heading
    html = _html_start(inner)
    if html is not None and (html[1] or not open_before):
        return False
    item = _list_item(inner, indent)
    return not (item is not None and item[1])


def top_level_paragraphs(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) 0-based line indexes of each paragraph that is a child of the document."""
    found: list[tuple[int, int]] = []
    para: list[int] = []
    kind = ""  # the open block other than a paragraph: fence, multiquote, html, quote, list, table, code
    fence = ""
    html_end: re.Pattern[str] | None = None
    content_col = 0
    blank_before = False
    term = False  # a paragraph ended at a blank line just before
    quote_fence = ""  # a fence open inside the block quote
    quote_para = False  # whether the container's innermost block is a paragraph (a lazy line may continue it)

    def flush() -> None:
        if para:
            found.append((para[0], para[-1]))
            para.clear()

    start = 0
    if lines and lines[0].rstrip() in _FRONT_MATTER:
        # GitLab's FrontMatterFilter and comrak: at least one line between the delimiters.
        closing = next((n for n in range(2, len(lines)) if lines[n].rstrip() == lines[0].rstrip()), None)
        if closing is not None:
            start = closing + 1

    for n in range(start, len(lines)):
        line = lines[n]
        indent, rest = _indent(line)
        blank = not rest
        if kind == "fence":
            stripped = rest.rstrip()
            if indent <= 3 and stripped.startswith(fence) and set(stripped) == {fence[0]}:
                kind = ""
            continue
        if kind == "multiquote":
            if line.rstrip() == ">>>":
                kind = ""
            continue
        if kind == "html":
            if html_end is None:
                if blank:
                    kind = ""
            elif html_end.search(line):
                kind = ""
            continue
        if blank:
            term = term or bool(para and not kind)  # a paragraph a description's ``: `` line may still claim
            flush()
            if kind in ("quote", "table", "code"):
                kind = ""
            blank_before = True
            continue
        was_term, term = term, False
        if kind == "code" and indent >= 4:
            continue
        if kind in ("list", "footnote"):
            item = _list_item(rest, indent) if indent <= 3 and kind == "list" else None
            if indent >= content_col:
                quote_para = _leaves_paragraph(" " * (indent - content_col) + rest, quote_para and not blank_before)
                blank_before = False
                continue
            if quote_para and not blank_before and not _starts_block(rest, indent):
                blank_before = False
                continue  # a lazy continuation line of the item's paragraph
            if item is not None:
                content_col = item[0]
                quote_para = not item[1]
                blank_before = False
                continue
        if kind == "quote":
            if indent <= 3 and rest.startswith(">"):
                quote_fence, quote_para = _quote_line(rest, quote_fence, quote_para)
                continue
            if quote_para and not _starts_block(rest, indent):
                continue  # a lazy continuation line of the quote's paragraph
        if kind == "table" and indent < 4 and not _starts_block(rest, indent):
            continue  # a row (an indented line is code, which ends the table)
        kind = ""
        blank_before = False
        if para and indent >= 4:
            para.append(n)
            continue
        if indent >= 4:
            kind = "code"
            continue
        fenced = _FENCE_RE.match(rest)
        if fenced:
            flush()
            kind, fence = "fence", fenced.group(1) or fenced.group(2)
            continue
        if indent == 0 and line.rstrip() == ">>>":
            flush()
            kind = "multiquote"
            continue
        if rest.startswith(">"):
            flush()
            kind = "quote"
            quote_fence, quote_para = _quote_line(rest, "", False)
            continue
        if _ATX_RE.match(rest):
            flush()
            continue
        if para and _SETEXT_RE.match(rest):
            para.clear()  # the paragraph is a heading
            continue
        if _HR_RE.match(rest):
            flush()
            continue
        item = _list_item(rest, indent)
        if item is not None and (not para or item[2]):
            flush()
            kind, content_col = "list", item[0]
            quote_para = not item[1]
            continue
        if _FOOTNOTE_RE.match(rest):
            flush()
            kind, content_col = "footnote", 4
            quote_para = bool(rest[_FOOTNOTE_RE.match(rest).end() :].strip())  # type: ignore[union-attr]
            continue
        if (para or (was_term and found)) and _DETAILS_RE.match(rest):
            if para:
                para.clear()  # the paragraph is a description list's term
            else:
                found.pop()  # so is the paragraph before the blank line
            kind, content_col = "footnote", indent + 2
            quote_para = bool(rest[1:].strip())
            continue
        html = _html_start(rest)
        if html is not None and (not para or html[1]):
            flush()
            html_end = html[0]
            if html_end is None or not html_end.search(rest, 2):
                kind = "html"
            continue
        if para and _table_header(lines[para[-1]], len(para) == 1, rest):
            para.pop()  # the paragraph's last line is the table's header row
            flush()
            kind = "table"
            continue
        para.append(n)
    flush()
    return found


def _commands_in(paragraph: str) -> list[tuple[int, str, str]]:
    """(offset, name, argument) of each command in one paragraph's source, as the extractor's ``gsub`` finds
    them: scanning from the left, `` `.+?` `` (inline code, across lines) and ``<tag>`` ... ``</tag>`` runs are
    skipped, and a command starts a line. Linear: each exclusion is found with ``str.find`` or a look-up of the
    closing-tag lines, not by a regex that rescans the rest of the paragraph from every ``<``.

    One deviation from Ruby's regex: a tag that spans lines (``<a\nb>``) does not open or close an HTML run
    here. That only changes which lines count as the team's commands; ``neutralise`` escapes every line anyway.
    """
    closing = []  # where each line that is only a closing tag starts
    start = 0
    for line in paragraph.split("\n"):
        if _CLOSE_TAG_RE.fullmatch(line):
            closing.append(start)
        start += len(line) + 1
    found: list[tuple[int, str, str]] = []
    pos = 0
    while (candidate := _CANDIDATE_RE.search(paragraph, pos)) is not None:
        p = candidate.start()
        if paragraph[p] == "`":
            close = paragraph.find("`", p + 2)
            pos = close + 1 if close > 0 else p + 1
            continue
        if paragraph[p] == "<":
            end = paragraph.find("\n", p)
            if end > 0 and _OPEN_TAG_RE.fullmatch(paragraph, p, end):
                later = bisect.bisect_left(closing, end + 2)  # ``.+?`` needs a character between
                if later < len(closing):
                    stop = paragraph.find("\n", closing[later])
                    pos = len(paragraph) if stop < 0 else stop
                    continue
            pos = p + 1
            continue
        command = _COMMAND_RE.match(paragraph, p)
        if command is None:
            pos = p + 1
            continue
        found.append((p, command.group("cmd").lower(), (command.group("arg") or "").strip()))
        pos = max(command.end(), p + 1)
    return found


def quick_actions(text: str) -> list[QuickAction]:
    """The lines GitLab would run as quick actions if ``text`` were an issue's description, in order."""
    lines = text.replace("\r", "").split("\n")
    found: list[QuickAction] = []
    for first, last in top_level_paragraphs(lines):
        paragraph = "\n".join(lines[first : last + 1]) + ("\n" if last + 1 < len(lines) else "")
        for offset, name, arg in _commands_in(paragraph):
            number = first + paragraph.count("\n", 0, offset)
            found.append(QuickAction(number + 1, name, arg, lines[number]))
    return found


# A line start under any reading: the text's start, after LF (CRs are gone), or after another line break.
_SLASH_AT_LINE_START_RE = re.compile("(^|[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029])(?=/\\S)", re.M)


def neutralise(text: str) -> tuple[str, list[QuickAction]]:
    """``text`` as GitLab would store it (``\\r`` deleted) with no line any GitLab version would run as a quick
    action, and the quick actions GitLab would have run. Each of those lines is shown as a code span; any other
    line starting with ``/`` and a non-space gets a backslash before the ``/``."""
    text = text.replace("\r", "")
    found = quick_actions(text)
    lines = text.split("\n")
    for action in found:
        lines[action.line - 1] = code_span(action.text.rstrip(), max_len=10_000)
    return _SLASH_AT_LINE_START_RE.sub(r"\1\\", "\n".join(lines)), found
