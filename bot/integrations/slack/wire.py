"""Assembles the Slack side from the settings and the policy: its renderer, its Web API adapter, the planner the
GitLab worker calls and the worker that sends. Called through ``bot.wiring`` (and the Slack integration's
``build``); imports ``slack_sdk`` and Jinja2 only when called."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Config
    from bot.integrations.slack.job import SlackPlanner, SlackWorker
    from bot.integrations.slack.ports import ChatPort
    from bot.integrations.slack.render import SlackRenderer
    from bot.integrations.slack.slackapi import SlackChat
    from bot.metrics import Metrics
    from bot.settings import Settings

log = logging.getLogger("bot.service")


def slack_renderer(cfg: Config) -> SlackRenderer:
    """The policy's own ``slack/`` templates first, then the bundled ones."""
    from bot import paths
    from bot.integrations.slack.render import SlackRenderer

    return SlackRenderer([cfg.template_dir, paths.bundled_templates_dir()])


def slack_chat(settings: Settings) -> SlackChat:
    """The Slack Web API adapter (``slack_sdk``); imported only when Slack is configured."""
    from bot.integrations.slack.slackapi import SlackChat

    return SlackChat(settings.slack_bot_token or "", settings.slack_api_url)


def slack(
    settings: Settings,
    cfg: Config,
    store: Any,
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime],
    worker_id: str,
    port: Callable[[], ChatPort] | None = None,
) -> tuple[SlackPlanner | None, SlackWorker | None]:
    """The Slack side, or ``(None, None)``: without ``SLACK_BOT_TOKEN`` or a ``chat:`` section nothing of it runs."""
    if not settings.slack_bot_token:
        return None, None
    if cfg.chat is None:
        log.info("SLACK_BOT_TOKEN is set but the policy has no chat: section; nothing is sent to Slack")
        return None, None
    from bot.integrations.slack.job import SlackPlanner, SlackWorker

    planner = SlackPlanner(cfg, slack_renderer(cfg), metrics)
    sender = SlackWorker(store, port or (lambda: slack_chat(settings)), worker_id=worker_id, clock=clock,
                         lease=settings.lease, metrics=metrics)
    return planner, sender
