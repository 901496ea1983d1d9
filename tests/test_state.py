"""Which recorded state the bot believes (``bot.core.state.read``) and where its key comes from."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bot.core import state as bot_state
from bot.core.model import BotState, IncidentRef, Issue, Note
from bot.errors import UserError
from bot.statekey import derived_key, state_key_from_env
from bot.text.markers import StateKey, marker

KEY = StateKey(b"k" * 32)
INCIDENT = Issue(IncidentRef("acme/sec", 3), id=903, project_id=11, assignees=("sec-oncall",))
OTHER = Issue(IncidentRef("acme/sec", 4), id=904, project_id=11)
V1 = BotState({"seoc": "sec-oncall", "simoc": "sim"}, rev=1)
V2 = BotState({"seoc": "sec-oncall", "simoc": "dana"}, handled=70, rev=2)
SNOOZED = BotState({"seoc": "sec-oncall"}, snoozed_until=datetime(2099, 1, 1, tzinfo=UTC), rev=9)
UNSIGNED = marker("checklist", **bot_state.encode(SNOOZED))
FORGED = marker("checklist", **bot_state.encode(SNOOZED), mac="0" * 64)
FALLBACK = BotState({"seoc": "sec-oncall"}, handled=5)


def checklist(mark: str) -> Note:
    return Note(50, f"{mark}\n### checklist\n- [x] done <!-- incident-bot:item {{\"id\":\"first:a\"}} -->", "bot")


def copy(state: BotState, incident: Issue = INCIDENT, key: StateKey = KEY) -> Note:
    return Note(60 + state.rev, f"<!-- incident-bot:log {{}} --> {bot_state.copy_marker(state, key, incident)}", "bot")


def signed(state: BotState, incident: Issue = INCIDENT) -> str:
    return bot_state.checklist_marker(state, KEY, incident)


@pytest.mark.parametrize(
    ("case", "checklist_mark", "copies", "believed", "reported"),
    [
        ("signed, newest", signed(V2), [copy(V1), copy(V2)], V2, None),
        ("signed, no copies yet (crash before the log)", signed(V2), [copy(V1)], V2, None),
        ("forged, restored from the newest copy", FORGED, [copy(V1), copy(V2)], V2, "changed"),
        ("unsigned, restored from the newest copy", UNSIGNED, [copy(V2)], V2, "unsigned"),
        ("older genuine marker put back", signed(V1), [copy(V1), copy(V2)], V2, "older"),
        ("another incident's marker", signed(SNOOZED, OTHER), [copy(V2)], V2, "changed"),
        ("copies of another incident do not count", signed(V1), [copy(V2, OTHER)], V1, None),
        ("copies signed with another key do not count", signed(V1), [copy(V2, key=StateKey(b"x" * 32))], V1, None),
        ("marker removed", "", [copy(V2)], V2, "removed"),
        ("unsigned, nothing signed anywhere", UNSIGNED, [], FALLBACK, "not signed"),
        ("forged, nothing signed anywhere", FORGED, [], FALLBACK, "key was replaced"),
    ],
)
def test_read(case, checklist_mark, copies, believed, reported) -> None:
    reading = bot_state.read(checklist(checklist_mark), copies, KEY, INCIDENT, answered=5)
    assert reading.state == believed, case
    if reported is None:
        assert reading.report is None, case
    else:
        assert reading.report is not None and reported in reading.report.text, case


def test_the_same_tampering_is_reported_under_the_same_key_and_a_new_one_under_another() -> None:
    forged = FORGED
    first = bot_state.read(checklist(forged), [copy(V2)], KEY, INCIDENT).report
    again = bot_state.read(checklist(forged), [copy(V2)], KEY, INCIDENT).report
    other = bot_state.read(checklist(marker("checklist", roles={})), [copy(V2)], KEY, INCIDENT).report
    assert first and again and other and first.key == again.key != other.key


def test_no_checklist_yet_starts_from_the_copies_or_from_nothing() -> None:
    assert bot_state.read(None, [copy(V1)], KEY, INCIDENT).state == V1
    assert bot_state.read(None, [], KEY, INCIDENT, answered=9) == bot_state.Reading(BotState(handled=9))


def test_a_new_revision_only_when_something_changed() -> None:
    assert bot_state.next_revision(V2, V2).rev == 2
    assert bot_state.next_revision(V1, V2).rev == 2
    assert bot_state.next_revision(V2, BotState(V2.roles, handled=71)).rev == 3


# ---- the key -------------------------------------------------------------------------------------


def test_a_dedicated_key_and_the_previous_ones(tmp_path) -> None:
    (tmp_path / "key").write_text("0123456789abcdef-file\n")
    key = state_key_from_env({"INCIDENT_BOT_STATE_KEY_FILE": str(tmp_path / "key"), "GITLAB_TOKEN": "glpat-x"})
    assert key.current == b"0123456789abcdef-file"
    assert key.previous == (derived_key("glpat-x"),), "what the token-derived key signed is still believed"
    env = {"INCIDENT_BOT_STATE_KEY": "new-key-0123456789", "INCIDENT_BOT_STATE_KEY_PREVIOUS": "old-key-0123456789"}
    assert state_key_from_env(env).previous == (b"old-key-0123456789",)


def test_without_a_key_one_is_derived_from_the_token_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        key = state_key_from_env({"GITLAB_TOKEN": "glpat-secret-token"})
    assert key.current == derived_key("glpat-secret-token") != b"glpat-secret-token"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "INCIDENT_BOT_STATE_KEY is not set" in line and "glpat-secret-token" not in line


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "INCIDENT_BOT_STATE_KEY is not set"),
        ({"INCIDENT_BOT_STATE_KEY": "short"}, "too short"),
        ({"INCIDENT_BOT_STATE_KEY": "a" * 20, "INCIDENT_BOT_STATE_KEY_FILE": "/x"}, "not both"),
        ({"INCIDENT_BOT_STATE_KEY_FILE": "/nonexistent/key"}, "cannot read it"),
    ],
)
def test_bad_key_settings_are_one_line_errors(env, message) -> None:
    with pytest.raises(UserError, match=message) as exc:
        state_key_from_env(env)
    assert "\n" not in str(exc.value) and "short" not in str(exc.value).replace("too short", "")
