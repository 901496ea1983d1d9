"""Where the bot acts, decided on paths alone: two remits, never one.

* The **incident scope**: the groups and projects the operator named (``scope:`` in the policy, or
  ``INCIDENT_BOT_SCOPE``). Only there is a labelled issue an incident. Being made a member of a project
  never brings it in: anyone who owns a project can add the bot user to it, without any acceptance step.
* The **team projects**: the projects named by the channels' ``project:``. The bot opens and maintains
  children there and nothing else; a labelled issue in a team project is never an incident, even when
  the team project lies inside a group of the incident scope.

An issue the bot user created is one of its children, and never an incident, whatever labels it carries:
GitLab's author field is the bot's own record of creating it, and nobody can edit it.

``bot.gitlab.remit`` adds what only GitLab knows (the project's current path, the bot's membership).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.config import Config
from bot.core.model import Issue

#: Why an issue is not an incident the bot acts on: bounded values, for metrics and log lines.
NO_SCOPE = "no_scope"
NOT_IN_SCOPE = "not_in_scope"
TEAM_PROJECT = "team_project"
BOT_CHILD = "bot_child"

SCOPE_HINT = (
    "set INCIDENT_BOT_SCOPE to the GitLab groups or projects where incidents live (comma-separated full paths, "
    "e.g. INCIDENT_BOT_SCOPE=acme/security-incidents), or scope: in the policy file"
)


def within(path: str, scope: Iterable[str]) -> bool:
    """Whether the project ``path`` is one of ``scope`` or inside one of its groups (paths compare
    case-insensitively, as on GitLab)."""
    lowered = path.lower()
    return any(lowered == s.lower() or lowered.startswith(s.lower() + "/") for s in scope)


def team_projects(cfg: Config) -> frozenset[str]:
    """The team projects (lower-cased): where children may go, where incidents never live."""
    return frozenset(ch.project.lower() for ch in cfg.channels if ch.project)


def outside(path: str, scope: Sequence[str], teams: Iterable[str]) -> tuple[str, str] | None:
    """Why no incident may live in the project ``path`` (a kind and a one-line reason), or None."""
    if not scope:
        return NO_SCOPE, f"no incident scope is configured: {SCOPE_HINT}"
    if path.lower() in {t.lower() for t in teams}:
        return TEAM_PROJECT, (
            f"project {path} is a team project (a channel's project:): the bot opens children there, "
            "incidents there are ignored"
        )
    if not within(path, scope):
        return NOT_IN_SCOPE, f"project {path} is not in the incident scope ({', '.join(scope)})"
    return None


def is_bot_child(issue: Issue, bot: str) -> bool:
    """Whether the bot user created ``issue``: then it is one of its children, never an incident."""
    return bool(issue.author) and issue.author.lower() == bot.lower()

