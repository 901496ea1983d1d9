"""Thread-safe in-memory model of the parts of GitLab the bot touches.

One re-entrant lock guards everything; the HTTP layer holds it for the whole of a request's
processing, so every API call sees and leaves a consistent model. Seeding methods (``add_*``,
``create_issue``, ``add_note``, ...) act as the world outside the bot: they check no permissions,
run no quick actions and fire no webhooks, but they do follow GitLab's data rules (tier limits on
assignees, scoped labels on Premium, system notes, ``updated_at`` bumps).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from . import entities
from .clock import Clock, as_utc, iso, utc_now
from .ratelimits import ApplicationRateLimits
from .records import (
    ACCESS_LEVELS,
    ADMIN_ACCESS,
    DEFAULT_LABEL_COLOR,
    ISSUE_TYPES,
    LINK_TYPES,
    MAINTAINER,
    PLANNER,
    SEVERITIES,
    TIERS,
    VISIBILITIES,
    ApiError,
    Event,
    Issue,
    Label,
    LabelEvent,
    Link,
    Milestone,
    Note,
    Project,
    User,
)

log = logging.getLogger(__name__)

ProjectRef = int | str | dict[str, Any] | Project
UserRef = int | str | dict[str, Any] | User


class GitLabState:
    def __init__(
        self,
        now: Clock | None = None,
        *,
        base_url: str = "http://gitlab.example.com",
        system_notes: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.now: Clock = now or utc_now
        # GitLab's note and issue creation limits; off until configured (GitLab's own defaults: SELF_MANAGED_DEFAULTS)
        self.rate_limits = ApplicationRateLimits(lambda: self.now(), {"notes_create": 0, "issues_create": 0})
        self.base_url = base_url.rstrip("/")
        self.system_notes = system_notes
        self.listeners: list[Callable[[Event], None]] = []
        self.users_by_id: dict[int, User] = {}
        self._users_by_name: dict[str, User] = {}
        self._users_by_token: dict[str, User] = {}
        self.projects_by_id: dict[int, Project] = {}
        self._projects_by_path: dict[str, Project] = {}
        # Group full path (lower case) -> user id -> access level; inherited by every project and
        # subgroup below the group, as on GitLab.
        self.group_members: dict[str, dict[int, int]] = {}
        self.issues_by_id: dict[int, Issue] = {}
        self._issues_by_iid: dict[tuple[int, int], Issue] = {}
        self.notes_by_id: dict[int, Note] = {}
        self._notes_by_issue: dict[int, list[Note]] = {}
        self.links_by_id: dict[int, Link] = {}
        # Incident timeline events (GraphQL only, ``bot/simgitlab/graphql.py``) by issue id, and the tags a
        # project created besides the predefined ones, by project id.
        self.timeline_events: dict[int, list[dict[str, Any]]] = {}
        self.timeline_tags: dict[int, set[str]] = {}
        # Label events by issue id (``ResourceLabelEvent``: one per label added or removed, with who and when).
        self._label_events: dict[int, list[LabelEvent]] = {}
        # Distinct ranges so that confusing an id with an iid (or a note id) fails loudly.
        self._seq = {
            "user": itertools.count(1),
            "project": itertools.count(11),
            "label": itertools.count(701),
            "issue": itertools.count(5001),
            "note": itertools.count(90001),
            "link": itertools.count(3001),
            "milestone": itertools.count(601),
            "label_event": itertools.count(40001),
        }
        self.add_user("root", "Administrator", admin=True)

    # ------------------------------------------------------------------ lookups

    def _next(self, kind: str) -> int:
        return next(self._seq[kind])

    def project_web_url(self, project: Project) -> str:
        return f"{self.base_url}/{project.path_with_namespace}"

    def find_project(self, ref: ProjectRef) -> Project:
        with self.lock:
            if isinstance(ref, Project):
                return ref
            if isinstance(ref, dict):
                ref = ref["id"]
            if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
                found = self.projects_by_id.get(int(ref))
            else:
                found = self._projects_by_path.get(str(ref).strip("/").lower())
            if found is None:
                raise ApiError.not_found("Project")
            return found

    def find_user(self, ref: UserRef) -> User:
        with self.lock:
            if isinstance(ref, User):
                return ref
            if isinstance(ref, dict):
                ref = ref["id"]
            found = (
                self.users_by_id.get(ref)
                if isinstance(ref, int)
                else self._users_by_name.get(str(ref).lstrip("@").lower())
            )
            if found is None:
                raise ApiError.not_found("User")
            return found

    def user_for_token(self, token: str | None) -> User | None:
        with self.lock:
            return self._users_by_token.get(token or "")

    def find_issue(self, project: ProjectRef, iid: int | str) -> Issue:
        with self.lock:
            proj = self.find_project(project)
            try:
                key = (proj.id, int(iid))
            except (TypeError, ValueError):
                raise ApiError.not_found() from None
            found = self._issues_by_iid.get(key)
            if found is None:
                raise ApiError.not_found()
            return found

    def find_note(self, issue: Issue, note_id: int | str) -> Note:
        with self.lock:
            try:
                found = self.notes_by_id.get(int(note_id))
            except (TypeError, ValueError):
                found = None
            if found is None or found.issue_id != issue.id:
                raise ApiError.not_found()
            return found

    def _record_label_events(
        self,
        project: Project,
        item: Issue,
        actor: User,
        before: Sequence[str],
        after: Sequence[str],
        at: datetime | None = None,
    ) -> None:
        """``ResourceEvents::ChangeLabelsService``: one event per label added and per label removed."""
        events = self._label_events.setdefault(item.id, [])
        for action, names in (("add", [n for n in after if n not in before]),
                              ("remove", [n for n in before if n not in after])):
            for name in names:
                if name in project.labels:
                    events.append(LabelEvent(self._next("label_event"), item.id, project.labels[name].id, actor.id,
                                             action, at or self.now()))

    def label_events_of(self, issue: Issue) -> list[LabelEvent]:
        with self.lock:
            return list(self._label_events.get(issue.id, []))

    def notes_of(self, issue: Issue) -> list[Note]:
        with self.lock:
            return list(self._notes_by_issue.get(issue.id, []))

    def user_notes_count(self, issue: Issue) -> int:
        return sum(not n.system for n in self._notes_by_issue.get(issue.id, []))

    def links_of(self, issue: Issue) -> list[tuple[Issue, Link, str]]:
        """Linked issues as seen from ``issue``: (other, link, link_type from this side), oldest first."""
        with self.lock:
            out = []
            for link in sorted(self.links_by_id.values(), key=lambda lk: (lk.created_at, lk.id)):
                if link.source_id == issue.id:
                    out.append((self.issues_by_id[link.target_id], link, link.link_type))
                elif link.target_id == issue.id:
                    seen = "is_blocked_by" if link.link_type == "blocks" else link.link_type
                    out.append((self.issues_by_id[link.source_id], link, seen))
            return out

    def blocking_count(self, issue: Issue) -> int:
        return sum(
            1
            for lk in self.links_by_id.values()
            if lk.link_type == "blocks"
            and lk.source_id == issue.id
            and self.issues_by_id[lk.target_id].state == "opened"
        )

    # ------------------------------------------------------------- permissions

    def access_level(self, project: Project, user: User) -> int:
        if user.admin:
            return ADMIN_ACCESS
        return max(project.members.get(user.id, 0), self.inherited_access(project, user))

    def inherited_access(self, project: Project, user: User) -> int:
        """The highest access ``user`` has through a membership of the project's group or its ancestors."""
        parts = project.namespace.lower().split("/") if project.namespace else []
        groups = ("/".join(parts[:n]) for n in range(1, len(parts) + 1))
        return max((self.group_members.get(g, {}).get(user.id, 0) for g in groups), default=0)

    def members_of(self, project: Project) -> dict[int, int]:
        """Direct and inherited members with their effective access level (``/members/all``)."""
        out: dict[int, int] = {}
        for uid in {*project.members, *(u for g in self.group_members.values() for u in g)}:
            level = max(project.members.get(uid, 0), self.inherited_access(project, self.users_by_id[uid]))
            if level:
                out[uid] = level
        return out

    def can_read_project(self, user: User, project: Project) -> bool:
        return user.admin or self.access_level(project, user) > 0 or project.visibility != "private"

    def can_read_issue(self, user: User, issue: Issue) -> bool:
        project = self.projects_by_id[issue.project_id]
        if not self.can_read_project(user, project):
            return False
        if not issue.confidential:
            return True
        return (
            self.access_level(project, user) >= PLANNER or user.id == issue.author_id or user.id in issue.assignee_ids
        )

    def can_update_issue(self, user: User, issue: Issue) -> bool:
        project = self.projects_by_id[issue.project_id]
        return self.can_read_issue(user, issue) and (
            self.access_level(project, user) >= PLANNER or user.id == issue.author_id
        )

    def can_admin_note(self, user: User, note: Note) -> bool:
        project = self.projects_by_id[note.project_id]
        return user.id == note.author_id or self.access_level(project, user) >= MAINTAINER

    def _could_read(self, project: Project, user: User, *, confidential: bool, author_id: int) -> bool:
        """Whether ``user`` may read an issue with these properties (GitLab's assignee filter)."""
        if user.state != "active" or not self.can_read_project(user, project):
            return False
        return not confidential or self.access_level(project, user) >= PLANNER or user.id == author_id

    # ------------------------------------------------------------------ seeding

    def add_user(
        self,
        username: str,
        name: str | None = None,
        *,
        admin: bool = False,
        bot: bool = False,
        email: str | None = None,
        state: str = "active",
        token: str | None = None,
    ) -> dict[str, Any]:
        """Create a user; the returned dict is its REST shape plus ``token`` (its PRIVATE-TOKEN)."""
        with self.lock:
            if username.lower() in self._users_by_name:
                raise ValueError(f"user {username!r} exists")
            user = User(
                id=self._next("user"),
                username=username,
                name=name or username.replace("-", " ").replace("_", " ").title(),
                token=token or f"glpat-{username}",
                state=state,
                admin=admin,
                bot=bot,
                email=email,
                created_at=self.now(),
            )
            self.users_by_id[user.id] = user
            self._users_by_name[username.lower()] = user
            self._users_by_token[user.token] = user
            return self.user(user) | {"token": user.token}

    def user(self, ref: UserRef) -> dict[str, Any]:
        with self.lock:
            return entities.user_basic(self, self.find_user(ref))

    def add_project(
        self,
        path: str,
        members: dict[str, int] | None = None,
        *,
        tier: str = "free",
        visibility: str = "private",
        labels: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Create a project; ``members`` maps username -> access level (10/20/30/40/50)."""
        if tier not in TIERS or visibility not in VISIBILITIES:
            raise ValueError(f"bad tier {tier!r} or visibility {visibility!r}")
        with self.lock:
            path = path.strip("/")
            if path.lower() in self._projects_by_path:
                raise ValueError(f"project {path!r} exists")
            project = Project(
                id=self._next("project"),
                path_with_namespace=path,
                tier=tier,
                visibility=visibility,
                created_at=self.now(),
            )
            self.projects_by_id[project.id] = project
            self._projects_by_path[path.lower()] = project
            for username, level in (members or {}).items():
                self.add_member(project, username, level)
            for name in labels:
                self.add_label(project, name)
            return self.project(project)

    def project(self, ref: ProjectRef) -> dict[str, Any]:
        with self.lock:
            return entities.project(self, self.find_project(ref))

    def add_member(self, project: ProjectRef, username: str, access_level: int) -> None:
        if access_level not in ACCESS_LEVELS:
            raise ValueError(f"bad access level {access_level}")
        with self.lock:
            self.find_project(project).members[self.find_user(username).id] = access_level

    def add_group_member(self, group: str, username: str, access_level: int) -> None:
        """Make ``username`` a member of the group ``group`` (a full path), inherited by everything below it."""
        if access_level not in ACCESS_LEVELS:
            raise ValueError(f"bad access level {access_level}")
        with self.lock:
            self.group_members.setdefault(group.strip("/").lower(), {})[self.find_user(username).id] = access_level

    def remove_member(self, project: ProjectRef, username: str) -> None:
        with self.lock:
            self.find_project(project).members.pop(self.find_user(username).id, None)

    def set_tier(self, project: ProjectRef, tier: str) -> None:
        if tier not in TIERS:
            raise ValueError(f"bad tier {tier!r}")
        with self.lock:
            self.find_project(project).tier = tier

    def add_label(
        self, project: ProjectRef, name: str, color: str = DEFAULT_LABEL_COLOR, description: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            proj = self.find_project(project)
            lab = self._label(proj, name, create=True, color=color, description=description)
            assert lab is not None
            return entities.label(proj, lab)

    def add_milestone(self, project: ProjectRef, title: str, state: str = "active") -> dict[str, Any]:
        """A project milestone (``POST /projects/:id/milestones``; closed with ``state="closed"``)."""
        with self.lock:
            proj = self.find_project(project)
            milestone = Milestone(self._next("milestone"), len(proj.milestones) + 1, proj.id, title, state)
            proj.milestones.append(milestone)
            return entities.milestone(proj, milestone)

    def milestone_of(self, item: Issue) -> Milestone | None:
        proj = self.projects_by_id[item.project_id]
        return next((m for m in proj.milestones if m.id == item.milestone_id), None)

    def add_issue_template(self, project: ProjectRef, name: str, content: str) -> None:
        """Add (or replace) ``.gitlab/issue_templates/NAME.md``, served by ``GET /projects/:id/templates/issues``."""
        with self.lock:
            self.find_project(project).templates[name] = content

    def remove_issue_template(self, project: ProjectRef, name: str) -> None:
        """Delete (or, as far as the API can tell, rename) an issue template."""
        with self.lock:
            self.find_project(project).templates.pop(name, None)

    def create_issue(
        self,
        project: ProjectRef,
        title: str,
        *,
        labels: Iterable[str] = (),
        description: str = "",
        author: UserRef = "root",
        issue_type: str = "issue",
        severity: str = "UNKNOWN",
        confidential: bool = False,
        assignees: Iterable[UserRef] = (),
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            proj = self.find_project(project)
            item = self.new_issue(
                proj,
                self.find_user(author),
                title=title,
                description=description,
                labels=list(labels),
                assignee_ids=[self.find_user(a).id for a in assignees],
                confidential=confidential,
                issue_type=issue_type,
                severity=severity,
                created_at=created_at,
            )
            return entities.issue(self, item)

    def get_issue(self, project: ProjectRef, iid: int) -> dict[str, Any]:
        with self.lock:
            return entities.issue(self, self.find_issue(project, iid))

    def issues(self, project: ProjectRef) -> list[dict[str, Any]]:
        """All issues of a project, oldest first."""
        with self.lock:
            proj = self.find_project(project)
            items = sorted((i for i in self.issues_by_id.values() if i.project_id == proj.id), key=_by_iid)
            return [entities.issue(self, i) for i in items]

    def update_issue(self, project: ProjectRef, iid: int, *, actor: UserRef = "root", **fields: Any) -> dict:
        """Seeding edit; takes ``edit_issue`` keywords, with ``assignees`` as usernames."""
        with self.lock:
            item = self.find_issue(project, iid)
            if "assignees" in fields:
                fields["assignee_ids"] = [self.find_user(a).id for a in fields.pop("assignees")]
            self.edit_issue(item, self.find_user(actor), **fields)
            return entities.issue(self, item)

    def close_issue(self, project: ProjectRef, iid: int, *, actor: UserRef = "root") -> dict[str, Any]:
        return self.update_issue(project, iid, actor=actor, state_event="close")

    def reopen_issue(self, project: ProjectRef, iid: int, *, actor: UserRef = "root") -> dict[str, Any]:
        return self.update_issue(project, iid, actor=actor, state_event="reopen")

    def set_labels(
        self, project: ProjectRef, iid: int, labels: Iterable[str], *, actor: UserRef = "root"
    ) -> dict[str, Any]:
        return self.update_issue(project, iid, actor=actor, labels=list(labels))

    def add_note(
        self,
        project: ProjectRef,
        iid: int,
        body: str,
        *,
        author: UserRef = "root",
        system: bool = False,
        internal: bool = False,
        created_at: datetime | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Seed a comment; ``reply_to`` (a note id) makes it a reply in that note's discussion."""
        with self.lock:
            item = self.find_issue(project, iid)
            parent = self.find_note(item, reply_to) if reply_to is not None else None
            note = self.new_note(
                item,
                self.find_user(author),
                body,
                internal=parent.internal if parent else internal,  # a reply takes its thread's confidentiality
                system=system,
                created_at=created_at,
                discussion=parent,
            )
            return entities.note(self, note)

    def discussions(self, project: ProjectRef, iid: int) -> list[dict[str, Any]]:
        """The issue's discussions as GitLab's Discussions API lists them (system notes included), oldest first."""
        with self.lock:
            threads: dict[str, list[Note]] = {}
            for n in sorted(self.notes_of(self.find_issue(project, iid)), key=lambda n: (n.created_at, n.id)):
                threads.setdefault(n.discussion_id, []).append(n)
            return [entities.discussion(self, notes) for notes in threads.values()]

    def edit_note_body(
        self, project: ProjectRef, iid: int, note_id: int, body: str, *, actor: UserRef = "root"
    ) -> dict[str, Any]:
        """Seed an edit, e.g. a person ticking a task-list box in somebody else's comment."""
        with self.lock:
            note = self.find_note(self.find_issue(project, iid), note_id)
            self.edit_note(note, body, self.find_user(actor))
            return entities.note(self, note)

    def notes(self, project: ProjectRef, iid: int, *, include_system: bool = True) -> list[dict[str, Any]]:
        """Notes of an issue, oldest first."""
        with self.lock:
            item = self.find_issue(project, iid)
            return [entities.note(self, n) for n in self.notes_of(item) if include_system or not n.system]

    def link_issues(
        self,
        project: ProjectRef,
        iid: int,
        target_project: ProjectRef,
        target_iid: int,
        link_type: str = "relates_to",
        *,
        actor: UserRef = "root",
    ) -> dict[str, Any]:
        with self.lock:
            source = self.find_issue(project, iid)
            target = self.find_issue(target_project, target_iid)
            return entities.issue_link(self, self.new_link(source, target, link_type, self.find_user(actor)))

    def links(self, project: ProjectRef, iid: int) -> list[dict[str, Any]]:
        with self.lock:
            item = self.find_issue(project, iid)
            return [entities.related_issue(self, other, lk, t) for other, lk, t in self.links_of(item)]

    # --------------------------------------------------------------- mutations

    def _emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("state listener failed")

    def _label(
        self,
        project: Project,
        name: str,
        *,
        create: bool,
        color: str = DEFAULT_LABEL_COLOR,
        description: str | None = None,
    ) -> Label | None:
        found = project.labels.get(name)
        if found is None and create:
            now = self.now()
            found = Label(self._next("label"), project.id, name, color, description, now, now)
            project.labels[name] = found
        return found

    def _merge_labels(self, project: Project, current: Sequence[str], added: Iterable[str]) -> list[str]:
        """Add labels in order; on Premium a scoped label ``key::value`` replaces its siblings."""
        result = list(current)
        for name in added:
            if project.premium and "::" in name:
                key = name.rsplit("::", 1)[0]
                result = [n for n in result if "::" not in n or n.rsplit("::", 1)[0] != key]
            if name not in result:
                result.append(name)
        return result

    def _filter_assignees(
        self, project: Project, ids: Sequence[int], *, confidential: bool, author_id: int
    ) -> list[int] | None:
        """GitLab's filter_assignee_ids: keep one on Free, drop users who could not read the issue.

        Returns the new id list, or None when nothing usable is left (the change is then ignored).
        """
        if not ids or list(ids) == [0]:
            return []
        ids = list(dict.fromkeys(ids))[: (200 if project.premium else 1)]
        kept = [
            uid
            for uid in ids
            if uid in self.users_by_id
            and self._could_read(project, self.users_by_id[uid], confidential=confidential, author_id=author_id)
        ]
        return kept or None

    def new_issue(
        self,
        project: Project,
        author: User,
        *,
        title: str,
        description: str = "",
        labels: Sequence[str] = (),
        assignee_ids: Sequence[int] = (),
        confidential: bool = False,
        issue_type: str = "issue",
        severity: str = "UNKNOWN",
        created_at: datetime | None = None,
        due_date: str | None = None,
        milestone_id: int | None = None,
        weight: int | None = None,
    ) -> Issue:
        if issue_type not in ISSUE_TYPES:
            raise ApiError.invalid("issue_type")
        if severity.upper() not in SEVERITIES:
            raise ValueError(f"bad severity {severity!r}")
        with self.lock:
            now = as_utc(created_at) if created_at else self.now()
            project.last_iid += 1
            names = [lab.name for n in labels if (lab := self._label(project, n, create=True))]
            assignees = self._filter_assignees(project, assignee_ids, confidential=confidential, author_id=author.id)
            item = Issue(
                id=self._next("issue"),
                iid=project.last_iid,
                project_id=project.id,
                title=title,
                description=description or "",
                author_id=author.id,
                created_at=now,
                updated_at=now,
                confidential=confidential,
                labels=self._merge_labels(project, [], names),
                assignee_ids=assignees or [],
                issue_type=issue_type,
                severity=severity.upper(),
                due_date=due_date,
                # IssuableBaseService#filter_milestone: a milestone of another project is dropped silently.
                milestone_id=milestone_id if any(m.id == milestone_id for m in project.milestones) else None,
                # EE: weights are a licensed feature (issue_weights); Free ignores the parameter.
                weight=weight if project.premium else None,
            )
            self.issues_by_id[item.id] = item
            self._issues_by_iid[(project.id, item.iid)] = item
            self._notes_by_issue[item.id] = []
            changes: dict[str, dict[str, Any]] = {
                key: {"previous": None, "current": value}
                for key, value in (
                    ("author_id", author.id),
                    ("created_at", iso(now)),
                    ("description", item.description),
                    ("id", item.id),
                    ("iid", item.iid),
                    ("project_id", project.id),
                    ("title", title),
                    ("updated_at", iso(now)),
                )
            }
            if item.labels:
                changes["labels"] = {"previous": [], "current": list(item.labels)}
                self._record_label_events(project, item, author, [], item.labels, item.created_at)
            if item.assignee_ids:
                changes["assignees"] = {"previous": [], "current": list(item.assignee_ids)}
            self._emit(Event("issue", "open", project.id, item.id, author.id, changes=changes))
            return item

    def edit_issue(
        self,
        item: Issue,
        actor: User,
        *,
        title: str | None = None,
        description: str | None = None,
        labels: Sequence[str] | None = None,
        add_labels: Sequence[str] | None = None,
        remove_labels: Sequence[str] | None = None,
        assignee_ids: Sequence[int] | None = None,
        state_event: str | None = None,
        confidential: bool | None = None,
        issue_type: str | None = None,
        severity: str | None = None,
        discussion_locked: bool | None = None,
        create_labels: bool = True,
    ) -> dict[str, dict[str, Any]]:
        """Apply an edit like ``Issues::UpdateService``; returns the hook-style ``changes``."""
        with self.lock:
            project = self.projects_by_id[item.project_id]
            before = {
                "title": item.title,
                "description": item.description,
                "labels": list(item.labels),
                "assignees": list(item.assignee_ids),
                "state": item.state,
                "confidential": item.confidential,
                "issue_type": item.issue_type,
                "severity": item.severity,
                "discussion_locked": item.discussion_locked,
                "closed_at": item.closed_at,
            }
            now = self.now()
            if title is not None:
                item.title = title
            if description is not None:
                item.description = description
            if confidential is not None:
                item.confidential = confidential
            if issue_type is not None:
                if issue_type not in ISSUE_TYPES:
                    raise ApiError.invalid("issue_type")
                item.issue_type = issue_type
            if severity is not None:
                if severity.upper() not in SEVERITIES:
                    raise ApiError.invalid("severity")
                item.severity = severity.upper()
            if discussion_locked is not None:
                item.discussion_locked = discussion_locked
            self._edit_labels(project, item, labels, add_labels, remove_labels, create_labels)
            if assignee_ids is not None:
                kept = self._filter_assignees(
                    project, assignee_ids, confidential=item.confidential, author_id=item.author_id
                )
                if kept is not None:
                    item.assignee_ids = kept
            if state_event == "close" and item.state == "opened":
                item.state, item.closed_at, item.closed_by_id = "closed", now, actor.id
            elif state_event == "reopen" and item.state == "closed":
                item.state, item.closed_at, item.closed_by_id = "opened", None, None
            elif state_event not in (None, "close", "reopen"):
                raise ApiError.invalid("state_event")

            changes = self._diff(item, before)
            if not changes:
                return {}
            previous_updated = item.updated_at
            item.updated_at, item.updated_by_id = now, actor.id
            changes["updated_at"] = {"previous": iso(previous_updated), "current": iso(now)}
            changes["updated_by_id"] = {"previous": None, "current": actor.id}
            self._system_notes_for_edit(item, actor, before, changes)
            if "labels" in changes:
                self._record_label_events(project, item, actor, changes["labels"]["previous"], item.labels)
            action = "update"
            if "state_id" in changes:
                action = "close" if item.state == "closed" else "reopen"
            self._emit(Event("issue", action, project.id, item.id, actor.id, changes=changes))
            return changes

    def _edit_labels(
        self,
        project: Project,
        item: Issue,
        labels: Sequence[str] | None,
        add_labels: Sequence[str] | None,
        remove_labels: Sequence[str] | None,
        create: bool,
    ) -> None:
        def known(names: Iterable[str]) -> list[str]:
            return [lab.name for n in names if (lab := self._label(project, n, create=create))]

        if labels is not None:
            item.labels = self._merge_labels(project, [], known(labels))
        if add_labels:
            item.labels = self._merge_labels(project, item.labels, known(add_labels))
        if remove_labels:
            item.labels = [n for n in item.labels if n not in set(remove_labels)]

    @staticmethod
    def _diff(item: Issue, before: dict[str, Any]) -> dict[str, dict[str, Any]]:
        changes: dict[str, dict[str, Any]] = {}
        for key in ("title", "description", "confidential", "discussion_locked", "issue_type"):
            if getattr(item, key) != before[key]:
                changes[key] = {"previous": before[key], "current": getattr(item, key)}
        if sorted(item.labels) != sorted(before["labels"]):
            changes["labels"] = {"previous": before["labels"], "current": list(item.labels)}
        if item.assignee_ids != before["assignees"]:
            changes["assignees"] = {"previous": before["assignees"], "current": list(item.assignee_ids)}
        if item.severity != before["severity"]:
            changes["severity"] = {"previous": before["severity"].lower(), "current": item.severity.lower()}
        if item.state != before["state"]:
            state_id = {"opened": 1, "closed": 2}
            changes["state_id"] = {"previous": state_id[before["state"]], "current": state_id[item.state]}
            changes["closed_at"] = {"previous": iso(before["closed_at"]), "current": iso(item.closed_at)}
        return changes

    def _system_note(self, item: Issue, actor: User, body: str) -> None:
        if self.system_notes:
            self.new_note(item, actor, body, system=True)

    def _system_notes_for_edit(self, item: Issue, actor: User, before: dict[str, Any], changes: dict[str, Any]) -> None:
        project = self.projects_by_id[item.project_id]
        if "title" in changes:
            self._system_note(item, actor, f"changed title from **{before['title']}** to **{item.title}**")
        if "description" in changes:
            self._system_note(item, actor, "changed the description")
        if "labels" in changes:
            added = [n for n in item.labels if n not in before["labels"]]
            removed = [n for n in before["labels"] if n not in item.labels]
            parts = []
            for verb, names in (("added", added), ("removed", removed)):
                if names:
                    refs = " ".join(f"~{project.labels[n].id}" for n in names if n in project.labels)
                    parts.append(f"{verb} {refs} label{'s' if len(names) > 1 else ''}")
            if parts:
                self._system_note(item, actor, " and ".join(parts))
        if "assignees" in changes:
            self._system_note(item, actor, _assignment_note(self, before["assignees"], item.assignee_ids))
        if "state_id" in changes:
            self._system_note(item, actor, "closed" if item.state == "closed" else "reopened")
        if "confidential" in changes:
            text = "made the issue confidential" if item.confidential else "made the issue visible to everyone"
            self._system_note(item, actor, text)
        if "severity" in changes:
            self._system_note(item, actor, f"changed the severity to **{item.severity.title()}**")
        if "issue_type" in changes:
            self._system_note(item, actor, f"changed type from {before['issue_type']} to {item.issue_type}")

    def new_note(
        self,
        item: Issue,
        author: User,
        body: str,
        *,
        internal: bool = False,
        system: bool = False,
        created_at: datetime | None = None,
        discussion: Note | None = None,
        thread: bool = False,
    ) -> Note:
        """A note; ``thread`` starts a discussion, ``discussion`` (a note of one) replies in it."""
        with self.lock:
            now = as_utc(created_at) if created_at else self.now()
            note = Note(self._next("note"), item.id, item.project_id, body, author.id, now, now, system, internal)
            if discussion is not None:
                note.discussion_id, note.threaded = discussion.discussion_id, True
                discussion.threaded = True  # GitLab turns a replied-to comment into a thread
            else:
                note.discussion_id = hashlib.sha1(f"discussion-{note.id}".encode()).hexdigest()
                note.threaded = thread
            self.notes_by_id[note.id] = note
            self._notes_by_issue[item.id].append(note)
            item.updated_at = max(item.updated_at, now)  # notes touch their noteable
            if not system:
                self._emit(Event("note", "create", item.project_id, item.id, author.id, note_id=note.id))
            return note

    def edit_note(self, note: Note, body: str, actor: User) -> bool:
        """Change a note's body; returns whether it changed (GitLab only hooks real changes)."""
        with self.lock:
            if note.body == body:
                return False
            now = self.now()
            note.body, note.updated_at = body, now
            item = self.issues_by_id[note.issue_id]
            item.updated_at = max(item.updated_at, now)
            # GitLab names the note's *author* as the hook's user on an edit, whoever edited it
            # (Notes::UpdateService#execute_note_webhook), so a hook never tells who changed a comment.
            self._emit(Event("note", "update", note.project_id, note.issue_id, note.author_id, note_id=note.id))
            return True

    def delete_note(self, note: Note) -> None:
        with self.lock:
            self.notes_by_id.pop(note.id, None)
            notes = self._notes_by_issue.get(note.issue_id, [])
            if note in notes:
                notes.remove(note)

    def new_link(self, source: Issue, target: Issue, link_type: str, actor: User) -> Link:
        """IssueLinks::CreateService: license check, conflict check, then a two-way relation."""
        with self.lock:
            if link_type not in LINK_TYPES:
                raise ApiError.invalid("link_type")
            if link_type != "relates_to" and not self.projects_by_id[source.project_id].premium:
                raise ApiError.forbidden("Blocked issues not available for current license")
            if any(other.id == target.id for other, _, _ in self.links_of(source)):
                raise ApiError(409, {"message": "Issue(s) already assigned"})
            if source.id == target.id:
                raise ApiError(422, {"message": f"#{target.iid} cannot be added: cannot be related to itself"})
            if link_type == "is_blocked_by":
                source, target, link_type = target, source, "blocks"
            now = self.now()
            link = Link(self._next("link"), source.id, target.id, link_type, now, now)
            self.links_by_id[link.id] = link
            verb_src, verb_dst = {
                "relates_to": ("related to", "related to"),
                "blocks": ("blocking", "blocked by"),
            }[link_type]
            self._system_note(source, actor, f"marked this issue as {verb_src} {self._ref(target, source)}")
            self._system_note(target, actor, f"marked this issue as {verb_dst} {self._ref(source, target)}")
            return link

    def delete_link(self, link: Link, actor: User) -> None:
        with self.lock:
            self.links_by_id.pop(link.id, None)
            source, target = self.issues_by_id[link.source_id], self.issues_by_id[link.target_id]
            self._system_note(source, actor, f"removed the relation with {self._ref(target, source)}")
            self._system_note(target, actor, f"removed the relation with {self._ref(source, target)}")

    def _ref(self, item: Issue, seen_from: Issue) -> str:
        if item.project_id == seen_from.project_id:
            return f"#{item.iid}"
        return f"{self.projects_by_id[item.project_id].path_with_namespace}#{item.iid}"

    # ----------------------------------------------------------------- queries

    def find_issues(
        self,
        viewer: User,
        *,
        project_ids: Iterable[int] | None = None,
        labels: Sequence[str] | None = None,
        state: str = "all",
        iids: Sequence[int] | None = None,
        confidential: bool | None = None,
        issue_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        search: str | None = None,
        author_id: int | None = None,
        assignee_id: int | None = None,
        order_by: str = "created_at",
        sort: str = "desc",
    ) -> list[Issue]:
        with self.lock:
            wanted = set(project_ids) if project_ids is not None else None
            out = []
            for item in self.issues_by_id.values():
                if wanted is not None and item.project_id not in wanted:
                    continue
                if not self.can_read_issue(viewer, item) or not _matches_labels(item, labels):
                    continue
                if state != "all" and item.state != state:
                    continue
                if iids and item.iid not in iids:
                    continue
                if confidential is not None and item.confidential != confidential:
                    continue
                if issue_type and item.issue_type != issue_type:
                    continue
                if not _in_range(item.created_at, created_after, created_before):
                    continue
                if not _in_range(item.updated_at, updated_after, updated_before):
                    continue
                if search and search.lower() not in f"{item.title}\n{item.description}".lower():
                    continue
                if author_id is not None and item.author_id != author_id:
                    continue
                if assignee_id is not None and not _matches_assignee(item, assignee_id):
                    continue
                out.append(item)
            key = "updated_at" if order_by == "updated_at" else "created_at"
            out.sort(key=lambda i: (getattr(i, key), i.id), reverse=(sort != "asc"))
            return out


def _by_iid(item: Issue) -> tuple[int, int]:
    return (item.project_id, item.iid)


def _in_range(value: datetime, after: datetime | None, before: datetime | None) -> bool:
    return (after is None or value >= after) and (before is None or value <= before)


def _matches_labels(item: Issue, labels: Sequence[str] | None) -> bool:
    if not labels:
        return True
    if [n.lower() for n in labels] == ["none"]:
        return not item.labels
    if [n.lower() for n in labels] == ["any"]:
        return bool(item.labels)
    return all(name in item.labels for name in labels)


def _matches_assignee(item: Issue, assignee_id: int) -> bool:
    if assignee_id == 0:  # "None"
        return not item.assignee_ids
    if assignee_id == -1:  # "Any"
        return bool(item.assignee_ids)
    return assignee_id in item.assignee_ids


def _assignment_note(state: GitLabState, before: list[int], after: list[int]) -> str:
    def names(ids: Iterable[int]) -> str:
        handles = [f"@{state.users_by_id[i].username}" for i in ids]
        return handles[0] if len(handles) == 1 else ", ".join(handles[:-1]) + " and " + handles[-1]

    added = [i for i in after if i not in before]
    removed = [i for i in before if i not in after]
    parts = []
    if added:
        parts.append(f"assigned to {names(added)}")
    if removed:
        parts.append(f"unassigned {names(removed)}")
    return " and ".join(parts) or "changed assignees"
