"""The communications plan as configuration: schema, loading and validation.

The whole policy is data: labels, severities, roles, teams, engagements with their conditions, and
channels with their templates. Everything a user can get wrong here is reported as one line naming the
file, the key path and what was expected (``ConfigError.problems``), never as a traceback.
"""

from __future__ import annotations

from bot.config.approvals import ApprovalPolicy, Quorum
from bot.config.basics import (
    ApiSettings,
    BotSettings,
    LabelSettings,
    Phase,
    SeveritySettings,
    Templates,
    TimelineSettings,
)
from bot.config.chat import DEFAULT_INCIDENT_CHANNELS, INCIDENT_CHANNEL, ChatRoute, ChatSettings, ChatTarget, Route
from bot.config.checks import scope_conflicts, semantic_problems
from bot.config.clocks import Clock, ClockStage, HolidayCalendar
from bot.config.fields import (
    CONTINUOUS,
    ROLE_IDS,
    Cadence,
    Escalation,
    Every,
    GitLabPath,
    GitLabTemplate,
    Label,
    Party,
    RoleId,
    Severity,
    SeverityName,
    gitlab_path,
    parse_duration,
)
from bot.config.loading import load_config, parse_config
from bot.config.people import Override, Role, Rotation, Team
from bot.config.plan import CadenceBounds, CadenceRule, Channel, Condition, Engaged, Engagement, FirstAction, OrderRule
from bot.config.policy import Config
from bot.config.problems import ConfigError, Problem

__all__ = [
    "CONTINUOUS",
    "DEFAULT_INCIDENT_CHANNELS",
    "INCIDENT_CHANNEL",
    "ROLE_IDS",
    "ApiSettings",
    "ApprovalPolicy",
    "BotSettings",
    "Cadence",
    "CadenceBounds",
    "CadenceRule",
    "Channel",
    "ChatRoute",
    "ChatSettings",
    "ChatTarget",
    "Clock",
    "ClockStage",
    "Condition",
    "Config",
    "ConfigError",
    "Engaged",
    "Engagement",
    "Escalation",
    "Every",
    "FirstAction",
    "GitLabPath",
    "GitLabTemplate",
    "HolidayCalendar",
    "Label",
    "LabelSettings",
    "OrderRule",
    "Override",
    "Party",
    "Phase",
    "Problem",
    "Quorum",
    "Role",
    "RoleId",
    "Rotation",
    "Route",
    "Severity",
    "SeverityName",
    "SeveritySettings",
    "Team",
    "Templates",
    "TimelineSettings",
    "gitlab_path",
    "load_config",
    "parse_config",
    "parse_duration",
    "scope_conflicts",
    "semantic_problems",
]
