"""The ``clock`` command: the owner of a regulatory clock records that it started (and when), that a stage was
filed, that it does not apply, or the reasons a filing was late. Parsed and judged without I/O.

The bot never decides that a clock applies nor when awareness began: only the clock's owner (a party of the
policy, ``team:legal``: that team's handle or assignee; ``role:seoc``: the role's holder) may record it, and the
bot only counts from what they recorded.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Clock, Config
from bot.core import clocks
from bot.core.commands import Command, Echo, Reply, Verdict
from bot.core.model import ClockFiling, ClockRecord, Person
from bot.text.durations import duration

ACTIONS = ("start", "filed", "not-required", "delay-reason")
MAX_TEXT = 300
"""The longest reference or reason recorded (it is kept in the checklist's signed state)."""
EARLY = timedelta(minutes=5)
"""How far past the command's own time a start may be (clocks drift); later is refused."""


@dataclass(frozen=True)
class ClockContext:
    """What ``clock`` commands are judged against: each clock's owner as the policy resolves it now, and the
    records so far (including earlier commands of the same run)."""

    owners: Mapping[str, Person] = field(default_factory=dict)
    records: Mapping[str, ClockRecord] = field(default_factory=dict)


def _when(text: str, zone: ZoneInfo) -> datetime | None:
    """An ISO 8601 time; without an offset it is in the owner's time zone, a date alone is its midnight."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), zone).astimezone(UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)


def shown(when: datetime, clock: Clock) -> str:
    """``2026-12-07 18:00 UTC (19:00 CET)``: UTC and the owner's time zone."""
    local = when.astimezone(ZoneInfo(clock.timezone))
    same_day = local.date() == when.astimezone(UTC).date()
    there = f"{local:%H:%M %Z}" if same_day else f"{local:%Y-%m-%d %H:%M %Z}"
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({there})"


def is_owner(author: str, owner: Person | None) -> bool:
    names = {n.lower() for n in (owner.handle, owner.assignee) if n} if owner else set()
    return author.lower() in names


def judge(cmd: Command, cfg: Config, ctx: ClockContext) -> Verdict:
    """``clock start|filed|not-required|delay-reason CLOCK ...``, from the clock's owner only."""
    ids = [c.id for c in cfg.clocks if c.enabled]
    usage = (
        "usage: clock start CLOCK [TIME] | clock filed CLOCK [STAGE] REFERENCE | clock not-required CLOCK REASON | "
        f"clock delay-reason CLOCK TEXT; TIME in ISO 8601 (default now); clocks: {', '.join(ids) or 'none'}"
    )
    if len(cmd.args) < 2 or cmd.args[0].lower() not in ACTIONS:
        return Verdict(cmd, False, usage)
    action, wanted = cmd.args[0].lower(), cmd.args[1].lower()
    clock = cfg.clock(wanted)
    if clock is None or not clock.enabled:
        if clock is not None:
            return Verdict(cmd, False, f"the {clock.id} clock is not enabled in the policy (clocks: {', '.join(ids)})")
        close = difflib.get_close_matches(wanted, ids, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        return Verdict(cmd, False, Reply("unknown clock ", Echo(cmd.args[1]), f" ({hint}clocks: {', '.join(ids)})"))
    owner = ctx.owners.get(clock.id)
    if not is_owner(cmd.note.author, owner):
        who = f"{owner.name} (@{owner.handle})" if owner and owner.handle else (owner.name if owner else clock.owner)
        return Verdict(cmd, False, f"refused: only the {clock.id} clock's owner, {who}, may record it")
    now = cmd.note.created_at
    if now is None:
        return Verdict(cmd, False, "cannot tell when the command was written")
    record = ctx.records.get(clock.id, ClockRecord())
    rest = cmd.args[2:]
    if action == "start":
        return _start(cmd, cfg, clock, record, rest, now)
    text = " ".join(rest)
    if not text:
        what = {"filed": "REFERENCE", "not-required": "REASON", "delay-reason": "TEXT"}[action]
        return Verdict(cmd, False, f"usage: clock {action} {clock.id} {what}")
    if len(text) > MAX_TEXT:
        return Verdict(cmd, False, f"at most {MAX_TEXT} characters, please (a reference or a short reason)")
    by = cmd.note.author
    if action == "not-required":
        new = replace(record, not_required=text, by=record.by or by)
        reply = Reply(f"{clock.name}: recorded as not required by ", Echo(by), ": ", Echo(text))
        return Verdict(cmd, True, reply, clock=(clock.id, new))
    if record.started is None:
        return Verdict(cmd, False, f"the {clock.id} clock has not been started (clock start {clock.id} [TIME])")
    if action == "delay-reason":
        reply = Reply(f"{clock.name}: reasons for the delay recorded by ", Echo(by))
        return Verdict(cmd, True, reply, clock=(clock.id, replace(record, delay_reason=text)))
    return _filed(cmd, cfg, clock, record, rest, now)


def _start(cmd: Command, cfg: Config, clock: Clock, record: ClockRecord, rest: tuple[str, ...],
           now: datetime) -> Verdict:
    if len(rest) > 1:
        return Verdict(cmd, False, f"usage: clock start {clock.id} [TIME], TIME in ISO 8601, e.g. 2026-12-04T18:00Z")
    started = _when(rest[0], ZoneInfo(clock.timezone)) if rest else now
    if started is None:
        return Verdict(cmd, False, Reply("cannot read ", Echo(rest[0]), " as an ISO 8601 time (e.g. 2026-12-04T18:00Z"
                                         f" or 2026-12-04; without an offset it is {clock.timezone} time)"))
    if started > now + EARLY:
        return Verdict(cmd, False, f"a clock cannot start in the future ({shown(started, clock)})")
    if clock.applies_from is not None and started.date() < clock.applies_from:
        return Verdict(cmd, False, f"{clock.name} applies from {clock.applies_from.isoformat()}")
    if record.filings:
        return Verdict(cmd, False, f"the {clock.id} clock started at {shown(record.started or now, clock)} and a stage "
                                   "is already filed: its start cannot move any more")
    new = ClockRecord(started=started, by=cmd.note.author, at=now, delay_reason=record.delay_reason)
    try:
        stages = clocks.schedule(clock, new, cfg.calendars)
    except clocks.CalendarGap as gap:
        return Verdict(cmd, False, f"refused: {gap}")
    moved = f"moved from {shown(record.started, clock)} to " if record.started else "started at "
    dues = "; ".join(f"{s.stage.name} due {shown(s.deadline, clock)}" for s in stages if s.deadline)
    reply = Reply(f"{clock.name}: {moved}{shown(started, clock)} by ", Echo(cmd.note.author),
                  f"; {dues}" if dues else "")
    return Verdict(cmd, True, reply, clock=(clock.id, new))


def _filed(cmd: Command, cfg: Config, clock: Clock, record: ClockRecord, rest: tuple[str, ...],
           now: datetime) -> Verdict:
    stage_ids = [s.id for s in clock.stages]
    named = rest[0].lower() if len(rest) > 1 and rest[0].lower() in stage_ids else None
    reference = " ".join(rest[1:] if named else rest)
    stage = named or next((s for s in stage_ids if record.filed(s) is None), None)
    if stage is None:
        return Verdict(cmd, False, f"every stage of the {clock.id} clock is already filed")
    if record.filed(stage) is not None:
        return Verdict(cmd, False, f"the {stage} stage of the {clock.id} clock is already filed")
    new = replace(record, filings=(*record.filings, ClockFiling(stage, reference, cmd.note.author, now)))
    try:
        due = next(s for s in clocks.schedule(clock, new, cfg.calendars) if s.stage.id == stage)
    except clocks.CalendarGap as gap:
        return Verdict(cmd, False, f"refused: {gap}")
    parts: list[str | Echo] = [f"{clock.name}: {due.stage.name} filed by ", Echo(cmd.note.author), ", reference ",
                               Echo(reference)]
    late = due.late()
    if late is not None:
        parts.append(f"; {duration(late)} after the deadline ({shown(due.deadline or now, clock)})")
        if not record.delay_reason:
            parts.append(f". A late notification must give the reasons for the delay: please record them with "
                         f"clock delay-reason {clock.id} TEXT")
    return Verdict(cmd, True, Reply(*parts), clock=(clock.id, new))


