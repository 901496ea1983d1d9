"""What the search before a child is created costs, against the simulated GitLab (loopback).

    .venv/bin/python bench/bench_child_search.py

Before it opens a child the bot looks for one it may have opened already (a crash before the link, a link
refused or removed, ``dead-letters retry``): its own issues in the project created since the incident began,
recognised by the marker it signed for the incident. Labels are not asked for (a Reporter may remove them,
GitLab drops them when the bot is only a Guest), so the search reads every issue the bot opened there since,
one request per 100. An S1 incident is converged; then the bot opens N issues for other incidents; then a
channel is added to the first one. Prints, for each N, the search requests and all requests of that reconcile.
"""

from __future__ import annotations

from pathlib import Path

from bot.commands.world import world
from bot.config import load_config
from bot.core.model import IncidentRef
from bot.simgitlab import SimulatedGitLab

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    cfg = load_config(ROOT / "config" / "bot.yaml")
    print("other issues by the bot since the incident began | search requests | requests in the reconcile")
    for n in (0, 100, 300, 1000):
        with SimulatedGitLab() as sim:
            w = world(sim, cfg)
            iid = w.incident("severity::1", "comms-email")
            ref = IncidentRef(w.project, iid)
            r = w.reconciler()
            r.reconcile(ref)
            r.close()
            for k in range(n):  # the children of later incidents
                sim.state.create_issue(
                    w.project, f"child {k}", labels=(cfg.labels.child, "comms-faq"), author=cfg.bot.username
                )
            sim.state.set_labels(w.project, iid, [*sim.state.get_issue(w.project, iid)["labels"], "comms-blog"])
            sim.reset_log()
            r = w.reconciler()
            r.reconcile(ref)
            r.close()
            search = [q for q in sim.requests if q.method == "GET" and q.route.endswith("/projects/:id/issues")]
            print(f"{n:>48} | {len(search):>15} | {len(sim.requests):>25}")


if __name__ == "__main__":
    main()
