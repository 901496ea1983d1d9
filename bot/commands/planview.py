"""The dry run: what the bot would do for one incident, as text for people or JSON for tools."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Config
from bot.core import bodies, commands
from bot.core.actions import (
    Action,
    CreateChild,
    FixChild,
    LinkChild,
    PostNote,
    ReassignChild,
    RenameInChild,
    UpdateIncident,
    UpsertChecklist,
    UpsertReview,
)
from bot.core.converge import DryRun, converge
from bot.core.events import Ignored, IssueEvent, NoteEvent, parse_event, parse_time
from bot.core.model import ChildTarget, Desired, Issue, Note, Observed
from bot.core.policy import plan_observed
from bot.core.routing import route
from bot.errors import UserError
from bot.integrations.slack.plan import chat_messages, is_channel_key, read_channel_spec
from bot.integrations.slack.ports import ChatMessage
from bot.integrations.slack.text import first_line
from bot.store.base import Durability, OutboxItem
from bot.text.dialects import PLAIN
from bot.text.plain import as_read

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.reconciler import Reconciler

def _clean(text: str) -> str:
    """Terminal-safe: no escape sequences from GitLab data reach the user's terminal."""
    return PLAIN.escape(text)


@dataclass
class PlanReport:
    target: str
    ignored: str | None = None
    desired: Desired | None = None
    incident: Issue | None = None
    actions: list[Action] = field(default_factory=list)
    placeholders: bool = True
    notes: list[str] = field(default_factory=list)
    """What the dry run assumed or could not know (e.g. offline: who may command the bot)."""
    slack: list[ChatMessage] | None = None
    """The Slack messages the incident calls for (None: the policy has no ``chat:`` section)."""
    outbox: dict[str, OutboxItem] | None = None
    """Live, with the store reachable: the incident's outbox by message key (what was sent, and when)."""
    outbox_unknown: bool = False
    """Live, without a reachable store: which Slack messages were sent is unknown."""
    outbound: Listed = field(default_factory=list)
    """Each integration listed generically (``describe``): name, label, (key, target, text) of each item."""

    def slack_state(self, message: ChatMessage) -> tuple[str, datetime | None, str]:
        """``sent``, ``pending``, ``refused`` or ``unknown`` for one message, with when it was sent (or
        refused) and what remains (a summary's edit, Slack's reason)."""
        if self.outbox is None:
            return "unknown", None, ""
        item = self.outbox.get(_unkeyed(message.key))
        if item is None:
            return "pending", None, ""
        if item.state == "refused":
            return "refused", item.updated_at, item.reason or ""
        if item.sent:  # a summary edited since keeps its first post's ts, not its time: no time shown then
            if item.state == "sent" and item.sent_text == message.text:
                return "sent", item.updated_at, ""
            return "sent", None, "an edit to this text is pending"
        return "pending", None, item.reason or ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "ignored": self.ignored}
        d = self.desired
        if d is not None:
            out.update(
                in_scope=d.in_scope,
                scope_reason=d.scope_reason,
                severity=d.severity.label,
                phase=d.phase,
                flags=list(d.flags),
                roles={rid: {"name": p.name, "handle": p.handle} for rid, p in d.roles.items()},
                engagements=[
                    {
                        "id": e.id,
                        "name": e.name,
                        "dri": e.dri.handle,
                        "dri_role": e.dri.name,
                        "cadence": bodies.every(e.cadence),
                        "channel": e.channel,
                        "reason": e.reason,
                    }
                    for e in d.engagements
                ],
                children=[
                    {"channel": c.channel, "title": c.title, "assignee": c.assignee.assignee, "confidential": True}
                    for c in d.children
                ],
                proposed=[{"channel": p.channel, "title": p.title, "add": p.short, "reason": p.reason}
                          for p in d.proposals],
            )
        out["actions"] = [_action_json(a) for a in self.actions]
        out["notes"] = list(self.notes)
        if self.slack is not None:
            out["slack"] = []
            for m in self.slack:
                state, at, detail = self.slack_state(m)
                out["slack"].append({"key": m.key, "target": m.target, "text": m.text, "summary": m.summary,
                                     "state": state, "at": at.isoformat() if at else None, "detail": detail})
        if self.outbound:
            out["outbound"] = {name: [{"key": k, "target": t, "text": x} for k, t, x in items]
                               for name, _, items in self.outbound}
        if d is not None:
            out["commands"] = [
                {"command": v.command.name, "author": v.command.note.author, "ok": v.ok, "reply": str(v.reply)}
                for v in d.verdicts
            ]
        return out

    def as_text(self, verbose: bool = False, raw: bool = False) -> str:
        """``verbose``: every body as a person reads it in GitLab; with ``raw`` the exact Markdown."""
        lines = [f"incident-bot plan for {self.target} (dry run: nothing is written)"]
        if self.ignored:
            lines.append(f"Nothing to do: {self.ignored}.")
            return "\n".join(lines)
        d, inc = self.desired, self.incident
        assert d is not None and inc is not None
        lines.append(
            f"Incident: {_clean(inc.title)!r} ({inc.state}, labels: {', '.join(sorted(inc.labels)) or 'none'})"
        )
        lines.append(f"Scope: {'in scope' if d.in_scope else 'OUT OF SCOPE'}: {d.scope_reason}")
        if d.in_scope:
            lines.append(f"Phase: {d.phase} ({d.phase_name})")
            lines.append("Roles:")
            for rid, p in d.roles.items():
                lines.append(
                    f"  {rid.upper():<6} {('@' + p.handle) if p.handle else '(nobody on the roster)':<28} {p.name}"
                )
            lines.append(f"Engagements ({len(d.engagements)}):")
            for e in d.engagements:
                lines.append(
                    f"  - {e.name}: DRI {('@' + e.dri.handle) if e.dri.handle else e.dri.name} ({e.dri.name}), "
                    f"{bodies.every(e.cadence)}, via {e.channel}; because {e.reason}"
                )
            lines.append(f"Child issues ({len(d.children)}), all confidential:")
            for c in d.children:
                who = f"@{c.assignee.assignee}" if c.assignee.assignee else "unassigned"
                lines.append(f"  - {c.channel}: {c.title!r} assigned to {who} ({c.assignee.name})")
            if d.proposals:
                lines.append(f"Proposed channels ({len(d.proposals)}), opened only once a person adds them:")
                for proposal in d.proposals:
                    lines.append(
                        f"  - {proposal.channel}: {proposal.title!r} because {proposal.reason} "
                        f"(comment: add {proposal.short})"
                    )
        if d.verdicts:
            lines.append(f"Commands ({len(d.verdicts)}):")
            for v in d.verdicts:
                effect = "accepted" if v.ok else "refused"
                who, name = _clean(v.command.note.author), _clean(v.command.name)
                lines.append(f"  - @{who}: {name} -> {effect}: {_clean(str(v.reply))}")
        lines.append(f"Actions ({len(self.actions)}):")
        for n, a in enumerate(self.actions, 1):
            lines.append(f"  {n}. {_clean(a.describe())}")
            if verbose or raw:
                body = _body(a)
                if body:
                    shown = body if raw else as_read(body)
                    lines.extend("       | " + _clean(line) for line in shown.splitlines())
        if self.slack is not None:
            lines.append(f"Slack messages ({len(self.slack)}), with SLACK_BOT_TOKEN set, each sent once:")
            if self.outbox_unknown:
                lines.append("  (the store is not reachable: which were sent is unknown)")
            for m in self.slack:
                if is_channel_key(m.key):
                    private, people = read_channel_spec(m.text)
                    what = (f"create this {'private' if private else 'public'} channel, inviting "
                            f"{len(people)} {'person' if len(people) == 1 else 'people'}")
                    lines.append(f"  - {_clean(m.target)}: {what}{self._shown_state(m)}")
                    continue
                edit = " (edited in place)" if m.summary else ""
                lines.append(f"  - {_clean(m.target)}: {_clean(first_line(m.text))}{edit}{self._shown_state(m)}")
        for _, label, items in self.outbound:
            lines.append(f"{label} ({len(items)}):")
            lines.extend(f"  - {_clean(target)}: {_clean(text)}" for _, target, text in items)
        lines.extend(f"Note: {_clean(note)}" for note in self.notes)
        if self.placeholders and any(isinstance(a, CreateChild) for a in self.actions):
            lines.append("(issue numbers of new children are placeholders)")
        return "\n".join(lines)


    def _shown_state(self, message: ChatMessage) -> str:
        state, at, detail = self.slack_state(message)
        if state == "unknown":
            return ""
        when = f" {at:%Y-%m-%d %H:%M} UTC" if at else ""
        more = f" ({_clean(detail)})" if detail else ""
        return f" [{state}{when}{more}]"


def _body(action: Action) -> str:
    if isinstance(action, CreateChild):
        return action.description
    if isinstance(action, UpsertChecklist | UpsertReview | PostNote):
        return action.body
    return ""


def _action_json(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": type(action).__name__, "key": action.key, "summary": action.describe()}
    if isinstance(action, CreateChild):
        out.update(
            title=action.title,
            labels=list(action.labels),
            assignee=action.assignee,
            confidential=action.confidential,
            description=action.description,
        )
        if action.preamble:
            out.update(
                extra_assignees=list(action.extra_assignees),
                milestone_id=action.milestone_id,
                due_date=action.due_date,
                weight=action.weight,
            )
    elif isinstance(action, FixChild):
        out.update(child_iid=action.child_iid, confidential=action.confidential, add_labels=list(action.add_labels),
                   assign=action.dri)
    elif isinstance(action, LinkChild):
        out.update(child_iid=action.child_iid, link_type="relates_to")
    elif isinstance(action, UpdateIncident):
        out.update(assign=action.assign, add_labels=list(action.add_labels))
    elif isinstance(action, ReassignChild):
        out.update(child_iid=action.child_iid, assign=action.assignee, previous=action.previous)
    elif isinstance(action, RenameInChild):
        out.update(child_iid=action.child_iid, description=action.description)
    elif isinstance(action, UpsertChecklist | UpsertReview | PostNote):
        out.update(body=action.body)
    return out


Listed = list[tuple[str, str, list[tuple[str, str, str]]]]
"""(integration name, label, [(item key, target, text)])."""


def outbound_preview(cfg: Config, desired: Desired, observed: Observed) -> Listed:
    """What each integration that lists its items (``describe``) would do for the incident now."""
    from bot.integrations import registry

    out = []
    for i in registry.INTEGRATIONS:
        if i.plan is not None and i.describe is not None:
            items = [(item.key, item.target, i.describe(item)) for item in i.plan(cfg, desired, observed)]
            if items:
                out.append((i.name, i.label, items))
    return out


def slack_preview(cfg: Config, desired: Desired, observed: Observed) -> list[ChatMessage] | None:
    """Every Slack message the incident calls for now (a dry run cannot know which were sent already)."""
    if cfg.chat is None:
        return None
    from bot.wiring import slack_renderer

    return chat_messages(cfg, desired, observed, slack_renderer(cfg))


def dry_run(observed: Observed, cfg: Config, r: bodies.Renderer, now: datetime):
    desired = plan_observed(observed, cfg, now)
    _, actions = converge(desired, observed, cfg, r, DryRun(first_iid=max(1000, observed.incident.ref.iid)))
    return desired, actions


def _command_in(event: NoteEvent, payload: dict[str, Any], cfg: Config) -> commands.Command | None:
    """The command a note payload carries, as the bot would read it. Offline nobody can be asked whether
    the author may command the bot or whether a named user exists: the preview assumes both."""
    attrs = payload.get("object_attributes")
    attrs = attrs if isinstance(attrs, dict) else {}
    note = Note(
        id=event.note_id,
        body=event.body,
        author=event.author,
        created_at=parse_time(attrs.get("created_at")),
        internal=attrs.get("internal") is True or attrs.get("confidential") is True,
        discussion_id=str(attrs.get("discussion_id") or ""),  # the reply goes into the command's thread
    )
    cmd = commands.parse(note, cfg.bot.username)
    return None if cmd is None else replace(cmd, allowed=True)


def plan_from_payload(
    path: Path, cfg: Config, r: bodies.Renderer, now: datetime, event: str | None = None
) -> PlanReport:
    try:
        payload = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON: {exc}") from None
    parsed = parse_event(event, payload)
    target = str(path)
    decision = route(parsed, cfg)
    if isinstance(decision, Ignored):
        return PlanReport(target, ignored=decision.reason)
    assert isinstance(parsed, IssueEvent | NoteEvent)
    incident = parsed.issue
    if incident is None:
        return PlanReport(target, ignored="the note's payload does not describe its issue")
    target = f"{incident.project_path or incident.ref.project}#{incident.ref.iid} (from {path})"
    cmd = _command_in(parsed, payload, cfg) if isinstance(parsed, NoteEvent) else None
    # Offline, a team's project and template are assumed readable (``plan GROUP/PROJECT#IID`` reads them).
    targets = {
        c.label: ChildTarget(c.label, c.project, template=f"(the team's issue template {c.gitlab_template})\n")
        if c.gitlab_template
        else ChildTarget(c.label, c.project)
        for c in cfg.channels
        if c.project or c.gitlab_template
    }
    observed = Observed(incident=incident, orphans_searched=True, commands=(cmd,) if cmd else (), targets=targets)
    desired, actions = dry_run(observed, cfg, r, now)
    notes = []
    if cmd is not None:
        notes.append(
            f"offline, @{cmd.note.author} is assumed allowed to command the bot (Developer or above, or on its "
            "allow-list) and any user a command names is assumed to exist; `plan GROUP/PROJECT#IID` checks both"
        )
    return PlanReport(target, desired=desired, incident=incident, actions=actions, notes=notes,
                      slack=slack_preview(cfg, desired, observed), outbound=outbound_preview(cfg, desired, observed))


def read_outbox(db: str, durability: Durability = "full") -> Callable[[str], list[OutboxItem] | None]:
    """A reader of an incident's outbox in the store ``db`` (``INCIDENT_BOT_DB``): None when the store is not
    reachable. A SQLite file that does not exist is not created (nothing was sent from it)."""

    def read(incident_key: str) -> list[OutboxItem] | None:
        from bot.integrations.slack.job import SLACK
        from bot.store import StoreError, is_postgres_url, open_store, sqlite_path

        if not is_postgres_url(db):
            path = sqlite_path(db)
            if path is None or not Path(path).is_file():
                return None
        try:
            with open_store(db, durability=durability) as store:
                return store.items(SLACK, incident_key)
        except (StoreError, ValueError, OSError):
            return None

    return read


def plan_live(
    text: str,
    make_reconciler: Callable[[], Reconciler],
    *,
    outside_is_error: bool = False,
    outbox: Callable[[str], list[OutboxItem] | None] | None = None,
) -> PlanReport:
    """The dry run against a live GitLab (GITLAB_URL, GITLAB_TOKEN): reads only.

    An incident outside the bot's remit is a report saying so, or with ``outside_is_error`` the
    :class:`OutsideRemit` itself (the command line: the user named a project the bot cannot act in).
    ``outbox`` reads the incident's Slack outbox from the store, so each message shows whether it was sent."""
    from bot.core.model import IncidentRef
    from bot.gitlab.remit import OutsideRemit

    try:
        ref = IncidentRef.parse(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    reconciler = make_reconciler()
    try:
        report = reconciler.dry_run(ref)
    except OutsideRemit as exc:
        if outside_is_error:
            raise
        return PlanReport(str(ref), ignored=f"outside the bot's remit: {exc.reason}")
    finally:
        reconciler.close()
    plan = PlanReport(str(ref), desired=report.desired, incident=report.observed.incident, actions=report.actions,
                      slack=slack_preview(reconciler.cfg, report.desired, report.observed),
                      outbound=outbound_preview(reconciler.cfg, report.desired, report.observed))
    if plan.slack is not None:
        plan.outbox = _outbox_of(report.observed.incident, outbox)
        plan.outbox_unknown = plan.outbox is None
    return plan


def _outbox_of(incident: Issue, outbox: Callable[[str], list[OutboxItem] | None] | None
               ) -> dict[str, OutboxItem] | None:
    """The incident's outbox by message key without its incident part: the worker keys an incident by its
    project's numeric id (as webhooks name it), ``plan`` by the path it was given."""
    if outbox is None:
        return None
    keys = [incident.ref.key]
    if incident.project_id is not None:
        keys.insert(0, f"{incident.project_id}#{incident.ref.iid}")
    found: dict[str, OutboxItem] = {}
    for key in dict.fromkeys(keys):
        items = outbox(key)
        if items is None:
            return None
        for item in items:
            found.setdefault(_unkeyed(item.key), item)
    return found


def _unkeyed(key: str) -> str:
    """A message key without its incident part (``"<event>|<target>|<window>"``)."""
    return key.partition("|")[2]
