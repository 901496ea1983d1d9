"""API cost of judging status updates, against the simulated GitLab (loopback only).

    .venv/bin/python bench/bench_status_updates.py

One reconciler (one process) looks at one engaged S1 incident again after each kind of comment and
prints the requests of that look and how many were member look-ups. A status update costs one access
check the first time the process sees it, and only when its author holds no role; looks with nothing new
cost none. Comments that do not look like status updates never cost one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.commands.demo import STATUS_UPDATE
from bot.commands.world import world
from bot.config import load_config
from bot.core.model import IncidentRef
from bot.simgitlab import ManualClock, SimulatedGitLab

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    clock = ManualClock(datetime(2026, 11, 30, 9, tzinfo=UTC))
    cfg = load_config(ROOT / "config" / "bot.yaml")
    with SimulatedGitLab(now=clock) as sim:
        w = world(sim, cfg)
        for name, level in (("reporter-rae", 20), ("guest-gus", 10)):
            sim.state.add_user(name)
            sim.state.add_member(w.project, name, level)
        iid = w.incident("severity::1", "data-breach", "comms-email")
        ref = IncidentRef(w.project, iid)
        r = w.reconciler(clock=clock)
        try:
            r.reconcile(ref)

            def look(label: str) -> None:
                sim.reset_log()
                r.reconcile(ref)
                requests = list(sim.requests)
                lookups = sum(1 for q in requests if q.route and "/members/" in q.route)
                print(f"{label:48s} requests {len(requests):2d}   member look-ups {lookups}")

            look("nothing new")
            sim.state.add_note(w.project, iid, "thanks, following", author="guest-gus")
            look("a Guest's plain comment")
            sim.state.add_note(w.project, iid, STATUS_UPDATE, author="sec-incident-manager")
            look("the SIMOC's update (a role holder)")
            sim.state.add_note(w.project, iid, STATUS_UPDATE, author="reporter-rae")
            look("a Reporter's update")
            look("nothing new")
            sim.state.add_note(w.project, iid, STATUS_UPDATE, author="guest-gus")
            look("a Guest's update (does not count)")
            look("nothing new")
        finally:
            r.close()


if __name__ == "__main__":
    main()
