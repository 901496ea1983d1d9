"""Sweep cost: API calls of one sweep over 1,000 open incidents of which 10 are due, and of one with none due.

    .venv/bin/python bench/bench_sweep.py [--incidents 1000] [--due 10] [--scope acme] [--outsider-issues 0]
        [--children] [--closed-children 0]

Against the simulated GitLab on loopback. Setup: N open S1 incidents; the N - due "busy" ones got a status
update 30 minutes in, the due ones never did; every incident is converged once (warming the store's
marks, as a running bot would have), then the clock moves to 65 minutes: exactly the due ones are in an
overdue hourly window. The sweep then lists, queues, and a worker drains the queue; every API call is
counted by route. ``--scope`` sets the config's ``scope:`` (the sweep then lists per group or project);
``--outsider-issues N`` adds a public project of somebody else's with N labelled open issues, which the bot
can see but must not act on. ``--children`` gives the sweep the state key, so it also lists the bot's children
changed since its last listing; ``--closed-children K`` gives K of the busy incidents a blog post child, closed by
a person at 60 minutes with no webhook (implies ``--children``): the sweep queues exactly those K.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.commands.demo import STATUS_UPDATE
from bot.commands.world import world
from bot.config import load_config
from bot.core.model import IncidentRef
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.store import open_store
from bot.sweep import remember
from bot.sweep import sweep as sweep_once
from tests import store_inspect as peek

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def drain(reconciler, store, clock) -> int:
    done = 0
    while (job := store.claim("bench", clock(), timedelta(minutes=5))) is not None:
        project, _, iid = job.incident_key.partition("#")
        report = reconciler.reconcile(IncidentRef(project, int(iid)))
        remember(store, job.incident_key, report, clock())
        store.complete(job.id, "bench", now=clock())
        done += 1
    return done


def counted(sim) -> tuple[int, Counter]:
    routes = Counter(f"{r.method} {r.route}" for r in sim.requests)
    return len(sim.requests), routes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--due", type=int, default=10)
    parser.add_argument("--scope", default="", help="comma-separated GitLab paths for the config's scope "
                        "(default: the incident project)")
    parser.add_argument("--outsider-issues", type=int, default=0)
    parser.add_argument("--children", action="store_true", help="the sweep also lists the bot's changed children")
    parser.add_argument("--closed-children", type=int, default=0)
    args = parser.parse_args()
    args.children = args.children or args.closed_children > 0
    cfg = load_config()
    if args.scope:
        cfg = cfg.model_copy(update={"scope": args.scope.split(",")})
    clock = ManualClock(T0)
    extra = (f" --scope {args.scope}" if args.scope else "") + (
        f" --outsider-issues {args.outsider_issues}" if args.outsider_issues else ""
    )
    if args.children:
        extra += f" --closed-children {args.closed_children}" if args.closed_children else " --children"
    print(f"$ .venv/bin/python bench/bench_sweep.py --incidents {args.incidents} --due {args.due}{extra}")
    started = time.perf_counter()
    with SimulatedGitLab(now=clock) as sim, tempfile.TemporaryDirectory() as tmp:
        w = world(sim, cfg)
        cfg = w.cfg  # without --scope, the world's project is the incident scope
        store = open_store(Path(tmp) / "bench.sqlite3")
        with_child = set(range(args.due, args.due + args.closed_children))
        iids = [
            w.incident("severity::1", *(("comms-blog",) if n in with_child else ()), title=f"incident {n}")
            for n in range(args.incidents)
        ]
        if args.outsider_issues:
            sim.state.add_user("outsider")
            sim.state.add_project("outsider/bait", members={"outsider": 50}, visibility="public")
            for n in range(args.outsider_issues):
                sim.state.create_issue("outsider/bait", f"bait {n}", labels=(cfg.labels.trigger,), author="outsider")
        busy = iids[args.due :]
        reconciler = w.reconciler(clock=clock)
        client = reconciler.client
        key = reconciler.key if args.children else None

        def sweep(client, store, cfg, now):  # the sweep as the worker runs it, with the state key or without
            return sweep_once(client, store, cfg, now, key=key)

        try:
            # Warm-up, as a live bot would have done: everything engaged at 09:00, the busy ones got a
            # status update at 09:30 and were looked at again.
            for when in (T0, T0 + timedelta(minutes=31)):
                clock.set(when)
                sweep(client, store, cfg, clock())
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(lambda _: drain(reconciler, store, clock), range(4)))
                if when == T0:
                    clock.set(T0 + timedelta(minutes=30))
                    for iid in busy:
                        sim.state.add_note(w.project, iid, STATUS_UPDATE, author="sec-incident-manager")
            print(f"setup: {args.incidents} incidents converged in {time.perf_counter() - started:.1f}s")

            clock.set(T0 + timedelta(minutes=60))
            for n in sorted(with_child):
                blog = next(c for c in w.children() if f"#{iids[n]}" in c["title"])
                sim.state.close_issue(w.project, blog["iid"], actor="sec-oncall")  # no webhook: the sweep finds it
            clock.set(T0 + timedelta(minutes=65))
            sim.reset_log()
            report = sweep(client, store, cfg, clock())
            list_calls, _ = counted(sim)
            drained = drain(reconciler, store, clock)
            total, routes = counted(sim)
            writes = sum(n for route, n in routes.items() if not route.startswith("GET"))
            reminders = sum(1 for iid in iids[: args.due] for n in w.bot_notes(iid) if "Status update due" in n["body"])
            pages = -(-args.incidents // 100)
            print(f"\nsweep with {args.due} due: {report.summary()}")
            print(f"  listing calls: {list_calls} (pages of 100: {pages})")
            print(f"  incidents reconciled: {drained}; API calls in all: {total} ({writes} writes)")
            print(
                f"  per due incident: {(total - list_calls) / max(1, drained):.1f} calls; reminders posted: {reminders}"
            )
            for route, n in sorted(routes.items()):
                print(f"    {n:5d}  {route}")

            # Two replicas sweeping at the same moment, with the same 10 due again an hour later.
            clock.set(T0 + timedelta(minutes=125))
            sim.reset_log()
            with ThreadPoolExecutor(2) as pool:
                reports = list(pool.map(lambda _: sweep(client, store, cfg, clock()), range(2)))
            list_calls, _ = counted(sim)
            jobs = peek.depth(store)["pending"]
            drained = drain(reconciler, store, clock)
            total, _ = counted(sim)
            print(
                f"\ntwo replicas sweeping at once: {list_calls} listing calls; each queued {len(reports[0].queued)} "
                f"and {len(reports[1].queued)}; jobs in the queue {jobs} (coalesced); reconciles {drained}; "
                f"API calls in all {total}"
            )

            sim.reset_log()
            quiet = sweep(client, store, cfg, clock())
            drained = drain(reconciler, store, clock)
            total, _ = counted(sim)
            print(f"\nsweep with none due: {quiet.summary()}; API calls: {total}; reconciled: {drained}")
        finally:
            reconciler.close()
            store.close()
    print(f"\n(total run time {time.perf_counter() - started:.1f}s)")


if __name__ == "__main__":
    main()
