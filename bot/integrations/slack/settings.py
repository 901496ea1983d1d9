"""Slack's settings rows: listed in the README's table and the worker's ``--help`` with the bot's own."""

from __future__ import annotations

from bot.settingsrows import Variable, http_url, strip

ROWS: dict[str, Variable] = {
    "slack_bot_token": Variable(
        "SLACK_BOT_TOKEN", "", "optional: the Slack app's bot token (`xoxb-…`); unset, nothing about Slack runs",
        strip, secret=True),
    "slack_api_url": Variable("SLACK_API_URL", "`https://slack.com/api/`", "the Slack Web API's base URL",
                              http_url("SLACK_API_URL", "https://slack.com/api/", slash=True),
                              carries="SLACK_BOT_TOKEN"),
}
"""By ``Settings`` attribute (``settings.slack_bot_token``)."""
