"""API economy and convergence time of the reconciler against the simulated GitLab (loopback only).

    .venv/bin/python bench/bench_reconcile.py [--runs 5] [--latency 0.1] [--deadline 120]

API economy: for K = 1, 3, 5 channel labels (plus ``severity::1``) a new incident is converged by a
fresh reconciler (an empty user cache, as in a fresh process), then run again (which should be three
reads and no write), then a second new incident is converged by the same reconciler (warm user cache).
Requests are counted from the simulator's log; reads are broken down by route. Each K gets its own
project so that the orphan search of one measurement does not see the children of another.

Convergence time: ``--latency`` seconds are added to every simulated API call and a new S1 incident
with five channels is converged, concurrently (the reconciler's default thread count) and
sequentially (``concurrency=1``), ``--runs`` times each with a fresh incident and a fresh reconciler
(cold user cache); the median is reported. Two more concurrent rows show the same with the user ids
already cached, and back to back under the bundled config's own client-side rate limit (``cfg.api``).
The "round trips" column is the longest chain of requests each sent after the previous one was
answered, i.e. how many latencies the run cannot avoid.

The simulator runs in this process on 127.0.0.1 and is stopped at the end; a watchdog ends the
process if the whole run exceeds ``--deadline`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import inspect
import itertools
import os
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gitlab

from bot import paths
from bot.commands.world import World, configured_users, world
from bot.config import Config, load_config
from bot.core.model import IncidentRef
from bot.gitlab.callpolicy import CallPolicy
from bot.reconciler import Reconciler
from bot.simgitlab import SimulatedGitLab
from bot.simgitlab.server import RATE_LIMIT, RecordedRequest
from bot.wiring import call_policy

PREFERRED_CHANNELS = ("comms-email", "comms-faq", "comms-blog", "comms-social", "comms-press")
SEVERITY = "severity::1"
KS = (1, 3, 5)
BENCH_RATE_PER_MINUTE = 1_000_000
BENCH_BURST = 1000
GOAL_NOOP_READS = 3
GOAL_CONCURRENT_S = 1.0
# GitLab.com per-user limits on the endpoints a new incident uses most (gitlab-facts.md §5.1, §5.7).
GITLAB_COM_ISSUES_PER_MIN = 200
GITLAB_COM_NOTES_PER_MIN = 60
PROJECT_NUMBERS = itertools.count(1)

SHORT_ROUTES = {
    "GET /projects/:id/issues/:iid": "issue",
    "GET /projects/:id/issues/:iid/links": "links",
    "GET /projects/:id/issues/:iid/notes": "notes",
    "GET /projects/:id/issues": "search",
    "GET /users": "users",
}


def bench_policy() -> CallPolicy:
    return CallPolicy(rate_per_minute=BENCH_RATE_PER_MINUTE, burst=BENCH_BURST)


@dataclass(frozen=True)
class Calls:
    reads: int
    writes: int
    read_routes: Counter[str]
    write_routes: Counter[str]
    user_lookups: int
    user_names: int

    @property
    def total(self) -> int:
        return self.reads + self.writes

    @classmethod
    def of(cls, requests: Sequence[RecordedRequest]) -> Calls:
        reads = [r for r in requests if not r.is_write]
        writes = [r for r in requests if r.is_write]
        users = [r for r in reads if r.route == "GET /users"]
        names = {str(r.query.get("username", "")).lower() for r in users}
        return cls(
            reads=len(reads),
            writes=len(writes),
            read_routes=Counter(r.route or f"{r.method} {r.path}" for r in reads),
            write_routes=Counter(r.route or f"{r.method} {r.path}" for r in writes),
            user_lookups=len(users),
            user_names=len(names),
        )


@dataclass(frozen=True)
class Economy:
    k: int
    channels: tuple[str, ...]
    first: Calls
    noop: Calls
    noop_actions: int
    warm: Calls
    converged: bool

    @property
    def write_bound(self) -> int:
        return 2 * self.k + 3


def pick_channels(cfg: Config, k: int) -> tuple[str, ...]:
    configured = [c.label for c in cfg.channels]
    preferred = [c for c in PREFERRED_CHANNELS if c in configured]
    ordered = preferred + [c for c in configured if c not in preferred]
    if len(ordered) < k:
        raise SystemExit(f"the config has only {len(ordered)} channels, {k} needed")
    return tuple(ordered[:k])


def run_once(sim: SimulatedGitLab, w: World, reconciler: Reconciler, iid: int) -> tuple[Calls, int]:
    """Calls made and actions taken by one reconcile of ``iid``."""
    sim.reset_log()
    report = reconciler.reconcile(IncidentRef(w.project, iid))
    return Calls.of(list(sim.requests)), len(report.actions)


def measure_economy(sim: SimulatedGitLab, cfg: Config, k: int) -> Economy:
    w = world(sim, cfg, project=f"acme/economy-k{k}")
    channels = pick_channels(cfg, k)
    labels = (SEVERITY, *channels)
    reconciler = w.reconciler(policy=bench_policy())
    try:
        iid = w.incident(*labels)
        first, _ = run_once(sim, w, reconciler, iid)
        noop, noop_actions = run_once(sim, w, reconciler, iid)
        snap = w.snapshot(iid)
        converged = len(snap["children"]) == k and snap["links"] == k and snap["checklists"] == 1
        warm, _ = run_once(sim, w, reconciler, w.incident(*labels))
    finally:
        reconciler.close()
    return Economy(k, channels, first, noop, noop_actions, warm, converged)


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: list[float]
    calls: list[int]
    round_trips: list[int]
    throttled_s: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def round_trips(requests: Sequence[RecordedRequest]) -> int:
    """The longest chain of requests each sent after the previous one was answered: the critical path."""
    ordered = sorted(requests, key=lambda r: r.timestamp)
    depth: list[int] = []
    for i, r in enumerate(ordered):
        before = [depth[j] for j in range(i) if ordered[j].timestamp + ordered[j].duration <= r.timestamp]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def measure_time(
    sim: SimulatedGitLab,
    cfg: Config,
    name: str,
    runs: int,
    *,
    concurrency: int | None,
    policy: Callable[[], CallPolicy],
    warm_users: bool = False,
) -> Timing:
    labels = (SEVERITY, *pick_channels(cfg, 5))
    seconds: list[float] = []
    calls: list[int] = []
    trips: list[int] = []
    policies: dict[int, CallPolicy] = {}
    for _ in range(runs):
        w = world(sim, cfg, project=f"acme/timing-{next(PROJECT_NUMBERS)}")
        iid = w.incident(*labels)
        run_policy = policy()
        policies[id(run_policy)] = run_policy
        kw = {} if concurrency is None else {"concurrency": concurrency}
        reconciler = w.reconciler(policy=run_policy, **kw)
        try:
            if warm_users:
                latency, sim.latency = sim.latency, 0.0
                try:
                    for username in sorted(configured_users(cfg)):
                        reconciler.client.user_id(username)
                finally:
                    sim.latency = latency
            sim.reset_log()
            start = time.perf_counter()
            reconciler.reconcile(IncidentRef(w.project, iid))
            seconds.append(time.perf_counter() - start)
            logged = list(sim.requests)
            calls.append(len(logged))
            trips.append(round_trips(logged))
        finally:
            reconciler.close()
    throttled = sum(p.stats.snapshot().throttled_s for p in policies.values())
    return Timing(name, seconds, calls, trips, throttled)


def shared_policy(cfg: Config) -> Callable[[], CallPolicy]:
    """The bundled config's policy, one instance for all runs (its limiter is process-wide)."""
    policy = call_policy(cfg.api)
    return lambda: policy


def fmt_routes(routes: Counter[str]) -> str:
    return " ".join(f"{SHORT_ROUTES.get(route, route)}={n}" for route, n in sorted(routes.items()))


def print_economy(rows: list[Economy]) -> None:
    print("API economy: a new incident with severity::1 + K channels, one project per K")
    print(f"  channels: {', '.join(rows[-1].channels)} (the first K)")
    print(f"  {'':>2} {'first run, cold user cache':^42} | {'no-op run':^11} | {'new incident, warm cache':^24}")
    print(
        f"  {'K':>2} {'reads':>5} {'writes':>6} {'total':>5} {'2K+3':>5} {'user look-ups':>16} |"
        f" {'reads':>5} {'writes':>5} | {'reads':>5} {'writes':>6} {'total':>5} |  converged"
    )
    for e in rows:
        users = f"{e.first.user_lookups} for {e.first.user_names} names"
        ok = "yes" if e.converged else "NO"
        print(
            f"  {e.k:>2} {e.first.reads:>5} {e.first.writes:>6} {e.first.total:>5} {e.write_bound:>5} {users:>16} |"
            f" {e.noop.reads:>5} {e.noop.writes:>5} | {e.warm.reads:>5} {e.warm.writes:>6} {e.warm.total:>5} |  {ok}"
        )
    print("  2K+3 = lower bound of writes: K creates, K links, the checklist, one log comment, the incident's update")
    print("  reads by route, first run | warm run:")
    for e in rows:
        print(f"    K={e.k}: {fmt_routes(e.first.read_routes)} | {fmt_routes(e.warm.read_routes)}")
    for e in rows:
        if e.first.writes != e.write_bound:
            print(f"    K={e.k}: writes {fmt_routes(e.first.write_routes)}")
    noop_ok = all(e.noop.reads <= GOAL_NOOP_READS and e.noop.writes == 0 and e.noop_actions == 0 for e in rows)
    at_bound = all(e.first.writes == e.write_bound for e in rows)
    wasted = sum(e.first.user_lookups - e.first.user_names for e in rows)
    print(
        f"  goal no-op <= {GOAL_NOOP_READS} reads and 0 writes: {'met' if noop_ok else 'NOT met'};"
        f" first-run writes at the bound: {'yes, every K' if at_bound else 'NO'}"
    )
    print(
        f"  repeated look-ups of a name within one run: {wasted} (concurrent cache misses; the count varies run to run)"
    )


def print_timing(rows: list[Timing], latency: float, runs: int) -> None:
    print()
    print(
        f"Convergence time: a new S1 incident with 5 channels, {latency * 1000:.0f} ms added to every API call,"
        f" median of {runs} runs (fresh incident and reconciler each)"
    )
    print(f"  {'mode':<52} {'median':>7} {'min':>6} {'max':>6} {'calls':>5} {'round trips':>11} {'throttled':>9}")
    for t in rows:
        print(
            f"  {t.name:<52} {t.median:>6.2f}s {min(t.seconds):>5.2f}s {max(t.seconds):>5.2f}s"
            f" {statistics.median(t.calls):>5.0f} {statistics.median(t.round_trips):>11.0f} {t.throttled_s:>8.2f}s"
        )
    concurrent, sequential = rows[0], rows[1]
    print(
        f"  sequential / concurrent = {sequential.median / concurrent.median:.1f}x; round trips = the longest chain"
        " of requests each sent after the previous one was answered"
    )
    print(
        f"  goal concurrent < {GOAL_CONCURRENT_S:.1f} s (cold user cache):"
        f" {'met' if concurrent.median < GOAL_CONCURRENT_S else 'NOT met'} ({concurrent.median:.2f} s)"
    )


def print_rate_limit(cfg: Config, rows: list[Economy], concurrent: Timing) -> None:
    rate, burst = cfg.api.rate_per_minute, cfg.api.burst
    per_s = rate / 60.0
    print()
    print(
        f"Rate limits: the runs above used a client-side limit of {BENCH_RATE_PER_MINUTE:,}/min, burst {BENCH_BURST},"
        " because the simulator is not GitLab.com."
    )
    print(f"  The bundled config has cfg.api.rate_per_minute={rate:g} ({per_s:g}/s) and burst={burst:g}:")
    columns = f"{'client wait, 1 incident':>23} {'new incidents/min':>17} {'GitLab.com create caps':>22}"
    print(f"  {'K':>2} {'calls':>5} {columns}")
    for e in rows:
        calls = e.first.total
        wait = max(0.0, calls - burst) / per_s
        caps = min(GITLAB_COM_ISSUES_PER_MIN // e.k, GITLAB_COM_NOTES_PER_MIN // 2)
        print(f"  {e.k:>2} {calls:>5} {wait:>22.2f}s {rate / calls:>17.0f} {caps:>22}")
    noop = max(e.noop.total for e in rows)
    pace = statistics.median(concurrent.calls) / concurrent.median
    notes = [
        "client wait: for one new incident, from a full bucket ((calls - burst) / rate)",
        "new incidents/min: the sustained rate divided by a first run's calls (cold user cache)",
        f"GitLab.com create caps: {GITLAB_COM_ISSUES_PER_MIN} issue and {GITLAB_COM_NOTES_PER_MIN} note creations"
        f" per minute per user, so new incidents/min <= min({GITLAB_COM_ISSUES_PER_MIN}/K,"
        f" {GITLAB_COM_NOTES_PER_MIN}/2)",
        f"a no-op re-check is {noop} calls: {rate / noop:.0f}/min under cfg.api"
        f" (GitLab.com allows {RATE_LIMIT} requests/min per user in all)",
        f"one concurrent run makes {pace:.0f} calls/s at this latency against {per_s:g}/s sustained: several new"
        f" incidents at once drain the burst of {burst:g}, then wait for tokens",
    ]
    for line in notes:
        print(f"  {line}")


def command_line() -> str:
    exe = Path(sys.executable)
    try:
        shown = str(exe.relative_to(Path.cwd()))
    except ValueError:
        shown = str(exe)
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(Path.cwd())
    return shlex.join([shown, str(script), *sys.argv[1:]])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per timing mode (default 5)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every API call (default 0.1)")
    parser.add_argument("--deadline", type=float, default=120.0, help="abort the whole run after this many seconds")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.latency < 0 or args.deadline <= 0:
        parser.error("--runs must be >= 1, --latency >= 0, --deadline > 0")

    faulthandler.dump_traceback_later(args.deadline, exit=True)
    started = time.perf_counter()
    cfg = load_config()
    default_concurrency = int(inspect.signature(Reconciler.__init__).parameters["concurrency"].default)
    print(f"$ {command_line()}")
    print(
        f"config {paths.default_config_path()}; python-gitlab {gitlab.__version__};"
        f" Python {sys.version.split()[0]}; {os.cpu_count()} CPUs"
    )
    try:
        with SimulatedGitLab(bot_username=cfg.bot.username) as sim:
            print(f"simulated GitLab at {sim.url} (in this process)")
            print()
            economy = [measure_economy(sim, cfg, k) for k in KS]
            print_economy(economy)

            sim.latency = args.latency
            threads = f"{default_concurrency} threads"
            timing = [
                measure_time(
                    sim,
                    cfg,
                    f"concurrent ({threads}), cold user cache",
                    args.runs,
                    concurrency=None,
                    policy=bench_policy,
                ),
                measure_time(
                    sim,
                    cfg,
                    "sequential (concurrency=1), cold user cache",
                    args.runs,
                    concurrency=1,
                    policy=bench_policy,
                ),
                measure_time(
                    sim,
                    cfg,
                    f"concurrent ({threads}), warm user cache",
                    args.runs,
                    concurrency=None,
                    policy=bench_policy,
                    warm_users=True,
                ),
                measure_time(
                    sim,
                    cfg,
                    "concurrent, cold cache, cfg.api limit, back to back",
                    args.runs,
                    concurrency=None,
                    policy=shared_policy(cfg),
                ),
            ]
            sim.latency = 0.0
            print_timing(timing, args.latency, args.runs)
            print_rate_limit(cfg, economy, timing[0])
            if sim.api.errors:
                print(f"\nsimulator errors: {len(sim.api.errors)} (first follows)\n{sim.api.errors[0]}")
                return 1
    finally:
        faulthandler.cancel_dump_traceback_later()
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
