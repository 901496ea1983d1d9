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
one incident at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from bot.config import Config
from bot.core.model import IncidentRef, Issue
from bot.gitlab.client import GitLabClient, issue_from_api
from bot.gitlab.errors import GitLabCallError
from bot.gitlab.remit import MIN_MEMBER_LEVEL, in_scope
from bot.reconciler import ReconcileReport
from bot.store import DeliveryStore, IncidentMark

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class RemitProject:
    id: int
    path: str
    group: str | None  # the project's namespace when it is a group (None: a user's namespace)


def remit_projects(client: GitLabClient, cfg: Config) -> dict[int, RemitProject]:
    """Every project the bot user is a member of (directly or through a group), inside the configured scope
    if there is one: one paginated listing."""
    query = {"membership": "true", "min_access_level": MIN_MEMBER_LEVEL, "simple": "true", "archived": "false"}
    projects: dict[int, RemitProject] = {}
    for item in client.list_all("list the bot's projects", "/projects", query):
        pid, path, ns = item.get("id"), str(item.get("path_with_namespace") or ""), item.get("namespace") or {}
        if not isinstance(pid, int) or (cfg.scope and not in_scope(path, cfg.scope)):
            continue
        group = ns.get("full_path") if isinstance(ns, dict) and ns.get("kind") == "group" else None
        projects[pid] = RemitProject(pid, path, group if isinstance(group, str) and group else None)
    return projects


def listings(projects: dict[int, RemitProject], scope: list[str]) -> list[str]:
    """The fewest issue listings that cover the remit: each scope entry (a group or a project), or without
    a scope each group that holds member projects, and member projects in users' namespaces one by one.
    Never ``/issues?scope=all``: that lists every public issue on the instance with the label."""
    paths = {p.path.lower() for p in projects.values()}
    out: list[str] = []
    if scope:
        for entry in dict.fromkeys(e.lower() for e in scope):
            if entry in paths:
                out.append(f"/projects/{quote(entry, safe='')}/issues")
            elif any(path.startswith(entry + "/") for path in paths):
                out.append(f"/groups/{quote(entry, safe='')}/issues")
        return out
    groups = sorted({p.group.lower() for p in projects.values() if p.group})
    # A group's listing includes its subgroups: skip groups inside another listed one.
    roots = [g for g in groups if not any(g.startswith(other + "/") for other in groups)]
    out += [f"/groups/{quote(g, safe='')}/issues" for g in roots]
    out += [f"/projects/{p.id}/issues" for p in sorted(projects.values(), key=lambda p: p.id) if not p.group]
    return out


def open_incidents(client: GitLabClient, cfg: Config) -> list[Issue]:
    """Every open issue carrying the trigger label in a project inside the bot's remit."""
    projects = remit_projects(client, cfg)
    query: dict[str, Any] = {"state": "opened", "labels": cfg.labels.trigger, "order_by": "updated_at"}
    items: list[dict[str, Any]] = []
    todo = listings(projects, cfg.scope)
    while todo:
        path = todo.pop(0)
        try:
            items += client.list_all("list open incidents", path, query)
        except GitLabCallError as exc:
            if exc.status != 404:
                raise
            if path.startswith("/groups/"):  # a group the bot cannot see as such: its projects one by one
                group = unquote(path.split("/")[2]).lower()
                inside = [p for p in projects.values() if p.path.lower().startswith(group + "/")]
                todo += [f"/projects/{p.id}/issues" for p in inside]
            log.warning("sweep: %s is not visible to the bot user: %s", path, exc)
    seen: set[int] = set()
    out = []
    for item in items:  # a group's listing includes projects the bot is not a member of: drop them
        issue = issue_from_api(item)
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


def sweep(client: GitLabClient, store: DeliveryStore, cfg: Config, now: datetime) -> SweepReport:
    marks = store.incident_marks()
    report = SweepReport()
    for issue in open_incidents(client, cfg):
        report.listed += 1
        key = IncidentRef(str(issue.project_id or issue.ref.project), issue.ref.iid).key
        why = needs_attention(issue, marks.get(key), now)
        if why:
            store.enqueue(key, now, f"sweep: {why}", revive_dead=False)
            report.queued[key] = why
    return report


def remember(store: DeliveryStore, key: str, report: ReconcileReport, now: datetime) -> None:
    """After a successful reconcile: the incident is converged as of ``now``."""
    store.mark_incident(key, now, report.requeue_at)
