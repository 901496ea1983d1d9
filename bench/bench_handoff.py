"""What a hand-off costs against the simulated GitLab (loopback only), and what an unchanged incident costs after.

    .venv/bin/python bench/bench_handoff.py [--runs 20]

For K = 1, 3, 5 channel labels (plus ``severity::1``) an incident is converged, then ``handoff seoc`` is
posted and one reconcile runs: its writes are broken down by route (each open child's names edited in place,
the children whose DRI is the SEOC reassigned, the incident reassigned, the checklist, the status log, the
reply). Then ``--runs`` no-op reconciles: their reads, writes and median time (CPU on this machine: the
simulator adds no latency). Goal: at most K description edits plus the reassignments; a no-op costs 3 reads,
0 writes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.commands.world import world
from bot.config import load_config
from bot.core.model import IncidentRef
from bot.simgitlab import SimulatedGitLab

CHANNELS = ("comms-email", "comms-faq", "comms-blog", "comms-social", "comms-press")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "bot.yaml")
    print(f"$ {' '.join(sys.argv)}")
    print(" K  hand-off writes (by kind)                                          | no-op reads writes  median")
    ok = True
    for k in (1, 3, 5):
        with SimulatedGitLab() as sim:
            w = world(sim, cfg)
            iid = w.incident("severity::1", "data-breach", *CHANNELS[:k])
            ref = IncidentRef(w.project, iid)
            r = w.reconciler()
            try:
                r.reconcile(ref)
                sim.state.add_note(w.project, iid, "@incident-bot handoff seoc @secops-oncall", author="sec-oncall")
                sim.reset_log()
                r.reconcile(ref)
                kinds: Counter[str] = Counter()
                for req in sim.writes():
                    body = req.json or {}
                    if req.method == "PUT" and "description" in body:
                        kinds["description"] += 1
                    elif req.method == "PUT" and "assignee_ids" in body:
                        kinds["assign"] += 1
                    elif req.method == "PUT" and "/notes/" in req.path:
                        kinds["checklist"] += 1
                    elif req.method == "POST" and req.path.endswith("/notes"):
                        kinds["comment"] += 1
                    else:
                        kinds[req.route or req.method] += 1
                edits = kinds["description"]
                ok = ok and edits <= k
                sim.reset_log()
                times = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    r.reconcile(ref)
                    times.append(time.perf_counter() - t)
                reads = sum(1 for q in sim.requests if not q.is_write) / args.runs
                writes = len(sim.writes())
                ok = ok and writes == 0
            finally:
                r.close()
        shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        median = statistics.median(times) * 1000
        print(f"{k:2}  {sum(kinds.values()):2}: {shown:<66}| {reads:9.0f} {writes:6} {median:6.1f} ms")
    print(f"goal: hand-off description edits <= K open children, no-op 0 writes: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
