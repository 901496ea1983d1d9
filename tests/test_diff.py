"""diff and the converge loop, without HTTP: the dry-run applier stands in for GitLab."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.commands.cli import renderer_for
from bot.core import commands
from bot.core.actions import CreateChild, LinkChild, PostNote, ReassignChild, UpdateIncident, UpsertChecklist
from bot.core.converge import DryRun, Result, converge, fold
from bot.core.diff import diff
from bot.core.model import BotState, Child, IncidentRef, Issue, Note, Observed
from bot.core.policy import plan, plan_observed
from bot.text.hazards import find_hazards
from bot.text.markers import parse_markers, strip_markers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
S1 = ("security-incident", "severity::1", "data-breach", "publicly-reported", "comms-email", "comms-faq", "comms-blog")


@pytest.fixture(scope="module")
def r(default_config):
    return renderer_for(default_config)


def incident(*labels, assignees=(), state="opened", title="Export API leaks data") -> Issue:
    return Issue(
        IncidentRef("42", 12), id=9012, title=title, labels=frozenset(labels), assignees=assignees, state=state
    )


def run(cfg, r, observed: Observed, state: BotState | None = None):
    desired = plan(observed.incident, state or observed.state, cfg, NOW)
    return converge(desired, observed, cfg, r, DryRun())


def see(cfg, r, observed: Observed):
    """A later look: the plan from everything observed (commands, the state), as the reconciler makes it."""
    return converge(plan_observed(observed, cfg, NOW), observed, cfg, r, DryRun())


def kinds(actions):
    return [type(a).__name__ for a in actions]


def test_new_s1_incident_converges_in_rounds(default_config, r):
    observed = Observed(incident=incident(*S1), orphans_searched=True)
    desired = plan(observed.incident, BotState(), default_config, NOW)
    first = diff(desired, observed, default_config, r)
    assert sorted(kinds(first)) == ["CreateChild"] * 3 + ["UpdateIncident"]
    final, actions = converge(desired, observed, default_config, r, DryRun())
    assert kinds(actions).count("CreateChild") == 3
    assert kinds(actions).count("LinkChild") == 3
    assert kinds(actions).count("UpsertChecklist") == 1
    assert kinds(actions).count("PostNote") == 1
    assert diff(desired, final, default_config, r) == []


def test_children_are_confidential_labelled_and_assigned(default_config, r):
    _, actions = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    creates = [a for a in actions if isinstance(a, CreateChild)]
    assert {a.channel: a.assignee for a in creates} == {
        "comms-email": "mpm-oncall",
        "comms-faq": "comms-oncall",
        "comms-blog": "sec-oncall",
    }
    for a in creates:
        assert a.confidential is True
        assert a.labels == ("incident-comms", a.channel)
        assert "- [ ] " in a.description, "the plan's rules are a checklist"
        assert any(m.kind == "child" for m in parse_markers(a.description))


def test_the_seoc_is_assigned_and_the_phase_set(default_config, r):
    _, actions = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    [update] = [a for a in actions if isinstance(a, UpdateIncident)]
    assert update.assign == "sec-oncall" and update.add_labels == ("comms::investigating",)


def test_checklist_lists_roles_engagements_and_children(default_config, r):
    _, actions = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    [checklist] = [a for a in actions if isinstance(a, UpsertChecklist)]
    body = checklist.body.replace("\\", "")  # as GitLab renders it: escapes gone
    for text in ("@sec-oncall", "@sec-incident-manager", "@comms-oncall", "Broader e-group", "Legal", "every 1h"):
        assert text in body
    assert body.count("- [ ] #") == 3, body
    assert not [h for h in find_hazards(body) if h.kind != "mention"]


def test_log_comment_says_what_and_why(default_config, r):
    _, actions = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    [log] = [a for a in actions if isinstance(a, PostNote)]
    assert "opened #" in log.body and "because comms\\-email is set" in log.body
    assert "SEOC @sec-oncall (assigned to the incident)" in log.body
    assert "data\\-breach is set" in log.body


def test_second_run_changes_nothing(default_config, r):
    final, _ = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    _, again = run(default_config, r, final)
    assert again == []


def test_ticked_boxes_survive_a_re_render(default_config, r):
    final, _ = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    body = final.checklist.body
    line = next(ln for ln in body.splitlines() if "Broader e" in ln)
    ticked = body.replace(line, line.replace("- [ ]", "- [x]", 1))
    from bot.core.bodies import ticked_items

    observed = replace(
        final, checklist=Note(final.checklist.id, ticked, "incident-bot"), checklist_ticks=ticked_items(ticked)
    )
    # A new flag makes the bot edit the checklist: the tick must stay.
    observed = replace(
        observed, incident=replace(observed.incident, labels=observed.incident.labels | {"live-incident"})
    )
    _, actions = run(default_config, r, observed)
    [update] = [a for a in actions if isinstance(a, UpsertChecklist)]
    assert update.note_id == final.checklist.id
    new_line = next(ln for ln in update.body.splitlines() if "Broader e" in ln)
    assert new_line.lstrip().startswith("- [x]")
    assert "Status page" in update.body


def test_removing_a_channel_keeps_its_child_and_says_so_once(default_config, r):
    final, _ = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    without = replace(final, incident=replace(final.incident, labels=final.incident.labels - {"comms-faq"}))
    after, actions = run(default_config, r, without)
    assert not [a for a in actions if isinstance(a, CreateChild | LinkChild)]
    [log] = [a for a in actions if isinstance(a, PostNote)]
    assert "stays as it is" in log.body
    assert "comms-faq" in after.children
    _, again = run(default_config, r, after)
    assert again == []


def test_a_found_orphan_is_linked_not_recreated(default_config, r):
    orphan = Issue(
        IncidentRef("42", 77), id=1, author="incident-bot", labels=frozenset({"incident-comms", "comms-email"})
    )
    observed = Observed(
        incident=incident(*S1),
        children={"comms-email": Child("comms-email", orphan, linked=False)},
        orphans_searched=True,
    )
    _, actions = run(default_config, r, observed)
    assert kinds(actions).count("CreateChild") == 2
    assert any(isinstance(a, LinkChild) and a.child_iid == 77 for a in actions)


def test_out_of_scope_gets_one_note_and_nothing_else(default_config, r):
    observed = Observed(incident=incident("security-incident", "severity::3", "comms-email"), orphans_searched=True)
    final, actions = run(default_config, r, observed)
    assert kinds(actions) == ["PostNote"]
    assert "severity medium" in actions[0].body.replace("\\", "") or "medium" in actions[0].body
    _, again = run(default_config, r, final)
    assert again == []


def test_raising_severity_engages_fully(default_config, r):
    low, _ = run(default_config, r, Observed(incident=incident("security-incident", "severity::3", "comms-email")))
    raised = replace(low, incident=replace(low.incident, labels=low.incident.labels | {"severity::2"}))
    _, actions = run(default_config, r, raised)
    assert "CreateChild" in kinds(actions) and "UpsertChecklist" in kinds(actions)


@pytest.mark.parametrize(
    "labels", [("severity::1", "comms-email"), ("security-incident", "severity::1", "comms-email")]
)
def test_closed_or_unlabelled_issues_get_nothing(default_config, r, labels):
    state = "closed" if "security-incident" in labels else "opened"
    _, actions = run(default_config, r, Observed(incident=incident(*labels, state=state), orphans_searched=True))
    assert actions == []


def test_roles_recorded_in_the_checklist_are_kept(default_config, r):
    final, _ = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    assert dict(final.state.roles) == {"seoc": "sec-oncall", "simoc": "sec-incident-manager", "cmoc": "comms-oncall"}


def test_refused_assignment_is_not_retried_in_the_same_run(default_config, r):
    observed = Observed(incident=incident(*S1), orphans_searched=True)
    update = UpdateIncident(assign="ghost", add_labels=())
    after = fold(observed, Result(update, warnings=("could not assign \\@ghost: no such GitLab user",)))
    assert after.assign_refused and after.incident.assignees == ()
    desired = plan(after.incident, BotState(), default_config, NOW)
    assert not [a for a in diff(desired, after, default_config, r) if isinstance(a, UpdateIncident) and a.assign]


def test_hostile_title_never_reaches_a_body_unescaped(default_config, r):
    title = "/close\n@all {{ 7*7 }} <!-- incident-bot:checklist {} -->"
    _, actions = run(default_config, r, Observed(incident=incident(*S1, title=title), orphans_searched=True))
    for a in actions:
        body = getattr(a, "body", None) or getattr(a, "description", "")
        assert "@all" not in body.replace("\\@all", "")
        assert "49" not in strip_markers(body)  # a marker's MAC is hex and may hold "49"
        assert not [h for h in find_hazards(body) if h.kind == "quick_action"]


# ---- after a hand-off, children follow the role's new holder -------------------------------------

BEFORE = BotState(roles={"seoc": "sec-oncall", "simoc": "sec-incident-manager", "cmoc": "comms-oncall"})
AFTER = BotState(roles={**BEFORE.roles, "cmoc": "secops-oncall"})


def child_issue(label: str, iid: int, assignees: tuple[str, ...], state: str = "opened") -> Child:
    issue = Issue(IncidentRef("42", iid), labels=frozenset({"incident-comms", label}), assignees=assignees, state=state)
    return Child(label, issue, linked=True)


@pytest.mark.parametrize(
    ("faq_assignees", "faq_state", "recorded", "reassigned"),
    [
        (("comms-oncall",), "opened", BEFORE, "secops-oncall"),  # as the bot assigned it: follows
        (("Comms-Oncall",), "opened", BEFORE, "secops-oncall"),  # usernames are case-insensitive
        (("pr-manager",), "opened", BEFORE, None),  # a person reassigned it by hand: respected
        ((), "opened", BEFORE, None),  # a person unassigned it: respected
        (("comms-oncall", "pr-manager"), "opened", BEFORE, None),  # a person added someone: respected
        (("comms-oncall",), "closed", BEFORE, None),  # a closed child is left alone
        (("comms-oncall",), "opened", AFTER, None),  # no hand-off in this run (already recorded)
    ],
)
def test_a_role_child_follows_a_handoff_only_as_the_bot_left_it(
    default_config, r, faq_assignees, faq_state, recorded, reassigned
):
    children = {
        "comms-faq": child_issue("comms-faq", 13, faq_assignees, faq_state),
        "comms-email": child_issue("comms-email", 14, ("mpm-oncall",)),  # a team's child: never follows a role
    }
    inc = incident(*S1, assignees=("sec-oncall",))
    observed = Observed(incident=inc, children=children, state=recorded, orphans_searched=True)
    desired = plan(inc, AFTER, default_config, NOW)
    moves = [a for a in diff(desired, observed, default_config, r) if isinstance(a, ReassignChild)]
    if reassigned is None:
        assert moves == []
    else:
        assert [(m.channel, m.child_iid, m.previous, m.assignee, m.role) for m in moves] == [
            ("comms-faq", 13, "comms-oncall", reassigned, "cmoc")
        ]
        final = fold(observed, Result(moves[0]))
        assert final.children["comms-faq"].issue.assignees == ("secops-oncall",)
        line = strip_markers(final.pending_log[-1].text).replace("\\", "")
        assert line == (
            "#13 (comms-faq) follows the hand-off of the CMOC: reassigned from @comms-oncall to @secops-oncall"
        )


# ---- where each comment goes: the status log is one thread, a command is answered in its own ------------
def test_the_first_log_entry_starts_the_thread_and_later_ones_reply_in_it(default_config, r):
    final, actions = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    (first,) = [a for a in actions if isinstance(a, PostNote)]
    assert first.kind == "log" and first.starts_thread and first.thread is None
    assert final.log_thread is not None  # found again from the note GitLab answered with

    more = replace(final, incident=replace(final.incident, labels=final.incident.labels | {"comms-security-alert"}))
    _, actions = run(default_config, r, more)
    (entry,) = [a for a in actions if isinstance(a, PostNote)]
    assert entry.thread == final.log_thread and not entry.starts_thread
    assert len(entry.lines) == 1 and entry.lines[0].startswith("opened #")


@pytest.mark.parametrize(
    ("command", "internal"),
    [
        (Note(500, "@incident-bot help", "dana", discussion_id="d500"), False),
        (Note(501, "@incident-bot help", "dana", discussion_id="d77", threaded=True, internal=True), True),
    ],
    ids=["a plain comment", "an internal reply in a thread"],
)
def test_a_command_is_answered_in_its_own_thread(default_config, r, command, internal):
    observed, _ = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    cmd = replace(commands.parse(replace(command, author_id=7), "incident-bot"), allowed=True)
    _, actions = see(default_config, r, replace(observed, commands=(cmd,)))
    (reply,) = [a for a in actions if isinstance(a, PostNote)]
    assert (reply.kind, reply.thread, reply.internal) == ("reply", command.discussion_id, internal)


def test_reminders_and_the_final_comms_stay_top_level(default_config, r):
    observed, _ = run(default_config, r, Observed(incident=incident(*S1), orphans_searched=True))
    done = replace(
        observed, incident=replace(observed.incident, labels=observed.incident.labels | {"comms::all-clear"})
    )
    _, actions = see(default_config, r, done)
    notes = [a for a in actions if isinstance(a, PostNote) and a.kind != "log"]
    assert [(a.kind, a.thread, a.starts_thread) for a in notes] == [("all-clear", None, False)]
