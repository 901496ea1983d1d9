"""``check-config --live``: every person and group the policy names, checked in GitLab before an incident needs them.

A roster typo (``alcie``) passes the schema; at the incident the role would be pinned to a user who does not
exist. Here each name is looked up once: a user exists and is active, a team handle is a user or a group the
bot can see, and the people the bot assigns are members of the projects they are assigned in. A name GitLab does
not know gets the closest username the bot could find ("did you mean"). Reads only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.config import Config
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabCallError

INACTIVE = {"blocked", "deactivated", "banned", "ldap_blocked", "blocked_pending_approval"}


@dataclass(frozen=True)
class PersonCheck:
    ok: bool
    line: str


@dataclass
class _Named:
    """Where the policy names one person: ``roles[seoc].roster`` ..., whether the bot assigns them, and whether
    a group would do (only a team handle that nobody is assigned through)."""

    where: list[str] = field(default_factory=list)
    assigned: bool = False
    group_ok: bool = True


def named_people(cfg: Config) -> dict[str, _Named]:
    """Every GitLab username (or group path) the policy names, by lower-case name."""
    found: dict[str, _Named] = {}

    def add(name: str | None, where: str, *, assigned: bool = False, group_ok: bool = False) -> None:
        if not name:
            return
        entry = found.setdefault(name.lower().lstrip("@"), _Named())
        entry.where.append(where)
        entry.assigned |= assigned
        entry.group_ok &= group_ok and not assigned

    assigned_teams = {c.assignee.partition(":")[2] for c in cfg.channels if c.assignee.startswith("team:")}
    for role_id, role in cfg.roles.items():
        for name in role.roster:
            add(name, f"roles[{role_id}].roster", assigned=True)
        for override in role.overrides:
            add(override.user, f"roles[{role_id}].overrides", assigned=True)
    for team_id, team in cfg.teams.items():
        # The team's children go to its assignee, else to its handle (bot.core.policy).
        add(team.assignee, f"teams[{team_id}].assignee", assigned=True)
        assigned = team_id in assigned_teams and not team.assignee
        add(team.handle, f"teams[{team_id}].handle", assigned=assigned, group_ok=not assigned)
    for name in cfg.bot.allow_commands_from:
        add(name, "bot.allow_commands_from")
    if cfg.chat is not None:
        for name in cfg.chat.people:
            add(name, "chat.people")
    return found


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean @{close[0]}?)" if close else ""


def people_checks(cfg: Config, client: GitLabClient, projects: Iterable[str] = ()) -> list[PersonCheck]:
    """One line per person or group with a problem, then one line for the rest. ``projects``: where incidents
    are opened (``--project``); the people the bot assigns must be members there. Team projects named by
    channels are checked for the team's assignee."""
    people = named_people(cfg)
    members: dict[str, dict[str, int] | None] = {}

    def members_of(project: str) -> dict[str, int] | None:
        if project.lower() not in members:
            try:
                members[project.lower()] = client.member_levels(project)
            except GitLabCallError as exc:
                if exc.status not in (403, 404):
                    raise
                members[project.lower()] = None  # the channel checks say why the project cannot be read
        return members[project.lower()]

    incident_projects = list(projects)
    known = {u for p in incident_projects if (m := members_of(p)) for u in m}
    out: list[PersonCheck] = []
    users = groups = 0
    for name, named in sorted(people.items()):
        where = ", ".join(named.where)
        user = client.find_user(name)
        if user is None:
            if named.group_ok and client.group_exists(name):
                groups += 1
                continue
            what = "user or group" if named.group_ok else "user"
            out.append(PersonCheck(False, f"{where}: GitLab has no {what} @{name}{_suggest(name, known)}"))
            continue
        state = str(user.get("state") or "active")
        if state in INACTIVE:
            out.append(PersonCheck(False, f"{where}: @{name} is {state} in GitLab; the bot cannot assign them"))
            continue
        users += 1
        if not named.assigned:
            continue
        for project in incident_projects:
            levels = members_of(project)
            if levels is not None and name not in levels:
                why = f"{where}: @{name} is not a member of {project}: GitLab will not assign them there"
                out.append(PersonCheck(False, why))
    for channel in cfg.channels:
        kind, _, team_id = channel.assignee.partition(":")
        team = cfg.teams.get(team_id) if kind == "team" else None
        person = (team.assignee or team.handle) if team else None
        if channel.project and person:
            levels = members_of(channel.project)
            if levels is not None and person.lower() not in levels:
                field_name = "assignee" if team and team.assignee else "handle"
                out.append(
                    PersonCheck(
                        False,
                        f"teams[{team_id}].{field_name}: @{person} is not a member of {channel.project}, "
                        f"where {channel.label} children are opened",
                    )
                )
    checked = f"{users} user{'s' if users != 1 else ''}"
    if groups:
        checked += f" and {groups} group{'s' if groups != 1 else ''}"
    scope = f"; role holders and assignees are members of {', '.join(incident_projects)}" if incident_projects else ""
    hint = "" if incident_projects else " (give --project GROUP/PROJECT to check they are members where incidents live)"
    if not out:
        out.append(PersonCheck(True, f"people: the {checked} the policy names exist and are active{scope}{hint}"))
    return out
