"""Webhook payloads GitLab (17.x/18.x) sends for issue and note events.

Field names follow the captures in ``tests/payloads/gitlab`` and gitlabhq's
``Gitlab::HookData::IssueBuilder`` / ``Gitlab::DataBuilder::Note``.
"""

from __future__ import annotations

from typing import Any

from .clock import iso
from .entities import avatar_url
from .records import Issue, Label, Note, Project, User
from .state import GitLabState, ProjectRef, UserRef

ISSUE_HOOK, CONFIDENTIAL_ISSUE_HOOK = "Issue Hook", "Confidential Issue Hook"
NOTE_HOOK, CONFIDENTIAL_NOTE_HOOK = "Note Hook", "Confidential Note Hook"
_WORK_ITEM_TYPE = {"issue": "Issue", "incident": "Incident", "test_case": "Test Case", "task": "Task"}


def user_hook_attrs(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "username": user.username,
        "avatar_url": avatar_url(user),
        "email": user.email or "[REDACTED]",
    }


def project_hook_attrs(state: GitLabState, project: Project) -> dict[str, Any]:
    web_url = state.project_web_url(project)
    host = state.base_url.split("://", 1)[-1]
    ssh = f"git@{host}:{project.path_with_namespace}.git"
    return {
        "id": project.id,
        "name": project.path,
        "description": "",
        "web_url": web_url,
        "avatar_url": None,
        "git_ssh_url": ssh,
        "git_http_url": f"{web_url}.git",
        "namespace": project.namespace,
        "visibility_level": {"private": 0, "internal": 10, "public": 20}[project.visibility],
        "path_with_namespace": project.path_with_namespace,
        "default_branch": "main",
        "ci_config_path": "",
        "homepage": web_url,
        "url": ssh,
        "ssh_url": ssh,
        "http_url": f"{web_url}.git",
    }


def label_hook_attrs(label: Label) -> dict[str, Any]:
    return {
        "id": label.id,
        "title": label.name,
        "color": label.color,
        "project_id": label.project_id,
        "created_at": iso(label.created_at),
        "updated_at": iso(label.updated_at),
        "template": False,
        "description": label.description,
        "type": "ProjectLabel",
        "group_id": None,
    }


def issue_hook_attrs(state: GitLabState, item: Issue) -> dict[str, Any]:
    """``object_attributes`` without ``action`` (also the ``issue`` block of note events)."""
    project = state.projects_by_id[item.project_id]
    attrs: dict[str, Any] = {
        "author_id": item.author_id,
        "closed_at": iso(item.closed_at),
        "confidential": item.confidential,
        "created_at": iso(item.created_at),
        "description": item.description,
        "discussion_locked": item.discussion_locked,
        "due_date": item.due_date,
        "id": item.id,
        "iid": item.iid,
        "last_edited_at": None,
        "last_edited_by_id": None,
        "milestone_id": None,
        "moved_to_id": None,
        "duplicated_to_id": None,
        "project_id": item.project_id,
        "relative_position": None,
        "state_id": 1 if item.state == "opened" else 2,
        "time_estimate": 0,
        "title": item.title,
        "updated_at": iso(item.updated_at),
        "updated_by_id": item.updated_by_id,
        "weight": None,
        "health_status": None,
        "type": _WORK_ITEM_TYPE[item.issue_type],
        "url": f"{state.project_web_url(project)}/-/issues/{item.iid}",
        "total_time_spent": 0,
        "time_change": 0,
        "human_total_time_spent": None,
        "human_time_change": None,
        "human_time_estimate": None,
        "assignee_ids": list(item.assignee_ids),
        "assignee_id": item.assignee_ids[0] if item.assignee_ids else None,
        "labels": _labels(project, item.labels),
        "state": item.state,
        "severity": item.severity.lower(),
        "customer_relations_contacts": [],
    }
    if item.issue_type == "incident":
        attrs |= {"escalation_status": "resolved" if item.state == "closed" else "triggered"}
    return attrs


def issue_hook(
    state: GitLabState,
    project: ProjectRef,
    iid: int,
    action: str = "open",
    changes: dict[str, dict[str, Any]] | None = None,
    user: UserRef | None = None,
    *,
    object_kind: str | None = None,
) -> dict[str, Any]:
    """Payload of an Issue Hook; ``changes`` may give labels as names and assignees as ids/usernames.

    ``object_kind`` defaults to "issue"; pass "work_item" to get what GitLab.com sends for many
    incident events.
    """
    with state.lock:
        proj = state.find_project(project)
        item = state.find_issue(proj, iid)
        actor = state.find_user(user if user is not None else item.author_id)
        kind = object_kind or "issue"
        payload: dict[str, Any] = {
            "object_kind": kind,
            "event_type": f"confidential_{kind}" if item.confidential else kind,
            "user": user_hook_attrs(actor),
            "project": project_hook_attrs(state, proj),
            "object_attributes": issue_hook_attrs(state, item) | {"action": action},
            "labels": _labels(proj, item.labels),
            "changes": _hook_changes(state, proj, changes if changes is not None else {}),
            "repository": {
                "name": proj.path,
                "url": project_hook_attrs(state, proj)["url"],
                "description": "",
                "homepage": state.project_web_url(proj),
            },
        }
        if item.assignee_ids:
            payload["assignees"] = [user_hook_attrs(state.users_by_id[i]) for i in item.assignee_ids]
        return payload


def note_hook(
    state: GitLabState,
    project: ProjectRef,
    iid: int,
    note_id: int,
    action: str = "create",
    user: UserRef | None = None,
) -> dict[str, Any]:
    """Payload of a Note Hook for a comment on an issue."""
    with state.lock:
        proj = state.find_project(project)
        item = state.find_issue(proj, iid)
        note: Note = state.find_note(item, note_id)
        actor = state.find_user(user if user is not None else note.author_id)
        url = f"{state.project_web_url(proj)}/-/issues/{item.iid}#note_{note.id}"
        confidential = note.internal or item.confidential
        return {
            "object_kind": "note",
            "event_type": "confidential_note" if confidential else "note",
            "user": user_hook_attrs(actor),
            "project_id": proj.id,
            "project": project_hook_attrs(state, proj),
            "object_attributes": {
                "attachment": None,
                "author_id": note.author_id,
                "change_position": None,
                "commit_id": None,
                "created_at": iso(note.created_at),
                "discussion_id": note.discussion_id,
                "id": note.id,
                "internal": note.internal,
                "line_code": None,
                "note": note.body,
                "noteable_id": item.id,
                "noteable_type": "Issue",
                "original_position": None,
                "position": None,
                "project_id": proj.id,
                "resolved_at": None,
                "resolved_by_id": None,
                "resolved_by_push": None,
                "st_diff": None,
                "system": note.system,
                "type": None,
                "updated_at": iso(note.updated_at),
                "updated_by_id": None,
                "description": note.body,
                "url": url,
                "action": action,
            },
            "repository": {
                "name": proj.path,
                "url": project_hook_attrs(state, proj)["url"],
                "description": "",
                "homepage": state.project_web_url(proj),
            },
            "issue": issue_hook_attrs(state, item),
        }


def issue_event_header(payload: dict[str, Any]) -> str:
    """The ``X-Gitlab-Event`` header GitLab sends with this payload."""
    kind = payload.get("object_kind")
    confidential = str(payload.get("event_type", "")).startswith("confidential_")
    if kind == "note":
        return CONFIDENTIAL_NOTE_HOOK if confidential else NOTE_HOOK
    return CONFIDENTIAL_ISSUE_HOOK if confidential else ISSUE_HOOK


def _labels(project: Project, names: list[str]) -> list[dict[str, Any]]:
    return [label_hook_attrs(project.labels[n]) for n in sorted(names) if n in project.labels]


def _hook_changes(state: GitLabState, project: Project, changes: dict[str, dict[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, pair in changes.items():
        if key == "labels":
            out[key] = {side: _label_list(project, pair.get(side)) for side in ("previous", "current")}
        elif key == "assignees":
            out[key] = {side: _user_list(state, pair.get(side)) for side in ("previous", "current")}
        else:
            out[key] = dict(pair)
    return out


def _label_list(project: Project, values: list[Any] | None) -> list[dict[str, Any]]:
    objects = [v for v in values or [] if isinstance(v, dict)]
    names = [v for v in values or [] if not isinstance(v, dict)]
    return objects + _labels(project, names)


def _user_list(state: GitLabState, values: list[Any] | None) -> list[dict[str, Any]]:
    return [v if isinstance(v, dict) else user_hook_attrs(state.find_user(v)) for v in values or []]
