"""The sweep: find open incidents that need a look although no webhook said so, and queue them.

Webhooks get lost while the bot is down, and time passes without any (a status update falls due). One
sweep lists every open incident the bot user can see, across projects, with one label-filtered,
paginated listing; it compares each with what the bot remembers (``IncidentMark``: when it last
converged the incident and when it next needs attention) and queues only those updated since, never
seen, or due. The queue's one-job-per-incident lease keeps a sweep and the workers (and several
replicas) from ever working on one incident at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.config import Config
from bot.core import cadence
from bot.core.model import IncidentRef, Issue
from bot.gitlab.client import GitLabClient, issue_from_api
from bot.reconciler import ReconcileReport
from bot.store import DeliveryStore, IncidentMark


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


def open_incidents(client: GitLabClient, cfg: Config) -> list[Issue]:
    """Every open issue carrying the trigger label that the bot user can see, in every project."""
    query = {"scope": "all", "state": "opened", "labels": cfg.labels.trigger, "order_by": "updated_at"}
    items = client.list_all("list open incidents", "/issues", query)
    return [issue_from_api(item) for item in items]


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
