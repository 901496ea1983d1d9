"""One way to show a length of time in every text the bot writes (GitLab bodies, Slack, replies, the review)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.text.durations import duration


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(minutes=1), "1m"),
        (timedelta(seconds=90), "1m"),  # cut, not rounded: 90 seconds late is "1m" late
        (timedelta(minutes=90), "1h 30m"),
        (timedelta(hours=24), "1d"),
        (timedelta(days=1, hours=2), "1d 2h"),
        (timedelta(days=1, minutes=5), "1d 5m"),
        (timedelta(days=3), "3d"),
        (timedelta(hours=72), "3d"),
        (timedelta(minutes=-20), "-20m"),
        (timedelta(hours=-1), "-1h"),
        (timedelta(seconds=-30), "-30s"),
    ],
)
def test_a_duration_reads_in_days_hours_minutes(value: timedelta, shown: str) -> None:
    assert duration(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (timedelta(minutes=59), "0h"),
        (timedelta(minutes=61), "1h"),
        (timedelta(days=1, hours=2, minutes=59), "1d 2h"),
        (timedelta(days=3), "3d"),
        (timedelta(hours=-25), "-1d 1h"),
    ],
)
def test_whole_hours_cuts_the_minutes(value: timedelta, shown: str) -> None:
    assert duration(value, whole_hours=True) == shown
