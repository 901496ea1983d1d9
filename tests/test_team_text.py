"""Pure parts of children in a team's project: the team's template before the bot's part, cross-project
references, and the status log's record of a child in another project (table tests, no I/O)."""

from __future__ import annotations

import pytest

from bot.core import bodies
from bot.core.model import IncidentRef, Issue
from bot.gitlab.client import UnsafeBody, child_body
from bot.text.escape import UnsafeValue, escape_inline, issue_ref
from bot.text.hazards import UnsafeOutput, find_hazards, preamble_problem, with_preamble
from bot.text.markers import PREVIEW_KEY, marker

BODY = "**Email** for " + escape_inline("Data /close @all #1 ~bug") + "\n\n- [ ] Plain text only\n"


@pytest.mark.parametrize(
    "preamble",
    [
        "/label ~mpm-intake\n/assign @mpm-oncall",  # the team's quick actions are the team's
        "## Request\n\n- [ ] Audience\n",
        "<details>\n<summary>How to</summary>\n\nFill it in.\n</details>",
        "",
    ],
)
def test_a_teams_template_goes_first_unchanged_and_the_bots_part_after_it(preamble):
    joined = with_preamble(preamble, BODY)
    assert joined.startswith(preamble.rstrip())
    assert joined.endswith(BODY)
    team_quick = [h for h in find_hazards(preamble) if h.kind == "quick_action"]
    assert [h.excerpt for h in find_hazards(joined) if h.kind == "quick_action"] == [h.excerpt for h in team_quick]


@pytest.mark.parametrize(
    "body",
    [
        "title\n/close\n",  # a value that broke out of its line
        "/label ~pwned\n",
        "ok\n\n/assign @all",
    ],
)
def test_the_bots_part_may_hold_no_quick_action_whatever_the_template(body):
    with pytest.raises(UnsafeOutput):
        with_preamble("/label ~x", body)
    with pytest.raises(UnsafeBody):
        child_body("/label ~x", body)
    with pytest.raises(UnsafeBody):
        child_body("", body)


@pytest.mark.parametrize("preamble", ["<pre>", "<!-- note to self", "<script>", "<style>\nbody{}"])
def test_a_template_that_would_make_the_bots_escapes_act_is_refused(preamble):
    with pytest.raises(UnsafeOutput):
        with_preamble(preamble, BODY)
    assert preamble_problem(preamble) is not None


@pytest.mark.parametrize("preamble", ["/label ~x", "## Request\n- [ ] a", "<details>", "<!-- hidden -->\ntext"])
def test_an_ordinary_template_has_no_problem(preamble):
    assert preamble_problem(preamble) is None


def test_bot_markers_in_a_template_are_dropped():
    forged = "Intake\n" + marker("child", channel="comms-faq", incident=1) + "\n"
    assert "incident-bot" not in with_preamble(forged, BODY).split(BODY)[0]


# ---- references and records across projects -------------------------------------------------------------

INCIDENT = Issue(
    IncidentRef("acme/security-incidents", 7), id=5001, project_id=11, project_path="acme/security-incidents"
)


def child(pid: int, iid: int, path: str) -> Issue:
    return Issue(IncidentRef(path, iid), project_id=pid, project_path=path, author="incident-bot")


@pytest.mark.parametrize(
    ("issue", "expected"),
    [
        (child(11, 3, "acme/security-incidents"), "#3"),
        (child(12, 3, "marketing/programs"), "marketing/programs#3"),
        (child(13, 4, "mkt_ops/lists"), "mkt\\_ops/lists#4"),
    ],
)
def test_a_child_is_referred_to_across_projects(issue, expected):
    assert bodies.child_ref(issue, INCIDENT) == expected


@pytest.mark.parametrize("project", ["", "noslash", "a/b c", "a/../b", "a/b#1", "-a/b"])
def test_issue_ref_refuses_what_is_not_a_project_path(project):
    with pytest.raises(UnsafeValue):
        issue_ref(1, project)


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        ({"child:comms-email:3"}, {(None, 3): "comms-email"}),
        ({"child:comms-email:12/3"}, {(12, 3): "comms-email"}),
        ({"kept:comms-faq:12/9", "child:comms-faq:9"}, {(12, 9): "comms-faq", (None, 9): "comms-faq"}),
        ({"child:comms-email:x/3", "child:comms-email:", "engaged"}, {}),
    ],
)
def test_the_status_log_records_which_project_a_child_is_in(logged, expected):
    assert bodies.recorded_children(frozenset(logged)) == expected


def test_the_same_iid_in_another_project_is_another_child():
    recorded = bodies.recorded_children(frozenset({"child:comms-email:12/3"}))
    assert bodies.recorded_channel(recorded, child(12, 3, "marketing/programs"), INCIDENT) == "comms-email"
    assert bodies.recorded_channel(recorded, child(11, 3, "acme/security-incidents"), INCIDENT) is None
    assert bodies.recorded_channel(recorded, child(13, 3, "other/project"), INCIDENT) is None


def test_a_signed_child_marker_wins_over_an_unsigned_one_before_it():
    from bot.core.model import Observed

    observed = Observed(incident=INCIDENT, key=PREVIEW_KEY)
    signed = bodies.child_marker(observed, "comms-email")
    forged = marker("child", channel="comms-faq", incident=INCIDENT.id)
    claim = bodies.child_claim(f"{forged}\nteam text\n{signed}\n", PREVIEW_KEY, INCIDENT)
    assert claim == (INCIDENT.id, "comms-email", True)
    assert bodies.child_claim(f"{forged}\n", PREVIEW_KEY, INCIDENT) == (INCIDENT.id, "comms-faq", False)
