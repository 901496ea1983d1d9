"""A simulated PagerDuty Events API v2 over real HTTP, for tests and demos: PagerDuty's client talks to it.

``SimulatedPagerDuty`` validates events as PagerDuty does, keeps alerts by ``dedup_key`` (a trigger after a
resolve opens a new alert), records every event received, injects 429/500 at a seeded rate or loses an
answer after applying the event, and sends signed V3 webhooks when a person acknowledges or resolves.
"""

from bot.simpagerduty.server import Received, SimulatedPagerDuty, WebhookDelivery
from bot.simpagerduty.state import Alert, Invalid, PagerDutyState

__all__ = ["Alert", "Invalid", "PagerDutyState", "Received", "SimulatedPagerDuty", "WebhookDelivery"]
