"""Roles and teams: rosters, weekly rotations, overrides and escalation."""

from __future__ import annotations

from datetime import date, datetime, time

from pydantic import Field, field_validator

from bot.config.fields import _WEEKDAYS, Escalation, TimeZoneName, _Model


class Override(_Model):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    user: str


class Rotation(_Model):
    """A weekly hand-over: roster[i] is on call during the i-th week after ``start``, wrapping round."""

    timezone: TimeZoneName
    weekday: str = "monday"
    at: time = time(9, 0)
    start: date

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, v: str) -> str:
        if v.lower() not in _WEEKDAYS:
            raise ValueError(f"unknown weekday {v!r} (expected one of: {', '.join(_WEEKDAYS)})")
        return v.lower()


class Role(_Model):
    name: str
    description: str = ""
    roster: list[str] = Field(default_factory=list)
    rotation: Rotation | None = None
    overrides: list[Override] = Field(default_factory=list)
    escalate_to: Escalation | None = Field(
        None, description="Mentioned when an update this role owes is overdue for a second window (e.g. its backup)."
    )


class Team(_Model):
    name: str
    handle: str | None = Field(None, description="GitLab username or group path mentioned for this team.")
    assignee: str | None = Field(None, description="Username assigned to child issues owned by this team.")
    escalate_to: Escalation | None = Field(
        None, description="Mentioned when an update this team owes is overdue for a second window (e.g. its manager)."
    )
