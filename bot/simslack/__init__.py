"""A simulated Slack Web API over real HTTP, for tests and demos: ``slack_sdk`` talks to it unchanged.

``SimulatedSlack`` serves the handful of methods the bot uses, keeps channels, users and messages
(with their metadata), records every call, and injects the faults Slack has in real life: errors and
rate limits at a seeded random rate, an outage, the per-channel posting limit, and a post that lands but
whose answer is lost.
"""

from bot.simslack.server import Call, SimulatedSlack
from bot.simslack.state import Channel, SlackFailure, SlackState, User

__all__ = ["Call", "Channel", "SimulatedSlack", "SlackFailure", "SlackState", "User"]
