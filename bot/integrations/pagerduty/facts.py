"""What PagerDuty's outbox says of one incident, for the GitLab side: the pages sent, acknowledged and
resolved, as checklist rows, status-log lines, timeline events and review spans. Pure.

Outbox keys: a trigger is the plan's item key (``<project id>/<iid>/<target>/<generation>``); its resolve is
that key with ``|resolve``; an acknowledgement or a resolve seen in PagerDuty (a webhook) with ``|acknowledged``
or ``|resolved``, its text ``{"by": ..., "at": ...}``. Every row of one page has the page's dedup key as
``remote`` once sent or seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.core.model import LogEntry
from bot.core.outbound import Happened, OutboundFacts, Row, Slot, Span, View
from bot.integrations.pagerduty.plan import Recorded, parse_item_key
from bot.text.escape import escape_inline

if TYPE_CHECKING:
    from bot.store.base import OutboxItem

NAME, LABEL = "pagerduty", "PagerDuty"
RESOLVE, ACKNOWLEDGED, RESOLVED = "resolve", "acknowledged", "resolved"
"""The suffixes (after ``|``) of a page's other rows."""


def split(key: str) -> tuple[str, str]:
    """``(page key, suffix)``; the suffix is "" for the trigger."""
    base, _, suffix = key.partition("|")
    return base, suffix


def recorded(items: Iterable[OutboxItem]) -> dict[str, Recorded]:
    """Page key -> what the outbox knows of it, as the plan reads it."""
    out: dict[str, Recorded] = {}
    for item in items:
        base, suffix = split(item.key)
        if suffix == "" and item.state == "trying":
            out.setdefault(base, "trying")
        elif suffix == "" and item.state == "sent":
            if out.get(base) != "resolved":
                out[base] = "triggered"
        elif suffix == RESOLVE and item.state == "sent":
            out[base] = "resolved"
    return out


@dataclass(frozen=True)
class Paged:
    """One page of the incident as its outbox tells it."""

    key: str
    target: str
    generation: int
    paged_at: datetime | None = None
    reason: str = ""
    refused: str = ""
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None


@dataclass(frozen=True)
class Pages:
    """PagerDuty's view data: the targets (id -> name, on or off) and the incident's pages."""

    names: Mapping[str, str]
    on: frozenset[str]
    pages: tuple[Paged, ...]


def _seen(item: OutboxItem) -> tuple[datetime | None, str | None]:
    try:
        data = json.loads(item.text)
        at = datetime.fromisoformat(data["at"])
        by = data.get("by")
        return at, by if isinstance(by, str) else None
    except (ValueError, KeyError, TypeError):
        return item.updated_at, None


def pages_of(items: Iterable[OutboxItem]) -> tuple[Paged, ...]:
    """Every page of the outbox, in the order first offered."""
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        base, suffix = split(item.key)
        parsed = parse_item_key(base)
        if parsed is None:
            continue
        page = found.setdefault(base, {"key": base, "target": parsed[2], "generation": parsed[3]})
        if suffix == "" and item.state == "sent":
            page["paged_at"] = item.updated_at
            page["reason"] = _reason(item.text)
        elif suffix == "" and item.state == "refused":
            page["refused"] = item.reason or "refused"
        elif suffix == RESOLVE and item.state == "sent":
            page["resolved_at"] = item.updated_at
        elif suffix == ACKNOWLEDGED:
            page["acknowledged_at"], page["acknowledged_by"] = _seen(item)
        elif suffix == RESOLVED:
            page["closed_at"], page["closed_by"] = _seen(item)
    return tuple(Paged(**p) for p in found.values())


def _reason(text: str) -> str:
    try:
        reason = json.loads(text).get("reason", "")
    except (ValueError, AttributeError):
        return ""
    return reason if isinstance(reason, str) else ""


def paging_facts(names: Mapping[str, str], on: Iterable[str], items: Iterable[OutboxItem],
                 commands: Sequence[Any] = ()) -> OutboundFacts:
    """Pure: the outbox's facts for the GitLab side."""
    data = Pages(dict(names), frozenset(on), pages_of(items))
    return OutboundFacts(
        views=(View(NAME, LABEL, data, rows, lines),),
        commands=tuple(commands),
        happened=tuple(happened(data)),
        spans=tuple(spans(data)),
    )


def _hm(at: datetime) -> str:
    return at.strftime("%H:%M")


def _name(data: Pages, target: str) -> str:
    return escape_inline(data.names.get(target, target))


def rows(data: Pages, slot: Slot) -> list[Row]:
    """A row per paging target: off, not paged, or each page's state (paged, acknowledged by whom, resolved)."""
    out = []
    for target in data.names:
        pages = [p for p in data.pages if p.target == target]
        if target not in data.on and not pages:
            out.append(Row(f"{NAME}:{target}", f"{_name(data, target)}: off (no routing key)"))
            continue
        if not pages:
            out.append(Row(f"{NAME}:{target}", f"{_name(data, target)}: not paged"))
            continue
        states = []
        for p in pages:
            if p.refused:
                states.append(f"refused by PagerDuty ({escape_inline(p.refused, 200)})")
                continue
            if p.paged_at is None:
                states.append("paging…")
                continue
            text = f"paged {_hm(p.paged_at)}"
            if p.acknowledged_at is not None:
                text += f", acknowledged {_hm(p.acknowledged_at)}"
                if p.acknowledged_by:
                    text += f" by {escape_inline(p.acknowledged_by, 100)}"
            if p.closed_at is not None:
                text += f", resolved in PagerDuty {_hm(p.closed_at)}"
            elif p.resolved_at is not None:
                text += f", resolved {_hm(p.resolved_at)}"
            states.append(text)
        out.append(Row(f"{NAME}:{target}", f"{_name(data, target)}: " + "; ".join(states)))
    return out


def lines(data: Pages, slot: Slot) -> list[LogEntry]:
    """A line per page and per resolve, and the acknowledgement once."""
    out = []
    for p in data.pages:
        name = _name(data, p.target)
        if p.paged_at is not None:
            why = f" ({escape_inline(p.reason, 300)})" if p.reason else ""
            out.append(LogEntry(f"{NAME}:paged:{p.key}", f"Paged {name} through PagerDuty{why}"))
        if p.refused:
            out.append(LogEntry(f"{NAME}:refused:{p.key}",
                                f"PagerDuty refused the page of {name}: {escape_inline(p.refused, 300)}"))
        if p.acknowledged_at is not None:
            by = f" by {escape_inline(p.acknowledged_by, 100)}" if p.acknowledged_by else ""
            said = f"The page of {name} was acknowledged in PagerDuty{by}"
            out.append(LogEntry(f"{NAME}:acknowledged:{p.key}", said))
        if p.resolved_at is not None:
            out.append(LogEntry(f"{NAME}:resolved:{p.key}", f"Resolved the page of {name} in PagerDuty"))
    return out


def happened(data: Pages) -> list[Happened]:
    """Pages and acknowledgements, one timeline event each."""
    out = []
    for p in data.pages:
        name = _name(data, p.target)
        if p.paged_at is not None:
            out.append(Happened(f"{NAME}:paged:{p.key}", p.paged_at, f"Paged {name}"))
        if p.acknowledged_at is not None:
            by = f" by {escape_inline(p.acknowledged_by, 100)}" if p.acknowledged_by else ""
            out.append(Happened(f"{NAME}:acknowledged:{p.key}", p.acknowledged_at, f"{name} acknowledged{by}"))
    return out


def spans(data: Pages) -> list[Span]:
    """Per paging target, its first page: paged -> acknowledged (null with the reason when not acknowledged)."""
    out = []
    for target in data.names:
        paged = [p for p in data.pages if p.target == target and p.paged_at is not None]
        if not paged:
            continue
        first = min(paged, key=lambda p: p.paged_at or datetime.max)
        assert first.paged_at is not None
        name = data.names.get(target, target)
        note = "" if first.acknowledged_at is not None else "not acknowledged in PagerDuty"
        out.append(Span(f"pages:{target}:paged_to_acknowledged", f"{name} paged", first.paged_at,
                        f"{name} acknowledged", first.acknowledged_at, note))
    return out
