"""The names block of a child's description: who the DRI is, who else is engaged, who holds the incident's
roles. Pure.

The block is the bot's: it sits between two markers, ``<!-- incident-bot:names {"h":…} -->`` and
``<!-- incident-bot:names-end {} -->``, and ``h`` is a digest of the names the bot wrote between them. The bot
rewrites the block (one edit of the description) when the names it would write now differ from the ones it
wrote last (``h``; an unchanged incident costs no rendering either), and touches nothing outside it: a team's
template before the bot's part, the checklist people tick, text people added. A person's edit inside the block
stays until the names next change; then the block is written afresh. A description without the markers (a
person removed them, or a policy's own template has none) is left alone, except a child opened before the
markers existed: its ``**DRI:**`` ... ``**Incident roles:**`` lines, as the bundled template wrote them, are
found and replaced (with the markers) when the names they show are no longer current.
"""

from __future__ import annotations

import hashlib
import re

from bot.text.markers import marker, marker_spans

KIND = "names"
END_KIND = "names-end"
#: What a template writes before and after the block; ``seal`` puts the digest in.
START = marker(KIND)
END = marker(END_KIND)

_LEGACY = re.compile(r"^\*\*DRI:\*\*.*?^\*\*Incident roles:\*\*[ \t]*\n(?:[-*+] [^\n]*(?:\n|\Z))*", re.M | re.S)


def digest(text: str) -> str:
    """The digest of a block's text (what is between the markers), blind to line endings and outer space."""
    normal = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return hashlib.sha256(normal.encode()).hexdigest()[:16]


def _span(body: str, after: int = 0) -> tuple[int, int, int, int, str | None] | None:
    """(start of the start marker, its end, start of the end marker, its end, the recorded digest) of the first
    names block at or after ``after``."""
    spans = marker_spans(body)
    for i, (start, end, m) in enumerate(spans):
        if start < after or m.kind != KIND:
            continue
        for s2, e2, m2 in spans[i + 1 :]:
            if m2.kind == KIND:
                return None  # a second start before any end: not a block the bot wrote
            if m2.kind == END_KIND:
                h = m.fields.get("h")
                return start, end, s2, e2, h if isinstance(h, str) else None
        return None
    return None


def seal(body: str, key: str) -> str:
    """``body`` (as rendered, with ``START`` and ``END``) with ``key`` (a digest of the names it shows) in its
    start marker."""
    found = _span(body)
    if found is None:
        return body
    return body[: found[0]] + marker(KIND, h=key) + body[found[1] :]


def block(body: str) -> str | None:
    """The sealed names block of a rendered description, markers included; None when it has none."""
    found = _span(body)
    return body[found[0] : found[3]] if found else None


def recorded(description: str, after: int = 0) -> str | None:
    """The key the names block at or after ``after`` records (None: no block, or none recorded)."""
    found = _span(description, after)
    return found[4] if found else None


def replace_block(description: str, wanted: str, *, after: int = 0) -> str | None:
    """``description`` with its names block (the first at or after ``after``) replaced by ``wanted`` (a sealed
    block), or None when nothing is to change or there is no block to replace.

    Nothing changes when the block records the key ``wanted`` has (the same names), or records none and shows
    the same text; a child an earlier version opened (no markers) when its lines show the same text."""
    want = _span(wanted)
    if want is None:
        return None
    text = digest(wanted[want[1] : want[2]])
    found = _span(description, after)
    if found is not None:
        start, end, s2, e2, key = found
        if key == want[4] or (key is None and digest(description[end:s2]) == text):
            return None
        return description[:start] + wanted + description[e2:]
    if any(m.kind in (KIND, END_KIND) for _, _, m in marker_spans(description)):
        return None  # markers the bot cannot pair up: left to people
    legacy = _LEGACY.search(description, after)
    if legacy is None or digest(legacy.group(0)) == text:
        return None
    tail = "\n" if legacy.group(0).endswith("\n") else ""
    return description[: legacy.start()] + wanted + tail + description[legacy.end() :]
