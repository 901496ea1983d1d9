"""Everything the bot writes into GitLab, rendered from desired and observed state. Pure.

Values that came from GitLab are escaped by the renderer; the pieces composed here in Python (log
lines, who-is-responsible) use the same markdown primitives, so nothing reaches GitLab unescaped.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, Protocol

from bot.config import Config
from bot.core import cadence, clockbodies, commands, names, order, records, review, teamintent
from bot.core import state as bot_state
from bot.core.model import BotState, ChatEngaged, Child, Desired, Issue, LogEntry, Observed, Person, Tick
from bot.text.escape import (
    UnsafeValue,
    code_span,
    escape_fragment,
    escape_inline,
    is_valid_username,
    issue_ref,
    mention,
)
from bot.text.hazards import UnsafeOutput, unexpected_hazards, valid_mentions_in
from bot.text.markers import (
    StateKey,
    Trust,
    marker,
    marker_spans,
    parse_markers,
    signed_marker,
    strip_markers,
    verify,
)
from bot.text.safe import Safe, TemplateRenderError

log = logging.getLogger(__name__)

CHECKLIST = bot_state.CHECKLIST
CHILD = "child"
LOG = records.LOG
ITEM = "item"


class Renderer(Protocol):
    def render(self, name: str, /, **context: Any) -> str: ...


# One unsafe value must not stop the rest of the incident: a value that cannot be written as asked is
# written as inert text, a body that still fails its last check is replaced by an inert notice that keeps
# its marker (so what it was for is recorded and not retried forever), and the reason goes to the log.
RENDER_FAILURES = (UnsafeOutput, UnsafeValue, TemplateRenderError)
INERT_NOTICE = (
    "This comment could not be written safely: a value in it would have notified people or run a "
    "command. The bot's log says which; everything else on the incident carries on."
)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def at(username: str) -> Safe:
    """``@username`` for a user GitLab resolved; inert text (and a log line) if it cannot be a mention."""
    try:
        return Safe(mention(username))
    except UnsafeValue as exc:
        log.warning("wrote %r as text, not a mention: %s", username[:100], _one_line(exc))
        return Safe(escape_inline(username))


_strict: contextvars.ContextVar[bool] = contextvars.ContextVar("incident_bot_strict_render", default=False)


@contextlib.contextmanager
def strict() -> Iterator[None]:
    """Within this block an unsafe body raises instead of becoming a notice (``check-config`` wants to know)."""
    token = _strict.set(True)
    try:
        yield
    finally:
        _strict.reset(token)


def _render(r: Renderer, name: str, what: str, fallback_extra: str = "", /, **context: Any) -> str:
    """``r.render(name, **context)``, or the context's marker and ``INERT_NOTICE`` when a value made it unsafe.

    A template that is broken whatever the values (undefined name, syntax) still raises: that is the
    operator's to fix, and ``check-config`` reports it.
    """
    try:
        return r.render(name, **context)
    except RENDER_FAILURES as exc:
        broken_template = isinstance(exc, TemplateRenderError) and not isinstance(exc.__cause__, UnsafeValue)
        if broken_template or _strict.get():
            raise
        log.warning("%s: %s; wrote an inert notice instead", what, _one_line(exc))
        return f"{context.get('marker', '')}\n{INERT_NOTICE}\n{fallback_extra}"


def who(person: Person) -> Safe:
    """``@handle`` for a configured or GitLab-resolved handle, else the escaped name: who is mentioned to engage
    them (a team's group handle)."""
    if person.handle:
        try:
            return Safe(mention(person.handle, allow_group=True))
        except UnsafeValue as exc:
            log.warning("%s: %s; named without a mention", person.party, _one_line(exc))
            return Safe(f"{escape_inline(person.name)} ({escape_inline(person.handle)})")
    return Safe(f"{escape_inline(person.name)} (nobody configured)")


def dri_of(person: Person) -> Safe:
    """The DRI, a person: ``@assignee`` (the user a team's work is assigned to), else ``who``. The same name in
    the checklist, the child, the status log and Slack; a team's group handle is who is engaged (``who``)."""
    if person.assignee and person.assignee != person.handle:
        return at(person.assignee)
    return who(person)


def _engaged_as(person: Person) -> str:
    """`` (@group)``: the team's handle, mentioned to engage it, when its DRI is a person other than it."""
    return f" ({who(person)})" if person.assignee and person.handle and person.assignee != person.handle else ""


def team_name(person: Person) -> str:
    """The party's name, with its group handle when the DRI is a person other than it (``Legal, @legal``)."""
    if person.assignee and person.handle and person.assignee != person.handle:
        return Safe(f"{escape_inline(person.name)}, {who(person)}")
    return person.name


def every(cadence: timedelta | None) -> str:
    if cadence is None:
        return "continuous"
    minutes = int(cadence.total_seconds() // 60)
    hours, mins = divmod(minutes, 60)
    return "every " + " ".join(p for p in (f"{hours}h" if hours else "", f"{mins}m" if mins else "") if p)


def child_marker(observed: Observed, channel: str) -> Safe:
    """A child's marker, signed for the incident: which incident and channel the child is for.

    Besides the incident's global id it names the incident's project id, iid and path, so that an event on
    the child alone leads the receiver (and the sweep) to the incident's job (``bot.core.children``)."""
    inc = observed.incident
    where: dict[str, Any] = {}
    if inc.project_id is not None:
        where = {"project": inc.project_id, "iid": inc.ref.iid, "path": _project_path(inc) or ""}
    return Safe(signed_marker(CHILD, observed.key, bot_state.scope_of(inc), incident=inc.id, channel=channel, **where))


def child_claim(description: str, key: StateKey, incident: Issue) -> tuple[int | None, str, bool] | None:
    """What a child's marker says: (incident id, channel, whether the bot signed it for ``incident``).

    An unsigned or forged claim is only a hint: Reporters can edit a child's description. A marker the bot
    signed wins over any other in the description, wherever it is (a team's template or an edit may put an
    unsigned one before it).
    """
    first: tuple[int | None, str, bool] | None = None
    for m in parse_markers(description):
        if m.kind == CHILD and isinstance(m.fields.get("channel"), str):
            claimed = m.fields.get("incident")
            claimed = claimed if isinstance(claimed, int) else None
            trusted = verify(m, key, bot_state.scope_of(incident)) in (Trust.SIGNED, Trust.SIGNED_EARLIER)
            claim = (claimed, m.fields["channel"], trusted and claimed == incident.id)
            if claim[2]:
                return claim
            first = first or claim
    return first


#: ``recorded_children`` keys: (project id, iid), the project id None for the incident's own project.
ChildKey = tuple[int | None, int]


def recorded_children(logged: frozenset[str]) -> dict[ChildKey, str]:
    """(project, iid) -> channel of the children the bot's own status log says it opened.

    ``child:LABEL:IID`` for a child in the incident's project (project None), ``child:LABEL:PID/IID`` for one
    in a team's project (project id PID); ``kept:`` likewise.
    """
    out: dict[ChildKey, str] = {}
    for key in logged:
        for prefix in ("child:", "kept:"):
            if key.startswith(prefix):
                label, _, where = key[len(prefix) :].rpartition(":")
                pid, slash, iid = where.rpartition("/")
                if not label or not iid.isdigit() or (slash and not pid.isdigit()):
                    continue
                out.setdefault((int(pid) if slash else None, int(iid)), label)
    return out


def child_key(child: Issue, incident: Issue) -> ChildKey:
    """A child's key in ``recorded_children``."""
    elsewhere = child.project_id is not None and child.project_id != incident.project_id
    return (child.project_id if elsewhere else None, child.ref.iid)


def recorded_channel(recorded: dict[ChildKey, str], child: Issue, incident: Issue) -> str | None:
    return recorded.get(child_key(child, incident))


def _log_id(child: Issue, incident: Issue) -> str:
    """The child's part of its status log keys: ``IID``, or ``PID/IID`` in another project."""
    pid, iid = child_key(child, incident)
    return f"{pid}/{iid}" if pid is not None else str(iid)


def log_id(child: Issue, incident: Issue) -> str:
    """The child's part of its status log keys (``IID``, or ``PID/IID`` in another project)."""
    return _log_id(child, incident)


def _project_path(issue: Issue) -> str | None:
    """The issue's project's full path, when known (GitLab's answer, or the path the bot named it by)."""
    if issue.project_path:
        return issue.project_path
    return issue.ref.project if not issue.ref.project.isdigit() else None


def child_ref(child: Issue, incident: Issue) -> str:
    """``#12`` for a child in the incident's project, ``group/project#12`` for one in a team's project."""
    pid, iid = child_key(child, incident)
    path = _project_path(child)
    same_path = not child.project_path or child.project_path == incident.project_path
    if pid is None and (child.project_id is not None or same_path):
        return issue_ref(iid)
    try:
        return issue_ref(iid, path) if path else escape_inline(f"issue {iid} of project {pid}")
    except UnsafeValue:
        return escape_inline(f"issue {iid} of project {path}")


def _incident_ref_from(incident: Issue, project: str | None) -> Safe:
    """The incident as an issue in ``project`` (None: its own) refers to it."""
    path = _project_path(incident)
    if project is None or path is None or path.lower() == project.lower():
        return Safe(issue_ref(incident.ref.iid))
    try:
        return Safe(issue_ref(incident.ref.iid, path))
    except UnsafeValue:
        return Safe(issue_ref(incident.ref.iid))


def child_title(desired: Desired, title: str, observed: Observed | None = None, project: str | None = None) -> str:
    # No text from GitLab in titles: GitLab parses mentions in issue titles too. In a team's project the
    # incident is named by its full reference (``#12`` there would be that project's issue 12).
    ref = f"#{desired.ref.iid}"
    if observed is not None and project is not None:
        ref = _incident_ref_from(observed.incident, project).replace("\\_", "_")
    return f"{title} for security incident {ref}"[:255]


def child_description(
    desired: Desired,
    observed: Observed,
    index: int,
    r: Renderer,
    *,
    template: str | None = None,
    project: str | None = None,
) -> str:
    """The part of a child's description the bot renders: the channel's bundled template, or ``template``
    (the plan's part after a team's own template). ``project``: the team's project it is opened in.

    The names in it (the DRI, who else is engaged, the incident's role holders) sit between two markers
    (``names.py``), so the bot can rewrite them in place when they change."""
    child = desired.children[index]
    context, roles = _child_context(desired, index), _roles_context(desired)
    body = _render(
        r,
        template or child.template,
        f"child issue {child.channel} of {desired.ref}",
        marker=child_marker(observed, child.channel),
        names_start=Safe(names.START),
        names_end=Safe(names.END),
        incident={**_incident_context(observed), "ref": _incident_ref_from(observed.incident, project)},
        child=context,
        roles=roles,
        severity=desired.severity.label,
        flags=list(desired.flags),
    )
    return names.seal(body, _names_key(context, roles))


def _child_context(desired: Desired, index: int) -> dict[str, Any]:
    child = desired.children[index]
    return {
        "title": child.title,
        "channel": child.channel,
        "reason": child.reason,
        "assignee": dri_of(child.assignee),
        "assignee_name": team_name(child.assignee),
        "engaged": [{"who": who(e.who), "name": e.who.name, "note": e.note} for e in child.engaged],
        "rules": list(child.rules),
    }


def _names_key(child: dict[str, Any], roles: list[dict[str, Any]]) -> str:
    """What the names block shows, as a digest: the DRI, who else is engaged, the role holders."""
    shown = [child["assignee"], child["assignee_name"], child["engaged"], [(r["name"], r["who"]) for r in roles]]
    return names.digest(json.dumps(shown, sort_keys=True, default=str))


def child_names(desired: Desired, observed: Observed, child: Child, r: Renderer) -> str | None:
    """The child's description with its names block as the plan has it now, or None when nothing is to change:
    the names are the ones the bot last wrote there (a person's edit inside the block stays until they change),
    or the description has no names block the bot can find (a person removed its markers, or a policy's own
    template has none). Renders the child only when the names changed (or the block records none)."""
    index = next((i for i, c in enumerate(desired.children) if c.channel == child.channel), None)
    if index is None:
        return None
    after = _own_marker_end(child, observed)
    key = _names_key(_child_context(desired, index), _roles_context(desired))
    if names.recorded(child.issue.description, after) == key:
        return None
    with contextlib.suppress(*RENDER_FAILURES):
        wanted = names.block(child_description(desired, observed, index, r))
        if wanted is None:
            return None
        return names.replace_block(child.issue.description, wanted, after=after)
    return None


def _own_marker_end(child: Child, observed: Observed) -> int:
    """Where the bot's part of a child's description starts: after the marker it signed for the incident (a
    team's template before it, or a person's text, cannot move the names block)."""
    body = child.issue.description
    scope = bot_state.scope_of(observed.incident)
    for _, end, m in marker_spans(body):
        mine = m.kind == CHILD and m.fields.get("channel") == child.channel
        if mine and verify(m, observed.key, scope) in (Trust.SIGNED, Trust.SIGNED_EARLIER):
            return end
    return 0


def _incident_context(observed: Observed) -> dict[str, Any]:
    inc = observed.incident
    return {"ref": Safe(issue_ref(inc.ref.iid)), "iid": inc.ref.iid, "title": inc.title, "url": inc.web_url}


def _roles_context(desired: Desired) -> list[dict[str, Any]]:
    return [{"id": rid, "name": p.name, "who": who(p)} for rid, p in desired.roles.items()]


#: The field of an item's marker saying the bot ticked the box for a ``done`` command (not a person by hand).
BY_COMMAND = "done"


def _item(key: str, by_command: bool = False) -> Safe:
    return Safe(marker(ITEM, id=key, **{BY_COMMAND: True}) if by_command else marker(ITEM, id=key))


_TICKED = re.compile(r"^\s*[-*+]\s+\[[xX]\]\s")
_UNTICKED = re.compile(r"^\s*[-*+]\s+\[ \]\s")


def _item_keys(body: str, box: re.Pattern[str], *, by_command: bool) -> frozenset[str]:
    keys = set()
    for line in body.splitlines():
        if box.match(line):
            for m in parse_markers(line):
                key = m.fields.get("id") if m.kind == ITEM else None
                if isinstance(key, str) and bool(m.fields.get(BY_COMMAND)) == by_command:
                    keys.add(key)
    return frozenset(keys)


def ticked_items(body: str) -> frozenset[str]:
    """Keys of the checklist items whose box was ticked by hand, so a re-render keeps what people ticked (a
    box the bot ticked for a ``done`` command is its state's, not a person's)."""
    return _item_keys(body, _TICKED, by_command=False)


def unticked_command_items(body: str) -> frozenset[str]:
    """Keys of the items the bot showed ticked for a ``done`` command whose box was unticked since: only
    the bot and Maintainers can edit the checklist, so a Maintainer took the tick back."""
    return _item_keys(body, _UNTICKED, by_command=True)


def _recorded(desired: Desired) -> BotState:
    """What the checklist records: ``desired.state`` with the role holders the plan resolved."""
    holders = {rid: p.handle for rid, p in desired.roles.items() if p.handle}
    return replace(desired.state, roles=holders)


def _state_marker(desired: Desired, observed: Observed) -> Safe:
    return Safe(bot_state.checklist_marker(_recorded(desired), observed.key, observed.incident))


def state_copy(desired: Desired, observed: Observed) -> str:
    """The signed copy of the state that rides along in the bot's comments (none out of scope)."""
    if not desired.in_scope:
        return ""
    return " " + bot_state.copy_marker(_recorded(desired), observed.key, observed.incident)


def _status(desired: Desired) -> dict[str, Any] | None:
    if not desired.dues and desired.last_update is None:
        return None
    last = desired.last_update
    return {
        "last": last.created_at if last else None,
        "last_by": at(last.author) if last and is_valid_username(last.author) else None,
        # After the all clear nothing is due any more: a past time shown as "next due" would mislead.
        "next_due": None if desired.all_clear else cadence.next_due(desired.dues),
        "paused": desired.reminders_paused,
    }


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


def _full_ref(issue: Issue, incident: Issue) -> str:
    """``group/project#12``: a reference that links from any project."""
    path = _project_path(issue) or _project_path(incident)
    try:
        return issue_ref(issue.ref.iid, path) if path else issue_ref(issue.ref.iid)
    except UnsafeValue:
        return issue_ref(issue.ref.iid)


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


def _tickable(key: str, ticks: frozenset[str], done: Mapping[str, Tick], numbers: Mapping[str, int]) -> dict[str, Any]:
    """A checklist item's box: ticked by hand (``ticks``) or for a ``done`` command (who and when shown)."""
    tick = done.get(key)
    return {
        "done": key in ticks or tick is not None,
        "number": numbers.get(key, 0),
        "ticked": Safe(f"{escape_inline('@' + tick.by)} {tick.at:%Y-%m-%d %H:%M} UTC") if tick else "",
        "item": _item(key, by_command=tick is not None and key not in ticks),
    }


def _engagement_box(key: str, ticks: frozenset[str], done: Mapping[str, Tick], numbers: Mapping[str, int],
                    engaged: bool) -> dict[str, Any]:
    """An engagement's box: ticked by hand, for a ``done`` command, or because the bot engaged it in Slack
    itself (a fact of the outbox, marked as the bot's so it is never read back as a person's tick)."""
    box = _tickable(key, ticks, done, numbers)
    if engaged and not box["done"]:
        box.update(done=True, item=_item(key, by_command=True))
    return box


def _engaged(sent: ChatEngaged | None) -> dict[str, Any] | None:
    """When and where the bot's own Slack message engaged a stakeholder, for its checklist row."""
    return None if sent is None else {"at": sent.at, "target": sent.target}


def checklist_body(desired: Desired, observed: Observed, cfg: Config, r: Renderer) -> str:
    ticks = observed.checklist_ticks
    done = desired.state.done
    numbers = {item.key: item.number for item in commands.checklist_items(cfg)}
    plans = {c.channel: c for c in desired.children}
    marks = _order_marks(desired, observed, cfg)
    channels = []
    for label, child in sorted(observed.children.items(), key=lambda kv: kv[1].iid):
        plan = plans.get(label)
        ch_cfg = cfg.channel(label)
        title = plan.title if plan else (ch_cfg.title if ch_cfg else label)
        people = [at(a) for a in child.issue.assignees if is_valid_username(a)]
        dri = Safe(", ".join(people)) if people else (dri_of(plan.assignee) if plan else Safe("unassigned"))
        channels.append(
            {
                "ref": Safe(child_ref(child.issue, observed.incident)),
                "title": title,
                "label": label,
                "dri": dri,
                "done": not child.issue.is_open,
                "state": "closed" if not child.issue.is_open else "open",
                "selected": plan is not None,
                "order": marks.get(label, []),
                "item": _item(f"channel:{label}"),
            }
        )
    # Should the checklist itself fail, ticked boxes are kept in the notice so no tick is lost.
    kept = "".join(f"- [x] {_item(key)}\n" for key in sorted(ticks))
    return _render(
        r,
        cfg.templates.checklist,
        f"checklist of {desired.ref}",
        kept,
        marker=_state_marker(desired, observed),
        incident=_incident_context(observed),
        severity=desired.severity.label,
        severity_source=desired.severity_source,
        phase=desired.phase,
        phase_name=desired.phase_name,
        flags=list(desired.flags),
        roles=_roles_context(desired),
        first_actions=[
            _tickable(f"first:{fa.id}", ticks, done, numbers) | {"text": fa.text, "dri": dri_of(fa.dri)}
            for fa in desired.first_actions
        ],
        engagements=[
            {
                "name": e.name,
                "dri": dri_of(e.dri),
                "cadence": every(e.cadence),
                "cadence_source": e.cadence_source,
                "channel": e.channel,
                "reason": e.reason,
                "engaged": _engaged(observed.chat_engaged.get(e.id)),
            }
            | _engagement_box(f"engagement:{e.id}", ticks, done, numbers, e.id in observed.chat_engaged)
            for e in desired.engagements
        ],
        channels=channels,
        proposed=[
            {"title": p.title, "label": p.channel, "short": p.short, "reason": p.reason}
            for p in desired.proposals
            if p.channel not in observed.children
        ],
        status=_status(desired),
        bot=cfg.bot.username,
        **_clock_context(desired, cfg),
    )


def _clock_context(desired: Desired, cfg: Config) -> dict[str, Any]:
    return {"clocks": clockbodies.rows(desired), "clock_offers": clockbodies.offers(desired, cfg)}


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
    created = observed.chat_created
    if created is not None:
        entries.append(
            LogEntry(
                f"slack-channel:{created.name}",
                f"created the incident response channel {code_span(created.name)} in Slack, invited the role "
                "holders and the engaged teams' people, and shared its link in the summary channels",
            )
        )
    for chat_target, reason in sorted(observed.chat_refused.items()):
        entries.append(
            LogEntry(
                f"slack:{chat_target}",
                f"Slack refused the bot's messages to {code_span(chat_target)}: {escape_inline(reason)}; "
                "the other Slack targets are not affected, nothing is tried there again for this incident",
            )
        )
    return entries


def _checked_entry(entry: LogEntry) -> Safe:
    """An entry's text, or ``INERT_NOTICE`` if it holds a hazard it did not build on purpose."""
    hazards = unexpected_hazards(entry.text, valid_mentions_in(entry.text))
    if not hazards:
        return Safe(entry.text)
    if _strict.get():
        raise UnsafeOutput(f"status log entry {entry.key}: unsafe output: {hazards[0]}", hazards)
    log.warning("status log entry %s: %s; wrote an inert notice instead", entry.key, hazards[0])
    return Safe(INERT_NOTICE)


#: The field of a status log marker that says the note belongs to the incident's status log thread.
LOG_THREAD = records.THREAD


def _log(observed: Observed, keys: list[str], **extra: Any) -> Safe:
    """The signed marker recording ``keys`` (``bot.core.records``)."""
    return Safe(records.log_marker(observed.key, observed.incident, keys, **extra))


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


def find_checklist_marker(body: str) -> bool:
    return any(m.kind == CHECKLIST for m in parse_markers(body))


def looks_like_checklist(body: str) -> bool:
    """The checklist, even if its state marker was edited away: it is the bot's only comment with items."""
    return any(m.kind in (CHECKLIST, ITEM) for m in parse_markers(body))


def logged_keys(body: str) -> frozenset[str]:
    keys: set[str] = set()
    for m in parse_markers(body):
        if m.kind == LOG and isinstance(m.fields.get("keys"), list):
            keys.update(k for k in m.fields["keys"] if isinstance(k, str))
    return frozenset(keys)


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


_LINKABLE = re.compile(r"https?://[A-Za-z0-9._~/:%-]+(?:#note_[0-9]+)?")


def _review_end(event: review.Event | None) -> Safe | None:
    """One end of a metric: what happened, linked to where GitLab shows it, and when."""
    if event is None:
        return None
    what = escape_inline(event.what)
    shown = f"[{what}]({event.url})" if _LINKABLE.fullmatch(event.url) else what
    return Safe(f"{shown} ({event.at:%Y-%m-%d %H:%M})")


def review_body(result: review.Review, observed: Observed, cfg: Config, r: Renderer) -> str:
    """The communications review comment (``bot.core.review``), its signed key finding it again."""
    rows = [
        {
            "name": m.name,
            "value": review.duration(m.seconds),
            "start": _review_end(m.start),
            "end": _review_end(m.end),
            "note": m.note,
        }
        for m in result.metrics
    ]
    return _render(
        r,
        cfg.templates.review,
        "communications review",
        marker=_log(observed, [review.REVIEW_KEY]),
        metrics=rows,
        incident=result.incident,
        schema=review.SCHEMA,
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


def status_update_body(desired: Desired, observed: Observed, cfg: Config, r: Renderer) -> str:
    """The six points, with what the bot knows already filled in: timeline and the children's states."""
    inc = observed.incident
    events: list[tuple[Any, str]] = []
    if inc.created_at:
        events.append((inc.created_at, "incident declared"))
    if observed.checklist and observed.checklist.created_at:
        events.append((observed.checklist.created_at, "communications plan engaged"))
    for child in observed.children.values():
        if child.issue.created_at:
            events.append((child.issue.created_at, f"{_ref_text(child.issue, inc)} opened ({child.channel})"))
        if child.issue.closed_at and not child.issue.is_open:
            events.append((child.issue.closed_at, f"{_ref_text(child.issue, inc)} closed ({child.channel})"))
    for note in observed.updates:
        if note.created_at:
            events.append((note.created_at, f"status update by {note.author}"))
    points = cfg.status_update_points
    marks = _order_marks(desired, observed, cfg)
    return _render(
        r,
        cfg.templates.status_update,
        "status update template",
        marker=Safe(marker(LOG, keys=[])),
        incident=_incident_context(observed),
        points=list(points),
        timeline_point=points[2] if len(points) > 2 else "",
        status_point=points[4] if len(points) > 4 else "",
        timeline=[{"at": at, "text": text} for at, text in sorted(events, key=lambda e: e[0])],
        severity=desired.severity.label,
        phase_name=desired.phase_name,
        channels=[
            {**row, "order": marks.get(row["channel"], [])}
            for row in _child_rows(list(observed.children.values()), desired, cfg, observed.incident)
        ],
        order_rules=bool(cfg.comms_order),
        order_kept=not any(marks.values()),
    )


def _ref_text(child: Issue, incident: Issue) -> str:
    """A child's reference as plain text (the template escapes it): ``#12`` or ``group/project#12``."""
    pid, iid = child_key(child, incident)
    path = _project_path(child) if pid is not None else None
    return f"{path}#{iid}" if path else f"#{iid}"


def reply_body(verdict: Any, desired: Desired, observed: Observed, cfg: Config, r: Renderer) -> str:
    cmd = verdict.command
    author = at(cmd.note.author) if is_valid_username(cmd.note.author) else escape_inline(cmd.note.author)
    status = status_update_body(desired, observed, cfg, r) if verdict.ok and verdict.reply == "status" else ""
    text = verdict.reply
    if isinstance(text, commands.Reply):
        text = Safe("".join(escape_fragment(p) if isinstance(p, str) else code_span(p.text) for p in text.parts))
    return _render(
        r,
        cfg.templates.reply,
        f"reply to comment {cmd.note.id} on {desired.ref}",
        marker=Safe(_log(observed, [cmd.key]) + state_copy(desired, observed)),
        author=author,
        command=" ".join((cmd.name, *cmd.args)),
        ok=verdict.ok,
        kind=verdict.reply if verdict.reply in ("help", "status") else "text",
        text=text,
        status=Safe(strip_markers(status)) if status else "",
        bot=cfg.bot.username,
        roles=list(cfg.roles),
        role_choices="|".join(cfg.roles),
        engagements=[e.id for e in cfg.engagements if e.cadence is not None],
        channel_example=commands.short_name(cfg.channels[0].label, cfg) if cfg.channels else "email",
        clocks=[c.id for c in cfg.clocks if c.enabled],
    )
