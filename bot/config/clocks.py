"""Regulatory and contractual clocks: their stages and holiday calendars."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from bot.config.fields import Party, TimeZoneName, _Model
from bot.config.plan import Condition


class ClockStage(_Model):
    """One deadline of a clock: a span counted from the clock's start, from an earlier stage (its filing if
    recorded, else its deadline), or from when a fix is available (``after: fix``, not counted by the bot)."""

    id: str
    name: str
    hours: int | None = Field(None, gt=0, description="Continuous hours, nights and weekends included.")
    business_days: int | None = Field(
        None, gt=0, description="Business days after the start's date in the clock's time zone, ending at midnight."
    )
    days: int | None = Field(None, gt=0, description="Calendar days (24 hours each).")
    months: int | None = Field(None, gt=0, description="Calendar months (the same day of the month, or its last).")
    after: str = "start"


class HolidayCalendar(_Model):
    """Holidays by year (``config/calendars/<name>.yaml``): business days are weekdays not listed here."""

    name: str = ""
    years: dict[int, list[date]]


class Clock(_Model):
    """A regulatory or contractual clock the owner may start on an incident. The bot never decides that it
    applies, nor when it started: ``when`` only says when the checklist offers it."""

    id: str
    name: str
    enabled: bool = True
    owner: Party = "team:legal"
    when: Condition = Field(default_factory=Condition)
    timezone: TimeZoneName = Field(
        "UTC", description="The owner's time zone: shown next to UTC; business days count there."
    )
    calendar: str | None = Field(None, description="The holiday calendar business days skip (config/calendars).")
    applies_from: date | None = Field(None, description="The day the rule takes effect; no start before it.")
    stages: list[ClockStage]
    note: str = ""
