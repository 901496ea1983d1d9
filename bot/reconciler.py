"""Converge one incident in GitLab: observe, plan, diff, apply, repeat until nothing is left.

A webhook only says "look at incident X again"; this is what looking again means. Running it twice
changes nothing the second time, and because everything the bot made is found again in GitLab, a
crash at any point is repaired by the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from bot.clock import Clock, utcnow
from bot.config import Config
from bot.core import bodies, cadence, records
from bot.core.access import refusal
from bot.core.actions import Action, PostNote, UpsertChecklist
from bot.core.converge import DryRun, converge
from bot.core.diff import wants_review
from bot.core.model import Desired, IncidentRef, Observed
from bot.core.outbound import CommandSpec, OutboundFacts
from bot.core.policy import plan_observed
from bot.core.scope import BOT_CHILD, is_bot_child
from bot.gitlab import targets
from bot.gitlab.apply import GitLabApplier, WriteGuard
from bot.gitlab.callpolicy import carry_priority
from bot.gitlab.errors import CannotAct, GitLabAuthError, GitLabCallError
from bot.gitlab.observe import find_orphans, observe
from bot.gitlab.ports import GitLab, IncidentGitLab
from bot.gitlab.remit import OutsideRemit, Remit
from bot.gitlab.timeline import GraphQL, TimelineMirror
from bot.text.markers import StateKey
from bot.text.plain import as_read

_T = TypeVar("_T")
log = logging.getLogger(__name__)


class CallPool(ThreadPoolExecutor):
    """The reconciler's threads for concurrent GitLab calls: each task runs at the priority of the job that
    submitted it, so the API budget serves the most urgent job's calls first (``bot.gitlab.callpolicy``)."""

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        return super().submit(carry_priority(fn), *args, **kwargs)


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconcile did, and when the incident next needs one without any webhook (``requeue_at``:
    a reminder window ends, a snooze runs out; None when nothing is timed). The worker keeps the incident's
    job in the queue until then."""

    ref: IncidentRef
    desired: Desired
    observed: Observed
    actions: list[Action] = field(default_factory=list)
    seconds: float = 0.0
    requeue_at: datetime | None = None
    before: Observed | None = None
    """The incident as the reconcile found it (``observed`` is as it left it), for :attr:`changes`."""

    @property
    def changes(self) -> list[str]:
        """Every write this reconcile made, as plain text, one line each, in order: what its comments said
        (status log entries, command replies, reminders, final comms), what changed in the checklist, and the
        other writes (children, links, assignments, labels). The job's log line says the same."""
        return what_changed(self.actions, self.before or self.observed)

    @property
    def reminded(self) -> list[str]:
        """The engagements this reconcile posted a status-update reminder for (their policy ids)."""
        return [
            key.split(":", 2)[1]
            for a in self.actions
            if isinstance(a, PostNote) and a.kind == "reminder"
            for key in a.log_keys
            if key.startswith("reminder:")
        ]


CHECKLIST_LINES_SHOWN = 6


def what_changed(actions: list[Action], before: Observed) -> list[str]:
    """One line per write of ``actions``: first what its comments said (people's words for most changes), then
    the checklist once, with the lines a reader sees change, then every other write."""
    said = [as_read(line).strip() for a in actions if isinstance(a, PostNote) for line in a.lines]
    checklist = [a for a in actions if isinstance(a, UpsertChecklist)]
    if checklist:
        said.append(_checklist_change(before.checklist.body if before.checklist else None, checklist[-1].body))
    said += [a.describe() for a in actions if not isinstance(a, PostNote | UpsertChecklist)]
    return [line for line in said if line]


def _checklist_change(old: str | None, new: str) -> str:
    if old is None:
        return "posted the engagement checklist"
    seen = [line.strip().removeprefix("• ") for line in as_read(old).splitlines() if line.strip()]
    now = [line.strip().removeprefix("• ") for line in as_read(new).splitlines() if line.strip()]
    added = [line for line in now if line not in seen]
    removed = [line for line in seen if line not in now]
    shown = added or [f"removed: {line}" for line in removed]
    if not shown:
        return "rewrote the checklist's hidden record"
    more = f"; and {len(shown) - CHECKLIST_LINES_SHOWN} more" if len(shown) > CHECKLIST_LINES_SHOWN else ""
    return "checklist: " + "; ".join(shown[:CHECKLIST_LINES_SHOWN]) + more


class Reconciler:
    """Shared by all jobs of a process: one thread pool, one user cache, one call policy."""

    def __init__(
        self,
        cfg: Config,
        renderer: bodies.Renderer,
        client: GitLab,
        *,
        bot_username: str | None = None,
        clock: Clock = utcnow,
        concurrency: int = 8,
        key: StateKey,
        remit: Remit | None = None,
        commands: tuple[CommandSpec, ...] = (),
    ) -> None:
        self.cfg = cfg
        # The enabled integrations' commands: judged on every reconcile, the worker's or a one-off one, so that
        # no path answers one with "unknown command" (and so uses it up).
        self.commands = commands
        self.renderer = renderer
        self.client = client
        self.bot = bot_username or cfg.bot.username
        self.clock = clock
        self.key = key
        self.remit = remit or Remit.for_config(cfg, self.bot)
        self.pool: Executor = CallPool(max_workers=concurrency, thread_name_prefix="gitlab")

    def _observe(
        self,
        client: IncidentGitLab,
        ref: IncidentRef,
        outbound: OutboundFacts | None = None,
    ) -> tuple[Desired, Observed]:
        observed = observe(client, ref, self.cfg, self.bot, self.pool, key=self.key)
        if is_bot_child(observed.incident, self.bot):  # whatever labels it carries: read, never written
            raise OutsideRemit(ref.project, BOT_CHILD, f"{ref} is a child the bot opened, never an incident")
        outbound = outbound or OutboundFacts()
        unlisted = tuple(c for c in self.commands if outbound.command(c.name) is None)
        if unlisted:
            outbound = replace(outbound, commands=outbound.commands + unlisted)
        if outbound:
            observed = replace(observed, outbound=outbound)
        desired = plan_observed(observed, self.cfg, self.clock())
        if wants_review(desired):  # the communications review measures from the incident's label events
            observed = replace(observed, label_changes=tuple(client.label_events(ref)))
        # Users that new children or the incident will be assigned to, looked up alongside the orphan
        # search rather than one by one in front of each write.
        missing = [c.assignee.assignee for c in desired.children if c.channel not in observed.children]
        names = {n for n in [*missing, desired.assign_incident_to, desired.handoff_assign] if n}
        lookups = [self.pool.submit(client.user_id, name) for name in sorted(names)]
        # A missing child of a channel with a team project: may the bot act there (remit, Reporter)? Then the
        # orphan search (there too), then the team's template for a child still missing. Nothing when none is.
        observed = targets.reach(client, self.remit, observed, desired)
        observed = find_orphans(client, observed, desired, self.cfg, self.bot)
        observed = targets.read_templates(client, observed, desired, self.cfg, self.bot)
        for lookup in lookups:
            lookup.result()
        return desired, observed

    def reconcile(
        self,
        ref: IncidentRef,
        *,
        event_uuid: str | None = None,
        guard: WriteGuard | None = None,
        outbound: OutboundFacts | None = None,
    ) -> ReconcileReport:
        """Converge the incident. Raises ``OutsideRemit`` (before reading or writing anything of the
        incident) when its project is outside the bot's remit, or (before writing anything) when the issue is
        one of the bot's own children; ``WriteRefused`` when ``guard`` stops a write. ``outbound``: what the
        outbound integrations' outboxes say (targets that refused, for the log; engagements carried out, ticked
        in the checklist; the incident channel created, recorded as the incident's; their rows, lines and
        commands)."""
        start = time.perf_counter()
        client = self.client.for_incident(ref.key, event_uuid)
        self.remit.require(client, ref.project)
        desired, observed = self._observe(client, ref, outbound)
        applier = GitLabApplier(client, self.pool, guard, self.bot)
        mirror = self._mirror(client, desired)
        try:
            final, actions = converge(desired, observed, self.cfg, self.renderer, applier, before_checklist=mirror)
            if mirror is not None and mirror.digest is None:  # the checklist was not written: did a fact change?
                more, done = converge(*mirror(desired, final), self.cfg, self.renderer, applier)
                final, actions = more, actions + done
        except GitLabCallError as exc:
            raise self._explained(client, observed, exc, guard) from exc
        seconds = time.perf_counter() - start
        return ReconcileReport(ref, desired, final, actions, seconds, cadence.next_attention(desired), before=observed)

    def _explained(
        self, client: IncidentGitLab, observed: Observed, exc: GitLabCallError, guard: WriteGuard | None
    ) -> GitLabCallError:
        """``exc``, or :class:`CannotAct` when the bot's role explains why GitLab refused a write on the incident
        it read: then the bot says so on the incident, once per cause (a signed log key), before the job ends
        as a dead letter with the same reason. Not a word when the refusal is anything else."""
        if exc.transient or isinstance(exc, GitLabAuthError) or exc.status != 403:
            return exc
        incident = observed.incident
        project = incident.project_path or incident.ref.project
        try:
            level = self.remit.level_now(client, incident.ref.project)
        except GitLabCallError:
            return exc
        said = None if level is None else refusal(exc.step, exc.status, level=level, project=project, bot=self.bot)
        if said is None:
            return exc
        if said.key in observed.logged:
            return CannotAct(exc, said.reason, "said on the incident before")
        body = f"{said.body()}\n{records.log_marker(observed.key, incident, [said.key])}"
        try:
            if guard is not None:
                guard.before_write()
            client.create_note(incident.ref, body)
        except GitLabCallError as failed:
            log.warning("%s: cannot say on the incident that %s: %s", incident.ref, said.reason, failed)
            return CannotAct(exc, said.reason, f"could not say so on the incident: {failed.status or failed}")
        return CannotAct(exc, said.reason, "said on the incident")

    def _mirror(self, client: IncidentGitLab, desired: Desired) -> TimelineMirror | None:
        """The step that keeps the incident's GitLab timeline, or None when it is off, the issue is not a GitLab
        incident, or the client speaks no GraphQL."""
        if not desired.in_scope or not isinstance(client, GraphQL):
            return None
        return TimelineMirror(client, self.cfg, self.bot, self.key, desired.now or self.clock())

    def dry_run(self, ref: IncidentRef) -> ReconcileReport:
        """What ``reconcile`` would do now; reads GitLab, writes nothing. Raises ``OutsideRemit`` too."""
        start = time.perf_counter()
        client = self.client.for_incident(ref.key)
        self.remit.require(client, ref.project)
        desired, observed = self._observe(client, ref)
        _, actions = converge(desired, observed, self.cfg, self.renderer, DryRun(first_iid=10_000))
        seconds = time.perf_counter() - start
        return ReconcileReport(
            ref, desired, observed, actions, seconds, cadence.next_attention(desired), before=observed
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)
