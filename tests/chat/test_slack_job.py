"""The Slack side end to end against the simulated GitLab and an in-memory Slack: a GitLab reconcile queues a
Slack job, the Slack worker sends it once, Slack being down never holds up GitLab, and without a token nothing
about Slack runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.commands.world import World
from bot.integrations.slack.job import SlackPlanner, SlackWorker
from bot.integrations.slack.render import SlackRenderer
from bot.settings import Settings
from bot.simgitlab import ManualClock
from bot.store import DeliveryStore, JobState, open_store
from bot.wiring import slack
from bot.worker import Outcome, Worker
from tests import store_inspect as peek
from tests.chat.fakechat import FakeChat
from tests.security.gitlab_render import read


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeliveryStore]:
    with open_store(str(tmp_path / "bot.sqlite3")) as s:
        yield s


@pytest.fixture
def fake() -> FakeChat:
    return FakeChat()


def gitlab_worker(w: World, store: DeliveryStore, clock: ManualClock, *, chat: bool = True) -> Worker:
    planner = SlackPlanner(w.cfg, SlackRenderer()) if chat else None
    return Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock, chat=planner)


def slack_worker(store: DeliveryStore, clock: ManualClock, fake: FakeChat) -> SlackWorker:
    return SlackWorker(store, lambda: fake, worker_id="s:1", clock=clock)


def reconcile(w: World, store: DeliveryStore, clock: ManualClock, iid: int, *, chat: bool = True) -> list[Outcome]:
    wk = gitlab_worker(w, store, clock, chat=chat)
    try:
        store.enqueue(f"{w.project_id}#{iid}", clock(), "Issue Hook")
        clock.advance(1)
        outcomes = []
        while (result := wk.run_once()) is not None:
            outcomes.append(result.outcome)
        return outcomes
    finally:
        wk.reconciler.close()  # type: ignore[attr-defined]


def send_all(sw: SlackWorker) -> list[str | None]:
    states = []
    while (state := sw.run_once()) is not None:
        states.append(state)
    return states


def test_a_reconcile_queues_a_slack_job_and_the_slack_worker_sends_each_message_once(w, store, clock, fake):
    iid = w.incident("severity::1", "data-breach")
    assert reconcile(w, store, clock, iid) == [Outcome.OK]
    key = f"{w.project_id}#{iid}"
    job = peek.active_job(store, key, kind="slack")
    assert job is not None and job.state is JobState.PENDING
    sw = slack_worker(store, clock, fake)
    assert send_all(sw) == ["done"]
    (egroup,) = fake.to("C-e-group")
    assert egroup.text.startswith(":rotating_light: *Broader e-group* engaged on security incident <http")
    assert f"/-/issues/{iid}|" in egroup.text and "Severity: *critical*" in egroup.text
    assert len(fake.to("D-email:sec-director@example.com")) == 1
    assert len(fake.to("C-security-department")) == 1  # the summary
    assert "Customer data exposed" not in "".join(m.text for m in fake.messages), "the title stays in GitLab"
    sent = len(fake.messages)
    clock.advance(60)
    assert reconcile(w, store, clock, iid) == [Outcome.OK]  # nothing changed: no Slack job, no Slack call
    calls = fake.calls
    assert send_all(sw) == [] and fake.calls == calls and len(fake.messages) == sent


def test_a_slack_outage_leaves_the_gitlab_job_done_and_the_slack_job_retried(w, store, clock, fake):
    fake.down = True
    iid = w.incident("severity::1", "data-breach")
    assert reconcile(w, store, clock, iid) == [Outcome.OK]
    assert w.bot_notes(iid), "GitLab got its checklist on time"
    sw = slack_worker(store, clock, fake)
    assert send_all(sw) == ["pending"]
    job = peek.active_job(store, f"{w.project_id}#{iid}", kind="slack")
    assert job is not None and job.not_before >= clock() + timedelta(seconds=29), "Slack's Retry-After is kept"
    fake.down = False
    clock.advance(31)
    assert send_all(sw) == ["done"]
    assert len(fake.to("C-e-group")) == 1


def test_a_message_posted_before_a_crash_is_found_again_not_posted_twice(w, store, clock, fake):
    iid = w.incident("severity::1")
    reconcile(w, store, clock, iid)
    key = f"{w.project_id}#{iid}"
    (first, *_) = store.pending("slack", key)
    fake.post("D-" + first.target, first.text, first.key)  # posted, then the worker died before recording it
    send_all(slack_worker(store, clock, fake))
    assert [m.key for m in fake.messages].count(first.key) == 1


def test_a_refused_target_is_recorded_and_the_others_still_get_theirs(w, store, clock, fake):
    fake.refuse = {"#e-group"}
    iid = w.incident("severity::1", "data-breach")
    reconcile(w, store, clock, iid)
    assert send_all(slack_worker(store, clock, fake)) == ["done"]
    assert fake.to("C-e-group") == [] and len(fake.to("D-email:sec-director@example.com")) == 1


def test_a_refused_target_is_said_once_in_the_incidents_status_log(w, store, clock, fake):
    """The incident manager learns in GitLab that #e-group heard nothing, once, however often it is refused."""
    from bot.core import bodies

    fake.refuse = {"#e-group"}
    iid = w.incident("severity::1", "data-breach")
    reconcile(w, store, clock, iid)
    send_all(slack_worker(store, clock, fake))
    clock.advance(1)
    gitlab = gitlab_worker(w, store, clock)  # the Slack worker queued the incident's GitLab job again
    try:
        assert gitlab.run_once() is not None
        w.sim.state.update_issue(w.project, iid, add_labels=["publicly-reported"])  # more messages, refused again
        reconcile(w, store, clock, iid)
        send_all(slack_worker(store, clock, fake))
        clock.advance(1)
        while gitlab.run_once() is not None:
            pass
    finally:
        gitlab.reconciler.close()  # type: ignore[attr-defined]
    lines = [line for n in w.bot_notes(iid) for line in n["body"].splitlines() if "Slack refused" in line]
    assert len(lines) == 1, lines
    _, text, _ = read(lines[0])
    assert " ".join(text.split()) == (
        "Slack refused the bot's messages to #e-group: channel_not_found: #e-group; the other Slack targets are "
        "not affected, nothing is tried there again for this incident"
    )
    assert sum(k == "slack:#e-group" for n in w.bot_notes(iid) for k in bodies.logged_keys(n["body"])) == 1


def test_a_summary_is_edited_in_place_when_a_child_opens(w, store, clock, fake):
    iid = w.incident("severity::1")
    reconcile(w, store, clock, iid)
    sw = slack_worker(store, clock, fake)
    send_all(sw)
    (summary,) = fake.to("C-security-department")
    w.sim.state.update_issue(w.project, iid, add_labels=["comms-email"])
    clock.advance(60)
    reconcile(w, store, clock, iid)
    send_all(sw)
    assert fake.to("C-security-department") == [summary] and summary.edits == 1 and "(open)" in summary.text
    assert len(fake.to("C-marketing-programs")) == 1, "the owning team is pinged with the child's link"


def test_without_a_token_nothing_about_slack_runs(w, store, clock, fake, tmp_path):
    assert slack(Settings(), w.cfg, store, clock=clock, worker_id="s") == (None, None)
    iid = w.incident("severity::1", "data-breach")
    assert reconcile(w, store, clock, iid, chat=False) == [Outcome.OK]
    assert peek.active_job(store, f"{w.project_id}#{iid}", kind="slack") is None
    assert store.pending("slack", f"{w.project_id}#{iid}") == []
    planner, sender = slack(Settings(slack_bot_token="xoxb-test"), w.cfg, store, clock=clock, worker_id="s",
                            port=lambda: fake)
    assert planner is not None and sender is not None


def test_the_channel_command_names_the_incident_channel_and_a_guest_cannot(w, store, clock, fake):
    w.sim.state.add_user("guest-gus")
    w.sim.state.add_member(w.project, "guest-gus", 10)
    iid = w.incident("severity::1", "publicly-reported")
    w.sim.state.add_note(w.project, iid, "@incident-bot channel #inc-guest", author="guest-gus")
    reconcile(w, store, clock, iid)
    send_all(slack_worker(store, clock, fake))
    assert fake.to("C-inc-guest") == []
    w.sim.state.add_note(w.project, iid, "@incident-bot channel #inc-42", author="sec-oncall")
    clock.advance(60)
    reconcile(w, store, clock, iid)
    assert any("incident response channel set to" in n["body"] for n in w.bot_notes(iid))
    send_all(slack_worker(store, clock, fake))
    assert len(fake.to("C-inc-42")) == 1, "PR is engaged in the incident response channel"


def test_a_slow_slack_does_not_let_the_slack_jobs_lease_lapse(w, store, clock):
    """Slack timeouts can outlast a lease; the Slack worker renews it, so no other replica sends the same job."""
    renewed: list[tuple[object, object]] = []

    class SlowChat(FakeChat):
        def post(self, channel: str, text: str, key: str) -> str:
            if not renewed:
                [job] = [j for j in peek.jobs(store) if j.kind == "slack" and j.lease_until]
                clock.advance(50)  # most of the 60 s lease goes by in one Slack call
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not renewed:
                    again = peek.get_job(store, job.id)
                    if again is not None and again.lease_until != job.lease_until:
                        renewed.append((job.lease_until, again.lease_until))
                    time.sleep(0.01)
            return super().post(channel, text, key)

    iid = w.incident("severity::1", "data-breach")
    reconcile(w, store, clock, iid)
    sw = SlackWorker(store, lambda: SlowChat(), worker_id="s:1", clock=clock, lease=timedelta(seconds=60),
                     heartbeat=timedelta(seconds=0.02))
    assert send_all(sw) == ["done"]
    assert renewed and renewed[0][1] == renewed[0][0] + timedelta(seconds=50)
