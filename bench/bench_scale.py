"""Reconcile throughput by number of worker processes and store backend, with 100 ms per GitLab API call.

    .venv/bin/python bench/bench_scale.py [--incidents 40] [--latency 0.1]

A simulated GitLab on loopback adds ``--latency`` to every API call. N new S1 incidents with two channels
each are queued at once; K ``incident-bot worker --threads 1`` processes share the store and drain the
queue; throughput is incidents converged per second from the first job to the last. PostgreSQL is a
throw-away server started for the run (Debian's postgresql package); SQLite is a file.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.commands.world import PROJECT, world  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.simgitlab import SimulatedGitLab  # noqa: E402
from bot.store import open_store  # noqa: E402
from tests import store_inspect as peek  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402


def fast_config(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    data["api"].update(rate_per_minute=1_000_000, burst=1000, notes_per_minute=0, issues_per_minute=0)
    data["templates_dir"] = str(ROOT / "issue_templates")
    path = tmp / "bot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def workers(n: int, sim: SimulatedGitLab, db: str, config: Path, log: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_"))}
    env |= {
        "GITLAB_URL": sim.url,
        "GITLAB_TOKEN": sim.token,
        "INCIDENT_BOT_DB": db,
        "INCIDENT_BOT_CONFIG": str(config),
        "INCIDENT_BOT_SCOPE": PROJECT,
        "INCIDENT_BOT_SWEEP_SECONDS": "off",
    }
    out = log.open("ab")
    return [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--threads", "1", "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(n)
    ]


def run(backend: str, db: str, n_workers: int, incidents: int, latency: float, tmp: Path) -> float:
    cfg = load_config()
    with SimulatedGitLab() as sim:
        w = world(sim, cfg)
        procs = workers(n_workers, sim, db, fast_config(tmp), tmp / f"{backend}-{n_workers}.log")
        try:
            time.sleep(2.0)  # let the worker processes import and connect before the clock starts
            sim.latency = latency
            iids = [w.incident("severity::1", "comms-email", "comms-faq", title=f"i{n}") for n in range(incidents)]
            with open_store(db) as store:
                start = time.perf_counter()
                for iid in iids:
                    store.enqueue(f"{w.project_id}#{iid}", datetime.now(UTC), "bench")
                while peek.depth(store) != {"pending": 0, "running": 0, "dead": 0}:
                    time.sleep(0.02)
                elapsed = time.perf_counter() - start
            converged = sum(1 for iid in iids if w.snapshot(iid)["links"] == 2)
            assert converged == incidents, f"{converged}/{incidents} converged"
            return incidents / elapsed
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    print(f"$ .venv/bin/python bench/bench_scale.py --incidents {args.incidents} --latency {args.latency}")
    print(f"{args.incidents} new S1 incidents (2 channels each), {int(args.latency * 1000)} ms per API call\n")
    print(f"{'backend':<11} {'workers':>7} {'incidents/s':>12} {'scaling':>8}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        results: dict[tuple[str, int], float] = {}
        rate = run("sqlite", str(tmp / "bench.sqlite3"), 1, args.incidents, args.latency, tmp)
        results[("sqlite", 1)] = rate
        print(f"{'sqlite':<11} {1:>7} {rate:>12.2f} {'1.00x':>8}")
        with PostgresServer.start(durable=True) as pg:  # fsync on, as in production
            for n in (1, 2, 4):
                url = pg.create_database(f"bench_{n}")
                rate = run("postgresql", url, n, args.incidents, args.latency, tmp)
                results[("postgresql", n)] = rate
                base = results[("postgresql", 1)]
                print(f"{'postgresql':<11} {n:>7} {rate:>12.2f} {rate / base:>7.2f}x")


if __name__ == "__main__":
    main()
