"""The policy engine: from an incident's facts and the config, what GitLab should show. Pure.

``plan`` is the only entry point. It reads labels, severity (label and field, the higher wins), impact
flags and phase, decides whether the plan applies, who holds each role, which engagements apply and
which child issues must exist. It never looks at what the bot already wrote, except the role holders
recorded in the checklist (``BotState``): a role changes hands only by an explicit command.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast

from bot.config import Condition, Config, Engagement, RoleId, Severity
from bot.core import approvals, cadence, clockcmd, clocks, commands
from bot.core.clockcmd import ClockContext
from bot.core.model import (
    BotState,
    ChildPlan,
    Desired,
    EngagedPlan,
    EngagementPlan,
    FirstActionPlan,
    Issue,
    Observed,
    Person,
    ProposalPlan,
)
from bot.core.outbound import Context, Draft
from bot.core.rotation import on_call
from bot.core.routing import is_incident
from bot.core.scope import is_bot_child
from bot.core.state import next_revision


def severity_of(issue: Issue, cfg: Config) -> tuple[Severity, str]:
    """The incident's severity and where it came from: the highest of its labels and its field."""
    best, source = Severity.UNKNOWN, "no severity label or field"
    for label in sorted(issue.labels):
        level = cfg.severity.labels.get(label)
        if level is not None and level > best:
            best, source = level, f"label {label}"
    try:
        field = Severity.parse(issue.severity_field)
    except ValueError:
        field = Severity.UNKNOWN
    if field > best:
        best, source = field, f"incident severity field {field.label}"
    return best, source


def phase_of(issue: Issue, cfg: Config) -> str:
    """The furthest phase label present (Free tier allows several); the first phase if none."""
    present = [i for i, p in enumerate(cfg.phases) if p.label in issue.labels]
    return cfg.phases[max(present)].label if present else cfg.phases[0].label


@dataclass(frozen=True)
class Facts:
    """What conditions are evaluated against."""

    flags: frozenset[str]
    severity: Severity
    phase: str
    phase_index: int


def holds(cond: Condition, facts: Facts, cfg: Config) -> bool:
    if cond.any_flags is not None and not facts.flags & set(cond.any_flags):
        return False
    if cond.all_flags is not None and not set(cond.all_flags) <= facts.flags:
        return False
    if cond.severity_at_least is not None and facts.severity < cond.severity_at_least:
        return False
    if cond.phase_at_least is not None and facts.phase_index < cfg.phase_index(cond.phase_at_least):
        return False
    return cond.any is None or any(holds(c, facts, cfg) for c in cond.any)


def explain(cond: Condition, facts: Facts, cfg: Config) -> str:
    """Why a condition that holds holds, for the status log: "data-breach is set"."""
    parts = []
    if cond.any_flags:
        parts.append(" and ".join(f for f in cond.any_flags if f in facts.flags) + " is set")
    if cond.all_flags:
        parts.append(" and ".join(cond.all_flags) + " are set")
    if cond.severity_at_least is not None:
        parts.append(f"severity is {facts.severity.label}")
    if cond.phase_at_least is not None:
        parts.append(f"the phase is {facts.phase}")
    first = next((c for c in cond.any or [] if holds(c, facts, cfg)), None)
    if first is not None:
        parts.append(explain(first, facts, cfg))
    return " and ".join(parts)


def resolve_party(party: str, roles: dict[str, str | None], cfg: Config) -> Person:
    kind, _, name = party.partition(":")
    if kind == "role":
        holder = roles.get(name)
        return Person(party, cfg.roles[cast(RoleId, name)].name, holder, holder)
    team = cfg.teams[name]
    return Person(party, team.name, team.handle, team.assignee or team.handle)


def escalation(engagement: Engagement, roles: dict[str, str | None], cfg: Config) -> Person | None:
    """Who an update overdue for a second window is escalated to: the engagement's ``escalate_to``, else the
    one its DRI's role or team names. A role or team resolves as a DRI does; a username is that user."""
    target = engagement.escalate_to
    if target is None:
        kind, _, name = engagement.dri.partition(":")
        owner = cfg.roles.get(cast(RoleId, name)) if kind == "role" else cfg.teams.get(name)
        target = owner.escalate_to if owner is not None else None
    if target is None:
        return None
    if ":" in target:
        return resolve_party(target, roles, cfg)
    return Person(f"user:{target}", target, target, target)


def proposals(incident: Issue, facts: Facts, cfg: Config) -> tuple[ProposalPlan, ...]:
    """The channels the plan implies (``proposed_when`` holds) whose label is not on the incident."""
    return tuple(
        ProposalPlan(ch.label, ch.title, commands.short_name(ch.label, cfg), explain(ch.proposed_when, facts, cfg))
        for ch in cfg.channels
        if ch.proposed_when is not None and ch.label not in incident.labels and holds(ch.proposed_when, facts, cfg)
    )


def role_holders(state: BotState, cfg: Config, now: datetime) -> dict[str, str | None]:
    """Recorded holders win; a role nobody holds yet is filled from its roster or rotation at ``now``."""
    return {rid: state.roles.get(rid) or on_call(role, now) for rid, role in cfg.roles.items()}


def effective_cadence(
    engagement: Engagement, facts: Facts, state: BotState, cfg: Config
) -> tuple[timedelta | None, str, datetime | None]:
    """An engagement's interval for this incident, where it comes from, and when a command last changed it.

    Precedence: a ``cadence`` command on the incident, then the first ``cadence_defaults`` rule that holds
    (severity and phase), then the engagement's own cadence. Continuous engagements stay continuous."""
    if engagement.cadence is None:
        return None, "", None
    request = state.cadences.get(engagement.id)
    changed = request.at if request else None
    if request is not None and request.every is not None:
        return request.every, f"requested by @{request.by}", changed
    for rule in cfg.cadence_defaults:
        if rule.engagements is not None and engagement.id not in rule.engagements:
            continue
        if rule.severity_at_least is not None and facts.severity < rule.severity_at_least:
            continue
        if rule.phase is not None and facts.phase != rule.phase:
            continue
        parts = [f"severity {facts.severity.label}"] if rule.severity_at_least is not None else []
        parts += [f"phase {facts.phase}"] if rule.phase is not None else []
        return rule.every, "config default" + (f" for {', '.join(parts)}" if parts else ""), changed
    return engagement.cadence, "", changed


def plan(incident: Issue, state: BotState, cfg: Config, now: datetime) -> Desired:
    """What GitLab should show for ``incident``. Pure: same inputs, same answer."""
    severity, severity_source = severity_of(incident, cfg)
    phase = phase_of(incident, cfg)
    phase_index = cfg.phase_index(phase)
    flags = frozenset(f for f in cfg.impact_flags if f in incident.labels)
    facts = Facts(flags, severity, phase, phase_index)
    threshold = cfg.severity.in_scope_at_least
    phase_name = cfg.phases[phase_index].name

    def out_of_scope(reason: str) -> Desired:
        return Desired(
            ref=incident.ref,
            in_scope=False,
            scope_reason=reason,
            severity=severity,
            severity_source=severity_source,
            phase=phase,
            phase_name=phase_name,
            flags=tuple(sorted(flags)),
            closed=not incident.is_open,
        )

    if is_bot_child(incident, cfg.bot.username):
        return out_of_scope("the issue is a child the bot opened, never an incident")
    if not is_incident(incident, cfg):
        return out_of_scope(f"the issue has no {cfg.labels.trigger} label")
    # Once engaged, an incident stays engaged: lowering the severity never tears anything down.
    engaged = bool(state.roles)
    if severity < threshold and not engaged:
        reason = (
            f"severity is {severity.label} ({severity_source}); the plan covers {threshold.label} or higher"
            if severity > Severity.UNKNOWN
            else "no severity is set yet"
        )
        return out_of_scope(reason)

    holders = role_holders(state, cfg, now)
    roles: dict[str, Person] = {rid: resolve_party(f"role:{rid}", holders, cfg) for rid in cfg.roles}
    engagements = tuple(
        EngagementPlan(
            id=e.id,
            name=e.name,
            dri=resolve_party(e.dri, holders, cfg),
            cadence=every,
            channel=e.channel,
            reason=explain(e.when, facts, cfg) or f"severity is {severity.label}",
            cadence_source=source,
            cadence_changed=changed,
            escalate=escalation(e, holders, cfg),
        )
        for e in cfg.engagements
        if holds(e.when, facts, cfg)
        for every, source, changed in [effective_cadence(e, facts, state, cfg)]
    )
    children = tuple(
        ChildPlan(
            channel=ch.label,
            title=ch.title,
            template=ch.template,
            labels=(cfg.labels.child, ch.label),
            assignee=resolve_party(ch.assignee, holders, cfg),
            engaged=tuple(EngagedPlan(resolve_party(e.party, holders, cfg), e.note) for e in ch.engaged),
            rules=tuple(ch.rules),
            reason=f"{ch.label} is set",
            project=ch.project,
            gitlab_template=ch.gitlab_template,
        )
        for ch in cfg.channels
        if ch.label in incident.labels
    )
    first_actions = tuple(
        FirstActionPlan(fa.id, fa.text, resolve_party(fa.dri, holders, cfg)) for fa in cfg.first_actions
    )
    has_phase = any(p.label in incident.labels for p in cfg.phases)
    return Desired(
        ref=incident.ref,
        in_scope=True,
        scope_reason=f"severity is {severity.label} ({severity_source})",
        severity=severity,
        severity_source=severity_source,
        phase=phase,
        phase_name=phase_name,
        flags=tuple(sorted(flags)),
        closed=not incident.is_open,
        roles=roles,
        assign_incident_to=holders.get("seoc") if not incident.assignees else None,
        add_labels=() if has_phase else (cfg.phases[0].label,),
        first_actions=first_actions,
        engagements=engagements,
        children=children,
        proposals=proposals(incident, facts, cfg),
    )


def plan_observed(observed: Observed, cfg: Config, now: datetime) -> Desired:
    """``plan`` plus everything that depends on the comments and the time: commands, cadence, all clear."""
    # A box the bot ticked for ``done`` and a Maintainer unticked by hand is not done any more.
    before = replace(
        observed.state, done={k: v for k, v in observed.state.done.items() if k not in observed.checklist_unticked}
    )
    # The drafts as they read now: a changed digest voids the approvals of the old one before any command counts.
    before = replace(before, approvals=approvals.track(before.approvals, observed.children, cfg, now))
    first = plan(observed.incident, before, cfg, now)
    engaged = {e.id for e in first.engagements}
    ticks = commands.Ticks(commands.checklist_items(cfg, engaged), before.done, observed.checklist_ticks)
    signoff = approvals.ApprovalContext(
        {v.channel: v for v in _approval_views(before, observed, cfg, now, first.severity)}, dict(before.approvals)
    )
    verdicts = _judge_all(observed, cfg, ticks, now, signoff)
    state = commands.apply(before, list(verdicts))
    # Channels added with ``add`` count as selected at once: their issues are opened in this same run.
    added = {label for v in verdicts if v.ok for label in v.add_channels}
    incident = observed.incident
    desired = plan(replace(incident, labels=incident.labels | added), state, cfg, now)
    if not desired.in_scope:
        return replace(desired, verdicts=tuple(_not_added(v, desired.scope_reason) for v in verdicts), now=now)
    new = added - incident.labels
    by = {label: v.command.note.author for v in verdicts if v.ok for label in v.add_channels}
    desired = replace(
        desired,
        add_labels=desired.add_labels + tuple(sorted(new)),
        children=tuple(
            replace(c, reason=f"{by[c.channel]} added {c.channel} with the add command") if c.channel in new else c
            for c in desired.children
        ),
    )
    holders = {rid: p.handle for rid, p in desired.roles.items() if p.handle}
    handoffs = [v.handoff[1] for v in verdicts if v.handoff and v.handoff[0] == "seoc"]
    assignees = {a.lower() for a in observed.incident.assignees}
    handoff_assign = handoffs[-1] if handoffs and handoffs[-1].lower() not in assignees else None
    last = cadence.last_update(observed.updates, cfg.status_update_points, cfg.bot.username)
    began = {e.id: state.began.get(e.id, now) for e in desired.engagements if e.cadence is not None}
    changed = {e.id: e.cadence_changed for e in desired.engagements if e.cadence_changed is not None}
    dues = cadence.dues(desired.engagements, last.created_at if last else None, began, now, now, changed=changed)
    all_clear = desired.phase == cfg.phases[-1].label
    facts = Facts(frozenset(desired.flags), desired.severity, desired.phase, cfg.phase_index(desired.phase))
    owners = clock_owners(state, cfg, now)
    clock_views = clocks.views(cfg.clocks, state.clocks, owners, cfg.calendars)
    offers = tuple(
        c.id for c in cfg.clocks if c.id not in state.clocks and clocks.offered(c, now) and holds(c.when, facts, cfg)
    )
    paused = ""
    if all_clear:
        paused = "all clear"
    elif state.snoozed_until and now < state.snoozed_until:
        paused = f"snoozed until {state.snoozed_until:%Y-%m-%d %H:%M} UTC"
    return replace(
        desired,
        now=now,
        state=next_revision(
            observed.state, BotState(
                holders,
                snoozed_until=state.snoozed_until,
                began=began,
                handled=state.handled,
                cadences=state.cadences,
                chat_channel=state.chat_channel or _created_channel(observed, cfg),
                done=state.done,
                clocks=state.clocks,
                # Recorded once nothing unsigned is left to re-sign: the comment that re-signs comes first
                # (``diff``), so a crash in between never loses an earlier version's keys.
                signed_log=True,
                timeline=observed.state.timeline,
                review=state.review,
                slots=state.slots,
                approvals=state.approvals,
            )
        ),
        verdicts=verdicts,
        handoff_assign=handoff_assign,
        dues=tuple(dues),
        last_update=last,
        all_clear=all_clear,
        reminders_paused=paused,
        clocks=clock_views,
        clock_offers=offers,
        approvals=_approval_views(state, observed, cfg, now, desired.severity, incident.labels | added),
    )


def _approval_views(
    state: BotState, observed: Observed, cfg: Config, now: datetime, severity: Severity,
    labels: frozenset[str] | None = None,
) -> tuple[approvals.ChannelApproval, ...]:
    """Each channel the approval matrix names, with its chains resolved with the role holders of ``state``."""
    if not cfg.approvals.enabled:
        return ()
    holders = role_holders(state, cfg, now)
    return approvals.views(state.approvals, observed.children, cfg, now, severity,
                           lambda party: resolve_party(party, holders, cfg),
                           observed.incident.labels if labels is None else labels)


def _judge_all(
    observed: Observed, cfg: Config, ticks: commands.Ticks, now: datetime,
    signoff: approvals.ApprovalContext | None = None,
) -> tuple[commands.Verdict, ...]:
    """Each command not answered yet, in the order written. For ``add``, a channel is already selected when its
    label is on the incident and the bot logged its issue as opened (so a run that crashed after writing the
    label, before answering, still answers "added"), or an earlier command of this run added it."""
    selected = {
        label
        for label in observed.incident.labels
        if any(key.startswith(f"child:{label}:") for key in observed.logged)
    }
    out = []
    ctx = ClockContext(clock_owners(observed.state, cfg, now), dict(observed.state.clocks))
    slots = dict(observed.state.slots)  # an integration's command sees its slot as the earlier ones left it
    context = command_context(observed, cfg, now, signoff)
    for c in observed.commands:
        if c.key in observed.logged:
            continue
        if c.name == "clock" and c.allowed:
            verdict = clockcmd.judge(c, cfg, ctx)
        elif c.name in ("approve", "reject") and c.allowed and signoff is not None:
            verdict = approvals.judge(c, cfg, signoff)
            if verdict.approval:
                signoff = replace(signoff, records={**signoff.records, verdict.approval[0]: verdict.approval[1]})
        else:
            verdict = commands.judge(c, cfg, ticks, frozenset(selected), observed.outbound.commands, slots, context)
        if verdict.slot:
            slots[verdict.slot[0]] = verdict.slot[1]
        selected |= set(verdict.add_channels)
        if verdict.clock:
            ctx = replace(ctx, records={**ctx.records, verdict.clock[0]: verdict.clock[1]})
        out.append(verdict)
    return tuple(out)


def command_context(
    observed: Observed, cfg: Config, now: datetime, signoff: approvals.ApprovalContext | None = None
) -> Context:
    """The incident as an integration's command is judged against it (generic: no integration's name)."""
    drafts = approvals.approved_drafts(list(signoff.channels.values())) if signoff is not None else {}
    incident = observed.incident
    return Context(
        cfg=cfg,
        labels=incident.labels,
        holders=role_holders(observed.state, cfg, now),
        drafts={k: Draft(d.digest, d.text, d.approved) for k, d in drafts.items()},
        all_clear=bool(cfg.phases) and cfg.phases[-1].label in incident.labels,
        instance=instance_of(incident.web_url),
        project=str(incident.project_id) if incident.project_id is not None else incident.ref.project,
        iid=incident.ref.iid,
    )


def instance_of(web_url: str) -> str:
    """The host of the GitLab instance an issue's web URL is on (``gitlab.example.com``); "" when unknown."""
    _, sep, rest = web_url.partition("://")
    host = rest.split("/")[0].rpartition("@")[2]
    return (host.rsplit(":", 1)[0] if host.count(":") == 1 else host).lower() if sep else ""


def clock_owners(state: BotState, cfg: Config, now: datetime) -> dict[str, Person]:
    """Each clock's owner as a person: a team's handle and assignee, or a role's holder now."""
    holders = role_holders(state, cfg, now)
    return {c.id: resolve_party(c.owner, holders, cfg) for c in cfg.clocks}


def _not_added(verdict: commands.Verdict, reason: str) -> commands.Verdict:
    """An ``add`` on an incident the plan does not cover (yet) adds nothing, and says why; nor is a ``clock``
    recorded there (the checklist that would hold it is not written)."""
    if verdict.clock or verdict.approval:
        return replace(
            verdict,
            ok=False,
            clock=None,
            approval=None,
            reply=f"nothing recorded: the communications plan does not apply to this incident ({reason})",
        )
    if not verdict.add_channels:
        return verdict
    return replace(
        verdict,
        ok=False,
        add_channels=(),
        reply=f"nothing added: the communications plan does not apply to this incident ({reason})",
    )


def _created_channel(observed: Observed, cfg: Config) -> str:
    """The incident channel the bot created through an outbound integration, recorded as the incident's (as the
    ``channel`` command records one) so the incident keeps it; a name the policy no longer accepts is not recorded."""
    created = observed.outbound.channel
    if created is None or cfg.chat is None or not cfg.chat.may_be_incident_channel(created.name):
        return ""
    return created.name
