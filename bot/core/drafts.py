"""A channel's draft in its child issue, the digest that names one exact text, and the customer email's lint.
Pure.

The draft is the section of the child's description under a ``## Draft`` heading (an ATX heading of level 2,
any case, optional closing ``#``), up to the next heading of level 1 or 2 or the end; a heading inside a fenced
code block does not count. Its digest is the first 8 hex characters of the SHA-256 of the normalised text:

- Unicode NFC (an ``é`` typed as one code point or as ``e`` plus a combining accent is the same draft);
- line endings ``\\r\\n`` and ``\\r`` as ``\\n``;
- trailing spaces and tabs of each line removed;
- runs of blank lines as one blank line, and no blank line at the start or end.

So re-saving the same text (another editor's line endings, a trailing space) keeps the approvals; any change
a reader could see voids them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

DIGEST_LENGTH = 8
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CLOSING = re.compile(r"[ \t]+#+$")
_DIGEST = re.compile(r"^[0-9a-f]{8}$")


def _heading(line: str) -> tuple[int, str] | None:
    m = _HEADING.match(line)
    if not m:
        return None
    text = _CLOSING.sub("", m.group(2) or "").strip()
    return len(m.group(1)), "" if set(text) <= {"#"} else text


def draft_of(description: str) -> str | None:
    """The text under the description's first ``## Draft`` heading, or None when it has none (or it is empty)."""
    lines = re.split(r"\r\n|\r|\n", description or "")
    fence: str | None = None
    out: list[str] | None = None
    for line in lines:
        m = _FENCE.match(line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip()[len(mark):].strip():
                fence = None
        elif fence is None and (h := _heading(line)) is not None:
            level, text = h
            if out is not None and level <= 2:
                break
            if out is None and level == 2 and text.lower() == "draft":
                out = []
                continue
        if out is not None:
            out.append(line)
    if out is None:
        return None
    text = normalise("\n".join(out))
    return text or None


def normalise(text: str) -> str:
    """The text the digest is taken of (see the module's docstring)."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip(" \t") for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def digest(text: str) -> str:
    """8 hex characters naming one normalised text."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text.lower()))


# ---- the customer email's own rule: plain text, no link tracking, from and replying to security@ ----------

_HTML = re.compile(r"<(?:[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?|/[A-Za-z][A-Za-z0-9-]*\s*)>")
_URL = re.compile(r"https?://[^\s<>()\[\]\"']+", re.IGNORECASE)
# Hosts and paths of the usual click-tracking redirectors, and tracking parameters.
_TRACKING_HOSTS = re.compile(
    r"(?:^|\.)(?:list-manage\.com|sendgrid\.net|mandrillapp\.com|mailchi\.mp|hubspotlinks\.com|hs-sites\.com|"
    r"mktoweb\.com|mkt\d+\.com|marketo\.com|pardot\.com|exacttarget\.com|ct\.sendgrid\.net|email\.mg\.[^/]+|"
    r"links\.[^/]+|click\.[^/]+|trk\.[^/]+|track\.[^/]+|t\.co|bit\.ly|lnkd\.in|safelinks\.protection\.outlook\.com)$",
    re.IGNORECASE,
)
_TRACKING_PATHS = re.compile(r"/(?:track|click|redirect|r|ls/click|wf/click|e/er)(?:/|\?|$)", re.IGNORECASE)
_TRACKING_PARAMS = re.compile(r"[?&](?:utm_[a-z]+|mc_eid|mc_cid|_hsenc|_hsmi|mkt_tok|trk|redirect|url|u)=",
                              re.IGNORECASE)
_SECURITY_ADDRESS = re.compile(r"\bsecurity@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b", re.IGNORECASE)


def _tracking(url: str) -> bool:
    rest = url.split("://", 1)[1]
    host = rest.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    path = rest[len(host):]
    return bool(_TRACKING_HOSTS.search(host) or _TRACKING_PATHS.search(path) or _TRACKING_PARAMS.search(path))


def email_findings(text: str) -> list[str]:
    """What in a customer email draft breaks its rule (plain text, no link tracking, sent from and replying to
    security@), each a short sentence; empty when nothing does."""
    out = []
    tags = sorted({m.group(0) for m in _HTML.finditer(text)})
    if tags:
        out.append(f"HTML in a plain-text email ({len(tags)} tag{'s' if len(tags) > 1 else ''}, e.g. {tags[0]})")
    tracked = [u for u in _URL.findall(text) if _tracking(u)]
    if tracked:
        out.append(f"a tracking or redirect link ({tracked[0]}): link to the page itself")
    if not _SECURITY_ADDRESS.search(text):
        out.append("no security@ address: the email is sent from and replies to security@")
    return out
