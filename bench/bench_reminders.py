"""Reminder delay: from the moment a status update falls due to the reminder being posted, sweep off.

    .venv/bin/python bench/bench_reminders.py [--incidents 200] [--spread 60] [--latency 0.05] [--threads 2]

Against the simulated GitLab on loopback, in real time. Setup (no latency): N open S1 data-breach incidents
(two hourly engagements each), each converged once by a worker whose clock is set back so that its first
status update falls due a little after setup ends, the N of them spread evenly over ``--spread`` seconds
(the same minute). Then the simulator answers every call after ``--latency`` seconds, and a worker pool as
``serve`` runs it (``--threads``, default settle and poll interval, no sweep) works the queue with the real
clock. The delay of a reminder is the time its note was created in the simulator minus when it fell due
(the job's ``not_before``). Prints p50/p99/max and checks every incident got exactly one reminder.

Measured on a shared 2-core machine (reminders spread over a minute / all due at the same instant):
``bench_reminders.py``: p50 0.69 s, p99 0.88 s, max 0.92 s; ``--spread 0``: p50 7.57 s, p99 13.89 s,
max 14.00 s (200 reconciles of about 4 calls at 50 ms each, two threads).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.commands.world import world
from bot.config import load_config
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.store import open_store
from bot.worker import Worker, WorkerPool
from tests import store_inspect as peek

ROOT = Path(__file__).resolve().parent.parent
REMINDER = "Status update due"
HOUR = timedelta(hours=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which the reminders fall due")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the simulator takes per call")
    parser.add_argument("--threads", type=int, default=2, help="worker threads (serve's default is 2)")
    parser.add_argument("--lead", type=float, default=20.0, help="seconds from the start to the first due time")
    args = parser.parse_args()
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))

    cfg = load_config(ROOT / "config" / "bot.yaml")
    with tempfile.TemporaryDirectory() as tmp, SimulatedGitLab(seed=1) as sim:
        w = world(sim, cfg)
        iids = [w.incident("severity::1", "data-breach", title=f"incident {n}") for n in range(args.incidents)]
        keys = {iid: f"{w.project_id}#{iid}" for iid in iids}
        store = open_store(Path(tmp) / "bot.sqlite3")
        first_due = utcnow() + timedelta(seconds=args.lead)

        # Setup: each incident's first reconcile, "an hour minus a bit" ago by the bot's clock.
        setup_clock = ManualClock()
        setup = Worker(store, w.reconciler(clock=setup_clock), worker_id="setup", clock=setup_clock)
        setup.settle = timedelta(0)
        started = time.monotonic()
        for n, iid in enumerate(iids):
            setup_clock.set(first_due - HOUR + timedelta(seconds=args.spread * n / args.incidents))
            store.enqueue(keys[iid], setup_clock(), "Issue Hook")
            result = setup.run_once()
            assert result is not None and result.state == "pending", result
        setup.reconciler.close()  # type: ignore[attr-defined]
        dues = {iid: peek.active_job(store, key).not_before for iid, key in keys.items()}  # type: ignore[union-attr]
        setup_s = time.monotonic() - started
        if utcnow() >= min(dues.values()):
            print(f"setup took {setup_s:.0f} s, past the first due time: raise --lead", file=sys.stderr)
            return 2
        print(f"setup: {len(iids)} incidents converged in {setup_s:.1f} s; all due within {args.spread:.0f} s")

        # The measured run: real clock, simulator latency, a worker pool without a sweep.
        sim.latency = args.latency
        sim.reset_log()
        reconciler = w.reconciler()
        pool = WorkerPool(store, reconciler, threads=args.threads, sweeper=None)
        stop = threading.Event()
        runner = threading.Thread(target=pool.run, args=(stop,), kwargs={"grace": 30.0}, daemon=True)
        runner.start()
        deadline = max(dues.values()) + timedelta(seconds=120)
        posted: dict[int, list[datetime]] = {}
        while utcnow() < deadline:
            posted = {
                iid: [datetime.fromisoformat(n["created_at"]) for n in w.bot_notes(iid) if REMINDER in n["body"]]
                for iid in iids
            }
            if all(posted.values()):
                break
            time.sleep(0.5)
        time.sleep(2)  # a duplicate reminder would show up now
        stop.set()
        runner.join(60)
        reconciler.close()
        store.close()
        posted = {
            iid: [datetime.fromisoformat(n["created_at"]) for n in w.bot_notes(iid) if REMINDER in n["body"]]
            for iid in iids
        }

    missing = [iid for iid in iids if not posted[iid]]
    twice = [iid for iid in iids if len(posted[iid]) > 1]
    delays = [(posted[iid][0] - dues[iid]).total_seconds() for iid in iids if posted[iid]]
    calls = len(sim.requests)
    print(
        f"simulator latency {args.latency * 1000:.0f} ms per call, {args.threads} worker threads, sweep off;"
        f" {calls} API calls in the measured run"
    )
    print(f"reminders posted: {len(delays)}/{len(iids)}; posted twice: {len(twice)}")
    if delays:
        print(
            f"delay from due to posted: p50 {statistics.median(delays):.2f} s, p99 {percentile(delays, 0.99):.2f} s,"
            f" max {max(delays):.2f} s, min {min(delays):.2f} s"
        )
    return 1 if missing or twice else 0


if __name__ == "__main__":
    sys.exit(main())
