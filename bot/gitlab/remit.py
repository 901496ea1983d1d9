"""The bot's remit: the projects it was invited into, and nothing else.

GitLab lets the bot user read every public and internal project, and anyone can create one and label
an issue there. The bot acts only on incidents in projects where its user is a member (directly or
through a group), and, when the configuration names groups or projects (``scope:``), only inside
those. The check runs in the reconciler before any write; its answer is cached per project for a
short time, so a burst of deliveries costs one look-up, and a revoked membership is noticed within
that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.gitlab.ports import RemitReads

DEFAULT_TTL_S = 60.0
MIN_MEMBER_LEVEL = 10  # Guest; 5 ("minimal access") does not make a member
MAX_CACHED = 10_000


class OutsideRemit(Exception):
    """The incident is in a project the bot was not invited into; nothing may be written there."""

    def __init__(self, project: str, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.project = project
        self.kind = kind  # bounded, for metrics: not_visible, not_in_scope, not_a_member
        self.reason = reason


@dataclass(frozen=True)
class Verdict:
    kind: str | None  # None: inside the remit
    reason: str = ""
    level: int = 0  # the bot user's access level on the project, when it was read


def in_scope(path: str, scope: Sequence[str]) -> bool:
    """Whether the project ``path`` is one of ``scope`` or inside one of its groups (paths compare
    case-insensitively, as on GitLab)."""
    lowered = path.lower()
    return any(lowered == s.lower() or lowered.startswith(s.lower() + "/") for s in scope)


class Remit:
    """Decides, per project, whether the bot may act there. Shared by every job of a process."""

    def __init__(
        self,
        bot_username: str,
        scope: Sequence[str] = (),
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot_username
        self.scope = tuple(scope)
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, Verdict]] = {}
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Lock] = {}
        self._bot_id: int | None = None

    def require(self, client: RemitReads, project: str) -> None:
        """Return if the bot may act in ``project`` (an id or full path); else raise :class:`OutsideRemit`."""
        verdict = self.verdict(client, project)
        if verdict.kind is not None:
            raise OutsideRemit(project, verdict.kind, verdict.reason)

    def verdict(self, client: RemitReads, project: str) -> Verdict:
        key = project.lower()
        with self._lock:
            gate = self._gates.setdefault(key, threading.Lock())
        with gate:  # concurrent jobs for one project wait for one look-up
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None and cached[0] > self.clock():
                return cached[1]
            verdict = self._look_up(client, project)
            with self._lock:
                now = self.clock()
                if len(self._cache) >= MAX_CACHED:  # forget expired answers (many projects over time)
                    for stale in [k for k, (until, _) in self._cache.items() if until <= now]:
                        self._cache.pop(stale, None)
                        self._gates.pop(stale, None)
                self._cache[key] = (now + self.ttl_s, verdict)
            return verdict

    def _look_up(self, client: RemitReads, project: str) -> Verdict:
        if self.scope:
            path = client.project_path(project)  # GitLab's own path: a path given may be an old one (redirect)
            if path is None:
                return Verdict("not_visible", f"the bot user cannot see project {project}")
            if not in_scope(path, self.scope):
                scope = ", ".join(self.scope)
                return Verdict("not_in_scope", f"project {path} is not in the configured scope ({scope})")
        bot_id = self._bot_id = self._bot_id or client.user_id(self.bot)
        if bot_id is None:
            return Verdict("not_a_member", f"the bot user @{self.bot} does not exist on this GitLab")
        level = client.access_level(project, bot_id)
        if level < MIN_MEMBER_LEVEL:
            return Verdict("not_a_member", f"the bot user @{self.bot} is not a member of project {project}")
        return Verdict(None, level=level)
