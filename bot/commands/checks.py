"""``check-config`` beyond the schema: every template exists, parses and renders for a sample incident; with
``--live``, what GitLab says about each channel's team project and template (``live_checks``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.config import Config, Problem
from bot.core import bodies, commands, review
from bot.core.access import REPORTER, link_level, permits
from bot.core.access import level_name as _level_name
from bot.core.converge import DryRun, converge
from bot.core.model import BotState, ChildTarget, IncidentRef, Issue, Note, Observed
from bot.core.policy import plan, plan_observed
from bot.core.teamintent import template_intent
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabCallError
from bot.gitlab.projectsetup import ProjectSetup
from bot.gitlab.targets import MAX_TEMPLATE_CHARS
from bot.gitlab.timeline import probe
from bot.text.hazards import preamble_problem
from bot.text.quickactions import neutralise
from bot.text.templates import TemplateRenderer

SAMPLE_TIME = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def sample_incident(cfg: Config, *, everything: bool = True) -> Issue:
    """An in-scope incident with every flag and channel set, so every template gets rendered."""
    top = max(cfg.severity.labels, key=lambda label: cfg.severity.labels[label])
    labels = {cfg.labels.trigger, top}
    if everything:
        labels |= set(cfg.impact_flags) | {c.label for c in cfg.channels} | {cfg.phases[-1].label}
    return Issue(IncidentRef("sample/project", 1), id=1, title="Sample incident", labels=frozenset(labels))


def check_templates(cfg: Config, renderer: TemplateRenderer) -> list[str]:
    problems = [str(Problem(cfg.source, "templates", p)) for p in renderer.check(cfg.all_template_names())]
    if problems:
        return problems
    incident = sample_incident(cfg)
    try:
        with bodies.strict():  # an unsafe body is a problem to report here, not a notice to post
            desired = plan(incident, BotState(), cfg, SAMPLE_TIME)
            # Channels with a team template render the plan's part after a sample of it (child_plan).
            targets = {
                c.label: ChildTarget(c.label, c.project, template="## Sample team template\n")
                for c in cfg.channels
                if c.gitlab_template
            }
            sample = Observed(incident=incident, orphans_searched=True, targets=targets)
            final, _ = converge(desired, sample, cfg, renderer, DryRun())
            quiet = Issue(IncidentRef("sample/project", 2), id=2, title="Low", labels=frozenset({cfg.labels.trigger}))
            converge(plan(quiet, BotState(), cfg, SAMPLE_TIME), Observed(incident=quiet), cfg, renderer, DryRun())
            render_over_time(final, cfg, renderer)
    except Exception as exc:  # any template failure must become one line, not a traceback
        problems.append(str(Problem(cfg.source, "templates", f"rendering a sample incident failed: {exc}")))
    return problems


def render_over_time(observed: Observed, cfg: Config, renderer: TemplateRenderer) -> None:
    """Render the templates of an incident's later life: replies to every command, a reminder, the
    status update, the all clear, the communications review and the closing note."""
    later = SAMPLE_TIME + timedelta(hours=3)
    said = ["help", "status", "refresh", "report", "snooze 1h", "handoff simoc @sample-user", "done 1", "undo 1",
            "nonsense"]
    notes = [
        Note(n, f"@{cfg.bot.username} {text}", "sample-user", SAMPLE_TIME, author_id=1) for n, text in enumerate(said)
    ]
    pending = tuple(
        replace(c, allowed=True, target_exists=True) for note in notes if (c := commands.parse(note, cfg.bot.username))
    )
    observed = replace(observed, commands=pending)
    desired = plan_observed(observed, cfg, later)
    for verdict in desired.verdicts:
        bodies.reply_body(verdict, desired, observed, cfg, renderer)
    if desired.dues:
        bodies.reminder_body(desired, observed, list(desired.dues), cfg, renderer)
    bodies.all_clear_body(desired, observed, cfg, renderer)
    bodies.review_body(review.review(observed, desired, cfg, ()), observed, cfg, renderer)
    bodies.closed_body(desired, observed, list(observed.children.values()), cfg, renderer)


# ---- check-config --live: what GitLab itself says ---------------------------------------------------------

DEVELOPER_LEVEL = 30
INCIDENTS_NEED = ("create issues", "comment", "link issues", "read confidential issues and internal notes",
                  "label and assign existing issues")
TEAMS_NEED = ("create issues", "link issues", "label and assign existing issues")


@dataclass(frozen=True)
class LiveCheck:
    """One line of ``check-config --live``: what was checked (a channel, later e.g. a Slack workspace)."""

    ok: bool
    line: str


def _access(setup: ProjectSetup, project: str) -> tuple[int | None, str]:
    """The bot user's access level on ``project``, or None and why it cannot be read."""
    try:
        return setup.access_level(project)[1], ""
    except GitLabCallError as exc:
        if exc.status in (403, 404):
            return None, f"the bot user cannot see {project} ({exc.status}: missing, renamed or no access)"
        raise


def _gitlab_major(client: GitLabClient) -> int | None:
    """GitLab's major version (``GET /version``), or None when it does not say."""
    try:
        version = str(client._gl().version()[0])
    except Exception:  # an unknown version only means the older, stricter rule applies
        return None
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def access_checks(
    cfg: Config, level_of: Callable[[str], tuple[int | None, str]], incident_project: str | None, major: int | None
) -> list[LiveCheck]:
    """One line per project the bot works in: the access level GitLab reports for the bot user, what it
    permits of what the bot does there, and whether that is enough."""
    projects: list[tuple[str, tuple[str, ...], str]] = []
    if incident_project:
        projects.append((incident_project, INCIDENTS_NEED, "incidents"))
    for ch in cfg.channels:
        if ch.project and all(ch.project.lower() != p.lower() for p, _, _ in projects):
            projects.append((ch.project, TEAMS_NEED, "children"))
    version = f"GitLab {major}" if major is not None else "GitLab of unknown version"
    out: list[LiveCheck] = []
    for project, needs, role in projects:
        level, why = level_of(project)
        head = f"access[{project}] ({role})"
        if level is None:
            out.append(LiveCheck(False, f"{head}: {why}"))
            continue
        allowed = permits(level, major)
        said = "; ".join(f"{what}: {'yes' if allowed[what] else 'no'}" for what in allowed)
        missing = [what for what in needs if not allowed[what]]
        verdict = "enough" if not missing else f"not enough to {', '.join(missing)}"
        link = f"linking needs {_level_name(link_level(major))} in both projects on {version}"
        out.append(LiveCheck(not missing, f"{head}: {_level_name(level)} ({level}): {said} ({link}); {verdict}"))
    return out


def _quick_actions_note(cfg: Config, text: str) -> str:
    """What becomes of a team template's quick actions: none runs; which the bot would drop, and why (assignees
    and the milestone are checked against GitLab only when a child is opened)."""
    _, actions = neutralise(text)
    if not actions:
        return ""
    intent = template_intent(actions, cfg, cfg.bot.username, datetime.now(UTC).date())
    note = f", {len(actions)} quick action line(s) shown as code, never run"
    if intent.dropped:
        note += "; not applied: " + "; ".join(f"{d.line!r} ({d.why})" for d in intent.dropped)
    return note


def live_checks(cfg: Config, client: GitLabClient, incident_project: str | None = None) -> list[LiveCheck]:
    """For each channel with a team project or template: does the project exist, does it hold the template,
    and may the bot create confidential issues (Reporter or above) and link them to incidents (Reporter or
    above in both projects) there. Reads GitLab, writes nothing: one or two requests per project, one per
    template. ``incident_project``: where incidents are opened, for the links' other end."""
    setup = ProjectSetup(client)
    levels: dict[str, tuple[int | None, str]] = {}

    def level_of(project: str) -> tuple[int | None, str]:
        if project.lower() not in levels:
            levels[project.lower()] = _access(setup, project)
        return levels[project.lower()]

    major = _gitlab_major(client)
    needed = link_level(major)
    out = access_checks(cfg, level_of, incident_project, major)
    for ch in cfg.channels:
        if not ch.project and not ch.gitlab_template:
            continue
        project = ch.project or incident_project
        head = f"channels[{ch.label}]"
        if project is None:
            out.append(
                LiveCheck(
                    True,
                    f"{head}: template {ch.gitlab_template!r} is read from each incident's own "
                    "project (give --project GROUP/PROJECT to check one)",
                )
            )
            continue
        level, why = level_of(project)
        problems: list[str] = []
        found: list[str] = []
        if level is None:
            problems.append(why)
        else:
            found.append(f"the bot user is {_level_name(level)}")
            if level < REPORTER:
                problems.append(
                    f"the bot user is {_level_name(level)} of {project}; it needs Reporter to create "
                    "confidential issues with labels and an assignee and keep them so, and to link them"
                )
            if ch.gitlab_template:
                text = client.issue_template(project, ch.gitlab_template)
                if text is None:
                    problems.append(
                        f"no issue template {ch.gitlab_template!r} in {project} "
                        f"(.gitlab/issue_templates/{ch.gitlab_template}.md on the default branch)"
                    )
                elif len(text) > MAX_TEMPLATE_CHARS:
                    problems.append(f"template {ch.gitlab_template!r} is longer than {MAX_TEMPLATE_CHARS:,} characters")
                elif (problem := preamble_problem(neutralise(text)[0])) is not None:
                    problems.append(f"template {ch.gitlab_template!r} cannot be used: {problem}")
                else:
                    found.append(f"template {ch.gitlab_template!r} found" + _quick_actions_note(cfg, text))
            if incident_project and incident_project.lower() != project.lower():
                other, other_why = level_of(incident_project)
                if other is None:
                    problems.append(other_why)
                elif other < needed:
                    problems.append(
                        f"the bot user is {_level_name(other)} of {incident_project}; linking needs "
                        f"{_level_name(needed)} in both projects"
                    )
        if problems:
            out.append(
                LiveCheck(
                    False,
                    f"{head}: {project}: "
                    + "; ".join(problems)
                    + "; its children will be opened from the bundled template in the incident's project",
                )
            )
        else:
            links = "and link them" if incident_project else f"and link them ({_level_name(needed)} needed on the "
            links += "" if incident_project else "incidents' projects too)"
            out.append(
                LiveCheck(True, f"{head}: {project}: OK ({', '.join(found)}; may create confidential issues {links})")
            )
    return out


def timeline_checks(cfg: Config, client: GitLabClient, incident_project: str | None) -> list[LiveCheck]:
    """One line on the incident's GitLab timeline: whether GitLab's GraphQL API answers for the incidents'
    project (a harmless query, one request) and whether the bot's role lets it add timeline events (Developer:
    gitlabhq ``app/policies/issuable_policy.rb``, ``admin_incident_management_timeline_event``)."""
    if not cfg.timeline.enabled:
        return [LiveCheck(True, "timeline: off (timeline.enabled: false): no timeline event is written")]
    if not incident_project:
        return [LiveCheck(True, "timeline: give --project GROUP/PROJECT to check GitLab's GraphQL API for it")]
    answer = probe(client, incident_project)
    if not answer.ok:
        return [LiveCheck(False, answer.line + "; the incidents' timelines will not be written")]
    level, why = _access(ProjectSetup(client), incident_project)
    if level is None:
        return [LiveCheck(False, f"{answer.line}, but {why}")]
    if level < DEVELOPER_LEVEL:
        return [
            LiveCheck(
                False,
                f"{answer.line}, but the bot user is {_level_name(level)} there: adding timeline events needs "
                "Developer (set timeline.enabled: false to go without)",
            )
        ]
    return [LiveCheck(True, f"{answer.line}; the bot user is {_level_name(level)}: may add timeline events")]
