"""PagerDuty's settings rows: listed in the README's table and the worker's ``--help`` with the bot's own.

The routing keys are not rows: the policy names their variables (``integrations.pagerduty.targets[].
routing_key_env``), read from the environment when the integration is built (see docs/paging.md)."""

from __future__ import annotations

from bot.settingsrows import Variable, http_url, strip

EVENTS_URL_ENV = "PAGERDUTY_EVENTS_URL"
DEFAULT_EVENTS_URL = "https://events.pagerduty.com"
WEBHOOK_SECRET_ENV = "PAGERDUTY_WEBHOOK_SECRET"


ROWS: dict[str, Variable] = {
    "pagerduty_events_url": Variable(
        EVENTS_URL_ENV, f"`{DEFAULT_EVENTS_URL}`",
        "PagerDuty's Events API v2 base URL (https; plain http to loopback only); the routing keys go there",
        http_url(EVENTS_URL_ENV, DEFAULT_EVENTS_URL), carries="the paging routing keys"),
    "pagerduty_webhook_secret": Variable(
        WEBHOOK_SECRET_ENV, "",
        "optional: the signing secret of PagerDuty's V3 webhook subscription; unset, `POST /pagerduty` answers "
        "401 to everything (acknowledgements are not recorded)", strip, secret=True),
}
"""By ``Settings`` attribute (``settings.pagerduty_events_url``)."""
