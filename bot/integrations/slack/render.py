"""Render the Slack message templates (``issue_templates/slack/*.j2``): every value escaped for mrkdwn
unless the plan marked it ``Mrkdwn`` (its own links and quotes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot import paths
from bot.integrations.slack.text import escape_mrkdwn

SLACK_DIR = "slack"


class SlackRenderer:
    """Templates from ``<templates dir>/slack`` (the policy's own first, then the bundled ones)."""

    def __init__(self, template_dirs: list[Path] | None = None) -> None:
        dirs = template_dirs or [paths.bundled_templates_dir()]
        self.environment = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader([str(Path(d) / SLACK_DIR) for d in dirs]),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=escape_mrkdwn,
        )

    def render(self, name: str, /, **context: Any) -> str:
        return self.environment.get_template(name).render(**context).strip()
