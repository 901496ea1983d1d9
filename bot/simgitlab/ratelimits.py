"""GitLab's application rate limits on writes: note creation and issue creation, per user, per minute.

Modelled on gitlabhq ``lib/gitlab/application_rate_limiter.rb``:

- ``notes_create`` and ``issues_create`` each have a threshold per ``interval: 1.minute``; the threshold is an
  application setting (``notes_create_limit``, ``issues_create_limit``; self-managed default 300 each; GitLab.com
  sets 60 and 200, ``doc/user/gitlab_com`` "Rate limits"). A threshold of 0 turns the limit off.
- Windows are fixed and aligned to Unix time: ``period_key, _ = Time.now.to_i.divmod(interval)``; the counter is
  keyed by the limit, its scope and ``period_key``, so it starts again from 0 when the minute turns.
- Every request increments the counter first, refused ones included, and is refused when the count is *above*
  the threshold (``value > threshold_value``).
- Scopes: notes ``scope: current_user`` (``lib/api/notes.rb`` ``check_rate_limit! :notes_create``); issues
  ``scope: [:project, :current_user, :external_author]`` (``app/services/issues/create_service.rb``). Usernames in
  ``notes_create_limit_allowlist`` are not limited.
- The refusal is ``render_api_error!({ error: 'This endpoint has been requested too many times. Try again
  later.' }, 429)`` (``lib/api/helpers/rate_limiter.rb``) or, for issues, ``RateLimitedService::RateLimitedError``
  rescued in ``lib/api/api.rb`` with ``exception.headers``, which is ``{}``
  (``app/services/concerns/rate_limited_service.rb``): a 429 with no ``Retry-After`` and no ``RateLimit-*``
  headers. The discussions API (``lib/api/discussions.rb``: new threads and replies) does not check the limit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from .records import ApiError

THROTTLED_MESSAGE = "This endpoint has been requested too many times. Try again later."
SELF_MANAGED_DEFAULTS = {"notes_create": 300, "issues_create": 300}
"""``notes_create_limit`` and ``issues_create_limit`` as a new self-managed instance has them."""
GITLAB_COM = {"notes_create": 60, "issues_create": 200}
INTERVAL_S = 60


def throttled_error() -> ApiError:
    """GitLab's refusal body: ``{"message": {"error": "This endpoint has been requested too many times. ..."}}``."""
    return ApiError(429, {"message": {"error": THROTTLED_MESSAGE}})


class ApplicationRateLimits:
    """Per-user (and, for issues, per-project) fixed one-minute windows of ``notes_create`` and ``issues_create``.

    ``limits`` maps a limit's name to its threshold (0: off). ``refused`` counts the 429s answered per limit.
    """

    def __init__(self, now: Callable[[], datetime], limits: dict[str, int] | None = None) -> None:
        self._now = now
        self._lock = threading.Lock()
        self.limits = dict(SELF_MANAGED_DEFAULTS if limits is None else limits)
        self.allowlist: set[str] = set()
        self.refused: dict[str, int] = {}
        self._counts: dict[tuple[Any, ...], int] = {}

    def configure(self, *, allowlist: Iterable[str] | None = None, **limits: int) -> None:
        """Set thresholds (``notes_create=10``, ``issues_create=0``) and the notes allowlist, as an admin would."""
        with self._lock:
            for name, value in limits.items():
                if name not in SELF_MANAGED_DEFAULTS:
                    raise ValueError(f"unknown limit {name!r}; expected one of {sorted(SELF_MANAGED_DEFAULTS)}")
                if value < 0:
                    raise ValueError(f"{name} must not be negative")
                self.limits[name] = value
            if allowlist is not None:
                self.allowlist = {name.lower() for name in allowlist}

    def check(self, name: str, scope: tuple[Any, ...], username: str | None = None) -> None:
        """Count one request of limit ``name`` for ``scope``; raise GitLab's 429 when it is over the threshold."""
        with self._lock:
            threshold = self.limits.get(name, 0)
            if threshold == 0:
                return
            if name == "notes_create" and username is not None and username.lower() in self.allowlist:
                return
            period = int(self._now().timestamp()) // INTERVAL_S
            key = (name, *scope, period)
            self._counts = {k: v for k, v in self._counts.items() if k[-1] >= period}
            value = self._counts.get(key, 0) + 1
            self._counts[key] = value
            if value <= threshold:
                return
            self.refused[name] = self.refused.get(name, 0) + 1
        raise throttled_error()
