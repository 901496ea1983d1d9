"""An in-process GitLab over plain dicts, for table-driven tests of observe and apply.

Implements the protocols of ``bot.gitlab.ports`` (what observe reads, apply writes, the remit check and the
sweep list), so a ``Reconciler`` runs against it unchanged. One project; every call is counted by method
name, and every write recorded as a tuple, so a test says exactly which requests a case costs. The HTTP
simulator (``bot.simgitlab``) stays the test bed for end-to-end, fault and replica tests.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.core.model import IncidentRef, Issue, Note
from bot.gitlab.errors import GitLabCallError
from bot.gitlab.ports import GitLab, IncidentGitLab, IssueListing, RemitProject, SweepLists

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

#: Methods that read (each one request, or one listing, on the real adapter).
READS = frozenset(
    {
        "get_issue",
        "links",
        "notes",
        "find_issues",
        "access_level",
        "user_id",
        "project_path",
        "member_projects",
        "open_issues",
    }
)


@dataclass
class User:
    id: int
    level: int = 0  # access level on the project (0: not a member)
    state: str = "active"


@dataclass
class FakeGitLab:
    bot: str = "incident-bot"
    project: str = "acme/security-incidents"
    project_id: int = 1
    clock: Callable[[], datetime] = lambda: T0
    users: dict[str, User] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)  # iid -> issue
    linked: dict[int, list[int]] = field(default_factory=dict)  # iid -> linked iids
    comments: dict[int, list[Note]] = field(default_factory=dict)  # iid -> notes, oldest first
    calls: Counter[str] = field(default_factory=Counter)
    writes: list[tuple[Any, ...]] = field(default_factory=list)
    verdicts: dict[tuple[str, int], bool] = field(default_factory=dict)
    _ids: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.add_user(self.bot, 40)

    # ---- building state --------------------------------------------------------------------------
    def _next(self, kind: str) -> int:
        with self._lock:
            self._ids[kind] += 1
            return self._ids[kind]

    def add_user(self, name: str, level: int = 0, state: str = "active") -> User:
        user = self.users[name.lower()] = User(self._next("user"), level, state)
        return user

    def add_issue(
        self,
        title: str = "Customer data exposed",
        *,
        labels: Iterable[str] = (),
        author: str = "sam",
        description: str = "",
        issue_type: str = "incident",
    ) -> Issue:
        iid = self._next("iid")
        issue = Issue(
            ref=IncidentRef(self.project, iid),
            id=1000 + iid,
            title=title,
            description=description,
            labels=frozenset(labels),
            author=author,
            issue_type=issue_type,
            created_at=self.clock(),
            updated_at=self.clock(),
            project_id=self.project_id,
            project_path=self.project,
        )
        self.issues[iid] = issue
        return issue

    def add_note(self, iid: int, author: str, body: str) -> Note:
        user = self.users.get(author.lower())
        nid = self._next("note")
        note = Note(
            id=nid,
            discussion_id=f"d{nid}",  # every comment is a discussion of its own until replied to
            body=body,
            author=author,
            created_at=self.clock(),
            author_id=user.id if user else None,
            author_state=user.state if user else "active",
        )
        self.comments.setdefault(iid, []).append(note)
        return note

    def edit_issue(self, iid: int, **changes: Any) -> None:
        self.issues[iid] = replace(self.issues[iid], **changes)

    def unlink(self, iid: int, target: int) -> None:
        self.linked[iid].remove(target)

    def reset_counts(self) -> None:
        self.calls.clear()
        self.writes.clear()

    @property
    def reads(self) -> int:
        return sum(n for name, n in self.calls.items() if name in READS)

    def _count(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1

    def _issue(self, iid: int, project: str) -> Issue:
        try:
            issue = self.issues[iid]
        except KeyError:
            raise GitLabCallError("read an issue", "", 404, "404 Issue Not Found", False) from None
        return replace(issue, ref=IncidentRef(project, iid))

    # ---- GitLab: the process ---------------------------------------------------------------------
    def for_incident(self, incident: str, event_uuid: str | None = None) -> FakeGitLab:
        return self

    # ---- reads -----------------------------------------------------------------------------------
    def get_issue(self, ref: IncidentRef) -> Issue:
        self._count("get_issue")
        return self._issue(ref.iid, ref.project)

    def links(self, ref: IncidentRef) -> list[Issue]:
        self._count("links")
        return [self._issue(iid, str(self.project_id)) for iid in self.linked.get(ref.iid, [])]

    def notes(self, ref: IncidentRef) -> list[Note]:
        self._count("notes")
        return list(self.comments.get(ref.iid, []))

    def find_issues(
        self, project: str, *, labels: Iterable[str], author: str, created_after: datetime | None
    ) -> list[Issue]:
        self._count("find_issues")
        wanted = set(labels)
        return [
            self._issue(iid, project)
            for iid, issue in sorted(self.issues.items())
            if wanted <= issue.labels
            and issue.author.lower() == author.lower()
            and (created_after is None or issue.created_at is None or issue.created_at > created_after)
        ]

    def access_level(self, project: str, user_id: int) -> int:
        self._count("access_level")
        user = next((u for u in self.users.values() if u.id == user_id), None)
        if user is None or user.state != "active":
            return 0
        return user.level

    def user_id(self, username: str) -> int | None:
        self._count("user_id")
        user = self.users.get(username.lower())
        return user.id if user else None

    def judged_update(self, project: str, note_id: int) -> bool | None:
        return self.verdicts.get((project, note_id))

    def judge_update(self, project: str, note_id: int, counted: bool) -> None:
        self.verdicts[(project, note_id)] = counted

    def project_path(self, project: str) -> str | None:
        self._count("project_path")
        return self.project if project in {self.project, str(self.project_id)} else None

    def member_projects(self, min_access_level: int) -> list[RemitProject]:
        self._count("member_projects")
        member = self.users[self.bot.lower()].level >= min_access_level
        group = self.project.rpartition("/")[0] or None
        return [RemitProject(self.project_id, self.project, group)] if member else []

    def open_issues(self, where: IssueListing, label: str) -> list[Issue]:
        self._count("open_issues")
        return [
            self._issue(iid, str(self.project_id))
            for iid, issue in sorted(self.issues.items(), key=lambda kv: kv[1].updated_at or T0, reverse=True)
            if issue.state == "opened" and label in issue.labels
        ]

    # ---- writes ----------------------------------------------------------------------------------
    def _names(self, ids: Iterable[int]) -> tuple[str, ...]:
        by_id = {u.id: name for name, u in self.users.items()}
        return tuple(by_id[i] for i in ids if i in by_id)

    def create_issue(
        self,
        project: str,
        *,
        title: str,
        description: str,
        labels: Iterable[str],
        assignee_ids: list[int],
        confidential: bool = True,
    ) -> Issue:
        self._count("create_issue")
        labels = tuple(labels)
        issue = self.add_issue(title, labels=labels, author=self.bot, description=description, issue_type="issue")
        issue = replace(issue, confidential=confidential, assignees=self._names(assignee_ids))
        self.issues[issue.ref.iid] = issue
        self.writes.append(("create_issue", title, tuple(sorted(labels)), self._names(assignee_ids), confidential))
        return replace(issue, ref=IncidentRef(project, issue.ref.iid))

    def link(self, ref: IncidentRef, target: IncidentRef) -> None:
        self._count("link")
        self.writes.append(("link", ref.iid, target.iid))
        targets = self.linked.setdefault(ref.iid, [])
        if target.iid not in targets:
            targets.append(target.iid)

    def update_issue(
        self, ref: IncidentRef, *, assignee_ids: list[int] | None = None, add_labels: Iterable[str] = ()
    ) -> Issue:
        self._count("update_issue")
        add = tuple(add_labels)
        names = self._names(assignee_ids) if assignee_ids is not None else None
        self.writes.append(("update_issue", names, add))
        issue = self.issues[ref.iid]
        issue = replace(
            issue,
            labels=issue.labels | set(add),
            assignees=issue.assignees if names is None else names,
            updated_at=self.clock(),
        )
        self.issues[ref.iid] = issue
        return replace(issue, ref=ref)

    def update_description(self, ref: IncidentRef, description: str) -> None:
        self._count("update_description")
        self.writes.append(("update_description", ref.iid))
        self.issues[ref.iid] = replace(self.issues[ref.iid], description=description, updated_at=self.clock())

    def create_note(self, ref: IncidentRef, body: str, *, internal: bool = False) -> Note:
        self._count("create_note")
        self.writes.append(("create_note", internal))
        note = replace(self.add_note(ref.iid, self.bot, body), internal=internal)
        self.comments[ref.iid][-1] = note
        return note

    def start_thread(self, ref: IncidentRef, body: str, *, internal: bool = False) -> tuple[str, Note]:
        self._count("start_thread")
        self.writes.append(("start_thread", internal))
        note = self.add_note(ref.iid, self.bot, body)
        note = replace(note, internal=internal, threaded=True)
        self.comments[ref.iid][-1] = note
        return note.discussion_id, note

    def reply_in_thread(self, ref: IncidentRef, discussion_id: str, body: str) -> Note:
        self._count("reply_in_thread")
        notes = self.comments.get(ref.iid, [])
        root = next((n for n in notes if n.discussion_id == discussion_id), None)
        if root is None:
            raise GitLabCallError("reply in a thread", ref.key, 404, "404 Discussion Not Found", False)
        self.writes.append(("reply_in_thread", discussion_id))
        notes[notes.index(root)] = replace(root, threaded=True)  # a replied-to comment becomes a thread
        note = replace(
            self.add_note(ref.iid, self.bot, body), internal=root.internal, discussion_id=discussion_id, threaded=True
        )
        self.comments[ref.iid][-1] = note
        return note

    def update_note(self, ref: IncidentRef, note_id: int, body: str) -> Note:
        self._count("update_note")
        self.writes.append(("update_note", note_id))
        notes = self.comments.get(ref.iid, [])
        for i, note in enumerate(notes):
            if note.id == note_id:
                notes[i] = replace(note, body=body)
                return notes[i]
        raise GitLabCallError("update the checklist comment", ref.key, 404, "404 Note Not Found", False)


if TYPE_CHECKING:  # the fake implements every protocol the adapter does
    _incident: IncidentGitLab = FakeGitLab()
    _process: GitLab = FakeGitLab()
    _sweep: SweepLists = FakeGitLab()
