"""GitLab's per-endpoint write limits as budgets the bot spends before it calls.

GitLab limits note creation and issue creation apart from its general API limit (gitlabhq
``lib/gitlab/application_rate_limiter.rb``: ``notes_create`` per user, ``issues_create`` per project and user, each
a threshold per minute, in fixed windows aligned to Unix minutes). GitLab.com allows 60 notes and 200 issues a
minute; a self-managed instance 300 of each unless an administrator changed them. Over the limit GitLab answers a
bare 429, without ``Retry-After`` or ``RateLimit-*`` headers, so retrying at once only spends attempts in the same
refused minute.

So the bot keeps a budget per endpoint class and paces its writes to it (:meth:`Budgets.pace`, before the call),
and on a 429 without headers for a budgeted call waits for the end of GitLab's window
(:meth:`Budgets.back_off`) without spending one of the call's attempts. A wait longer than ``max_wait_s`` is not
slept in a worker thread: :class:`BudgetWait` tells the worker to put the job back until then, as not failed.

The pacing is a sliding window kept as the times of the last grants: no interval of ``interval_s`` holds more than
``per_minute - 1`` of them. That holds whatever window GitLab counts in (its minutes are fixed, ours slide), lets a
burst of new incidents post at once, and leaves one request of slack for clock and network jitter.

The budget belongs to the GitLab user, so replicas must share it: the grants live in a :class:`BudgetLedger`.
:class:`LocalLedger` keeps it in the process (SQLite deployments are one host); the PostgreSQL store keeps it in
the database, updated atomically, so all replicas draw from one budget (``bot.store.postgres``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.gitlab.errors import GitLabCallError

__all__ = [
    "BUDGETS",
    "BudgetLedger",
    "BudgetWait",
    "Budgets",
    "LimitSpec",
    "LocalLedger",
]

NOTES = "notes"
ISSUES = "issues"
BUDGETS = (NOTES, ISSUES)
"""Endpoint classes with a budget: ``notes`` (``POST /projects/:id/issues/:iid/notes``) and ``issues``
(``POST /projects/:id/issues``, one budget per project as GitLab scopes it)."""

WINDOW_MARGIN_S = 1.0
"""Waited past the end of GitLab's window after a 429: GitLab's clock and ours may differ by a little."""


class BudgetLedger(Protocol):
    """Where budgets are kept: per key, the times of its last grants and a time before which nothing is granted
    (Unix seconds), read and updated atomically."""

    def budget_take(self, key: str, now: float, cap: int, window: float, max_wait: float) -> float:
        """The wait (seconds from ``now``) before the next slot of ``key`` (at most ``cap`` grants in any
        ``window`` seconds, see :func:`window_take`); the slot is reserved only when that wait is at most
        ``max_wait``."""
        ...

    def budget_block(self, key: str, until: float) -> None:
        """Grant nothing from ``key`` before ``until`` (GitLab refused: its window is used up)."""
        ...


def window_take(
    grants: Sequence[float], not_before: float, now: float, cap: int, window: float
) -> tuple[float, list[float]]:
    """The next slot of a budget: ``(wait, the grants to keep)`` (the last ``cap``, the new one included).

    Grants are handed out in order, each at least ``window`` after the one ``cap`` places before it, so no
    interval of ``window`` seconds ever holds more than ``cap``."""
    start = max(now, not_before, grants[-1] if grants else now)
    if len(grants) >= cap:
        start = max(start, grants[-cap] + window)
    return start - now, [*grants, start][-cap:]


class LocalLedger:
    """Budgets kept in this process, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: dict[str, list[float]] = {}
        self._not_before: dict[str, float] = {}

    def budget_take(self, key: str, now: float, cap: int, window: float, max_wait: float) -> float:
        with self._lock:
            wait, grants = window_take(self._grants.get(key, []), self._not_before.get(key, 0.0), now, cap, window)
            if wait <= max_wait:
                self._grants[key] = grants
            return wait

    def budget_block(self, key: str, until: float) -> None:
        with self._lock:
            self._not_before[key] = max(self._not_before.get(key, until), until)


@dataclass(frozen=True)
class LimitSpec:
    """GitLab's threshold for one endpoint class (``per_minute``; 0: GitLab does not limit it) and how the bot
    paces to it."""

    per_minute: int
    interval_s: float = 60.0

    @property
    def cap(self) -> int:
        """Grants in any ``interval_s``: one under GitLab's threshold, for jitter between its clock and ours."""
        return max(1, self.per_minute - 1)


class BudgetWait(GitLabCallError):
    """GitLab's limit for this endpoint leaves no room for ``retry_after`` seconds, longer than a call may wait.

    Not a failure of the job: the worker puts it back until then without spending an attempt."""

    def __init__(self, step: str, incident: str, message: str, retry_after: float, *, attempts: int = 0) -> None:
        super().__init__(step, incident, None, message, True, attempts=attempts, retry_after=retry_after)


class Budgets:
    """The per-endpoint budgets of one GitLab user, for :class:`bot.gitlab.callpolicy.CallPolicy`.

    ``limits`` maps ``notes``/``issues`` to GitLab's threshold per minute (0: no budget). ``wallclock`` is Unix
    time (GitLab's windows are Unix minutes; replicas compare times through the ledger); ``sleep`` waits.
    """

    def __init__(
        self,
        limits: Mapping[str, int],
        ledger: BudgetLedger | None = None,
        *,
        max_wait_s: float = 65.0,
        wallclock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = set(limits) - set(BUDGETS)
        if unknown:
            raise ValueError(f"unknown budgets {sorted(unknown)}; expected {list(BUDGETS)}")
        self.specs = {name: LimitSpec(int(value)) for name, value in limits.items() if value > 0}
        self.ledger: BudgetLedger = ledger if ledger is not None else LocalLedger()
        self.max_wait_s = max_wait_s
        self._wallclock = wallclock
        self._sleep = sleep

    def _spec(self, budget: str) -> LimitSpec | None:
        return self.specs.get(budget.partition(":")[0])

    def pace(self, budget: str, step: str, incident: str = "") -> float:
        """Take a slot of ``budget`` (``notes``, ``issues:<project>``) and sleep until it; the seconds slept.

        Raises :class:`BudgetWait` (nothing taken) when the slot is more than ``max_wait_s`` away."""
        spec = self._spec(budget)
        if spec is None:
            return 0.0
        wait = self.ledger.budget_take(budget, self._wallclock(), spec.cap, spec.interval_s, self.max_wait_s)
        wait = wait if wait > 1e-6 else 0.0  # float rounding is no wait
        if wait > self.max_wait_s:
            raise BudgetWait(step, incident, self._saying(budget, spec, "is spent", wait), wait)
        if wait > 0:
            self._sleep(wait)
        return wait

    def back_off(self, budget: str, step: str, incident: str = "", *, refusals: int = 1) -> float:
        """GitLab refused a ``budget`` call with a bare 429: hold the budget (for every thread and replica) and
        sleep until GitLab's window ends; the seconds slept. Raises :class:`BudgetWait` when that is longer than
        ``max_wait_s``, or when GitLab has refused this call ``refusals`` > 2 times (someone else spends the
        same user's budget)."""
        spec = self._spec(budget) or LimitSpec(1)
        now = self._wallclock()
        until = (math.floor(now / spec.interval_s) + 1) * spec.interval_s + WINDOW_MARGIN_S
        self.ledger.budget_block(budget, until)
        wait = until - now
        if wait > self.max_wait_s or refusals > 2:
            said = self._saying(budget, spec, "was reached (GitLab answered 429)", wait)
            raise BudgetWait(step, incident, said, wait)
        self._sleep(wait)
        return wait

    @staticmethod
    def _saying(budget: str, spec: LimitSpec, what: str, wait: float) -> str:
        name, _, scope = budget.partition(":")
        where = f" in {scope}" if scope else ""
        return (
            f"GitLab's limit on new {name} ({spec.per_minute} a minute{where}, api.{name}_per_minute) "
            f"{what}; the job comes back in {wait:.0f} s"
        )
