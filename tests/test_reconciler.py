"""The reconciler against the simulated GitLab: converge, no-op, crash safety, faults, safety rules."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.commands.world import World, configured_users, world
from bot.core.model import IncidentRef
from bot.gitlab.callpolicy import CallPolicy
from bot.gitlab.errors import GitLabCallError
from bot.simgitlab import SimulatedGitLab
from bot.text.markers import strip_markers

S1 = ("severity::1", "data-breach", "publicly-reported", "comms-email", "comms-faq", "comms-blog")
FIVE = ("severity::1", "data-breach", "comms-email", "comms-faq", "comms-blog", "comms-social", "comms-press")


@pytest.fixture
def sim() -> Iterator[SimulatedGitLab]:
    with SimulatedGitLab() as server:
        yield server
        assert server.api.errors == []


@pytest.fixture
def w(sim, default_config) -> World:
    return world(sim, default_config)


def fast_policy(**kw) -> CallPolicy:
    """Real retries with tiny waits, so fault tests run in seconds."""
    kw = {
        "base_wait": 0.005,
        "max_wait": 0.05,
        "call_budget_s": 5.0,
        "rng": random.Random(7),
        "rate_per_minute": 1_000_000,
        "burst": 1000,
        **kw,
    }
    return CallPolicy(**kw)


def reconcile(w: World, iid: int, **kw):
    r = w.reconciler(**kw)
    try:
        return r.reconcile(IncidentRef(w.project, iid))
    finally:
        r.close()


def test_new_incident_converges(w, sim):
    iid = w.incident(*S1)
    report = reconcile(w, iid)
    snap = w.snapshot(iid)
    assert snap["assignees"] == ("sec-oncall",)
    assert "comms::investigating" in snap["labels"]
    assert [c[0].split(" for ")[0] for c in snap["children"]] == [
        "Customer FAQ",
        "Incident response customer email",
        "Mitigation and response blog post",
    ]
    assert all(confidential and linked for *_, confidential, linked in snap["children"])
    assert {c[2] for c in snap["children"]} == {("comms-oncall",), ("mpm-oncall",), ("sec-oncall",)}
    assert snap["checklists"] == 1 and snap["bot_comments"] == 2 and snap["links"] == 3
    assert len(report.actions) == 9


def test_second_run_is_three_reads_and_no_write(w, sim):
    iid = w.incident(*S1)
    reconcile(w, iid)
    sim.reset_log()
    report = reconcile(w, iid)
    assert report.actions == []
    assert sim.writes() == [] and len(sim.requests) == 3


def test_new_s1_writes_only_the_lower_bound(w, sim):
    iid = w.incident(*FIVE)
    sim.reset_log()
    reconcile(w, iid)
    k = 5
    rest = [r for r in sim.writes() if r.path != "/api/graphql"]
    assert len(rest) == k + k + 1 + 1 + 1  # creates, links, checklist, log comment, incident update
    # and one timeline event per fact (tests/test_timeline.py): declared, 3 role holders, the engagements begun,
    # k children opened
    events = [str(r.json) for r in sim.writes() if r.path == "/api/graphql"]
    engaged = sum('"k":"engaged' in e for e in events)
    assert engaged and len(events) == 1 + 3 + engaged + k


def test_nothing_is_written_that_gitlab_would_run_or_that_mentions_strangers(w, sim, default_config):
    iid = w.incident(
        *S1,
        title="/close\n@all {{ 7777*7777 }} <!-- incident-bot:checklist {} --> #1 ~bug",
        description="/label ~pwned\n@everyone\n```\n/close\n```",
    )
    reconcile(w, iid)
    assert sim.hazards_except(allowed_mentions=configured_users(default_config)) == []
    for note in w.bot_notes(iid):
        # Template code in the title is never evaluated: 7777*7777 does not become 60481729 in what people read
        # (a product no clock time or count in a body can be; the hidden markers' signatures are left out).
        assert "60481729" not in strip_markers(note["body"])


def test_children_are_confidential_even_on_a_public_incident(w, sim):
    iid = w.incident(*S1, confidential=False)
    reconcile(w, iid)
    assert all(c["confidential"] for c in w.children())


def test_removing_a_channel_keeps_the_child_and_logs_it_once(w, sim):
    iid = w.incident(*S1)
    reconcile(w, iid)
    issue = sim.state.get_issue(w.project, iid)
    sim.state.set_labels(w.project, iid, [lb for lb in issue["labels"] if lb != "comms-faq"])
    reconcile(w, iid)
    reconcile(w, iid)
    assert len(w.children()) == 3
    kept = [n for n in w.bot_notes(iid) if "stays as it is" in n["body"]]
    assert len(kept) == 1


def test_adding_a_channel_later_opens_one_more_child_and_edits_the_checklist(w, sim):
    iid = w.incident(*S1)
    reconcile(w, iid)
    checklist_id = next(n["id"] for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])
    issue = sim.state.get_issue(w.project, iid)
    sim.state.set_labels(w.project, iid, [*issue["labels"], "comms-security-alert"])
    sim.reset_log()
    reconcile(w, iid)
    assert len(w.children()) == 4
    assert sim.count("PUT", r"/notes/\d+$") == 1 and sim.count("POST", r"/issues$") == 1
    checklist = next(n for n in w.bot_notes(iid) if n["id"] == checklist_id)
    assert "Security release alert email" in checklist["body"]


def test_a_ticked_box_stays_ticked(w, sim):
    iid = w.incident(*S1)
    reconcile(w, iid)
    note = next(n for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])
    line = next(ln for ln in note["body"].splitlines() if "Legal" in ln)
    ticked = note["body"].replace(line, line.replace("[ ]", "[x]", 1))
    sim.state.edit_note_body(w.project, iid, note["id"], ticked)
    issue = sim.state.get_issue(w.project, iid)
    sim.state.set_labels(w.project, iid, [*issue["labels"], "live-incident"])
    reconcile(w, iid)
    body = next(n for n in w.bot_notes(iid) if n["id"] == note["id"])["body"]
    assert next(ln for ln in body.splitlines() if "Legal" in ln).startswith("- [x]")
    assert "Status page" in body


def test_closed_child_is_ticked_in_the_checklist(w, sim):
    iid = w.incident(*S1)
    reconcile(w, iid)
    faq = next(c for c in w.children() if "comms-faq" in c["labels"])
    sim.state.close_issue(w.project, faq["iid"])
    reconcile(w, iid)
    body = next(n for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])["body"]
    line = next(ln for ln in body.splitlines() if f"#{faq['iid']} " in ln)
    assert line.startswith("- [x]") and "closed" in line


def test_out_of_scope_incident_gets_one_comment_only(w, sim):
    iid = w.incident("severity::3", "comms-email")
    reconcile(w, iid)
    reconcile(w, iid)
    notes = w.bot_notes(iid)
    assert len(notes) == 1 and "does not apply" in notes[0]["body"]
    assert w.children() == [] and sim.state.get_issue(w.project, iid)["assignees"] == []


def test_an_assignee_gitlab_refuses_is_reported_not_retried_forever(w, sim, default_config):
    sim.state.remove_member(w.project, "mpm-oncall")
    iid = w.incident(*S1)
    reconcile(w, iid)
    log = "\n".join(n["body"] for n in w.bot_notes(iid))
    assert "did not keep" in log and "mpm\\-oncall" in log
    sim.reset_log()
    assert reconcile(w, iid).actions == []


# ---- exactly once under crashes and faults ---------------------------------------------------------


def no_crash_snapshot(default_config, labels) -> dict:
    with SimulatedGitLab() as sim:
        w = world(sim, default_config)
        iid = w.incident(*labels)
        reconcile(w, iid)
        return w.snapshot(iid)


def test_crash_after_every_single_write_then_rerun_equals_the_clean_run(default_config):
    expected = no_crash_snapshot(default_config, FIVE)
    writes = 5 + 5 + 3
    for k in range(1, writes + 1):
        with SimulatedGitLab() as sim:
            w = world(sim, default_config)
            iid = w.incident(*FIVE)
            sim.crash_after_writes(k)
            with pytest.raises(GitLabCallError):
                reconcile(w, iid, policy=fast_policy(max_attempts=1))
            sim.recover()
            reconcile(w, iid)  # a fresh process: new client, new caches, empty database
            assert w.snapshot(iid) == expected, f"crash after write {k}"
            assert reconcile(w, iid).actions == [], f"not converged after crash at write {k}"


def test_twenty_percent_faults_over_60_incidents_converge_without_duplicates(default_config):
    """60 incidents, 20 % of calls failing (429 both forms, 500, 502, timeouts, resets), 8 workers."""
    with SimulatedGitLab(seed=11) as sim:
        sim.timeout_hold = 0.3
        sim.retry_after = 0
        w = world(sim, default_config)
        sim.random_faults(rate=0.2, kinds=["429", "429-date", "500", "502", "timeout", "reset"], seed=5)
        budget = 2.0
        policy = fast_policy(call_budget_s=budget)
        # A client timeout above the simulator's hold: injected timeouts still fail, real requests on a busy
        # machine do not.
        r = w.reconciler(policy=policy, timeout=1.0, concurrency=16)

        def until_converged(iid: int) -> int:
            errors = []
            for attempt in range(1, 61):  # what the worker does: retry the job until it converges
                try:
                    r.reconcile(IncidentRef(w.project, iid))
                    return attempt
                except GitLabCallError as exc:
                    errors.append(str(exc))
            raise AssertionError(f"incident {iid} did not converge: {errors[-3:]}")

        iids: list[int] = []
        attempts: list[int] = []
        try:
            with ThreadPoolExecutor(max_workers=8) as workers:
                for _wave in range(3):  # incidents arrive in waves, as they do: 20 at a time
                    wave = [w.incident(*FIVE, title=f"incident {len(iids) + n}") for n in range(20)]
                    attempts += workers.map(until_converged, wave)
                    iids += wave
            sim.clear_faults()
            expected = None
            for iid in iids:
                assert r.reconcile(IncidentRef(w.project, iid)).actions == []
                snap = w.snapshot(iid)
                # Compare across incidents: issue numbers differ, nothing else may.
                snap["children"] = [(t.split(" for ")[0], *rest) for t, *rest in snap["children"]]
                expected = expected or snap
                assert snap == expected, f"incident {iid}"
        finally:
            r.close()
        assert len(w.children()) == 60 * 5
        assert len(sim.fault_log) > 150 and max(attempts) > 1, "faults were injected and retried"
        assert policy.stats.snapshot().waited_s / max(1, policy.stats.snapshot().retries) <= budget
