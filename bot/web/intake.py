"""Pure helpers of webhook intake: delivery ids, event names, and how the event UUID reaches the worker.

Nothing here does I/O, so the request path stays a token check, a parse and one durable insert.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bot.web.auth import header_bytes

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

KNOWN_EVENTS = frozenset(
    {
        "Issue Hook",
        "Confidential Issue Hook",
        "Note Hook",
        "Confidential Note Hook",
        "Push Hook",
        "Tag Push Hook",
        "Merge Request Hook",
        "Wiki Page Hook",
        "Pipeline Hook",
        "Job Hook",
        "Deployment Hook",
        "Release Hook",
        "Feature Flag Hook",
        "Member Hook",
        "Subgroup Hook",
        "Project Hook",
        "Emoji Hook",
        "Milestone Hook",
        "Vulnerability Hook",
        "Resource Access Token Hook",
        "System Hook",
    }
)

_MAX_KEY = 200
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_EVENT_UUID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def event_label(header: str | None) -> str:
    """A bounded metrics label for the ``X-Gitlab-Event`` header (anyone can send any header)."""
    if not header:
        return "none"
    return header if header in KNOWN_EVENTS else "other"


def event_name(header: str | None) -> str:
    """The event name recorded with a delivery: the header when GitLab knows it, else a safe stand-in."""
    if not header:
        return "(no X-Gitlab-Event)"
    if header in KNOWN_EVENTS:
        return header
    return "(unknown event " + hashlib.sha256(header_bytes(header)).hexdigest()[:12] + ")"


def clean_event_uuid(value: str | None) -> str | None:
    """The ``X-Gitlab-Event-UUID`` if it looks like one; it is forwarded as a header, so nothing else is kept."""
    if value is None:
        return None
    value = value.strip()
    return value if _EVENT_UUID.fullmatch(value) else None


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def delivery_id(
    headers: Mapping[str, str] | Headers, payload: Any, body: bytes, *, signed_id: str | None = None
) -> str:
    """The de-duplication key of a delivery.

    ``signed_id``: the ``webhook-id`` of a delivery whose signature was verified. It is what was signed,
    so it wins over the unsigned ``Idempotency-Key``, which anyone replaying a captured delivery could
    change to make it look new. Otherwise ``Idempotency-Key`` (GitLab 17.4+, the same across retries and
    manual resends; ``webhook-id`` carries the same value on signed deliveries). On older GitLab: a hash
    of ``X-Gitlab-Event-UUID``, the event, the object's id and ``updated_at`` (and the issue's id for a
    note), which is the same for a resend of the same change and different for the next change. Without
    those fields, a hash of the body.
    """
    key = signed_id or headers.get("Idempotency-Key") or headers.get("webhook-id")
    if key and key.strip():
        key = key.strip()
        if len(key) <= _MAX_KEY and _PRINTABLE.fullmatch(key):
            return key
        return "idempotency-sha256:" + _digest(header_bytes(key))
    event = headers.get("X-Gitlab-Event") or ""
    attrs = payload.get("object_attributes") if isinstance(payload, dict) else None
    if isinstance(attrs, dict):
        object_id, updated = _scalar(attrs.get("id")), _scalar(attrs.get("updated_at"))
        if object_id is not None and updated is not None:
            issue = payload.get("issue")
            issue_id = _scalar(issue.get("id")) if isinstance(issue, dict) else None
            fields = [headers.get("X-Gitlab-Event-UUID") or "", event, object_id, updated, issue_id or ""]
            return "derived-sha256:" + _digest(json.dumps(fields).encode())
    return "body-sha256:" + _digest(header_bytes(event), body)


def change_key(event: str, payload: Any) -> str | None:
    """What a delivery says about the incident's state: the event, the object's id and ``updated_at``
    (and the issue's for a note). The same for a resend of the same change, different for the next
    change; a dead letter that failed permanently is revived only by a different one
    (``bot.store.base.revives``). None when the payload does not say."""
    attrs = payload.get("object_attributes") if isinstance(payload, dict) else None
    if not isinstance(attrs, dict):
        return None
    object_id, updated = _scalar(attrs.get("id")), _scalar(attrs.get("updated_at"))
    if object_id is None or updated is None:
        return None
    issue = payload.get("issue")
    issue_updated = _scalar(issue.get("updated_at")) if isinstance(issue, dict) else None
    fields = [event, object_id, updated, issue_updated or ""]
    return "sha256:" + _digest(json.dumps(fields).encode())[:32]
