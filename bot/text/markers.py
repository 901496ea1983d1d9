"""Hidden markers (one-line HTML comments) that let the bot find its own comments and child issues again,
signed where the bot relies on them for state. Encoding and trust: docs/architecture.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KIND_RE",
    "MAX_MARKER_CHARS",
    "PREVIEW_KEY",
    "Marker",
    "MarkerError",
    "StateKey",
    "Trust",
    "find_marker",
    "marker",
    "marker_spans",
    "parse_markers",
    "signed_marker",
    "strip_markers",
    "verify",
]

PREFIX = "incident-bot:"

#: Kind names: lower-case words joined by single hyphens. ``[a-z][a-z0-9-]*`` would
#: allow ``a--b`` and ``a-``, which could form ``--`` or ``-->`` inside the comment.
KIND_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")

#: A marker longer than this is refused when rendered and ignored when parsed.
MAX_MARKER_CHARS = 4096

# The whole marker as rendered by ``marker``. The JSON part is matched loosely here
# (anything without ``<``, ``>`` or a line break, so a broken marker cannot swallow a
# good one after it); ``json.loads`` decides whether it is well formed.
_MARKER_RE = re.compile(r"<!-- incident-bot:(?P<kind>[a-z][a-z0-9]*(?:-[a-z0-9]+)*) (?P<json>\{[^<>\n\r]*\}) -->")

_STRING_LITERAL_RE = re.compile(r'"(?:[^"\\]|\\.)*"')
_PLAIN_STRING_CHAR = re.compile(r"[A-Za-z0-9 ._]")


class MarkerError(ValueError):
    """A marker cannot be rendered (bad kind, fields not JSON-serialisable, too long)."""


@dataclass(frozen=True)
class Marker:
    """A parsed marker. ``fields`` is the decoded JSON object."""

    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def _harden_string_literal(match: re.Match[str]) -> str:
    """Rewrite one JSON string literal so that only ``[A-Za-z0-9 ._]`` stays literal.

    Existing escapes (``\\"``, ``\\\\``, ``\\n``, ``\\uXXXX``) are copied unchanged.
    """
    literal = match.group(0)
    out = ['"']
    i, end = 1, len(literal) - 1
    while i < end:
        ch = literal[i]
        if ch == "\\":
            step = 6 if literal[i + 1] == "u" else 2
            out.append(literal[i : i + step])
            i += step
            continue
        out.append(ch if _PLAIN_STRING_CHAR.fullmatch(ch) else f"\\u{ord(ch):04x}")
        i += 1
    out.append('"')
    return "".join(out)


def marker(kind: str, /, **fields: Any) -> str:
    """Render ``<!-- incident-bot:KIND {compact sorted JSON} -->``.

    Raises ``MarkerError`` for a bad kind, values JSON cannot encode (including NaN
    and infinities) or a marker longer than ``MAX_MARKER_CHARS``.
    """
    if not isinstance(kind, str) or not KIND_RE.fullmatch(kind):
        raise MarkerError(f"invalid marker kind {kind!r}: expected lower-case words joined by '-'")
    try:
        payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MarkerError(f"marker {kind!r}: fields are not JSON-serialisable: {exc}") from exc
    payload = _STRING_LITERAL_RE.sub(_harden_string_literal, payload)
    # Outside string literals compact JSON holds only {}[]:, digits, '-', '.', 'e', '+'
    # and true/false/null, so none of these can be left after hardening.
    if "--" in payload or ">" in payload or "`" in payload:  # pragma: no cover - invariant
        raise MarkerError(f"marker {kind!r}: payload could close the comment early")
    text = f"<!-- {PREFIX}{kind} {payload} -->"
    if len(text) > MAX_MARKER_CHARS:
        raise MarkerError(f"marker {kind!r} is {len(text)} chars, limit {MAX_MARKER_CHARS}")
    return text


def _decode(match: re.Match[str]) -> Marker | None:
    if len(match.group(0)) > MAX_MARKER_CHARS:
        return None
    try:
        data = json.loads(match.group("json"))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return Marker(kind=match.group("kind"), fields=data)


def marker_spans(body: str) -> list[tuple[int, int, Marker]]:
    """``(start, end, marker)`` for every well-formed marker in ``body``, in order."""
    spans: list[tuple[int, int, Marker]] = []
    for match in _MARKER_RE.finditer(body):
        parsed = _decode(match)
        if parsed is not None:
            spans.append((match.start(), match.end(), parsed))
    return spans


def parse_markers(body: str) -> list[Marker]:
    """Every well-formed marker in ``body``, in order; malformed ones are ignored.

    This says nothing about who wrote the body: see the module docstring.
    """
    return [m for _, _, m in marker_spans(body)]


def find_marker(body: str, kind: str) -> Marker | None:
    """The first well-formed marker of ``kind`` in ``body``, or ``None``."""
    for found in parse_markers(body):
        if found.kind == kind:
            return found
    return None


def strip_markers(body: str) -> str:
    """``body`` without its well-formed markers, for display or comparison.

    A line that held nothing but a marker is removed with its line break.
    """
    spans = marker_spans(body)
    if not spans:
        return body
    out: list[str] = []
    pos = 0
    for start, end, _ in spans:
        line_start = body.rfind("\n", 0, start) + 1
        line_end = body.find("\n", end)
        line_end = len(body) if line_end == -1 else line_end
        whole_line = line_start >= pos and not body[line_start:start].strip() and not body[end:line_end].strip()
        if whole_line:
            out.append(body[pos:line_start])
            pos = line_end + 1 if line_end < len(body) else line_end
        else:
            out.append(body[pos:start])
            pos = end
    out.append(body[pos:])
    return "".join(out)


# ---- signed markers ---------------------------------------------------------------------------

MAC_FIELD = "mac"
_MAC_DOMAIN = b"incident-bot signed marker v1\n"


def _mac_input(kind: str, scope: str, fields: Mapping[str, Any]) -> bytes:
    body = {"fields": {k: v for k, v in fields.items() if k != MAC_FIELD}, "kind": kind, "scope": scope}
    return _MAC_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True, repr=False)
class StateKey:
    """The bot's secret for signing markers: the current key, and earlier keys still believed.

    A marker signed with an earlier key is believed and re-signed with the current key at the
    next write, so a key can be rotated without losing any incident's state.
    """

    current: bytes
    previous: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if len(self.current) < 16:
            raise ValueError("a state key needs at least 16 bytes")

    def __repr__(self) -> str:  # never show the key
        return f"StateKey(<{len(self.current)} bytes>, previous={len(self.previous)})"

    def sign(self, kind: str, scope: str, fields: Mapping[str, Any]) -> str:
        return hmac.new(self.current, _mac_input(kind, scope, fields), hashlib.sha256).hexdigest()

    def which(self, kind: str, scope: str, fields: Mapping[str, Any], mac: str) -> int | None:
        """0 if ``mac`` was made with the current key, 1.. for an earlier key, None if with none."""
        data = _mac_input(kind, scope, fields)
        for n, key in enumerate((self.current, *self.previous)):
            if hmac.compare_digest(hmac.new(key, data, hashlib.sha256).hexdigest(), mac):
                return n
        return None


#: Signs what the offline ``plan`` and ``check-config`` render: never used to write to GitLab, and
#: never believed by a bot that reads GitLab (that one always has its own key).
PREVIEW_KEY = StateKey(b"incident-bot preview: not a secret, never used to write")


def signed_marker(kind: str, key: StateKey, scope: str, /, **fields: Any) -> str:
    """``marker(kind, **fields)`` plus a ``mac`` binding the fields to ``kind`` and ``scope``."""
    if MAC_FIELD in fields:
        raise MarkerError(f"marker {kind!r}: {MAC_FIELD!r} is reserved for the signature")
    # Round-trip through JSON first, so the MAC is over exactly what a reader will decode.
    try:
        plain = json.loads(json.dumps(fields, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise MarkerError(f"marker {kind!r}: fields are not JSON-serialisable: {exc}") from exc
    return marker(kind, **plain, **{MAC_FIELD: key.sign(kind, scope, plain)})


class Trust:
    """How far a parsed marker can be believed (see ``verify``)."""

    SIGNED = "signed"  # made by this bot, for this incident, with the current key
    SIGNED_EARLIER = "signed-earlier"  # the same, with an earlier key: believe it, re-sign it
    UNSIGNED = "unsigned"  # no signature: written by an older version of the bot, or by hand
    FORGED = "forged"  # a signature that does not match: edited, copied, or another key


def verify(found: Marker, key: StateKey, scope: str) -> str:
    """A ``Trust`` value for ``found`` as a marker of incident ``scope``."""
    mac = found.fields.get(MAC_FIELD)
    if mac is None:
        return Trust.UNSIGNED
    if not isinstance(mac, str):
        return Trust.FORGED
    n = key.which(found.kind, scope, found.fields, mac)
    if n is None:
        return Trust.FORGED
    return Trust.SIGNED if n == 0 else Trust.SIGNED_EARLIER
