"""``diff(desired, observed) -> actions``: the smallest set of changes that closes the gap. Pure.

Actions come in rounds whose members are independent of each other (so they run concurrently):

1. children are created and the incident's own fields set; children not yet linked are linked;
2. once every child exists and is linked, the checklist is written (its marker records the role
   holders and the snooze);
3. once the checklist is right, the comments: the status log, command replies, reminders, all clear.

Comments come last on purpose: a reply says a hand-off is done only after the checklist holds it, so a
crash between the two can never lose the hand-off. The reconciler applies a round, folds the results
into ``Observed`` and diffs again until nothing is left.
"""

from __future__ import annotations

from bot.config import Config
from bot.core import approvalnotes, bodies, cadence, clockbodies, clocks, order, records, review
from bot.core.actions import (
    Action,
    CreateChild,
    FixChild,
    LinkChild,
    NoteOnChild,
    PostNote,
    ReassignChild,
    RenameInChild,
    UpdateIncident,
    UpsertChecklist,
    UpsertReview,
)
from bot.core.model import Desired, LogEntry, Observed, TemplateIntent
from bot.core.review import REVIEW_KEY
from bot.core.routing import is_incident
from bot.text.escape import escape_inline, issue_ref
from bot.text.hazards import find_hazards


def diff(desired: Desired, observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    incident = observed.incident
    if not is_incident(incident, cfg):
        return []
    if not incident.is_open:
        return _closed(desired, observed, cfg, r)
    if not desired.in_scope:
        actions: list[Action] = []
        if "out-of-scope" not in observed.logged:
            actions.append(
                PostNote(
                    "out-of-scope",
                    bodies.out_of_scope_body(desired, observed, cfg, r),
                    ("out-of-scope",),
                    lines=(f"out of scope: {escape_inline(desired.scope_reason)}",),
                )
            )
        return actions + _replies(desired, observed, cfg, r)
    return (
        (_resign(observed, cfg, r) + _structure(desired, observed, cfg, r))
        or _checklist(desired, observed, cfg, r)
        or _comments(desired, observed, cfg, r)
    )


def _resign(observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    """An incident an earlier version ran: one status log comment re-signs the keys only its unsigned markers
    hold (``bot.core.records``), before the checklist records that only signed keys count from now on. It
    carries no copy of the state: the checklist is written after it, so a copy would look newer."""
    if not observed.to_resign or records.RESIGNED in observed.logged:
        return []
    entry = LogEntry(
        records.RESIGNED,
        f"re-signed {len(observed.to_resign)} records an earlier version of the bot left unsigned in its comments "
        "(what it posted and answered), so that an edit of them can be told from the bot's own",
    )
    first = observed.log_thread is None
    return [
        PostNote(
            "log",
            bodies.log_body([entry], observed, cfg, r, first=first, carried=observed.to_resign),
            (entry.key,),
            thread=observed.log_thread,
            starts_thread=first,
            lines=(entry.text,),
        )
    ]


def _structure(desired: Desired, observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    incident = observed.incident
    actions: list[Action] = []
    for index, child in enumerate(desired.children):
        if child.channel not in observed.children:
            actions.append(_create_child(desired, observed, index, cfg, r))
    current = {a.lower() for a in incident.assignees}
    assign = None
    if observed.assign_refused:
        pass
    elif desired.handoff_assign and desired.handoff_assign.lower() not in current:
        assign = desired.handoff_assign
    elif not incident.assignees:
        assign = desired.assign_incident_to
    add_labels = tuple(label for label in desired.add_labels if label not in incident.labels)
    if assign or add_labels:
        actions.append(UpdateIncident(assign=assign, add_labels=add_labels))
    for found in observed.children.values():
        if not found.linked:
            # A child in a team's project is named by that project's id when GitLab gave it (a path may be renamed).
            pid = found.issue.project_id
            elsewhere = pid is not None and pid != incident.project_id
            actions.append(LinkChild(found.channel, str(pid) if elsewhere else found.issue.ref.project, found.iid))
    follows = _children_follow_handoffs(desired, observed)
    actions += follows
    actions += _fix_children(desired, observed, cfg, {f.channel for f in follows})
    actions += _rename_in_children(desired, observed, r)
    actions += _order_notes(desired, observed, cfg)
    return actions


def _dri_refused(channel: str, observed: Observed) -> bool:
    """GitLab did not keep the child's DRI when the bot created or fixed the child (the warning is in the status
    log, or came in this run): the bot does not ask again."""
    if channel in observed.dri_refused:
        return True
    prefixes = (f"warning:create-child:{channel}:", f"warning:fix-child:{channel}:")
    return any(key.startswith(prefixes) for key in observed.logged)


def _fix_children(desired: Desired, observed: Observed, cfg: Config, following: set[str]) -> list[FixChild]:
    """Each child of the plan put back as the plan says when someone (or, on an older version, a team's template)
    changed it: confidential (open or closed), and while it is open the bot's labels on it and, when nobody but
    the bot is assigned, its DRI. A person's reassignment to someone else is theirs to make (and a hand-off's
    is ``ReassignChild``)."""
    out = []
    bot = cfg.bot.username.lower()
    for plan in desired.children:
        found = observed.children.get(plan.channel)
        if found is None or plan.channel in observed.children_fixed:
            continue
        issue = found.issue
        missing = tuple(label for label in plan.labels if label not in issue.labels) if issue.is_open else ()
        dri = plan.assignee.assignee
        others = [a for a in issue.assignees if a.lower() != bot]
        assign = bool(
            issue.is_open
            and dri
            and not others
            and plan.channel not in following
            and not _dri_refused(plan.channel, observed)
        )
        if issue.confidential and not missing and not assign:
            continue
        stamp = issue.updated_at.isoformat() if issue.updated_at else "unknown"
        out.append(
            FixChild(
                plan.channel,
                issue.ref.project,
                found.iid,
                confidential=not issue.confidential,
                add_labels=missing,
                assignees=(dri,) if assign and dri else None,
                dri=dri if assign else None,
                log_key=f"fixed:{plan.channel}:{bodies.log_id(issue, observed.incident)}:{stamp}",
            )
        )
    return out


def _rename_in_children(desired: Desired, observed: Observed, r: bodies.Renderer) -> list[RenameInChild]:
    """Each open child whose names block no longer names the current DRI and role holders, rewritten in place
    (``bot.core.names``). A closed child keeps the names it was done with."""
    out = []
    for found in observed.children.values():
        if not found.issue.is_open or found.channel in observed.children_renamed:
            continue
        description = bodies.child_names(desired, observed, found, r)
        if description is None:
            continue
        action = RenameInChild(found.channel, found.issue.ref.project, found.iid, description)
        # Text around the bot's part that GitLab would run as a quick action: the edit is refused (the status
        # log says so, once); asked again only when that line is gone.
        refused = any(key.startswith(f"warning:{action.key}:") for key in observed.logged)
        if refused and any(h.kind == "quick_action" for h in find_hazards(description)):
            continue
        out.append(action)
    return out


def _order_notes(desired: Desired, observed: Observed, cfg: Config) -> list[NoteOnChild]:
    """One comment on each child closed out of the plan's order, before the incident's log says so (the
    log line is folded in after it): once the log holds the key, both are done, with no read needed."""
    out = []
    for breach in order.breaches(desired, observed, cfg):
        if breach.key in observed.logged or breach.key in observed.child_noted:
            continue
        child = breach.later
        out.append(
            NoteOnChild(
                child.channel,
                child.issue.ref.project,
                child.iid,
                bodies.order_child_body(breach, desired, cfg, observed),
                breach.key,
                bodies.order_log_text(breach, desired, cfg, observed.incident),
            )
        )
    return out


def _create_child(desired: Desired, observed: Observed, index: int, cfg: Config, r: bodies.Renderer) -> CreateChild:
    """A missing child: in its team's project from the team's own template when GitLab gave both in this
    reconcile (``observed.targets``), else from the bundled template in the incident's project."""
    child = desired.children[index]
    target = observed.targets.get(child.channel)
    project = target.project if target is not None and target.in_team_project else None
    preamble = target.template if target is not None and not target.fallback and target.template else ""
    description = bodies.child_description(
        desired, observed, index, r, template=cfg.templates.child_plan if preamble else None, project=project
    )
    intent = target.intent if target is not None and preamble else TemplateIntent()
    dri = (child.assignee.assignee or "").lower()
    return CreateChild(
        channel=child.channel,
        title=bodies.child_title(desired, child.title, observed, project),
        description=description,
        labels=child.labels + tuple(label for label in intent.labels if label not in child.labels),
        assignee=child.assignee.assignee,
        project=project,
        preamble=preamble,
        template_name=child.gitlab_template if preamble else None,
        extra_assignees=tuple(a for a in intent.assignees if a.lower() != dri),
        milestone_id=intent.milestone_id,
        due_date=intent.due_date,
        weight=intent.weight,
    )


def _children_follow_handoffs(desired: Desired, observed: Observed) -> list[ReassignChild]:
    """After a hand-off, an open child whose DRI is the role moves from the previous holder to the new one.

    Only while the child is still assigned to exactly the previous holder, as the bot assigned it: a child
    a person reassigned (or unassigned) by hand is left as they chose. Runs before the checklist records
    the new holder, so the previous one is still known (``observed.state``)."""
    out = []
    for plan in desired.children:
        found = observed.children.get(plan.channel)
        kind, _, role = plan.assignee.party.partition(":")
        new = plan.assignee.assignee
        old = observed.state.roles.get(role) if kind == "role" else None
        if found is None or not found.issue.is_open or not new or not old or old.lower() == new.lower():
            continue
        if [a.lower() for a in found.issue.assignees] != [old.lower()]:
            continue
        out.append(ReassignChild(plan.channel, found.issue.ref.project, found.iid, new, old, role))
    return out


def _checklist(desired: Desired, observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    body = bodies.checklist_body(desired, observed, cfg, r)
    if observed.checklist is not None and observed.checklist.body.strip() == body.strip():
        return []
    return [UpsertChecklist(body=body, note_id=observed.checklist.id if observed.checklist else None)]


def _comments(desired: Desired, observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    actions: list[Action] = []
    entries = [e for e in bodies.log_entries(desired, observed) if e.key not in observed.logged]
    if entries:
        first = observed.log_thread is None
        body = bodies.log_body(entries, observed, cfg, r, bodies.state_copy(desired, observed), first=first)
        actions.append(
            PostNote(
                "log",
                body,
                tuple(e.key for e in entries),
                thread=observed.log_thread,
                starts_thread=first,
                lines=tuple(e.text for e in entries),
            )
        )
    actions += _replies(desired, observed, cfg, r)
    if not desired.reminders_paused:
        due = [d for d in cadence.overdue(desired.dues) if d.key not in observed.logged]
        if due:
            names = ", ".join(escape_inline(d.engagement.name) for d in due)
            actions.append(
                PostNote(
                    "reminder",
                    bodies.reminder_body(desired, observed, due, cfg, r),
                    tuple(d.key for d in due),
                    lines=(f"reminded the DRIs that a status update is due ({names})",),
                )
            )
    actions += _clock_reminders(desired, observed)
    actions += approvalnotes.actions(desired, observed, cfg)
    if desired.all_clear and "all-clear" not in observed.logged:
        actions.append(
            PostNote(
                "all-clear",
                bodies.all_clear_body(desired, observed, cfg, r),
                ("all-clear",),
                lines=("posted the all clear: final comms",),
            )
        )
    return actions or _review(desired, observed, cfg, r)


def wants_review(desired: Desired) -> bool:
    """The review is written at the all clear, or from when the ``report`` command asked for it."""
    return desired.in_scope and (desired.all_clear or desired.state.review)


def _review(desired: Desired, observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    """The communications review, last (it measures to the comments above it): posted once, then edited in
    place when a late fact changes its text. Never before the incident's label events were read."""
    if not wants_review(desired) or observed.label_changes is None or desired.now is None:
        return []
    body = bodies.review_body(review.review(observed, desired, cfg, observed.label_changes), observed, cfg, r)
    found = observed.logged_at.get(REVIEW_KEY) if REVIEW_KEY in observed.logged else None
    if found is not None and found.body.strip() == body.strip():
        return []
    return [UpsertReview(body, found.id if found is not None else None)]


def _clock_reminders(desired: Desired, observed: Observed) -> list[Action]:
    """One comment for the regulatory clocks' thresholds passed since the last look (each key once, ever). A
    snooze or the all clear does not pause them: the deadlines do not move."""
    if desired.now is None:
        return []
    due = clocks.reminders(clocks.open_stages(desired.clocks), desired.now, observed.logged)
    if not due:
        return []
    names = ", ".join(f"{escape_inline(r.due.clock.id)} {escape_inline(r.due.stage.id)} ({r.threshold})" for r in due)
    return [
        PostNote(
            "clock-reminder",
            clockbodies.reminder_body(desired, observed, due),
            tuple(k for r in due for k in r.keys),
            lines=(f"reminded the owners of a regulatory deadline: {names}",),
        )
    ]


def _replies(desired: Desired, observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    """Each command is answered in its own thread (GitLab makes a plain comment a thread when it is replied
    to; a reply in an internal thread is internal)."""
    return [
        PostNote(
            "reply",
            bodies.reply_body(v, desired, observed, cfg, r),
            (v.command.key,),
            internal=v.command.note.internal,
            thread=v.command.note.discussion_id or None,
            lines=(
                f"answered {escape_inline(v.command.note.author)}'s {escape_inline(v.command.name)} command "
                f"({'done' if v.ok else 'refused'})",
            ),
        )
        for v in desired.verdicts
        if v.command.key not in observed.logged
    ]


def _closed(desired: Desired, observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    """A closed incident gets one comment listing the children still open, once per closing; its review is still
    kept up to date (a child sent after the incident was closed)."""
    if observed.checklist is None:
        return []
    still_open = [c for c in observed.children.values() if c.issue.is_open]
    closed_at = observed.incident.closed_at
    key = f"closed:{closed_at.isoformat() if closed_at else 'unknown'}"
    if not still_open or key in observed.logged:
        return _review(desired, observed, cfg, r)
    refs = ", ".join(issue_ref(c.iid) for c in still_open)
    return [
        PostNote(
            "closed",
            bodies.closed_body(desired, observed, still_open, cfg, r),
            (key,),
            lines=(f"the incident was closed with child issues still open: {refs}",),
        )
    ]
