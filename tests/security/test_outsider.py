"""The outsider: anyone with a GitLab account, who can create a project, label an issue in it, and make the
bot user a member of it (GitLab adds an existing user at once, with nothing to accept:
``app/services/members/create_service.rb``, and the REST API's ``POST /projects/:id/members``).

Membership is not consent. Incidents live only in the incident scope the operator names (``scope:`` or
``INCIDENT_BOT_SCOPE``), and there only where the bot user is a member; without a scope the services do
not start. A labelled issue anywhere else is answered 2xx, and nothing is written to GitLab, nothing sent
to Slack, nothing queued by the sweep; it is counted, and logged once per project. Alongside: a reconcile
that keeps failing never opens a child per attempt, dead letters do not pile up or come back on their own,
and a worker that lost its lease stops.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from bot import wiring
from bot.commands.planview import plan_live
from bot.commands.world import PROJECT, World, add_users, world
from bot.config import ConfigError, load_config
from bot.core.model import IncidentRef
from bot.gitlab.remit import OutsideRemit
from bot.metrics import Metrics
from bot.settings import Settings
from bot.simgitlab.hooks import issue_hook, note_hook
from bot.simslack import SimulatedSlack
from bot.store import JobState, LeaseLost, SQLiteStore
from bot.sweep import sweep
from bot.worker import Outcome, Worker, WorkerPool
from tests import store_inspect as peek
from tests.conftest import ROOT
from tests.security.support import (
    SECRET,
    SLACK_TOKEN,
    RunningBot,
    Serve,
    hook_headers,
    seed_slack,
    service_env,
    wait_for,
)

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
OUTSIDER = "mallory"
MAINTAINER, GUEST = 40, 10


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal", max_attempts=3)
    yield s
    s.close()


def outsider_incident(w: World, visibility: str = "public", *, bot: int | None = None) -> tuple[str, int, int]:
    """An outsider's own project with a labelled S1 incident in it; the bot user made a member at level ``bot``
    (None: no member)."""
    add_users(w.sim, [OUTSIDER])
    project = f"{OUTSIDER}/bait-{visibility}" + (f"-{bot}" if bot else "")
    members = {OUTSIDER: 50} | ({w.cfg.bot.username: bot} if bot else {})
    pid = int(w.sim.state.add_project(project, members=members, visibility=visibility)["id"])
    issue = w.sim.state.create_issue(
        project,
        "Please escalate",
        labels=(w.cfg.labels.trigger, *S1),
        description="@security-team look",
        author=OUTSIDER,
        issue_type="incident",
    )
    return project, pid, int(issue["iid"])


def bot_writes(w: World, project_id: int, project: str = "") -> list:
    """Writes to the project, named by id or by path."""
    named = [f"/projects/{project_id}"] + ([f"/projects/{project.replace('/', '%2F')}"] if project else [])
    return [r for r in w.sim.writes() if any(r.path == n or r.path.startswith(n + "/") for n in named)]


def worker_for(w: World, store, clock, **kw) -> Worker:
    return Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock, settle=timedelta(0), **kw)


# ------------------------------------------------------------------ membership is not consent


def test_an_outsider_who_makes_the_bot_a_member_gets_nothing_from_a_running_bot(default_config, fast_config, tmp_path):
    """``serve`` as deployed: the bundled policy (``scope: []``) with ``INCIDENT_BOT_SCOPE`` naming the security
    team's project, and Slack configured. The outsider makes the bot user a Maintainer of one project and a Guest
    of another, and labels an S1 incident in each. Neither the start-up sweep nor the deliveries of a hook that
    covers those projects reach them: nothing is written in GitLab, nothing is sent to Slack, each delivery is
    answered 2xx and counted, and the log says so once per project."""
    from bot.simgitlab import SimulatedGitLab
    from bot.store import open_store

    with SimulatedGitLab() as sim, SimulatedSlack(token=SLACK_TOKEN, rate_limit=False) as slack:
        seed_slack(slack.state)
        w = world(sim, default_config)
        mine = w.incident(*S1)  # inside the scope: the bot is seen at work on it
        baits = [outsider_incident(w, bot=MAINTAINER), outsider_incident(w, "private", bot=GUEST)]
        env = service_env(
            sim.url, sim.token, tmp_path, GITLAB_WEBHOOK_SECRET=SECRET, INCIDENT_BOT_CONFIG=str(fast_config),
            INCIDENT_BOT_SWEEP_SECONDS="300", SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_URL=slack.url,
        )
        assert env["INCIDENT_BOT_SCOPE"] == w.project and load_config(fast_config).scope == []
        server = Serve(env, tmp_path, "--workers", "1").start()
        try:
            wait_for(lambda: len(slack.state.bot_messages()) >= 3, 60, "the incident's Slack messages")
            answers = []
            for project, _, iid in baits:
                for action in ("open", "update"):
                    body = json.dumps(issue_hook(sim.state, project, iid, action))
                    answers.append(requests.post(server.url + "/webhook", data=body, headers=hook_headers(SECRET),
                                                 timeout=10))
            with open_store(env["INCIDENT_BOT_DB"]) as store:
                wait_for(lambda: peek.depth(store)["pending"] + peek.depth(store)["running"] == 0, 60, "an idle queue")
                queued = {j.incident_key for j in peek.jobs(store)}
                outbox = peek.outbox_incidents(store)
            metrics = requests.get(server.url + "/metrics", timeout=10).text
        finally:
            server.stop()
        for project, pid, iid in baits:
            assert bot_writes(w, pid, project) == [], f"{project}: the bot wrote there"
            notes = w.sim.state.notes(project, iid, include_system=False)
            assert [n for n in notes if n["author"]["username"] == w.cfg.bot.username] == []
            assert w.sim.state.get_issue(project, iid)["assignees"] == []
            assert not any(k.startswith(f"{pid}#") for k in queued | outbox), f"{project}: queued or in the outbox"
            log = server.output().splitlines()
            said = [line for line in log if "outside the bot's remit" in line and project in line]
            assert len(said) == 1, server.tail(60)
        assert [(a.status_code, a.json()["status"]) for a in answers] == [(202, "ignored")] * 4
        assert 'incident_bot_outside_remit_total{kind="not_in_scope"} 4.0' in metrics
        assert OUTSIDER not in "\n".join(m.text for m in slack.state.bot_messages())
        assert w.bot_notes(mine), "the incident inside the scope converged"


@pytest.mark.parametrize("command", ["serve", "worker", "sweep", "reconcile"])
def test_without_an_incident_scope_the_services_refuse_to_start_in_one_line(command, sim, tmp_path):
    """No ``scope:`` in the policy and no ``INCIDENT_BOT_SCOPE``: one line saying what to set, exit 2, no
    traceback, and GitLab is not even asked."""
    env = service_env(sim.url, sim.token, tmp_path, GITLAB_WEBHOOK_SECRET=SECRET)
    del env["INCIDENT_BOT_SCOPE"]
    argv = [sys.executable, "-m", "bot", command, *(["acme/security-incidents#1"] if command == "reconcile" else [])]
    sim.reset_log()
    result = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "incident-bot: no incident scope: set INCIDENT_BOT_SCOPE to the GitLab groups or projects where incidents "
        "live (comma-separated full paths, e.g. INCIDENT_BOT_SCOPE=acme/security-incidents), or scope: in the "
        f"policy file ({env['INCIDENT_BOT_CONFIG']} has none)"
    ]
    assert sim.requests == []


def test_membership_alone_never_brings_a_project_into_the_remit(w, store, clock):
    """The bot user is a Maintainer of one outsider's project and a Guest of another. With the operator's scope
    they stay outside sweep after sweep, however often the outsider edits; without any scope nothing is an
    incident, and deciding that asks GitLab nothing."""
    from bot.gitlab.remit import Remit

    baits = [outsider_incident(w, bot=MAINTAINER), outsider_incident(w, "private", bot=GUEST)]
    mine = w.incident(*S1)
    r = w.reconciler(clock=clock)
    try:
        queued: set[str] = set()
        for _ in range(3):
            queued |= set(sweep(r.client, store, w.cfg, clock()).queued)
            for project, _, iid in baits:
                w.sim.state.set_labels(project, iid, [w.cfg.labels.trigger, *S1, "edited"], actor=OUTSIDER)
            clock.advance(minutes=10)
        assert queued == {f"{w.project_id}#{mine}"}
        unscoped = w.cfg.model_copy(update={"scope": []})
        w.sim.reset_log()
        assert sweep(r.client, store, unscoped, clock()).listed == 0
        verdict = Remit.for_config(unscoped).verdict(r.client, baits[0][0])
        assert verdict.kind == "no_scope" and "INCIDENT_BOT_SCOPE" in verdict.reason
        assert w.sim.requests == []
    finally:
        r.close()
    assert w.sim.writes() == []


# ------------------------------------------------------------------ the outsider's public project


def test_sweep_does_not_see_an_outsiders_public_incident(w, store, clock):
    _, pid, iid = outsider_incident(w, "public")
    _, internal_pid, internal_iid = outsider_incident_internal(w)
    mine = w.incident(*S1)
    r = w.reconciler(clock=clock)
    try:
        report = sweep(r.client, store, w.cfg, clock())
    finally:
        r.close()
    assert set(report.queued) == {f"{w.project_id}#{mine}"}
    assert f"{pid}#{iid}" not in report.queued and f"{internal_pid}#{internal_iid}" not in report.queued


def outsider_incident_internal(w: World) -> tuple[str, int, int]:
    project = f"{OUTSIDER}/bait-internal"
    pid = int(w.sim.state.add_project(project, members={OUTSIDER: 50}, visibility="internal")["id"])
    issue = w.sim.state.create_issue(project, "x", labels=(w.cfg.labels.trigger, *S1), author=OUTSIDER)
    return project, pid, int(issue["iid"])


def test_an_outsiders_deliveries_are_answered_2xx_counted_each_logged_once_and_queue_nothing(
    w, clock, tmp_path, caplog
):
    """A hook that also covers the outsider's project (a group or system hook) sends its deliveries: each is
    answered 2xx and counted, none is queued, so nothing is read or written for them; one log line per project."""
    project, _, iid = outsider_incident(w, bot=MAINTAINER)
    with SimulatedSlack(token=SLACK_TOKEN, rate_limit=False) as slack:
        bot = RunningBot(w, slack, clock, tmp_path)
        try:
            w.sim.reset_log()
            with caplog.at_level(logging.INFO):
                answers = [bot.deliver(issue_hook(w.sim.state, project, iid, "open")) for _ in range(3)]
                note = w.sim.state.add_note(project, iid, "@incident-bot severity 1", author=OUTSIDER)
                answers.append(bot.deliver(note_hook(w.sim.state, project, iid, note["id"]), "Note Hook"))
                results = bot.run()
        finally:
            bot.close()
    assert [(code, body["status"]) for code, body in answers] == [(202, "ignored")] * 4
    assert all("not in the incident scope" in body["reason"] for _, body in answers)
    assert results == [] and w.sim.requests == [], "no job: nothing read, nothing written"
    assert bot.outside_remit("not_in_scope") == 4
    said = [r for r in caplog.records if "outside the bot's remit" in r.getMessage()]
    assert len(said) == 1 and project in said[0].getMessage() and said[0].levelno == logging.WARNING
    assert slack.state.bot_messages() == []


def test_reconcile_and_plan_say_outside_the_remit(w, clock, monkeypatch):
    project, _, iid = outsider_incident(w, bot=MAINTAINER)
    r = w.reconciler(clock=clock)
    try:
        with pytest.raises(OutsideRemit, match="not in the incident scope"):
            r.reconcile(IncidentRef(project, iid))
    finally:
        r.close()
    assert w.sim.writes() == []
    monkeypatch.setenv("GITLAB_URL", w.sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", w.sim.token)
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", w.project)
    now = clock()
    report = plan_live(f"{project}#{iid}", lambda: wiring.reconciler(Settings.from_env(), w.cfg, clock=lambda: now))
    assert "outside the bot's remit" in report.as_text() and report.actions == []


def test_reconcile_command_refuses_an_outsiders_incident(w, monkeypatch, capsys):
    from bot.commands.cli import main

    project, _, iid = outsider_incident(w, bot=MAINTAINER)
    monkeypatch.setenv("GITLAB_URL", w.sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", w.sim.token)
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", w.project)
    assert main(["reconcile", f"{project}#{iid}"]) == 2
    err = capsys.readouterr().err
    assert "outside the bot's remit" in err and "not in the incident scope" in err and "INCIDENT_BOT_SCOPE" in err
    assert w.sim.writes() == []


def test_a_burst_for_an_outsiders_project_costs_one_look_up_and_one_log_line(w, store, clock, caplog):
    """Jobs for the outsider's project (by id: the receiver could not tell from a path) are ignored by the worker
    after one read of the project's path, and said once."""
    project, pid, first = outsider_incident(w, bot=MAINTAINER)
    iids = [first]
    for n in range(4):
        issue = w.sim.state.create_issue(project, f"x{n}", labels=(w.cfg.labels.trigger,), author=OUTSIDER)
        iids.append(int(issue["iid"]))
    keys = [f"{pid}#{iid}" for iid in iids]
    for n, key in enumerate(keys):
        store.record_delivery(f"d{n}", key, "Issue Hook", clock(), b"{}")
    w.sim.reset_log()
    worker = worker_for(w, store, clock, metrics=(metrics := Metrics()))
    with caplog.at_level(logging.INFO):
        outcomes = [worker.run_once().outcome for _ in keys]
    assert outcomes == [Outcome.IGNORED] * 5 and w.sim.writes() == []
    assert len(w.sim.requests) == 1 and w.sim.count("GET", r"/members/all/") == 0  # the project's path, once
    assert metrics.registry.get_sample_value("incident_bot_outside_remit_total", {"kind": "not_in_scope"}) == 5
    assert len([r for r in caplog.records if "outside the bot's remit" in r.getMessage()]) == 1


def test_a_revoked_membership_is_noticed_once_the_cached_answer_expires(w, clock):
    from bot.gitlab.remit import Remit

    now = [0.0]
    w.remit = Remit(w.cfg.bot.username, w.cfg.scope, ttl_s=60, clock=lambda: now[0])
    iid = w.incident(*S1)
    r = w.reconciler(clock=clock)
    try:
        r.reconcile(IncidentRef(w.project, iid))
        w.sim.state.remove_member(w.project, w.cfg.bot.username)
        now[0] = 61.0
        with pytest.raises(OutsideRemit, match="cannot see project"):  # a private project, once no member
            r.reconcile(IncidentRef(w.project, iid))
    finally:
        r.close()


# ------------------------------------------------------------------ invited through a group; scope


def test_a_project_of_the_scope_where_the_bot_is_a_member_through_its_group_is_acted_on(sim, default_config, store,
                                                                                       clock):
    w = world(sim, default_config.model_copy(update={"scope": [PROJECT, "acme-sec"]}))
    w.sim.state.add_group_member("acme-sec", w.cfg.bot.username, 40)
    for name in ("sec-oncall", "sec-incident-manager"):
        w.sim.state.add_group_member("acme-sec", name, 30)
    project = "acme-sec/team/incidents"
    pid = int(w.sim.state.add_project(project, visibility="private")["id"])
    labels = (w.cfg.labels.trigger, *S1)
    iid = int(w.sim.state.create_issue(project, "Leak", labels=labels, author="sec-oncall")["iid"])
    r = w.reconciler(clock=clock)
    try:
        report = sweep(r.client, store, w.cfg, clock())
        assert f"{pid}#{iid}" in report.queued
        result = r.reconcile(IncidentRef(project, iid))
    finally:
        r.close()
    notes = w.sim.state.notes(project, iid, include_system=False)
    assert result.actions and any(n["author"]["username"] == w.cfg.bot.username for n in notes)
    children = [i for i in w.sim.state.issues(project) if w.cfg.labels.child in i["labels"]]
    assert len(children) == 2 and all(c["confidential"] for c in children)
    assert [a["username"] for a in w.sim.state.get_issue(project, iid)["assignees"]] == ["sec-oncall"]


def test_scope_narrows_the_remit_to_the_named_groups_and_projects(w, store, clock, sim):
    cfg = w.cfg.model_copy(update={"scope": ["acme"]})
    scoped = World(sim, cfg, w.project, w.project_id)
    from bot.gitlab.remit import Remit

    scoped.remit = Remit(cfg.bot.username, cfg.scope)
    other = "elsewhere/incidents"
    w.sim.state.add_project(other, members={cfg.bot.username: 40, "sec-oncall": 30})
    outside = int(w.sim.state.create_issue(other, "x", labels=(cfg.labels.trigger, *S1), author="sec-oncall")["iid"])
    inside = scoped.incident(*S1)
    r = scoped.reconciler(clock=clock)
    try:
        report = sweep(r.client, store, cfg, clock())
        with pytest.raises(OutsideRemit, match="not in the incident scope"):
            r.reconcile(IncidentRef(other, outside))
        r.reconcile(IncidentRef(scoped.project, inside))
    finally:
        r.close()
    assert set(report.queued) == {f"{w.project_id}#{inside}"}
    assert [i for i in w.sim.state.issues(other) if i["iid"] != outside] == []


@pytest.mark.parametrize("bad", ["acme//security", "-acme", "acme/../x", "https://gitlab.com/acme", ""])
def test_a_malformed_scope_path_is_a_clear_config_error(tmp_path, bad):
    text = (ROOT / "config" / "bot.yaml").read_text().replace("scope: []", f"scope: [{json.dumps(bad)}]")
    path = tmp_path / "bot.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "scope" in str(err.value) and "GitLab group or project path" in str(err.value)


# ------------------------------------------------------------------ no child per retry


def test_a_reconcile_that_keeps_failing_never_opens_a_second_child(w, store, clock):
    """As a Guest, the bot's children lose their labels and the link is refused (403): the orphan
    search finds them by the bot's signed marker, and the retry dead-letters again instead of opening
    more children."""
    w.sim.state.add_member(w.project, w.cfg.bot.username, 10)
    iid = w.incident(*S1)
    store.record_delivery("d1", f"{w.project_id}#{iid}", "Issue Hook", clock(), b"{}")

    def children() -> list:
        return [i for i in w.sim.state.issues(w.project) if i["author"]["username"] == w.cfg.bot.username]

    worker = worker_for(w, store, clock)
    first = worker.run_once()
    assert first is not None and first.outcome is Outcome.PERMANENT
    opened = len(children())
    assert opened >= 1
    assert peek.get_job(store, first.job_id).state is JobState.DEAD, "a 403 is dead at once"
    clock.advance(minutes=30)
    # Someone edits the incident: the delivery shows a change and revives the job.
    store.record_delivery("d-edit", f"{w.project_id}#{iid}", "Issue Hook", clock(), b"{}", change="edited")
    second = worker.run_once()
    assert len(children()) == opened
    assert second is not None and second.outcome is Outcome.PERMANENT
    assert peek.get_job(store, second.job_id).state is JobState.DEAD
    clock.advance(hours=2)
    store.record_delivery("d2", f"{w.project_id}#{iid}", "Issue Hook", clock(), b"{}")  # a replay, no change
    assert worker.run_once() is None and len(children()) == opened


@pytest.mark.parametrize("applied", [False, True])
def test_a_create_with_an_unknown_outcome_is_found_again_or_made_once(w, store, clock, applied):
    """GitLab's answer to a create is lost (502 after, or before, it was applied): the retry finds the
    child, or makes it, and the incident converges with one child per channel."""
    iid = w.incident(*S1)
    store.record_delivery("d1", f"{w.project_id}#{iid}", "Issue Hook", clock(), b"{}")
    w.sim.inject("502", times=1, method="POST", path_regex=r"/projects/\d+/issues$", applied=applied)
    worker = worker_for(w, store, clock)
    results = []
    while (result := worker.run_once()) is not None:
        results.append(result.outcome)
        clock.advance(minutes=30)
    assert results[0] is Outcome.TRANSIENT and results[-1] is Outcome.OK
    assert sorted(len([c for c in w.children() if label in c["labels"]]) for label in S1[2:]) == [1, 1]


# ------------------------------------------------------------------ dead letters


def _dead(store, key: str, now: datetime, change: str | None, kind: str = "sticky") -> int:
    store.record_delivery(f"d-{key}-{change}", key, "Issue Hook", now, b'{"secret": "payload"}', change=change)
    for _ in range(store.max_attempts):
        job = store.claim("w", now, timedelta(minutes=1))
        if store.fail(job.id, "w", "403 Forbidden", now, retry_in=timedelta(0), kind=kind) is JobState.DEAD:
            return job.id
    raise AssertionError("never died")


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal", max_attempts=3)
    else:
        from bot.store import PostgresStore

        s = PostgresStore(request.getfixturevalue("postgres_database").new_url(), max_attempts=3)
    yield s
    s.close()


def test_a_permanently_failed_job_is_revived_only_by_a_delivery_that_shows_a_change(any_store):
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    job_id = _dead(any_store, "42#1", now, change="v1")
    any_store.record_delivery("resend", "42#1", "Issue Hook", now + timedelta(minutes=1), b"{}", change="v1")
    any_store.record_delivery("nochange", "42#1", "Issue Hook", now + timedelta(minutes=2), b"{}")
    assert peek.get_job(any_store, job_id).state is JobState.DEAD
    any_store.record_delivery("edit", "42#1", "Issue Hook", now + timedelta(minutes=3), b"{}", change="v2")
    assert peek.get_job(any_store, job_id).state is JobState.PENDING
    # A plain dead letter (a bug, say) is still revived by any delivery; a retry by hand revives a sticky one.
    plain = _dead(any_store, "42#2", now, change="v1", kind="retry")
    any_store.record_delivery("again", "42#2", "Issue Hook", now, b"{}", change="v1")
    assert peek.get_job(any_store, plain).state is JobState.PENDING
    sticky = _dead(any_store, "42#3", now, change="v1")
    assert any_store.retry_dead(sticky, now=now) == 1 and peek.get_job(any_store, sticky).state is JobState.PENDING


def test_dead_letters_and_their_payloads_are_pruned_after_the_retention(any_store):
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    old = _dead(any_store, "42#1", now - timedelta(days=15), change="v1")
    recent = _dead(any_store, "42#2", now - timedelta(days=2), change="v1")
    pool = WorkerPool(any_store, reconciler=None, threads=1, clock=lambda: now)  # type: ignore[arg-type]
    pool.prune()
    assert peek.get_job(any_store, old) is None and peek.get_delivery(any_store, "d-42#1-v1") is None
    assert peek.get_job(any_store, recent).state is JobState.DEAD
    assert peek.get_delivery(any_store, "d-42#2-v1") is not None


# ------------------------------------------------------------------ lost lease


def test_a_worker_that_lost_its_lease_writes_nothing_more(w, store, clock):
    iid = w.incident(*S1)
    key = f"{w.project_id}#{iid}"
    store.record_delivery("d1", key, "Issue Hook", clock(), b"{}")
    stolen = threading.Event()
    seen: list[int] = []

    def steal_on_first_write(event) -> None:
        if stolen.is_set() or event.actor_id != w.sim.state.find_user(w.cfg.bot.username).id:
            return
        stolen.set()
        seen.append(len(w.sim.requests))
        with sqlite3.connect(store.path) as db:  # the store now says another worker holds the job
            db.execute("UPDATE jobs SET worker_id = 'thief' WHERE incident_key = ?", (key,))
        beat = next(t for t in threading.enumerate() if t.name.startswith("lease-"))
        beat.join(timeout=10)  # the heartbeat notices and marks the lease lost, then ends

    w.sim.state.listeners.append(steal_on_first_write)
    worker = worker_for(w, store, clock, heartbeat=timedelta(milliseconds=5))
    result = worker.run_once()
    later = [r for r in w.sim.writes() if "/links" in r.path or "/notes" in r.path]
    assert stolen.is_set() and later == [], "no link, checklist or comment after the lease was lost"
    assert result is not None and result.outcome is Outcome.LEASE_LOST
    with pytest.raises(LeaseLost):
        store.complete(result.job_id, "w:1")
