"""How every text the bot writes shows a length of time: ``45s``, ``1h 30m``, ``1d 2h``, ``-20m``.

One formatter for GitLab bodies, Slack messages, command replies, the review and the operator's commands, so
that the same hour never reads two ways. Days are 24 hours (a length of time, not a calendar date).
"""

from __future__ import annotations

from datetime import timedelta

__all__ = ["duration"]

_MINUTE, _HOUR, _DAY = 60, 3600, 86400


def duration(value: timedelta, *, whole_hours: bool = False) -> str:
    """``value`` for people: whole days, hours and minutes (``1d 2h 5m``), seconds only under a minute
    (``0s``, ``59s``), a leading ``-`` when negative. Smaller units are cut, never rounded up: a stage late by
    90 seconds is ``1m`` late. ``whole_hours`` shows only days and hours (``0h`` under an hour), for texts
    rewritten at most once an hour."""
    seconds = int(value.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if whole_hours:
        seconds -= seconds % _HOUR
        if seconds == 0:
            return "0h"
    elif seconds < _MINUTE:
        return f"{sign}{seconds}s"
    days, rest = divmod(seconds, _DAY)
    hours, rest = divmod(rest, _HOUR)
    minutes = rest // _MINUTE
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return sign + " ".join(parts)
