"""The whole policy as one validated model (``Config``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from bot import paths
from bot.config.approvals import ApprovalPolicy
from bot.config.basics import (
    ApiSettings,
    BotSettings,
    LabelSettings,
    Phase,
    SeveritySettings,
    Templates,
    TimelineSettings,
)
from bot.config.chat import ChatSettings
from bot.config.clocks import Clock, HolidayCalendar
from bot.config.fields import GitLabPath, Label, RoleId, _Model
from bot.config.people import Role, Team
from bot.config.plan import CadenceBounds, CadenceRule, Channel, Engagement, FirstAction, OrderRule


class Config(_Model):
    bot: BotSettings = Field(default_factory=BotSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    labels: LabelSettings = Field(default_factory=LabelSettings)
    severity: SeveritySettings
    impact_flags: dict[Label, str]
    phases: list[Phase]
    roles: dict[RoleId, Role]
    teams: dict[str, Team]
    first_actions: list[FirstAction] = Field(default_factory=list)
    engagements: list[Engagement]
    channels: list[Channel]
    status_update_points: list[str]
    cadence_bounds: CadenceBounds = Field(default_factory=CadenceBounds)
    cadence_defaults: list[CadenceRule] = Field(default_factory=list)
    comms_order: list[OrderRule] = Field(default_factory=list)
    scope: list[GitLabPath] = Field(
        default_factory=list,
        description="The incident scope: groups or projects (full paths) where incidents live. Only there is a "
        "labelled issue an incident; the bot user must also be a member. INCIDENT_BOT_SCOPE overrides it. Empty: "
        "the services refuse to start.",
    )
    # None: the bundled templates, so a policy file copied anywhere works. A path: the policy's own
    # templates, relative to the policy file; it must then hold every template the policy names.
    templates_dir: str | None = None
    templates: Templates = Field(default_factory=Templates)
    chat: ChatSettings | None = Field(None, description="Slack targets; without it (or a token) nothing goes to Slack.")
    clocks: list[Clock] = Field(default_factory=list)
    # Filled by parse_config from config/calendars: the holiday calendars the clocks name.
    calendars: dict[str, HolidayCalendar] = Field(default_factory=dict, exclude=True)
    timeline: TimelineSettings = Field(default_factory=TimelineSettings)
    integrations: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Each outbound integration's own section, by the integration's name; the integration reads and "
        "checks it (bot/integrations/<name>/).",
    )
    # Sign-off of the channels' drafts (``bot.config.approvals``); off without a matrix.
    approvals: ApprovalPolicy = Field(default_factory=ApprovalPolicy)

    # Filled by load_config: where the file and its templates are.
    source: str = Field("<memory>", exclude=True)
    base_dir: str = Field(".", exclude=True)

    @property
    def template_dir(self) -> Path:
        if self.templates_dir is None:
            return paths.bundled_templates_dir().resolve()
        return (Path(self.base_dir) / self.templates_dir).resolve()

    def phase_index(self, label: str) -> int:
        return [p.label for p in self.phases].index(label)

    def engagement(self, engagement_id: str) -> Engagement | None:
        return next((e for e in self.engagements if e.id == engagement_id), None)

    def clock(self, clock_id: str) -> Clock | None:
        return next((c for c in self.clocks if c.id == clock_id), None)

    def channel(self, label: str) -> Channel | None:
        return next((c for c in self.channels if c.label == label), None)

    def all_template_names(self) -> list[str]:
        names = [n for k, n in self.templates.model_dump().items() if k != "child_plan"]
        # The plan's part of a child from a team's template is needed only when a channel names one, so a
        # policy with its own templates_dir from before gitlab_template keeps working.
        if any(c.gitlab_template for c in self.channels):
            names.append(self.templates.child_plan)
        names += [c.template for c in self.channels]
        return names
