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

import re
from dataclasses import dataclass

from bot.text.escape import code_span

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
# Extractor::EXCLUSION_REGEX (inline code, HTML block) and the command alternative, flags /mix.
_PARAGRAPH_RE = re.compile(
    r"(?P<inline_code>`.+?`)"
    r"|(?P<html>^<[^>]+?>\n.+?\n</[^>]+?>$)"
    rf"|(?:^/(?P<cmd>{_NAMES_RE})(?:[ ](?P<arg>[^\n]*))?(?:\s*\n|$))",
    re.M | re.S | re.I,
)

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
    cols = 0
    for n, ch in enumerate(line):
        if ch == " ":
            cols += 1
        elif ch == "\t":
            cols += 4 - cols % 4
        else:
            return cols, line[n:]
    return cols, ""


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
    """Whether a line would end a paragraph (and so cannot be a lazy continuation line)."""
    if indent > 3:
        return False
    item = _list_item(rest, indent)
    html = _html_start(rest)
    return bool(
        _FENCE_RE.match(rest)
        or _ATX_RE.match(rest)
        or _HR_RE.match(rest)
        or rest.startswith(">")
        or (item is not None and item[2])
        or (html is not None and html[1])
    )


def _cells(row: str) -> int:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return len(re.split(r"(?<!\\)\|", row))


def _table_header(previous: str, rest: str) -> bool:
    """Whether ``rest`` is a table's delimiter row under the header ``previous``."""
    if "|" not in previous or "|" not in rest or not _DELIMITER_ROW_RE.fullmatch(rest.rstrip()):
        return False
    return _cells(previous) == _cells(rest)


def top_level_paragraphs(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) 0-based line indexes of each paragraph that is a child of the document."""
    found: list[tuple[int, int]] = []
    para: list[int] = []
    kind = ""  # the open block other than a paragraph: fence, multiquote, html, quote, list, table, code
    fence = ""
    html_end: re.Pattern[str] | None = None
    content_col = 0
    blank_before = False

    def flush() -> None:
        if para:
            found.append((para[0], para[-1]))
            para.clear()

    start = 0
    if lines and lines[0].rstrip() in _FRONT_MATTER:
        closing = next((n for n in range(1, len(lines)) if lines[n].rstrip() == lines[0].rstrip()), None)
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
            flush()
            if kind in ("quote", "table", "code"):
                kind = ""
            blank_before = True
            continue
        if kind == "code" and indent >= 4:
            continue
        if kind in ("list", "footnote"):
            item = _list_item(rest, indent) if indent <= 3 and kind == "list" else None
            if indent >= content_col or (not blank_before and not _starts_block(rest, indent)):
                blank_before = False
                continue
            if item is not None:
                content_col = item[0]
                blank_before = False
                continue
        if kind == "quote":
            if indent <= 3 and rest.startswith(">"):
                continue
            if not _starts_block(rest, indent):
                continue  # a lazy continuation line of the quote's paragraph
        if kind == "table" and not _starts_block(rest, indent):
            continue
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
            continue
        if _FOOTNOTE_RE.match(rest):
            flush()
            kind, content_col = "footnote", 4
            continue
        if para and _DETAILS_RE.match(rest):
            para.clear()  # the paragraph is a description list's term
            kind, content_col = "footnote", indent + 2
            continue
        html = _html_start(rest)
        if html is not None and (not para or html[1]):
            flush()
            html_end = html[0]
            if html_end is None or not html_end.search(rest, 2):
                kind = "html"
            continue
        if para and _table_header(lines[para[-1]], rest):
            para.pop()  # the paragraph's last line is the table's header row
            flush()
            kind = "table"
            continue
        para.append(n)
    flush()
    return found


def quick_actions(text: str) -> list[QuickAction]:
    """The lines GitLab would run as quick actions if ``text`` were an issue's description, in order."""
    lines = text.replace("\r", "").split("\n")
    found: list[QuickAction] = []
    for first, last in top_level_paragraphs(lines):
        paragraph = "\n".join(lines[first : last + 1]) + ("\n" if last + 1 < len(lines) else "")
        for match in _PARAGRAPH_RE.finditer(paragraph):
            if not match.group("cmd"):
                continue
            number = first + paragraph.count("\n", 0, match.start())
            found.append(
                QuickAction(number + 1, match.group("cmd").lower(), (match.group("arg") or "").strip(), lines[number])
            )
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
