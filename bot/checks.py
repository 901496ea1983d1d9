"""``check-config`` beyond the schema: every template exists, parses and renders for a sample incident."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.config import Config, Problem
from bot.core.converge import DryRun, converge
from bot.core.model import BotState, IncidentRef, Issue, Observed
from bot.core.policy import plan
from bot.templates import TemplateRenderer

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
        desired = plan(incident, BotState(), cfg, SAMPLE_TIME)
        converge(desired, Observed(incident=incident, orphans_searched=True), cfg, renderer, DryRun())
        quiet = Issue(IncidentRef("sample/project", 2), id=2, title="Low", labels=frozenset({cfg.labels.trigger}))
        converge(plan(quiet, BotState(), cfg, SAMPLE_TIME), Observed(incident=quiet), cfg, renderer, DryRun())
    except Exception as exc:  # any template failure must become one line, not a traceback
        problems.append(str(Problem(cfg.source, "templates", f"rendering a sample incident failed: {exc}")))
    return problems
