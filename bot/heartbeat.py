"""The reconcile worker's heartbeat: a file holding the time of its last healthy claim loop.

``serve`` runs the worker as a child process; its receivers answer ``/readyz`` and cannot see the child.
The worker pool writes the time into a private file every tick while a worker thread is alive and its last
claim reached the store; ``/readyz`` says "not ready" when that time is older than :data:`STALE_AFTER`
(a worker that crash-loops on a bad setting, or cannot claim, never writes it).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from bot.text.durations import duration

STALE_AFTER = timedelta(seconds=15)
"""A dozen of the pool's one-second ticks: long enough for a busy machine, short for a probe."""


def beat(path: Path, now: datetime, waiting: str | None = None) -> None:
    """Record ``now``, and what the worker is waiting for before it can claim (GitLab unreachable at start);
    atomic, so a reader never sees half a time."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(now.isoformat() + ("\n" + " ".join(waiting.split()) if waiting else ""))
    os.replace(tmp, path)


def _read(path: Path) -> tuple[datetime, str | None] | None:
    try:
        first, _, rest = path.read_text().partition("\n")
        return datetime.fromisoformat(first.strip()), rest.strip() or None
    except (OSError, ValueError):
        return None


def last_beat(path: Path) -> datetime | None:
    read = _read(path)
    return read[0] if read else None


def waiting_for(path: Path, now: datetime, stale_after: timedelta = STALE_AFTER) -> str | None:
    """What a live worker is waiting for before it claims jobs (e.g. GitLab), or None."""
    read = _read(path)
    if read is None or (now - read[0]) > stale_after:
        return None
    return read[1]


def stale(path: Path, now: datetime, stale_after: timedelta = STALE_AFTER) -> str | None:
    """Why the worker does not count as alive and claiming, or None when it does."""
    last = last_beat(path)
    if last is None:
        return "the reconcile worker has not started claiming jobs"
    if waiting_for(path, now, stale_after):
        return None  # alive, and saying what it waits for (``waiting_for``)
    age = now - last
    if age > stale_after:
        return f"the reconcile worker last claimed {duration(age)} ago (it is stopped, restarting or stuck)"
    return None
