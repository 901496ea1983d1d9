"""Status updates and cadence reminders, computed from comments and the time. Pure.

An engagement with a cadence is due ``cadence`` after its anchor: the last status update, or when
the engagement began if there has been none. Time past the anchor is cut into windows of one cadence;
window ``k >= 1`` is overdue and gets exactly one reminder, keyed by the anchor and ``k``. A sweep that
runs late therefore posts one reminder for the window it lands in (not zero, not one per missed
window), and replicas or retries that compute the same key never post it twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.model import Desired, EngagementPlan, Note

_ASIDE = re.compile(r"\(.*?\)")
_WORD = re.compile(r"[^\W_]+")
# Markup and numbering in front of a point: headings, quotes, bullets, emphasis, "1." / "(1)".
_LEAD = re.compile(r"[\s>#*_~`+\-()\[\].:\d]*")
_LIST_MARK = re.compile(r"\s*(?:[-*+]|\d{1,9}[.)])(?:\s+\[[ xX]\])?\s")
# Words that end the short name of a point: "Timeline of events" is written "Timeline:".
_STOP_WORDS = frozenset({"of", "the", "taken", "so", "far"})


def _point_names(point: str) -> tuple[list[str], list[str]]:
    """A point's words and its short name (the words before any of ``_STOP_WORDS``), asides removed."""
    words = _WORD.findall(_ASIDE.sub(" ", point).lower())
    short: list[str] = []
    for word in words:
        if word in _STOP_WORDS:
            break
        short.append(word)
    return words, short or words


def _match_point(line: str, names: Sequence[tuple[list[str], list[str]]]) -> tuple[int, bool] | None:
    """(index of the point ``line`` introduces, whether the line itself has content after it), or None.

    The point's name, full or short, must be the first words of the line once heading, list, quote and
    emphasis markup is skipped: ``### Next steps``, ``**Current risk**``, ``3. Timeline:``, ``Users impacted:``.
    """
    text = line.replace("\\", "")
    start = _LEAD.match(text).end()  # type: ignore[union-attr]
    words = list(_WORD.finditer(text, start))
    if not words or words[0].start() != start:
        return None
    lowered = [w.group().lower() for w in words]
    best: tuple[int, int] | None = None  # (words matched, point index)
    for index, (full, short) in enumerate(names):
        for key in (full, short):
            if key and lowered[: len(key)] == key and (best is None or len(key) > best[0]):
                best = (len(key), index)
                break
    if best is None:
        return None
    rest = _ASIDE.sub(" ", text[words[best[0] - 1].end() :])
    return best[1], _WORD.search(rest) is not None


def _names(points: Sequence[str]) -> list[tuple[list[str], list[str]]]:
    """Each point's full and short name; a distinctive first word (``Mitigation:``) is short enough."""
    names = [_point_names(p) for p in points]
    firsts = [full[0] for full, _ in names if full]
    return [
        (full, [full[0]] if len(full[0]) >= 5 and firsts.count(full[0]) == 1 else short) if full else (full, short)
        for full, short in names
    ]


def status_points(body: str, points: Sequence[str]) -> dict[int, bool]:
    """The points ``body`` writes, by index, each with whether it has content (on its line or below it)."""
    names = _names(points)
    found: dict[int, bool] = {}
    current: int | None = None
    for line in body.splitlines():
        if not line.strip():
            continue
        match = _match_point(line, names)
        if match is not None and match[0] not in found:
            current, has_content = match
            found[current] = has_content
            continue
        if current is not None and not found[current]:
            rest = line[m.end() :] if (m := _LIST_MARK.match(line)) else line
            found[current] = _WORD.search(rest.replace("\\", "")) is not None
    return found


def is_status_update(body: str, points: Sequence[str]) -> bool:
    """A comment in the six-point format: (nearly) every point written, and most of them with content.

    Points are recognised as people write them (``Timeline:``, ``**Current risk**``, ``### Next steps``);
    content is text after the point on its line or on the lines below it, so six empty headings are not
    an update. Who wrote it is checked by the GitLab adapter (``bot.gitlab.observe``).
    """
    found = status_points(body, points)
    written = len(found) >= max(1, len(points) - 1)
    return written and sum(found.values()) * 2 > len(points)


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
    *,
    changed: Mapping[str, datetime] | None = None,
) -> list[Due]:
    """Where each engagement with a cadence stands at ``now``.

    ``changed``: when a ``cadence`` command last changed an engagement's interval (the command note's
    time). The anchor moves there too, so a new interval is counted from the change, never backwards
    over time that passed under the old one (a shorter cadence does not post a reminder at once)."""
    out = []
    for e in engagements:
        if e.cadence is None:
            continue
        start = began.get(e.id, default_start)
        anchor = max(last_update, start) if last_update else start
        if changed and (moved := changed.get(e.id)) is not None:
            anchor = max(anchor, moved)
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


def next_attention(desired: Desired) -> datetime | None:
    """When the incident next needs a look without any webhook: the end of the current overdue
    window of an engagement with a cadence, or the end of a snooze, or a regulatory clock's next reminder
    threshold. None when nothing is timed."""
    if not desired.in_scope or desired.closed:
        return None
    clock = _soonest(_next_clock(desired), _next_approval(desired))
    if desired.all_clear:
        return clock
    times = [d.anchor + cadence * (d.window + 1) for d in desired.dues if (cadence := d.engagement.cadence)]
    if not times:
        return clock
    soonest = min(times)
    snoozed = desired.state.snoozed_until
    soonest = max(soonest, snoozed) if snoozed else soonest
    return min(soonest, clock) if clock else soonest


def _soonest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t is not None), default=None)


def _next_approval(desired: Desired) -> datetime | None:
    """A sign-off's next window end, CMOC warning or cut-off (``bot.core.approvals``)."""
    from bot.core import approvals  # it builds on the model, as this module does

    return approvals.next_time(desired.approvals)


def _next_clock(desired: Desired) -> datetime | None:
    """The next reminder threshold of a regulatory clock (a snooze or the all clear does not pause them)."""
    from bot.core import clocks  # it builds on the model, as this module does

    if desired.now is None:
        return None
    return clocks.next_threshold(clocks.open_stages(desired.clocks), desired.now)
