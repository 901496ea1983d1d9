"""The sweep: find open incidents that need a look although no webhook said so, and queue them.

Webhooks get lost while the bot is down, or GitLab gives up on them. (Time needs no sweep: a reconcile
returns when it next needs to run, and the worker keeps the incident's job delayed until then.) One
sweep lists the open incidents inside the incident scope (``bot.core.scope``): the projects the bot user
is a member of, one paginated listing, narrowed to the scope and without the team projects; then the
labelled open issues per scope entry (``/groups/:path/issues``, ``/projects/:id/issues``), keeping only
those member projects' issues and never the bot's own children. Without a scope it lists nothing: being a
member of a project never makes its issues incidents. It compares each
with what the bot remembers (``IncidentMark``: when it last converged the incident and when it next
needs attention) and queues only those updated since, never seen, or due (a due one already has its
delayed job; this only hurries one whose job went dead). The queue's
one-job-per-incident lease keeps a sweep and the workers (and several replicas) from ever working on
one incident at once. What it queues comes last (``Priority.BACKGROUND``): a resync waits behind
deliveries, commands and reminders, and waiting raises its priority so that it is not starved.

Children change too, and a child's event reaches the bot only through a webhook on the child's project (none
on a team's project, often). So a sweep given the state key also lists the bot's own issues updated since
the last such listing (one ``GET /issues``, the token user's own, in every project and state) and queues the
incident each one's signed marker names (``bot.core.children``) when the child changed after the bot last
converged that incident, and the incident's project is in the remit: a closed child is ticked within one
sweep, after the all clear too. That listing's time is remembered as a mark of its own (``CHILDREN_MARK``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.config import Config
from bot.core.children import claimed_incident
from bot.core.model import IncidentRef, Issue
from bot.core.scope import TEAM_PROJECT, is_bot_child, outside, team_projects
from bot.core.urgency import Priority, child_priority
from bot.gitlab.errors import GitLabCallError
from bot.gitlab.ports import IssueListing, RemitProject, SweepLists
from bot.gitlab.remit import MIN_MEMBER_LEVEL
from bot.reconciler import ReconcileReport
from bot.store import Enqueue, IncidentMark, Marks
from bot.text.markers import StateKey

log = logging.getLogger(__name__)

#: The mark (in the incident marks, under a key no incident has) of when the sweep last listed the children.
CHILDREN_MARK = "sweep:children"
#: GitLab's clock and the bot's may differ: each listing of children reaches back this much before the last.
CHILDREN_SLACK = timedelta(minutes=2)
CHILD_CHANGED = "a child changed"
#: A reconcile's length, at most: how long before an incident's mark a change of its child may have come in
#: unseen (the mark is taken when the reconcile ends). A change of the bot's own in that window costs one
#: reconcile that changes nothing.
CHANGE_RACE = timedelta(seconds=30)


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
    """Every project where incidents may live: the bot user a member (directly or through a group), inside
    the incident scope, not a team project. One paginated listing; none without a scope."""
    if not cfg.scope:
        return {}
    teams = team_projects(cfg)
    return {
        p.id: p
        for p in client.member_projects(MIN_MEMBER_LEVEL)
        if outside(p.path, cfg.scope, teams) is None
    }


def listings(projects: dict[int, RemitProject], scope: list[str]) -> list[IssueListing]:
    """The fewest issue listings that cover the remit: each scope entry (a group or a project) that holds a
    project of the remit. Never ``/issues?scope=all``: that lists every public issue on the instance with
    the label."""
    paths = {p.path.lower() for p in projects.values()}
    out: list[IssueListing] = []
    for entry in dict.fromkeys(e.lower() for e in scope):
        if entry in paths:
            out.append(IssueListing("project", entry))
        elif any(path.startswith(entry + "/") for path in paths):
            out.append(IssueListing("group", entry))
    return out


def open_incidents(client: SweepLists, cfg: Config, projects: dict[int, RemitProject] | None = None) -> list[Issue]:
    """Every open issue carrying the trigger label in a project of the incident remit, but the bot's children."""
    projects = remit_projects(client, cfg) if projects is None else projects
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
    for issue in found:  # a group's listing includes projects outside the remit (team, not a member): drop them
        if issue.project_id in projects and issue.id not in seen and not is_bot_child(issue, cfg.bot.username):
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


def sweep(
    client: SweepLists, store: SweepStore, cfg: Config, now: datetime, *, key: StateKey | None = None
) -> SweepReport:
    """Queue the open incidents that need a look; with the bot's state ``key``, also those whose children
    changed since the bot last converged them (without it a child's marker cannot be believed)."""
    marks = store.incident_marks()
    report = SweepReport()
    projects = remit_projects(client, cfg)
    incidents = open_incidents(client, cfg, projects)
    for issue in incidents:
        report.listed += 1
        ikey = IncidentRef(str(issue.project_id or issue.ref.project), issue.ref.iid).key
        why = needs_attention(issue, marks.get(ikey), now)
        if why:
            store.enqueue(ikey, now, f"sweep: {why}", revive_dead=False, priority=Priority.BACKGROUND)
            report.queued[ikey] = why
    if key is not None and projects:
        changed_children(client, store, cfg, now, key, marks, incidents, projects, report)
    return report


def children_since(marks: dict[str, IncidentMark]) -> datetime | None:
    """Where the listing of children starts: a little before the last one; the first time, at the oldest
    incident the bot remembers converging (any child changed since may matter); None, never converged any."""
    last = marks.get(CHILDREN_MARK)
    if last is not None:
        return last.seen_at - CHILDREN_SLACK
    seen = [m.seen_at for k, m in marks.items() if k != CHILDREN_MARK]
    return min(seen) - CHILDREN_SLACK if seen else None


def changed_since(child: Issue, mark: IncidentMark | None) -> bool:
    """Whether ``child`` may have changed after the bot last read it for its incident.

    The mark is taken when a reconcile ends, so a child changed while that reconcile ran (after it was read)
    would look older than the mark: a change up to :data:`CHANGE_RACE` before the mark still counts. A child
    never changed since the bot created it (its ``updated_at`` within a second of ``created_at``) does not."""
    if mark is None or child.updated_at is None:
        return True
    if child.created_at is not None and child.updated_at - child.created_at < timedelta(seconds=1):
        return False
    return child.updated_at > mark.seen_at - CHANGE_RACE


def changed_children(
    client: SweepLists,
    store: SweepStore,
    cfg: Config,
    now: datetime,
    key: StateKey,
    marks: dict[str, IncidentMark],
    incidents: list[Issue],
    projects: dict[int, RemitProject],
    report: SweepReport,
) -> None:
    """Queue the incidents whose children (the bot's own issues) changed after the bot last converged them."""
    by_id = {i.id: i for i in incidents if i.id is not None}
    teams = team_projects(cfg)
    for child in client.bot_issues(children_since(marks)):
        where = outside(child.project_path, cfg.scope, teams) if child.project_path else None
        if where is not None and where[0] != TEAM_PROJECT:
            continue  # children live in a team project or in their incident's project
        named = claimed_incident(child, key, by_id)
        if named is None or not named.ref.project.isdigit() or int(named.ref.project) not in projects:
            continue  # not a child the bot signed, or its incident's project is outside the remit
        ikey = named.ref.key
        if ikey in report.queued or not changed_since(child, marks.get(ikey)):
            continue
        store.enqueue(ikey, now, f"sweep: {CHILD_CHANGED}", revive_dead=False, priority=child_priority())
        report.queued[ikey] = CHILD_CHANGED
    store.mark_incident(CHILDREN_MARK, now, None)


def remember(store: Marks, key: str, report: ReconcileReport, now: datetime) -> None:
    """After a successful reconcile: the incident is converged as of ``now``."""
    store.mark_incident(key, now, report.requeue_at)
