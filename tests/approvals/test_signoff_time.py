"""The plan's current matrix in time: four approver groups with backups, 30-minute windows, a 6-hour target and
a quorum of 2 of 4 at the cut-off. Delayed jobs from the real queue (SQLite), the simulator and the workers on
one manual clock: moved, never slept."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.commands.world import World, world
from bot.config import parse_config
from bot.core import drafts
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.store import JobState, open_store
from bot.worker import Outcome
from tests import store_inspect as peek
from tests.approvals.support import (
    CMOC,
    DRAFT,
    SEV1_EMAIL,
    child_notes,
    child_of,
    say,
    shown,
    signoff_rows,
    write_draft,
)
from tests.conftest import look
from tests.test_requeue import run_all, worker

ROOT = Path(__file__).resolve().parents[2]
DIGEST = drafts.digest(DRAFT)
MATRIX = {
    "groups": {
        "security": ["team:sr_director_security", "role:seoc"],  # sec-director, then the SEOC
        "legal": ["team:legal", "team:corporate_marketing_pr"],  # legal-oncall, then pr-manager
        "cs": ["team:support", "team:marketing_ops"],  # support-manager-oncall, then mktg-ops
        "ir": ["team:egroup", "team:community_advocates"],  # e-group, then advocates
        "corpcomms": ["team:status_page"],  # comms-oncall
    },
    "matrix": {"comms-email": {"security": "approver", "legal": "approver", "cs": "approver", "ir": "approver",
                               "corpcomms": "fyi"}},
    "window": "30m",
    "target": {"critical": "6h"},
    "quorum": {"of": ["security", "legal", "cs", "ir"], "at_least": 2},
}


@pytest.fixture
def pw(sim: SimulatedGitLab) -> World:
    """A world whose policy is the bundled one with the plan's current matrix switched on."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    data["approvals"] = {**data["approvals"], **MATRIX}
    data["scope"] = ["acme/security-incidents"]
    return world(sim, parse_config(data, base_dir=ROOT / "config"))


def _drafted(w: World, clock: ManualClock) -> tuple[int, datetime]:
    iid = w.incident(*SEV1_EMAIL)
    look(w, clock, iid)
    write_draft(w, DRAFT)
    since = clock()
    look(w, clock, iid)
    return iid, since


def test_a_silent_primary_gets_their_backup_mentioned_within_30_s_of_the_windows_end(pw: World, clock: ManualClock,
                                                                                    tmp_path: Path) -> None:
    w = pw
    iid = w.incident(*SEV1_EMAIL)
    key = f"{w.project_id}#{iid}"
    with open_store(str(tmp_path / "bot.sqlite3")) as store:
        wk = worker(w, store, clock)
        try:
            store.enqueue(key, clock(), "Issue Hook")
            clock.advance(1)
            run_all(wk)
            write_draft(w, DRAFT)  # the SIMOC writes the draft: GitLab sends the child's Issue Hook
            store.enqueue(key, clock(), "Issue Hook")
            clock.advance(1)
            since = clock()
            run_all(wk)
            say(w, iid, "approve email", "legal-oncall")  # Legal decides in time; the others stay silent
            store.enqueue(key, clock(), "Note Hook")
            clock.advance(1)
            run_all(wk)
            job = peek.active_job(store, key)
            end = since + timedelta(minutes=30)
            assert job is not None and job.state is JobState.PENDING and job.delayed
            assert abs(job.not_before - end) <= timedelta(seconds=30), (job.not_before, end)
            clock.set(end - timedelta(seconds=1))
            assert run_all(wk) == [], "nothing before the window's end"
            clock.set(job.not_before + timedelta(seconds=1))
            assert run_all(wk) == [Outcome.OK]
        finally:
            wk.reconciler.close()  # type: ignore[attr-defined]
    child = child_of(w)
    notes = w.sim.state.notes(w.project, child["iid"], include_system=False)
    backups = [n for n in notes if "you are next in its chain" in n["body"]]
    assert sorted(shown(n["body"]).split(":")[0] for n in backups) == ["@advocates", "@mktg-ops", "@sec-oncall"]
    for n in backups:  # posted within 30 s of the window's end
        posted = datetime.fromisoformat(n["created_at"].replace("Z", "+00:00"))
        assert timedelta(0) <= posted - end <= timedelta(seconds=30)
    assert not any("@pr-manager" in n["body"] for n in notes)  # Legal approved: its backup is left alone
    row = signoff_rows(w, iid)[0]
    assert "waiting for security (asked sec-oncall), cs (asked mktg-ops), ir (asked advocates)" in row


def test_quorum_at_the_cut_off_clears_the_draft(pw: World, clock: ManualClock) -> None:
    w = pw
    iid, since = _drafted(w, clock)
    say(w, iid, "approve email", "sec-director")
    say(w, iid, "approve email", "legal-oncall")
    look(w, clock, iid)
    assert "comms-approved" not in child_of(w)["labels"]  # 2 of 4: not before the cut-off
    clock.set(since + timedelta(hours=5, minutes=30))
    look(w, clock, iid)
    (warned,) = [n for n in child_notes(w) if n.startswith(f"@{CMOC}: the cut-off for this draft is")]
    assert "2026-11-30 15:00 UTC, in 30 minutes; still waiting for cs, ir" in warned
    clock.set(since + timedelta(hours=6))
    look(w, clock, iid)
    assert "comms-approved" in child_of(w)["labels"]
    (ready,) = [n for n in child_notes(w) if n.startswith("Draft ")]
    assert ready.startswith(f"Draft {DIGEST} is ready (cleared by quorum 2/4, missing: cs, ir)")
    assert "@mpm-oncall: you may send exactly this text" in ready and "Kept informed: @comms-oncall" in ready
    assert "ready at the cut-off: cleared by quorum 2/4, missing: cs, ir" in signoff_rows(w, iid)[0]


def test_one_of_four_at_the_cut_off_is_blocked_and_the_cmoc_mentioned(pw: World, clock: ManualClock) -> None:
    w = pw
    iid, since = _drafted(w, clock)
    say(w, iid, "approve email", "sec-director")
    look(w, clock, iid)
    clock.set(since + timedelta(hours=6, seconds=5))
    look(w, clock, iid)
    assert "comms-approved" not in child_of(w)["labels"]
    (blocked,) = [n for n in child_notes(w) if "the cut-off has passed" in n]
    assert blocked.startswith(f"@{CMOC}: the cut-off has passed and draft {DIGEST} is blocked")
    assert "short of quorum 1/4, missing: legal, cs, ir" in blocked


def test_a_person_in_two_chains_decides_for_both(pw: World, clock: ManualClock) -> None:
    """The backup of one group who is another's primary: their approval counts for every group they are in."""
    w = pw
    iid, _ = _drafted(w, clock)
    say(w, iid, "approve email", "sec-oncall")  # the SEOC: security's backup, in no other chain
    look(w, clock, iid)
    row = signoff_rows(w, iid)[0]
    assert f"security: ✓ approved {DIGEST} by sec-oncall" in row and "legal: waiting" in row
