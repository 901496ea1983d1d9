"""What each part of the bot asks of GitLab: one narrow protocol per consumer.

``bot.gitlab.client.GitLabClient`` (python-gitlab, every call under the call policy) implements them all;
tests use an in-process fake (``tests/fakegitlab.py``) for table-driven tests of observe and apply, and the
simulated GitLab (``bot.simgitlab``) over real HTTP for end-to-end, fault and replica tests. Each method is
one request, or one paginated listing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bot.core.model import IncidentRef, Issue, LabelChange, Note


@dataclass(frozen=True)
class RemitProject:
    """A project the bot user is a member of."""

    id: int
    path: str
    group: str | None  # the project's namespace when it is a group (None: a user's namespace)


@dataclass(frozen=True)
class ChildFields:
    """What of a team's template the bot applies to a new child through the API (``bot.core.teamintent``)."""

    milestone_id: int | None = None
    due_date: str | None = None
    weight: int | None = None


@dataclass(frozen=True)
class IssueListing:
    """Where the sweep lists issues: a group (with its subgroups) or one project, by id or full path."""

    kind: Literal["group", "project"]
    path: str


class UserLookup(Protocol):
    def user_id(self, username: str) -> int | None:
        """The user's id, or None when no such user exists (cached per process)."""
        ...


class AccessLevels(Protocol):
    def access_level(self, project: str, user_id: int) -> int:
        """The user's effective access level on the project (0 when not a member, or blocked)."""
        ...


class ChildSearch(Protocol):
    def find_issues(
        self, project: str, *, labels: Iterable[str], author: str, created_after: datetime | None
    ) -> list[Issue]:
        """Issues of ``project`` in any state by ``author``, carrying every one of ``labels``."""
        ...


class TemplateReads(Protocol):
    def issue_template(self, project: str, name: str) -> str | None:
        """The text of a project's issue template, or None when the project or template cannot be read."""
        ...


class TeamTemplateReads(TemplateReads, UserLookup, AccessLevels, Protocol):
    """What reading a team's template for a new child reads: the template, and whether the people and the
    milestone its quick actions name may be applied (``bot.gitlab.targets``)."""

    def milestone_id(self, project: str, title: str) -> int | None:
        """The id of the project's (or its groups') active milestone with this title, or None."""
        ...


class CommandChecks(UserLookup, AccessLevels, Protocol):
    """What checking a command reads: its author's access level, and whether a user a hand-off names exists."""


class ObserveReads(CommandChecks, ChildSearch, Protocol):
    """What ``bot.gitlab.observe`` reads: the incident, its links and comments; who wrote them; the orphan
    search. Also the process's memory of status updates already judged (no request)."""

    def get_issue(self, ref: IncidentRef) -> Issue: ...

    def links(self, ref: IncidentRef) -> list[Issue]: ...

    def notes(self, ref: IncidentRef) -> list[Note]: ...

    def judged_update(self, project: str, note_id: int) -> bool | None: ...

    def judge_update(self, project: str, note_id: int, counted: bool) -> None: ...


class ApplyWrites(UserLookup, ChildSearch, Protocol):
    """What ``bot.gitlab.apply`` writes (and the look-ups a write needs)."""

    def create_issue(
        self,
        project: str,
        *,
        title: str,
        description: str,
        labels: Iterable[str],
        assignee_ids: list[int],
        confidential: bool = True,
        preamble: str = "",
        extra: ChildFields | None = None,
    ) -> Issue: ...

    def link(self, ref: IncidentRef, target: IncidentRef) -> None: ...

    def fix_child(
        self, ref: IncidentRef, *, assignee_ids: list[int] | None, confidential: bool, add_labels: Iterable[str]
    ) -> Issue:
        """Put a child back the way the plan says: its DRI (``assignee_ids``), confidential, the bot's labels."""
        ...

    def update_issue(
        self, ref: IncidentRef, *, assignee_ids: list[int] | None = None, add_labels: Iterable[str] = ()
    ) -> Issue: ...

    def label_child(self, ref: IncidentRef, *, add: Iterable[str], remove: Iterable[str]) -> Issue:
        """Add and remove a child's labels in one write (the sign-off label)."""
        ...

    def update_description(self, ref: IncidentRef, description: str) -> None:
        """Rewrite a child's description (its names block changed, ``RenameInChild``)."""
        ...

    def create_note(self, ref: IncidentRef, body: str, *, internal: bool = False) -> Note: ...

    def start_thread(self, ref: IncidentRef, body: str, *, internal: bool = False) -> tuple[str, Note]: ...

    def reply_in_thread(self, ref: IncidentRef, discussion_id: str, body: str) -> Note: ...

    def notes(self, ref: IncidentRef) -> list[Note]:
        """A child's comments, read before the one comment the bot posts there (``NoteOnChild``)."""
        ...

    def update_note(self, ref: IncidentRef, note_id: int, body: str) -> Note: ...


class RemitReads(UserLookup, AccessLevels, Protocol):
    """What ``bot.gitlab.remit`` reads to decide whether the bot may act in a project."""

    def project_path(self, project: str) -> str | None:
        """The project's full path as GitLab names it now, or None when the bot user cannot see it."""
        ...


class SweepLists(Protocol):
    """What ``bot.sweep`` lists."""

    def member_projects(self, min_access_level: int) -> list[RemitProject]:
        """Every unarchived project the bot user is a member of with at least this level."""
        ...

    def open_issues(self, where: IssueListing, label: str) -> list[Issue]:
        """Open issues carrying ``label``, most recently updated first (a group's include its subgroups')."""
        ...

    def bot_issues(self, updated_after: datetime | None) -> list[Issue]:
        """Every issue the bot user created (its children, in any project and state) updated after the time."""
        ...


class ReviewReads(Protocol):
    """What the communications review reads besides what a reconcile observes."""

    def label_events(self, ref: IncidentRef) -> list[LabelChange]: ...


class IncidentGitLab(ObserveReads, ApplyWrites, RemitReads, TeamTemplateReads, ReviewReads, Protocol):
    """Everything one reconcile of one incident reads and writes."""


class GitLab(Protocol):
    """What the reconciler holds for a process: a client per incident (forwarding the event's UUID)."""

    def for_incident(self, incident: str, event_uuid: str | None = None) -> IncidentGitLab: ...
