"""Which PagerDuty events an incident wants, computed purely from what GitLab and the outbox say.

One page per (target, generation): generation 0 is the automatic page (the target's ``when`` holds while the
incident is open and not all clear); every ``page TARGET reason`` command is a new generation (the caller
gives it a stable number, the command note's id for instance). All clear or close resolves every page that
was (or may have been) triggered. PagerDuty opens a NEW alert for a trigger after a resolve with the same
key (Events API v2, "Alert De-Duplication"), so a generation whose resolve is recorded is never triggered
again.

Nothing of the incident's text reaches an event: the ``dedup_key`` is a hash of the instance, project id,
iid, target and generation; the summary is built from the project path, iid, severity and the target's
configured name; ``custom_details`` hold only the link, the reason and the role holders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.integrations.pagerduty.config import Target

Action = Literal["trigger", "resolve"]
State = Literal["open", "closed", "all-clear"]
Recorded = Literal["trying", "triggered", "resolved"]
"""What the outbox knows of an item: a trigger maybe sent (``trying``), sent (``triggered``), or resolved."""

AUTO_GENERATION = 0
SEVERITY_MAP: Mapping[str, str] = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
"""Incident severity → ``payload.severity`` (PagerDuty's enum: critical, error, warning, info)."""
UNKNOWN_SEVERITY = "error"
"""``payload.severity`` for an incident whose severity is not set (a page by hand)."""
SUMMARY_LIMIT = 1024
DEDUP_LIMIT = 255
REASON_LIMIT = 500


@dataclass(frozen=True)
class PageRequest:
    """A ``page TARGET reason`` command found on the incident."""

    target: str
    reason: str
    generation: int
    """Stable and unique per incident and target, at least 1 (the command note's id)."""
    by: str
    at: datetime


@dataclass(frozen=True)
class Facts:
    """What the plan reads of one incident."""

    instance_url: str
    project_id: int
    project_path: str
    iid: int
    severity: str | None
    channels: frozenset[str]
    confidential: bool
    web_url: str
    state: State = "open"
    role_holders: Mapping[str, str] = field(default_factory=dict)
    """Role id → username of who holds it."""
    requests: tuple[PageRequest, ...] = ()
    title: str = ""
    """Read only to be sure it is never used."""


@dataclass(frozen=True)
class Page:
    """One desired Events API v2 event (the ``routing_key`` is the adapter's)."""

    key: str
    """The outbox item key: ``<project id>/<iid>/<target>/<generation>``."""
    target: str
    generation: int
    action: Action
    dedup_key: str
    summary: str
    severity: str
    source: str
    reason: str
    custom_details: Mapping[str, Any]
    links: tuple[Mapping[str, str], ...]

    def event(self) -> dict[str, Any]:
        """The request body PagerDuty receives, without ``routing_key``."""
        if self.action == "resolve":
            return {"event_action": "resolve", "dedup_key": self.dedup_key}
        return {
            "event_action": "trigger",
            "dedup_key": self.dedup_key,
            "payload": {"summary": self.summary, "source": self.source, "severity": self.severity,
                        "custom_details": dict(self.custom_details)},
            "links": [dict(link) for link in self.links],
        }


def item_key(project_id: int, iid: int, target: str, generation: int) -> str:
    return f"{project_id}/{iid}/{target}/{generation}"


def parse_item_key(key: str) -> tuple[int, int, str, int] | None:
    """``(project id, iid, target, generation)`` of an item key, or ``None`` when it is not one."""
    parts = key.split("/")
    if len(parts) != 4:
        return None
    try:
        return int(parts[0]), int(parts[1]), parts[2], int(parts[3])
    except ValueError:
        return None


def dedup_key(instance_url: str, project_id: int, iid: int, target: str, generation: int) -> str:
    """A key PagerDuty groups the page's events by: a hash of where the incident is, the target and the
    generation, never any text of the incident (71 characters)."""
    instance = instance_url.strip().rstrip("/").lower()
    digest = hashlib.sha256(f"{instance}\n{project_id}\n{iid}\n{target}\n{generation}".encode()).hexdigest()
    return f"incident-bot-{digest}"[:DEDUP_LIMIT]


def plan_pages(targets: Sequence[Target], facts: Facts, recorded: Mapping[str, Recorded]) -> tuple[Page, ...]:
    """Every page the incident wants now: triggers while it is open (and not all clear), resolves once it is
    closed or all clear. ``targets``: the targets that are on. ``recorded``: item key → what the outbox knows.
    Pages the outbox already holds as wanted are included; :func:`pending` keeps those still to send."""
    by_id = {target.id: target for target in targets}
    if facts.state != "open":
        resolves = []
        for key, status in sorted(recorded.items()):
            parsed = parse_item_key(key)
            if status == "resolved" or parsed is None or parsed[:2] != (facts.project_id, facts.iid):
                continue
            target = by_id.get(parsed[2])
            if target is not None:
                resolves.append(_page(target, parsed[3], "resolve", "", facts))
        return tuple(resolves)
    wanted: dict[tuple[str, int], str] = {}
    for target in targets:
        if target.when is not None and target.when.holds(facts.severity, facts.channels):
            wanted[(target.id, AUTO_GENERATION)] = _auto_reason(target, facts)
    for request in facts.requests:
        if request.target in by_id and request.generation > AUTO_GENERATION:
            wanted.setdefault((request.target, request.generation), _clean_reason(request.reason, request.by))
    pages = []
    for (target_id, generation), reason in sorted(wanted.items()):
        if recorded.get(item_key(facts.project_id, facts.iid, target_id, generation)) == "resolved":
            continue  # a trigger now would open a new alert: only a new generation pages again
        pages.append(_page(by_id[target_id], generation, "trigger", reason, facts))
    return tuple(pages)


def pending(pages: Sequence[Page], recorded: Mapping[str, Recorded]) -> tuple[Page, ...]:
    """The pages still to send: a trigger not yet recorded, a resolve of a trigger that was (maybe) sent."""
    out = []
    for page in pages:
        status = recorded.get(page.key)
        if (page.action == "trigger" and status is None) or (page.action == "resolve" and status != "resolved"):
            out.append(page)
    return tuple(out)


def _page(target: Target, generation: int, action: Action, reason: str, facts: Facts) -> Page:
    severity = facts.severity or "severity not set"
    summary = f"Security incident {facts.project_path}#{facts.iid} ({severity}): {target.name} needed"
    if len(summary) > SUMMARY_LIMIT:
        summary = summary[: SUMMARY_LIMIT - 1] + "…"
    details: dict[str, Any] = {"link": facts.web_url, "reason": reason,
                               "role_holders": dict(sorted(facts.role_holders.items()))}
    return Page(
        key=item_key(facts.project_id, facts.iid, target.id, generation),
        target=target.id,
        generation=generation,
        action=action,
        dedup_key=dedup_key(facts.instance_url, facts.project_id, facts.iid, target.id, generation),
        summary=summary,
        severity=SEVERITY_MAP.get(facts.severity or "", UNKNOWN_SEVERITY),
        source=urlsplit(facts.instance_url).hostname or facts.instance_url,
        reason=reason,
        custom_details=details,
        links=({"href": facts.web_url, "text": f"{facts.project_path}#{facts.iid}"},),
    )


def _auto_reason(target: Target, facts: Facts) -> str:
    assert target.when is not None
    parts = []
    if target.when.severities and facts.severity:
        parts.append(f"{facts.severity} incident")
    channels = [label for label in target.when.channels_any if label in facts.channels]
    if channels:
        parts.append("channel " + ", ".join(channels))
    return "policy: " + ("; ".join(parts) or "always")


def _clean_reason(reason: str, by: str) -> str:
    text = " ".join(reason.split())
    if len(text) > REASON_LIMIT:
        text = text[: REASON_LIMIT - 1] + "…"
    return f"paged by @{by}" + (f": {text}" if text else "")
