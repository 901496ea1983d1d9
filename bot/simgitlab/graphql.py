"""``POST /api/graphql``: exactly the incident timeline query and mutation the bot sends, with GitLab's rules.

Not a GraphQL engine: the operation is recognised by its root field. What is modelled, from gitlabhq:

- ``app/graphql/types/project_type.rb``: ``project(fullPath:).incidentManagementTimelineEvents(incidentId:)``,
  a connection (``nodes``, ``pageInfo``), events ordered by ``occurredAt`` then id
  (``TimelineEvent.order_occurred_at_asc_id_asc``); readers need ``read_issue``.
- ``app/graphql/mutations/incident_management/timeline_event/create.rb`` and ``base.rb``:
  ``authorize :admin_incident_management_timeline_event``, which ``app/policies/issuable_policy.rb`` grants to
  ``can?(:read_issue) & can?(:developer_access)``; anyone else gets GraphQL's "resource does not exist" error.
- ``app/services/incident_management/timeline_events/create_service.rb``: unknown tag names (other than
  ``TimelineEventTag::PREDEFINED_TAGS``, matched case-insensitively) are refused in the payload's ``errors``:
  "Following tags don't exist: [...]"; the event's author is the caller; ``editable`` is true.
- ``app/models/incident_management/timeline_event.rb``: ``note`` present, at most 10,000 characters.
- The service does not check the issue's type; the simulator does not either.
"""

from __future__ import annotations

import json
from typing import Any

from .app import ApiRequest, ApiResponse
from .clock import iso, parse_time
from .records import DEVELOPER, ApiError, User
from .state import GitLabState

PATH = "/api/graphql"
PREDEFINED_TAGS = (
    "Start time",
    "Impact detected",
    "Response initiated",
    "Impact mitigated",
    "Cause identified",
    "End time",
)
MAX_NOTE = 10_000
NOT_FOUND = (
    "The resource that you are attempting to access does not exist or you don't have permission to perform this action"
)
PAGE = 100


def _error(message: str) -> ApiResponse:
    return ApiResponse(200, {"errors": [{"message": message}]})


def handle(state: GitLabState, actor: User, request: ApiRequest) -> ApiResponse:
    try:
        if request.method == "GET":  # ``config/routes/api.rb``: GET and POST; variables as a JSON string
            params = dict(request.query)
            body = {"query": params.get("query"), "variables": json.loads(params.get("variables") or "{}")}
        else:
            body = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError(400, {"errors": [{"message": "Invalid JSON"}]}) from None
    query = body.get("query") if isinstance(body, dict) else None
    variables = body.get("variables") or {} if isinstance(body, dict) else {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        return _error("No query string was present")
    if request.method == "GET" and query.lstrip().startswith("mutation"):
        return _error("a mutation cannot be sent by GET (the simulator's wording)")
    with state.lock:
        if "timelineEventCreate" in query:
            return _create(state, actor, variables.get("input") or {})
        if "incidentManagementTimelineEvents" in query:
            return _events(state, actor, variables)
        if "project(fullPath" in query:
            return _project(state, actor, variables)
    return _error("the simulated GitLab answers only the incident timeline's query and mutation")


def _readable_project(state: GitLabState, actor: User, path: Any) -> Any:
    try:
        project = state.find_project(str(path))
    except ApiError:
        return None
    return project if state.can_read_project(actor, project) else None


def _project(state: GitLabState, actor: User, variables: dict[str, Any]) -> ApiResponse:
    project = _readable_project(state, actor, variables.get("path"))
    found = {"id": f"gid://gitlab/Project/{project.id}"} if project else None
    return ApiResponse(200, {"data": {"project": found}})


def _issue_id(gid: Any) -> int | None:
    prefix = "gid://gitlab/Issue/"
    if isinstance(gid, str) and gid.startswith(prefix) and gid[len(prefix) :].isdigit():
        return int(gid[len(prefix) :])
    return None


def _node(state: GitLabState, event: dict[str, Any]) -> dict[str, Any]:
    author = state.users_by_id[event["author_id"]]
    return {
        "id": event["id"],
        "note": event["note"],
        "occurredAt": iso(event["occurred_at"]),
        "createdAt": iso(event["created_at"]),
        "action": "comment",
        "editable": True,
        "author": {"username": author.username},
        "timelineEventTags": {"nodes": [{"name": t} for t in event["tags"]]},
    }


def _events(state: GitLabState, actor: User, variables: dict[str, Any]) -> ApiResponse:
    project = _readable_project(state, actor, variables.get("path"))
    if project is None:
        return ApiResponse(200, {"data": {"project": None}})
    issue = state.issues_by_id.get(_issue_id(variables.get("incident")) or 0)
    if issue is None or issue.project_id != project.id or not state.can_read_issue(actor, issue):
        conn = None
    else:
        events = sorted(state.timeline_events.get(issue.id, []), key=lambda e: (e["occurred_at"], e["seq"]))
        start = int(variables.get("after") or 0)
        chunk = events[start : start + PAGE]
        more = start + PAGE < len(events)
        conn = {
            "nodes": [_node(state, e) for e in chunk],
            "pageInfo": {"hasNextPage": more, "endCursor": str(start + PAGE) if more else None},
        }
    return ApiResponse(200, {"data": {"project": {"incidentManagementTimelineEvents": conn}}})


def _create(state: GitLabState, actor: User, args: dict[str, Any]) -> ApiResponse:
    issue = state.issues_by_id.get(_issue_id(args.get("incidentId")) or 0)
    if issue is None or not state.can_read_issue(actor, issue):
        return _error(NOT_FOUND)
    project = state.projects_by_id[issue.project_id]
    if state.access_level(project, actor) < DEVELOPER:
        return _error(NOT_FOUND)
    note, when = args.get("note"), args.get("occurredAt")
    if not isinstance(note, str) or not isinstance(when, str):
        return _error("Variable $input of type TimelineEventCreateInput! was provided invalid value")
    try:
        occurred = parse_time(when)
    except ValueError:
        return _error(f"{when} is not a valid ISO 8601 time")
    tags = [str(t) for t in args.get("timelineEventTagNames") or []]
    known = {t.lower() for t in (*PREDEFINED_TAGS, *state.timeline_tags.get(project.id, set()))}
    unknown = [t for t in tags if t.lower() not in known]
    errors = []
    if unknown:
        errors.append(f"Following tags don't exist: {unknown}")
    elif not note.strip():
        errors.append("Note can't be blank")
    elif len(note) > MAX_NOTE:
        errors.append(f"Note is too long (maximum is {MAX_NOTE} characters)")
    if errors:
        return ApiResponse(200, {"data": {"timelineEventCreate": {"timelineEvent": None, "errors": errors}}})
    seq = sum(len(v) for v in state.timeline_events.values()) + 1
    event = {
        "id": f"gid://gitlab/IncidentManagement::TimelineEvent/{seq}",
        "seq": seq,
        "note": note,
        "occurred_at": occurred,
        "created_at": state.now(),
        "author_id": actor.id,
        "tags": [
            next(p for p in (*PREDEFINED_TAGS, *state.timeline_tags.get(project.id, set())) if p.lower() == t.lower())
            for t in tags
        ],
    }
    state.timeline_events.setdefault(issue.id, []).append(event)
    return ApiResponse(200, {"data": {"timelineEventCreate": {"timelineEvent": _node(state, event), "errors": []}}})
