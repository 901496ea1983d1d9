"""The REST v4 routes the simulator serves, with GitLab's permission and validation rules."""

from __future__ import annotations

import re
import zlib
from typing import Any

from . import entities
from .app import ApiResponse, Ctx, Router, as_list, ok
from .commands import Interpretation, interpret
from .records import GUEST, ISSUE_TYPES, LINK_TYPES, PLANNER, ApiError, Issue, Link, Note, Project, User

router = Router()
ISSUE_TYPE_VALUES = tuple(ISSUE_TYPES)


# ----------------------------------------------------------------- helpers


def _project(ctx: Ctx, ref: str | None = None) -> Project:
    project = ctx.state.find_project(ref if ref is not None else ctx.path_params["id"])
    if not ctx.state.can_read_project(ctx.actor, project):
        raise ApiError.not_found("Project")
    return project


def _issue(ctx: Ctx, project: Project | None = None) -> Issue:
    project = project or _project(ctx)
    item = ctx.state.find_issue(project, ctx.path_params["iid"])
    if not ctx.state.can_read_issue(ctx.actor, item):
        raise ApiError.not_found()
    return item


def _can_set_metadata(ctx: Ctx, project: Project) -> bool:
    return ctx.state.access_level(project, ctx.actor) >= PLANNER


def _assignee_ids(ctx: Ctx) -> list[int] | None:
    """``assignee_ids`` (array or CSV), or the older single ``assignee_id``; 0 or "" clears."""
    if ctx.has("assignee_ids"):
        raw = ctx.params["assignee_ids"]
        if raw in ("", None) or raw == []:
            return []
        return ctx.integers("assignee_ids")
    if ctx.has("assignee_id"):
        value = ctx.integer("assignee_id")
        return [] if not value else [value]
    return None


def _title(ctx: Ctx) -> str | None:
    if not ctx.has("title"):
        return None
    title = ctx.text("title") or ""
    if not title.strip():
        raise ApiError(400, {"message": {"title": ["can't be blank"]}})
    if len(title) > 255:
        raise ApiError(400, {"message": {"title": ["is too long (maximum is 255 characters)"]}})
    return title


def _visible_note(ctx: Ctx, project: Project, note: Note) -> bool:
    return not note.internal or ctx.state.access_level(project, ctx.actor) >= PLANNER


def _note_commands(interp: Interpretation) -> ApiResponse:
    return ok({"commands_changes": interp.changes, "summary": interp.messages}, 202)


# ------------------------------------------------------------ users, misc


@router.add("GET", "/version")
def get_version(ctx: Ctx) -> ApiResponse:
    return ok({"version": "18.6.0-ee", "revision": "simgitlab", "enterprise": True})


@router.add("GET", "/user")
def get_current_user(ctx: Ctx) -> ApiResponse:
    return ok(entities.user_full(ctx.state, ctx.actor, current=True))


@router.add("GET", "/users")
def list_users(ctx: Ctx) -> ApiResponse:
    users = sorted(ctx.state.users_by_id.values(), key=lambda u: u.id, reverse=True)
    username = ctx.text("username")
    if username is not None:
        users = [u for u in users if u.username.lower() == username.lower()]
    search = (ctx.text("search") or "").lower()
    if search:
        users = [u for u in users if search in u.username.lower() or search in u.name.lower()]
    return ctx.api.paginate(ctx, users, lambda u: entities.user_basic(ctx.state, u))


@router.add("GET", "/users/:user_id")
def get_user(ctx: Ctx) -> ApiResponse:
    ref = ctx.path_params["user_id"]
    if not ref.isdigit():
        raise ApiError.not_found("User")
    return ok(entities.user_full(ctx.state, ctx.state.find_user(int(ref))))


# ---------------------------------------------------------------- projects


@router.add("GET", "/projects/:id")
def get_project(ctx: Ctx) -> ApiResponse:
    return ok(entities.project(ctx.state, _project(ctx), ctx.actor))


def _members(ctx: Ctx, inherited: bool = False) -> list[tuple[User, int]]:
    project = _project(ctx)
    members = ctx.state.members_of(project) if inherited else project.members
    return sorted(((ctx.state.users_by_id[uid], level) for uid, level in members.items()), key=lambda pair: pair[0].id)


@router.add("GET", "/projects")
def list_projects(ctx: Ctx) -> ApiResponse:
    """Projects the caller can see; ``membership=true``: only those it is a member of (groups included)."""
    found = [p for p in ctx.state.projects_by_id.values() if ctx.state.can_read_project(ctx.actor, p)]
    if ctx.flag("membership", False):
        found = [p for p in found if ctx.state.access_level(p, ctx.actor) > 0]
    minimum = ctx.integer("min_access_level", 0) or 0
    if minimum:
        found = [p for p in found if ctx.state.access_level(p, ctx.actor) >= minimum]
    found.sort(key=lambda p: p.id)
    return ctx.api.paginate(ctx, found, lambda p: entities.project(ctx.state, p, ctx.actor))


@router.add("GET", "/groups/:id")
def get_group(ctx: Ctx) -> ApiResponse:
    """A group (doc/api/groups.md, "Get a single group"): 404 unless the caller can see it. The simulator has no
    group visibility of its own: a group is visible to a member, or when the caller can read a project in it."""
    group = ctx.path_params["id"].strip("/").lower()
    inside = [p for p in ctx.state.projects_by_id.values() if (p.namespace.lower() + "/").startswith(group + "/")]
    member = ctx.actor.id in ctx.state.group_members.get(group, {})
    if not member and not any(ctx.state.can_read_project(ctx.actor, p) for p in inside):
        raise ApiError.not_found("Group")
    return ok({"id": zlib.crc32(group.encode()) % 100_000, "full_path": group, "path": group.rsplit("/", 1)[-1]})


@router.add("GET", "/groups/:id/issues")
def list_group_issues(ctx: Ctx) -> ApiResponse:
    """Issues of every project in the group and its subgroups that the caller can read."""
    group = ctx.path_params["id"].strip("/").lower()
    ids = [p.id for p in ctx.state.projects_by_id.values() if (p.namespace.lower() + "/").startswith(group + "/")]
    if not ids:
        raise ApiError.not_found("Group")
    found = ctx.state.find_issues(ctx.actor, project_ids=ids, **_issue_filters(ctx))
    return ctx.api.paginate(ctx, found, lambda i: entities.issue(ctx.state, i))


@router.add("GET", "/projects/:id/members")
def list_members(ctx: Ctx) -> ApiResponse:
    return _list_members(ctx, _members(ctx))


@router.add("GET", "/projects/:id/members/all")
def list_all_members(ctx: Ctx) -> ApiResponse:
    return _list_members(ctx, _members(ctx, inherited=True))


def _list_members(ctx: Ctx, members: list[tuple[User, int]]) -> ApiResponse:
    query = (ctx.text("query") or "").lower()
    if query:
        members = [(u, lv) for u, lv in members if query in u.username.lower() or query in u.name.lower()]
    return ctx.api.paginate(ctx, members, lambda pair: entities.member(ctx.state, *pair))


@router.add("GET", "/projects/:id/members/:user_id")
def get_member(ctx: Ctx) -> ApiResponse:
    return _get_member(ctx, _members(ctx))


@router.add("GET", "/projects/:id/members/all/:user_id")
def get_any_member(ctx: Ctx) -> ApiResponse:
    return _get_member(ctx, _members(ctx, inherited=True))


def _get_member(ctx: Ctx, members: list[tuple[User, int]]) -> ApiResponse:
    for user, level in members:
        if str(user.id) == ctx.path_params["user_id"]:
            return ok(entities.member(ctx.state, user, level))
    raise ApiError.not_found()


@router.add("GET", "/projects/:id/labels")
def list_labels(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    labels = sorted(project.labels.values(), key=lambda lab: lab.name.lower())
    issues = [i for i in ctx.state.issues_by_id.values() if i.project_id == project.id]
    counts = issues if ctx.flag("with_counts", False) else None
    return ctx.api.paginate(ctx, labels, lambda lab: entities.label(project, lab, counts))


@router.add("GET", "/projects/:id/milestones")
def list_milestones(ctx: Ctx) -> ApiResponse:
    """GitLab's ``GET /projects/:id/milestones`` (doc/api/milestones.md): ``title`` (exact), ``state``
    (``active``/``closed``), ``search``. The project's own milestones only: ``include_ancestors`` finds none
    more here, as the simulator has no group milestones."""
    project = _project(ctx)
    if not ctx.state.can_read_project(ctx.actor, project):
        raise ApiError.not_found("Project")
    title, state = ctx.text("title"), ctx.text("state")
    found = [
        m
        for m in project.milestones
        if (title is None or m.title == title) and (state is None or m.state == state)
    ]
    return ctx.api.paginate(ctx, found, lambda m: entities.milestone(project, m))


_LABEL_COLOR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-zA-Z]+)$")  # hex or a CSS colour name


@router.add("POST", "/projects/:id/labels")
def create_label(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    name = str(ctx.required("name")).strip()
    color = str(ctx.required("color"))
    if ctx.state.access_level(project, ctx.actor) < PLANNER:
        raise ApiError.forbidden()
    if name in project.labels:
        raise ApiError(409, {"message": "Label already exists"})
    if not _LABEL_COLOR.match(color):
        raise ApiError(400, {"message": {"color": ["must be a valid color code"]}})
    created = ctx.state.add_label(project, name, color, ctx.text("description"))
    return ok(created, 201)


@router.add("GET", "/projects/:id/templates/issues")
def list_issue_templates(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    names = sorted(project.templates)
    return ctx.api.paginate(ctx, names, lambda n: {"key": n, "name": n})


@router.add("GET", "/projects/:id/templates/issues/:name")
def get_issue_template(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    name = ctx.path_params["name"]
    if name not in project.templates:
        raise ApiError.not_found("Template")
    return ok({"name": name, "content": project.templates[name]})


# ------------------------------------------------------------------ issues


def _issue_filters(ctx: Ctx) -> dict[str, Any]:
    filters: dict[str, Any] = {
        "labels": ctx.items("labels"),
        "state": ctx.choice("state", ("opened", "closed", "all"), "all"),
        "iids": ctx.integers("iids"),
        "confidential": ctx.flag("confidential"),
        "created_after": ctx.timestamp("created_after"),
        "created_before": ctx.timestamp("created_before"),
        "updated_after": ctx.timestamp("updated_after"),
        "updated_before": ctx.timestamp("updated_before"),
        "search": ctx.text("search"),
        "order_by": ctx.choice(
            "order_by",
            (
                "created_at",
                "updated_at",
                "priority",
                "due_date",
                "relative_position",
                "label_priority",
                "milestone_due",
                "popularity",
                "weight",
                "title",
            ),
            "created_at",
        ),
        "sort": ctx.choice("sort", ("asc", "desc"), "desc"),
    }
    if ctx.has("issue_type"):
        filters["issue_type"] = ctx.choice("issue_type", ISSUE_TYPE_VALUES, "issue")
    if ctx.has("author_id"):
        filters["author_id"] = ctx.integer("author_id")
    elif ctx.has("author_username"):
        filters["author_id"] = _user_id_or_none(ctx, ctx.text("author_username"))
    if ctx.has("assignee_id"):
        raw = (ctx.text("assignee_id") or "").lower()
        filters["assignee_id"] = (
            {"none": 0, "any": -1}.get(raw) if raw in ("none", "any") else ctx.integer("assignee_id")
        )
    elif ctx.has("assignee_username"):
        names = ctx.items("assignee_username") or [""]
        filters["assignee_id"] = _user_id_or_none(ctx, names[0])
    return filters


def _user_id_or_none(ctx: Ctx, username: str | None) -> int:
    try:
        return ctx.state.find_user(username or "").id
    except ApiError:
        return -2  # matches nobody


@router.add("GET", "/projects/:id/issues")
def list_project_issues(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    found = ctx.state.find_issues(ctx.actor, project_ids=[project.id], **_issue_filters(ctx))
    return ctx.api.paginate(ctx, found, lambda i: entities.issue(ctx.state, i))


@router.add("GET", "/issues")
def list_issues(ctx: Ctx) -> ApiResponse:
    scope = ctx.choice("scope", ("created_by_me", "assigned_to_me", "all"), "created_by_me")
    filters = _issue_filters(ctx)
    if scope == "created_by_me":
        filters["author_id"] = ctx.actor.id
    elif scope == "assigned_to_me":
        filters["assignee_id"] = ctx.actor.id
    found = ctx.state.find_issues(ctx.actor, **filters)
    return ctx.api.paginate(ctx, found, lambda i: entities.issue(ctx.state, i))


@router.add("GET", "/projects/:id/issues/:iid")
def get_issue(ctx: Ctx) -> ApiResponse:
    return ok(entities.issue(ctx.state, _issue(ctx)))


@router.add("POST", "/projects/:id/issues")
def create_issue(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    ctx.required("title")
    # Issues::CreateService is a RateLimitedService: scope [project, current_user] (see ratelimits.py)
    ctx.state.rate_limits.check("issues_create", (project.id, ctx.actor.id), ctx.actor.username)
    title = _title(ctx) or ""
    description = ctx.text("description") or ""
    labels = ctx.items("labels") or []
    assignees = _assignee_ids(ctx) or []
    confidential = bool(ctx.flag("confidential", False))
    issue_type = ctx.choice("issue_type", ISSUE_TYPE_VALUES, "issue")
    severity = "UNKNOWN"
    interp = interpret(ctx.state, project, None, ctx.actor, description)
    if interp.commands:
        description = interp.content
        updates = interp.updates
        labels = labels + updates.get("add_labels", [])
        assignees = updates.get("assignee_ids", assignees)
        title = updates.get("title", title)
        confidential = updates.get("confidential", confidential)
        issue_type = updates.get("issue_type", issue_type)
        severity = updates.get("severity", severity)
    if not _can_set_metadata(ctx, project):
        labels, assignees = [], []  # GitLab silently drops metadata a guest may not set
    created_at = ctx.timestamp("created_at") if ctx.state.access_level(project, ctx.actor) >= 50 else None
    milestone_id, weight = (str(ctx.params.get(k, "")) for k in ("milestone_id", "weight"))
    item = ctx.state.new_issue(
        project,
        ctx.actor,
        title=title,
        description=description,
        labels=labels,
        assignee_ids=assignees,
        confidential=confidential,
        issue_type=issue_type,
        severity=severity,
        created_at=created_at,
        due_date=ctx.text("due_date"),
        milestone_id=int(milestone_id) if milestone_id.isdigit() else None,
        weight=int(weight) if weight.isdigit() else None,
    )
    return ok(entities.issue(ctx.state, item), 201)


_EDIT_PARAMS = (
    "title",
    "description",
    "labels",
    "add_labels",
    "remove_labels",
    "assignee_ids",
    "assignee_id",
    "state_event",
    "confidential",
    "issue_type",
    "discussion_locked",
    "due_date",
    "milestone_id",
    "weight",
    "epic_id",
    "updated_at",
)


@router.add("PUT", "/projects/:id/issues/:iid")
def update_issue(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    item = _issue(ctx, project)
    if not any(ctx.has(p) for p in _EDIT_PARAMS):
        raise ApiError(
            400, {"error": ", ".join(_EDIT_PARAMS) + " are missing, at least one parameter must be provided"}
        )
    if not ctx.state.can_update_issue(ctx.actor, item):
        raise ApiError.forbidden()
    edit: dict[str, Any] = {
        "title": _title(ctx),
        "description": ctx.text("description"),
        "confidential": ctx.flag("confidential"),
        "discussion_locked": ctx.flag("discussion_locked"),
    }
    if ctx.has("state_event"):
        edit["state_event"] = ctx.choice("state_event", ("close", "reopen"), "close")
    if ctx.has("issue_type"):
        edit["issue_type"] = ctx.choice("issue_type", ISSUE_TYPE_VALUES, "issue")
    if _can_set_metadata(ctx, project):
        if ctx.has("labels"):
            raw = ctx.params["labels"]
            edit["labels"] = [] if raw in ("", None) else as_list(raw)
        edit["add_labels"] = ctx.items("add_labels")
        edit["remove_labels"] = ctx.items("remove_labels")
        edit["assignee_ids"] = _assignee_ids(ctx)
    if edit["description"] is not None:
        interp = interpret(ctx.state, project, item, ctx.actor, edit["description"])
        edit["description"] = interp.content
        for key, value in interp.updates.items():
            if key in ("add_labels", "remove_labels"):
                edit[key] = (edit.get(key) or []) + value
            else:
                edit[key] = value
    ctx.state.edit_issue(item, ctx.actor, **edit)
    return ok(entities.issue(ctx.state, item))


# ------------------------------------------------------------------- notes


@router.add("GET", "/projects/:id/issues/:iid/resource_label_events")
def list_label_events(ctx: Ctx) -> ApiResponse:
    """lib/api/resource_label_events.rb: the issue's label events, oldest first, paginated."""
    project = _project(ctx)
    item = _issue(ctx, project)
    events = sorted(ctx.state.label_events_of(item), key=lambda e: e.id)
    return ctx.api.paginate(ctx, events, lambda e: entities.label_event(ctx.state, project, e))


@router.add("GET", "/projects/:id/issues/:iid/notes")
def list_notes(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    item = _issue(ctx, project)
    order_by = ctx.choice("order_by", ("created_at", "updated_at"), "created_at")
    descending = ctx.choice("sort", ("asc", "desc"), "desc") == "desc"
    notes = [n for n in ctx.state.notes_of(item) if _visible_note(ctx, project, n)]
    notes.sort(key=lambda n: (getattr(n, order_by), n.id), reverse=descending)
    return ctx.api.paginate(ctx, notes, lambda n: entities.note(ctx.state, n))


@router.add("POST", "/projects/:id/issues/:iid/notes")
def create_note(ctx: Ctx) -> ApiResponse:
    # lib/api/notes.rb: check_rate_limit! :notes_create, scope: current_user, before the noteable is looked up
    ctx.state.rate_limits.check("notes_create", (ctx.actor.id,), ctx.actor.username)
    return _post_note(ctx)


def _post_note(ctx: Ctx, *, thread: bool = False, in_discussion: str | None = None) -> ApiResponse:
    """A new note: top-level, the first of a new thread, or a reply in the discussion ``in_discussion``."""
    project = _project(ctx)
    item = _issue(ctx, project)
    first = _discussion_notes(ctx, project, item, in_discussion)[0] if in_discussion is not None else None
    body = str(ctx.required("body"))
    internal = _note_internal(ctx, project, first, thread=thread)
    if not body.strip():
        raise ApiError.bad_request('Note {:note=>["can\'t be blank"]}')
    if len(body) > 1_000_000:
        raise ApiError.bad_request('Note {:note=>["is too long (maximum is 1000000 characters)"]}')
    interp = interpret(ctx.state, project, item, ctx.actor, body)
    if interp.only_commands:
        ctx.state.edit_issue(item, ctx.actor, create_labels=False, **interp.updates)
        return _note_commands(interp)
    text = interp.content if interp.commands else body
    note = ctx.state.new_note(item, ctx.actor, text, internal=internal, discussion=first, thread=thread)
    if interp.updates:
        ctx.state.edit_issue(item, ctx.actor, create_labels=False, **interp.updates)
    if thread:
        return ok(entities.discussion(ctx.state, [note]), 201)
    return ok(entities.note(ctx.state, note, interp.changes), 201)


def _note_internal(ctx: Ctx, project: Project, first: Note | None, *, thread: bool) -> bool:
    """Whether a new note is internal, as GitLab decides it.

    - Starting a discussion takes no ``internal`` parameter: gitlabhq ``lib/api/discussions.rb`` (POST
      ``:noteable_id/discussions``) passes only the body, type and position on, so the thread is never
      internal, whatever the request says. Only the Notes API (``lib/api/notes.rb``) reads ``internal``
      (and the deprecated ``confidential``).
    - A reply takes its thread's confidentiality, whatever it asks: ``Notes::BuildService#new_note`` sets
      ``note.confidential = parent_confidential`` whenever there is a discussion to reply to.
    - A new comment is internal only if asked and the author may mark notes internal
      (``can_set_confidential``: ``NotePolicy`` enables ``mark_note_as_internal`` from the Reporter role, the
      Planner role since 17.7); anyone else's request is silently ignored.
    """
    if thread:
        return False
    if first is not None:
        return first.internal
    asked = bool(ctx.flag("internal", None) or ctx.flag("confidential", False))
    return asked and ctx.state.access_level(project, ctx.actor) >= PLANNER


def _discussion_notes(ctx: Ctx, project: Project, item: Issue, discussion_id: str) -> list[Note]:
    notes = [
        n for n in ctx.state.notes_of(item) if n.discussion_id == discussion_id and _visible_note(ctx, project, n)
    ]
    if not notes:
        raise ApiError.not_found("Discussion")
    return sorted(notes, key=lambda n: (n.created_at, n.id))


# ------------------------------------------------------------------- discussions


@router.add("GET", "/projects/:id/issues/:iid/discussions")
def list_discussions(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    item = _issue(ctx, project)
    threads: dict[str, list[Note]] = {}
    for n in sorted(ctx.state.notes_of(item), key=lambda n: (n.created_at, n.id)):
        if _visible_note(ctx, project, n):
            threads.setdefault(n.discussion_id, []).append(n)
    return ctx.api.paginate(ctx, list(threads.values()), lambda notes: entities.discussion(ctx.state, notes))


@router.add("GET", "/projects/:id/issues/:iid/discussions/:discussion_id")
def get_discussion(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    item = _issue(ctx, project)
    notes = _discussion_notes(ctx, project, item, str(ctx.path_params["discussion_id"]))
    return ok(entities.discussion(ctx.state, notes))


@router.add("POST", "/projects/:id/issues/:iid/discussions")
def create_discussion(ctx: Ctx) -> ApiResponse:
    return _post_note(ctx, thread=True)


@router.add("POST", "/projects/:id/issues/:iid/discussions/:discussion_id/notes")
def reply_in_discussion(ctx: Ctx) -> ApiResponse:
    return _post_note(ctx, in_discussion=str(ctx.path_params["discussion_id"]))


def _note(ctx: Ctx) -> tuple[Project, Issue, Note]:
    project = _project(ctx)
    item = _issue(ctx, project)
    note = ctx.state.find_note(item, ctx.path_params["note_id"])
    if not _visible_note(ctx, project, note):
        raise ApiError.not_found()
    return project, item, note


@router.add("GET", "/projects/:id/issues/:iid/notes/:note_id")
def get_note(ctx: Ctx) -> ApiResponse:
    return ok(entities.note(ctx.state, _note(ctx)[2]))


@router.add("PUT", "/projects/:id/issues/:iid/notes/:note_id")
def update_note(ctx: Ctx) -> ApiResponse:
    project, item, note = _note(ctx)
    body = str(ctx.required("body"))
    if note.system or not ctx.state.can_admin_note(ctx.actor, note):
        raise ApiError.forbidden()
    interp = interpret(ctx.state, project, item, ctx.actor, body)
    if interp.only_commands:
        # Notes::UpdateService: a body that is only commands deletes the note.
        ctx.state.edit_issue(item, ctx.actor, create_labels=False, **interp.updates)
        ctx.state.delete_note(note)
        return _note_commands(interp)
    ctx.state.edit_note(note, interp.content if interp.commands else body, ctx.actor)
    if interp.updates:
        ctx.state.edit_issue(item, ctx.actor, create_labels=False, **interp.updates)
    return ok(entities.note(ctx.state, note, interp.changes))


@router.add("DELETE", "/projects/:id/issues/:iid/notes/:note_id")
def delete_note(ctx: Ctx) -> ApiResponse:
    _, _, note = _note(ctx)
    if not ctx.state.can_admin_note(ctx.actor, note):
        raise ApiError.forbidden()
    ctx.state.delete_note(note)
    return ok(None, 204)


# ------------------------------------------------------------------- links


@router.add("GET", "/projects/:id/issues/:iid/links")
def list_links(ctx: Ctx) -> ApiResponse:
    item = _issue(ctx)
    return ok(
        [
            entities.related_issue(ctx.state, other, link, link_type)
            for other, link, link_type in ctx.state.links_of(item)
            if ctx.state.can_read_issue(ctx.actor, other)
        ]
    )


@router.add("POST", "/projects/:id/issues/:iid/links")
def create_link(ctx: Ctx) -> ApiResponse:
    project = _project(ctx)
    source = _issue(ctx, project)
    target_project_ref = str(ctx.required("target_project_id"))
    target_iid = ctx.required("target_issue_iid")
    link_type = ctx.choice("link_type", LINK_TYPES, "relates_to")
    target_project = _project(ctx, target_project_ref)
    target = ctx.state.find_issue(target_project, target_iid)
    if not ctx.state.can_read_issue(ctx.actor, target):
        raise ApiError.not_found()
    # GitLab 17.0 lowered linking from Reporter to Guest (doc/user/project/issues/related_issues.md: "You
    # must have at least the Guest role for both projects"; app/services/issue_links/create_service.rb
    # keeps the targets the user may ``admin_issue_link`` and answers 403 with this message).
    if ctx.state.access_level(project, ctx.actor) < GUEST or ctx.state.access_level(target_project, ctx.actor) < GUEST:
        raise ApiError.forbidden("Couldn't link issues. You must have at least the Guest role in both projects.")
    link = ctx.state.new_link(source, target, link_type, ctx.actor)
    return ok(entities.issue_link(ctx.state, link), 201)


def _link(ctx: Ctx) -> Link:
    item = _issue(ctx)
    for _, link, _ in ctx.state.links_of(item):
        if str(link.id) == ctx.path_params["link_id"]:
            return link
    raise ApiError.not_found()


@router.add("GET", "/projects/:id/issues/:iid/links/:link_id")
def get_link(ctx: Ctx) -> ApiResponse:
    return ok(entities.issue_link(ctx.state, _link(ctx)))


@router.add("DELETE", "/projects/:id/issues/:iid/links/:link_id")
def delete_link(ctx: Ctx) -> ApiResponse:
    link = _link(ctx)
    # IssueLinks::DestroyService: ``admin_issue_link`` on both issues (Guest since 17.0).
    ends = (ctx.state.issues_by_id[link.source_id], ctx.state.issues_by_id[link.target_id])
    if any(ctx.state.access_level(ctx.state.projects_by_id[i.project_id], ctx.actor) < GUEST for i in ends):
        raise ApiError.forbidden()
    body = entities.issue_link(ctx.state, link)
    ctx.state.delete_link(link, ctx.actor)
    return ok(body)
