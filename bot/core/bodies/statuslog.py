"""The status log: the entries GitLab's state calls for and the notes of its thread."""

from __future__ import annotations

from bot.config import Config
from bot.core import records, teamintent
from bot.core.bodies.common import (
    LOG,
    LOG_THREAD,
    Renderer,
    _checked_entry,
    _engaged_as,
    _log,
    _render,
    at,
    dri_of,
    every,
    who,
)
from bot.core.bodies.refs import _log_id, child_ref
from bot.core.model import Desired, LogEntry, Observed
from bot.text.escape import code_span, escape_inline
from bot.text.markers import parse_markers
from bot.text.safe import Safe


def log_entries(desired: Desired, observed: Observed) -> list[LogEntry]:
    """The status log lines GitLab's state calls for; ``diff`` drops the ones already logged."""
    entries = []
    if desired.in_scope:
        assignees = {a.lower() for a in observed.incident.assignees}
        roles = ", ".join(
            f"{rid.upper()} {who(p)}" + (" (assigned to the incident)" if (p.handle or "").lower() in assignees else "")
            for rid, p in desired.roles.items()
        )
        entries.append(
            LogEntry(
                "engaged",
                f"engaged the communications plan because {escape_inline(desired.scope_reason)}; roles: {roles}; "
                f"phase: {escape_inline(desired.phase_name)}",
            )
        )
    entries.extend(observed.pending_log)
    for v in desired.verdicts:
        if v.handoff:
            role, user = v.handoff
            when = v.command.note.created_at
            entries.append(
                LogEntry(
                    f"handoff:{v.command.note.id}",
                    f"{role.upper()} handed over to {at(user)} by {escape_inline(v.command.note.author)}"
                    + (f" at {when:%Y-%m-%d %H:%M} UTC" if when else ""),
                )
            )
    for v in desired.verdicts:
        if v.tick:
            item, tick = v.tick
            what = "done" if tick else "not done"
            when = v.command.note.created_at
            at_time = f" at {when:%Y-%m-%d %H:%M} UTC" if when else ""
            entries.append(
                LogEntry(
                    f"done:{v.command.note.id}",
                    f"({item.number}) **{escape_inline(item.name)}** marked {what} by "
                    f"{escape_inline('@' + v.command.note.author)}{at_time}",
                )
            )
    for v in desired.verdicts:
        if v.cadence:
            eid, request = v.cadence
            what = every(request.every) if request.every else "back to the plan's cadence"
            entries.append(
                LogEntry(
                    f"cadence:{v.command.note.id}",
                    f"status updates for {code_span(eid)}: {what}, requested by "
                    f"{escape_inline('@' + request.by)} at {request.at:%Y-%m-%d %H:%M} UTC",
                )
            )
    for e in desired.engagements:
        entries.append(
            LogEntry(
                f"engagement:{e.id}",
                f"engage **{escape_inline(e.name)}**: DRI {dri_of(e.dri)}{_engaged_as(e.dri)}, {every(e.cadence)}, via "
                f"{escape_inline(e.channel)}, because {escape_inline(e.reason)}",
            )
        )
    plans = {c.channel: c for c in desired.children}
    inc = observed.incident
    for label, child in sorted(observed.children.items(), key=lambda kv: kv[1].iid):
        plan = plans.get(label)
        ref, log_id = child_ref(child.issue, inc), _log_id(child.issue, inc)
        if plan is not None:
            target = observed.targets.get(label)
            from_template = (
                teamintent.describe(target.intent, child.issue.assignees)
                if target is not None and target.template
                else ""
            )
            entries.append(
                LogEntry(
                    f"child:{label}:{log_id}",
                    f"opened {ref} {escape_inline(plan.title)} for {dri_of(plan.assignee)} "
                    f"because {escape_inline(plan.reason)}" + (f"; {from_template}" if from_template else ""),
                )
            )
        else:
            entries.append(
                LogEntry(
                    f"kept:{label}:{log_id}",
                    f"{escape_inline(label)} was removed from the incident; {ref} stays as it is "
                    "(the bot never deletes a child issue)",
                )
            )
    for label, target in sorted(observed.targets.items()):
        if target.fallback and label in plans:
            entries.append(LogEntry(f"fallback:{label}", target.fallback))
    created = observed.outbound.channel
    if created is not None:
        entries.append(
            LogEntry(
                f"{created.integration}-channel:{created.name}",
                f"created the incident response channel {code_span(created.name)} in {created.label}, invited the "
                "role holders and the engaged teams' people, and shared its link in the summary channels",
            )
        )
    for refused in sorted(observed.outbound.refused, key=lambda r: (r.integration, r.target)):
        entries.append(
            LogEntry(
                refused.key,
                f"{refused.label} refused the bot's messages to {code_span(refused.target)}: "
                f"{escape_inline(refused.reason)}; the other {refused.label} targets are not affected, nothing is "
                "tried there again for this incident",
            )
        )
    entries += observed.outbound.lines(desired.state.slots)
    return entries


def log_body(
    entries: list[LogEntry],
    observed: Observed,
    cfg: Config,
    r: Renderer,
    copy: str = "",
    *,
    first: bool = True,
    carried: frozenset[str] = frozenset(),
) -> str:
    """A status log note: the first note of the log's thread (``first``, with the log's heading) or a reply
    in it (its entries only). ``carried``: an earlier version's keys it re-signs (``bot.core.records``)."""
    extra = " " + records.carried_markers(observed.key, observed.incident, carried) if carried else ""
    return _render(
        r,
        cfg.templates.log,
        "status log comment",
        marker=Safe(_log(observed, [e.key for e in entries], **{LOG_THREAD: True}) + copy + extra),
        entries=[_checked_entry(e) for e in entries],
        first=first,
    )


def is_log_thread_note(body: str) -> bool:
    """A note of the status log thread (the bot's own notes only: the caller checks the author)."""
    return any(m.kind == LOG and m.fields.get(LOG_THREAD) is True for m in parse_markers(body))


def logged_keys(body: str) -> frozenset[str]:
    keys: set[str] = set()
    for m in parse_markers(body):
        if m.kind == LOG and isinstance(m.fields.get("keys"), list):
            keys.update(k for k in m.fields["keys"] if isinstance(k, str))
    return frozenset(keys)
