"""GitLab's per-endpoint write limits: refused calls with and without the budgets, and three replicas' combined rate.

    .venv/bin/python bench/bench_ratelimit.py [--incidents 8] [--notes-limit 10] [--replicas-seconds 60] [--no-pg]

Part 1, in fake time (nobody sleeps: every wait moves the simulator's clock): the simulated GitLab limits new notes
to ``--notes-limit`` a minute (gitlabhq ``notes_create``, fixed Unix minutes, a bare 429); ``--incidents`` critical
incidents (data breach, three external channels each) are queued at once and one worker converges them. Printed
per policy: the 429s GitLab answered, the jobs' failed attempts, dead jobs, and when the last incident converged.
``before``: the call policy as it was (no budgets; a bare 429 is retried with a jittered back-off of at most
0.5/1/2 s, then the job fails and is retried by the queue). ``after``: budgets set to GitLab's limit.
``after, limit unknown``: budgets left at GitLab.com's 60 a minute while the instance allows ``--notes-limit``,
so only the back-off to the end of GitLab's window is at work.

Part 2, in real time, on PostgreSQL (``tests/pg.py`` starts a throw-away server): three processes, each with its
own store (connections) and call policy, post notes as fast as their budget lets them to the simulated GitLab,
which allows 300 a minute, for ``--replicas-seconds`` starting at the top of a Unix minute (GitLab's window).
``shared``: budgets in the database (``api.notes_per_minute: 300``); ``per process``: each replica with a budget
of its own (what a replica without the shared table would do). Printed: notes accepted and refused in GitLab's
window, and the combined rate against the configured one.

Measured on a shared 2-core machine (``bench_ratelimit.py``):

- 8 critical incidents, 10 notes a minute: no refusal before or after. Each new incident posts one note through the
  notes API (its checklist); its status log is a thread, and GitLab's discussions API does not check the limit
  (gitlabhq ``lib/api/discussions.rb``), so 8 incidents stay under 10 a minute.
- 30 critical incidents, 10 notes a minute: before, 183 refused calls (213 note requests for 30 notes), 45 failed
  job attempts; after, 0 refused, 30 requests, 0 failed attempts; with the limit unknown to the bot (60), 2 refused
  and 0 failed attempts. All 30 converge in each case (the last after 190 / 180 / 113 s).
- Three replica processes, 300 a minute, two full minutes: shared budget 299 and 299 notes accepted in GitLab's two
  minutes, 0 refused (299/min against 300 configured); a budget per process: 300 and 300, 6 refused (each replica
  is refused once a minute, then waits for GitLab's next minute).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.commands.world import world
from bot.config import load_config
from bot.gitlab.budget import Budgets, LocalLedger
from bot.gitlab.callpolicy import CallPolicy
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.store import JobState, open_store
from bot.worker import Outcome, Worker
from tests import store_inspect as peek

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)
LABELS = ("severity::1", "data-breach", "comms-email", "comms-blog", "comms-faq")
NOTES_ROUTE = "POST /projects/:id/issues/:iid/notes"


def _policy(clock: ManualClock, budgets: dict[str, int] | None) -> CallPolicy:
    """The bundled config's call policy on the simulator's clock; ``budgets`` None: as before this change."""

    def now() -> float:
        return clock().timestamp()

    def sleep(seconds: float) -> None:
        clock.advance(seconds)

    extra: dict[str, Any] = {}
    if budgets is not None:
        extra["budgets"] = Budgets(budgets, LocalLedger(), wallclock=now, sleep=sleep)
    return CallPolicy(
        rng=random.Random(1),
        rate_per_minute=1800,
        burst=50,
        max_attempts=4,
        call_budget_s=30,
        clock=now,
        sleep=sleep,
        wallclock=now,
        **extra,
    )


def burst_of_incidents(incidents: int, notes_limit: int, budgets: dict[str, int] | None) -> dict[str, Any]:
    cfg = load_config(ROOT / "config" / "bot.yaml")
    clock = ManualClock(T0)
    with tempfile.TemporaryDirectory() as tmp, SimulatedGitLab(now=clock, seed=1) as sim:
        sim.state.rate_limits.configure(notes_create=notes_limit)
        w = world(sim, cfg)
        store = open_store(Path(tmp) / "bot.sqlite3")
        keys = []
        for n in range(incidents):
            iid = w.incident(*LABELS, title=f"incident {n}")
            keys.append(f"{w.project_id}#{iid}")
            store.enqueue(keys[-1], clock(), "Issue Hook")
        reconciler = w.reconciler(_policy(clock, budgets), clock=clock)
        worker = Worker(store, reconciler, worker_id="bench:1", clock=clock, settle=timedelta(0))
        outcomes: dict[str, int] = {}
        converged: dict[str, datetime] = {}
        while len(converged) < incidents and clock() - T0 < timedelta(hours=2):
            result = worker.run_once()
            if result is None:
                if peek.depth(store).get("dead", 0) + len(converged) >= incidents:
                    break
                clock.advance(1)
                continue
            outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
            if result.outcome is Outcome.OK and result.incident_key not in converged:
                converged[result.incident_key] = clock()
        dead = sum(1 for j in store.dead_jobs() if j.state is JobState.DEAD)
        notes = sim.count(route=NOTES_ROUTE)
        store.close()
        return {
            "refused": sim.state.rate_limits.refused.get("notes_create", 0),
            "note requests": notes,
            "failed attempts": outcomes.get("transient", 0) + outcomes.get("permanent", 0),
            "deferred": outcomes.get(Outcome.DEFERRED.value, 0),
            "dead jobs": dead,
            "converged": len(converged),
            "last converged": max(converged.values()) - T0 if converged else None,
        }


# --------------------------------------------------------------------------- part 2: three replicas


def _replica(
    url: str,
    token: str,
    project: str,
    iid: int,
    shared: bool,
    store_url: str,
    start: float,
    until: float,
    limit: int,
    out: Any,
) -> None:
    """One replica: its own store, call policy and client; posts notes from ``start`` until ``until`` (Unix time)."""
    from bot.store.postgres import PostgresStore
    from bot.wiring import client_from

    store = PostgresStore(store_url, durability="normal")
    ledger = store if shared else LocalLedger()
    policy = CallPolicy(rate_per_minute=1_000_000, burst=1000, budgets=Budgets({"notes": limit}, ledger))
    client = client_from(url, token, policy)
    from bot.core.model import IncidentRef

    ref = IncidentRef(project, iid)
    sent = refused = 0
    time.sleep(max(0.0, start - time.time()))
    while time.time() < until:
        try:
            client.create_note(ref, "replica note")
            sent += 1
        except Exception:
            refused += 1
    store.close()
    out.put((sent, refused))


def replicas(seconds: float, limit: int, shared: bool, store_url: str) -> dict[str, Any]:
    cfg = load_config(ROOT / "config" / "bot.yaml")
    with SimulatedGitLab(seed=1) as sim:
        sim.state.rate_limits.configure(notes_create=limit)
        w = world(sim, cfg)
        iid = w.incident("severity::2", title="busy incident")
        start = (int(time.time()) // 60 + 1) * 60 + 0.5  # the top of the next Unix minute: GitLab's window
        if start - time.time() < 10:  # time for the replicas to start
            start += 60
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [
            ctx.Process(
                target=_replica,
                args=(sim.url, sim.token, w.project, iid, shared, store_url, start, start + seconds, limit, out),
            )
            for _ in range(3)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=seconds + 200) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        posted = [r for r in sim.find_requests(route=NOTES_ROUTE)]
        accepted = [r.timestamp for r in posted if r.status == 201]
        minutes = Counter(int(t) // 60 for t in accepted)
        return {
            "accepted": len(accepted),
            "refused": sum(1 for r in posted if r.status == 429),
            "per GitLab minute": [minutes[m] for m in sorted(minutes)],
            "per replica": [s for s, _ in results],
        }


def _pg_url() -> tuple[str | None, Callable[[], None]]:
    try:
        from tests.pg import PostgresServer

        server = PostgresServer.start()
    except Exception as exc:  # no server package here: part 2 is skipped, and says so
        print(f"part 2 skipped: no PostgreSQL ({exc})")
        return None, lambda: None
    return server.create_database("bench_ratelimit"), server.stop


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, nargs="+", default=[8, 30])
    parser.add_argument("--notes-limit", type=int, default=10)
    parser.add_argument("--replicas-seconds", type=float, default=119.0, help="from the top of a minute")
    parser.add_argument("--replicas-limit", type=int, default=300)
    parser.add_argument("--no-pg", action="store_true", help="part 1 only")
    parser.add_argument("--no-fake", action="store_true", help="part 2 only")
    args = parser.parse_args()
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))

    limit = args.notes_limit
    logging.disable(logging.WARNING)  # the "before" runs log every failed attempt
    for incidents in [] if args.no_fake else args.incidents:
        print(f"\npart 1: {incidents} critical incidents at once, GitLab allows {limit} new notes a minute (fake time)")
        for name, budgets in (
            ("before (no budgets)", None),
            (f"after (api.notes_per_minute: {limit})", {"notes": limit, "issues": 200}),
            ("after, limit unknown (api.notes_per_minute: 60)", {"notes": 60, "issues": 200}),
        ):
            r = burst_of_incidents(incidents, limit, budgets)
            took = r["last converged"]
            print(
                f"  {name}:\n    refused calls (429) {r['refused']}, note requests {r['note requests']}, "
                f"failed job attempts {r['failed attempts']}, deferred {r['deferred']}, dead jobs {r['dead jobs']}, "
                f"converged {r['converged']}/{incidents}"
                + (f", the last {took.total_seconds():.0f} s after the burst" if took is not None else "")
            )
    logging.disable(logging.NOTSET)
    if args.no_pg:
        return 0

    url, stop = _pg_url()
    if url is None:
        return 0
    try:
        print(
            f"\npart 2: three replica processes on one PostgreSQL, GitLab allows {args.replicas_limit} new notes a "
            f"minute, api.notes_per_minute: {args.replicas_limit}, {args.replicas_seconds:g} s from the top of a "
            "minute (real time)"
        )
        minutes = max(1, int((args.replicas_seconds + 1) // 60))
        for name, shared in (("shared budget (in the database)", True), ("a budget per process", False)):
            r = replicas(args.replicas_seconds, args.replicas_limit, shared, url)
            print(
                f"  {name}: accepted {r['accepted']} ({r['per replica']} by replica), refused {r['refused']}; "
                f"accepted in each of GitLab's minutes {r['per GitLab minute']} (it allows {args.replicas_limit}); "
                f"combined {sum(r['per GitLab minute'][:minutes]) / minutes:.0f}/min over the {minutes} full minutes "
                f"against {args.replicas_limit}/min configured"
            )
    finally:
        stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
