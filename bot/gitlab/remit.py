"""The bot's two remits, with what GitLab says: where incidents live, and where children go.

GitLab lets the bot user read every public and internal project, anyone can create one and label an
issue there, and anyone who owns a project can make the bot user a member of it (GitLab adds an existing
user at once; there is nothing to accept). So membership alone never brings a project into the remit:

* an **incident** is acted on only in a project inside the incident scope the operator named (``scope:``
  or ``INCIDENT_BOT_SCOPE``), that is not a team project, and where the bot user is a member (directly or
  through a group) — :meth:`Remit.require`, run in the reconciler before any write;
* a **child** is opened or maintained in a team project (a channel's ``project:``) only where the bot
  user is a member — :meth:`Remit.team_verdict`.

The path rules are ``bot.core.scope``'s. Answers are cached per project for a short time, so a burst of
deliveries costs one look-up, and a revoked membership is noticed within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.config import Config
from bot.core.scope import NOT_IN_SCOPE, outside, team_projects
from bot.gitlab.ports import RemitReads

DEFAULT_TTL_S = 60.0
MIN_MEMBER_LEVEL = 10  # Guest; 5 ("minimal access") does not make a member
MAX_CACHED = 10_000


class OutsideRemit(Exception):
    """The issue is not an incident of the bot's: outside the incident scope, in a team project, in a project
    the bot user is no member of, or one of the bot's own children. Nothing may be written there."""

    def __init__(self, project: str, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.project = project
        # Bounded, for metrics: no_scope, not_visible, not_in_scope, team_project, not_a_member, bot_child.
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Verdict:
    kind: str | None  # None: inside the remit
    reason: str = ""
    level: int = 0  # the bot user's access level on the project, when it was read


class Remit:
    """Decides, per project, whether the bot may act there. Shared by every job of a process."""

    def __init__(
        self,
        bot_username: str,
        scope: Sequence[str] = (),
        *,
        teams: Iterable[str] = (),
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot_username
        self.scope = tuple(scope)
        self.teams = frozenset(t.lower() for t in teams)
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, Verdict]] = {}
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Lock] = {}
        self._bot_id: int | None = None

    @classmethod
    def for_config(cls, cfg: Config, bot_username: str | None = None, **kw: Any) -> Remit:
        """The remits ``cfg`` names: its incident scope and its channels' team projects."""
        return cls(bot_username or cfg.bot.username, cfg.scope, teams=team_projects(cfg), **kw)

    def require(self, client: RemitReads, project: str) -> None:
        """Return if the bot may act in ``project`` (an id or full path); else raise :class:`OutsideRemit`."""
        verdict = self.verdict(client, project)
        if verdict.kind is not None:
            raise OutsideRemit(project, verdict.kind, verdict.reason)

    def verdict(self, client: RemitReads, project: str) -> Verdict:
        """Whether an incident in ``project`` (an id or full path) is the bot's to act on."""
        return self._cached("incident:" + project.lower(), lambda: self._look_up(client, project))

    def team_verdict(self, client: RemitReads, project: str) -> Verdict:
        """Whether the bot may open and maintain children in the team project ``project`` (a channel's
        ``project:``): the bot user must be a member there. The incident scope does not apply."""
        return self._cached("team:" + project.lower(), lambda: self._membership(client, project))

    def level_now(self, client: RemitReads, project: str) -> int | None:
        """The bot user's access level on ``project`` as GitLab says it now (not cached: asked after GitLab
        refused a write, to say which role the bot has); None when the bot user does not exist."""
        bot_id = self._bot_id = self._bot_id or client.user_id(self.bot)
        return None if bot_id is None else client.access_level(project, bot_id)

    def _cached(self, key: str, look_up: Callable[[], Verdict]) -> Verdict:
        with self._lock:
            gate = self._gates.setdefault(key, threading.Lock())
        with gate:  # concurrent jobs for one project wait for one look-up
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None and cached[0] > self.clock():
                return cached[1]
            verdict = look_up()
            with self._lock:
                now = self.clock()
                if len(self._cache) >= MAX_CACHED:  # forget expired answers (many projects over time)
                    for stale in [k for k, (until, _) in self._cache.items() if until <= now]:
                        self._cache.pop(stale, None)
                        self._gates.pop(stale, None)
                self._cache[key] = (now + self.ttl_s, verdict)
            return verdict

    def _look_up(self, client: RemitReads, project: str) -> Verdict:
        if not self.scope:  # nothing is asked of GitLab: no project is in an empty scope
            kind, reason = outside(project, self.scope, self.teams) or (NOT_IN_SCOPE, "")
            return Verdict(kind, reason)
        path = client.project_path(project)  # GitLab's own path: a path given may be an old one (redirect)
        if path is None:
            return Verdict("not_visible", f"the bot user cannot see project {project}")
        refused = outside(path, self.scope, self.teams)
        if refused is not None:
            return Verdict(*refused)
        return self._membership(client, project)

    def _membership(self, client: RemitReads, project: str) -> Verdict:
        bot_id = self._bot_id = self._bot_id or client.user_id(self.bot)
        if bot_id is None:
            return Verdict("not_a_member", f"the bot user @{self.bot} does not exist on this GitLab")
        level = client.access_level(project, bot_id)
        if level < MIN_MEMBER_LEVEL:
            return Verdict("not_a_member", f"the bot user @{self.bot} is not a member of project {project}")
        return Verdict(None, level=level)
