"""Regulatory and contractual clocks: deadlines from a start the owner recorded, and reminder thresholds. Pure.

A stage's deadline is counted from the clock's start (or an earlier stage, or a fix): in continuous hours
(GDPR Art. 33: 72 hours from awareness, nights and weekends included), calendar days or months, or business
days after the start's date in the owner's time zone, skipping weekends and the holidays of the clock's
calendar (SEC Form 8-K Item 1.05: four business days after the materiality determination), the deadline being
the end of the last business day. A business-day count that reaches a year the calendar does not list raises
``CalendarGap`` rather than guessing.

Each open stage is reminded at 50 % and 75 % of its span, 2 hours before its deadline and at the deadline, each
once: the reminder's key names the clock, the stage, the start it was counted from and the threshold, so a
restart, a retry or a replica computing the same key never posts it twice.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import Clock, ClockStage, HolidayCalendar
from bot.core.model import ClockFiling, ClockRecord, Person

END_OF_DAY = time(23, 59)
"""A business day's deadline: its last minute in the owner's time zone."""


class CalendarGap(Exception):
    """A business-day count reached a year the holiday calendar does not list."""

    def __init__(self, calendar: str, year: int):
        self.calendar, self.year = calendar, year
        super().__init__(
            f"the holiday calendar {calendar} has no {year}: add that year's holidays to config/calendars/"
            f"{calendar}.yaml; the bot does not guess which days are business days"
        )


def business_days_after(start: date, n: int, holidays: HolidayCalendar, name: str) -> date:
    """The ``n``-th business day after ``start``: weekdays not in ``holidays``, ``start`` itself not counted."""
    if start.year not in holidays.years:
        raise CalendarGap(name, start.year)
    closed = {d for days in holidays.years.values() for d in days}
    day, counted = start, 0
    while counted < n:
        day += timedelta(days=1)
        if day.year not in holidays.years:
            raise CalendarGap(name, day.year)
        if day.weekday() < 5 and day not in closed:
            counted += 1
    return day


def add_months(when: datetime, months: int) -> datetime:
    """The same time ``months`` calendar months later, on the same day of the month or the month's last."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    day = min(when.day, _calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def deadline(stage: ClockStage, anchor: datetime, clock: Clock, calendars: Mapping[str, HolidayCalendar]) -> datetime:
    """When ``stage`` falls due, counted from ``anchor`` (UTC)."""
    anchor = anchor.astimezone(UTC)
    if stage.hours is not None:
        return anchor + timedelta(hours=stage.hours)
    if stage.days is not None:
        return anchor + timedelta(days=stage.days)
    if stage.months is not None:
        return add_months(anchor, stage.months)
    assert stage.business_days is not None and clock.calendar is not None  # checked when the policy loads
    zone = ZoneInfo(clock.timezone)
    last = business_days_after(anchor.astimezone(zone).date(), stage.business_days, calendars[clock.calendar],
                               clock.calendar)
    return datetime.combine(last, END_OF_DAY, zone).astimezone(UTC)


@dataclass(frozen=True)
class StageDue:
    """Where one stage of a started clock stands. ``deadline`` is None when its anchor is not known (a fix)."""

    clock: Clock
    stage: ClockStage
    anchor: datetime | None
    deadline: datetime | None
    filed: ClockFiling | None

    @property
    def open(self) -> bool:
        return self.filed is None and self.deadline is not None

    def late(self) -> timedelta | None:
        """How late the filing was, if it was."""
        if self.filed is None or self.deadline is None or self.filed.at <= self.deadline:
            return None
        return self.filed.at - self.deadline


def schedule(clock: Clock, record: ClockRecord, calendars: Mapping[str, HolidayCalendar]) -> tuple[StageDue, ...]:
    """Every stage of a started clock with its deadline. Raises ``CalendarGap``."""
    if record.started is None:
        return ()
    out: dict[str, StageDue] = {}
    for stage in clock.stages:
        anchor: datetime | None
        if stage.after == "start":
            anchor = record.started
        elif stage.after in out:
            before = out[stage.after]
            anchor = before.filed.at if before.filed else before.deadline
        else:  # "fix": when a fix is available, which the bot is not told
            anchor = None
        due = deadline(stage, anchor, clock, calendars) if anchor is not None else None
        out[stage.id] = StageDue(clock, stage, anchor, due, record.filed(stage.id))
    return tuple(out.values())


THRESHOLDS = ("50%", "75%", "2h", "deadline")


def thresholds(anchor: datetime, due: datetime) -> list[tuple[str, datetime]]:
    """The reminder times of a stage counted from ``anchor``: halfway, three quarters, 2 hours before the
    deadline (when that is after the anchor) and the deadline itself, in time order."""
    span = due - anchor
    times = [
        ("50%", anchor + span / 2),
        ("75%", anchor + span * 3 / 4),
        ("2h", due - timedelta(hours=2)),
        ("deadline", due),
    ]
    return sorted(((name, t.replace(microsecond=0)) for name, t in times if t > anchor), key=lambda x: x[1])


@dataclass(frozen=True)
class ClockReminder:
    """The thresholds of one open stage passed at ``now`` and not reminded yet: ``keys`` of all of them, the
    newest one named (a look that lands after two thresholds posts one reminder, not two)."""

    due: StageDue
    threshold: str
    keys: tuple[str, ...]


def key(due: StageDue, threshold: str) -> str:
    assert due.anchor is not None
    return f"clock:{due.clock.id}:{due.stage.id}:{due.anchor.isoformat()}:{threshold}"


def reminders(stages: Sequence[StageDue], now: datetime, logged: frozenset[str]) -> list[ClockReminder]:
    """The reminders to post at ``now``: for each open stage, the thresholds passed and not in ``logged``."""
    out = []
    for due in stages:
        if not due.open or due.anchor is None or due.deadline is None:
            continue
        passed = [(name, key(due, name)) for name, t in thresholds(due.anchor, due.deadline) if t <= now]
        fresh = [k for _, k in passed if k not in logged]
        if fresh:
            out.append(ClockReminder(due, passed[-1][0], tuple(fresh)))
    return out


def next_threshold(stages: Sequence[StageDue], now: datetime) -> datetime | None:
    """The next reminder time after ``now`` of any open stage (when the incident needs a look), or None."""
    times = [
        t
        for due in stages
        if due.open and due.anchor is not None and due.deadline is not None
        for _, t in thresholds(due.anchor, due.deadline)
        if t > now
    ]
    return min(times, default=None)


def offered(clock: Clock, now: datetime) -> bool:
    """Whether the rule is in force at ``now`` (``applies_from``); ``when`` is judged by the policy engine."""
    return clock.enabled and (clock.applies_from is None or now.date() >= clock.applies_from)


@dataclass(frozen=True)
class ClockView:
    """A clock its owner recorded on the incident, with its stages' deadlines (``problem``: why none could be
    counted, e.g. a year missing from the calendar)."""

    clock: Clock
    record: ClockRecord
    owner: Person
    stages: tuple[StageDue, ...]
    problem: str = ""

    @property
    def stopped(self) -> bool:
        return bool(self.record.not_required)


def views(
    cfg_clocks: Sequence[Clock],
    records: Mapping[str, ClockRecord],
    owners: Mapping[str, Person],
    calendars: Mapping[str, HolidayCalendar],
) -> tuple[ClockView, ...]:
    """Each recorded clock the policy still names, in the policy's order."""
    out = []
    for clock in cfg_clocks:
        record = records.get(clock.id)
        if record is None:
            continue
        try:
            stages, problem = schedule(clock, record, calendars), ""
        except CalendarGap as gap:
            stages, problem = (), str(gap)
        out.append(ClockView(clock, record, owners[clock.id], () if record.not_required else stages, problem))
    return tuple(out)


def open_stages(items: Sequence[ClockView]) -> list[StageDue]:
    return [s for v in items if not v.stopped for s in v.stages]
