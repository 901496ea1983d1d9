"""REST v4 representations (GitLab's Grape entities) of the model's records."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from .clock import iso
from .records import ISSUE_TYPES, Issue, Label, LabelEvent, Link, Milestone, Note, Project, User

if TYPE_CHECKING:
    from .state import GitLabState

_TASK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[([ xX])\]", re.M)


def avatar_url(user: User) -> str:
    digest = hashlib.sha256(user.username.encode()).hexdigest()
    return f"https://www.gravatar.com/avatar/{digest}?s=80&d=identicon"


def user_basic(state: GitLabState, user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "public_email": None,
        "name": user.name,
        "state": user.state,
        "locked": False,
        "avatar_url": avatar_url(user),
        "web_url": f"{state.base_url}/{user.username}",
    }


def user_full(state: GitLabState, user: User, *, current: bool = False) -> dict[str, Any]:
    data = user_basic(state, user) | {
        "created_at": iso(user.created_at),
        "bio": "",
        "bot": user.bot,
        "location": None,
        "job_title": "",
        "organization": None,
    }
    if current:
        data |= {"email": user.email, "is_admin": user.admin, "can_create_project": True}
    return data


def member(state: GitLabState, user: User, access_level: int) -> dict[str, Any]:
    return user_basic(state, user) | {
        "access_level": access_level,
        "created_at": iso(user.created_at),
        "expires_at": None,
        "membership_state": "active",
    }


def project(state: GitLabState, proj: Project, viewer: User | None = None) -> dict[str, Any]:
    web_url = state.project_web_url(proj)
    api = f"{state.base_url}/api/v4/projects/{proj.id}"
    access = proj.members.get(viewer.id) if viewer else None
    group_level = state.group_members.get(proj.namespace.lower(), {}).get(viewer.id) if viewer else None
    return {
        "id": proj.id,
        "description": "",
        "name": proj.path,
        "name_with_namespace": proj.path_with_namespace.replace("/", " / "),
        "path": proj.path,
        "path_with_namespace": proj.path_with_namespace,
        "created_at": iso(proj.created_at),
        "default_branch": "main",
        "visibility": proj.visibility,
        "web_url": web_url,
        "http_url_to_repo": f"{web_url}.git",
        "namespace": {
            "id": proj.id + 100000,
            "name": proj.namespace,
            "path": proj.namespace.rsplit("/", 1)[-1],
            "kind": "group",
            "full_path": proj.namespace,
            "web_url": f"{state.base_url}/groups/{proj.namespace}",
        },
        "issues_enabled": True,
        "archived": False,
        "_links": {
            "self": api,
            "issues": f"{api}/issues",
            "labels": f"{api}/labels",
            "members": f"{api}/members",
        },
        "permissions": {
            "project_access": {"access_level": access, "notification_level": 3} if access else None,
            "group_access": {"access_level": group_level, "notification_level": 3} if group_level else None,
        },
    }


def label_event(state: GitLabState, proj: Project, event: LabelEvent) -> dict[str, Any]:
    """``API::Entities::ResourceLabelEvent`` (doc/api/resource_label_events.md): the label as ``LabelBasic``,
    null once the label is deleted."""
    lab = next((lab for lab in proj.labels.values() if lab.id == event.label_id), None)
    return {
        "id": event.id,
        "user": user_basic(state, state.users_by_id[event.user_id]),
        "created_at": iso(event.created_at),
        "resource_type": "Issue",
        "resource_id": event.issue_id,
        "label": None if lab is None else {
            "id": lab.id, "name": lab.name, "color": lab.color, "description": lab.description,
            "description_html": lab.description or "", "text_color": "#FFFFFF",
        },
        "action": event.action,
    }


def label(proj: Project, lab: Label, issues: list[Issue] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": lab.id,
        "name": lab.name,
        "description": lab.description,
        "description_html": lab.description or "",
        "text_color": "#FFFFFF",
        "color": lab.color,
        "subscribed": False,
        "priority": None,
        "is_project_label": True,
    }
    if issues is not None:
        in_label = [i for i in issues if lab.name in i.labels]
        data |= {
            "open_issues_count": sum(i.state == "opened" for i in in_label),
            "closed_issues_count": sum(i.state == "closed" for i in in_label),
            "open_merge_requests_count": 0,
        }
    return data


def issue(state: GitLabState, item: Issue) -> dict[str, Any]:
    proj = state.projects_by_id[item.project_id]
    assignees = [user_basic(state, state.users_by_id[uid]) for uid in item.assignee_ids]
    api = f"{state.base_url}/api/v4/projects/{proj.id}"
    tasks = _TASK.findall(item.description or "")
    done = sum(t in "xX" for t in tasks)
    closed_by = state.users_by_id.get(item.closed_by_id) if item.closed_by_id else None
    data: dict[str, Any] = {
        "id": item.id,
        "iid": item.iid,
        "project_id": item.project_id,
        "title": item.title,
        "description": item.description,
        "state": item.state,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "closed_at": iso(item.closed_at),
        "closed_by": user_basic(state, closed_by) if closed_by else None,
        "labels": sorted(item.labels),
        "milestone": milestone(proj, found) if (found := state.milestone_of(item)) else None,
        "assignees": assignees,
        "author": user_basic(state, state.users_by_id[item.author_id]),
        "type": ISSUE_TYPES[item.issue_type],
        "assignee": assignees[0] if assignees else None,
        "user_notes_count": state.user_notes_count(item),
        "merge_requests_count": 0,
        "upvotes": 0,
        "downvotes": 0,
        "due_date": item.due_date,
        "confidential": item.confidential,
        "discussion_locked": item.discussion_locked,
        "issue_type": item.issue_type,
        "web_url": f"{state.project_web_url(proj)}/-/issues/{item.iid}",
        "time_stats": {
            "time_estimate": 0,
            "total_time_spent": 0,
            "human_time_estimate": None,
            "human_total_time_spent": None,
        },
        "task_completion_status": {"count": len(tasks), "completed_count": done},
        "has_tasks": bool(tasks),
        "task_status": f"{done} of {len(tasks)} checklist items completed" if tasks else "",
        "_links": {
            "self": f"{api}/issues/{item.iid}",
            "notes": f"{api}/issues/{item.iid}/notes",
            "award_emoji": f"{api}/issues/{item.iid}/award_emoji",
            "project": api,
            "closed_as_duplicate_of": None,
        },
        "references": {
            "short": f"#{item.iid}",
            "relative": f"#{item.iid}",
            "full": f"{proj.path_with_namespace}#{item.iid}",
        },
        "severity": item.severity,
        "moved_to_id": None,
        "imported": False,
        "imported_from": "none",
        "service_desk_reply_to": None,
    }
    if proj.premium:
        data |= {
            "weight": item.weight,
            "epic_iid": None,
            "epic": None,
            "iteration": None,
            "health_status": None,
            "blocking_issues_count": state.blocking_count(item),
        }
    return data


def milestone(project: Project, item: Milestone) -> dict[str, Any]:
    return {
        "id": item.id,
        "iid": item.iid,
        "project_id": project.id,
        "title": item.title,
        "description": None,
        "state": item.state,
        "due_date": None,
        "start_date": None,
        "expired": False,
    }


def related_issue(state: GitLabState, item: Issue, link: Link, link_type: str) -> dict[str, Any]:
    return issue(state, item) | {
        "issue_link_id": link.id,
        "link_type": link_type,
        "link_created_at": iso(link.created_at),
        "link_updated_at": iso(link.updated_at),
    }


def issue_link(state: GitLabState, link: Link) -> dict[str, Any]:
    return {
        "id": link.id,
        "source_issue": issue(state, state.issues_by_id[link.source_id]),
        "target_issue": issue(state, state.issues_by_id[link.target_id]),
        "link_type": link.link_type,
        "link_created_at": iso(link.created_at),
        "link_updated_at": iso(link.updated_at),
    }


def discussion(state: GitLabState, notes: list[Note]) -> dict[str, Any]:
    """A discussion as GitLab's Discussions API shows it: its id and its notes, oldest first."""
    return {
        "id": notes[0].discussion_id,
        "individual_note": not notes[0].threaded,
        "notes": [note(state, n) for n in notes],
    }


def note(state: GitLabState, item: Note, commands_changes: dict[str, Any] | None = None) -> dict[str, Any]:
    parent = state.issues_by_id[item.issue_id]
    return {
        "id": item.id,
        "type": "DiscussionNote" if item.threaded else None,
        "body": item.body,
        "attachment": None,
        "author": user_basic(state, state.users_by_id[item.author_id]),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "system": item.system,
        "noteable_id": item.issue_id,
        "noteable_type": "Issue",
        "project_id": item.project_id,
        "resolvable": False,
        "confidential": item.internal,
        "internal": item.internal,
        "imported": False,
        "imported_from": "none",
        "noteable_iid": parent.iid,
        "commands_changes": commands_changes or {},
    }
