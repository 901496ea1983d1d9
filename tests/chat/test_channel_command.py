"""``@incident-bot channel #inc-123``: judged without I/O, kept in the bot's signed state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import ChatSettings
from bot.core import commands, state
from bot.core.model import BotState, Note

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def command(text: str, *, allowed: bool = True) -> commands.Command:
    cmd = commands.parse(Note(7, text, "sec-oncall", created_at=NOW), "incident-bot")
    assert cmd is not None
    return commands.Command(cmd.note, cmd.name, cmd.args, allowed=allowed)


def test_a_channel_name_sets_the_incident_channel(default_config):
    verdict = commands.judge(command("@incident-bot channel #inc-123"), default_config)
    assert verdict.ok and verdict.chat_channel == "#inc-123"
    assert commands.apply(BotState(), [verdict]).chat_channel == "#inc-123"


@pytest.mark.parametrize("args", ["", "inc-123", "#Inc 123", "#inc-1 #inc-2", "<#C123|x>", "#@here"])
def test_anything_but_one_channel_name_is_refused_with_the_usage(default_config, args):
    verdict = commands.judge(command(f"@incident-bot channel {args}"), default_config)
    assert not verdict.ok and verdict.chat_channel is None and "usage: channel #channel-name" in str(verdict.reply)


def test_someone_who_may_not_command_the_bot_cannot_name_the_channel(default_config):
    verdict = commands.judge(command("@incident-bot channel #inc-123", allowed=False), default_config)
    assert not verdict.ok and commands.apply(BotState(), [verdict]).chat_channel == ""


def test_the_channel_survives_the_signed_state_and_a_forged_one_is_dropped():
    kept = state.decode(state.encode(BotState(chat_channel="#inc-9")))
    assert kept.chat_channel == "#inc-9"
    assert state.decode({**state.encode(BotState()), "chat_channel": "<!here>"}).chat_channel == ""


@pytest.mark.parametrize("name", ["#general", "#e-group", "#security-department", "#marketing-programs", "#incidents"])
def test_a_name_outside_the_incident_channels_or_used_elsewhere_is_refused(default_config, name):
    verdict = commands.judge(command(f"@incident-bot channel {name}"), default_config)
    assert not verdict.ok and verdict.chat_channel is None and "cannot be the incident channel" in str(verdict.reply)


def test_the_accepted_names_follow_the_policy(default_config):
    chat = default_config.chat.model_copy(update={"incident_channels": None, "incident_channel": "#sec-{iid}"})
    cfg = default_config.model_copy(update={"chat": chat})
    assert commands.judge(command("@incident-bot channel #sec-payroll"), cfg).ok
    assert not commands.judge(command("@incident-bot channel #inc-1"), cfg).ok


@pytest.mark.parametrize("bad", ["#*", "general", "#Inc-*"])
def test_an_incident_channels_pattern_that_accepts_anything_or_nothing_is_a_config_error(bad):
    with pytest.raises(ValueError, match="incident_channels"):
        ChatSettings(incident_channels=bad)


def test_an_incident_channel_pattern_the_accepted_names_refuse_is_a_config_error():
    with pytest.raises(ValueError, match=r"make them agree, e.g. '#sec-\*'"):
        ChatSettings(incident_channel="#sec-{iid}", incident_channels="#inc-*")
    assert ChatSettings(incident_channel="#inc-{iid}", incident_channels="#inc-*").may_be_incident_channel("#inc-x")
