"""What of a team's template the bot applies itself, and what it drops (``bot.core.teamintent``; table tests)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.commands.cli import renderer_for
from bot.core.actions import FixChild
from bot.core.diff import diff
from bot.core.model import BotState, Child, Dropped, IncidentRef, Issue, Observed, TemplateIntent
from bot.core.policy import plan
from bot.core.teamintent import describe, label_problem, parse_due, template_intent
from bot.text.hazards import find_hazards
from bot.text.quickactions import quick_actions
from tests.test_diff import NOW, incident

TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("2026-12-24", date(2026, 12, 24)),
        ("today", TODAY),
        ("Tomorrow", date(2026, 12, 1)),
        ("in 3 days", date(2026, 12, 3)),
        ("in 1 week", date(2026, 12, 7)),
        ("in 2 weeks", date(2026, 12, 14)),
        ("2026-02-30", None),
        ("next friday", None),
        ("", None),
    ],
)
def test_due_dates_the_bot_reads(arg, expected):
    assert parse_due(arg, TODAY) == expected


@pytest.mark.parametrize(
    ("label", "refused"),
    [
        ("mpm-intake", False),
        ("security-incident", True),  # the trigger
        ("Security-Incident", True),  # GitLab's label names compare case-insensitively here
        ("incident-comms", True),  # the child label
        ("comms-faq", True),  # another channel's label
        ("severity::1", True),
        ("severity::0", True),  # not configured, but in the severities' scope
        ("comms::sending", True),  # a phase
        ("comms::whatever", True),
        ("data-breach", True),  # an impact flag
        ("team::intake", False),
    ],
)
def test_which_labels_a_template_may_add(default_config, label, refused):
    assert (label_problem(label, default_config) is not None) == refused


def intent_of(text: str, cfg) -> TemplateIntent:
    return template_intent(quick_actions(text), cfg, "incident-bot", TODAY)


@pytest.mark.parametrize(
    ("text", "labels", "assignees", "dropped"),
    [
        ("/label ~mpm-intake ~\"two words\"", ("mpm-intake", "two words"), (), ()),
        ("/labels mpm-intake,~security-incident", ("mpm-intake",), (),
         (Dropped("/labels mpm-intake,~security-incident", "~security-incident is one of the bot's labels"),)),
        ("/assign @a, @b @a", (), ("a", "b"), ()),
        ("/assign me", (), (), (Dropped("/assign me", "`me` would be the bot"),)),
        ("/assign @Incident-Bot", (), (), (Dropped("/assign @Incident-Bot", "@Incident-Bot is the bot"),)),
        ("/assign", (), (), (Dropped("/assign", "it names nobody"),)),
        ("/label", (), (), (Dropped("/label", "it names no label"),)),
        ("/relate #1", (), (), (Dropped("/relate #1", "it would act on other issues with the bot's access"),)),
        ("/zoom https://x", (), (), (Dropped("/zoom https://x", "the bot applies only labels, assignees, a "
                                     "milestone, a due date and a weight from a team's template"),)),
    ],
)
def test_what_a_template_asks_for(default_config, text, labels, assignees, dropped):
    intent = intent_of(text, default_config)
    assert (intent.labels, intent.assignees, intent.dropped) == (labels, assignees, dropped)


def test_a_template_cannot_make_the_bot_look_up_more_than_ten_people(default_config):
    text = "\n".join(f"/assign @user{n}" for n in range(50))
    intent = intent_of(text, default_config)
    assert len(intent.assignees) == 10 and len(intent.dropped) == 40
    assert "at most 10 people" in intent.dropped[0].why


def test_milestone_due_and_weight(default_config):
    intent = intent_of('/milestone %"Q4 launch"\n/due in 2 days\n/weight 5', default_config)
    assert (intent.milestone, intent.due_date, intent.weight) == ("Q4 launch", "2026-12-02", 5)
    assert intent_of("/milestone %v1.0", default_config).milestone == "v1.0"
    assert intent_of("/weight -1", default_config).weight is None


def test_the_log_text_is_inert_whatever_the_template_says():
    intent = TemplateIntent(
        labels=("x",),
        assignees=("alice",),
        dropped=(Dropped("/cc @all #1 <b>x</b> `y`", "why @all"), Dropped("/close", "reason")),
    )
    text = describe(intent, ("alice",))
    assert [h for h in find_hazards(text) if h.kind in ("mention", "quick_action", "raw_html")] == []
    assert "/cc @all" in text.replace("\\", "")
    many = TemplateIntent(dropped=tuple(Dropped(f"/close {n}", "r") for n in range(15)))
    assert describe(many).endswith("and 5 more")


# ---- a child changed after create is put back (``diff._fix_children``) --------------------------------------


@pytest.mark.parametrize(
    ("confidential", "labels", "assignees", "state", "expected"),
    [
        (True, ("comms-faq", "incident-comms"), ("comms-oncall",), "opened", None),  # as the plan says
        (False, ("comms-faq", "incident-comms"), ("comms-oncall",), "opened", (True, (), None)),
        (True, ("incident-comms",), ("comms-oncall",), "opened", (False, ("comms-faq",), None)),
        (True, ("comms-faq", "incident-comms"), (), "opened", (False, (), ("comms-oncall",))),
        (True, ("comms-faq", "incident-comms"), ("incident-bot",), "opened", (False, (), ("comms-oncall",))),
        (True, ("comms-faq", "incident-comms"), ("pr-manager",), "opened", None),  # a person's choice: kept
        (False, (), (), "closed", (True, (), None)),  # a closed child: confidential only
    ],
)
def test_a_changed_child_is_put_back(default_config, confidential, labels, assignees, state, expected):
    inc = incident("security-incident", "severity::1", "comms-faq", assignees=("sec-oncall",))
    child = Issue(IncidentRef("42", 13), labels=frozenset(labels), assignees=assignees, state=state,
                  confidential=confidential)
    state_ = BotState(roles={"seoc": "sec-oncall", "simoc": "sec-incident-manager", "cmoc": "comms-oncall"})
    observed = Observed(incident=inc, children={"comms-faq": Child("comms-faq", child, linked=True)}, state=state_,
                        orphans_searched=True)
    fixes = [
        a
        for a in diff(plan(inc, state_, default_config, NOW), observed, default_config, renderer_for(default_config))
        if isinstance(a, FixChild)
    ]
    if expected is None:
        assert fixes == []
    else:
        [fix] = fixes
        assert (fix.confidential, fix.add_labels, fix.assignees) == expected
