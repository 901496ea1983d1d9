"""``check-config --live`` with SLACK_BOT_TOKEN set: the GitLab lines, then the Slack token and each target of
the bundled ``chat:`` section, one line each, nothing posted (the operator who has not invited the bot yet)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands.cli import main
from bot.simgitlab import SimulatedGitLab
from bot.simslack import SimulatedSlack

ROOT = Path(__file__).resolve().parent.parent.parent
BUNDLED = str(ROOT / "config" / "bot.yaml")
CHANNELS = ("e-group", "marketing-programs", "support-managers", "community-advocates", "security-department")


def run(capsys, monkeypatch, gitlab: SimulatedGitLab, slack: SimulatedSlack | None, token: str = "") -> tuple:
    monkeypatch.setenv("GITLAB_URL", gitlab.url)
    monkeypatch.setenv("GITLAB_TOKEN", gitlab.token)
    if slack is not None:
        monkeypatch.setenv("SLACK_BOT_TOKEN", token or slack.token)
        monkeypatch.setenv("SLACK_API_URL", slack.url)
    else:
        monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    code = main(["check-config", "--config", BUNDLED, "--live"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def gitlab():
    """GitLab with every person the bundled policy names (``check-config --live`` checks them too)."""
    from bot.commands.world import add_users, configured_users
    from bot.config import load_config

    with SimulatedGitLab() as sim:
        add_users(sim, sorted(configured_users(load_config(BUNDLED))))
        yield sim


@pytest.fixture
def slack():
    with SimulatedSlack(rate_limit=False) as sim:
        for name in CHANNELS:
            sim.state.add_channel(name)
        sim.state.add_user("sec-director", "sec-director@example.com")
        yield sim


def test_every_bundled_target_is_checked_and_nothing_is_posted(capsys, monkeypatch, gitlab, slack):
    code, out, err = run(capsys, monkeypatch, gitlab, slack)
    assert code == 0, err
    slack_lines = [line for line in out.splitlines() if line.startswith("Slack")]
    assert slack_lines[0].startswith("Slack token: bot ")
    checked = " ".join(slack_lines[1:])
    for name in CHANNELS:
        assert f"#{name}" in checked
    assert "email:sec-director@example.com: direct message" in checked
    assert slack.count("chat.postMessage") == slack.count("chat.update") == 0


def test_a_channel_the_bot_was_not_invited_to_is_one_line_saying_what_to_do(capsys, monkeypatch, gitlab, slack):
    [e_group] = [c for c in slack.state.channels.values() if c.name == "e-group"]
    e_group.member = False
    code, _, err = run(capsys, monkeypatch, gitlab, slack)
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("Slack #e-group:") and "/invite" in line


def test_a_wrong_token_is_one_line_without_the_token(capsys, monkeypatch, gitlab, slack):
    code, _, err = run(capsys, monkeypatch, gitlab, slack, token="xoxb-typo-typo-typo")
    assert code == 2
    [line] = err.strip().splitlines()
    assert "SLACK_BOT_TOKEN" in line and "xoxb-typo" not in line


def test_without_a_token_slack_is_not_checked_and_says_so(capsys, monkeypatch, gitlab):
    code, out, _ = run(capsys, monkeypatch, gitlab, None)
    assert code == 0
    assert "SLACK_BOT_TOKEN is not set" in out


def test_a_mistyped_slack_api_url_is_one_line_naming_the_variable(capsys, monkeypatch, gitlab, slack):
    monkeypatch.setenv("GITLAB_URL", gitlab.url)
    monkeypatch.setenv("GITLAB_TOKEN", gitlab.token)
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
    monkeypatch.setenv("SLACK_API_URL", "slack.com/api")
    code = main(["check-config", "--config", BUNDLED, "--live"])
    _, err = capsys.readouterr()
    assert code == 2
    [line] = err.strip().splitlines()
    assert "SLACK_API_URL must be an http(s) URL" in line and "Traceback" not in err
