"""Comms in the plan's order (``comms_order`` in the config), on the pure core: which rule a closed child
breaks, the one comment on the child and the one status log line, the checklist's mark, the status reply."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.commands.cli import renderer_for
from bot.config import ConfigError, parse_config
from bot.core import bodies, order
from bot.core.actions import NoteOnChild, PostNote
from bot.core.converge import DryRun, converge
from bot.core.diff import diff
from bot.core.model import BotState, Child, IncidentRef, Issue, Observed
from bot.core.policy import plan
from bot.text.hazards import find_hazards, unexpected_hazards
from bot.text.markers import StateKey, strip_markers
from tests.security.gitlab_render import mentions, read

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KEY = StateKey(b"k" * 32)
IID = {"comms-email": 21, "comms-blog": 22, "comms-faq": 23, "comms-social": 24, "comms-security-alert": 25,
       "comms-press": 26}
DRI = {"comms-email": "mpm-oncall", "comms-blog": "sec-oncall", "comms-faq": "comms-oncall",
       "comms-social": "comms-oncall", "comms-security-alert": "comms-oncall", "comms-press": "pr-manager"}


@pytest.fixture(scope="module")
def r(default_config):
    return renderer_for(default_config)


def t(hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(2026, 11, 30, h, m, tzinfo=UTC)


def child(label: str, closed: str | None = None) -> Child:
    issue = Issue(
        IncidentRef("acme/sec", IID[label]),
        labels=frozenset({"incident-comms", label}),
        state="closed" if closed else "opened",
        closed_at=t(closed) if closed else None,
        confidential=True,
        assignees=(DRI[label],),
        author="incident-bot",
    )
    return Child(label, issue, linked=True)


def observed(selected: tuple[str, ...], closed: dict[str, str], *, exists: tuple[str, ...] | None = None,
             logged: frozenset[str] = frozenset()) -> Observed:
    labels = frozenset({"security-incident", "severity::2", "comms::sending", *selected})
    incident = Issue(IncidentRef("acme/sec", 7), id=907, project_id=11, labels=labels, assignees=("sec-oncall",))
    present = selected if exists is None else exists
    return Observed(
        incident=incident,
        children={label: child(label, closed.get(label)) for label in present},
        state=BotState({"seoc": "sec-oncall", "simoc": "sec-incident-manager", "cmoc": "comms-oncall"}),
        orphans_searched=True,
        logged=logged,
        key=KEY,
    )


def breaches(cfg, obs: Observed) -> list[str]:
    desired = plan(obs.incident, obs.state, cfg, NOW)
    return [b.key for b in order.breaches(desired, obs, cfg)]


EMAIL, BLOG, FAQ, SOCIAL, ALERT, PRESS = (
    "comms-email", "comms-blog", "comms-faq", "comms-social", "comms-security-alert", "comms-press")


@pytest.mark.parametrize(
    ("case", "selected", "closed", "expected"),
    [
        ("blog before the customer email (still open)", (EMAIL, BLOG), {BLOG: "10:00"},
         ["order:customers-first:comms-blog:22"]),
        ("blog before the customer email (closed later)", (EMAIL, BLOG), {BLOG: "10:00", EMAIL: "11:00"},
         ["order:customers-first:comms-blog:22"]),
        ("email first, then the blog: in order", (EMAIL, BLOG), {EMAIL: "10:00", BLOG: "11:00"}, []),
        ("both at the same minute: in order", (EMAIL, BLOG), {EMAIL: "10:00", BLOG: "10:00"}, []),
        ("press statement before the email", (EMAIL, PRESS), {PRESS: "10:00"},
         ["order:customers-first:comms-press:26"]),
        ("social post before the email and the FAQ: two rules", (EMAIL, FAQ, SOCIAL), {SOCIAL: "10:00"},
         ["order:customers-first:comms-social:24", "order:advocates-before-public:comms-social:24"]),
        ("social post after the email, before the FAQ", (EMAIL, FAQ, SOCIAL), {EMAIL: "09:30", SOCIAL: "10:00"},
         ["order:advocates-before-public:comms-social:24"]),
        ("social post after the FAQ and the email", (EMAIL, FAQ, SOCIAL),
         {EMAIL: "09:30", FAQ: "09:45", SOCIAL: "10:00"}, []),
        ("security alert before the blog", (BLOG, ALERT), {ALERT: "10:00"},
         ["order:blog-before-alert:comms-security-alert:25"]),
        ("security alert after the blog", (BLOG, ALERT), {BLOG: "09:00", ALERT: "10:00"}, []),
        ("the email is not selected: customers-first does not fire", (BLOG,), {BLOG: "10:00"}, []),
        ("no FAQ selected: only customers-first for the social post", (EMAIL, SOCIAL), {SOCIAL: "10:00"},
         ["order:customers-first:comms-social:24"]),
        ("nothing closed yet", (EMAIL, BLOG, FAQ, SOCIAL, ALERT), {}, []),
        ("the first channel, closed alone", (EMAIL, BLOG), {EMAIL: "10:00"}, []),
    ],
)
def test_each_rule(default_config, case, selected, closed, expected):
    assert breaches(default_config, observed(selected, closed)) == expected, case


def test_a_selected_channel_whose_child_is_not_opened_yet_counts_as_not_sent(default_config):
    obs = observed((EMAIL, BLOG), {BLOG: "10:00"}, exists=(BLOG,))
    assert breaches(default_config, obs) == ["order:customers-first:comms-blog:22"]


def test_a_channel_removed_from_the_incident_no_longer_comes_first(default_config):
    obs = observed((BLOG,), {BLOG: "10:00"}, exists=(EMAIL, BLOG))  # comms-email removed, its child kept open
    assert breaches(default_config, obs) == []


def test_rules_are_data(default_config):
    rule = {"id": "faq-first", "plan": "FAQ first", "channel": FAQ, "before": [EMAIL]}
    raw = default_config.model_dump(by_alias=True, exclude={"source", "base_dir"})
    cfg = parse_config({**raw, "comms_order": [rule]})
    assert breaches(cfg, observed((EMAIL, FAQ), {EMAIL: "10:00"})) == ["order:faq-first:comms-email:21"]
    assert breaches(cfg, observed((EMAIL, BLOG), {BLOG: "10:00"})) == [], "the bundled rules are gone"


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ([{"id": "a", "plan": "p", "channel": "comms-emial", "before": [BLOG]}],
         "comms_order[a].channel: unknown channel 'comms-emial' (did you mean 'comms-email'?"),
        ([{"id": "a", "plan": "p", "channel": EMAIL, "before": ["comms-blgo"]}],
         "comms_order[a].before[0]: unknown channel 'comms-blgo' (did you mean 'comms-blog'?"),
        ([{"id": "a", "plan": "p", "channel": EMAIL, "before": [EMAIL]}], "'comms-email' cannot come before itself"),
        ([{"id": "a", "plan": "p", "channel": EMAIL, "before": []}], "name at least one channel that comes later"),
        ([{"id": "a", "plan": "p", "channel": EMAIL, "before": [BLOG]}] * 2, "duplicate rule id 'a'"),
        ([{"id": "a", "channel": EMAIL, "before": [BLOG]}], "comms_order[a].plan: required key is missing"),
    ],
)
def test_order_config_problems_are_one_line_each(default_config, rules, problem):
    raw = default_config.model_dump(by_alias=True, exclude={"source", "base_dir"})
    with pytest.raises(ConfigError) as err:
        parse_config({**raw, "comms_order": rules}, source="bot.yaml")
    lines = [str(p) for p in err.value.problems]
    assert any(problem in line for line in lines), lines


# ---- what the bot writes, once ------------------------------------------------------------------------


def run(cfg, r, obs: Observed):
    desired = plan(obs.incident, obs.state, cfg, NOW)
    final, actions = converge(desired, obs, cfg, r, DryRun())
    return desired, final, actions


def test_once_on_the_child_and_once_in_the_status_log(default_config, r):
    obs = observed((EMAIL, BLOG), {BLOG: "10:00"})
    desired, final, actions = run(default_config, r, obs)
    notes = [a for a in actions if isinstance(a, NoteOnChild)]
    assert [(n.child_iid, n.log_key) for n in notes] == [(22, "order:customers-first:comms-blog:22")]
    logs = [a for a in actions if isinstance(a, PostNote) and a.kind == "log"]
    assert any("order:customers-first:comms-blog:22" in a.log_keys for a in logs)
    assert actions.index(notes[0]) < actions.index(logs[0]), "the child first: the log line marks both done"
    assert diff(desired, final, default_config, r) == []
    # Reopened and closed again: the same child, the same rule, nothing new.
    again = replace(obs, logged=final.logged)
    blog = again.children[BLOG]
    reclosed = replace(blog, issue=replace(blog.issue, closed_at=t("11:30")))
    again = replace(again, children={**again.children, BLOG: reclosed})
    _, _, more = run(default_config, r, again)
    assert not [a for a in more if isinstance(a, NoteOnChild) or (isinstance(a, PostNote) and a.kind == "log")]


def test_in_order_costs_nothing(default_config, r):
    obs = observed((EMAIL, BLOG), {EMAIL: "09:00", BLOG: "10:00"})
    _, _, actions = run(default_config, r, obs)
    assert not [a for a in actions if isinstance(a, NoteOnChild)]


def test_the_texts_name_the_rule_and_the_dri_and_render_cleanly(default_config, r):
    obs = observed((EMAIL, BLOG), {BLOG: "10:00"})
    desired, final, actions = run(default_config, r, obs)
    note = next(a for a in actions if isinstance(a, NoteOnChild))
    assert bodies.logged_keys(note.body) == {note.log_key}, "found again by its marker after a crash"
    _, child_text, _ = read(note.body)
    assert mentions(note.body) == ["sec-oncall"], "the DRI of the child closed out of order"
    assert "rule customers-first" in child_text
    assert '"The first external communications should always be directed to customers."' in child_text
    assert "#22 Mitigation and response blog post (comms-blog) was closed before #21 Incident response customer " \
        "email (comms-email), which is still open" in child_text
    log = next(a for a in actions if isinstance(a, PostNote) and a.kind == "log")
    checklist = bodies.checklist_body(desired, final, default_config, r)
    people = {"sec-oncall", "mpm-oncall", "comms-oncall", "sec-incident-manager", "sec-director"}
    for body in (note.body, log.body, checklist):
        assert unexpected_hazards(body, people) == []
        _, text, _ = read(body)
        assert "\\" not in text, text
        for line in text.splitlines():
            assert line.count("closed before") <= 1 or "⚠" in line, f"run-together line: {line}"
    line = next(x for x in read(checklist)[1].splitlines() if "#22" in x)
    assert "⚠ closed before comms-email (rule: customers-first)" in line, line
    assert "#21" in read(log.body)[1] and "which is still open" in read(log.body)[1]


def test_the_status_reply_gives_each_childs_state_and_the_order(default_config, r):
    obs = observed((EMAIL, BLOG), {BLOG: "10:00"})
    desired = plan(obs.incident, obs.state, default_config, NOW)
    body = strip_markers(bodies.status_update_body(desired, obs, default_config, r)).replace("\\", "")
    assert "#21 Incident response customer email: opened, assigned to @mpm-oncall" in body
    assert "#22 Mitigation and response blog post: closed, assigned to @sec-oncall, ⚠ closed before ` comms-email `" \
        in body
    assert "Comms in the plan's order: not kept" in body
    lines = read(bodies.status_update_body(desired, obs, default_config, r))[1].splitlines()
    assert [x.split(":")[0] for x in lines if x.startswith("#2") or x.startswith("Comms in")] == [
        "#21 Incident response customer email",
        "#22 Mitigation and response blog post",
        "Comms in the plan's order",
    ], "one line each, none run together"
    in_order = observed((EMAIL, BLOG), {EMAIL: "09:00", BLOG: "10:00"})
    body = strip_markers(bodies.status_update_body(desired, in_order, default_config, r))
    assert "Comms in the plan's order: kept" in body
    assert find_hazards(bodies.status_update_body(desired, obs, default_config, r)) == [], "nobody is notified"

