"""One retry/rate-limit policy around every GitLab API call.

Why it exists: python-gitlab's own loops (see :mod:`bot.gitlab.connect`) retry without a cap on time,
crash on HTTP-date ``Retry-After``, leak raw ``requests`` exceptions and repeat POSTs, which during an
incident means stuck workers and duplicate issues or notes. Here every call gets: a bounded number of
attempts, a bounded total time, full-jitter backoff, server hints honoured, creates never repeated
when their outcome is unknown, a process-wide client-side rate limit, counters, and one exception
family (:class:`bot.gitlab.errors.GitLabCallError`).

``fn`` should perform exactly one GitLab request (one ``create``/``get``/``save``/``list(get_all=...)``
call on a client from :func:`bot.gitlab.connect.make_gitlab`); lazy iterators that fetch later
pages after ``call`` returns are outside the policy.
"""

from __future__ import annotations

import email.utils
import heapq
import itertools
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC
from typing import Literal, TypeVar

import gitlab.exceptions
import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from bot.core.urgency import Priority, clamp
from bot.gitlab.budget import Budgets
from bot.gitlab.connect import connection_reason
from bot.gitlab.errors import (
    GitLabAuthError,
    GitLabCallError,
    OutcomeUnknown,
    compact_message,
)

__all__ = [
    "CallOutcome",
    "CallPolicy",
    "CallStats",
    "StatsSnapshot",
    "TokenBucket",
    "UrgentFirst",
    "WriteKind",
    "caller_priority",
    "carry_priority",
    "classify",
    "parse_retry_after",
    "working_for",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteKind = Literal["read", "idempotent", "create"]
_WRITE_KINDS = ("read", "idempotent", "create")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504, *range(520, 531)})
TOKEN_REJECTED = "Unauthorized: GITLAB_TOKEN was rejected (is it expired, revoked or missing the api scope?)"


# --------------------------------------------------------------------------- server wait hints


def parse_retry_after(value: str | None, *, now_wall: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value in either form, or ``None`` if unusable.

    RFC 9110 allows delta-seconds or an HTTP-date; python-gitlab only handles the first and raises
    ``ValueError`` on the second. A date in the past means "now" (0 s).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_wall)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def server_wait(headers: Mapping[str, str] | None, status: int | None, *, now_wall: float) -> float | None:
    """The wait GitLab asked for: ``Retry-After`` on any status, the reset time only on a 429.

    GitLab sends ``RateLimit-Reset`` (Unix time) on every response as information about the current
    window; python-gitlab also applies it to 5xx, which would make a worker sit out the rest of the
    minute after a plain 502. Here it only counts when GitLab actually throttled us.
    """
    if not headers:
        return None
    wait = parse_retry_after(_header(headers, "Retry-After"), now_wall=now_wall)
    if wait is not None or status != 429:
        return wait
    reset = _header(headers, "RateLimit-Reset")
    if reset is not None:
        try:
            return max(0.0, float(reset.strip()) - now_wall)
        except ValueError:
            pass
    return parse_retry_after(_header(headers, "RateLimit-ResetTime"), now_wall=now_wall)


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class CallOutcome:
    """How one failed attempt is judged.

    ``transient``: trying again later can help. ``retry``: this policy may repeat it now (false for
    transient failures of creates whose request may have been committed: ``unknown``).
    """

    status: int | None
    label: str
    message: str
    transient: bool
    retry: bool
    unknown: bool = False
    auth: bool = False
    headers: Mapping[str, str] | None = None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    for item in _chain(exc):
        headers = getattr(item, "response_headers", None)
        if headers is not None:
            return headers
    return None


def _reason_of(exc: BaseException) -> str:
    for item in _chain(exc):
        reason = getattr(item, "response_reason", None)
        if reason:
            return str(reason)
    return ""


def _retry_after_crash_status(exc: ValueError) -> int | None:
    """The HTTP status behind python-gitlab's ``int(headers["Retry-After"])`` crash, else ``None``.

    Only that crash (in ``gitlab/utils.py: Retry.handle_retry_on_status``, reached by clients not
    built with ``make_gitlab``) is a transient condition; any other ValueError is a bug.
    """
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return None
    code = last.tb_frame.f_code
    if not code.co_filename.replace("\\", "/").endswith("gitlab/utils.py"):
        return None
    if code.co_name != "handle_retry_on_status":
        return None
    status = last.tb_frame.f_locals.get("status_code")
    return status if isinstance(status, int) else 429


def _sent_nothing(exc: requests.RequestException) -> bool:
    """True when the failure happened while connecting, so GitLab cannot have seen the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.ConnectionError) and exc.args:
        first = exc.args[0]
        # urllib3 wraps connect-phase errors (refused, DNS, connect timeout) in MaxRetryError;
        # errors after sending (reset, aborted, bad status line) are re-raised unwrapped.
        return isinstance(first, MaxRetryError) and isinstance(first.reason, ConnectTimeoutError)
    return False


def _http_message(exc: gitlab.exceptions.GitlabError, status: int | None) -> str:
    message = compact_message(exc.error_message)
    if status is not None:
        prefix = f"{status} "
        while message.startswith(prefix):
            message = message[len(prefix) :]
    return message or "(no message)"


def classify(exc: BaseException, write: WriteKind = "read") -> CallOutcome:
    """Judge one failed attempt of a ``read``, ``idempotent`` or ``create`` request.

    Transient: 429, 500/502/503/504/520-530, 409 "Resource lock", connection errors and timeouts, and
    python-gitlab's crash on a malformed ``Retry-After``. Everything else is permanent; a 401 means
    the token is wrong. A create is only repeatable when GitLab provably did nothing with it.
    """
    create = write == "create"
    if isinstance(exc, gitlab.exceptions.GitlabAuthenticationError):
        return CallOutcome(401, "401", TOKEN_REJECTED, transient=False, retry=False, auth=True)
    if isinstance(exc, gitlab.exceptions.GitlabParsingError):
        # A 2xx with an unreadable body: on a create the object exists, on a read it is a bad proxy.
        message = f"unreadable GitLab response ({compact_message(exc.error_message)})"
        return CallOutcome(None, "unparseable", message, transient=create, retry=False, unknown=create)
    if isinstance(exc, gitlab.exceptions.GitlabError) and exc.response_code is not None:
        status = exc.response_code
        headers = _headers_of(exc)
        message = _http_message(exc, status)
        lock = status == 409 and "resource lock" in f"{_reason_of(exc)} {message}".lower()
        if status in TRANSIENT_STATUSES or lock:
            if create and status != 429:
                return CallOutcome(status, str(status), message, True, retry=False, unknown=True, headers=headers)
            return CallOutcome(status, str(status), message, True, retry=True, headers=headers)
        return CallOutcome(status, str(status), message, False, retry=False, headers=headers)
    if isinstance(exc, gitlab.exceptions.GitlabError):
        label = type(exc).__name__
        return CallOutcome(None, label, compact_message(exc.error_message) or label, False, retry=False)
    if isinstance(exc, requests.exceptions.SSLError) and "certificate verify failed" in str(exc).lower():
        return CallOutcome(None, "SSLError", f"TLS certificate rejected: {connection_reason(exc)}", False, False)
    if isinstance(
        exc,
        requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError,
    ):
        label = type(exc).__name__
        message = f"{label}: {connection_reason(exc)}"
        if create and not _sent_nothing(exc):
            return CallOutcome(None, label, message, True, retry=False, unknown=True)
        return CallOutcome(None, label, message, True, retry=True)
    crashed_on = _retry_after_crash_status(exc) if isinstance(exc, ValueError) else None
    if crashed_on is not None:
        message = f"malformed Retry-After ({compact_message(str(exc))})"
        if create and crashed_on != 429:
            return CallOutcome(crashed_on, str(crashed_on), message, True, retry=False, unknown=True)
        return CallOutcome(crashed_on, str(crashed_on), message, True, retry=True)
    label = type(exc).__name__
    return CallOutcome(None, label, f"{label}: {compact_message(str(exc))}", False, retry=False)


# --------------------------------------------------------------------------- rate limiting


class TokenBucket:
    """Client-side limiter so the bot stays under GitLab's per-user request rate.

    GitLab.com allows 2,000 authenticated requests per minute per user; every thread of the process
    shares one bucket (share the :class:`CallPolicy`, or pass the same bucket to several). Waits are
    reservations computed under a lock and slept outside it, so concurrent callers are spaced out
    instead of stampeding when the bucket refills.
    """

    def __init__(
        self,
        rate_per_minute: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._updated = clock()

    def reserve(self, max_wait: float = math.inf) -> float | None:
        """Take one token; return the wait before using it, or ``None`` (nothing taken) if > max_wait."""
        with self._lock:
            now = self._clock()
            tokens = min(self.burst, self._tokens + max(0.0, now - self._updated) * self.rate_per_s)
            self._updated = max(self._updated, now)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s
            if wait > max_wait:
                self._tokens = tokens
                return None
            self._tokens = tokens - 1.0
            return wait

    def acquire(self, max_wait: float = math.inf) -> float | None:
        """Wait for a token (sleeping with the injected sleep); ``None`` if that would exceed max_wait."""
        wait = self.reserve(max_wait)
        if wait:
            self._sleep(wait)
        return wait


# --------------------------------------------------------------------------- urgent callers first

caller_priority: ContextVar[Priority] = ContextVar("incident_bot_caller_priority", default=Priority.NORMAL)
"""The priority of the job the current caller works for (``bot.core.urgency``); the worker sets it per job
(:func:`working_for`) and :class:`UrgentFirst` admits callers by it."""


@contextmanager
def working_for(priority: int) -> Iterator[None]:
    """GitLab calls made inside (in this thread, or a task carried by :func:`carry_priority`) are admitted at
    ``priority``."""
    token = caller_priority.set(clamp(priority))
    try:
        yield
    finally:
        caller_priority.reset(token)


def carry_priority(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` run at the caller's priority in whichever thread runs it (a pool's worker thread starts with
    the default)."""
    priority = caller_priority.get()

    def run(*args: object, **kwargs: object) -> T:
        with working_for(priority):
            return fn(*args, **kwargs)

    return run


class UrgentFirst:
    """A :class:`TokenBucket` that hands its tokens to the most urgent caller waiting.

    A plain bucket reserves tokens first come, first served, and a caller sleeps off its reservation: when
    the rate is used up, a new critical incident's calls queue behind every background call already in
    flight. Here at most one caller at a time holds a reservation (so at most one token is promised ahead);
    the others wait their turn, and the next turn goes to the caller working for the most urgent job
    (:data:`caller_priority`), first come first served among equals. Same interface as the bucket."""

    def __init__(self, bucket: TokenBucket, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket = bucket
        self._clock = clock
        self._turn = threading.Condition()
        self._waiting: list[tuple[int, int]] = []  # a heap of (priority, arrival)
        self._arrivals = itertools.count()
        self._taking = False  # a caller holds the bucket: reserving, and sleeping off its reservation

    def waiting(self) -> list[int]:
        """The priorities of the callers waiting for their turn, most urgent first."""
        with self._turn:
            return [priority for priority, _ in sorted(self._waiting)]

    def acquire(self, max_wait: float = math.inf) -> float | None:
        """Wait for a token, in turn by priority; the seconds waited, or ``None`` (nothing taken) when that
        would exceed ``max_wait``."""
        start = self._clock()
        me = (int(caller_priority.get()), next(self._arrivals))
        with self._turn:
            heapq.heappush(self._waiting, me)
            try:
                while self._taking or self._waiting[0] != me:
                    left = max_wait - (self._clock() - start)
                    if left <= 0:
                        return None
                    self._turn.wait(None if left == math.inf else left)
                self._taking = True
            finally:
                self._waiting.remove(me)
                heapq.heapify(self._waiting)
                self._turn.notify_all()
        try:
            queued = self._clock() - start
            waited = self.bucket.acquire(max(0.0, max_wait - queued))
            return None if waited is None else queued + waited
        finally:
            with self._turn:
                self._taking = False
                self._turn.notify_all()


# --------------------------------------------------------------------------- counters


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of :class:`CallStats` for assertions and reports."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0
    waited_s: float = 0.0
    throttled_s: float = 0.0
    attempts_by_step: dict[str, int] = field(default_factory=dict)
    attempts_by_status: dict[str, int] = field(default_factory=dict)


class CallStats:
    """Thread-safe counters of API economy: attempts by step and status, retries, time waited.

    Status keys are ``"ok"`` for a successful attempt, the HTTP status as text (``"429"``), or the
    exception name when no response arrived (``"ConnectionError"``). ``waited_s`` is backoff and
    ``Retry-After`` sleeping; ``throttled_s`` is time spent in the client-side rate limiter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_step: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self._calls = 0
        self._retries = 0
        self._failures = 0
        self._waited = 0.0
        self._throttled = 0.0

    def record_call(self) -> None:
        with self._lock:
            self._calls += 1

    def record_attempt(self, step: str, status: str) -> None:
        with self._lock:
            self._by_step[step] += 1
            self._by_status[status] += 1

    def record_retry(self, waited: float) -> None:
        with self._lock:
            self._retries += 1
            self._waited += waited

    def record_throttle(self, waited: float) -> None:
        with self._lock:
            self._throttled += waited

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                calls=self._calls,
                attempts=sum(self._by_step.values()),
                retries=self._retries,
                failures=self._failures,
                waited_s=self._waited,
                throttled_s=self._throttled,
                attempts_by_step=dict(self._by_step),
                attempts_by_status=dict(self._by_status),
            )

    @property
    def attempts(self) -> int:
        return self.snapshot().attempts

    @property
    def retries(self) -> int:
        return self.snapshot().retries

    @property
    def waited_s(self) -> float:
        return self.snapshot().waited_s

    @property
    def attempts_by_step(self) -> dict[str, int]:
        return self.snapshot().attempts_by_step

    @property
    def attempts_by_status(self) -> dict[str, int]:
        return self.snapshot().attempts_by_status

    def reset(self) -> None:
        with self._lock:
            self._by_step.clear()
            self._by_status.clear()
            self._calls = self._retries = self._failures = 0
            self._waited = self._throttled = 0.0


# --------------------------------------------------------------------------- the policy


OnCall = Callable[[str, str, float], None]


class CallPolicy:
    """Runs GitLab calls with bounded retries, a time budget, rate limiting and one error family.

    Share one instance between all threads of a process: the limiter, the counters and the jitter
    source are thread-safe. ``clock``/``sleep`` drive all waiting (inject fakes in tests);
    ``wallclock`` (Unix seconds) is only used to turn HTTP-date and Unix-time hints into waits.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 4,
        max_wait: float = 10.0,
        call_budget_s: float = 30.0,
        rate_per_minute: float = 1800,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        wallclock: Callable[[], float] = time.time,
        base_wait: float = 0.5,
        on_call: OnCall | None = None,
        limiter: TokenBucket | UrgentFirst | None = None,
        burst: float = 1.0,
        budgets: Budgets | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_wait < 0 or call_budget_s <= 0 or base_wait < 0:
            raise ValueError("max_wait, base_wait and call_budget_s must be positive")
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.call_budget_s = call_budget_s
        self.base_wait = base_wait
        self._clock = clock
        self._sleep = sleep
        self._wallclock = wallclock
        self._rng = rng if rng is not None else random.Random()
        self._rng_lock = threading.Lock()
        self.on_call = on_call
        self.limiter = limiter or UrgentFirst(
            TokenBucket(rate_per_minute, burst=burst, clock=clock, sleep=sleep), clock=clock
        )
        self.budgets = budgets  # GitLab's per-endpoint limits (bot.gitlab.budget), for calls that name one
        self.stats = CallStats()

    def call(
        self,
        fn: Callable[[], T],
        *,
        step: str,
        incident: str = "",
        write: WriteKind = "read",
        limit: str | None = None,
    ) -> T:
        """Run ``fn`` (one GitLab request) under the policy and return its result.

        ``write`` says what repeating the request would do: ``"read"`` and ``"idempotent"`` (PUT of a
        whole body, DELETE, link creation where 409 means done) are retried on transient errors;
        ``"create"`` is retried only when GitLab provably did nothing (429, failure to connect),
        otherwise :class:`OutcomeUnknown` is raised so the caller re-reads before creating again.
        ``limit`` names the call's budget of GitLab's per-endpoint limits (``notes``, ``issues:<project>``): the
        call waits for it, and a bare 429 waits for GitLab's next window without spending an attempt.
        Raises :class:`GitLabCallError` (or a subclass) on failure.
        """
        if write not in _WRITE_KINDS:
            raise ValueError(f"write must be one of {_WRITE_KINDS}, got {write!r}")
        self.stats.record_call()
        start = self._clock()
        attempt = refusals = 0
        budgets = self.budgets if limit is not None else None
        while True:
            if budgets is not None and limit is not None:
                start += self._budget_wait(budgets.pace(limit, step, incident))
            self._throttle(step, incident, start, attempt)
            attempt += 1
            began = self._clock()
            try:
                result = fn()
            except GitLabCallError:
                raise  # already judged by a nested policy call
            except Exception as exc:
                outcome = classify(exc, write)
                self._observe(step, outcome.label, self._clock() - began)
                if budgets is not None and limit is not None and self._bare_429(outcome):
                    refusals += 1
                    start += self._budget_wait(budgets.back_off(limit, step, incident, refusals=refusals))
                    attempt -= 1  # GitLab's window was full: no attempt spent
                    continue
                wait = self._next_wait(outcome, attempt, start)
                if wait is None:
                    raise self._error(step, incident, outcome, attempt) from exc
                log.info(
                    "%s%s: %s %s, retrying in %.2f s (attempt %d/%d)",
                    f"{incident}: " if incident else "",
                    step,
                    outcome.label,
                    outcome.message,
                    wait,
                    attempt,
                    self.max_attempts,
                )
                if wait > 0:
                    self._sleep(wait)
                self.stats.record_retry(wait)
                continue
            self._observe(step, "ok", self._clock() - began)
            return result

    # -- internals -----------------------------------------------------------------------------

    def _bare_429(self, outcome: CallOutcome) -> bool:
        return outcome.status == 429 and server_wait(outcome.headers, 429, now_wall=self._wallclock()) is None

    def _budget_wait(self, waited: float) -> float:
        if waited:
            self.stats.record_throttle(waited)
        return waited

    def _remaining(self, start: float) -> float:
        return self.call_budget_s - (self._clock() - start)

    def _throttle(self, step: str, incident: str, start: float, attempt: int) -> None:
        remaining = self._remaining(start)
        waited = self.limiter.acquire(max_wait=max(0.0, remaining))
        if waited is None:
            self.stats.record_failure()
            raise GitLabCallError(
                step,
                incident,
                None,
                f"client-side rate limit would exceed the {self.call_budget_s:g} s call budget",
                True,
                attempts=attempt,
            )
        if waited:
            self.stats.record_throttle(waited)

    def _next_wait(self, outcome: CallOutcome, attempt: int, start: float) -> float | None:
        """The sleep before the next attempt, or None to give up now (checked before sleeping)."""
        if not outcome.retry or attempt >= self.max_attempts:
            return None
        hint = server_wait(outcome.headers, outcome.status, now_wall=self._wallclock())
        if hint is not None:
            wait = hint
        else:
            cap = min(self.max_wait, self.base_wait * (2 ** (attempt - 1)))
            with self._rng_lock:
                wait = self._rng.uniform(0.0, cap)
        if wait > self._remaining(start):
            return None
        return wait

    def _error(self, step: str, incident: str, outcome: CallOutcome, attempts: int) -> GitLabCallError:
        self.stats.record_failure()
        retry_after = server_wait(outcome.headers, outcome.status, now_wall=self._wallclock())
        message = outcome.message
        if outcome.retry and attempts < self.max_attempts and retry_after is not None:
            message = f"{message}; server asked to wait {retry_after:g} s, beyond the call budget"
        elif outcome.retry and attempts < self.max_attempts:
            message = f"{message}; call budget of {self.call_budget_s:g} s used up"
        if outcome.auth:
            return GitLabAuthError(step, incident, outcome.status, message, False, attempts=attempts)
        if outcome.unknown:
            message = f"{message}; it may have been applied, re-read GitLab before trying again"
            return OutcomeUnknown(step, incident, outcome.status, message, attempts=attempts, retry_after=retry_after)
        return GitLabCallError(
            step,
            incident,
            outcome.status,
            message,
            outcome.transient,
            attempts=attempts,
            retry_after=retry_after,
        )

    def _observe(self, step: str, status: str, seconds: float) -> None:
        self.stats.record_attempt(step, status)
        if self.on_call is None:
            return
        try:
            self.on_call(step, status, seconds)
        except Exception:
            log.exception("on_call hook failed for step %r", step)
