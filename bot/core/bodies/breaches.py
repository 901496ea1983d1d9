"""Children closed out of the plan's order: the status log line and the comment on the child."""

from __future__ import annotations

from typing import Any

from bot.config import Config
from bot.core import order
from bot.core.bodies.common import _checked_entry, _log, at, dri_of
from bot.core.bodies.refs import _full_ref, child_ref
from bot.core.model import Child, Desired, Issue, LogEntry, Observed
from bot.text.escape import code_span, escape_inline, is_valid_username, issue_ref
from bot.text.safe import Safe


def _order_marks(desired: Desired, observed: Observed, cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """Per channel, the order rules its child broke: what should have gone first, and the rule's id."""
    marks: dict[str, list[dict[str, Any]]] = {}
    for b in order.breaches(desired, observed, cfg):
        marks.setdefault(b.later.channel, []).append({"before": b.first_channel, "rule": b.rule.id})
    return marks


def _child_dri(child: Child, desired: Desired) -> Safe:
    """Who a child is with: its assignees as GitLab shows them, else the planned DRI."""
    plan = next((c for c in desired.children if c.channel == child.channel), None)
    people = [at(a) for a in child.issue.assignees if is_valid_username(a)]
    return Safe(", ".join(people)) if people else (dri_of(plan.assignee) if plan else Safe("unassigned"))


def _child_label(child: Child, desired: Desired, cfg: Config, incident: Issue, full: bool = False) -> str:
    """``#12 Incident response customer email (`comms-email`)``, safe markdown; ``full``: ``group/project#12``
    (for a comment posted outside the incident's project)."""
    plan = next((c for c in desired.children if c.channel == child.channel), None)
    ch_cfg = cfg.channel(child.channel)
    title = plan.title if plan else (ch_cfg.title if ch_cfg else child.channel)
    ref = _full_ref(child.issue, incident) if full else child_ref(child.issue, incident)
    return f"{ref} {escape_inline(title)} ({code_span(child.channel)})"


def _breach_text(b: order.Breach, desired: Desired, cfg: Config, incident: Issue, full: bool = False) -> str:
    if b.first is None:
        first = f"{code_span(b.first_channel)}, which has no issue yet"
    else:
        state = "which is still open" if b.first.issue.is_open else "which was closed after it"
        first = f"{_child_label(b.first, desired, cfg, incident, full)}, {state}"
    return (
        f"{_child_label(b.later, desired, cfg, incident, full)} was closed before {first}: against the plan's "
        f"order, rule {code_span(b.rule.id)}: \"{escape_inline(' '.join(b.rule.plan.split()))}\" DRI "
        f"{_child_dri(b.later, desired)}"
    )


def order_log_text(b: order.Breach, desired: Desired, cfg: Config, incident: Issue) -> str:
    """The status log line for a child closed out of the plan's order (key: ``b.key``)."""
    return _breach_text(b, desired, cfg, incident)


def order_child_body(b: order.Breach, desired: Desired, cfg: Config, observed: Observed) -> str:
    """The one comment on the child itself; its log marker carries ``b.key`` so it is found again. On a child
    in a team's project every reference is written in full (``#12`` there would be that project's issue)."""
    incident = observed.incident
    elsewhere = "/" in child_ref(b.later.issue, incident)
    here = _full_ref(incident, incident) if elsewhere else issue_ref(desired.ref.iid)
    text = _checked_entry(
        LogEntry(
            b.key,
            _breach_text(b, desired, cfg, incident, full=elsewhere)
            + f". The incident ({here}) records this in its status log and checklist.",
        )
    )
    return f"{_log(observed, [b.key])}\n{text}\n"
