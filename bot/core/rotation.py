"""Who holds a role at a given moment: a roster, an optional weekly rotation, and dated overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Role

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def on_call(role: Role, at: datetime) -> str | None:
    """The username on call for ``role`` at ``at`` (timezone-aware), or None with an empty roster.

    Hand-overs happen at a local wall-clock time in the rotation's time zone, so they stay at 09:00
    local across daylight-saving changes; weeks are counted in local dates for the same reason.
    """
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    for override in role.overrides:
        start = override.start if override.start.tzinfo else override.start.replace(tzinfo=UTC)
        end = override.end if override.end.tzinfo else override.end.replace(tzinfo=UTC)
        if start <= at < end:
            return override.user
    if not role.roster:
        return None
    rot = role.rotation
    if rot is None:
        return role.roster[0]
    tz = ZoneInfo(rot.timezone)
    local = at.astimezone(tz)
    weekday = _WEEKDAYS.index(rot.weekday)
    # The most recent hand-over at or before `local`.
    days_back = (local.weekday() - weekday) % 7
    handover_date = local.date() - timedelta(days=days_back)
    handover = datetime.combine(handover_date, rot.at, tzinfo=tz)
    if handover > local:
        handover_date -= timedelta(days=7)
    first = rot.start + timedelta(days=(weekday - rot.start.weekday()) % 7)
    weeks = (handover_date - first).days // 7
    return role.roster[weeks % len(role.roster)]
