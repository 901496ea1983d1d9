"""Throughput of the delivery store on SQLite and PostgreSQL, for durability "normal" and "full".

Measures, for each backend and durability:

- committed ``record_delivery`` calls/s, one thread: new deliveries (1.7 KB payload, the size of an issue
  hook), spread over 50 incidents, so most calls coalesce into an existing pending job as they would in
  production;
- claim + complete cycles/s over a pre-filled queue of distinct incidents, with one thread and with
  ``--threads`` threads sharing one store (several workers: SQLite queues them on its write lock,
  PostgreSQL lets them claim different rows at once with ``FOR UPDATE SKIP LOCKED``).

Each figure runs for ``--seconds`` (default 1). SQLite lives in a temporary directory (``--dir``);
PostgreSQL is a throw-away server started from the installed binaries (``tests/pg.py``, with fsync on, so
"full" means a flushed WAL per commit) on 127.0.0.1, or the database at ``--pg-url`` (the bench works in a
schema of its own there and drops it afterwards). Client and server share the machine's cores.

    .venv/bin/python bench/bench_store.py [--seconds 1.0] [--threads 4] [--backends sqlite,postgresql]
        [--dir /path/on/target/disk] [--pg-url postgresql://user@host/db]
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.store import DeliveryStore, Durability, open_store

T0 = datetime(2026, 11, 28, tzinfo=UTC)
PAYLOAD = b"x" * 1714
INCIDENTS = 50
PREFILL = 4000
LEASE = timedelta(minutes=5)


def bench_record(store: DeliveryStore, tag: str, seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            store.record_delivery(
                f"{tag}-{n}", f"42#{n % INCIDENTS}", "Issue Hook", T0 + timedelta(microseconds=n), PAYLOAD
            )
            n += 1
    return n / (time.perf_counter() - start)


def bench_claim_complete(store: DeliveryStore, tag: str, seconds: float, threads: int) -> float:
    """Cycles/s of ``threads`` workers claiming and completing pre-filled jobs until the time (or the queue) is up."""
    for i in range(PREFILL):
        store.enqueue(f"7#{tag}-{i}", T0, "bench")
    counts = [0] * threads
    start_line = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        name = f"bench-{index}"
        start_line.wait()
        while time.perf_counter() < stop_at[0]:
            job = store.claim(name, T0, LEASE)
            if job is None:
                break
            store.complete(job.id, name)
            counts[index] += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    start_line.wait()
    for t in workers:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


@contextlib.contextmanager
def sqlite_locations(directory: Path | None) -> Iterator[tuple[str, Callable[[str], str]]]:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        yield f"SQLite {sqlite3.sqlite_version}, WAL, database under {Path(tmp).parent}", (
            lambda name: str(Path(tmp) / f"{name}.sqlite3")
        )


@contextlib.contextmanager
def postgres_locations(url: str | None) -> Iterator[tuple[str, Callable[[str], str]]]:
    import psycopg

    from tests.pg import PostgresServer

    with contextlib.ExitStack() as stack:
        if url is None:
            server = stack.enter_context(PostgresServer.start(durable=True))
            url = server.create_database("bench")
            where = f"throw-away server on 127.0.0.1 (fsync on), data under {server.root.parent}"
        else:
            where = "the database at --pg-url"
        admin = stack.enter_context(psycopg.connect(url, autocommit=True))
        version = admin.execute("SHOW server_version").fetchone()
        schemas: list[str] = []

        def location(name: str) -> str:
            schema = f"bench_{name}_{len(schemas)}"
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
            schemas.append(schema)
            separator = "&" if "?" in url else "?"
            return f"{url}{separator}options={quote(f'-c search_path={schema}', safe='')}"

        yield f"PostgreSQL {version[0] if version else '?'}, {where}", location
        for schema in schemas:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each measurement")
    parser.add_argument("--threads", type=int, default=4, help="workers in the concurrent claim+complete figure")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the SQLite databases (default: temp)")
    parser.add_argument("--pg-url", default=None, help="an existing PostgreSQL database (default: a throw-away one)")
    args = parser.parse_args()

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    places = {"sqlite": lambda: sqlite_locations(args.dir), "postgresql": lambda: postgres_locations(args.pg_url)}
    unknown = set(backends) - set(places)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")

    rows = []
    notes = []
    for backend in backends:
        with places[backend]() as (note, location):
            notes.append(note)
            for durability in ("normal", "full"):
                mode: Durability = "normal" if durability == "normal" else "full"
                with open_store(location(f"record_{durability}"), durability=mode) as store:
                    record = bench_record(store, durability, args.seconds)
                with open_store(location(f"claim_{durability}"), durability=mode) as store:
                    single = bench_claim_complete(store, f"{durability}-1", args.seconds, 1)
                with open_store(location(f"claim{args.threads}_{durability}"), durability=mode) as store:
                    several = bench_claim_complete(store, f"{durability}-n", args.seconds, args.threads)
                rows.append((backend, durability, record, single, several))

    for note in notes:
        print(note)
    several_title = f"claim+complete/s ({args.threads} thr)"
    print(f"{'backend':<12}{'durability':<12}{'record_delivery/s':>20}{'claim+complete/s':>20}{several_title:>28}")
    for backend, durability, record, single, several in rows:
        print(f"{backend:<12}{durability:<12}{record:>20,.0f}{single:>20,.0f}{several:>28,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
