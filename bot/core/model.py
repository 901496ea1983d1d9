"""Plain data the core works on: what GitLab shows (observed) and what it should show (desired).

Nothing here does I/O. The GitLab adapter turns API responses into these types; the policy engine
turns them into ``Desired``; ``diff`` turns both into actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.config import Severity
from bot.core.approvalrecords import ApprovalRecord
from bot.core.outbound import OutboundFacts
from bot.text.markers import PREVIEW_KEY, StateKey

if TYPE_CHECKING:  # they build on the types here
    from bot.core.approvals import ChannelApproval
    from bot.core.cadence import Due
    from bot.core.clocks import ClockView
    from bot.core.commands import Command, Verdict


@dataclass(frozen=True, order=True)
class IncidentRef:
    """An issue in GitLab: project (numeric id or ``group/project`` path) and the issue's iid."""

    project: str
    iid: int

    @property
    def key(self) -> str:
        return f"{self.project}#{self.iid}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, text: str) -> IncidentRef:
        """Parse ``group/project#12`` or ``42#12``."""
        project, sep, iid = text.rpartition("#")
        if not sep or not project or not iid.isdigit():
            raise ValueError(f"expected GROUP/PROJECT#IID, got {text!r}")
        return cls(project, int(iid))


@dataclass(frozen=True)
class Issue:
    """An issue as the bot sees it: the incident itself or one of its children."""

    ref: IncidentRef
    id: int | None = None
    title: str = ""
    description: str = ""
    labels: frozenset[str] = frozenset()
    state: str = "opened"
    confidential: bool = False
    assignees: tuple[str, ...] = ()
    author: str = ""
    severity_field: str = "unknown"
    issue_type: str = "issue"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    web_url: str = ""
    project_id: int | None = None
    project_path: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == "opened"


@dataclass(frozen=True)
class Note:
    id: int
    body: str
    author: str
    created_at: datetime | None = None
    system: bool = False
    author_id: int | None = None
    internal: bool = False  # an internal (confidential) note: only project members see it
    author_state: str = "active"  # the author's account state: "blocked" and "banned" may do nothing
    # The GitLab discussion the note is in (its own, for a plain comment) and whether that is a thread.
    discussion_id: str = ""
    threaded: bool = False


@dataclass(frozen=True)
class LabelChange:
    """A label added to or removed from an issue, as GitLab's resource label events API records it."""

    id: int
    label: str  # empty once the label was deleted
    action: str  # "add" or "remove"
    at: datetime
    by: str = ""


@dataclass(frozen=True)
class Child:
    """A child issue the bot made for one channel, found again by issue link or by its hidden marker."""

    channel: str
    issue: Issue
    linked: bool

    @property
    def iid(self) -> int:
        return self.issue.ref.iid


@dataclass(frozen=True)
class Tick:
    """A checklist item marked done with the ``done`` command: who and when (the command note's time)."""

    by: str
    at: datetime


@dataclass(frozen=True)
class CadenceRequest:
    """A ``cadence`` command's effect on one engagement: its interval (None: back to the plan's), who asked
    and when (the command note's time, the same on every run: the next reminder window starts there)."""

    every: timedelta | None
    by: str
    at: datetime


@dataclass(frozen=True)
class ClockFiling:
    """A stage of a regulatory clock filed with the ``clock filed`` command: its reference, who and when."""

    stage: str
    reference: str
    by: str
    at: datetime


@dataclass(frozen=True)
class ClockRecord:
    """What the clock's owner recorded about one clock with the ``clock`` command. ``started`` is the time
    the owner gave (awareness, the materiality determination), ``by``/``at`` who recorded it and when."""

    started: datetime | None = None
    by: str = ""
    at: datetime | None = None
    filings: tuple[ClockFiling, ...] = ()
    not_required: str = ""  # the owner's reason, when the clock does not apply to this incident
    delay_reason: str = ""  # the reasons for a late filing (GDPR Art. 33(1))

    def filed(self, stage: str) -> ClockFiling | None:
        return next((f for f in self.filings if f.stage == stage), None)


@dataclass(frozen=True)
class Dropped:
    """A line of a team's template the bot did not apply, and why (plain text; escaped where it is written)."""

    line: str
    why: str


@dataclass(frozen=True)
class TemplateIntent:
    """What of a team's template's quick actions the bot applies itself (``bot.core.teamintent``): labels, more
    assignees (checked in GitLab: each can read the confidential child), a milestone (found in GitLab: its id),
    a due date (ISO), a weight; and the lines it dropped."""

    labels: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    milestone: str | None = None
    milestone_id: int | None = None
    due_date: str | None = None
    weight: int | None = None
    dropped: tuple[Dropped, ...] = ()


@dataclass(frozen=True)
class ChildTarget:
    """Where a channel's new child is opened, as read from GitLab in this reconcile (``bot.gitlab.targets``).

    ``project`` is the team's project (full path), ``template`` the text of its issue template (None: the
    bundled template). With ``fallback`` set the team's project or template could not be read, or is outside
    the bot's remit: the child is opened from the bundled template in the incident's project, and
    ``fallback`` (safe markdown) says why in the status log. ``template`` holds no quick action any more
    (``bot.text.quickactions.neutralise``); ``intent`` is what of them the bot applies itself.
    """

    channel: str
    project: str | None = None
    project_id: int | None = None
    template: str | None = None
    fallback: str = ""
    reachable: bool = True  # whether the team's project may be searched for this channel's child
    intent: TemplateIntent = field(default_factory=TemplateIntent)

    @property
    def in_team_project(self) -> bool:
        return self.project is not None and not self.fallback


@dataclass(frozen=True)
class BotState:
    """What the bot recorded in its checklist's signed marker (see ``bot.core.state``)."""

    roles: Mapping[str, str] = field(default_factory=dict)
    snoozed_until: datetime | None = None
    # When each engagement with a cadence began: the anchor of its first reminder window. Recorded
    # once, so every later run (and every replica) computes the same windows.
    began: Mapping[str, datetime] = field(default_factory=dict)
    # The highest note id of a command the bot has handled: a command at or below it is never handled
    # again, even if its reply was deleted.
    handled: int = 0
    # Intervals requested on this incident with the ``cadence`` command, by engagement id.
    cadences: Mapping[str, CadenceRequest] = field(default_factory=dict)
    # The incident response channel (``#inc-123``), named with the ``channel`` command.
    chat_channel: str = ""
    # Checklist items marked done with the ``done`` command, by item key (``first:<id>``, ``engagement:<id>``):
    # GitLab lets only a comment's author and Maintainers tick its boxes.
    done: Mapping[str, Tick] = field(default_factory=dict)
    # Regulatory clocks the owner recorded with the ``clock`` command, by clock id.
    clocks: Mapping[str, ClockRecord] = field(default_factory=dict)
    # Counts the changes, so that the newest signed copy wins over an older one put back in its place.
    rev: int = 0
    # The keys of the bot's comments (``bot.core.records``) are signed and only signed ones count. False for an
    # incident an earlier version ran, until its unsigned keys have been re-signed.
    signed_log: bool = False
    # A digest of the timeline facts (``bot.core.timeline``) found in the incident's GitLab timeline: while the
    # facts are the same, the timeline is not read again.
    timeline: str = ""
    # The communications review was asked for with the ``report`` command: it is kept up to date from then on.
    review: bool = False
    # Each outbound integration's own part (its commands' records), by integration name; JSON values. A slot
    # of an integration this version does not know is kept as it is.
    slots: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The sign-off of each channel's draft (``bot.core.approvals``), by channel label.
    approvals: Mapping[str, ApprovalRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class LogEntry:
    """One line of the status log. ``key`` makes it once-only; ``text`` is already safe markdown."""

    key: str
    text: str


@dataclass(frozen=True)
class Observed:
    """Everything the bot read from GitLab about one incident."""

    incident: Issue
    children: Mapping[str, Child] = field(default_factory=dict)
    checklist: Note | None = None
    checklist_ticks: frozenset[str] = frozenset()
    # Items the bot showed ticked for a ``done`` command whose box somebody unticked by hand (a Maintainer).
    checklist_unticked: frozenset[str] = frozenset()
    state: BotState = field(default_factory=BotState)
    logged: frozenset[str] = frozenset()
    # The comment that first recorded each key in ``logged`` (its time, from GitLab): the review's events.
    logged_at: Mapping[str, Note] = field(default_factory=dict)
    # The incident's label events (GitLab's resource label events), read only when the review is written.
    label_changes: tuple[LabelChange, ...] | None = None
    # The discussion the status log is written in (one thread per incident), once the bot has started it.
    log_thread: str | None = None
    orphans_searched: bool = False
    # What this run changed that GitLab's state alone does not show (e.g. who assigned the incident):
    # logged with the next status log comment.
    pending_log: tuple[LogEntry, ...] = ()
    # Keys of the comments on children this run has posted (or found already posted): see ``NoteOnChild``.
    child_noted: frozenset[str] = frozenset()
    # Set when GitLab refused the SEOC as assignee in this run, so the run does not ask again.
    assign_refused: bool = False
    # Keys only unsigned markers of an earlier version hold, to re-sign once (``bot.core.records``).
    to_resign: frozenset[str] = frozenset()
    # Channels whose child's DRI GitLab did not keep in this run (not a member): the run does not ask again.
    dri_refused: frozenset[str] = frozenset()
    # Channels whose child this run has put back as the plan says (``FixChild``), or tried to: once a run.
    children_fixed: frozenset[str] = frozenset()
    # Channels whose child's names block this run rewrote (``RenameInChild``), or tried to: once a run.
    children_renamed: frozenset[str] = frozenset()
    # People's comments that matter: status updates that count (content judged by ``cadence``, the author by
    # the GitLab adapter: a Reporter or above, or a role holder), and commands not answered yet.
    updates: tuple[Note, ...] = ()
    commands: tuple[Command, ...] = ()
    # Signs the state and the child markers the bot writes. Read from the environment by the GitLab
    # adapter; the default only serves offline previews (``plan --payload``, ``check-config``, tests).
    key: StateKey = PREVIEW_KEY
    # Channel label -> where its new child goes (only channels whose child is missing and configured with a
    # team project or template; read at reconcile time, once per reconcile).
    targets: Mapping[str, ChildTarget] = field(default_factory=dict)
    # What the outbound integrations' outboxes say (refused targets, engagements carried out, the incident
    # channel created, their own rows and lines, their commands): empty without any integration.
    outbound: OutboundFacts = field(default_factory=OutboundFacts)


# ---- desired state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Who is responsible: a role or team name, and the GitLab handle that reaches them (if any)."""

    party: str
    name: str
    handle: str | None
    assignee: str | None = None


@dataclass(frozen=True)
class EngagementPlan:
    id: str
    name: str
    dri: Person
    cadence: timedelta | None
    channel: str
    reason: str
    # Where the cadence comes from when it is not the engagement's own: "requested by ..." or the config's rule.
    cadence_source: str = ""
    # When the cadence was last changed by a command: the next reminder window is counted from there.
    cadence_changed: datetime | None = None
    # Who is mentioned when an update stays overdue for a second window (``escalate_to``), if anyone.
    escalate: Person | None = None


@dataclass(frozen=True)
class FirstActionPlan:
    id: str
    text: str
    dri: Person


@dataclass(frozen=True)
class EngagedPlan:
    who: Person
    note: str


@dataclass(frozen=True)
class ChildPlan:
    channel: str
    title: str
    template: str
    labels: tuple[str, ...]
    assignee: Person
    engaged: tuple[EngagedPlan, ...]
    rules: tuple[str, ...]
    reason: str
    project: str | None = None  # the team's project (full path); None: the incident's project
    gitlab_template: str | None = None  # an issue template of that project the child starts with


@dataclass(frozen=True)
class ProposalPlan:
    """A channel the plan implies (its ``proposed_when`` holds) that nobody has selected: the checklist proposes
    it with the command that adds it; nothing is opened until a person does."""

    channel: str
    title: str
    short: str  # the name ``add`` takes besides the label (``email`` for ``comms-email``)
    reason: str


@dataclass(frozen=True)
class Desired:
    """What GitLab should show for one incident, computed by ``policy.plan`` from facts alone."""

    ref: IncidentRef
    in_scope: bool
    scope_reason: str
    severity: Severity
    severity_source: str
    phase: str
    phase_name: str
    flags: tuple[str, ...]
    roles: Mapping[str, Person] = field(default_factory=dict)
    assign_incident_to: str | None = None
    add_labels: tuple[str, ...] = ()
    first_actions: tuple[FirstActionPlan, ...] = ()
    engagements: tuple[EngagementPlan, ...] = ()
    children: tuple[ChildPlan, ...] = ()
    proposals: tuple[ProposalPlan, ...] = ()
    closed: bool = False
    # The incident over time.
    now: datetime | None = None
    state: BotState = field(default_factory=BotState)  # what the checklist's marker should record
    verdicts: tuple[Verdict, ...] = ()  # one per command to answer
    handoff_assign: str | None = None  # the new SEOC, to become the incident's assignee
    dues: tuple[Due, ...] = ()  # one per engagement with a cadence
    last_update: Note | None = None
    all_clear: bool = False
    reminders_paused: str = ""  # why no reminder is posted now (snoozed, all clear), if so
    clocks: tuple[ClockView, ...] = ()  # the regulatory clocks their owner recorded on this incident
    clock_offers: tuple[str, ...] = ()  # ids of the clocks the policy offers (``when`` holds) and nobody recorded
    approvals: tuple[ChannelApproval, ...] = ()  # each channel the approval matrix names, as it stands now
