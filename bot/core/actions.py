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
class UpsertChecklist:
    body: str
    note_id: int | None = None

    @property
    def key(self) -> str:
        return "checklist"

    def describe(self) -> str:
        return "post the engagement checklist comment" if self.note_id is None else "update the checklist comment"


@dataclass(frozen=True)
class PostNote:
    """A comment: a status log entry, the out-of-scope note, a reminder. ``log_keys`` mark it done."""

    kind: str
    body: str
    log_keys: tuple[str, ...] = field(default=())
    internal: bool = False  # a reply to an internal note is internal too

    @property
    def key(self) -> str:
        return f"note:{self.kind}:{','.join(self.log_keys)}"

    def describe(self) -> str:
        return f"post a comment: {self.kind.replace('-', ' ')}"


Action = CreateChild | LinkChild | UpdateIncident | ReassignChild | UpsertChecklist | PostNote
