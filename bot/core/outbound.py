"""What the core knows of the outbound integrations: generic facts, never an integration's name.

An integration (``bot/integrations/<name>/``) reads its outbox and hands the reconcile an :class:`OutboundFacts`:
targets that refused the bot's messages (with the integration's label as data), engagements it carried out, the
incident channel it created, and its :class:`View` (its own facts, with pure functions that turn them and its
slot of the bot's signed state into checklist rows and status-log lines), and the commands it adds. The core
renders them; it imports no integration. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.core.model import LogEntry

Slot = Mapping[str, Any]
"""An integration's part of the bot's signed state (``BotState.slots[name]``): JSON values only."""


@dataclass(frozen=True)
class Engaged:
    """The bot engaged someone itself: its message went to ``target`` (as configured) at ``at``, through the
    integration whose human name is ``label``."""

    at: datetime
    target: str
    label: str = ""


@dataclass(frozen=True)
class Refused:
    """An outbound target refused the bot's messages for this incident, and why (the integration's words)."""

    integration: str
    label: str
    target: str
    reason: str

    @property
    def key(self) -> str:
        """The status-log key: once per integration and target."""
        return f"{self.integration}:{self.target}"


@dataclass(frozen=True)
class CreatedChannel:
    """The incident response channel the bot created (``#inc-12``), its id, when, and through which integration."""

    integration: str
    label: str
    name: str
    id: str
    at: datetime


@dataclass(frozen=True)
class Published:
    """A public post an integration made for the incident (an external communication): its stable ``key``,
    when the platform acknowledged it, and what it was in plain words (``draft 4c0eb44f created ...``)."""

    integration: str
    label: str
    key: str
    at: datetime
    what: str


@dataclass(frozen=True)
class Row:
    """One checklist row an integration shows; ``text`` is already safe Markdown."""

    key: str
    text: str


@dataclass(frozen=True)
class Draft:
    """One channel's draft as the sign-off reads it now: its digest and text (None: no draft) and whether that
    exact digest is approved."""

    digest: str | None
    text: str | None
    approved: bool


@dataclass(frozen=True)
class Context:
    """What the core knows of the incident when a command is judged: the policy, the incident's labels, each
    role's holder (role id -> username), each signed-off channel's draft (by channel label), whether the
    incident is at its last phase (all clear), and the incident's instance, project and iid."""

    cfg: Any = None
    labels: frozenset[str] = frozenset()
    holders: Mapping[str, str | None] = field(default_factory=dict)
    drafts: Mapping[str, Draft] = field(default_factory=dict)
    all_clear: bool = False
    instance: str = ""
    project: str = ""
    iid: int = 0


@dataclass(frozen=True)
class Said:
    """A command addressed to an integration, as it judges it: its words after the command's name, who wrote
    it and when (GitLab's time; None when GitLab did not say), and the incident as the core knows it."""

    args: tuple[str, ...]
    author: str
    at: datetime | None
    context: Context = field(default_factory=Context)
    note: int = 0
    """The command note's id: stable and unique on the incident (a request's generation, for instance)."""


@dataclass(frozen=True)
class Judged:
    """An integration's judgement of a command: the reply (plain text, escaped when rendered), and its slot
    of the bot's state afterwards (None: unchanged)."""

    ok: bool
    reply: str
    slot: Slot | None = None


@dataclass(frozen=True)
class CommandSpec:
    """A command an integration adds (``page TARGET [reason]``). Same permission as hand-offs; ``judge`` is pure
    and gets the integration's slot as the earlier commands of this run left it."""

    integration: str
    name: str
    usage: str
    help: str
    judge: Callable[[Said, Slot], Judged]


@dataclass(frozen=True)
class Happened:
    """One thing an integration did or saw for the incident (a page sent, its acknowledgement), as one timeline
    event: ``key`` stable across runs, ``text`` already safe Markdown."""

    key: str
    at: datetime
    text: str


@dataclass(frozen=True)
class Span:
    """A duration an integration measured for the review (paged → acknowledged): ``end_at`` None when it has not
    ended, ``note`` saying why."""

    name: str
    start: str
    start_at: datetime
    end: str
    end_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class View:
    """One integration's own facts (``data``, from its outbox) and the pure functions that show them, with its
    slot of the bot's state, as checklist rows (under a heading with its ``label``) and status-log lines."""

    integration: str
    label: str
    data: Any = None
    rows: Callable[[Any, Slot], Sequence[Row]] | None = None
    lines: Callable[[Any, Slot], Sequence[LogEntry]] | None = None


@dataclass(frozen=True)
class OutboundFacts:
    """Everything the outbound integrations tell one reconcile. Empty without any integration."""

    refused: tuple[Refused, ...] = ()
    engaged: Mapping[str, Engaged] = field(default_factory=dict)  # engagement id -> when and where
    channel: CreatedChannel | None = None
    views: tuple[View, ...] = ()
    commands: tuple[CommandSpec, ...] = ()
    published: tuple[Published, ...] = ()
    happened: tuple[Happened, ...] = ()
    spans: tuple[Span, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.refused or self.engaged or self.channel or self.views or self.commands or self.published
                    or self.happened or self.spans)

    def merged(self, other: OutboundFacts) -> OutboundFacts:
        """Both integrations' facts; an engagement carried out by both keeps its earlier one, a command named by
        both the first one."""
        engaged = dict(self.engaged)
        for eid, e in other.engaged.items():
            if eid not in engaged or e.at < engaged[eid].at:
                engaged[eid] = e
        return OutboundFacts(
            refused=self.refused + other.refused,
            engaged=engaged,
            channel=self.channel or other.channel,
            views=self.views + other.views,
            # One command per name, the first given winning: an integration's planner knows its configured command
            # (which paging targets are on), the registry's stands in where no planner runs.
            commands=self.commands + tuple(c for c in other.commands if self.command(c.name) is None),
            published=self.published + other.published,
            happened=self.happened + other.happened,
            spans=self.spans + other.spans,
        )

    def command(self, name: str) -> CommandSpec | None:
        return next((c for c in self.commands if c.name == name), None)

    def rows(self, slots: Mapping[str, Slot]) -> list[tuple[str, list[Row]]]:
        """(label, rows) of each integration that shows any, in registration order."""
        out = []
        for v in self.views:
            rows = list(v.rows(v.data, slots.get(v.integration, {}))) if v.rows else []
            if rows:
                out.append((v.label, rows))
        return out

    def lines(self, slots: Mapping[str, Slot]) -> list[LogEntry]:
        """Every integration's status-log lines; each key is made once-only by the status log."""
        return [e for v in self.views if v.lines for e in v.lines(v.data, slots.get(v.integration, {}))]
