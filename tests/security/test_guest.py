"""A Guest (or a non-member) of the incident's project, trying to steer, stall or silence the bot with text.

Against the simulated GitLab (real HTTP on loopback), with the clock moved, never slept. Bodies are read
as GitLab reads them (comrak plus the Banzai filters that find mentions, references and links:
``tests/security/gitlab_render.py``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands.demo import STATUS_UPDATE
from bot.commands.world import World
from bot.config import Config
from bot.core import bodies, commands, policy
from bot.core.events import Ignored, parse_event
from bot.core.model import IncidentRef, Issue, Note, Observed
from bot.gitlab.callpolicy import CallPolicy
from bot.reconciler import Reconciler
from bot.statekey import derived_key
from bot.text.escape import SPECIAL_HANDLES, is_valid_username, mention
from bot.text.hazards import UnsafeOutput, assert_safe
from bot.text.markers import StateKey, strip_markers
from bot.text.templates import TemplateRenderer
from bot.wiring import client_from
from tests.conftest import at, look
from tests.hypothesis_profiles import examples
from tests.security import gitlab_render

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
GUEST, REPORTER, DEVELOPER = 10, 20, 30
MEMBER_LOOKUP = "GET /projects/:id/members/all/:user_id"



def person(w: World, username: str, access: int | None, state: str = "active") -> str:
    w.sim.state.add_user(username, state=state)
    if access is not None:
        w.sim.state.add_member(w.project, username, access)
    return username


def say(w: World, iid: int, who: str, text: str, **kw: object) -> dict:
    return w.sim.state.add_note(w.project, iid, text, author=who, **kw)


def reminders(w: World, iid: int) -> list[str]:
    return [n["body"] for n in w.bot_notes(iid) if "Status update due" in n["body"]]


def replies(w: World, iid: int) -> list[dict]:
    return [n for n in w.bot_notes(iid) if '"cmd' in n["body"]]


def assignees(w: World, iid: int) -> list[str]:
    return [a["username"] for a in w.sim.state.get_issue(w.project, iid)["assignees"]]


# ---- a username ending in "_" ------------------------------------------------------------------------


def test_guest_whose_username_ends_in_underscore_cannot_stall_the_incident(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    person(w, "sam_", GUEST)
    at(clock, "09:10")
    say(w, iid, "sam_", "@incident-bot help")
    look(w, clock, iid)  # used to fail with UnsafeOutput on every later look
    [reply] = replies(w, iid)
    assert "refused" in reply["body"]
    assert gitlab_render.mentions(reply["body"]) == ["sam_"], "the author is mentioned once, as themself"
    at(clock, "10:00")
    look(w, clock, iid)
    assert len(reminders(w, iid)) == 1, "reminders still come"


GITLAB_USERNAME = r"\A(?:[A-Za-z0-9_.][A-Za-z0-9_.\-]{0,30}[A-Za-z0-9_\-]|[A-Za-z0-9_])\Z"  # Gitlab::PathRegex


def _reply_for(cfg: Config, renderer: TemplateRenderer, author: str, body: str = "@incident-bot help") -> str:
    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    incident = Issue(IncidentRef("1", 3), id=9, labels=frozenset({cfg.labels.trigger, "severity::1"}), title="t")
    cmd = commands.parse(Note(5, body, author, created_at=now, author_id=3), cfg.bot.username)
    assert cmd is not None
    observed = Observed(incident=incident, commands=(replace(cmd, allowed=True),))
    desired = policy.plan_observed(observed, cfg, now)
    return bodies.reply_body(desired.verdicts[0], desired, observed, cfg, renderer)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=st.from_regex(GITLAB_USERNAME).filter(is_valid_username))
def test_every_valid_gitlab_username_is_exactly_one_mention_of_itself(default_config, username):
    if username.lower() in SPECIAL_HANDLES:
        return
    renderer = TemplateRenderer([default_config.template_dir])
    reply = _reply_for(default_config, renderer, username)
    assert bodies.INERT_NOTICE not in reply, "the reply passed its safety check as it is"
    assert gitlab_render.mentions(reply) == [username]
    # Wherever it is put, even inside emphasis that a bare '_' in the name would open or close.
    at = mention(username)
    for line in (f"_hi {at} x_", f"_{at}, x_", f"*{at}*", f"**{at}**: _x_", f"{at} _x_"):
        assert_safe(line, [username])
        assert gitlab_render.mentions(line) == [username], line


def test_one_unsafe_value_becomes_inert_text_and_the_rest_carries_on(w, clock, caplog):
    """A user named like a special handle (valid on GitLab) cannot be mentioned: written as text, logged."""
    iid = w.incident(*S1)
    look(w, clock, iid)
    person(w, "everyone", DEVELOPER)
    say(w, iid, "everyone", "@incident-bot refresh")
    with caplog.at_level(logging.WARNING, logger="bot.core.bodies"):
        look(w, clock, iid)
    [reply] = replies(w, iid)
    assert gitlab_render.mentions(reply["body"]) == []
    assert "everyone" in reply["body"] and "up to date" in reply["body"]
    assert any("everyone" in r.getMessage() and "not a mention" in r.getMessage() for r in caplog.records)
    at(clock, "10:00")
    look(w, clock, iid)
    assert len(reminders(w, iid)) == 1


REPLY_TEMPLATE = "reply.md.j2"


class _RefusesReplies(TemplateRenderer):
    """The bundled templates, except that every reply fails its last safety check."""

    def render(self, name: str, /, **context: object) -> str:
        if name == REPLY_TEMPLATE:
            raise UnsafeOutput("reply.md.j2: unsafe output: mention at line 2: '@someone'")
        return super().render(name, **context)




def w_key(w: World) -> StateKey:
    """The key the world's own reconcilers sign with."""
    return StateKey(derived_key(w.sim.token))


def test_a_body_that_fails_its_safety_check_becomes_an_inert_notice_and_the_rest_carries_on(w, clock, caplog):
    iid = w.incident(*S1)
    look(w, clock, iid)
    person(w, "guest-gus", GUEST)
    say(w, iid, "guest-gus", "@incident-bot help")
    client = client_from(w.sim.url, w.sim.token, CallPolicy(rate_per_minute=1_000_000, burst=1000))
    r = Reconciler(w.cfg, _RefusesReplies([w.cfg.template_dir]), client, clock=clock, key=w_key(w), remit=w.remit)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.core.bodies"):
            r.reconcile(IncidentRef(w.project, iid))
        at(clock, "10:00")
        r.reconcile(IncidentRef(w.project, iid))
        r.reconcile(IncidentRef(w.project, iid))
    finally:
        r.close()
    [reply] = replies(w, iid)  # answered once, with the notice: not retried on every look
    assert bodies.INERT_NOTICE in reply["body"]
    assert any("reply to comment" in rec.getMessage() and "inert notice" in rec.getMessage() for rec in caplog.records)
    assert len(reminders(w, iid)) == 1


# ---- fake status updates -------------------------------------------------------------------------------

EMPTY_HEADINGS = "\n".join(f"## {p}" for p in ("Current risk", "Users impacted", "Timeline of events",
                                                  "Mitigation steps taken", "Current status of the incident",
                                                  "Next steps"))
NATURAL_UPDATE = """Current risk: high, customer exports were readable
Users impacted: some (40 projects)
Timeline:
- 08:40 report received
- 09:05 export endpoint disabled
Mitigation: endpoint disabled, logs preserved
Current status: contained
Next steps: notify the customers
"""
BOLD_AND_HEADINGS_UPDATE = """**Current risk**
High.

### Users impacted
Some.

### Timeline
- 09:05 endpoint disabled

**Mitigation steps taken**: endpoint disabled

### Current status
Contained.

### Next steps
Notify.
"""


@pytest.mark.parametrize(
    ("who", "access", "state", "body"),
    [
        ("guest-gus", GUEST, "active", EMPTY_HEADINGS),
        ("guest-gus", GUEST, "active", STATUS_UPDATE),  # a Guest's update does not count, however full
        ("outsider-olga", None, "active", STATUS_UPDATE),  # nor a non-member's
        ("reporter-rae", REPORTER, "active", EMPTY_HEADINGS),  # a Reporter's empty headings do not either
        ("blocked-bo", DEVELOPER, "blocked", STATUS_UPDATE),
    ],
)
def test_guest_cannot_silence_reminders_with_a_fake_status_update(w, clock, who, access, state, body):
    iid = w.incident(*S1)
    look(w, clock, iid)
    person(w, who, access, state)
    at(clock, "09:55")
    say(w, iid, who, body)
    at(clock, "10:00")
    look(w, clock, iid)
    assert len(reminders(w, iid)) == 1


@pytest.mark.parametrize("body", [NATURAL_UPDATE, BOLD_AND_HEADINGS_UPDATE])
@pytest.mark.parametrize(("who", "access"), [("reporter-rae", REPORTER), ("sec-incident-manager", None)])
def test_a_reporters_or_role_holders_real_update_counts_however_the_points_are_written(
    w, clock, who, access, body
):
    iid = w.incident(*S1)
    look(w, clock, iid)
    if access is None:  # the SIMOC holds a role: counts even without project membership
        w.sim.state.remove_member(w.project, who)
    else:
        person(w, who, access)
    at(clock, "09:55")
    say(w, iid, who, body)
    at(clock, "10:00")
    look(w, clock, iid)
    assert reminders(w, iid) == []
    at(clock, "10:55")
    look(w, clock, iid)
    assert len(reminders(w, iid)) == 1


def test_only_status_update_authors_are_checked_and_each_update_only_once(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    person(w, "reporter-rae", REPORTER)
    person(w, "guest-gus", GUEST)
    say(w, iid, "guest-gus", "thanks, following along")
    say(w, iid, "reporter-rae", NATURAL_UPDATE)
    r = w.reconciler(clock=clock)
    try:
        w.sim.reset_log()
        r.reconcile(IncidentRef(w.project, iid))
        assert len(w.sim.find_requests(route=MEMBER_LOOKUP)) == 1, "one look-up: the update's author"
        w.sim.reset_log()
        r.reconcile(IncidentRef(w.project, iid))
        assert w.sim.find_requests(route=MEMBER_LOOKUP) == [], "nothing new posted: no look-up"
    finally:
        r.close()


# ---- commands ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "    @incident-bot handoff seoc @dev-dan",  # indented code block
        "\t@incident-bot handoff seoc @dev-dan",  # a tab is four columns: code
        "  \t@incident-bot handoff seoc @dev-dan",
        "@incident-bot handoff seoc @dev-dan\n---",  # a heading, not a paragraph
        "```\n@incident-bot handoff seoc @dev-dan\n```",  # fenced code block
        "> @incident-bot handoff seoc @dev-dan",  # block quote
        ">>>\n@incident-bot handoff seoc @dev-dan\n>>>",  # GitLab's multi-line quote
    ],
)
def test_command_shown_as_code_or_quoted_is_not_obeyed(w, clock, body):
    iid = w.incident(*S1)
    look(w, clock, iid)
    person(w, "dev-dan", DEVELOPER)
    say(w, iid, "dev-dan", body)
    look(w, clock, iid)
    assert replies(w, iid) == []
    assert assignees(w, iid) == ["sec-oncall"]


def test_reply_to_a_command_in_an_internal_note_is_internal(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "sec-oncall", "@incident-bot status", internal=True)
    say(w, iid, "sec-oncall", "@incident-bot refresh")
    look(w, clock, iid)
    internal = {"status" if "pre-filled" in n["body"] else "refresh": n["internal"] for n in replies(w, iid)}
    assert internal == {"status": True, "refresh": False}


def test_blocked_users_command_is_refused(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    person(w, "blocked-bo", DEVELOPER, state="blocked")
    say(w, iid, "blocked-bo", "@incident-bot handoff seoc @blocked-bo")
    look(w, clock, iid)
    [reply] = replies(w, iid)
    assert "refused" in reply["body"]
    assert assignees(w, iid) == ["sec-oncall"]


# ---- text echoed in replies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg",
    [
        "https://gitlab.example.com/acme/secret/-/issues/12",
        "[vulnerability:7]",
        "[epic:acme/1]",
        "acme/secret#12",
        "#12",
        "!3",
        "%milestone",
        "~label",
        "$5",
        "&2",
        "`#12`#13",
        "@sec-director",
    ],
)
def test_text_echoed_in_a_reply_forms_no_link_and_no_reference(default_config, arg):
    renderer = TemplateRenderer([default_config.template_dir])
    for body in (f"@incident-bot {arg}", f"@incident-bot snooze {arg}", f"@incident-bot handoff seoc {arg}"):
        reply = _reply_for(default_config, renderer, "dana", body)
        found = [ref for ref in gitlab_render.references(reply) if ref != ("mention", "@dana")]
        assert found == [], (body, strip_markers(reply))


def test_help_reply_shows_no_stray_backslashes(default_config):
    renderer = TemplateRenderer([default_config.template_dir])
    _, text, _ = gitlab_render.read(_reply_for(default_config, renderer, "dana"))
    assert "\\" not in text
    assert "@incident-bot handoff seoc|simoc|cmoc @user" in text


# ---- odd ids in an authenticated payload ---------------------------------------------------------------


ODD_IIDS = {
    "superscript": "²",
    "arabic-indic": "١٢",
    "fullwidth": "１２",
    "math-bold": "𝟏𝟐",
    "5000-digit string": "9" * 5000,
    "5000-digit number": 10**5000,
    "over bigint": 2**64,
    "negative": "-1",
    "exponent": "1e3",
    "padded": " 12",
}


@pytest.mark.parametrize("iid", list(ODD_IIDS.values()), ids=list(ODD_IIDS))
def test_odd_iid_is_ignored_with_a_reason_not_an_error(iid):
    payload = {
        "object_kind": "issue",
        "project": {"id": 1, "path_with_namespace": "acme/security-incidents"},
        "object_attributes": {"iid": iid, "id": 5, "title": "x", "action": "open"},
    }
    event = parse_event("Issue Hook", payload)
    assert isinstance(event, Ignored) and "iid" in event.reason
