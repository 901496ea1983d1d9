"""A simulated GitLab seeded with the people a config names: for the demo, tests and benchmarks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.config import Config
from bot.core import bodies
from bot.gitlab.callpolicy import CallPolicy
from bot.gitlab.remit import Remit
from bot.reconciler import Reconciler
from bot.simgitlab import SimulatedGitLab
from bot.statekey import derived_key
from bot.text.escape import is_valid_username
from bot.text.markers import StateKey
from bot.text.templates import TemplateRenderer
from bot.wiring import client_from

PROJECT = "acme/security-incidents"
REPORTER = "sam-reporter"


def configured_users(cfg: Config) -> set[str]:
    names = {cfg.bot.username, REPORTER}
    for role in cfg.roles.values():
        names.update(role.roster)
        names.update(o.user for o in role.overrides)
    for team in cfg.teams.values():
        names.update(h for h in (team.handle, team.assignee) if h)
    escalations = [r.escalate_to for r in cfg.roles.values()] + [t.escalate_to for t in cfg.teams.values()]
    escalations += [e.escalate_to for e in cfg.engagements]
    names.update(e for e in escalations if e and ":" not in e)
    return {n for n in names if is_valid_username(n)}


def add_users(sim: SimulatedGitLab, names: Iterable[str]) -> None:
    for name in names:
        try:
            sim.state.add_user(name)
        except Exception:  # already there (the bot user is built in)
            continue


@dataclass
class World:
    sim: SimulatedGitLab
    cfg: Config
    project: str
    project_id: int
    remit: Remit | None = None
    """Shared by the world's reconcilers, as by the jobs of one running process (its answers are cached)."""

    def incident(self, *labels: str, title: str = "Customer data exposed", description: str = "", **kw: Any) -> int:
        issue = self.sim.state.create_issue(
            self.project,
            title,
            labels=(self.cfg.labels.trigger, *labels),
            description=description,
            author=kw.pop("author", REPORTER),
            issue_type=kw.pop("issue_type", "incident"),
            **kw,
        )
        return int(issue["iid"])

    def reconciler(self, policy: CallPolicy | None = None, **kw: Any) -> Reconciler:
        """A reconciler on this world; the default policy has no rate limit worth the name (a simulator)."""
        policy = policy or CallPolicy(rate_per_minute=1_000_000, burst=1000)
        client = client_from(self.sim.url, self.sim.token, policy, timeout=kw.pop("timeout", 5.0))
        # The key a worker with GITLAB_TOKEN and no INCIDENT_BOT_STATE_KEY uses, so both agree.
        kw.setdefault("key", StateKey(derived_key(self.sim.token)))
        kw.setdefault("remit", self.remit)
        return Reconciler(self.cfg, TemplateRenderer([self.cfg.template_dir]), client, **kw)

    def bot_notes(self, iid: int) -> list[dict[str, Any]]:
        notes = self.sim.state.notes(self.project, iid, include_system=False)
        return [n for n in notes if n["author"]["username"] == self.cfg.bot.username]

    def children(self, project: str | None = None) -> list[dict[str, Any]]:
        """The bot's children in ``project`` (default: the incident's)."""
        return [i for i in self.sim.state.issues(project or self.project) if self.cfg.labels.child in i["labels"]]

    def all_children(self) -> list[dict[str, Any]]:
        """The bot's children in every project (a team's project too)."""
        bot = self.cfg.bot.username
        return [
            i
            for p in sorted(self.sim.state.projects_by_id)
            for i in self.sim.state.issues(p)
            if i["author"]["username"] == bot and i["iid"] and "incident-bot:child" in (i["description"] or "")
        ]

    def team_project(
        self, path: str, *, bot_level: int | None = 20, templates: dict[str, str] | None = None, **kw: Any
    ) -> int:
        """A team's own project (e.g. ``marketing/programs``) with its issue templates; the bot user a member
        at ``bot_level`` (None: not a member), the configured people Developers there."""
        members = {name: 30 for name in configured_users(self.cfg) if name != self.cfg.bot.username}
        if bot_level is not None:
            members[self.cfg.bot.username] = bot_level
        pid = int(self.sim.state.add_project(path, members=members, **kw)["id"])
        for name, text in (templates or {}).items():
            self.sim.state.add_issue_template(pid, name, text)
        return pid

    def snapshot(self, iid: int) -> dict[str, Any]:
        """What a person sees on the incident, independent of issue numbers and comment ids."""
        incident = self.sim.state.get_issue(self.project, iid)
        children = {
            (c["project_id"], c["iid"]): c
            for c in self.all_children()
            if f'"incident":{incident["id"]}' in c["description"] and self.cfg.labels.child in c["labels"]
        }
        links = self.sim.state.links(self.project, iid)
        notes = self.bot_notes(iid)
        logged: list[str] = []
        for n in notes:
            logged.extend(bodies.logged_keys(n["body"]))
        by_title = sorted(
            (
                c["title"],
                tuple(sorted(c["labels"])),
                tuple(a["username"] for a in c["assignees"]),
                c["confidential"],
                (c["project_id"], c["iid"]) in {(link["project_id"], link["iid"]) for link in links},
            )
            for c in children.values()
        )
        return {
            "assignees": tuple(a["username"] for a in incident["assignees"]),
            "labels": tuple(sorted(incident["labels"])),
            "children": by_title,
            "links": len(links),
            "checklists": sum(1 for n in notes if bodies.find_checklist_marker(n["body"])),
            "bot_comments": len(notes),
            "logged": sorted(re.sub(r":(\d+/)?\d+$", "", key) for key in logged),
        }


def world(sim: SimulatedGitLab, cfg: Config, *, project: str = PROJECT, tier: str = "free") -> World:
    """The world of ``cfg``; a policy without an incident scope gets the world's project as its scope, as an
    operator sets ``INCIDENT_BOT_SCOPE``."""
    if not cfg.scope:
        cfg = cfg.model_copy(update={"scope": [project]})
    add_users(sim, sorted(configured_users(cfg)))
    members = {name: 30 for name in configured_users(cfg)}
    members[cfg.bot.username] = 40
    pid = int(sim.state.add_project(project, members=members, tier=tier)["id"])
    return World(sim, cfg, project, pid, Remit.for_config(cfg))
