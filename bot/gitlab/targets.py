"""Where a channel's new child is opened: the team's own project and issue template, read at reconcile time.

A channel may name ``project:`` (the team's project) and ``gitlab_template:`` (an issue template there).
Only for a child about to be created, and once per reconcile: the bot's remit and access level on the
team's project (cached by :class:`bot.gitlab.remit.Remit` for every job of the process), then the template
(one request per distinct project and template). A project outside the remit, where the bot is less than a
Reporter (it could not set labels, assignee or links on a confidential issue), or a template GitLab does not
give (missing, renamed, no access) makes the child fall back to the bundled template in the incident's
project; nothing is written in the team's project then, and the status log says why, once.

A template's quick actions never run as the bot: the text is neutralised (``bot.text.quickactions``) and the
allow-listed part of what the team asked for (``bot.core.teamintent``) is checked here: an assignee must exist
and already be able to read the confidential child (Reporter or above in its project), a milestone must exist
there (one request for each, only when the template names them).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.config import Config
from bot.core.model import ChildTarget, Desired, Dropped, Observed, TemplateIntent
from bot.core.teamintent import template_intent
from bot.gitlab.ports import RemitReads, TeamTemplateReads
from bot.gitlab.remit import Remit
from bot.text.escape import code_span, escape_inline
from bot.text.hazards import preamble_problem
from bot.text.quickactions import QuickAction, neutralise

#: A team template longer than this is not used (GitLab's own limit on a description is 1,048,576).
MAX_TEMPLATE_CHARS = 100_000

#: Creating a confidential issue with labels and an assignee, and linking it, needs Reporter (Planner) or above.
REPORTER = 20


def _fallback(channel: str, project: str, template: str | None, why: str) -> str:
    where = f"{code_span(project)}'s template {code_span(template)}" if template else code_span(project)
    return (
        f"{escape_inline(channel)}: opened from the bundled template in this project instead of {where}: "
        f"{escape_inline(why)}"
    )


def reach(client: RemitReads, remit: Remit, observed: Observed, desired: Desired) -> Observed:
    """``observed`` with a target for each missing child of a channel with a team project: whether the bot
    may act there (remit, Reporter or above). No request when no such child is missing."""
    targets = dict(observed.targets)
    for child in desired.children:
        if child.channel in observed.children or child.channel in targets or not child.project:
            continue
        verdict = remit.verdict(client, child.project)
        if verdict.kind is not None:
            why = verdict.reason
        elif verdict.level < REPORTER:
            why = f"the bot user is only a Guest of {child.project}; it needs the Reporter role there"
        else:
            targets[child.channel] = ChildTarget(child.channel, child.project)
            continue
        fallback = _fallback(child.channel, child.project, child.gitlab_template, why)
        targets[child.channel] = ChildTarget(child.channel, child.project, fallback=fallback, reachable=False)
    return replace(observed, targets=targets)


def _checked(client: TeamTemplateReads, project: str, intent: TemplateIntent, lines: dict[str, str]) -> TemplateIntent:
    """``intent`` with only the assignees who can read the confidential child already and the milestone GitLab
    has in ``project``; the others dropped with the reason. ``lines``: the template line that named each."""
    assignees, dropped = [], list(intent.dropped)
    for user in intent.assignees:
        uid = client.user_id(user)
        line = lines.get(user.lower(), f"/assign @{user}")
        if uid is None:
            dropped.append(Dropped(line, f"@{user}: no such GitLab user"))
        elif client.access_level(project, uid) < REPORTER:
            dropped.append(Dropped(line, f"@{user} is not a Reporter of {project}: assigned, they could read the "
                                         "confidential child"))
        else:
            assignees.append(user)
    milestone_id = None
    if intent.milestone:
        milestone_id = client.milestone_id(project, intent.milestone)
        if milestone_id is None:
            dropped.append(Dropped(lines.get("%milestone", "/milestone"),
                                   f"{project} has no open milestone {intent.milestone!r}"))
    return replace(intent, assignees=tuple(assignees), milestone_id=milestone_id, dropped=tuple(dropped))


def read_templates(
    client: TeamTemplateReads, observed: Observed, desired: Desired, cfg: Config, bot: str
) -> Observed:
    """``observed`` with the team's template for each child still missing after the orphan search: one request
    per distinct (project, template) in this reconcile, none when no such child is missing. The template comes
    without quick actions; what of them the bot applies itself is checked against GitLab here."""
    targets = dict(observed.targets)
    cache: dict[tuple[str, str], str | None] = {}
    incident_project = observed.incident.project_path or observed.incident.ref.project
    for child in desired.children:
        if child.channel in observed.children or not child.gitlab_template:
            continue
        target = targets.get(child.channel) or ChildTarget(child.channel)
        if target.fallback:
            continue
        project = target.project or incident_project
        key = (project.lower(), child.gitlab_template)
        if key not in cache:
            cache[key] = client.issue_template(project, child.gitlab_template)
        text = cache[key]
        actions: list[QuickAction] = []
        if text is None:
            why: str | None = "GitLab has no such template there, or the bot user may not read it"
        elif len(text) > MAX_TEMPLATE_CHARS:
            why = f"it is longer than {MAX_TEMPLATE_CHARS:,} characters"
        else:
            text, actions = neutralise(text)
            why = preamble_problem(text)
        if why or text is None:
            fallback = _fallback(child.channel, project, child.gitlab_template, why or "")
            targets[child.channel] = replace(target, fallback=fallback)
            continue
        today = (desired.now or datetime.now(UTC)).date()
        intent = template_intent(actions, cfg, bot, today)
        # The template line that named each assignee and the milestone, to say which line was dropped.
        named = {u.lower(): a.text.strip() for a in actions if a.name == "assign" for u in _users(a.arg)}
        for action in actions:
            if action.name == "milestone":
                named["%milestone"] = action.text.strip()
        intent = _checked(client, project, intent, named)
        targets[child.channel] = replace(target, template=text, intent=intent)
    return replace(observed, targets=targets)


def _users(arg: str) -> list[str]:
    return [t.removeprefix("@") for t in arg.replace(",", " ").split()]
