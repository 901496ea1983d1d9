"""The part of PagerDuty the bot relies on, as state: Events API v2 validation and alerts by ``dedup_key``.

Each behaviour comes from PagerDuty's developer docs (PagerDuty/developer-docs):

* ``docs/events-API-v2/02-Trigger-Events.md``: ``routing_key`` is the 32 character integration key;
  ``event_action`` is ``trigger``, ``acknowledge`` or ``resolve``; ``payload.summary`` (at most 1024
  characters), ``payload.source`` and ``payload.severity`` (``critical``, ``error``, ``warning``, ``info``) are
  required for a trigger; ``dedup_key`` is at most 255 characters and required unless triggering.
  "Alert De-Duplication": events with the key of an open alert apply to it; once it is resolved a trigger
  with the same key creates a NEW alert, and an acknowledge or resolve without an open alert is dropped.
  A trigger without a ``dedup_key`` gets a generated UUID.
* PagerDuty/api-schema ``reference/events-v2/openapiv3.json``: 202 ``{"status": "success", "message":
  "Event processed", "dedup_key": ...}``; errors ``{"status", "message", "errors": [...]}``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class Alert:
    id: str
    dedup_key: str
    routing_key: str
    summary: str
    severity: str
    status: str = "triggered"
    """``triggered``, ``acknowledged`` or ``resolved``."""
    triggers: int = 1
    """Trigger events de-duplicated into this alert (the first included)."""
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    opened_at: float = 0.0


@dataclass(frozen=True)
class Invalid(Exception):
    """An event PagerDuty answers 400."""

    errors: tuple[str, ...]


@dataclass
class PagerDutyState:
    clock: Callable[[], float]
    alerts: list[Alert] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def open_alert(self, dedup_key: str, routing_key: str) -> Alert | None:
        return next((a for a in self.alerts if a.dedup_key == dedup_key and a.routing_key == routing_key
                     and a.status != "resolved"), None)

    def alerts_for(self, dedup_key: str) -> list[Alert]:
        return [a for a in self.alerts if a.dedup_key == dedup_key]

    def enqueue(self, event: Any) -> str:
        """Apply one event; the ``dedup_key`` PagerDuty answers, or :class:`Invalid`."""
        validate(event)
        action, routing_key = event["event_action"], event["routing_key"]
        key = event.get("dedup_key") or (str(uuid.uuid4()) if action == "trigger" else "")
        alert = self.open_alert(key, routing_key)
        if action == "trigger":
            if alert is not None:
                alert.triggers += 1
            else:
                payload = event["payload"]
                self.alerts.append(Alert(f"Q{next(self._ids):06d}", key, routing_key, payload["summary"],
                                         payload["severity"], opened_at=self.clock()))
        elif alert is not None:  # acknowledge / resolve without an open alert are dropped
            alert.status = "acknowledged" if action == "acknowledge" else "resolved"
        return key

    def act(self, dedup_key: str, status: str, by: str) -> Alert:
        """A person acknowledges or resolves the open alert in PagerDuty."""
        alert = next((a for a in self.alerts if a.dedup_key == dedup_key and a.status != "resolved"), None)
        if alert is None:
            raise KeyError(f"no open alert with dedup_key {dedup_key}")
        alert.status = status
        if status == "acknowledged":
            alert.acknowledged_by = by
        else:
            alert.resolved_by = by
        return alert


def validate(event: Any) -> None:
    """Raise :class:`Invalid` with PagerDuty's kind of messages for an event it would refuse."""
    if not isinstance(event, dict):
        raise Invalid(("Event object format is unrecognized",))
    errors = []
    routing_key = event.get("routing_key")
    if not isinstance(routing_key, str) or len(routing_key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is missing or blank" if not action else
                      "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    key = event.get("dedup_key")
    if key is not None and (not isinstance(key, str) or len(key) > 255):
        errors.append("'dedup_key' is invalid (must be a string of at most 255 characters)")
    if action in ("acknowledge", "resolve") and not key:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or blank")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > 1024:
                errors.append("'payload.summary' is too long (maximum is 1024 characters)")
            if not isinstance(payload.get("source"), str) or not payload["source"].strip():
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of the following: 'critical', "
                              "'warning', 'error' or 'info')")
            details = payload.get("custom_details")
            if details is not None and not isinstance(details, dict):
                errors.append("'payload.custom_details' must be an object")
        links = event.get("links")
        if links is not None and (not isinstance(links, list)
                                  or not all(isinstance(link, dict) and link.get("href") for link in links)):
            errors.append("'links' must be a list of objects with an 'href'")
    if errors:
        raise Invalid(tuple(errors))
