"""A Developer, who may command the bot, hiding a command where people reading the incident do not see one.

GitLab reads ``@name`` as a mention only for ASCII names (``User.reference_pattern``, app/models/user.rb,
over ``Gitlab::PathRegex::FULL_NAMESPACE_FORMAT_REGEX``, lib/gitlab/path_regex.rb), looked up without
regard to case; a table's header row is a table, not a paragraph (comrak with GitLab's ``table``
extension). So ``@ıncident-bot`` (dotless i) or ``@İncident-bot`` is no mention of the bot (the bot user
is not notified, the name is not a link), and a hand-off in a table reads as data. The bot obeys only what
GitLab shows as a mention of it starting a plain paragraph. Against the simulated GitLab over HTTP; each
body is also read as GitLab renders it (``tests/security/gitlab_render.py``).
"""

from __future__ import annotations

import pytest

from bot.commands.world import World
from tests.conftest import look
from tests.security import gitlab_render

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
DEVELOPER = "dev-dan"


@pytest.fixture
def w(w: World) -> World:
    w.sim.state.add_user(DEVELOPER)
    w.sim.state.add_member(w.project, DEVELOPER, 30)
    return w


def say(w: World, iid: int, text: str) -> None:
    w.sim.state.add_note(w.project, iid, text, author=DEVELOPER)


def replies(w: World, iid: int) -> list[dict]:
    return [n for n in w.bot_notes(iid) if '"cmd' in n["body"]]


def assignees(w: World, iid: int) -> list[str]:
    return [a["username"] for a in w.sim.state.get_issue(w.project, iid)["assignees"]]


def is_paragraph_mention_of_the_bot(body: str, bot: str) -> bool:
    """Does GitLab render ``body`` with a mention of ``bot`` opening a paragraph (what the bot may obey)?"""
    _, _, html = gitlab_render.read(body)
    first = html.lstrip()
    return first.startswith("<p>") and any(m.lower() == bot for m in gitlab_render.mentions(body))


HIDDEN = [
    "@ıncident-bot handoff seoc @dev-dan",  # U+0131 dotless i: Python's re.IGNORECASE folds it to "i"
    "@İncident-bot handoff seoc @dev-dan",  # U+0130 capital I with dot
    "@incident-bot handoff seoc @dev-dan | ok\n---|---",  # a table's header row
    "@incident-bot handoff seoc @dev-dan\n:---",  # a one-column table
    "@incident-bot handoff seoc @dev-dan\n|---|",
]


@pytest.mark.parametrize("body", HIDDEN)
def test_a_command_gitlab_does_not_show_as_one_is_not_obeyed(w, clock, body):
    assert not is_paragraph_mention_of_the_bot(body, w.cfg.bot.username)
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, body)
    look(w, clock, iid)
    assert replies(w, iid) == []
    assert assignees(w, iid) == ["sec-oncall"]


@pytest.mark.parametrize("body", ["@Incident-Bot handoff seoc @dev-dan", "@INCIDENT-BOT handoff seoc @dev-dan\n| a |"])
def test_the_bots_name_in_any_ascii_case_is_obeyed(w, clock, body):
    assert is_paragraph_mention_of_the_bot(body, w.cfg.bot.username)
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, body)
    look(w, clock, iid)
    assert len(replies(w, iid)) == 1
    assert assignees(w, iid) == [DEVELOPER]
