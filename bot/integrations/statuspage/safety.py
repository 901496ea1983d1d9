"""What a draft must not carry to the public status page, checked before anything may go out (pure).

:func:`check_draft` returns the findings in words, one per problem, each with its line; an empty list means
the draft may go out. The findings are meant for a note in the incident: a token quoted in one is limited to
characters that cannot start a mention, a quick action or a link outside its code span.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MENTION = re.compile(r"(?<![\w.+@/-])@([A-Za-z0-9_][A-Za-z0-9_.-]*)")
"""GitLab mentions a user, group or ``@all`` after a non-word character (``Banzai::Filter::UserReferenceFilter``)."""
_PROJECT = r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)+"
_REFERENCE = re.compile(rf"(?<![\w&#!/])(?:(?P<project>{_PROJECT}))?(?P<sigil>[#!&])(?P<number>\d+)\b")
"""GitLab references: ``#12`` (issue), ``!3`` (merge request), ``&4`` (epic), each also as ``group/project#12``
(GitLab's "GitLab Flavored Markdown" docs, "GitLab-specific references")."""
_URL = re.compile(r"\b(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)[^\s<>()\"'`]+", re.IGNORECASE)
_BARE_HOST = re.compile(r"(?<![\w@./-])((?:[A-Za-z0-9-]+\.)+(?:com|net|org|io|dev|co|app|cloud|internal|local|corp))"
                        r"(?=[/:]\S*|\b)", re.IGNORECASE)
_KINDS = {"#": "an issue reference", "!": "a merge request reference", "&": "an epic reference"}


def check_draft(text: str, *, gitlab_host: str, allowed_hosts: Iterable[str] = ()) -> list[str]:
    """Findings that forbid sending ``text`` to the status page: mentions, GitLab issue/MR/epic references, URLs
    whose host is the GitLab instance's or not in ``allowed_hosts`` (``*.example.com`` allows subdomains),
    e-mail addresses, and an empty draft."""
    if not text.strip():
        return ["the draft is empty"]
    gitlab = _host(gitlab_host)
    allowed = tuple(h.lower().rstrip(".") for h in allowed_hosts)
    findings: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        emails = list(_EMAIL.finditer(line))
        without_emails = _blank(line, [m.span() for m in emails])
        for _ in emails:
            findings.append(f"line {number}: an e-mail address")
        urls = list(_URL.finditer(without_emails))
        for match in urls:
            findings.extend(_url_finding(number, match.group(0), gitlab, allowed))
        rest = _blank(without_emails, [m.span() for m in urls])
        for match in _BARE_HOST.finditer(rest):
            host = match.group(1).lower()
            if host == gitlab or not _allowed(host, allowed):
                findings.append(_host_finding(number, host, gitlab))
        rest = _blank(rest, [m.span() for m in _BARE_HOST.finditer(rest)])
        for match in _MENTION.finditer(rest):
            findings.append(f"line {number}: a mention (`@{match.group(1)}`)")
        for match in _REFERENCE.finditer(rest):
            findings.append(f"line {number}: {_KINDS[match.group('sigil')]} (`{match.group(0)}`)")
    return findings


def _url_finding(number: int, url: str, gitlab: str, allowed: tuple[str, ...]) -> list[str]:
    target = url if "://" in url else "https://" + url
    try:
        host = (urlsplit(target).hostname or "").rstrip(".")
    except ValueError:
        host = ""
    if not host:
        return [f"line {number}: a link without a host"]
    if host == gitlab or not _allowed(host, allowed):
        return [_host_finding(number, host, gitlab)]
    return []


def _host_finding(number: int, host: str, gitlab: str) -> str:
    shown = re.sub(r"[^a-z0-9.-]", "", host)
    if host == gitlab:
        return f"line {number}: an internal URL (`{shown}` is the GitLab instance)"
    return f"line {number}: a URL to `{shown}`, which is not on the status page's allowed hosts"


def _allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def _host(value: str) -> str:
    value = value.strip().lower()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    return value.split("/")[0].split(":")[0].rstrip(".")


def _blank(line: str, spans: list[tuple[int, int]]) -> str:
    """``line`` with the given spans replaced by spaces (so one token is reported once)."""
    chars = list(line)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)
