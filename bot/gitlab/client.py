"""The GitLab adapter: the protocols of ``bot.gitlab.ports`` over python-gitlab, every call under ``CallPolicy``.

Each method is one HTTP request (``get_all`` lists are one policy call that may read several pages).
python-gitlab sessions are not documented as thread-safe, so each thread gets its own ``Gitlab``.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import gitlab

from bot.core.model import IncidentRef, Issue, LabelChange, Note
from bot.core.observed import INACTIVE_STATES, issue_from_api, label_change_from_api, note_from_api
from bot.gitlab.callpolicy import CallPolicy
from bot.gitlab.errors import GitLabCallError
from bot.gitlab.ports import ChildFields, IssueListing, RemitProject
from bot.text.hazards import UnsafeOutput, find_hazards, with_preamble

PER_PAGE = 100


class UnsafeBody(RuntimeError):
    """A body that GitLab would run as a quick action: refused before it leaves the process."""


def _refuse_quick_actions(body: str) -> None:
    bad = [h for h in find_hazards(body) if h.kind == "quick_action"]
    if bad:
        raise UnsafeBody(f"refusing to send a body with a quick-action line: {bad[0]}")


def child_body(preamble: str, description: str) -> str:
    """What a child's description is sent as: a team's own template (``preamble``, neutralised already by
    ``bot.text.quickactions``: GitLab would run its quick actions as the bot) followed by the part the bot
    rendered from the incident, which the template may not change (``with_preamble``). Neither may hold a
    quick action."""
    _refuse_quick_actions(description)
    try:
        body = with_preamble(preamble, description) if preamble else description
    except UnsafeOutput as exc:
        raise UnsafeBody(f"refusing to send the child's description: {exc}") from None
    _refuse_quick_actions(body)
    return body


class UserCache:
    """username -> user id, shared by every client of a process (GitLab limits user look-ups).

    Concurrent misses for one name wait for the first look-up instead of sending their own.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int | None] = {}
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Lock] = {}

    def get(self, username: str) -> tuple[bool, int | None]:
        with self._lock:
            key = username.lower()
            return (key in self._ids, self._ids.get(key))

    def put(self, username: str, user_id: int | None) -> None:
        with self._lock:
            self._ids[username.lower()] = user_id

    def get_or_fetch(self, username: str, fetch: Callable[[], int | None]) -> int | None:
        key = username.lower()
        with self._lock:
            if key in self._ids:
                return self._ids[key]
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:
            known, uid = self.get(key)
            if known:
                return uid
            uid = fetch()
            self.put(key, uid)
            return uid


class UpdateVerdicts:
    """(project, note id) -> did that status update count, judged once per process.

    A note's author and time never change, so whether it came from a Reporter (or above) when the bot
    first saw it is settled: later looks at an incident with no new comment cost no access check.
    Bounded: the oldest verdicts are forgotten first (and judged again if ever needed).
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._verdicts: dict[tuple[str, int], bool] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def get(self, project: str, note_id: int) -> bool | None:
        with self._lock:
            return self._verdicts.get((project, note_id))

    def put(self, project: str, note_id: int, counted: bool) -> None:
        with self._lock:
            if len(self._verdicts) >= self._limit:
                self._verdicts.pop(next(iter(self._verdicts)))
            self._verdicts[(project, note_id)] = counted


class GitLabClient:
    def __init__(
        self,
        factory: Callable[[], gitlab.Gitlab],
        policy: CallPolicy,
        *,
        users: UserCache | None = None,
        event_uuid: str | None = None,
        incident: str = "",
        updates: UpdateVerdicts | None = None,
    ) -> None:
        self._factory = factory
        self._local = threading.local()
        self.policy = policy
        self.users = users or UserCache()
        self.updates = updates or UpdateVerdicts()
        self.incident = incident
        # Forwarded on writes so GitLab's recursion guard does not fire the same hook back at us.
        self._headers = {"X-Gitlab-Event-UUID": event_uuid} if event_uuid else {}

    def for_incident(self, incident: str, event_uuid: str | None = None) -> GitLabClient:
        clone = GitLabClient(
            self._factory, self.policy, users=self.users, event_uuid=event_uuid, incident=incident, updates=self.updates
        )
        clone._local = self._local
        return clone

    # ---- plumbing -------------------------------------------------------------------------------
    def _gl(self) -> gitlab.Gitlab:
        gl = getattr(self._local, "gl", None)
        if gl is None:
            gl = self._local.gl = self._factory()
        return gl

    def _project(self, project: str) -> Any:
        return self._gl().projects.get(project, lazy=True)

    def _issue(self, ref: IncidentRef) -> Any:
        return self._project(ref.project).issues.get(ref.iid, lazy=True)

    def _call(self, step: str, fn: Callable[[], Any], write: str = "read", limit: str | None = None) -> Any:
        return self.policy.call(fn, step=step, incident=self.incident, write=write, limit=limit)  # type: ignore[arg-type]

    def _page(self, path: str, query: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        response = self._gl().http_request("get", path, query_data=query)
        try:
            items = response.json()
        except ValueError as exc:
            raise gitlab.GitlabParsingError(error_message=f"not JSON: {exc}") from exc
        if not isinstance(items, list):
            raise gitlab.GitlabParsingError(error_message=f"expected a list from {path}")
        return items, response.headers.get("X-Next-Page", "")

    def _list(self, step: str, path: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every page of a list, as plain dicts, each page under the call policy on its own.

        Plain dicts because building python-gitlab objects costs more CPU than the HTTP; one policy
        call per page so that a fault on page 7 retries page 7, not the whole list.
        """
        items: list[dict[str, Any]] = []
        page = "1"
        while page:
            params = {**(query or {}), "page": page, "per_page": PER_PAGE}
            got, page = self._call(step, functools.partial(self._page, path, params))
            items.extend(got)
        return items

    @staticmethod
    def _issue_path(ref: IncidentRef) -> str:
        return f"/projects/{quote(ref.project, safe='')}/issues/{ref.iid}"

    # ---- reads ----------------------------------------------------------------------------------
    def _get_json(self, step: str, path: str) -> dict[str, Any]:
        """One GET of a single entity, as a plain dict."""

        def get() -> dict[str, Any]:
            data = self._gl().http_request("get", path).json()
            if not isinstance(data, dict):
                raise gitlab.GitlabParsingError(error_message=f"expected an object from {path}")
            return data

        result: dict[str, Any] = self._call(step, get)
        return result

    def project_path(self, project: str) -> str | None:
        """The project's full path as GitLab names it now (a path given may be an old one, redirected), or
        None when the bot user cannot see the project."""
        try:
            data = self._get_json("read the incident's project", f"/projects/{quote(project, safe='')}")
        except GitLabCallError as exc:
            if exc.status == 404:
                return None
            raise
        path = data.get("path_with_namespace")
        return path if isinstance(path, str) else None

    def member_projects(self, min_access_level: int) -> list[RemitProject]:
        """Every unarchived project the bot user is a member of (directly or through a group)."""
        query = {"membership": "true", "min_access_level": min_access_level, "simple": "true", "archived": "false"}
        projects: list[RemitProject] = []
        for item in self._list("list the bot's projects", "/projects", query):
            pid, path, ns = item.get("id"), str(item.get("path_with_namespace") or ""), item.get("namespace") or {}
            if not isinstance(pid, int):
                continue
            group = ns.get("full_path") if isinstance(ns, dict) and ns.get("kind") == "group" else None
            projects.append(RemitProject(pid, path, group if isinstance(group, str) and group else None))
        return projects

    def open_issues(self, where: IssueListing, label: str) -> list[Issue]:
        """Open issues carrying ``label`` in a group (and its subgroups) or a project, last updated first."""
        path = f"/{where.kind}s/{quote(where.path, safe='')}/issues"
        query: dict[str, Any] = {"state": "opened", "labels": label, "order_by": "updated_at"}
        return [issue_from_api(item) for item in self._list("list open incidents", path, query)]

    def bot_issues(self, updated_after: datetime | None) -> list[Issue]:
        """Every issue the bot user created, in any project and state, updated after ``updated_after``: one
        listing (``GET /issues``, whose default scope ``created_by_me`` is the token's user's own issues)."""
        query: dict[str, Any] = {"scope": "created_by_me", "state": "all", "order_by": "updated_at"}
        if updated_after is not None:
            query["updated_after"] = updated_after.isoformat()
        return [issue_from_api(item) for item in self._list("list the bot's children", "/issues", query)]

    def project_labels(self, project: str) -> dict[str, str]:
        """Label name -> colour of a project and its ancestor groups (GitLab lists both), every page."""
        path = f"/projects/{quote(project, safe='')}/labels"
        items = self._list("list the project's labels", path, {"include_ancestor_groups": "true"})
        return {str(item["name"]): str(item.get("color") or "") for item in items if item.get("name")}

    def get_issue(self, ref: IncidentRef) -> Issue:
        obj = self._call("read the incident", lambda: self._project(ref.project).issues.get(ref.iid))
        return issue_from_api(obj.attributes, ref.project)

    def links(self, ref: IncidentRef) -> list[Issue]:
        items = self._list("list the incident's links", f"{self._issue_path(ref)}/links")
        return [issue_from_api(item) for item in items]

    def notes(self, ref: IncidentRef) -> list[Note]:
        """Every comment, oldest first, each with its discussion (the status log is a thread, and a command is
        answered in its own). Read through the Discussions API: as many requests as the Notes API, which does
        not say which thread a comment is in."""
        discussions = self._list("list the incident's comments", f"{self._issue_path(ref)}/discussions")
        notes = [
            note_from_api(item, discussion)
            for discussion in discussions
            for item in discussion.get("notes") or []
            if isinstance(item, dict)
        ]
        return sorted(notes, key=lambda n: n.id)

    def label_events(self, ref: IncidentRef) -> list[LabelChange]:
        """Every label added to or removed from the issue, oldest first (GitLab's resource label events API,
        doc/api/resource_label_events.md: ``GET /projects/:id/issues/:iid/resource_label_events``)."""
        items = self._list("read the incident's label events", f"{self._issue_path(ref)}/resource_label_events")
        found = [c for item in items if (c := label_change_from_api(item)) is not None]
        return sorted(found, key=lambda c: (c.at, c.id))

    def find_issues(
        self, project: str, *, labels: Iterable[str], author: str, created_after: datetime | None
    ) -> list[Issue]:
        query: dict[str, Any] = {"state": "all", "author_username": author}
        if labels := ",".join(labels):
            query["labels"] = labels
        if created_after is not None:
            query["created_after"] = created_after.isoformat()
        items = self._list("search for the bot's child issues", f"/projects/{quote(project, safe='')}/issues", query)
        return [issue_from_api(item, project) for item in items]

    def issue_template(self, project: str, name: str) -> str | None:
        """The text of the issue template ``name`` as ``project`` holds it (``.gitlab/issue_templates/NAME.md``,
        GitLab's ``GET /projects/:id/templates/issues/:name``); None when the project or the template cannot
        be read (missing, renamed, no access) or the answer is not a template."""
        path = f"/projects/{quote(project, safe='')}/templates/issues/{quote(name, safe='')}"
        try:
            data = self._get_json(f"read the issue template {name}", path)
        except GitLabCallError as exc:
            if exc.status in (403, 404):
                return None
            raise
        content = data.get("content")
        return content if isinstance(content, str) else None

    def access_level(self, project: str, user_id: int) -> int:
        """The user's effective access level on the project (0 when not a member)."""
        try:
            member = self._call(
                "check who may command the bot",
                lambda: self._gl().http_request("get", f"/projects/{quote(project, safe='')}/members/all/{user_id}"),
            )
        except GitLabCallError as exc:
            if exc.status == 404:
                return 0
            raise
        data = member.json()
        if str(data.get("state") or "active") in INACTIVE_STATES:
            return 0
        return int(data.get("access_level") or 0)

    def judged_update(self, project: str, note_id: int) -> bool | None:
        """Whether status update ``note_id`` counted, if this process judged it before."""
        return self.updates.get(project, note_id)

    def judge_update(self, project: str, note_id: int, counted: bool) -> None:
        self.updates.put(project, note_id, counted)

    def user_id(self, username: str) -> int | None:
        def fetch() -> int | None:
            found = self._call(
                f"look up user @{username}", lambda: self._gl().users.list(username=username, get_all=False)
            )
            return found[0].id if found else None

        return self.users.get_or_fetch(username, fetch)

    # ---- writes ---------------------------------------------------------------------------------
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
    ) -> Issue:
        data: dict[str, Any] = {
            "title": title,
            "description": child_body(preamble, description),
            "labels": list(labels),
            "confidential": confidential,
            "assignee_ids": assignee_ids,
        }
        if extra is not None:
            fields = {"milestone_id": extra.milestone_id, "due_date": extra.due_date, "weight": extra.weight}
            data.update({k: v for k, v in fields.items() if v is not None})
        obj = self._call(
            "create a child issue",
            lambda: self._project(project).issues.create(data, extra_headers=self._headers),
            write="create",
            limit=f"issues:{project.lower()}",  # GitLab limits issue creation per project and user
        )
        return issue_from_api(obj.attributes, project)

    def link(self, ref: IncidentRef, target: IncidentRef) -> None:
        data = {"target_project_id": target.project, "target_issue_iid": target.iid, "link_type": "relates_to"}
        try:
            self._call(
                f"link #{target.iid} to the incident",
                lambda: self._issue(ref).links.create(data, extra_headers=self._headers),
                write="idempotent",
            )
        except GitLabCallError as exc:
            # A permanent 409 means "already linked", which is what we wanted; a 409 "Resource lock"
            # is transient (the policy retried it) and means the link was not made.
            if exc.status != 409 or exc.transient:
                raise

    def fix_child(
        self, ref: IncidentRef, *, assignee_ids: list[int] | None, confidential: bool, add_labels: Iterable[str]
    ) -> Issue:
        data: dict[str, Any] = {}
        if assignee_ids is not None:
            data["assignee_ids"] = assignee_ids
        if confidential:
            data["confidential"] = True
        labels = list(add_labels)
        if labels:
            data["add_labels"] = ",".join(labels)
        result = self._call(
            f"put child #{ref.iid} back as the plan says",
            lambda: self._project(ref.project).issues.update(ref.iid, data, extra_headers=self._headers),
            write="idempotent",
        )
        return issue_from_api(result, ref.project)

    def label_child(self, ref: IncidentRef, *, add: Iterable[str], remove: Iterable[str]) -> Issue:
        """Add and remove labels of a child in one write (the sign-off label)."""
        data: dict[str, Any] = {}
        if list(add):
            data["add_labels"] = ",".join(add)
        if list(remove):
            data["remove_labels"] = ",".join(remove)
        result = self._call(
            f"label child #{ref.iid}",
            lambda: self._project(ref.project).issues.update(ref.iid, data, extra_headers=self._headers),
            write="idempotent",
        )
        return issue_from_api(result, ref.project)

    def update_description(self, ref: IncidentRef, description: str) -> None:
        """Rewrite an issue's description (a child's names block, ``bot.core.names``). GitLab runs quick actions
        in a description it is sent, as the bot: refused here, whoever wrote the line."""
        _refuse_quick_actions(description)
        self._call(
            f"update the names in child #{ref.iid}",
            lambda: self._project(ref.project).issues.update(
                ref.iid, {"description": description}, extra_headers=self._headers
            ),
            write="idempotent",
        )

    def milestone_id(self, project: str, title: str) -> int | None:
        """GitLab's ``GET /projects/:id/milestones?title=...&include_ancestors=true``: the active milestone of the
        project or its groups with exactly this title."""
        query = {"title": title, "state": "active", "include_ancestors": "true"}
        try:
            found = self._list(f"look up milestone {title}", f"/projects/{quote(project, safe='')}/milestones", query)
        except GitLabCallError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return next((int(m["id"]) for m in found if m.get("title") == title and isinstance(m.get("id"), int)), None)

    def update_issue(
        self, ref: IncidentRef, *, assignee_ids: list[int] | None = None, add_labels: Iterable[str] = ()
    ) -> Issue:
        data: dict[str, Any] = {}
        if assignee_ids is not None:
            data["assignee_ids"] = assignee_ids
        labels = list(add_labels)
        if labels:
            data["add_labels"] = ",".join(labels)
        result = self._call(
            "update the incident",
            lambda: self._project(ref.project).issues.update(ref.iid, data, extra_headers=self._headers),
            write="idempotent",
        )
        return issue_from_api(result, ref.project)

    def create_note(self, ref: IncidentRef, body: str, *, internal: bool = False) -> Note:
        _refuse_quick_actions(body)
        data: dict[str, Any] = {"body": body, "internal": True} if internal else {"body": body}
        obj = self._call(
            "post a comment",
            lambda: self._issue(ref).notes.create(data, extra_headers=self._headers),
            write="create",
            limit="notes",  # GitLab limits the notes API per user, not the discussions API (lib/api/discussions.rb)
        )
        if "id" not in obj.attributes:  # 202: GitLab ran it as commands and saved nothing
            raise UnsafeBody("GitLab treated the comment as quick actions only and saved nothing")
        return note_from_api(obj.attributes)

    def start_thread(self, ref: IncidentRef, body: str, *, internal: bool = False) -> tuple[str, Note]:
        """A comment that starts a thread; returns its discussion id and note.

        GitLab's Discussions API takes no ``internal`` parameter (gitlabhq ``lib/api/discussions.rb``: the
        create endpoint passes only the body, so the thread is never internal); only the Notes API does
        (``lib/api/notes.rb``). So an internal thread starts as an internal comment made with the Notes API,
        which GitLab turns into a thread at its first reply (``Notes::BuildService`` converts an individual
        note to a discussion), every reply taking the thread's confidentiality. The Notes API does not say
        which discussion the comment is in; one read of the discussions finds it.
        """
        _refuse_quick_actions(body)
        if internal:
            note = self.create_note(ref, body, internal=True)
            discussions = self._list("find the internal thread", f"{self._issue_path(ref)}/discussions")
            for discussion in reversed(discussions):
                for item in discussion.get("notes") or []:
                    if isinstance(item, dict) and item.get("id") == note.id:
                        return str(discussion["id"]), note_from_api(item, discussion)
            raise GitLabCallError(
                "find the internal thread", self.incident, 404, "the comment just posted is not listed", False
            )
        obj = self._call(
            "start a thread",
            lambda: self._issue(ref).discussions.create({"body": body}, extra_headers=self._headers),
            write="create",
        )
        notes = obj.attributes.get("notes") or []
        if not notes:
            raise UnsafeBody("GitLab treated the comment as quick actions only and saved nothing")
        return str(obj.attributes["id"]), note_from_api(notes[0], obj.attributes)

    def reply_in_thread(self, ref: IncidentRef, discussion_id: str, body: str) -> Note:
        """A reply in the discussion ``discussion_id``. It is internal exactly when the thread is: GitLab gives a
        reply its thread's confidentiality, whatever the request asks (``Notes::BuildService#new_note``)."""
        _refuse_quick_actions(body)
        discussion = self._issue(ref).discussions.get(discussion_id, lazy=True)
        obj = self._call(
            "reply in a thread",
            lambda: discussion.notes.create({"body": body}, extra_headers=self._headers),
            write="create",
        )
        if "id" not in obj.attributes:
            raise UnsafeBody("GitLab treated the comment as quick actions only and saved nothing")
        return note_from_api(obj.attributes, {"id": discussion_id, "individual_note": False})

    def update_note(self, ref: IncidentRef, note_id: int, body: str) -> Note:
        _refuse_quick_actions(body)
        result = self._call(
            "update the checklist comment",
            lambda: self._issue(ref).notes.update(note_id, {"body": body}, extra_headers=self._headers),
            write="idempotent",
        )
        return note_from_api(result)

    # ---- GraphQL (the incident's timeline) ------------------------------------------------------
    def graphql(self, step: str, query: str, variables: dict[str, Any], *, write: str = "read") -> dict[str, Any]:
        """One request to GitLab's GraphQL API (``/api/graphql``, the same session and token), under the call
        policy; the answer's ``data``. A query goes by GET (``config/routes/api.rb`` routes GET and POST), a
        mutation by POST. A GraphQL error (HTTP 200 with ``errors``) raises ``GitLabCallError``."""

        def send() -> Any:
            gl = self._gl()
            url = f"{gl.url}/api/graphql"
            if write == "read":  # a query by GET: not a write for proxies, logs and retries
                return gl.http_get(url, query_data={"query": query, "variables": json.dumps(variables)})
            return gl.http_post(url, post_data={"query": query, "variables": variables})

        answer = self._call(step, send, write=write)
        if not isinstance(answer, dict):
            raise GitLabCallError(step, self.incident, None, "the GraphQL answer is not an object", False)
        errors = answer.get("errors")
        if errors:
            first = errors[0].get("message") if isinstance(errors[0], dict) else errors[0]
            raise GitLabCallError(step, self.incident, None, f"GraphQL: {str(first)[:200]}", False)
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    # ---- people (check-config --live) -----------------------------------------------------------
    def find_user(self, username: str) -> dict[str, Any] | None:
        """The user named ``username`` (GitLab matches it case-insensitively), with its ``state``; None when
        GitLab has none."""
        found = self._list(f"look up user @{username}", "/users", {"username": username})
        return found[0] if found else None

    def group_exists(self, path: str) -> bool:
        """Whether the bot user can see the group ``path`` (a team handle that is a group)."""
        try:
            self._get_json(f"look up group @{path}", f"/groups/{quote(path, safe='')}")
        except GitLabCallError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def member_levels(self, project: str) -> dict[str, int]:
        """Every member of ``project`` (inherited from its groups too) by username: their access level."""
        members = self._list(f"list the members of {project}", f"/projects/{quote(project, safe='')}/members/all")
        return {
            str(m["username"]).lower(): int(m.get("access_level") or 0)
            for m in members
            if isinstance(m.get("username"), str) and str(m.get("state") or "active") not in INACTIVE_STATES
        }
