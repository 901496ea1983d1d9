"""Throughput of the SQLite delivery store, for durability "normal" and "full".

Measures, single-threaded, in a temporary directory on the same filesystem as the system temp dir:

- committed ``record_delivery`` calls/s: new deliveries (1.7 KB payload, the size of an issue hook), spread
  over 50 incidents, so most calls coalesce into an existing pending job as they would in production;
- claim + complete cycles/s over a pre-filled queue of distinct incidents.

Each figure runs for ``--seconds`` (default 1) so the whole run stays within a few seconds.

    .venv/bin/python bench/bench_store.py [--seconds 1.0] [--dir /path/on/target/disk]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.store import Durability, SQLiteStore

T0 = datetime(2026, 11, 28, tzinfo=UTC)
PAYLOAD = b"x" * 1714
INCIDENTS = 50
PREFILL = 4000


def bench_record(path: Path, durability: Durability, seconds: float) -> float:
    with SQLiteStore(path, durability=durability) as store:
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(50):
                store.record_delivery(
                    f"{durability}-{n}", f"42#{n % INCIDENTS}", "Issue Hook", T0 + timedelta(microseconds=n), PAYLOAD
                )
                n += 1
        return n / (time.perf_counter() - start)


def bench_claim_complete(path: Path, durability: Durability, seconds: float) -> float:
    with SQLiteStore(path, durability="normal") as filler:
        for i in range(PREFILL):
            filler.enqueue(f"7#{durability}-{i}", T0, "bench")
    with SQLiteStore(path, durability=durability) as store:
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        lease = timedelta(minutes=5)
        while time.perf_counter() < deadline:
            job = store.claim("bench", T0, lease)
            if job is None:
                break
            store.complete(job.id, "bench")
            n += 1
        return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each measurement")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the database (default: temp)")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for durability in ("normal", "full"):
            path = Path(tmp) / f"bench-{durability}.sqlite3"
            record = bench_record(path, durability, args.seconds)
            cycle = bench_claim_complete(path, durability, args.seconds)
            rows.append((durability, record, cycle))
        where = tmp
    print(f"SQLite {sqlite3.sqlite_version}, WAL, one thread, database under {Path(where).parent}")
    print(f"{'durability':<12}{'record_delivery/s':>20}{'claim+complete/s':>20}")
    for durability, record, cycle in rows:
        print(f"{durability:<12}{record:>20,.0f}{cycle:>20,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
