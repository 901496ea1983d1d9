"""Every integration's settings rows, for ``bot.settings``: only each folder's ``settings`` module, which imports
no adapter, so that reading the settings loads no client. ``tests/integrations`` checks that these are exactly
the rows of the integrations in ``bot.integrations.registry``."""

from __future__ import annotations

from bot.integrations.pagerduty.settings import ROWS as PAGERDUTY
from bot.integrations.slack.settings import ROWS as SLACK
from bot.integrations.statuspage.settings import ROWS as STATUS_PAGE
from bot.settingsrows import Variable

ROWS: dict[str, Variable] = {**SLACK, **PAGERDUTY, **STATUS_PAGE}
"""By ``Settings`` attribute, in registration order."""
