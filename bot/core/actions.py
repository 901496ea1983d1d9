"""Actions: the difference between desired and observed, as data.

Each action has a stable ``key`` (the same on every run for the same change, so retries and replicas
can recognise it) and a one-line ``describe()`` for the dry run and the transcript.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CreateChild:
    channel: str
    title: str
    description: str
    labels: tuple[str, ...]
    assignee: str | None
    confidential: bool = True
    # The team's project (full path) the child is opened in; None: the incident's project.
    project: str | None = None
    # The team's own issue template, verbatim, put before ``description`` (the part the bot rendered). Its
    # quick actions are the team's; ``description`` may hold none (``bot.gitlab.client`` checks both).
    preamble: str = ""
    template_name: str | None = None
    # From the team's template, allow-listed (``bot.core.teamintent``): more assignees after the DRI, a
    # milestone, a due date (ISO), a weight.
    extra_assignees: tuple[str, ...] = ()
    milestone_id: int | None = None
    due_date: str | None = None
    weight: int | None = None

    @property
    def key(self) -> str:
        return f"create-child:{self.channel}"

    def describe(self) -> str:
        who = f"@{self.assignee}" if self.assignee else "nobody (no assignee configured)"
        where = f" in {self.project}" if self.project else ""
        source = f" from its template {self.template_name!r}" if self.template_name and self.preamble else ""
        return (
            f"create confidential child issue {self.title!r}{where}{source} [{', '.join(self.labels)}] "
            f"assigned to {who}"
        )


@dataclass(frozen=True)
class LinkChild:
    channel: str
    child_project: str
    child_iid: int

    @property
    def key(self) -> str:
        return f"link-child:{self.channel}:{self.child_project}#{self.child_iid}"

    def describe(self) -> str:
        return f"link child #{self.child_iid} ({self.channel}) to the incident (relates_to)"


@dataclass(frozen=True)
class UpdateIncident:
    assign: str | None = None
    add_labels: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return "update-incident"

    def describe(self) -> str:
        parts = []
        if self.assign:
            parts.append(f"assign the incident to @{self.assign} (SEOC)")
        if self.add_labels:
            parts.append(f"add label {', '.join(self.add_labels)}")
        return " and ".join(parts)


@dataclass(frozen=True)
class ReassignChild:
    """An open child whose DRI is a role follows the role's new holder after a hand-off."""

    channel: str
    child_project: str
    child_iid: int
    assignee: str
    previous: str
    role: str

    @property
    def key(self) -> str:
        return f"reassign-child:{self.channel}:{self.child_project}#{self.child_iid}"

    def describe(self) -> str:
        return (
            f"reassign child #{self.child_iid} ({self.channel}) from @{self.previous} to @{self.assignee} "
            f"(the new {self.role.upper()})"
        )


@dataclass(frozen=True)
class FixChild:
    """A child put back the way the plan says after someone (or a team's template) changed it: confidential,
    the bot's labels on it, and its DRI assigned when nobody else is (``assignees``: the full list to set)."""

    channel: str
    child_project: str
    child_iid: int
    confidential: bool = False
    add_labels: tuple[str, ...] = ()
    assignees: tuple[str, ...] | None = None
    dri: str | None = None
    log_key: str = ""  # which change this repairs, once (the child's updated_at)

    @property
    def key(self) -> str:
        return f"fix-child:{self.channel}:{self.child_project}#{self.child_iid}"

    def describe(self) -> str:
        parts = ["make it confidential"] if self.confidential else []
        if self.add_labels:
            parts.append(f"add label {', '.join(self.add_labels)}")
        if self.dri:
            parts.append(f"assign @{self.dri} (its DRI)")
        return f"put child #{self.child_iid} ({self.channel}) back as the plan says: {' and '.join(parts)}"


@dataclass(frozen=True)
class RenameInChild:
    """An open child's names block (its DRI, who else is engaged, the role holders) rewritten with the current
    names, in place: ``description`` is the child's whole description with only that block changed
    (``bot.core.names``)."""

    channel: str
    child_project: str
    child_iid: int
    description: str

    @property
    def key(self) -> str:
        return f"rename-in-child:{self.channel}:{self.child_project}#{self.child_iid}"

    def describe(self) -> str:
        return f"update the DRI and role holders named in child #{self.child_iid} ({self.channel})"


@dataclass(frozen=True)
class UpsertChecklist:
    body: str
    note_id: int | None = None

    @property
    def key(self) -> str:
        return "checklist"

    def describe(self) -> str:
        return "post the engagement checklist comment" if self.note_id is None else "update the checklist comment"


@dataclass(frozen=True)
class UpsertReview:
    """The communications review: one comment, found again by its signed log key and edited in place."""

    body: str
    note_id: int | None = None

    @property
    def key(self) -> str:
        return "review"

    def describe(self) -> str:
        return "post the communications review" if self.note_id is None else "update the communications review"


@dataclass(frozen=True)
class PostNote:
    """A comment: a status log entry, a command reply, the out-of-scope note, a reminder. ``log_keys`` mark
    it done.

    Where it goes: a reply in the discussion ``thread`` (the status log's thread, or the thread of the
    command it answers); the first note of a new thread (``starts_thread``: the status log's first entry);
    else a top-level comment (reminders and the final comms, which must be seen)."""

    kind: str
    body: str
    log_keys: tuple[str, ...] = field(default=())
    internal: bool = False  # a reply to an internal note is internal too
    thread: str | None = None
    starts_thread: bool = False
    lines: tuple[str, ...] = ()  # what it says, one line each (Markdown), for the job's log line

    @property
    def key(self) -> str:
        return f"note:{self.kind}:{','.join(self.log_keys)}"

    def describe(self) -> str:
        what = self.kind.replace("-", " ")
        if self.kind == "log":
            where = "reply in the status log thread" if self.thread else "start the status log thread"
            return f"{where}: {len(self.lines)} entr{'y' if len(self.lines) == 1 else 'ies'}"
        if self.thread:
            return f"reply in the command's thread: {what}"
        return f"post a comment: {what}"


@dataclass(frozen=True)
class NoteOnChild:
    """One comment on a child issue (a comms order rule it broke), once: the comment carries ``log_key`` in
    its log marker, so the applier finds it again before posting; ``log_text`` then goes to the incident's
    status log under the same key, which marks both done."""

    channel: str
    child_project: str
    child_iid: int
    body: str
    log_key: str
    log_text: str
    what: str = "closed out of the plan's order"

    @property
    def key(self) -> str:
        return f"note-on-child:{self.log_key}"

    def describe(self) -> str:
        return f"comment on child #{self.child_iid} ({self.channel}): {self.what}"


@dataclass(frozen=True)
class LabelChild:
    """The sign-off label put on or taken off a child (``bot.core.approvals``). ``log_key``/``log_text``: a status
    log line, when nothing else says why (a label a person put on an unapproved draft)."""

    channel: str
    child_project: str
    child_iid: int
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    log_key: str = ""
    log_text: str = ""

    @property
    def key(self) -> str:
        return f"label-child:{self.channel}:{self.child_project}#{self.child_iid}"

    def describe(self) -> str:
        parts = [f"add {', '.join(self.add)}"] if self.add else []
        parts += [f"remove {', '.join(self.remove)}"] if self.remove else []
        return f"label child #{self.child_iid} ({self.channel}): {' and '.join(parts)}"


Action = (
    CreateChild
    | LinkChild
    | UpdateIncident
    | ReassignChild
    | FixChild
    | RenameInChild
    | UpsertChecklist
    | UpsertReview
    | PostNote
    | NoteOnChild
    | LabelChild
)
