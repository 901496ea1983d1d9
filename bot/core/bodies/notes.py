"""The bot's other notes on an incident: out of scope, reminders, all clear, closed with open children."""

from __future__ import annotations

from typing import Any

from bot.config import Config
from bot.core import cadence
from bot.core.bodies.common import Renderer, _incident_context, _log, _render, at, dri_of, every, who
from bot.core.bodies.refs import child_ref
from bot.core.model import Child, Desired, Issue, Observed
from bot.text.escape import escape_inline, is_valid_username
from bot.text.safe import Safe


def out_of_scope_body(desired: Desired, observed: Observed, cfg: Config, r: Renderer) -> str:
    return _render(
        r,
        cfg.templates.out_of_scope,
        "out-of-scope comment",
        marker=_log(observed, ["out-of-scope"]),
        incident=_incident_context(observed),
        reason=desired.scope_reason,
        threshold=cfg.severity.in_scope_at_least.label,
        severity_labels=[
            label for label, level in cfg.severity.labels.items() if level >= cfg.severity.in_scope_at_least
        ],
        bot=cfg.bot.username,
    )


def _child_rows(children: list[Child], desired: Desired, cfg: Config, incident: Issue) -> list[dict[str, Any]]:
    plans = {c.channel: c for c in desired.children}
    rows = []
    for child in sorted(children, key=lambda c: c.iid):
        plan = plans.get(child.channel)
        ch_cfg = cfg.channel(child.channel)
        title = plan.title if plan else (ch_cfg.title if ch_cfg else child.channel)
        people = [at(a) for a in child.issue.assignees if is_valid_username(a)]
        dri = Safe(", ".join(people)) if people else (dri_of(plan.assignee) if plan else Safe("unassigned"))
        assignees = [escape_inline("@" + a) for a in child.issue.assignees if is_valid_username(a)]
        rows.append(
            {
                "ref": Safe(child_ref(child.issue, incident)),
                "title": title,
                "dri": dri,
                "state": child.issue.state,
                "channel": child.channel,
                # Named without notifying (a status update is copied and posted by people).
                "assignee": Safe(", ".join(assignees)) if assignees else "unassigned",
            }
        )
    return rows


def _escalates(due: cadence.Due) -> bool:
    """Whether a reminder names the engagement's escalation: from the second overdue window on, and only someone
    other than the DRI it already names."""
    person, dri = due.engagement.escalate, due.engagement.dri
    if person is None or due.window < 2:
        return False
    return (person.handle or "").lower() != (dri.handle or "").lower()


def reminder_body(desired: Desired, observed: Observed, due: list[cadence.Due], cfg: Config, r: Renderer) -> str:
    last = desired.last_update
    return _render(
        r,
        cfg.templates.reminder,
        f"reminder on {desired.ref}",
        marker=_log(observed, [d.key for d in due]),
        engagements=[
            {
                "name": d.engagement.name,
                "dri": dri_of(d.engagement.dri),
                "cadence": every(d.engagement.cadence),
                "channel": d.engagement.channel,
                "due_at": d.due_at,
                # From the second overdue window on, the next person in the chain is named, once per window.
                "escalate": who(d.engagement.escalate) if d.engagement.escalate and _escalates(d) else None,
                "escalate_name": d.engagement.escalate.name if d.engagement.escalate else "",
                "windows": d.window,
            }
            for d in due
        ],
        last_update=last.created_at if last else None,
        bot=cfg.bot.username,
    )


def all_clear_body(desired: Desired, observed: Observed, cfg: Config, r: Renderer) -> str:
    still_open = [c for c in observed.children.values() if c.issue.is_open]
    return _render(
        r,
        cfg.templates.all_clear,
        "all-clear comment",
        marker=_log(observed, ["all-clear"]),
        children=_child_rows(still_open, desired, cfg, observed.incident),
    )


def closed_body(desired: Desired, observed: Observed, still_open: list[Child], cfg: Config, r: Renderer) -> str:
    closed_at = observed.incident.closed_at
    key = f"closed:{closed_at.isoformat() if closed_at else 'unknown'}"
    return _render(
        r,
        cfg.templates.closed_open_children,
        "closed-incident comment",
        marker=_log(observed, [key]),
        children=_child_rows(still_open, desired, cfg, observed.incident),
    )
