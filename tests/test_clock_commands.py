"""The ``clock`` command and the regulatory clocks on an incident, as Legal, a responder and the bot's restarts
see them (simulated GitLab; the clock is moved, never slept)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.commands.world import World
from bot.config import Config
from bot.core import cadence, clockcmd, clocks, policy
from bot.core.clockcmd import ClockContext
from bot.core.commands import Command
from bot.core.model import BotState, ClockFiling, ClockRecord, IncidentRef, Issue, Note, Observed
from bot.core.state import decode, encode
from bot.simgitlab import ManualClock
from tests.conftest import look
from tests.rendered import rendered_lines

S1 = ("severity::1", "data-breach", "comms-email")
LEGAL = "legal-oncall"  # the bundled team:legal handle
FRIDAY_18 = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def _checklist(w: World, iid: int) -> str:
    return next(n["body"] for n in w.bot_notes(iid) if "communications checklist" in n["body"])


def _shown(body: str) -> str:
    return "\n".join(ln.text for ln in rendered_lines(body))


def _replies(w: World, iid: int) -> list[str]:
    """The bot's replies to clock commands, as GitLab shows them."""
    return [_shown(n["body"]) for n in w.bot_notes(iid) if "cmd:" in n["body"].replace("\\u003a", ":")
            and " clock " in n["body"]]


def _reminders(w: World, iid: int) -> list[str]:
    return [_shown(n["body"]) for n in w.bot_notes(iid) if "Regulatory deadline" in n["body"]]


def _say(w: World, iid: int, text: str, author: str = LEGAL) -> None:
    w.sim.state.add_note(w.project, iid, f"@incident-bot {text}", author=author)


def test_a_non_owner_cannot_start_a_clock_and_the_owner_can(w: World, clock: ManualClock):
    clock.set(FRIDAY_18)
    iid = w.incident(*S1)
    look(w, clock, iid)
    offered = [ln.text for ln in rendered_lines(_checklist(w, iid)) if ln.text.startswith("May apply")]
    assert offered[0].startswith("May apply: GDPR Art. 33 notification")  # offered: data-breach is set
    assert "its owner, Legal, decides: @incident-bot clock start gdpr [TIME] or" in offered[0]
    _say(w, iid, "clock start gdpr", author="sec-oncall")  # the SEOC, a Developer, is not the clock's owner
    look(w, clock, iid)
    (refused,) = _replies(w, iid)
    assert "✗" in refused and "only the gdpr clock's owner, Legal (@legal-oncall), may record it" in refused
    assert "started" not in _checklist(w, iid).split("#### Regulatory clocks")[1]
    _say(w, iid, "clock start gdpr 2026-12-04T18:00Z")
    look(w, clock, iid)
    started = _replies(w, iid)[-1]
    assert "✓" in started and "due 2026-12-07 18:00 UTC (19:00 CET)" in started  # Friday 18:00 -> Monday 18:00
    body = _checklist(w, iid)
    lines = [ln.text for ln in rendered_lines(body)]
    (row,) = [ln for ln in lines if ln.startswith("GDPR Art. 33")]  # one line of its own, as GitLab shows it
    assert "started 2026-12-04 18:00 UTC (19:00 CET) by legal-oncall" in row
    assert "Notification to the supervisory authority: due 2026-12-07 18:00 UTC (19:00 CET) · 3d left · open" in row
    assert not any(ln.startswith("May apply: GDPR") for ln in lines)  # recorded: no longer offered


def test_late_filing_asks_for_the_reasons_once_and_records_them(w: World, clock: ManualClock):
    clock.set(FRIDAY_18)
    iid = w.incident(*S1)
    _say(w, iid, "clock start gdpr 2026-12-04T18:00Z")
    look(w, clock, iid)
    clock.set(FRIDAY_18 + timedelta(hours=75))
    _say(w, iid, "clock filed gdpr DPC-2026-117")
    look(w, clock, iid)
    filed = _replies(w, iid)[-1]
    assert "3h after the deadline" in filed and "please record them with clock delay-reason gdpr TEXT" in filed
    look(w, clock, iid)
    assert sum("delay-reason gdpr TEXT" in b for b in _replies(w, iid)) == 1  # asked once
    _say(w, iid, "clock delay-reason gdpr waited for the forensic report")
    look(w, clock, iid)
    row = next(ln.text for ln in rendered_lines(_checklist(w, iid)) if ln.text.startswith("GDPR Art. 33"))
    assert "reference DPC-2026-117 (late, 3h after the deadline)" in row
    assert "reasons for the delay: waited for the forensic report" in row


def test_an_8k_refuses_to_count_into_a_year_missing_from_the_calendar(w: World, clock: ManualClock):
    clock.set(datetime(2027, 12, 29, 20, 0, tzinfo=UTC))
    iid = w.incident(*S1)
    _say(w, iid, "clock start sec-8k 2027-12-29")
    look(w, clock, iid)
    (reply,) = _replies(w, iid)
    assert "✗" in reply and "the holiday calendar us-federal has no 2028" in reply
    assert "started" not in _checklist(w, iid).split("#### Regulatory clocks")[1]


def test_restarting_every_minute_around_each_threshold_reminds_exactly_once_per_threshold(
    w: World, clock: ManualClock
):
    clock.set(FRIDAY_18)
    iid = w.incident(*S1)
    _say(w, iid, "clock start gdpr")
    look(w, clock, iid)
    start = FRIDAY_18
    marks = [start + timedelta(hours=36), start + timedelta(hours=54), start + timedelta(hours=70),
             start + timedelta(hours=72)]
    for n, mark in enumerate(marks, 1):
        for minute in range(-3, 4):  # a fresh reconciler (a restart) at every minute around the threshold
            clock.set(mark + timedelta(minutes=minute))
            look(w, clock, iid)
            assert len(_reminders(w, iid)) == (n if minute >= 0 else n - 1), (mark, minute)
    texts = _reminders(w, iid)
    assert ["50% of the time has passed" in texts[0], "75% of the time" in texts[1], "in 2 hours" in texts[2],
            "(now)" in texts[3]] == [True] * 4
    assert all("@legal-oncall" in t for t in texts)


def test_the_worker_is_told_to_look_again_at_the_next_threshold(default_config: Config):
    incident = Issue(IncidentRef("acme/security-incidents", 1), labels=frozenset({*S1, "security-incident"}),
                     assignees=("sec-oncall",))
    # Status update reminders snoozed for days: the clock's halfway mark still brings the incident back.
    state = BotState({"seoc": "sec-oncall"}, snoozed_until=FRIDAY_18 + timedelta(days=5),
                     clocks={"gdpr": ClockRecord(started=FRIDAY_18, by=LEGAL)})
    now = FRIDAY_18 + timedelta(hours=1)
    desired = policy.plan_observed(Observed(incident, state=state), default_config, now)
    assert cadence.next_attention(desired) == FRIDAY_18 + timedelta(hours=36)
    now = FRIDAY_18 + timedelta(hours=70, minutes=30)
    desired = policy.plan_observed(Observed(incident, state=state), default_config, now)
    assert cadence.next_attention(desired) == FRIDAY_18 + timedelta(hours=72)
    filed = ClockRecord(started=FRIDAY_18, by=LEGAL, filings=(ClockFiling("notification", "x", LEGAL, now),))
    desired = policy.plan_observed(Observed(incident, state=BotState({"seoc": "sec-oncall"}, clocks={"gdpr": filed})),
                                   default_config, now)
    assert clocks.next_threshold(clocks.open_stages(desired.clocks), now) is None


def _cmd(text: str, author: str = LEGAL, at: datetime = FRIDAY_18) -> Command:
    words = text.split()
    return Command(Note(1, "@incident-bot " + text, author, at), words[0], tuple(words[1:]), allowed=True)


@pytest.mark.parametrize(
    ("text", "ok", "reply"),
    [
        ("clock", False, "usage: clock start CLOCK [TIME]"),
        ("clock start gdrp", False, "did you mean gdpr?"),
        ("clock start nis2", False, "the nis2 clock is not enabled in the policy"),
        ("clock start gdpr tomorrow", False, "as an ISO 8601 time"),
        ("clock start gdpr 2026-12-05T18:00Z", False, "a clock cannot start in the future"),
        ("clock start cra 2026-09-10T12:00Z", False, "applies from 2026-09-11"),
        ("clock start gdpr 2026-12-04T12:00", True, "started at 2026-12-04 11:00 UTC (12:00 CET)"),  # owner's zone
        ("clock filed gdpr X-1", False, "the gdpr clock has not been started"),
        ("clock not-required gdpr no personal data was reached", True, "recorded as not required"),
        ("clock delay-reason gdpr", False, "usage: clock delay-reason gdpr TEXT"),
    ],
)
def test_judge_clock(default_config, text, ok, reply):
    owners = policy.clock_owners(BotState(), default_config, FRIDAY_18)
    verdict = clockcmd.judge(_cmd(text), default_config, ClockContext(owners))
    assert verdict.ok is ok
    assert reply in verdict.reply


def test_the_state_keeps_clock_records_and_reads_states_written_before_them():
    record = ClockRecord(started=FRIDAY_18, by=LEGAL, at=FRIDAY_18, delay_reason="why",
                         filings=(ClockFiling("notification", "DPC-1", LEGAL, FRIDAY_18),))
    state = BotState({"seoc": "a"}, clocks={"gdpr": record, "cra": ClockRecord(not_required="no exploit", by=LEGAL)})
    assert decode(encode(state)) == state
    assert decode({"roles": {}}).clocks == {}
    assert decode({"clocks": {"gdpr": {"filed": "nonsense"}, "x": 3}}).clocks == {"gdpr": ClockRecord()}


def test_what_legal_writes_is_shown_as_text_never_as_a_mention_link_or_reference(w: World, clock: ManualClock):
    clock.set(FRIDAY_18)
    iid = w.incident(*S1)
    _say(w, iid, "clock start gdpr")
    _say(w, iid, "clock filed gdpr @all #1 [x](https://evil.example) <b>hi</b>")
    look(w, clock, iid)
    body = _checklist(w, iid)
    row = next(ln.text for ln in rendered_lines(body) if ln.text.startswith("GDPR Art. 33"))
    assert "reference @all #1 [x](https://evil.example) <b>hi</b>" in row
    from tests.security.gitlab_render import to_html

    html = to_html(body)
    assert "evil.example\"" not in html and "<b>hi" not in html
    assert all("@all" not in n["body"] or "`" in n["body"] or "\\@all" in n["body"] for n in w.bot_notes(iid))


def test_filed_takes_the_next_open_stage_or_the_one_named(default_config):
    owners = policy.clock_owners(BotState(), default_config, FRIDAY_18)
    oct1 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    records = {"cra": ClockRecord(started=oct1, by=LEGAL, at=oct1)}
    ctx = ClockContext(owners, records)
    later = oct1 + timedelta(hours=5)
    first = clockcmd.judge(_cmd("clock filed cra ENISA-1", at=later), default_config, ctx)
    assert first.ok and first.clock and first.clock[1].filings[0].stage == "early-warning"
    assert "after the deadline" not in first.reply
    named = clockcmd.judge(_cmd("clock filed cra final-report FR-9", at=later), default_config, ctx)
    assert named.ok and named.clock and named.clock[1].filings[0] == ClockFiling("final-report", "FR-9", LEGAL, later)
    again = clockcmd.judge(_cmd("clock filed cra early-warning X", at=later),
                           default_config, ClockContext(owners, {"cra": first.clock[1]}))
    assert not again.ok and "already filed" in again.reply


def test_a_started_clock_costs_no_call_on_a_quiet_look(w: World, clock: ManualClock):
    clock.set(FRIDAY_18 + timedelta(minutes=5))
    iid = w.incident(*S1)
    _say(w, iid, "clock start gdpr 2026-12-04T18:00Z")
    look(w, clock, iid)
    look(w, clock, iid)
    clock.advance(20 * 60)  # minutes later, within the same hour of time left
    w.sim.reset_log()
    look(w, clock, iid)
    assert w.sim.writes() == [] and len(w.sim.requests) == 3, "the time left is whole hours: nothing to rewrite"
