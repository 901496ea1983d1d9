"""Regulatory clocks: deadlines, thresholds and the policy's ``clocks`` section (``bot.core.clocks``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, parse_config
from bot.core import clocks
from bot.core.model import ClockFiling, ClockRecord

ROOT = Path(__file__).resolve().parent.parent


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)


def _due(cfg, clock_id: str, started: str, **record) -> tuple[clocks.StageDue, ...]:
    clock = cfg.clock(clock_id)
    return clocks.schedule(clock, ClockRecord(started=_utc(started), by="legal-oncall", **record), cfg.calendars)


def test_gdpr_started_friday_evening_is_due_monday_evening(default_config):
    (stage,) = _due(default_config, "gdpr", "2026-12-04T18:00")  # a Friday
    assert stage.deadline == _utc("2026-12-07T18:00")  # the Monday: 72 continuous hours, weekend included
    assert stage.deadline.strftime("%A") == "Monday"


@pytest.mark.parametrize(
    ("determined", "due_day"),
    [
        # Wednesday before Friday 3 July 2026 (Independence Day observed): Thu 2, Mon 6, Tue 7, Wed 8.
        ("2026-07-01T15:00", "2026-07-08"),
        # Wednesday before Friday 19 June 2026 (Juneteenth): Thu 18, Mon 22, Tue 23, Wed 24.
        ("2026-06-17T15:00", "2026-06-24"),
        # Wednesday before Christmas (Friday 25 December 2026): Thu 24, Mon 28, Tue 29, Wed 30.
        ("2026-12-23T15:00", "2026-12-30"),
        # No holiday in the way: Monday -> Friday.
        ("2026-03-02T15:00", "2026-03-06"),
        # Late in the evening in New York is the next day in UTC: the date counts in the owner's time zone.
        ("2026-03-03T02:30", "2026-03-06"),
        # Across the year: Wed 29 Dec 2027 -> Thu 30, (Fri 31 Dec observed), Mon 3, Tue 4, Wed 5 Jan 2028 is
        # not in the calendar, so that case refuses (below); Mon 20 Dec 2027 -> Tue 21, Wed 22, Thu 23, Mon 27.
        ("2027-12-20T15:00", "2027-12-27"),
    ],
)
def test_8k_counts_business_days_after_the_determination(default_config, determined, due_day):
    (stage,) = _due(default_config, "sec-8k", determined)
    local = stage.deadline.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert local.date().isoformat() == due_day
    assert (local.hour, local.minute) == (23, 59)  # the end of that business day in New York


def test_a_business_day_clock_refuses_a_year_missing_from_the_calendar(default_config):
    with pytest.raises(clocks.CalendarGap) as err:
        _due(default_config, "sec-8k", "2027-12-29T15:00")
    assert "\n" not in str(err.value)
    assert "us-federal has no 2028" in str(err.value)
    with pytest.raises(clocks.CalendarGap, match="no 2025"):
        _due(default_config, "sec-8k", "2025-12-29T15:00")


def test_the_calendar_file_lists_the_2026_federal_holidays(default_config):
    cal = default_config.calendars["us-federal"]
    assert [d.isoformat() for d in cal.years[2026]] == [
        "2026-01-01", "2026-01-19", "2026-02-16", "2026-05-25", "2026-06-19", "2026-07-03",
        "2026-09-07", "2026-10-12", "2026-11-11", "2026-11-26", "2026-12-25",
    ]
    assert all(d.weekday() < 5 for days in cal.years.values() for d in days)  # observed days are weekdays


def test_multi_stage_deadlines_count_from_the_start_an_earlier_stage_or_a_fix(default_config):
    early, notification, final = _due(default_config, "cra", "2026-10-01T08:00")
    assert early.deadline == _utc("2026-10-02T08:00")
    assert notification.deadline == _utc("2026-10-04T08:00")
    assert final.deadline is None and not final.open  # 14 days after a fix: the bot is not told when
    nis2 = default_config.clock("nis2").model_copy(update={"enabled": True})
    filed = ClockFiling("notification", "NCSC-1", "legal-oncall", _utc("2026-10-02T10:00"))
    record = ClockRecord(started=_utc("2026-10-01T08:00"), filings=(filed,))
    *_, report = clocks.schedule(nis2, record, {})
    assert report.anchor == filed.at and report.deadline == _utc("2026-11-02T10:00")  # one month after filing


def test_months_keep_the_day_or_take_the_months_last():
    assert clocks.add_months(_utc("2026-01-31T10:00"), 1) == _utc("2026-02-28T10:00")
    assert clocks.add_months(_utc("2026-12-15T10:00"), 1) == _utc("2027-01-15T10:00")


def test_thresholds_at_half_three_quarters_two_hours_before_and_the_deadline():
    start, due = _utc("2026-12-04T18:00"), _utc("2026-12-07T18:00")
    assert clocks.thresholds(start, due) == [
        ("50%", _utc("2026-12-06T06:00")),
        ("75%", _utc("2026-12-07T00:00")),
        ("2h", _utc("2026-12-07T16:00")),
        ("deadline", due),
    ]
    # A 3-hour stage: 2 hours before the deadline comes before halfway.
    assert [n for n, _ in clocks.thresholds(start, start + timedelta(hours=3))] == ["2h", "50%", "75%", "deadline"]


def test_reminders_post_each_threshold_once_and_the_newest_when_several_passed(default_config):
    stages = _due(default_config, "gdpr", "2026-12-04T18:00")
    assert clocks.reminders(stages, _utc("2026-12-06T05:59"), frozenset()) == []
    (r,) = clocks.reminders(stages, _utc("2026-12-06T06:00"), frozenset())
    assert r.threshold == "50%" and len(r.keys) == 1
    assert clocks.reminders(stages, _utc("2026-12-06T07:00"), frozenset(r.keys)) == []
    (late,) = clocks.reminders(stages, _utc("2026-12-07T16:30"), frozenset(r.keys))
    assert late.threshold == "2h" and len(late.keys) == 2  # 75 % and 2 h: one reminder, both recorded
    assert clocks.next_threshold(stages, _utc("2026-12-07T16:30")) == _utc("2026-12-07T18:00")
    filed = _due(default_config, "gdpr", "2026-12-04T18:00",
                 filings=(ClockFiling("notification", "DPC-1", "legal-oncall", _utc("2026-12-05T10:00")),))
    assert clocks.reminders(filed, _utc("2026-12-07T17:00"), frozenset()) == []
    assert clocks.next_threshold(filed, _utc("2026-12-05T11:00")) is None


def test_bundled_clocks_owners_and_what_is_off(default_config):
    on = {c.id for c in default_config.clocks if c.enabled}
    assert on == {"gdpr", "sec-8k", "cra"}
    assert {c.owner for c in default_config.clocks} == {"team:legal"}
    assert default_config.clock("gdpr").when.any_flags == ["data-breach"]
    cra = default_config.clock("cra")
    assert not clocks.offered(cra, _utc("2026-09-10T23:00"))
    assert clocks.offered(cra, _utc("2026-09-11T00:00"))


def _policy(**clock) -> dict:
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    data["clocks"] = [{"id": "x", "name": "X", "stages": [{"id": "s", "name": "S", "hours": 1}], **clock}]
    return data


@pytest.mark.parametrize(
    ("clock", "problem"),
    [
        ({"owner": "team:legl"}, "clocks[x].owner: unknown team 'legl' (did you mean 'legal'?"),
        ({"when": {"any_flags": ["data-breech"]}}, "clocks[x].when.any_flags[0]: unknown impact flag 'data-breech' "
                                                   "(did you mean 'data-breach'?"),
        ({"timezone": "Europe/Brusels"}, "clocks[x].timezone: unknown time zone 'Europe/Brusels'"),
        ({"calendar": "us-federl"}, "clocks[x].calendar: no holiday calendar 'us-federl'"),
        ({"stages": [{"id": "s", "name": "S", "business_days": 4}]}, "clocks[x].stages[0]: business days need"),
        ({"stages": [{"id": "s", "name": "S", "hours": 1, "days": 1}]}, "give exactly one of"),
        ({"stages": [{"id": "s", "name": "S", "hours": 1, "after": "strat"}]}, "did you mean 'start'?"),
        ({"ownr": "team:legal"}, "unknown key 'ownr' (did you mean 'owner'?)"),
    ],
)
def test_clock_config_problems_are_one_line_each(clock, problem):
    with pytest.raises(ConfigError) as err:
        parse_config(_policy(**clock), source="bot.yaml")
    lines = str(err.value).splitlines()
    assert len(lines) == 1, lines
    assert problem in lines[0]


def test_a_policy_brings_its_own_calendar_and_a_broken_one_is_one_line(tmp_path):
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "us-federal.yaml").write_text("years:\n  2030: [2030-01-01]\n")
    cfg = parse_config(data, base_dir=tmp_path)
    assert list(cfg.calendars["us-federal"].years) == [2030]
    with pytest.raises(clocks.CalendarGap, match="no 2026"):
        _due(cfg, "sec-8k", "2026-07-01T15:00")
    (tmp_path / "calendars" / "us-federal.yaml").write_text("years:\n  2030: [not-a-date]\n")
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="bot.yaml", base_dir=tmp_path)
    (line,) = str(err.value).splitlines()
    assert line.startswith("bot.yaml: clocks[sec-8k].calendar: holiday calendar ") and "years.2030.0" in line
