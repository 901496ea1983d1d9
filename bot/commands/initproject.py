"""``incident-bot init``: prepare a GitLab project for the bot.

The pure part (which labels the loaded policy relies on, with which colour and description, which of them
are missing, what the webhook must look like) is separate from the GitLab calls, which are in
:mod:`bot.gitlab.projectsetup`. Existing labels are never changed: a team may have chosen their colours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.config import Config, Severity
from bot.errors import UserError
from bot.gitlab.errors import GitLabAuthError, GitLabCallError

REPORTER = 20
"""What GitLab requires for all the bot does where incidents live: read confidential issues and internal notes,
label and assign issues, create labels (``ProjectPolicy``: ``reporter_access``); comments and links need less."""
ACCESS_NAMES = {0: "no access", 5: "Minimal access", 10: "Guest", 15: "Planner", 20: "Reporter", 30: "Developer",
                40: "Maintainer", 50: "Owner", 60: "Admin"}  # fmt: skip

# Severities red -> yellow, most severe first; the trigger a darker red; phases blue, light -> dark in
# their order; channels and the child label purple; impact flags orange.
TRIGGER_COLOR = "#8B0A1A"
SEVERITY_COLORS = {
    Severity.CRITICAL: "#C0392B",
    Severity.HIGH: "#E4572E",
    Severity.MEDIUM: "#F0A30A",
    Severity.LOW: "#F4D03F",
    Severity.UNKNOWN: "#BFBFBF",
}
PHASE_COLORS = ("#A9CCE3", "#5DADE2", "#2E86C1", "#1F618D", "#154360")
CHANNEL_COLOR = "#8E44AD"
CHILD_COLOR = "#5B2C6F"
FLAG_COLOR = "#E67E22"

WEBHOOK_TRIGGERS = ("Issues events", "Confidential issues events", "Comments", "Confidential comments")
WEBHOOK_URL_PLACEHOLDER = "https://<incident-bot host>/webhook"


@dataclass(frozen=True)
class LabelSpec:
    name: str
    color: str
    description: str
    kind: str  # trigger, severity, flag, phase, channel, child


@dataclass(frozen=True)
class LabelPlan:
    """What ``init`` does about labels: create ``missing``, leave ``existing`` (name -> its colour) alone."""

    wanted: tuple[LabelSpec, ...]
    missing: tuple[LabelSpec, ...]
    existing: dict[str, str] = field(default_factory=dict)


def _phase_color(index: int, count: int) -> str:
    if count <= 1:
        return PHASE_COLORS[2]
    step = (len(PHASE_COLORS) - 1) / (count - 1)
    return PHASE_COLORS[round(index * step)]


def wanted_labels(cfg: Config) -> list[LabelSpec]:
    """Every label the bot reads or writes, in the order an operator thinks of them, without duplicates."""
    specs: list[LabelSpec] = [
        LabelSpec(
            cfg.labels.trigger,
            TRIGGER_COLOR,
            "incident-bot handles issues with this label as security incidents: checklist, roles, "
            "child issues, reminders and the status log.",
            "trigger",
        )
    ]
    in_scope = cfg.severity.in_scope_at_least
    ranked = sorted(cfg.severity.labels.items(), key=lambda item: (-int(item[1]), item[0]))
    for name, level in ranked:
        effect = (
            "in scope: the bot runs the communications plan"
            if level >= in_scope
            else "below the plan's scope: the bot posts one out-of-scope note"
        )
        description = f"incident-bot: severity {level.label}; {effect}."
        specs.append(LabelSpec(name, SEVERITY_COLORS[level], description, "severity"))
    for name, meaning in cfg.impact_flags.items():
        specs.append(
            LabelSpec(
                name,
                FLAG_COLOR,
                f"incident-bot impact flag: {meaning}. Engages the teams whose conditions name it.",
                "flag",
            )
        )
    for i, phase in enumerate(cfg.phases):
        specs.append(
            LabelSpec(
                phase.label,
                _phase_color(i, len(cfg.phases)),
                f"incident-bot phase {i + 1}/{len(cfg.phases)}: {phase.name}. The furthest phase present counts.",
                "phase",
            )
        )
    for channel in cfg.channels:
        specs.append(
            LabelSpec(
                channel.label,
                CHANNEL_COLOR,
                f"incident-bot: on the incident, asks for a child issue '{channel.title}'; the bot creates, "
                "assigns and links it.",
                "channel",
            )
        )
    specs.append(
        LabelSpec(
            cfg.labels.child,
            CHILD_COLOR,
            "incident-bot puts this on every child issue it creates (next to its channel label) and finds "
            "its children by it.",
            "child",
        )
    )
    seen: set[str] = set()
    unique = []
    for spec in specs:
        if spec.name not in seen:
            seen.add(spec.name)
            unique.append(spec)
    return unique


def plan_labels(cfg: Config, existing: Mapping[str, str]) -> LabelPlan:
    """``existing`` maps the project's label names (its group's too) to their colours."""
    wanted = tuple(wanted_labels(cfg))
    missing = tuple(s for s in wanted if s.name not in existing)
    kept = {s.name: existing[s.name] for s in wanted if s.name in existing}
    return LabelPlan(wanted, missing, kept)


def access_name(level: int) -> str:
    return f"{ACCESS_NAMES.get(level, 'access level')} ({level})"


def webhook_url(url: str | None) -> str:
    """The URL to enter: ``--url`` as given (``/webhook`` added to a bare host), else a placeholder."""
    if not url:
        return WEBHOOK_URL_PLACEHOLDER
    url = url.strip()
    if urlsplit(url).path in ("", "/"):
        return url.rstrip("/") + "/webhook"
    return url


def webhook_lines(url: str | None, *, secret_is_set: bool) -> list[str]:
    """The webhook settings to enter in GitLab. The secret's value is never printed."""
    secret = "the value of GITLAB_WEBHOOK_SECRET" + (
        " (set in this shell; not shown)"
        if secret_is_set
        else " (not set here: pick one, e.g. `openssl rand -hex 32`, and give the bot the same value)"
    )
    return [
        "Webhook: Settings -> Webhooks -> Add new webhook (or the group's, to cover every project):",
        f"  URL                     {webhook_url(url)}",
        f"  Secret token            {secret}",
        f"  Trigger                 {', '.join(WEBHOOK_TRIGGERS)}; nothing else",
        "  SSL verification        enabled",
        "  More: docs/webhook-setup.md",
    ]


TEAM_WEBHOOK_TRIGGERS = ("Issues events", "Confidential issues events")


def team_webhook_lines(cfg: Config, url: str | None) -> list[str]:
    """The webhook for each team project (a channel's ``project:``), and what it brings: a child there closed
    or reopened is ticked on its incident within seconds; without it, at the next sweep."""
    from bot.core.scope import team_projects

    teams = sorted({ch.project for ch in cfg.channels if ch.project and ch.project.lower() in team_projects(cfg)})
    if not teams:
        return []
    lines = [
        "Team projects: the same webhook on each (Settings -> Webhooks), so a child closed or reopened there is "
        "ticked on its incident's checklist within seconds; without it, at the next sweep "
        "(INCIDENT_BOT_SWEEP_SECONDS):"
    ]
    for project in teams:
        lines.append(f"  {project:<23} URL {webhook_url(url)}, the same secret token; "
                     f"trigger: {', '.join(TEAM_WEBHOOK_TRIGGERS)}; nothing else")
    return lines


def scope_lines(cfg: Config, project: str) -> list[str]:
    """Whether ``project`` is inside the incident scope ``cfg`` acts in, and the line to add when it is not.
    ``cfg`` carries the effective scope (``INCIDENT_BOT_SCOPE`` over the policy's ``scope:``)."""
    from bot.core.scope import team_projects, within

    shown = project if not project.isdigit() else "<the project's full path>"
    if project.lower() in team_projects(cfg):
        return [
            f"Incident scope: {project} is a team project (a channel's project:): the bot opens children there and "
            "ignores incidents there; hold incidents in another project"
        ]
    if cfg.scope and within(project, cfg.scope):
        return [f"Incident scope: {project} is inside it ({', '.join(cfg.scope)}): OK"]
    scope = ",".join([*cfg.scope, shown])
    return [
        f"Incident scope: {project} is not in it, so the bot ignores incidents there; add it to the bot's "
        "environment (the services refuse to start without a scope):",
        f"  INCIDENT_BOT_SCOPE={scope}",
        f"  (or in the policy file: scope: [{', '.join([*cfg.scope, shown])}])",
    ]


# ------------------------------------------------------------------------------------------------ I/O


class SetupGitLab(Protocol):
    """The few calls ``init`` makes (see :class:`bot.gitlab.projectsetup.ProjectSetup`)."""

    def access_level(self, project: str) -> tuple[str | None, int]: ...
    def labels(self, project: str) -> dict[str, str]: ...
    def create_label(self, project: str, spec: LabelSpec) -> bool: ...


@dataclass
class InitReport:
    project: str
    access: int
    plan: LabelPlan
    created: list[str] = field(default_factory=list)
    raced: list[str] = field(default_factory=list)  # created by someone else between listing and creating


def explain(exc: GitLabCallError, project: str, gitlab_url: str) -> UserError:
    """One line with what is wrong and what to do, for the failures an operator meets at set-up."""
    if isinstance(exc, GitLabAuthError) or exc.status == 401:
        return UserError(
            f"GITLAB_TOKEN was rejected by {gitlab_url} (401): it is expired, revoked or lacks the api scope; "
            "create a new token for the bot user"
        )
    if exc.status == 404:
        return UserError(
            f"project {project} not found on {gitlab_url} (404): check GROUP/PROJECT, and that the bot user "
            "is a member (a private project is invisible to others)"
        )
    if exc.status == 403:
        return UserError(
            f"GitLab refused {exc.step} on {project} (403): give the bot user the Reporter role (or higher) "
            "on the project or its group, and a token with the api scope"
        )
    if exc.status is None:
        return UserError(f"cannot reach GITLAB_URL {gitlab_url}: {exc.message}; check the URL and the network")
    return UserError(f"{project}: {exc.step} failed: {exc.status} {exc.message}")


def run_init(
    gl: SetupGitLab,
    cfg: Config,
    project: str,
    *,
    apply: bool,
    gitlab_url: str,
    out: Callable[[str], Any] = print,
) -> InitReport:
    """Check access, list labels, create the missing ones when ``apply``; print what happened.

    API calls: one project read (access), one labels listing (one request per 100 labels), and, with
    ``apply``, one create per missing label. Raises :class:`UserError` with one line on failure.
    """
    try:
        username, level = gl.access_level(project)
        who = f"the bot user @{username}" if username else "the bot user (GITLAB_TOKEN's)"
        if level < REPORTER:
            raise UserError(
                f"{who} has {access_name(level)} on {project}; it needs Reporter (20) or higher: "
                "add it as a member of the project or its group"
            )
        out(f"{project}: {who} has {access_name(level)}: OK (Reporter or higher is needed)")
        plan = plan_labels(cfg, gl.labels(project))
        report = InitReport(project, level, plan)
        out(f"Labels the policy relies on: {len(plan.wanted)}, of which {len(plan.missing)} missing")
        width = max((len(s.name) for s in plan.wanted), default=0)
        for spec in plan.wanted:
            if spec.name in plan.existing:
                out(f"  exists        {spec.name:<{width}}  left as it is (colour {plan.existing[spec.name]})")
                continue
            verb = "would create" if not apply else "creating    "
            out(f"  {verb}  {spec.name:<{width}}  {spec.color}  {spec.description}")
            if apply:
                if gl.create_label(project, spec):
                    report.created.append(spec.name)
                else:
                    report.raced.append(spec.name)
    except GitLabCallError as exc:
        raise explain(exc, project, gitlab_url) from None
    if not plan.missing:
        out("Nothing to create: every label exists.")
    elif apply:
        extra = f" ({len(report.raced)} appeared meanwhile and were left alone)" if report.raced else ""
        out(f"Created {len(report.created)} labels{extra}.")
    else:
        out(f"Dry run: nothing was changed. Run again with --apply to create the {len(plan.missing)} missing labels.")
    return report

