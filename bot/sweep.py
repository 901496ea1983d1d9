"""The sweep: find open incidents that need a look although no webhook said so, and queue them.

Webhooks get lost while the bot is down, and time passes without any (a status update falls due). One
sweep lists the open incidents inside the bot's remit (``bot.gitlab.remit``): the projects its user is a
member of, one paginated listing, narrowed to the configured ``scope:``; then the labelled open issues,
per scope entry (``/groups/:path/issues`` or ``/projects/:path/issues``), or without a scope with one
label-filtered listing across projects, keeping only the member projects' issues. It compares each
with what the bot remembers (``IncidentMark``: when it last converged the incident and when it next
needs attention) and queues only those updated since, never seen, or due. The queue's
one-job-per-incident lease keeps a sweep and the workers (and several replicas) from ever working on
one incident at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from bot.config import Config
from bot.core import cadence
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


def remit_projects(client: GitLabClient, cfg: Config) -> dict[int, str]:
    """Project id -> full path of every project the bot user is a member of (directly or through a
    group), inside the configured scope if there is one."""
    query = {"membership": "true", "min_access_level": MIN_MEMBER_LEVEL, "simple": "true", "archived": "false"}
    items = client.list_all("list the bot's projects", "/projects", query)
    projects = {int(p["id"]): str(p.get("path_with_namespace") or "") for p in items if isinstance(p.get("id"), int)}
    if cfg.scope:
        projects = {pid: path for pid, path in projects.items() if in_scope(path, cfg.scope)}
    return projects


def open_incidents(client: GitLabClient, cfg: Config) -> list[Issue]:
    """Every open issue carrying the trigger label in a project inside the bot's remit."""
    projects = remit_projects(client, cfg)
    query: dict[str, Any] = {"state": "opened", "labels": cfg.labels.trigger, "order_by": "updated_at"}
    if not cfg.scope:
        items = client.list_all("list open incidents", "/issues", {"scope": "all", **query})
    else:
        items = []
        paths = {path.lower() for path in projects.values()}
        for entry in dict.fromkeys(e.lower() for e in cfg.scope):
            if entry in paths:
                kind = "projects"
            elif any(path.startswith(entry + "/") for path in paths):
                kind = "groups"
            else:
                continue  # no member project there: nothing to list
            try:
                path = f"/{kind}/{quote(entry, safe='')}/issues"
                items += client.list_all(f"list open incidents in {entry}", path, query)
            except GitLabCallError as exc:
                if exc.status != 404:
                    raise
                log.warning("sweep: scope entry %s is not visible to the bot user: %s", entry, exc)
    seen: set[int] = set()
    out = []
    for item in items:
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
    store.mark_incident(key, now, cadence.next_attention(report.desired))
