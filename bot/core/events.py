"""Webhook payloads to events, sans I/O.

GitLab sends many shapes: ``object_kind`` ``issue`` or ``work_item`` for the same incident, old
payloads without ``event_type`` or ``object_attributes.type``, confidential variants, notes on commits,
merge requests and snippets. ``parse_event`` never raises on any JSON value: it returns an event the
bot acts on, or ``Ignored`` with a one-line reason naming what was missing or unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.core.model import IncidentRef, Issue

ISSUE_EVENTS = {"Issue Hook", "Confidential Issue Hook"}
NOTE_EVENTS = {"Note Hook", "Confidential Note Hook"}


@dataclass(frozen=True)
class IssueEvent:
    issue: Issue
    action: str
    actor: str
    labels_added: frozenset[str] = frozenset()
    labels_removed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NoteEvent:
    ref: IncidentRef
    note_id: int
    body: str
    author: str
    action: str
    system: bool
    issue: Issue | None


@dataclass(frozen=True)
class Ignored:
    reason: str


Event = IssueEvent | NoteEvent | Ignored


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


# GitLab's ids and iids are PostgreSQL bigints at most; anything larger is not one of them.
_MAX_ID = 2**63 - 1
_ASCII_DIGITS = frozenset("0123456789")


def _int(value: Any) -> int | None:
    """An id from JSON: an int, or a string of ASCII digits, within a bigint; else None. Never raises.

    ``str.isdigit`` is true for ``"²"`` and other scripts' digits that ``int()`` refuses or reads as
    something else, and ``int()`` refuses strings over 4,300 digits: neither is a GitLab id.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -_MAX_ID <= value <= _MAX_ID else None
    if isinstance(value, str) and 0 < len(value) <= 19 and set(value) <= _ASCII_DIGITS:
        number = int(value)
        return number if number <= _MAX_ID else None
    return None


def parse_time(value: Any) -> datetime | None:
    """GitLab writes both ``2026-05-28T05:04:31.155Z`` and ``2015-05-17 17:06:40 UTC``."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _label_titles(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    titles = set()
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("title"), str):
            titles.add(item["title"])
        elif isinstance(item, str):
            titles.add(item)
    return frozenset(titles)


def _usernames(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(u["username"] for u in value if isinstance(u, dict) and isinstance(u.get("username"), str))


def _project(payload: dict[str, Any], attrs: dict[str, Any]) -> tuple[int | None, str]:
    project = _dict(payload.get("project"))
    pid = _int(project.get("id"))
    if pid is None:
        pid = _int(attrs.get("project_id")) or _int(payload.get("project_id"))
    return pid, _str(project.get("path_with_namespace"))


def issue_from_hook(attrs: dict[str, Any], payload: dict[str, Any], labels: Any = None) -> Issue | str:
    """Build an ``Issue`` from ``object_attributes`` (issue hook) or the ``issue`` block (note hook).

    Returns a reason string when a field the bot needs is missing.
    """
    iid = _int(attrs.get("iid"))
    if iid is None or iid < 1:
        return "no valid iid in the issue attributes"
    pid, path = _project(payload, attrs)
    if pid is None and not path:
        return "no project id or path"
    if labels is None:
        labels = payload.get("labels", attrs.get("labels"))
    kind = _str(attrs.get("type")) or _str(attrs.get("issue_type"))
    return Issue(
        ref=IncidentRef(str(pid) if pid is not None else path, iid),
        id=_int(attrs.get("id")),
        title=_str(attrs.get("title")),
        description=_str(attrs.get("description")),
        labels=_label_titles(labels) | _label_titles(attrs.get("labels")),
        state=_str(attrs.get("state"), "opened"),
        confidential=attrs.get("confidential") is True,
        assignees=_usernames(payload.get("assignees")),
        severity_field=_str(attrs.get("severity"), "unknown").lower(),
        issue_type=kind.lower() or "issue",
        created_at=parse_time(attrs.get("created_at")),
        updated_at=parse_time(attrs.get("updated_at")),
        closed_at=parse_time(attrs.get("closed_at")),
        web_url=_str(attrs.get("url")),
        project_id=pid,
        project_path=path,
    )


def _issue_event(payload: dict[str, Any]) -> Event:
    attrs = payload.get("object_attributes")
    if not isinstance(attrs, dict):
        return Ignored("issue hook without object_attributes")
    issue = issue_from_hook(attrs, payload)
    if isinstance(issue, str):
        return Ignored(f"issue hook: {issue}")
    changes = _dict(_dict(payload.get("changes")).get("labels"))
    before, after = _label_titles(changes.get("previous")), _label_titles(changes.get("current"))
    action = _str(attrs.get("action"), "update")
    state_change = _dict(_dict(payload.get("changes")).get("state_id"))
    # Confidential hooks can say "update" although the issue was closed: trust the state.
    if action == "update" and state_change.get("current") == 2:
        action = "close"
    return IssueEvent(
        issue=issue,
        action=action,
        actor=_str(_dict(payload.get("user")).get("username")),
        labels_added=after - before if changes else frozenset(),
        labels_removed=before - after if changes else frozenset(),
    )


def _note_event(payload: dict[str, Any]) -> Event:
    attrs = payload.get("object_attributes")
    if not isinstance(attrs, dict):
        return Ignored("note hook without object_attributes")
    noteable = _str(attrs.get("noteable_type"))
    if noteable != "Issue":
        return Ignored(f"note on a {noteable or 'unknown target'}, not on an issue")
    issue_block = payload.get("issue")
    if not isinstance(issue_block, dict):
        return Ignored("note hook on an issue without the issue block")
    issue = issue_from_hook(issue_block, payload, labels=issue_block.get("labels", []))
    if isinstance(issue, str):
        return Ignored(f"note hook: {issue}")
    note_id = _int(attrs.get("id"))
    if note_id is None:
        return Ignored("note hook without a note id")
    return NoteEvent(
        ref=issue.ref,
        note_id=note_id,
        body=_str(attrs.get("note")),
        author=_str(_dict(payload.get("user")).get("username")),
        action=_str(attrs.get("action"), "create"),
        system=attrs.get("system") is True,
        issue=issue,
    )


def parse_event(event_header: str | None, payload: Any) -> Event:
    """Turn one webhook delivery into an event. Never raises."""
    if not isinstance(payload, dict):
        return Ignored(f"payload is a JSON {type(payload).__name__}, not an object")
    kind = _str(payload.get("object_kind"))
    if event_header and event_header not in ISSUE_EVENTS | NOTE_EVENTS:
        return Ignored(f"event {event_header!r} is not handled")
    if kind in ("issue", "work_item"):
        return _issue_event(payload)
    if kind == "note":
        return _note_event(payload)
    return Ignored(f"object_kind {kind!r} is not handled" if kind else "payload has no object_kind")
