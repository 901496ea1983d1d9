"""The sweep: find open incidents that need a look although no webhook said so, and queue them.

Webhooks get lost while the bot is down, or GitLab gives up on them. (Time needs no sweep: a reconcile
returns when it next needs to run, and the worker keeps the incident's job delayed until then.) One
sweep lists the open incidents inside the bot's remit (``bot.gitlab.remit``): the projects its user is a
member of, one paginated listing, narrowed to the configured ``scope:``; then the labelled open issues,
per scope entry, or without a scope per group holding member projects (``/groups/:path/issues``,
``/projects/:id/issues``), keeping only the member projects' issues. It compares each
with what the bot remembers (``IncidentMark``: when it last converged the incident and when it next
needs attention) and queues only those updated since, never seen, or due (a due one already has its
delayed job; this only hurries one whose job went dead). The queue's
one-job-per-incident lease keeps a sweep and the workers (and several replicas) from ever working on
one incident at once. What it queues comes last (``Priority.BACKGROUND``): a resync waits behind
deliveries, commands and reminders, and waiting raises its priority so that it is not starved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.config import Config
from bot.core.model import IncidentRef, Issue
from bot.core.urgency import Priority
from bot.gitlab.errors import GitLabCallError
from bot.gitlab.ports import IssueListing, RemitProject, SweepLists
from bot.gitlab.remit import MIN_MEMBER_LEVEL, in_scope
from bot.reconciler import ReconcileReport
from bot.store import Enqueue, IncidentMark, Marks

log = logging.getLogger(__name__)


class SweepStore(Enqueue, Marks, Protocol):
    """What the sweep needs of the store: the marks it compares with GitLab, and a way to queue work."""


@dataclass
class SweepReport:
    listed: int = 0
    queued: dict[str, str] = field(default_factory=dict)  # incident key -> why

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for why in self.queued.values():
            reasons[why] = reasons.get(why, 0) + 1
        detail = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items())) or "none"
        return f"{self.listed} open incidents listed; {len(self.queued)} queued ({detail})"


def remit_projects(client: SweepLists, cfg: Config) -> dict[int, RemitProject]:
    """Every project the bot user is a member of (directly or through a group), inside the configured scope
    if there is one: one paginated listing."""
    return {
        p.id: p for p in client.member_projects(MIN_MEMBER_LEVEL) if not cfg.scope or in_scope(p.path, cfg.scope)
    }


def listings(projects: dict[int, RemitProject], scope: list[str]) -> list[IssueListing]:
    """The fewest issue listings that cover the remit: each scope entry (a group or a project), or without
    a scope each group that holds member projects, and member projects in users' namespaces one by one.
    Never ``/issues?scope=all``: that lists every public issue on the instance with the label."""
    paths = {p.path.lower() for p in projects.values()}
    out: list[IssueListing] = []
    if scope:
        for entry in dict.fromkeys(e.lower() for e in scope):
            if entry in paths:
                out.append(IssueListing("project", entry))
            elif any(path.startswith(entry + "/") for path in paths):
                out.append(IssueListing("group", entry))
        return out
    groups = sorted({p.group.lower() for p in projects.values() if p.group})
    # A group's listing includes its subgroups: skip groups inside another listed one.
    roots = [g for g in groups if not any(g.startswith(other + "/") for other in groups)]
    out += [IssueListing("group", g) for g in roots]
    out += [IssueListing("project", str(p.id)) for p in sorted(projects.values(), key=lambda p: p.id) if not p.group]
    return out


def open_incidents(client: SweepLists, cfg: Config) -> list[Issue]:
    """Every open issue carrying the trigger label in a project inside the bot's remit."""
    projects = remit_projects(client, cfg)
    found: list[Issue] = []
    todo = listings(projects, cfg.scope)
    while todo:
        where = todo.pop(0)
        try:
            found += client.open_issues(where, cfg.labels.trigger)
        except GitLabCallError as exc:
            if exc.status != 404:
                raise
            if where.kind == "group":  # a group the bot cannot see as such: its projects one by one
                group = where.path.lower()
                inside = [p for p in projects.values() if p.path.lower().startswith(group + "/")]
                todo += [IssueListing("project", str(p.id)) for p in inside]
            log.warning("sweep: %s %s is not visible to the bot user: %s", where.kind, where.path, exc)
    seen: set[int] = set()
    out = []
    for issue in found:  # a group's listing includes projects the bot is not a member of: drop them
        if issue.project_id in projects and issue.id not in seen:
            seen.add(issue.id or 0)
            out.append(issue)
    return out


def needs_attention(issue: Issue, mark: IncidentMark | None, now: datetime) -> str | None:
    """Why the sweep should queue this incident, or None."""
    if mark is None:
        return "never seen"
    if issue.updated_at and issue.updated_at > mark.seen_at:
        return "updated since last seen"
    if mark.next_due and mark.next_due <= now:
        return "due"
    return None


def sweep(client: SweepLists, store: SweepStore, cfg: Config, now: datetime) -> SweepReport:
    marks = store.incident_marks()
    report = SweepReport()
    for issue in open_incidents(client, cfg):
        report.listed += 1
        key = IncidentRef(str(issue.project_id or issue.ref.project), issue.ref.iid).key
        why = needs_attention(issue, marks.get(key), now)
        if why:
            store.enqueue(key, now, f"sweep: {why}", revive_dead=False, priority=Priority.BACKGROUND)
            report.queued[key] = why
    return report


def remember(store: Marks, key: str, report: ReconcileReport, now: datetime) -> None:
    """After a successful reconcile: the incident is converged as of ``now``."""
    store.mark_incident(key, now, report.requeue_at)
