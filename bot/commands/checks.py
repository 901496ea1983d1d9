"""``check-config`` beyond the schema: every template exists, parses and renders for a sample incident."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.config import Config, Problem
from bot.core import bodies, commands
from bot.core.converge import DryRun, converge
from bot.core.model import BotState, IncidentRef, Issue, Note, Observed
from bot.core.policy import plan, plan_observed
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
            final, _ = converge(desired, Observed(incident=incident, orphans_searched=True), cfg, renderer, DryRun())
            quiet = Issue(IncidentRef("sample/project", 2), id=2, title="Low", labels=frozenset({cfg.labels.trigger}))
            converge(plan(quiet, BotState(), cfg, SAMPLE_TIME), Observed(incident=quiet), cfg, renderer, DryRun())
            render_over_time(final, cfg, renderer)
    except Exception as exc:  # any template failure must become one line, not a traceback
        problems.append(str(Problem(cfg.source, "templates", f"rendering a sample incident failed: {exc}")))
    return problems


def render_over_time(observed: Observed, cfg: Config, renderer: TemplateRenderer) -> None:
    """Render the templates of an incident's later life: replies to every command, a reminder, the
    status update, the all clear and the closing note."""
    later = SAMPLE_TIME + timedelta(hours=3)
    said = ["help", "status", "refresh", "snooze 1h", "handoff simoc @sample-user", "nonsense"]
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
        bodies.reminder_body(desired, list(desired.dues), cfg, renderer)
    bodies.all_clear_body(desired, observed, cfg, renderer)
    bodies.closed_body(desired, observed, list(observed.children.values()), cfg, renderer)
