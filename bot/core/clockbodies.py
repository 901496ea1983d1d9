"""The regulatory clocks as the checklist and the reminders show them: one line per clock, every value from a
person (a reference, a reason) escaped; times in UTC and in the owner's time zone."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config import Config
from bot.core import clocks, records
from bot.core.clockcmd import shown
from bot.core.model import Desired, Observed, Person
from bot.text.durations import duration
from bot.text.escape import UnsafeValue, code_span, escape_inline, mention
from bot.text.safe import Safe


def who(person: Person) -> str:
    """``@handle`` for the owner (a team's handle may be a group), else the escaped name (as ``bodies.who``)."""
    if person.handle:
        try:
            return mention(person.handle, allow_group=True)
        except UnsafeValue:
            return f"{escape_inline(person.name)} ({escape_inline(person.handle)})"
    return f"{escape_inline(person.name)} (nobody configured)"


def _stage(s: clocks.StageDue, now: datetime) -> str:
    clock, name = s.clock, escape_inline(s.stage.name)
    if s.filed is not None:
        late = s.late()
        when = f"{'late, ' + duration(late) + ' after the deadline' if late else 'on time'}"
        return f"{name}: filed {shown(s.filed.at, clock)}, reference {code_span(s.filed.reference)} ({when})"
    if s.deadline is None:
        return f"{name}: due {_span_of(s)} after a fix is available (not counted by the bot)"
    state = _left(s.deadline - now)
    return f"{name}: due {shown(s.deadline, clock)} · {state} · open"


def _left(left: timedelta) -> str:
    """Time left in whole hours (the checklist is rewritten at most once an hour for it, not at every look)."""
    text = "" if abs(left) < timedelta(hours=1) else duration(abs(left), whole_hours=True)
    if left.total_seconds() > 0:
        return f"{text} left" if text else "under 1h left"
    return f"**overdue** by {text}" if text else "**overdue** by under 1h"


def _span_of(s: clocks.StageDue) -> str:
    st = s.stage
    for value, unit in ((st.hours, "h"), (st.days, " days"), (st.months, " month(s)"), (st.business_days,
                                                                                          " business days")):
        if value is not None:
            return f"{value}{unit}"
    return ""


def rows(desired: Desired) -> list[Safe]:
    """One checklist line per clock the owner recorded: started, each stage's due time and time left, state."""
    now = desired.now
    out = []
    for v in desired.clocks:
        head = f"**{escape_inline(v.clock.name)}** · owner {who(v.owner)}"
        if v.record.not_required:
            out.append(Safe(f"{head} · not required: {escape_inline(v.record.not_required)} (recorded by "
                            f"{escape_inline(v.record.by)})"))
            continue
        if v.record.started is None or now is None:
            continue
        parts = [head, f"started {shown(v.record.started, v.clock)} by {escape_inline(v.record.by)}"]
        if v.problem:
            parts.append(f"⚠ {escape_inline(v.problem)}")
        parts += [_stage(s, now) for s in v.stages]
        if v.record.delay_reason:
            parts.append(f"reasons for the delay: {escape_inline(v.record.delay_reason)}")
        out.append(Safe(" · ".join(parts)))
    return out


def offers(desired: Desired, cfg: Config) -> list[Safe]:
    """The clocks the policy offers for this incident that nobody recorded: the owner decides."""
    out = []
    for clock_id in desired.clock_offers:
        clock = cfg.clock(clock_id)
        if clock is None:
            continue
        start = code_span(f"@{cfg.bot.username} clock start {clock.id} [TIME]")
        skip = code_span(f"@{cfg.bot.username} clock not-required {clock.id} REASON")
        note = f" ({escape_inline(clock.note)})" if clock.note else ""
        kind, _, name = clock.owner.partition(":")
        team = cfg.teams.get(name) if kind == "team" else None
        owner = team.name if team else (cfg.roles[name].name if name in cfg.roles else clock.owner)  # type: ignore[index]
        out.append(Safe(f"May apply: **{escape_inline(clock.name)}**{note}; its owner, {escape_inline(owner)}, "
                        f"decides: {start} or {skip}"))
    return out


def reminder_body(desired: Desired, observed: Observed, due: list[clocks.ClockReminder]) -> str:
    """One comment for the clocks' thresholds passed at this look, mentioning each owner."""
    lines = []
    for r in due:
        s = r.due
        assert s.deadline is not None
        when = "now" if r.threshold == "deadline" else ("in 2 hours" if r.threshold == "2h" else
                                                        f"{r.threshold} of the time has passed")
        view = next(v for v in desired.clocks if v.clock.id == s.clock.id)
        lines.append(
            f"- **{escape_inline(s.clock.name)}**, {escape_inline(s.stage.name)}: due {shown(s.deadline, s.clock)} "
            f"({when}) · {who(view.owner)}: comment {code_span(f'clock filed {s.clock.id} REFERENCE')} once filed"
        )
    log = records.log_marker(observed.key, observed.incident, [k for r in due for k in r.keys])
    return f"{log}\n**Regulatory deadline.**\n\n" + "\n".join(lines)
