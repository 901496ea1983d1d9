"""Slack as an :class:`~bot.integrations.base.Integration`: its hooks, each importing its adapter only when
called (``bot.settings`` reads the settings rows through the registry and must not load ``slack_sdk``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.integrations.base import Check, Integration, Item, Outbound
from bot.integrations.slack.facts import LABEL, NAME, slack_facts
from bot.integrations.slack.settings import ROWS

if TYPE_CHECKING:
    from bot.config import Config
    from bot.core.model import Desired, Observed
    from bot.settings import Settings


def enabled(cfg: Config | None, settings: Settings) -> bool:
    """Only with a bot token (a ``chat:`` section is needed too: without one, ``build`` says so and stops)."""
    return bool(settings.slack_bot_token)


def plan(cfg: Config, desired: Desired, observed: Observed) -> Sequence[Item]:
    """The messages the incident calls for, keyed for exactly-once (rendered with the policy's templates)."""
    from bot.integrations.slack.plan import chat_messages
    from bot.integrations.slack.wire import slack_renderer

    return [Item(m.key, m.target, m) for m in chat_messages(cfg, desired, observed, slack_renderer(cfg))]


def build(settings: Settings, cfg: Config, store: Any, *, metrics: Any = None, clock: Any,
          worker_id: str) -> tuple[Outbound | None, Any]:
    """The planner the GitLab worker calls around a reconcile, and the sender of ``slack`` jobs."""
    from bot.integrations.slack.wire import slack

    return slack(settings, cfg, store, metrics=metrics, clock=clock, worker_id=worker_id)


def live_checks(cfg: Config | None, settings: Settings) -> list[Check]:
    """The token, the scope creating incident channels needs, then each configured target: reads only."""
    if cfg is None or cfg.chat is None:
        return []
    from bot.integrations.slack.live import live_checks as check
    from bot.integrations.slack.wire import slack_chat

    create = cfg.chat.private_incident_channel if cfg.chat.create_incident_channel else None
    return [Check(c.ok, c.line) for c in check(slack_chat(settings), cfg.chat.targets(), create_channels=create)]


def not_checked(cfg: Config | None) -> str:
    """Why nothing is checked live though the policy has a section for it."""
    return "SLACK_BOT_TOKEN is not set: the chat: section is not used and Slack is not checked" if (
        cfg is not None and cfg.chat is not None) else ""



SLACK = Integration(
    name=NAME,
    label=LABEL,
    enabled=enabled,
    plan=plan,
    facts=slack_facts,
    build=build,
    settings_rows=ROWS,
    live_checks=live_checks,
    not_checked=not_checked,
    config_section="chat",
)
