"""`plan` tells the truth: a command in a comment payload shows its effect; `-v` shows bodies as people read
them (checked against comrak, GitLab's Markdown engine); `--raw` shows the exact Markdown."""

from __future__ import annotations

import json
import re

import pytest

from bot.commands.cli import main
from bot.text.plain import as_read
from tests.conftest import EXAMPLES
from tests.security.gitlab_render import read


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_plan_on_a_handoff_comment_shows_the_reply_and_the_new_holder(capsys):
    code, out = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-handoff-command.json"))
    assert code == 0
    assert "  - @sec-oncall: handoff -> accepted: SEOC handed over to 'secops-oncall' by 'sec-oncall'" in out
    assert "SEOC   @secops-oncall" in out and "assign the incident to @secops-oncall (SEOC)" in out
    assert "reply in the command's thread: reply" in out
    assert "assumed allowed to command the bot" in out


def test_plan_on_a_snooze_comment_shows_until_when(capsys):
    code, out = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-snooze-command.json"), "-v")
    assert code == 0 and "snooze -> accepted: reminders paused until 2026-11-30 12:45 UTC" in out
    assert "| @sec-incident-manager ✓ snooze 2h" in out


def test_plan_json_lists_the_commands(capsys):
    _, out = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-handoff-command.json"), "--json")
    (cmd,) = json.loads(out)["commands"]
    assert cmd["command"] == "handoff" and cmd["ok"] and "secops-oncall" in cmd["reply"]


def test_plan_verbose_shows_text_as_read_and_raw_shows_the_markdown(capsys):
    _, shown = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-incident.json"), "-v")
    _, raw = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-incident.json"), "--raw")
    assert "| Checklist (from the communications plan)" in shown and "| [ ] Plain text only" in shown
    assert "**" not in shown and "\\-" not in shown and "<!--" not in shown
    assert "| ### Checklist (from the communications plan)" in raw and "| - [ ] Plain text only" in raw
    assert "comms\\-email is set" in raw and "<!-- incident-bot:child" in raw


@pytest.fixture
def bodies(capsys) -> list[str]:
    found = []
    for name in ("s1-incident.json", "s1-handoff-command.json", "s3-incident.json"):
        main(["plan", "--payload", str(EXAMPLES / name), "--json"])
        data = json.loads(capsys.readouterr().out)
        found += [a.get("body") or a.get("description") for a in data["actions"]]
    return [b for b in found if b]


def _words(text: str) -> list[str]:
    return re.sub(r"\[[ x]\]|•|\|", " ", text).split()


def test_the_text_preview_says_what_gitlab_renders(bodies):
    assert len(bodies) >= 8
    for body in bodies:
        _, text, _ = read(body)  # comrak's visible text
        assert _words(as_read(body)) == _words(text), body
