"""Status updates and cadence reminders, computed from comments and the time. Pure.

An engagement with a cadence is due ``cadence`` after its anchor: the last status update, or when
the engagement began if there has been none. Time past the anchor is cut into windows of one cadence;
window ``k >= 1`` is overdue and gets exactly one reminder, keyed by the anchor and ``k``. A sweep that
runs late therefore posts one reminder for the window it lands in (not zero, not one per missed
window), and replicas or retries that compute the same key never post it twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.model import EngagementPlan, Note

_HEADING_NOISE = re.compile(r"[#*_`>\-\s\d.)(:]+")
_ASIDE = re.compile(r"\(.*?\)")


def _normalise(text: str) -> str:
    return _HEADING_NOISE.sub(" ", _ASIDE.sub(" ", text.replace("\\", ""))).strip().lower()


def is_status_update(body: str, points: Sequence[str]) -> bool:
    """A comment that follows the six-point format: it has (nearly) every point as a line of its own."""
    lines = {_normalise(line) for line in body.splitlines() if line.strip()}
    found = sum(1 for p in points if any(line.startswith(_normalise(p)) for line in lines))
    return found >= max(1, len(points) - 1)


@dataclass(frozen=True)
class Due:
    engagement: EngagementPlan
    anchor: datetime
    window: int  # 0: not yet due; k >= 1: in the k-th overdue window
    due_at: datetime  # when the current window began (or, for window 0, when it will be due)

    @property
    def key(self) -> str:
        return f"reminder:{self.engagement.id}:{self.anchor.isoformat()}:{self.window}"


def dues(
    engagements: Sequence[EngagementPlan],
    last_update: datetime | None,
    began: dict[str, datetime],
    default_start: datetime,
    now: datetime,
) -> list[Due]:
    """Where each engagement with a cadence stands at ``now``."""
    out = []
    for e in engagements:
        if e.cadence is None:
            continue
        start = began.get(e.id, default_start)
        anchor = max(last_update, start) if last_update else start
        window = max(0, int((now - anchor) / e.cadence))
        due_at = anchor + e.cadence * max(1, window)
        out.append(Due(e, anchor, window, due_at))
    return out


def last_update(notes: Sequence[Note], points: Sequence[str], bot: str) -> Note | None:
    updates = [
        n for n in notes if not n.system and n.author.lower() != bot.lower() and is_status_update(n.body, points)
    ]
    return max(updates, key=lambda n: (n.created_at or datetime.min, n.id), default=None)


def next_due(items: Sequence[Due]) -> datetime | None:
    return min((d.anchor + d.engagement.cadence for d in items if d.engagement.cadence), default=None)


def overdue(items: Sequence[Due]) -> list[Due]:
    return [d for d in items if d.window >= 1]


def next_attention(desired: Any) -> datetime | None:
    """When the incident next needs a look without any webhook: the end of the current overdue
    window of an engagement with a cadence, or the end of a snooze. None when nothing is timed."""
    if not desired.in_scope or desired.closed or desired.all_clear:
        return None
    times = [d.anchor + d.engagement.cadence * (d.window + 1) for d in desired.dues]
    if not times:
        return None
    soonest = min(times)
    snoozed = desired.state.snoozed_until
    return max(soonest, snoozed) if snoozed else soonest
