"""Render the Slack message templates (``issue_templates/slack/*.j2``) in the bot's one sandboxed environment
(``bot.text.jinja``), dialect mrkdwn: every value escaped for Slack unless the plan marked it ``Mrkdwn`` (its
own links and quotes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader

from bot import paths
from bot.text import jinja
from bot.text.dialects import MRKDWN

SLACK_DIR = "slack"
MAX_CHARS = 40_000
"""Slack truncates a message's text after 40,000 characters (https://api.slack.com/methods/chat.postMessage,
``text``): a template cannot build a longer string with ``*``."""


class SlackRenderer:
    """Templates from ``<templates dir>/slack`` (the policy's own first, then the bundled ones)."""

    def __init__(self, template_dirs: list[Path] | None = None) -> None:
        dirs = template_dirs or [paths.bundled_templates_dir()]
        self.environment = jinja.environment(
            MRKDWN, FileSystemLoader([str(Path(d) / SLACK_DIR) for d in dirs]), max_chars=MAX_CHARS
        )

    def render(self, name: str, /, **context: Any) -> str:
        return self.environment.get_template(name).render(**context).strip()
