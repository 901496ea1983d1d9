"""An incident the bot can read but not work on: it says so once on the incident, in GitLab's roles, and the job
ends as a dead letter with the same reason; raised to Reporter, a ``refresh`` brings the incident round.

Against the simulated GitLab, which applies GitLab's rules for a Guest member (gitlabhq ``doc/user/permissions.md``:
a Guest may create issues and leave comments; assigning and labelling issues, and viewing confidential ones, take
Reporter): it reads a public project's issues and comments on them, but ``PUT /projects/:id/issues/:iid`` on an
issue it did not open answers 403 (``lib/api/issues.rb``: ``authorize! :update_issue``), and a confidential issue
answers 404. The comment is read as GitLab renders it (comrak, ``tests/rendered.py``).
"""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest

from bot.core.access import Refusal, doing, refusal
from bot.gitlab.errors import CannotAct, GitLabCallError
from bot.store import JobState, SQLiteStore
from bot.worker import Outcome, Worker
from tests import store_inspect as peek
from tests.rendered import rendered_text

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
GUEST, REPORTER = 10, 20
NOTES = r"/projects/\d+/issues/\d+/(notes|discussions)"
SAID = (
    "incident-bot cannot work on this incident: it needs the Reporter role (or higher) in acme/security-incidents "
    "to assign and label issues; it has Guest."
)
REASON = (
    "incident-bot needs the Reporter role (or higher) in acme/security-incidents to assign and label issues; "
    "it has Guest"
)


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal", max_attempts=3)
    yield s
    s.close()


def worker_for(w, store, clock) -> Worker:
    return Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock, settle=timedelta(0))


def deliver(w, store, clock, iid: int, name: str, change: str | None = None) -> None:
    store.record_delivery(name, f"{w.project_id}#{iid}", "Issue Hook", clock(), b"{}", change=change)


def notices(w, iid: int) -> list[list[str]]:
    """The bot's comments on the incident that say it cannot work on it, as GitLab shows them."""
    seen = [rendered_text(n["body"]) for n in w.bot_notes(iid)]
    return [lines for lines in seen if lines and "cannot work on this incident" in lines[0]]


def guest_bot(w) -> None:
    w.sim.state.add_member(w.project, w.cfg.bot.username, GUEST)


def test_a_guest_bot_says_once_which_role_it_needs_and_the_dead_letter_says_the_same(w, store, clock):
    guest_bot(w)
    iid = w.incident(*S1)
    deliver(w, store, clock, iid, "d1")
    worker = worker_for(w, store, clock)

    first = worker.run_once()
    assert first is not None and first.outcome is Outcome.PERMANENT
    [said] = notices(w, iid)
    assert said == [SAID, "Ask a Maintainer of acme/security-incidents to change its role, then comment "
                          "@incident-bot refresh. Until then it does nothing more here."]
    job = peek.get_job(store, first.job_id)
    assert job is not None and job.state is JobState.DEAD, "dead at once: GitLab repeats a refusal"
    assert job.last_error is not None and REASON + " (said on the incident)" in job.last_error
    assert REASON in " ".join(said).replace("incident-bot cannot work on this incident: it", "incident-bot")

    # Someone edits the incident: the job comes back, GitLab refuses again, and nothing more is said.
    clock.advance(minutes=30)
    w.sim.reset_log()
    deliver(w, store, clock, iid, "d2", change="edited")
    second = worker.run_once()
    assert second is not None and second.outcome is Outcome.PERMANENT
    assert len(notices(w, iid)) == 1
    bot_id = w.sim.state.find_user(w.cfg.bot.username).id
    asked = w.sim.find_requests(method="GET", path_regex=rf"/members/all/{bot_id}$")
    assert len(asked) == 1, "the refusal costs one read: the bot's role as GitLab says it now"
    assert [r for r in w.sim.writes() if r.method == "POST" and "/notes" in r.path] == []
    job = peek.get_job(store, second.job_id)
    assert job is not None and job.state is JobState.DEAD
    assert job.last_error is not None and REASON + " (said on the incident before)" in job.last_error


def test_a_bot_that_cannot_read_the_confidential_incident_says_nothing_and_dead_letters(w, store, clock):
    guest_bot(w)
    iid = w.incident(*S1, confidential=True)
    deliver(w, store, clock, iid, "d1")
    w.sim.reset_log()
    result = worker_for(w, store, clock).run_once()
    assert result is not None and result.outcome is Outcome.PERMANENT
    assert w.bot_notes(iid) == []
    assert w.sim.writes() == [], "nothing written anywhere"
    job = peek.get_job(store, result.job_id)
    assert job is not None and job.state is JobState.DEAD
    assert job.last_error is not None and "read the incident failed: 404" in job.last_error
    assert "needs the" not in job.last_error


def test_raised_to_reporter_a_refresh_brings_the_incident_round(w, store, clock):
    guest_bot(w)
    iid = w.incident(*S1)
    deliver(w, store, clock, iid, "d1")
    worker = worker_for(w, store, clock)
    assert worker.run_once().outcome is Outcome.PERMANENT  # type: ignore[union-attr]

    clock.advance(minutes=10)
    w.sim.state.add_member(w.project, w.cfg.bot.username, REPORTER)  # a Maintainer changes its role
    note = w.sim.state.add_note(w.project, iid, "@incident-bot refresh", author="sec-oncall")
    key = f"{w.project_id}#{iid}"
    store.record_delivery("d-refresh", key, "Note Hook", clock(), b"{}", change=f"note:{note['id']}")
    results = []
    while (result := worker.run_once()) is not None:
        results.append(result.outcome)
        clock.advance(seconds=5)
        if len(results) > 5:
            break
    assert results and results[0] is Outcome.OK
    incident = w.sim.state.get_issue(w.project, iid)
    assert [a["username"] for a in incident["assignees"]] == ["sec-oncall"]
    snap = w.snapshot(iid)
    assert snap["checklists"] == 1 and snap["links"] == 2
    assert [(labels, who) for _, labels, who, _, _ in snap["children"]] == [
        (("comms-faq", "incident-comms"), ("comms-oncall",)),
        (("comms-email", "incident-comms"), ("mpm-oncall",)),
    ], "the children a Guest opened without labels or assignees are put back as the plan says"
    assert len(notices(w, iid)) == 1, "said once, and kept as the record of what happened"
    replies = [n for n in w.bot_notes(iid) if '"cmd' in n["body"]]
    assert len(replies) == 1, "the refresh is answered"
    # A second look changes nothing and says nothing.
    w.sim.reset_log()
    deliver(w, store, clock, iid, "d3", change="edited-again")
    assert worker.run_once().outcome is Outcome.OK  # type: ignore[union-attr]
    assert len(notices(w, iid)) == 1


@pytest.mark.parametrize(
    ("step", "status", "level", "expected"),
    [
        ("update the incident", 403, GUEST, "to assign and label issues"),
        ("link #4 to the incident", 403, GUEST, "to link its issues to the incident"),  # before GitLab 17
        ("link #4 to the incident", 404, GUEST, None),  # the child may be gone: not the role's doing
        ("update the incident", 404, GUEST, None),
        ("update the incident", 403, REPORTER, None),  # the role does not explain it: nothing said
        ("update the incident", 409, GUEST, None),
        ("post a comment", 403, GUEST, None),  # it could not say so either
        ("read the incident", 404, GUEST, None),
    ],
)
def test_only_a_refusal_the_role_explains_is_said(step, status, level, expected):
    found = refusal(step, status, level=level, project="acme/x_y", bot="incident-bot")
    if expected is None:
        assert found is None
        return
    assert isinstance(found, Refusal) and found.doing == doing(step)
    assert found.reason.endswith(f"in acme/x_y {expected}; it has Guest")
    assert rendered_text(found.body())[0] == (
        f"incident-bot cannot work on this incident: it needs the Reporter role (or higher) in acme/x_y {expected}; "
        "it has Guest."
    )


@pytest.mark.parametrize("applied", [False, True])
def test_a_notice_whose_post_was_lost_is_said_at_the_next_look_or_found_again(w, store, clock, applied):
    """GitLab's answer to the notice is lost (502, before or after it saved the comment): the dead letter says
    it could not say so; the next look posts it, or finds it by its signed key. One comment either way."""
    guest_bot(w)
    iid = w.incident(*S1)
    deliver(w, store, clock, iid, "d1")
    w.sim.inject("502", times=1, method="POST", path_regex=r"/issues/\d+/notes$", applied=applied)
    worker = worker_for(w, store, clock)
    first = worker.run_once()
    assert first is not None and first.outcome is Outcome.PERMANENT
    assert first.error is not None and REASON + " (could not say so on the incident: 502)" in first.error
    clock.advance(minutes=30)
    deliver(w, store, clock, iid, "d2", change="edited")
    second = worker.run_once()
    assert second is not None and second.error is not None
    assert len(notices(w, iid)) == 1
    expected = " (said on the incident before)" if applied else " (said on the incident)"
    assert REASON + expected in second.error


def test_the_refusal_survives_a_trip_through_a_queue():
    failed = GitLabCallError("update the incident", "11#1", 403, "403 Forbidden", False)
    exc = CannotAct(failed, REASON, "said on the incident")
    back = pickle.loads(pickle.dumps(exc))
    assert isinstance(back, CannotAct) and str(back) == str(exc) and back.status == 403 and not back.transient
