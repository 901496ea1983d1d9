"""Escaping primitives for the Markdown the bot writes into GitLab: ``escape_inline`` for one-line values,
``code_block`` for multi-line text, ``find_hazards`` as an independent check of the final body.

What a value from GitLab must not be able to do, and what was checked in GitLab's sources: docs/architecture.md.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bot import markers

__all__ = [
    "SPECIAL_HANDLES",
    "Handle",
    "Hazard",
    "HazardKind",
    "UnsafeOutput",
    "UnsafeValue",
    "assert_safe",
    "code_block",
    "code_span",
    "escape_fragment",
    "escape_inline",
    "find_hazards",
    "is_valid_group_path",
    "is_valid_username",
    "issue_ref",
    "mention",
    "mention_name",
    "unexpected_hazards",
    "valid_mentions_in",
]


class UnsafeValue(ValueError):
    """A value cannot be written in the requested form (e.g. ``mention('all')``)."""


class UnsafeOutput(ValueError):
    """A body about to be written contains hazards nobody asked for."""

    def __init__(self, message: str, hazards: Iterable[Hazard] = ()) -> None:
        super().__init__(message)
        self.hazards: tuple[Hazard, ...] = tuple(hazards)


# --------------------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------------------

#: Everything Python's ``str.splitlines`` treats as a line break, plus CRLF.
_LINE_BREAKS = "\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]"
_LINE_BREAK_RE = re.compile(_LINE_BREAKS)
_LINE_BREAK_RUN_RE = re.compile(f"(?:{_LINE_BREAKS})+")

#: C0/C1 controls except tab and the line breaks handled above.
_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")

#: Invisible characters that only serve to hide or reorder text: zero-width space,
#: LRM/RLM, bidi embeddings/overrides/isolates ("Trojan Source"), word joiner and
#: invisible operators, deprecated format controls, BOM, Mongolian vowel separator,
#: Arabic letter mark, soft hyphen. ZWJ/ZWNJ are kept: scripts and emoji need them.
_INVISIBLE_RE = re.compile("[\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")

#: All ASCII punctuation; CommonMark lets a backslash make any of them literal.
_PUNCT_RE = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")

_WS_RUN_RE = re.compile(r"[ \t]+")
_BACKTICK_RUN_RE = re.compile(r"`+")

ELLIPSIS = "…"


def _clean(text: str) -> str:
    """Remove control and invisible characters (line breaks must be handled before)."""
    return _INVISIBLE_RE.sub("", _CONTROL_RE.sub("", text))


_MARKER_START = "<!-- " + markers.PREFIX
_MARKER_START_DEFUSED = _MARKER_START.replace("-bot:", "\u2011bot:")


def _defuse_markers(text: str) -> str:
    """Make a bot marker shown as code unparseable: ``incident-bot`` gets U+2011.

    Code spans and blocks show text verbatim, so ``parse_markers`` (which knows no
    Markdown) would find a marker typed into a title or description there, inside a
    body the bot wrote. The non-breaking hyphen looks the same and never matches.
    """
    return text.replace(_MARKER_START, _MARKER_START_DEFUSED)


def _one_line(value: object, max_len: int) -> str:
    """``value`` as one clean line: breaks and tabs folded, whitespace collapsed, capped."""
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    text = _LINE_BREAK_RUN_RE.sub(" ", str(value))
    text = _WS_RUN_RE.sub(" ", _clean(text)).strip(" ")
    if len(text) > max_len:
        text = text[: max_len - 1].rstrip(" ") + ELLIPSIS
    return text


# --------------------------------------------------------------------------------------
# Escaping
# --------------------------------------------------------------------------------------


def escape_inline(value: object, max_len: int = 500) -> str:
    """Escape a one-line value (title, username, label name) for a Markdown body.

    Control and invisible characters are removed, every line break (CR, LF, VT, FF,
    NEL, U+2028, U+2029, ...) and tab becomes a space, whitespace runs collapse and the
    ends are trimmed, the text is cut to ``max_len`` characters (the last one an
    ellipsis), then every ASCII punctuation character is backslash-escaped.

    The result is one line that cannot start with ``/`` (a quick action), cannot form
    a mention or a GitLab reference (their sigils are escaped and GitLab keeps escaped
    sigils as separate spans), a link, an image, raw HTML, an HTML comment, a heading,
    a list item, a table cell or template syntax. Bare ``scheme://`` URLs may still be
    autolinked by GitLab, showing the URL itself (see the module docstring). Only in
    Markdown context: inside a raw HTML block backslashes escape nothing.
    """
    return _PUNCT_RE.sub(r"\\\1", _one_line(value, max_len))


def escape_fragment(value: object) -> str:
    """Escape punctuation but keep whitespace and line breaks (normalised to LF).

    For short pieces between values, such as a ``join`` separator, where trimming or
    folding would change the layout. Escaped punctuation means a line can still not
    start with ``/``; leading spaces can at worst make an inert code block.
    """
    return _PUNCT_RE.sub(r"\\\1", _clean(_LINE_BREAK_RE.sub("\n", str(value))))


def code_block(value: object, max_lines: int = 200, max_chars: int = 20_000) -> str:
    """Render multi-line untrusted text as a 4-space-indented Markdown code block.

    Why indented and not fenced: GitLab's regex-only quick-action extractor skips
    ``^```.+?\\n```$`` regions, so a line of three backticks inside the untrusted text
    would end that region early and a later ``/close`` line would run. A fence also
    needs a delimiter longer than any run in the text and still depends on the
    extractor version. With 4 leading spaces no line of the text can ever be at
    column 0, and Markdown shows it verbatim, so mentions and references inside are
    inert.

    Why the ``<!-- -->`` line: an indented block right after a list item would be read
    as a continuation paragraph of that item (live mentions!). An HTML comment at
    column 0 ends any open list, as the CommonMark spec itself suggests; GitLab does
    not render it. ``find_hazards`` accepts exactly ``<!-- -->`` for this reason.

    CRLF/CR and Unicode line separators become LF, control and invisible characters
    are removed, tabs expand to 4 columns, trailing spaces go, leading and trailing
    blank lines go, a bot marker prefix is defused (see ``_defuse_markers``), and the
    text is cut at ``max_chars`` characters and ``max_lines``
    lines with a note saying so. The block is surrounded by blank lines, so it can be
    used anywhere a block can start. Empty text gives just a blank line.
    """
    if max_lines < 1 or max_chars < 1:
        raise ValueError("max_lines and max_chars must be at least 1")
    text = _LINE_BREAK_RE.sub("\n", str(value))
    truncated_chars = len(text) > max_chars
    if truncated_chars:
        text = text[:max_chars]
    lines = [_defuse_markers(_clean(line)).expandtabs(4).rstrip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        return "\n\n"
    note = ""
    if len(lines) > max_lines:
        note = f"[truncated: {len(lines) - max_lines} more lines]"
        lines = lines[:max_lines]
    elif truncated_chars:
        note = "[truncated]"
    if note:
        lines.append(ELLIPSIS + " " + note)
    body = "\n".join("    " + line if line else "" for line in lines)
    return f"\n\n<!-- -->\n\n{body}\n\n"


def code_span(value: object, max_len: int = 500) -> str:
    """Render a one-line value as an inline code span, whatever backticks it holds.

    The delimiter is one backtick longer than the longest run in the value and is
    padded with a space on each side (CommonMark strips exactly one), so the span can
    neither close early nor become a fence: a backtick fence's info string may not
    contain backticks, and the closing delimiter is one. Line breaks fold to spaces and
    a bot marker prefix is defused, as in ``code_block``.
    """
    text = _defuse_markers(_one_line(value, max_len))
    if not text:
        return "` `"
    longest = max((len(run) for run in _BACKTICK_RUN_RE.findall(text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def issue_ref(iid: int) -> str:
    """``#IID`` for a positive issue IID. Only real ints are accepted (no bool, no str)."""
    if type(iid) is not int or iid < 1:
        raise UnsafeValue(f"issue reference needs a positive int, got {iid!r}")
    return f"#{iid}"


# --------------------------------------------------------------------------------------
# Usernames and mentions
# --------------------------------------------------------------------------------------

#: ``Gitlab::PathRegex::NAMESPACE_FORMAT_REGEX`` (lib/gitlab/path_regex.rb).
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]*[A-Za-z0-9_\-]|[A-Za-z0-9_]")
_MAX_PATH_LEN = 255
_MAX_GROUP_DEPTH = 21  # a group may have 20 ancestors

#: Handles that notify many people here or in chat integrations that relay notes.
SPECIAL_HANDLES = frozenset({"all", "here", "channel", "everyone"})


def _valid_segment(segment: str) -> bool:
    if not _SEGMENT_RE.fullmatch(segment):
        return False
    lowered = segment.lower()
    return not (lowered.endswith(".git") or lowered.endswith(".atom"))


def is_valid_username(name: object) -> bool:
    """True when ``name`` satisfies GitLab's username format.

    Letters, digits, ``_``, ``-`` and ``.``; not starting with ``-``; not ending with
    ``.``, ``.git`` or ``.atom``; at most 255 characters (``Gitlab::PathRegex``).
    Reserved names are a separate question: see ``mention``.
    """
    return isinstance(name, str) and 0 < len(name) <= _MAX_PATH_LEN and _valid_segment(name)


def is_valid_group_path(path: object) -> bool:
    """True for ``group`` or ``group/subgroup/...`` made of valid namespace segments."""
    if not isinstance(path, str) or not 0 < len(path) <= _MAX_PATH_LEN:
        return False
    segments = path.split("/")
    return len(segments) <= _MAX_GROUP_DEPTH and all(_valid_segment(s) for s in segments)


def mention(handle: str, allow_group: bool = False) -> str:
    """``@handle`` for a *trusted* handle: the operator's config or a user GitLab resolved.

    A leading ``@`` in ``handle`` is accepted and dropped. Raises ``UnsafeValue`` when
    the handle is not a valid username (or, with ``allow_group``, a group path), or is
    a special handle such as ``all``. Never pass text read from an issue here: use
    ``escape_inline`` for that.

    Every ``_`` is written ``\\_``: GitLab usernames may start or end with ``_``
    (``_sam``, ``sam_``), and a bare one could open or close emphasis with a ``_``
    elsewhere on the line (``_hi @sam_`` renders as ``<em>hi @sam</em>``, a mention
    of somebody else). An escaped ``_`` cannot, and GitLab merges it back into the
    text before references are matched (``EscapedCharFilter``), so the result is
    exactly one mention of ``handle``, wherever it is put.
    """
    return "@" + mention_name(handle, allow_group).replace("_", "\\_")


def mention_name(handle: str, allow_group: bool = False) -> str:
    """The validated handle ``mention`` would write, without ``@`` and unescaped."""
    if not isinstance(handle, str):
        raise UnsafeValue(f"mention needs a str handle, got {type(handle).__name__}")
    name = handle[1:] if handle.startswith("@") else handle
    if "/" in name:
        if not allow_group:
            raise UnsafeValue(f"group handle {name!r} needs allow_group=True")
        valid = is_valid_group_path(name)
    else:
        valid = is_valid_username(name)
    if not valid:
        raise UnsafeValue(f"not a valid GitLab handle: {name!r}")
    if name.split("/")[0].lower() in SPECIAL_HANDLES:
        raise UnsafeValue(f"refusing to mention special handle @{name}")
    return name


class Handle(str):
    """A handle the bot is allowed to @-mention, validated on construction.

    Build one only from the operator's config or from a user or group that GitLab
    resolved (``group=True`` allows ``group/subgroup``). The template ``mention``
    filter mentions ``Handle`` values and prints every other value as inert text.
    """

    group: bool

    def __new__(cls, value: str, *, group: bool = False) -> Handle:
        obj = super().__new__(cls, mention_name(value, allow_group=group))
        obj.group = group
        return obj


# --------------------------------------------------------------------------------------
# Hazard detection
# --------------------------------------------------------------------------------------

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


def _indent_width(line: str) -> tuple[int, int]:
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
        indent, lead = _indent_width(line)
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
