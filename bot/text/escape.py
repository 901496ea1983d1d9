"""Escaping primitives for the Markdown the bot writes into GitLab: ``escape_inline`` for one-line values,
``code_block`` for multi-line text, mentions and username checks. ``bot.text.hazards`` checks the final body.

What a value from GitLab must not be able to do, and what was checked in GitLab's sources: docs/architecture.md.
"""

from __future__ import annotations

import re

from bot.text import markers

__all__ = [
    "SPECIAL_HANDLES",
    "Handle",
    "UnsafeValue",
    "code_block",
    "code_span",
    "escape_fragment",
    "escape_inline",
    "is_valid_group_path",
    "is_valid_project_path",
    "is_valid_username",
    "issue_ref",
    "mention",
    "mention_name",
]


class UnsafeValue(ValueError):
    """A value cannot be written in the requested form (e.g. ``mention('all')``)."""




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


def issue_ref(iid: int, project: str | None = None) -> str:
    """``#IID`` for a positive issue IID, or ``group/project#IID`` for an issue of another project.

    Only real ints are accepted (no bool, no str); ``project`` must be a valid GitLab full path.
    """
    if type(iid) is not int or iid < 1:
        raise UnsafeValue(f"issue reference needs a positive int, got {iid!r}")
    if project is None:
        return f"#{iid}"
    if not is_valid_project_path(project):
        raise UnsafeValue(f"issue reference needs a valid project path, got {str(project)[:100]!r}")
    # As in ``mention``: a bare ``_`` could open or close emphasis with one elsewhere on the line; GitLab merges
    # ``\_`` back into the text before it matches references, so the reference is unchanged.
    return project.replace("_", "\\_") + f"#{iid}"


def is_valid_project_path(path: object) -> bool:
    """A project's full path: at least two valid path segments (namespace and project)."""
    return isinstance(path, str) and "/" in path and is_valid_group_path(path)


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
