"""Live checks: one line per target saying whether the bot can post there, without posting anything."""

from __future__ import annotations

from bot.integrations.slack.live import live_checks
from bot.integrations.slack.slackapi import SlackChat
from bot.simslack import SimulatedSlack
from tests.chat.conftest import Workspace


def test_each_target_gets_one_line_and_nothing_is_written(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace
) -> None:
    targets = ["#incidents", "#outside", "#nowhere", ws.e_group.id, "email:alice@example.com", "email:bob@example.com",
               "#incidents"]
    lines = live_checks(chat, targets)
    assert [ok for ok, _ in lines] == [True, True, False, False, True, True, False]
    assert lines[0].line.startswith("Slack token: bot incident-bot")
    assert "#outside" in lines[2].line and "/invite" in lines[2].line
    assert "check the channel name" in lines[3].line
    assert "direct message" in lines[5].line
    assert "email:bob@example.com" in lines[6].line and "check the user" in lines[6].line
    assert all("\n" not in line for _, line in lines)
    assert slack.count("chat.postMessage") == slack.count("chat.update") == 0
    assert all(c.method in ("auth.test", "conversations.list", "conversations.info", "conversations.open",
                            "users.lookupByEmail") for c in slack.calls)


def test_a_bad_token_is_the_only_line(slack: SimulatedSlack, ws: Workspace) -> None:
    token = "xoxb-not-the-token"
    lines = live_checks(SlackChat(token, slack.url), ["#incidents"])
    assert len(lines) == 1 and not lines[0].ok and "SLACK_BOT_TOKEN" in lines[0].line and token not in lines[0].line


def test_slack_down_is_reported_not_raised(chat: SlackChat, slack: SimulatedSlack, ws: Workspace) -> None:
    slack.down("503")
    lines = live_checks(chat, ["#incidents"])
    assert lines == [(False, lines[0].line)] and "retry later" in lines[0].line


def test_an_operator_whose_token_cannot_create_channels_is_told_in_one_line(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace
) -> None:
    """Slack lists the token's scopes in every answer's X-OAuth-Scopes header (read from auth.test)."""
    slack.state.scopes = {"chat:write", "channels:read", "groups:read"}
    _, scope, *_ = live_checks(chat, ["#incidents"], create_channels=True)
    assert not scope.ok and "lacks groups:write" in scope.line and "create_incident_channel: false" in scope.line
    slack.state.scopes = {"chat:write", "channels:read", "groups:read", "groups:write"}
    fresh = SlackChat(slack.token, slack.url)
    _, scope, *_ = live_checks(fresh, ["#incidents"], create_channels=True)
    assert scope.ok and "can create private channels" in scope.line
    assert len(live_checks(fresh, ["#incidents"])) == 2, "no scope line when the policy creates no channel"
    assert slack.count("conversations.create") == 0
