from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.integrations.slack.slackapi import SlackChat
from bot.simslack import SimulatedSlack
from bot.simslack.state import Channel, User


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self, start: float = 1_796_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Workspace:
    """The simulated Slack the tests use: #incidents (bot in it), #outside (bot not in it), #old (archived),
    #secret (private, bot not in it), alice (with an email) and another bot."""

    def __init__(self, slack: SimulatedSlack) -> None:
        state = slack.state
        self.sim = slack
        self.incidents: Channel = state.add_channel("incidents")
        self.e_group: Channel = state.add_channel("e-group")
        self.outside: Channel = state.add_channel("outside", member=False)
        self.old: Channel = state.add_channel("old", archived=True)
        self.secret: Channel = state.add_channel("secret", private=True, member=False)
        self.alice: User = state.add_user("alice", "alice@example.com")
        self.other_bot: User = state.add_user("deploy-bot", bot=True)


@pytest.fixture
def slack_clock() -> Clock:
    return Clock()


@pytest.fixture
def slack(slack_clock: Clock) -> Iterator[SimulatedSlack]:
    """A started simulated Slack; the per-channel posting limit is off unless a test turns it on."""
    with SimulatedSlack(clock=slack_clock, rate_limit=False, token="xoxb-111-222-secretsecret") as server:
        yield server


@pytest.fixture
def ws(slack: SimulatedSlack) -> Workspace:
    return Workspace(slack)


@pytest.fixture
def chat(slack: SimulatedSlack, ws: Workspace, slack_clock: Clock) -> SlackChat:
    return SlackChat(slack.token, slack.url, timeout=5, clock=slack_clock)
