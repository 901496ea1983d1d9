"""Issue 13's acceptance end to end: the real ``slack_sdk`` over HTTP to the simulated Slack, the simulated
GitLab, a store, the GitLab worker and the Slack worker driven step by step on one injected clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.commands.world import World, world
from bot.config import Config, load_config
from bot.integrations.slack.job import SlackPlanner, SlackWorker
from bot.integrations.slack.slackapi import SlackChat
from bot.settings import Settings
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.simslack import SimulatedSlack
from bot.store import DeliveryStore, JobState, open_store
from bot.wiring import slack, slack_renderer
from bot.worker import Outcome, Worker
from tests import store_inspect as peek
from tests.conftest import ROOT, T0

TOKEN = "xoxb-1111-2222-acceptancetoken"
SIX_POINTS = ("## Current risk\n{risk}\n## Users impacted\nsome\n## Timeline of events\n- 09:00 found\n"
              "## Mitigation steps taken\nrotated keys\n## Current status of the incident\ncontained\n"
              "## Next steps\nmonitor\n")
INJECTIONS = ("<!channel>", "<!here>", "<@U123>", "<#C1>", "<https://evil|click>")


def policy(tmp_path: Path, **chat: Any) -> Config:
    """The bundled policy with reminder direct messages for the SIMOC and any ``chat`` overrides."""
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    data["templates_dir"] = str(ROOT / "issue_templates")
    data["chat"]["people"] = {"sec-incident-manager": "email:simoc@example.com"}
    data["chat"].update(chat)
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)




@pytest.fixture
def slack_sim(clock: ManualClock) -> Iterator[SimulatedSlack]:
    with SimulatedSlack(token=TOKEN, clock=lambda: clock().timestamp(), rate_limit=False, seed=4) as server:
        yield server


@dataclass
class Incident:
    """One world: GitLab, Slack and the bot's store, with the steps a running bot takes."""

    w: World
    slack: SimulatedSlack
    clock: ManualClock
    db: Path
    token: str = TOKEN
    chat: bool = True
    store: DeliveryStore = field(init=False)
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = open_store(str(self.db))
        state = self.slack.state
        self.channels = {f"#{n}": state.add_channel(n).id for n in (
            "e-group", "security-department", "marketing-programs", "support-managers", "community-advocates")}
        for name, email in (("sec-director", "sec-director@example.com"), ("simoc", "simoc@example.com")):
            user = state.add_user(name, email)
            self.channels[f"email:{email}"] = state.dm_channel(user.id)
        self.sender = self.slack_worker("s:1")

    def slack_worker(self, worker_id: str) -> SlackWorker:
        """A Slack worker process of its own (its own Slack client and caches), on the injected clock."""
        return SlackWorker(self.store, lambda: SlackChat(self.token, self.slack.url, timeout=5,
                                                         clock=lambda: self.clock().timestamp()),
                           worker_id=worker_id, clock=self.clock)

    def reconcile(self, iid: int | None = None) -> list[Outcome]:
        """A webhook for ``iid`` (or none: only jobs already due), then the GitLab worker until idle."""
        planner = SlackPlanner(self.w.cfg, slack_renderer(self.w.cfg)) if self.chat else None
        wk = Worker(self.store, self.w.reconciler(clock=self.clock), worker_id="w:1", clock=self.clock,
                    chat=planner)
        try:
            if iid is not None:
                self.store.enqueue(f"{self.w.project_id}#{iid}", self.clock(), "Issue Hook")
            self.clock.advance(1)
            outcomes = []
            while (result := wk.run_once()) is not None:
                outcomes.append(result.outcome)
            self.outcomes += outcomes
            return outcomes
        finally:
            wk.reconciler.close()  # type: ignore[attr-defined]

    def send(self) -> list[str | None]:
        """The Slack worker until no Slack job is ready."""
        states = []
        while (state := self.sender.run_once()) is not None:
            states.append(state)
        return states

    def send_until_done(self, iid: int, rounds: int = 200) -> int:
        """Slack rounds two injected seconds apart until nothing is pending; the rounds it took."""
        for n in range(rounds):
            self.send()
            if not self.store.pending("slack", f"{self.w.project_id}#{iid}"):
                return n
            self.clock.advance(2)
        raise AssertionError("messages still pending")

    def texts(self, target: str) -> list[str]:
        return self.slack.state.texts(self.channels[target])

    def keys(self, target: str) -> list[str]:
        return self.slack.state.keys(self.channels[target])

    def all_text(self) -> str:
        return "\n".join(m.text for m in self.slack.state.bot_messages())

    def note(self, iid: int, body: str, author: str = "sec-incident-manager") -> None:
        self.w.sim.state.add_note(self.w.project, iid, body, author=author)

    def labels(self, iid: int, *labels: str) -> None:
        self.w.sim.state.update_issue(self.w.project, iid, add_labels=list(labels))

    def no_duplicates(self) -> None:
        keys = self.slack.state.keys()
        assert keys and [k for k, n in Counter(keys).items() if n > 1] == [], "a message was posted twice"


@pytest.fixture
def make(sim: SimulatedGitLab, slack_sim: SimulatedSlack, clock: ManualClock, tmp_path: Path) -> Iterator[Any]:
    made: list[Incident] = []

    def build(**chat: Any) -> Incident:
        inc = Incident(world(sim, policy(tmp_path, **chat)), slack_sim, clock, tmp_path / "bot.sqlite3")
        made.append(inc)
        return inc

    yield build
    for inc in made:
        inc.store.close()


def lifecycle(inc: Incident, *, send: str = "once", together: bool = False) -> int:
    """An S1 data breach from opening to all clear; after each GitLab step the Slack worker runs ``once`` or
    ``until-done`` (rounds until nothing is pending). ``together``: the
    status update and the all clear in one step, so a channel gets two posts in a row)."""
    iid = inc.w.incident("severity::1", "data-breach")
    send = (lambda: inc.send_until_done(iid)) if send == "until-done" else inc.send
    assert inc.reconcile(iid) == [Outcome.OK]
    send()
    inc.labels(iid, "comms-email")
    inc.clock.advance(60)
    inc.reconcile(iid)
    send()
    inc.clock.advance(minutes=61)
    inc.reconcile(iid)
    send()
    inc.note(iid, SIX_POINTS.format(risk="low"))
    if not together:
        inc.clock.advance(60)
        inc.reconcile(iid)
        send()
    inc.labels(iid, "comms::all-clear")
    inc.clock.advance(60)
    inc.reconcile(iid)
    send()
    return iid


def test_each_message_kind_reaches_its_targets_once_over_an_incident_lifetime(make) -> None:
    inc: Incident = make()
    iid = inc.w.incident("severity::1", "data-breach")
    assert inc.reconcile(iid) == [Outcome.OK]
    assert inc.send() == ["done"]
    (engaged,) = inc.texts("#e-group")
    assert engaged.startswith(":rotating_light: *Broader e-group* engaged on security incident <http")
    (director,) = inc.texts("email:sec-director@example.com")
    assert "engaged on security incident" in director
    (summary,) = inc.texts("#security-department")
    assert "No comms children yet." in summary

    inc.labels(iid, "comms-email")
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    (ping,) = inc.texts("#marketing-programs")
    assert ping.startswith(":incoming_envelope: *") and "/-/issues/" in ping
    (summary,) = inc.texts("#security-department")
    assert "(open)" in summary, "the summary is edited in place"

    inc.clock.advance(minutes=61)  # the first reminder window passes without an update
    inc.reconcile()
    inc.send()
    inc.clock.advance(minutes=5)
    inc.reconcile(iid)  # the same window again: no second reminder
    inc.send()
    reminders = inc.texts("email:simoc@example.com")
    assert len(reminders) == 1 and reminders[0].startswith(":alarm_clock: Status update due")
    inc.clock.advance(minutes=60)  # the next window
    inc.reconcile(iid)
    inc.send()
    assert len(inc.texts("email:simoc@example.com")) == 2

    inc.note(iid, SIX_POINTS.format(risk="low"))
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    for target in ("#e-group", "email:sec-director@example.com", "#marketing-programs"):
        updates = [t for t in inc.texts(target) if t.startswith(":memo: New status update")]
        assert len(updates) == 1, target

    inc.labels(iid, "comms::all-clear")
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    for target in ("#e-group", "email:sec-director@example.com", "#marketing-programs"):
        assert inc.texts(target)[-1].startswith(":white_check_mark: All clear"), target
    (summary,) = inc.texts("#security-department")
    assert "Phase: All clear" in summary and "(open)" in summary
    assert inc.slack.count("chat.postMessage", inc.channels["#security-department"]) == 1
    assert inc.slack.count("chat.update", inc.channels["#security-department"]) == 2, "the child, the phase"
    inc.no_duplicates()


def test_the_incident_text_stays_in_gitlab_unless_a_target_opted_in(make) -> None:
    inc: Incident = make(engagements={"sr-director-security": "email:sec-director@example.com",
                                      "e-group": {"to": "#e-group", "forward_updates": True}})
    iid = inc.w.incident("severity::1", "data-breach", title="Payroll export leaked",
                         description="The S3 bucket acme-payroll was public")
    inc.reconcile(iid)
    inc.send()
    inc.note(iid, SIX_POINTS.format(risk="attacker still holds the acme-payroll keys"))
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    everything = inc.all_text()
    assert "Payroll export" not in everything and "acme-payroll was public" not in everything
    assert "attacker still holds" in inc.texts("#e-group")[-1], "e-group opted in to the update text"
    assert "attacker still holds" not in "\n".join(t for c, cid in inc.channels.items() if c != "#e-group"
                                                   for t in inc.slack.state.texts(cid))


def test_mentions_written_in_gitlab_are_inert_in_slack(make) -> None:
    inc: Incident = make(engagements={"e-group": {"to": "#e-group", "forward_updates": True}})
    nasty = " ".join(INJECTIONS) + " @here @channel"
    iid = inc.w.incident("severity::1", "data-breach", title=f"Leak {nasty}", description=nasty)
    inc.reconcile(iid)
    inc.w.sim.state.add_user("eve<!here>")  # GitLab would refuse the name; the bot must not rely on that
    inc.w.sim.state.add_member(inc.w.project, "eve<!here>", 30)
    inc.note(iid, SIX_POINTS.format(risk=nasty), author="eve<!here>")
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    update = inc.texts("#e-group")[-1]
    assert "&lt;!channel&gt;" in update and "by eve&lt;!here&gt;" in update, "forwarded, escaped"
    everything = inc.all_text()
    for raw in (*INJECTIONS, "@here", "@channel"):
        assert raw not in everything, raw


def test_duplicate_webhooks_a_lost_answer_and_an_empty_database_never_post_twice(make, tmp_path) -> None:
    inc: Incident = make()
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    inc.reconcile(iid)  # the same webhook delivered twice
    inc.slack.fail_after_commit(1)  # the first post lands, its answer is lost (as a kill -9 between the two)
    assert inc.send()[0] == "pending"
    assert inc.slack.count("chat.postMessage") >= 1
    inc.clock.advance(30)
    inc.send()
    assert not inc.store.pending("slack", f"{inc.w.project_id}#{iid}")
    inc.no_duplicates()
    posted = len(inc.slack.state.keys())

    inc.store.close()  # an empty database: everything again from scratch
    inc.store = open_store(str(tmp_path / "fresh.sqlite3"))
    inc.sender = SlackWorker(inc.store, lambda: SlackChat(TOKEN, inc.slack.url), worker_id="s:2", clock=inc.clock)
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    assert len(inc.slack.state.keys()) == posted
    inc.no_duplicates()


def test_slack_faults_and_throttling_neither_lose_nor_duplicate_nor_touch_gitlab(make, clock, tmp_path) -> None:
    inc: Incident = make()
    inc.slack.random_faults(0.2, seed=3)
    inc.slack.rate_limit, inc.slack.post_interval = True, 5.0
    iid = lifecycle(inc, send="until-done", together=True)
    statuses = Counter(c.error for c in inc.slack.calls)
    assert statuses["fault-500"] + statuses["fault-429"] >= 4, "Slack failed about a call in five"
    assert statuses["ratelimited"] >= 1, "a second post in a row to a channel was throttled"
    inc.no_duplicates()
    assert set(inc.outcomes) == {Outcome.OK}, "every GitLab job completed on its first attempt"
    gitlab_jobs = [j for j in peek.jobs(inc.store) if j.kind != "slack"]
    assert gitlab_jobs and all(j.last_error is None for j in gitlab_jobs)
    with_slack = inc.w.snapshot(iid)

    with SimulatedGitLab(now=clock) as sim2, SimulatedSlack(token=TOKEN) as slack2:
        clock.set(T0)
        bare = Incident(world(sim2, inc.w.cfg), slack2, clock, tmp_path / "bare.sqlite3", chat=False)
        try:
            assert lifecycle(bare, together=True) == iid
            assert bare.w.snapshot(iid) == with_slack, "GitLab ends the same as without Slack"
            assert slack2.count() == 0
        finally:
            bare.store.close()


def test_slack_down_for_a_minute_loses_nothing_and_gitlab_reminds_on_time(make) -> None:
    inc: Incident = make()
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    inc.send()
    inc.clock.advance(minutes=59, seconds=30)
    inc.slack.down("refuse")
    failed = 0
    for _ in range(12):  # 60 s of rounds, 5 s apart
        inc.clock.advance(5)
        inc.reconcile()  # the GitLab worker meanwhile: the reminder falls due at 1 h
        states = inc.send()
        failed += states.count("pending")
        assert "dead" not in states
    assert failed >= 2, "each try failed and was retried with back-off"
    job = peek.active_job(inc.store, f"{inc.w.project_id}#{iid}", kind="slack")
    assert job is not None and job.state is JobState.PENDING and job.attempts == failed
    assert job.last_error and job.last_error.startswith("Slack unavailable")
    assert any(k.startswith("reminder:") for k in inc.w.snapshot(iid)["logged"]), "GitLab reminded on time"
    pending = inc.store.pending("slack", f"{inc.w.project_id}#{iid}")
    assert pending, "the reminder waits in the outbox"
    inc.slack.up()
    inc.send_until_done(iid)
    assert len(inc.texts("email:simoc@example.com")) == 1
    inc.no_duplicates()


def test_without_a_token_nothing_about_slack_runs_and_a_quiet_reconcile_calls_slack_never(make) -> None:
    inc: Incident = make()
    assert slack(Settings(), inc.w.cfg, inc.store, clock=inc.clock, worker_id="s") == (None, None)
    inc.chat = False
    iid = inc.w.incident("severity::1", "data-breach")
    assert inc.reconcile(iid) == [Outcome.OK]
    assert inc.send() == [] and inc.store.pending("slack", f"{inc.w.project_id}#{iid}") == []
    assert peek.active_job(inc.store, f"{inc.w.project_id}#{iid}", kind="slack") is None
    assert inc.slack.count() == 0

    inc.chat = True
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    assert inc.slack.count("chat.postMessage") > 0
    inc.slack.reset_calls()
    inc.clock.advance(60)
    inc.reconcile(iid)  # nothing changed
    assert inc.send() == [] and inc.slack.count() == 0


def test_a_wrong_token_kills_the_slack_job_with_a_reason_and_gitlab_goes_on(make) -> None:
    inc: Incident = make()
    inc.token = "xoxb-9999-wrong-wrongwrongwrong"
    iid = inc.w.incident("severity::1", "data-breach")
    assert inc.reconcile(iid) == [Outcome.OK]
    assert inc.w.bot_notes(iid), "GitLab got its checklist"
    assert inc.send() == ["dead"]
    (job,) = [j for j in peek.jobs(inc.store, JobState.DEAD) if j.kind == "slack"]
    assert job.last_error and "\n" not in job.last_error and "token" in job.last_error
    assert inc.token not in job.last_error and "wrongwrong" not in job.last_error
    assert inc.slack.state.bot_messages() == []
    inc.clock.advance(timedelta(minutes=61).total_seconds())
    assert inc.reconcile() == [Outcome.OK], "the GitLab side is unaffected"
    assert any(k.startswith("reminder:") for k in inc.w.snapshot(iid)["logged"])


def test_a_guest_cannot_name_the_incident_channel_and_a_developer_can(make) -> None:
    inc: Incident = make()
    for name in ("inc-guest", "inc-42"):
        inc.channels[f"#{name}"] = inc.slack.state.add_channel(name).id
    inc.w.sim.state.add_user("guest-gus")
    inc.w.sim.state.add_member(inc.w.project, "guest-gus", 10)
    iid = inc.w.incident("severity::1", "publicly-reported")
    inc.note(iid, "@incident-bot channel #inc-guest", author="guest-gus")
    inc.reconcile(iid)
    inc.send()
    assert inc.texts("#inc-guest") == []
    inc.note(iid, "@incident-bot channel #inc-42", author="sec-oncall")
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    (engaged,) = inc.texts("#inc-42")
    assert "engaged on security incident" in engaged
    inc.no_duplicates()


def test_under_a_distributed_apps_limits_every_message_still_goes_out_exactly_once(make) -> None:
    """Slack changelog 2025-05-29 ("Rate limit changes for non-Marketplace apps"): conversations.history once
    a minute, 15 messages a page, 429 with Retry-After beyond; channels busy with people's messages."""
    inc: Incident = make()
    inc.slack.distributed_app = True
    for channel in inc.channels.values():
        for i in range(40):
            inc.slack.state.say(channel, f"people talking {i}")
    inc.slack.fail_after_commit(2)  # and two posts land with their answers lost
    iid = lifecycle(inc, send="once")
    for _ in range(40):  # the Slack worker's retries, as the queue makes them due
        inc.clock.advance(30)
        inc.reconcile()
        inc.send()
        if not inc.store.pending("slack", f"{inc.w.project_id}#{iid}"):
            break
    assert not inc.store.pending("slack", f"{inc.w.project_id}#{iid}"), "every message went out"
    inc.no_duplicates()
    assert "dead" not in [j.state for j in peek.jobs(inc.store) if j.kind == "slack"]
    reads = [c for c in inc.slack.calls if c.method == "conversations.history"]
    assert any(c.status == 429 for c in reads), "the limit was met"
    for target in ("#e-group", "email:sec-director@example.com", "#marketing-programs"):
        assert inc.texts(target)[-1].startswith(":white_check_mark: All clear"), target


def test_a_busy_channel_read_a_page_a_minute_resumes_where_it_stopped(make) -> None:
    """A distributed app reads 15 messages a minute: a key 40 messages back takes three reads, each
    resuming where the last one was rate-limited (rereading from the newest page would never get there)."""
    inc: Incident = make()
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    inc.send()
    inc.slack.distributed_app = True
    inc.note(iid, SIX_POINTS.format(risk="low"))
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.slack.fail_after_commit(1)  # the first update post lands, its answer is lost
    assert inc.send() == ["pending"]
    (lost,) = [c.channel for c in inc.slack.calls if c.error == "fail-after-commit"]
    for i in range(40):
        inc.slack.state.say(str(lost), f"people talking {i}")
    inc.slack.reset_calls()
    for _ in range(10):
        inc.clock.advance(30)
        inc.send()
        if not inc.store.pending("slack", f"{inc.w.project_id}#{iid}"):
            break
    assert not inc.store.pending("slack", f"{inc.w.project_id}#{iid}")
    inc.no_duplicates()
    reads = [c for c in inc.slack.calls if c.method == "conversations.history" and c.status == 200
             and c.channel == lost]
    assert [c.args.get("cursor", "") == "" for c in reads] == [True, False, False], "one page each, resumed"


def test_a_confidential_incidents_review_stays_in_gitlab(make) -> None:
    inc: Incident = make(engagements={"e-group": {"to": "#e-group", "forward_updates": True}})
    iid = inc.w.incident("severity::1", "data-breach", "comms-email", confidential=True)
    inc.reconcile(iid)
    inc.send()
    inc.note(iid, SIX_POINTS.format(risk="low"))
    inc.clock.advance(60)
    inc.labels(iid, "comms::all-clear")
    inc.reconcile(iid)
    inc.send_until_done(iid)
    assert any("### Communications review" in n["body"] for n in inc.w.bot_notes(iid)), "the review is in GitLab"
    everything = inc.all_text()
    assert everything, "Slack was told of the incident (the all clear)"
    assert "review" not in everything.lower() and "declared_to" not in everything
