"""The narrow interface every outbound integration implements (chat, paging, status pages).

In the spirit of Prow's crier reporters (a name, "should I report", "report", with what was already reported
kept per reporter) and controller-runtime's one generic controller: an :class:`Integration` is a folder under
``bot/integrations/`` that says what an incident calls for (a pure ``plan``), what its outbox tells the
GitLab side (a pure ``facts``), how its items are sent (a handler, built in one place), its settings rows,
its ``check-config --live`` checks, its commands, rows and lines. Every hook is optional: the defaults do
nothing. The one place integrations are registered is :mod:`bot.integrations.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.outbound import CommandSpec, OutboundFacts, Row, Slot

if TYPE_CHECKING:
    from bot.config import Config
    from bot.core.model import Desired, LogEntry, Observed
    from bot.settings import Settings, Variable


@dataclass(frozen=True)
class Item:
    """One thing an incident calls for at an integration (a message, a page), under a key stable across runs:
    the outbox keeps one row per (integration, key), so a replay never sends it twice."""

    key: str
    target: str
    body: Any = None


@dataclass(frozen=True)
class Check:
    """One line of ``check-config --live``: ok or not, and what was found (or what is wrong, and where)."""

    ok: bool
    text: str


@dataclass(frozen=True)
class Route:
    """An optional inbound web route (``POST /<name>``, a platform's webhooks): the path, its methods, and a
    factory of its Flask view given the settings, the policy and the receiver's store (``bot.wiring.add_routes``
    adds it to the receiver of every enabled integration)."""

    path: str
    methods: tuple[str, ...]
    view: Callable[[Settings, Config, Any], Callable[..., Any]]


class Outbound(Protocol):
    """What the GitLab worker asks of the enabled integrations around each reconcile (store reads and writes
    only, never a call to the integration's platform)."""

    def facts(self, store: Any, incident_key: str) -> OutboundFacts:
        """What the outboxes say of the incident, for the reconcile; never raises."""
        ...

    def offer(self, store: Any, incident_key: str, desired: Any, observed: Any, now: datetime) -> bool:
        """Offer what the reconciled incident calls for to the outboxes; whether a job was queued. Never raises."""
        ...


@dataclass(frozen=True)
class Integration:
    """One outbound integration. ``name`` is also its job kind and its outbox's integration value, and the
    prefix of its status-log keys; ``label`` is how people know it (shown in the checklist and the status log)."""

    name: str
    label: str
    enabled: Callable[[Config | None, Settings], bool] = lambda cfg, settings: False
    """Whether it runs at all (its token is set, its config section present)."""
    plan: Callable[[Config, Desired, Observed], Sequence[Item]] | None = None
    """Pure: the items the incident calls for, with stable keys."""
    facts: Callable[..., OutboundFacts] | None = None
    """Pure: from ``(cfg, outbox rows...)`` to its contribution to the reconcile's :class:`OutboundFacts`."""
    build: Callable[..., tuple[Outbound | None, Any]] | None = None
    """``build(settings, cfg, store, *, metrics, clock, worker_id)``: what the GitLab worker calls around a
    reconcile, and the send handler the job loop runs for this kind. Called by ``bot.wiring.outbound`` only."""
    settings_rows: Mapping[str, Variable] = field(default_factory=dict)
    """Its environment variables, by ``Settings`` attribute: listed in the README's table and ``--help``."""
    live_checks: Callable[[Config | None, Settings], Iterable[Check]] | None = None
    """``check-config --live``: asks its platform whether each configured target is reachable."""
    not_checked: Callable[[Config | None], str] | None = None
    """Why it is not checked live though the policy configures it (its token is not set); "" when it is not."""
    summary: Callable[[Config, Mapping[str, str]], Iterable[str]] | None = None
    """``check-config`` (offline): one line per configured target, on or off and why, from the policy and the
    environment; a ``ValueError`` says in one line what is wrong (a setting of the wrong shape)."""
    config_section: str = ""
    """Its key under the policy's ``integrations:`` (usually its name); read with ``parse_config``."""
    parse_config: Callable[[Any], Any] | None = None
    """Its section (None when absent) as what its hooks use; a ``ValueError`` says in one line what is wrong."""
    commands: tuple[CommandSpec, ...] = ()
    commands_for: Callable[[Config | None, Settings], tuple[CommandSpec, ...]] | None = None
    """Its commands as this policy and these settings configure them (which paging targets are on), for a
    reconcile that runs without its planner (``incident-bot reconcile``); None: ``commands``."""
    rows: Callable[[Any, Slot], Sequence[Row]] | None = None
    """Pure: its checklist rows, from its facts' ``data`` and its slot of the bot's state."""
    lines: Callable[[Any, Slot], Sequence[LogEntry]] | None = None
    """Pure: its status-log lines, likewise (each key written once)."""
    route: Route | None = None
    describe: Callable[[Item], str] | None = None
    """One item as ``plan`` lists it (plain text); with ``plan``, the item list is shown under its label."""
    demo: Callable[..., Any] | None = None
    """``demo(cfg, gitlab_url, store, clock)``: a context manager giving its side of ``incident-bot demo`` (a
    :class:`DemoSide`) against its simulator, or None when the demo's policy does not use it."""

    def commands_in(self, cfg: Config | None, settings: Settings) -> tuple[CommandSpec, ...]:
        """Its commands under this policy and these settings."""
        return self.commands_for(cfg, settings) if self.commands_for is not None else self.commands

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"integration name {self.name!r}: lowercase letters, digits and _ only")
        for command in self.commands:
            if command.integration != self.name:
                raise ValueError(f"integration {self.name}: command {command.name!r} names {command.integration}")


class DemoSide(Protocol):
    """An integration's part in the demo's story, against its simulator over HTTP with its real client."""

    intro: str
    """The transcript's line saying what runs (``... a simulated X on 127.0.0.1``)."""

    def facts(self, incident_key: str) -> OutboundFacts:
        """What its outbox says of the incident, for the demo's reconcile."""
        ...

    def step(self, incident_key: str, desired: Any, observed: Any) -> list[str]:
        """After a reconcile: offer what the incident calls for and run its job handler; a line per thing sent."""
        ...

    def moment(self) -> tuple[str, str, str, Callable[[], Any]] | None:
        """A person's action at its platform that the story shows next (``("09:25", who, what, act)``), once."""
        ...


class Planners:
    """Every enabled integration's planner as one :class:`Outbound` for the GitLab worker: facts merged (and
    each integration's commands added), offers made to each in turn."""

    def __init__(self, planners: Sequence[tuple[Integration, Outbound]]) -> None:
        self.planners = tuple(planners)

    def facts(self, store: Any, incident_key: str) -> OutboundFacts:
        out = OutboundFacts()
        for integration, planner in self.planners:
            out = out.merged(planner.facts(store, incident_key))
            out = out.merged(OutboundFacts(commands=integration.commands))
        return out

    def offer(self, store: Any, incident_key: str, desired: Any, observed: Any, now: datetime) -> bool:
        queued = False
        for _, planner in self.planners:
            queued = planner.offer(store, incident_key, desired, observed, now) or queued
        return queued
