"""Hazard scanning: an independent check that a body the bot is about to write holds nothing GitLab would act
on (quick actions, mentions, template syntax, comments, raw HTML) beyond what the bot meant.

What GitLab acts on, and what was checked in its sources: docs/architecture.md.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bot.text import markers
from bot.text.escape import _BACKTICK_RUN_RE, _LINE_BREAK_RE, _MAX_PATH_LEN, UnsafeValue, mention_name

HazardKind = Literal["quick_action", "mention", "template_syntax", "html_comment", "raw_html"]


@dataclass(frozen=True)
class Hazard:
    """One thing in a body that GitLab (or a later stage) would act on.

    ``line`` is 1-based, counting CRLF, CR and LF as line ends. ``handle`` is set for
    mentions (without the ``@``), so a caller can allow-list the ones it meant.
    """

    kind: HazardKind
    line: int
    excerpt: str
    handle: str | None = None

    def __str__(self) -> str:
        return f"{self.kind} at line {self.line}: {self.excerpt!r}"


class UnsafeOutput(ValueError):
    """A body about to be written contains hazards nobody asked for."""

    def __init__(self, message: str, hazards: Iterable[Hazard] = ()) -> None:
        super().__init__(message)
        self.hazards: tuple[Hazard, ...] = tuple(hazards)


_EXCERPT = 60

# Conservative quick-action test: any '/' at column 0 followed by a non-space. GitLab's
# command names are ASCII, but Ruby's case-insensitive match folds e.g. U+017F to 's'.
_QUICK_ACTION_RE = re.compile(r"/\S")

_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_HANDLE_RE = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.\-]*)*")
_ENTITY_AT_RE = re.compile(r"&(?:#0*64|#[xX]0*40|commat);")
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_HANDLE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-/")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
#: ``EscapedCharFilter::REFERENCE_CHARS``: escapes of these stay separate spans, all
#: other escapes are merged back into the surrounding text before references run.
_SPAN_ESCAPES = frozenset("$%#&@!~^")


def _handle_at(line: str, pos: int, raw: bool = False) -> list[str]:
    """Handle candidates after an ``@`` ending at ``pos`` (see ``_read_handles``).

    ``raw`` lines may or may not be inside an HTML block (types 6 and 7 are not told
    apart here), so both readings count there.
    """
    names = _read_handles(line, pos, escapes=True)
    if raw:
        names += [name for name in _read_handles(line, pos, escapes=False) if name not in names]
    return names


def _read_handles(line: str, pos: int, escapes: bool) -> list[str]:
    """The handles GitLab may read after an ``@`` that ends at ``pos`` (longest first).

    GitLab matches mentions on rendered text, so ``\\-``/``\\.``/``\\_`` and entities
    such as ``&#45;`` count as the plain characters they render to. An unescaped ``_``
    that could close emphasis (``_@a_``) may end the text node early, so the handle
    before it is a candidate too. Empty when no handle follows. Without ``escapes``
    (inside an HTML block) a backslash is just a backslash.
    """
    decoded: list[str] = []
    cuts: list[int] = []
    i, n = pos, len(line)
    while i < n and len(decoded) <= _MAX_PATH_LEN * 2:
        ch = line[i]
        if ch == "\\" and escapes and i + 1 < n and line[i + 1] in _ASCII_PUNCT:
            if line[i + 1] in _SPAN_ESCAPES:
                break
            decoded.append(line[i + 1])
            i += 2
            continue
        if ch == "&":
            entity = _ENTITY_RE.match(line, i)
            text = html.unescape(entity.group()) if entity else ""
            if not entity or text == entity.group():
                break
            decoded.append(text)
            i = entity.end()
            continue
        if ch not in _HANDLE_CHARS:
            break
        if ch == "_" and (i == pos or line[i - 1] != "_"):
            run_end = i
            while run_end < n and line[run_end] == "_":
                run_end += 1
            if run_end == n or not line[run_end].isalnum():
                cuts.append(len(decoded))
        decoded.append(ch)
        i += 1
    text = "".join(decoded)
    names: list[str] = []
    for candidate in [text, *(text[:cut] for cut in reversed(cuts))]:
        handle = _HANDLE_RE.match(candidate)
        name = handle.group().rstrip("./") if handle else ""
        if name and name not in names:
            names.append(name)
    return names


_INTERESTING_RE = re.compile(r"[\\`<@&{]")

_EMPTY_COMMENT = "<!-- -->"

# Block-structure patterns (CommonMark), applied to the text after indentation.
_LIST_ITEM_RE = re.compile(r"(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")
_FOOTNOTE_DEF_RE = re.compile(r"\[\^[^\]]*\]:")
_DESC_DETAILS_RE = re.compile(r":(?:[ \t]|$)")
_ATX_HEADING_RE = re.compile(r"#{1,6}(?:[ \t]|$)")
_FENCE_RE = re.compile(r"(?:`{3,}[^`]*|~{3,}.*)$")
_HR_RE = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_HTML_BLOCK_STARTS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"<(?:script|pre|style|textarea)(?:[ \t>]|$)", re.I),
        re.compile(r"</(?:script|pre|style|textarea)>", re.I),
    ),
    (re.compile(r"<!--"), re.compile(r"-->")),
    (re.compile(r"<\?"), re.compile(r"\?>")),
    (re.compile(r"<![A-Za-z]"), re.compile(r">")),
    (re.compile(r"<!\[CDATA\["), re.compile(r"\]\]>")),
)
_CONTAINER_PREFIX_RE = re.compile(r"(?:[ \t]*(?:>|[-+*][ \t]|\d{1,9}[.)][ \t]))*[ \t]*")


def indent_width(line: str) -> tuple[int, int]:
    """(columns of leading whitespace with tab stops of 4, number of characters)."""
    cols = 0
    for count, ch in enumerate(line):
        if ch == " ":
            cols += 1
        elif ch == "\t":
            cols += 4 - cols % 4
        else:
            return cols, count
    return cols, len(line)


def _lines_with_offsets(text: str, breaks: re.Pattern[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    pos = 0
    for match in breaks.finditer(text):
        out.append((text[pos : match.start()], pos))
        pos = match.end()
    out.append((text[pos:], pos))
    return out


_MD_BREAK_RE = re.compile(r"\r\n|\r|\n")
_LF_RE = re.compile("\n")


def _lineno(body: str, offset: int) -> int:
    return len(_MD_BREAK_RE.findall(body, 0, offset)) + 1


def _quick_action_hazards(body: str) -> list[Hazard]:
    """Column-0 ``/`` lines under every plausible reading of line breaks.

    Read 1 is GitLab's extractor: CRs deleted, LF splits. Read 2 splits on every
    Unicode line break, as browsers and other Markdown tools might.
    """
    found: dict[int, Hazard] = {}  # keyed by the offset of the '/' in ``body``
    crs_deleted = [
        (seg.replace("\r", ""), off + len(seg) - len(seg.lstrip("\r")))
        for seg, off in _lines_with_offsets(body, _LF_RE)
    ]
    for line, offset in crs_deleted + _lines_with_offsets(body, _LINE_BREAK_RE):
        if _QUICK_ACTION_RE.match(line):
            lineno = _lineno(body, offset)
            found.setdefault(offset, Hazard("quick_action", lineno, line[:_EXCERPT]))
    return [found[k] for k in sorted(found)]


@dataclass
class _InlineState:
    """Code-span bookkeeping for one run of consecutive text lines."""

    spans_ok: bool = True


def _marker_or_empty_comment_end(line: str, pos: int) -> int | None:
    """End offset if a well-formed bot marker or ``<!-- -->`` starts at ``pos``."""
    if line.startswith(_EMPTY_COMMENT, pos):
        return pos + len(_EMPTY_COMMENT)
    if line.startswith("<!-- incident-bot:", pos):
        for start, end, _ in markers.marker_spans(line[pos:]):
            if start == 0:
                return pos + end
            break
    return None


def _pair_code_spans(line: str, start: int, end: int, state: _InlineState) -> list[tuple[int, int]]:
    """Code spans in ``line[start:end]`` paired as CommonMark does, while ``state`` allows.

    A backtick run closes at the next run of the same length; backslashes are literal
    inside a span. Pairing stops being trusted (``state.spans_ok = False``) at a run
    that is not closed within the slice, or at a ``<`` that is not a bot marker or
    ``<!-- -->``: raw HTML and autolinks take precedence over code spans, and a run
    may close on a later line of the paragraph.
    """
    regions: list[tuple[int, int]] = []
    i = start
    while i < end and state.spans_ok:
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "<":
            stop = _marker_or_empty_comment_end(line[:end], i)
            if stop is None:
                state.spans_ok = False
                break
            i = stop
            continue
        if ch == "`":
            run = _BACKTICK_RUN_RE.match(line, i, end)
            assert run is not None
            length = run.end() - i
            closer = next(
                (m for m in _BACKTICK_RUN_RE.finditer(line, run.end(), end) if len(m.group()) == length),
                None,
            )
            if closer is None:
                state.spans_ok = False
                break
            regions.append((i, closer.end()))
            i = closer.end()
            continue
        i += 1
    return regions


def _code_span_regions(line: str, state: _InlineState, exempt_line: bool, maybe_table: bool) -> list[tuple[int, int]]:
    """Code spans on ``line`` that are certainly code spans for GitLab.

    Pairing is trusted only while every earlier backtick run in this paragraph-like
    chunk was closed on its own line and no raw HTML came first (``state`` carries
    this across lines); after that nothing in the chunk is exempt. In a chunk that
    has a table delimiter row, a line with ``|`` may be a table row, whose cells are
    split at every ``|`` before code spans are paired: there only spans found by both
    readings count.
    """
    regions = _pair_code_spans(line, 0, len(line), state)
    if not exempt_line:
        return []
    if maybe_table and "|" in line:
        cells: list[tuple[int, int]] = []
        cell_start = 0
        for pos in [*(m.start() for m in re.finditer(r"\|", line)), len(line)]:
            cells.extend(_pair_code_spans(line, cell_start, pos, _InlineState()))
            cell_start = pos + 1
        regions = sorted(set(regions) & set(cells))
    return regions


_TABLE_DELIMITER_RE = re.compile(r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?")


def _table_chunks(lines: list[str]) -> list[bool]:
    """For each line: does its blank-line-delimited chunk hold a table delimiter row?"""
    flags = [False] * len(lines)
    chunk_start = 0
    has_delimiter = False
    for index, line in enumerate([*lines, ""]):
        if not line.strip(" \t"):
            for k in range(chunk_start, index):
                flags[k] = has_delimiter
            chunk_start, has_delimiter = index + 1, False
            continue
        content = line[_CONTAINER_PREFIX_RE.match(line).end() :].strip()  # type: ignore[union-attr]
        if "|" in content and _TABLE_DELIMITER_RE.fullmatch(content):
            has_delimiter = True
    return flags


def _is_escaped(line: str, pos: int) -> bool:
    backslashes = 0
    while pos - backslashes - 1 >= 0 and line[pos - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _inline_hazards(
    line: str, lineno: int, regions: list[tuple[int, int]], out: list[Hazard], raw: bool = False
) -> None:
    """Mentions, template syntax and stray HTML comments outside ``regions``.

    ``raw`` is for lines inside HTML blocks, where a backslash escapes nothing and is
    itself reported (``raw_html``).
    """
    region_iter = iter(regions)
    next_region = next(region_iter, None)
    i, n = 0, len(line)
    while i < n:
        match = _INTERESTING_RE.search(line, i)
        if match is None:
            return
        i = match.start()
        while next_region is not None and next_region[1] <= i:
            next_region = next(region_iter, None)
        if next_region is not None and next_region[0] <= i:
            i = next_region[1]
            continue
        ch = line[i]
        if ch == "\\":
            if not raw:
                i += 2
                continue
            if i + 1 < n and line[i + 1] in _ASCII_PUNCT:
                out.append(Hazard("raw_html", lineno, line[i : i + _EXCERPT]))
        elif ch == "@":
            prev = line[i - 1] if i > 0 else " "
            if prev == "_" and (raw or not _is_escaped(line, i - 1)):
                prev = " "  # may close emphasis (`_x_@all`), so '@' may start a text node
            if prev not in _WORD_CHARS:
                for name in _handle_at(line, i + 1, raw):
                    out.append(Hazard("mention", lineno, line[i : i + _EXCERPT], name))
        elif ch == "&":
            entity = _ENTITY_AT_RE.match(line, i)
            if entity is not None:
                for name in _handle_at(line, entity.end(), raw):
                    out.append(Hazard("mention", lineno, line[i : i + _EXCERPT], name))
                i = entity.end()
                continue
        elif ch == "{":
            if i + 1 < n and line[i + 1] in "{%#":
                out.append(Hazard("template_syntax", lineno, line[i : i + _EXCERPT]))
                i += 2
                continue
        elif ch == "<" and line.startswith("<!--", i):
            end = _marker_or_empty_comment_end(line, i)
            if end is None:
                out.append(Hazard("html_comment", lineno, line[i : i + _EXCERPT]))
                i += 4
            else:
                i = end
            continue
        i += 1


def find_hazards(body: str) -> list[Hazard]:
    """Everything in ``body`` that GitLab or a later stage would act on.

    Reported kinds:

    - ``quick_action``: any line starting with ``/`` and a non-space, under GitLab's
      reading (CR deleted) and under any Unicode line-break reading. Deliberately
      stricter than GitLab, which skips fences, inline code and HTML blocks: those
      exclusions differ between GitLab versions and the bot never writes a command.
    - ``mention``: ``@`` (or ``&#64;``) not escaped by ``\\``, not preceded by an ASCII
      word character (an unescaped ``_`` may close emphasis, so it does not count),
      followed by a handle; ``handle`` records the name as GitLab would read it
      (``@a\\-b`` renders as ``@a-b``).
    - ``template_syntax``: unescaped ``{{``, ``{%`` or ``{#``.
    - ``html_comment``: ``<!--`` that does not start a well-formed bot marker or the
      empty ``<!-- -->`` separator.
    - ``raw_html``: a backslash escape inside an HTML block. Markdown escapes do not
      apply there, so escaped text (``\\#12``, ``\\<a ...``) would reach GitLab's
      reference filters and the HTML sanitiser as written: never put values inside raw
      HTML such as ``<details>``.

    HTML blocks are any run of lines starting with ``<`` (after container markers)
    up to a blank line, or up to the end tag for ``<pre>``, ``<script>``, ``<style>``,
    ``<textarea>``, comments, ``<?`` and ``<!X``. In them backslashes escape nothing.

    ``mention``, ``template_syntax`` and ``html_comment`` are not reported inside
    indented code blocks or inline code spans, but only where the code is certain: an
    indented block counts only after a blank line, outside any list, footnote or
    description list that could absorb it, and outside HTML blocks; a code span counts
    only when it is paired on its own line, nothing earlier in the paragraph (an
    unclosed backtick run, raw HTML, ``<``) could change the pairing, a possible table
    row splitting cells at ``|`` would pair it the same way, and the line is not HTML.
    Fenced blocks are scanned as text. When unsure, text is scanned, so a hazard may
    be reported that GitLab would not act on; the reverse should not happen.
    """
    hazards = _quick_action_hazards(body)
    inline: list[Hazard] = []

    list_open = False
    html_end: re.Pattern[str] | None = None  # open HTML block of types 1-5
    html_until_blank = False  # open HTML block of types 6-7 (or anything starting '<')
    prev_blank = True
    in_code = False
    state = _InlineState()

    lines = _MD_BREAK_RE.split(body)
    table_chunks = _table_chunks(lines)
    for lineno, line in enumerate(lines, start=1):
        indent, lead = indent_width(line)
        rest = line[lead:]
        blank = not rest

        if html_end is not None:
            _inline_hazards(line, lineno, [], inline, raw=True)
            if html_end.search(line):
                html_end = None
                state = _InlineState()
            prev_blank = blank
            continue

        if blank:
            prev_blank = True
            html_until_blank = False
            state = _InlineState()
            continue

        if html_until_blank:
            _inline_hazards(line, lineno, [], inline, raw=True)
            continue

        if indent >= 4 and (prev_blank or in_code) and not list_open:
            in_code = True
            prev_blank = False
            state = _InlineState()
            continue
        in_code = False

        if indent == 0 and (
            prev_blank
            or _ATX_HEADING_RE.match(rest)
            or _FENCE_RE.match(rest)
            or _HR_RE.match(rest)
            or rest.startswith(">")
            or any(start.match(rest) for start, _ in _HTML_BLOCK_STARTS)
        ):
            list_open = False
        if indent <= 3 and (_LIST_ITEM_RE.match(rest) or _FOOTNOTE_DEF_RE.match(rest) or _DESC_DETAILS_RE.match(rest)):
            list_open = True
        prev_blank = False

        prefix = _CONTAINER_PREFIX_RE.match(line)
        content = line[prefix.end() :] if prefix else line
        if content.startswith("<"):
            kind_1_to_5 = False
            for start, end in _HTML_BLOCK_STARTS:
                opened = start.match(content)
                if opened:
                    kind_1_to_5 = True
                    if not end.search(content, opened.end()):
                        html_end = end
                    break
            if not kind_1_to_5:
                html_until_blank = True
            _inline_hazards(line, lineno, [], inline, raw=True)
            # A block of types 1-5 that starts at indent <= 3 and ends on the same line
            # (e.g. a bot marker alone on its line) is a block of its own.
            own_block = kind_1_to_5 and html_end is None and indent <= 3 and content == rest
            state = _InlineState(spans_ok=own_block)
            continue

        regions = _code_span_regions(line, state, True, table_chunks[lineno - 1]) if state.spans_ok else []
        _inline_hazards(line, lineno, regions, inline)

    return hazards + inline


_ANY_MENTION_RE = re.compile(r"(?<![A-Za-z0-9_\\])@((?:[A-Za-z0-9_./\-]|\\_)+)")


def valid_mentions_in(text: str) -> set[str]:
    """Lower-cased handles that ``text`` mentions and that ``mention`` would accept.

    Used for ``Safe`` fragments built by code with ``mention()``: their mentions are
    intended. Special handles (``@all``) and malformed ones are never returned.
    """
    found: set[str] = set()
    for match in _ANY_MENTION_RE.finditer(text):
        name = match.group(1).replace("\\_", "_").rstrip("./")
        try:
            mention_name(name, allow_group=True)
        except UnsafeValue:
            continue
        found.add(name.lower())
    return found


def unexpected_hazards(body: str, allowed_mentions: Iterable[str] = ()) -> list[Hazard]:
    """``find_hazards(body)`` minus mentions of handles in ``allowed_mentions``.

    Handles compare case-insensitively (GitLab looks namespaces up downcased); a
    leading ``@`` in an allowed handle is ignored.
    """
    allowed = {h.lstrip("@").lower() for h in allowed_mentions}
    return [
        h
        for h in find_hazards(body)
        if not (h.kind == "mention" and h.handle is not None and h.handle.lower() in allowed)
    ]


def assert_safe(body: str, allowed_mentions: Iterable[str] = (), what: str = "body") -> None:
    """Raise ``UnsafeOutput`` if ``body`` has any hazard besides the allowed mentions.

    The last line of defence before anything is written to GitLab.
    """
    hazards = unexpected_hazards(body, allowed_mentions)
    if hazards:
        shown = "; ".join(str(h) for h in hazards[:3])
        more = f" (+{len(hazards) - 3} more)" if len(hazards) > 3 else ""
        raise UnsafeOutput(f"{what}: unsafe output: {shown}{more}", hazards)


#: Between a team's own template and the part the bot rendered: a blank line, which ends a paragraph and
#: most HTML blocks, so the bot's first line starts a block of its own.
PREAMBLE_SEPARATOR = "\n\n"


def _hazard_key(h: Hazard) -> tuple[str, str, str | None]:
    return (h.kind, h.excerpt, (h.handle or "").lower() or None)


def with_preamble(preamble: str, body: str) -> str:
    """``preamble`` (text a person wrote, e.g. a team's issue template, whose quick actions are theirs) followed
    by ``body`` (what the bot rendered, checked already), as one description. Raises ``UnsafeOutput`` when
    the body holds a quick action, or when putting the two together makes anything in the body act that
    did not on its own (e.g. a preamble that leaves an HTML block open, where backslash escapes stop working).

    Bot markers in the preamble are removed: only the bot's own may say what the issue is for.
    """
    own = [h for h in find_hazards(body) if h.kind == "quick_action"]
    if own:
        raise UnsafeOutput(f"the bot's part of the description holds a quick action: {own[0]}", own)
    team = markers.strip_markers(preamble).rstrip()
    if not team:
        return body
    joined = team + PREAMBLE_SEPARATOR + body
    expected: dict[tuple[str, str, str | None], int] = {}
    for h in [*find_hazards(team), *find_hazards(body)]:
        expected[_hazard_key(h)] = expected.get(_hazard_key(h), 0) + 1
    added = []
    for h in find_hazards(joined):
        key = _hazard_key(h)
        if expected.get(key, 0) > 0:
            expected[key] -= 1
        else:
            added.append(h)
    if added:
        shown = "; ".join(str(h) for h in added[:3])
        raise UnsafeOutput(f"the team's template changes what the bot's part does: {shown}", added)
    return joined


# Escaped versions of everything GitLab acts on, as the bot's part holds them: a preamble after which any of
# them acts again (an HTML block or comment left open, where backslash escapes stop working) is unusable.
_PROBE = "probe \\@all \\#1 \\~x \\!2 \\$3 \\&4 \\%5 \\^6 \\<b\\>\n\nsecond paragraph \\@all\n"


def preamble_problem(preamble: str) -> str | None:
    """Why text a person wrote cannot go before the bot's part of a description, or None when it can."""
    try:
        with_preamble(preamble, _PROBE)
    except UnsafeOutput as exc:
        first = exc.hazards[0] if exc.hazards else None
        what = f" ({first.kind} at line {first.line})" if first else ""
        return f"it leaves an HTML block or comment open, where the bot's escaping would stop working{what}"
    return None
