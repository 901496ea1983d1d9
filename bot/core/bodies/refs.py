"""How children and incidents are referred to: keys, references, the children the status log records."""

from __future__ import annotations

from bot.core.model import Issue
from bot.text.escape import UnsafeValue, escape_inline, issue_ref
from bot.text.safe import Safe

#: ``recorded_children`` keys: (project id, iid), the project id None for the incident's own project.
ChildKey = tuple[int | None, int]


def recorded_children(logged: frozenset[str]) -> dict[ChildKey, str]:
    """(project, iid) -> channel of the children the bot's own status log says it opened.

    ``child:LABEL:IID`` for a child in the incident's project (project None), ``child:LABEL:PID/IID`` for one
    in a team's project (project id PID); ``kept:`` likewise.
    """
    out: dict[ChildKey, str] = {}
    for key in logged:
        for prefix in ("child:", "kept:"):
            if key.startswith(prefix):
                label, _, where = key[len(prefix) :].rpartition(":")
                pid, slash, iid = where.rpartition("/")
                if not label or not iid.isdigit() or (slash and not pid.isdigit()):
                    continue
                out.setdefault((int(pid) if slash else None, int(iid)), label)
    return out


def child_key(child: Issue, incident: Issue) -> ChildKey:
    """A child's key in ``recorded_children``."""
    elsewhere = child.project_id is not None and child.project_id != incident.project_id
    return (child.project_id if elsewhere else None, child.ref.iid)


def recorded_channel(recorded: dict[ChildKey, str], child: Issue, incident: Issue) -> str | None:
    return recorded.get(child_key(child, incident))


def _log_id(child: Issue, incident: Issue) -> str:
    """The child's part of its status log keys: ``IID``, or ``PID/IID`` in another project."""
    pid, iid = child_key(child, incident)
    return f"{pid}/{iid}" if pid is not None else str(iid)


def log_id(child: Issue, incident: Issue) -> str:
    """The child's part of its status log keys (``IID``, or ``PID/IID`` in another project)."""
    return _log_id(child, incident)


def _project_path(issue: Issue) -> str | None:
    """The issue's project's full path, when known (GitLab's answer, or the path the bot named it by)."""
    if issue.project_path:
        return issue.project_path
    return issue.ref.project if not issue.ref.project.isdigit() else None


def child_ref(child: Issue, incident: Issue) -> str:
    """``#12`` for a child in the incident's project, ``group/project#12`` for one in a team's project."""
    pid, iid = child_key(child, incident)
    path = _project_path(child)
    same_path = not child.project_path or child.project_path == incident.project_path
    if pid is None and (child.project_id is not None or same_path):
        return issue_ref(iid)
    try:
        return issue_ref(iid, path) if path else escape_inline(f"issue {iid} of project {pid}")
    except UnsafeValue:
        return escape_inline(f"issue {iid} of project {path}")


def _incident_ref_from(incident: Issue, project: str | None) -> Safe:
    """The incident as an issue in ``project`` (None: its own) refers to it."""
    path = _project_path(incident)
    if project is None or path is None or path.lower() == project.lower():
        return Safe(issue_ref(incident.ref.iid))
    try:
        return Safe(issue_ref(incident.ref.iid, path))
    except UnsafeValue:
        return Safe(issue_ref(incident.ref.iid))


def _full_ref(issue: Issue, incident: Issue) -> str:
    """``group/project#12``: a reference that links from any project."""
    path = _project_path(issue) or _project_path(incident)
    try:
        return issue_ref(issue.ref.iid, path) if path else issue_ref(issue.ref.iid)
    except UnsafeValue:
        return issue_ref(issue.ref.iid)


def _ref_text(child: Issue, incident: Issue) -> str:
    """A child's reference as plain text (the template escapes it): ``#12`` or ``group/project#12``."""
    pid, iid = child_key(child, incident)
    path = _project_path(child) if pid is not None else None
    return f"{path}#{iid}" if path else f"#{iid}"
