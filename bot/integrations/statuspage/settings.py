"""The status page's settings rows: listed in the README's table and the worker's ``--help`` with the bot's own.

Which provider's rows are read depends on the policy's ``integrations.status_page.provider``; the values are
checked together (what is missing for that provider) when the integration is built, one line each.
"""

from __future__ import annotations

from bot.settingsrows import Variable, http_url, strip

STATUSIO_URL = "https://api.status.io/v2/"
STATUSPAGE_URL = "https://api.statuspage.io/v1/"

ROWS: dict[str, Variable] = {
    "statusio_api_url": Variable(
        "STATUSIO_API_URL", f"`{STATUSIO_URL}`",
        "status.io API base URL (with `integrations.status_page.provider: statusio`)",
        http_url("STATUSIO_API_URL", STATUSIO_URL, slash=True), carries="STATUSIO_API_KEY"),
    "statusio_api_id": Variable("STATUSIO_API_ID", "", "status.io API ID", strip, secret=True),
    "statusio_api_key": Variable(
        "STATUSIO_API_KEY", "", "optional: the status.io API key; unset, nothing is published to status.io",
        strip, secret=True),
    "statusio_statuspage_id": Variable("STATUSIO_STATUSPAGE_ID", "", "status.io status page id", strip),
    "statuspage_api_url": Variable(
        "STATUSPAGE_API_URL", f"`{STATUSPAGE_URL}`",
        "Atlassian Statuspage API base URL (with `integrations.status_page.provider: statuspage`)",
        http_url("STATUSPAGE_API_URL", STATUSPAGE_URL, slash=True), carries="STATUSPAGE_API_KEY"),
    "statuspage_api_key": Variable(
        "STATUSPAGE_API_KEY", "", "optional: the Atlassian Statuspage API key; unset, nothing is published there",
        strip, secret=True),
    "statuspage_page_id": Variable("STATUSPAGE_PAGE_ID", "", "Atlassian Statuspage page id", strip),
}
"""By ``Settings`` attribute (``settings.statusio_api_key``)."""

ENV_OF: dict[str, str] = {attr: var.name for attr, var in ROWS.items()}
