"""The GitLab calls of ``incident-bot init``: the bot's access to a project, its labels, label creation.

Every call goes through the client's :class:`bot.gitlab.callpolicy.CallPolicy`, so retries, rate limits
and errors behave as in the reconciler.
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabCallError

ADMIN = 60


class Label(Protocol):
    """What creating a label needs (``bot.commands.initproject.LabelSpec`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def color(self) -> str: ...
    @property
    def description(self) -> str: ...
CREATE_STEP = "create the label"


def _level(permission: Any) -> int:
    if isinstance(permission, dict):
        value = permission.get("access_level")
        if isinstance(value, int):
            return value
    return 0


class ProjectSetup:
    """``init``'s view of GitLab, over the bot's narrow client."""

    def __init__(self, client: GitLabClient) -> None:
        self.client = client

    def calls(self) -> tuple[int, int]:
        """API requests sent so far through this client's policy, and how many of them were writes."""
        stats = self.client.policy.stats.snapshot()
        writes = sum(n for step, n in stats.attempts_by_step.items() if step.startswith(CREATE_STEP))
        return stats.attempts, writes

    def access_level(self, project: str) -> tuple[str | None, int]:
        """The token user's effective access level on ``project``; 404 if the project does not exist.

        One request, ``GET /projects/:id``, whose ``permissions`` give the direct and the group membership.
        Only when both are empty (access through a group the project is shared with, or an administrator)
        does it ask ``GET /user`` and ``GET /projects/:id/members/all/:user_id``.
        """
        obj = self.client._call("read the project", lambda: self.client._gl().projects.get(project))
        permissions = obj.attributes.get("permissions") or {}
        level = max(_level(permissions.get("project_access")), _level(permissions.get("group_access")))
        if level:
            return None, level
        me = self.client._call("read the bot user", lambda: self.client._gl().http_request("get", "/user")).json()
        if me.get("is_admin"):
            return me.get("username"), ADMIN
        return me.get("username"), self.client.access_level(project, int(me["id"]))

    def labels(self, project: str) -> dict[str, str]:
        """Label name -> colour, the project's and its groups' (GitLab lists both), every page."""
        return self.client.project_labels(project)

    def create_label(self, project: str, spec: Label) -> bool:
        """Create one label; ``False`` when it exists already (made meanwhile, or by a retried attempt).

        Safe to retry ("idempotent"): GitLab refuses a second label of the same name with 409.
        """
        data = {"name": spec.name, "color": spec.color, "description": spec.description}
        try:
            self.client._call(
                f"{CREATE_STEP} {spec.name}",
                lambda: self.client._project(project).labels.create(data),
                write="idempotent",
            )
        except GitLabCallError as exc:
            if exc.status == 409 and not exc.transient:
                return False
            raise
        return True
