"""Keeping a claimed job's lease while its work runs: the GitLab worker's reconcile and the Slack worker's
sending both hold a job longer than one lease may last (slow GitLab, Slack timeouts), and a lease that
lapses lets another replica take the same job at the same time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.store import Job, LeaseLost
from bot.store.base import WorkQueue

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews ``job``'s lease every ``every`` from a side thread while the ``with`` block runs; ``lost`` says
    whether another worker took the job meanwhile (the holder must then stop before its next write)."""

    def __init__(
        self,
        store: WorkQueue,
        job: Job,
        *,
        worker_id: str,
        clock: Callable[[], datetime],
        lease: timedelta,
        every: timedelta,
        name: str,
    ) -> None:
        self.store, self.job, self.worker_id, self.clock = store, job, worker_id, clock
        self.lease, self.every, self.name = lease, every, name
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job.id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.every.total_seconds()):
            try:
                self.store.extend_lease(self.job.id, self.worker_id, self.clock(), self.lease)
            except LeaseLost as exc:
                self.lost = True
                log.error("job %d (%s): lease lost while working on it: %s", self.job.id, self.name, exc)
                return
            except Exception as exc:  # the lease may still be renewed on the next beat
                log.warning("job %d: cannot renew the lease: %s", self.job.id, exc)
