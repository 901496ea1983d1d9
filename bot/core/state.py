"""The bot's own state in GitLab (role holders, snooze, engagement starts, requested cadences, handled commands),
signed so that only what the bot wrote is believed. Pure. Who can change what, and what happens then:
docs/architecture.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from bot.core import approvalrecords
from bot.core.commands import CHAT_CHANNEL
from bot.core.events import parse_time
from bot.core.model import BotState, CadenceRequest, ClockFiling, ClockRecord, Issue, LogEntry, Note, Tick
from bot.text.escape import is_valid_username
from bot.text.markers import Marker, StateKey, Trust, find_marker, marker_spans, signed_marker, verify

#: The marker kind in the checklist comment, and of the copies in the bot's other comments.
CHECKLIST = "checklist"
COPY = "state"

TRUSTED = (Trust.SIGNED, Trust.SIGNED_EARLIER)


def scope_of(incident: Issue) -> str:
    """What a signature binds the state to: the incident's project (by id when known) and iid."""
    project = str(incident.project_id) if incident.project_id is not None else incident.ref.project
    return f"{project}#{incident.ref.iid}"


def encode(state: BotState) -> dict[str, Any]:
    """``state`` as marker fields. A new kind of state is one more field here and in ``decode``."""
    fields: dict[str, Any] = {"roles": dict(sorted(state.roles.items())), "rev": state.rev}
    if state.snoozed_until is not None:
        fields["snoozed_until"] = state.snoozed_until.isoformat()
    if state.began:
        fields["began"] = {k: v.isoformat() for k, v in sorted(state.began.items())}
    if state.handled:
        fields["handled"] = state.handled
    if state.cadences:
        fields["cadences"] = {
            k: {"every": int(v.every.total_seconds()) if v.every else 0, "by": v.by, "at": v.at.isoformat()}
            for k, v in sorted(state.cadences.items())
        }
    if state.chat_channel:
        fields["chat_channel"] = state.chat_channel
    if state.done:
        fields["done"] = {k: {"by": v.by, "at": v.at.isoformat()} for k, v in sorted(state.done.items())}
    if state.clocks:
        fields["clocks"] = {k: _clock_fields(v) for k, v in sorted(state.clocks.items())}
    if state.signed_log:
        fields["signed_log"] = True
    if state.timeline:
        fields["timeline"] = state.timeline
    if state.review:
        fields["review"] = True
    if state.slots:
        fields["slots"] = {k: dict(v) for k, v in sorted(state.slots.items())}
    if state.approvals:
        fields["approvals"] = {k: approvalrecords.encode(v) for k, v in sorted(state.approvals.items())}
    return fields


def _clock_fields(record: ClockRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"by": record.by}
    if record.started is not None:
        out["started"] = record.started.isoformat()
    if record.at is not None:
        out["at"] = record.at.isoformat()
    if record.filings:
        out["filed"] = [{"stage": f.stage, "ref": f.reference, "by": f.by, "at": f.at.isoformat()}
                        for f in record.filings]
    if record.not_required:
        out["not_required"] = record.not_required
    if record.delay_reason:
        out["delay_reason"] = record.delay_reason
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _clocks(raw: Any) -> dict[str, ClockRecord]:
    """What clock owners recorded; a state written before the ``clock`` command has none."""
    out: dict[str, ClockRecord] = {}
    if not isinstance(raw, dict):
        return out
    for k, v in raw.items():
        if not isinstance(k, str) or not isinstance(v, dict):
            continue
        raw_filed = v.get("filed")
        filings = tuple(
            ClockFiling(f["stage"], _text(f.get("ref")), _text(f.get("by")), when)
            for f in (raw_filed if isinstance(raw_filed, list) else [])
            if isinstance(f, dict) and isinstance(f.get("stage"), str) and (when := parse_time(f.get("at")))
        )
        out[k] = ClockRecord(
            started=parse_time(v.get("started")),
            by=_text(v.get("by")),
            at=parse_time(v.get("at")),
            filings=filings,
            not_required=_text(v.get("not_required")),
            delay_reason=_text(v.get("delay_reason")),
        )
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _cadences(raw: Any) -> dict[str, CadenceRequest]:
    """Requested intervals; a state written before the ``cadence`` command has none."""
    out: dict[str, CadenceRequest] = {}
    if not isinstance(raw, dict):
        return out
    for k, v in raw.items():
        if not isinstance(k, str) or not isinstance(v, dict):
            continue
        seconds, by, when = _int(v.get("every")), v.get("by"), parse_time(v.get("at"))
        if isinstance(by, str) and when is not None:
            out[k] = CadenceRequest(timedelta(seconds=seconds) if seconds else None, by, when)
    return out


def _done(raw: Any) -> dict[str, Tick]:
    """Items marked done with the ``done`` command; a state written before it has none."""
    out: dict[str, Tick] = {}
    if not isinstance(raw, dict):
        return out
    for k, v in raw.items():
        if isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("by"), str):
            when = parse_time(v.get("at"))
            if when is not None:
                out[k] = Tick(v["by"], when)
    return out


def _digest(raw: Any) -> str:
    return raw if isinstance(raw, str) and len(raw) <= 64 and raw.isalnum() else ""


def _channel(raw: Any) -> str:
    return raw if isinstance(raw, str) and CHAT_CHANNEL.fullmatch(raw) else ""


def _slots(raw: Any) -> dict[str, dict[str, Any]]:
    """Each outbound integration's slot, as written (an integration reads its own; one this version does not
    know is kept, so an older replica never drops a newer one's records)."""
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, dict)}


def decode(fields: Mapping[str, Any]) -> BotState:
    roles = fields.get("roles")
    if not isinstance(roles, dict):
        roles = {}
    roles = {k: v for k, v in roles.items() if isinstance(k, str) and isinstance(v, str)}
    raw = fields.get("began")
    began = (
        {k: t for k, v in raw.items() if isinstance(k, str) and (t := parse_time(v))} if isinstance(raw, dict) else {}
    )
    return BotState(
        roles,
        snoozed_until=parse_time(fields.get("snoozed_until")),
        began=began,
        handled=_int(fields.get("handled")),
        cadences=_cadences(fields.get("cadences")),
        chat_channel=_channel(fields.get("chat_channel")),
        done=_done(fields.get("done")),
        clocks=_clocks(fields.get("clocks")),
        rev=_int(fields.get("rev")),
        signed_log=fields.get("signed_log") is True,
        timeline=_digest(fields.get("timeline")),
        review=fields.get("review") is True,
        slots=_slots(fields.get("slots")),
        approvals=approvalrecords.decode(fields.get("approvals")),
    )


def same_content(a: BotState, b: BotState) -> bool:
    """Equal apart from the revision number."""
    return replace(a, rev=0) == replace(b, rev=0)


def next_revision(before: BotState, after: BotState) -> BotState:
    """``after`` numbered one past ``before`` if it says anything new, else with ``before``'s number."""
    return replace(after, rev=before.rev if same_content(before, after) else before.rev + 1)


def checklist_marker(state: BotState, key: StateKey, incident: Issue) -> str:
    return signed_marker(CHECKLIST, key, scope_of(incident), **encode(state))


def copy_marker(state: BotState, key: StateKey, incident: Issue) -> str:
    return signed_marker(COPY, key, scope_of(incident), **encode(state))


def signed_checklist(body: str, key: StateKey, incident: Issue) -> bool:
    """Whether ``body`` holds a checklist marker the bot signed for ``incident`` (the checklist itself, found
    before any other of the bot's comments somebody put a checklist marker in)."""
    return any(m.kind == CHECKLIST and verify(m, key, scope_of(incident)) in TRUSTED for _, _, m in marker_spans(body))


@dataclass(frozen=True)
class Reading:
    """The state believed, and the one status-log line to write about it, if something was wrong."""

    state: BotState
    report: LogEntry | None = None


def _fingerprint(found: Marker | None) -> str:
    text = "none" if found is None else repr(sorted(found.fields.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read(
    checklist: Note | None,
    others: Sequence[Note],
    key: StateKey,
    incident: Issue,
    *,
    answered: int = 0,
) -> Reading:
    """The state to believe, from the checklist and the signed copies in the bot's other comments.

    ``others`` are the bot's own comments other than the checklist; ``answered`` is the highest note id
    of a command the bot has replied to (used only when nothing signed is left).
    """
    scope = scope_of(incident)
    candidates: list[tuple[int, int, BotState]] = []
    found = find_marker(checklist.body, CHECKLIST) if checklist is not None else None
    trust = verify(found, key, scope) if found is not None else None
    if found is not None and trust in TRUSTED:
        mine = decode(found.fields)
        candidates.append((mine.rev, 1, mine))
    for note in others:
        for _, _, m in marker_spans(note.body):
            if m.kind == COPY and verify(m, key, scope) in TRUSTED:
                copy = decode(m.fields)
                candidates.append((copy.rev, 0, copy))
    best = max(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None
    if checklist is None:
        # A new incident, or the checklist comment was deleted: a new one is written from the copies.
        return Reading(best or BotState(handled=answered))
    if found is not None and trust in TRUSTED and best is not None and decode(found.fields).rev == best.rev:
        return Reading(best)
    what = {
        None: "removed",
        Trust.UNSIGNED: "replaced with an unsigned one",
        Trust.FORGED: "changed",
    }.get(trust, "replaced with an older one")
    entry_key = f"state:{_fingerprint(found)}"
    if best is not None:
        text = (
            f"the checklist's hidden state was {what} by someone other than the bot, so it was not believed; "
            f"the checklist was restored to what the bot last wrote (revision {best.rev}). "
            "GitLab does not tell the bot who edited a comment; only Maintainers, Owners and administrators can "
            "edit the bot's comments"
        )
        return Reading(best, LogEntry(entry_key, text))
    seoc = next((a for a in incident.assignees if is_valid_username(a)), None)
    fallback = BotState({"seoc": seoc} if seoc else {}, handled=answered)
    if trust == Trust.UNSIGNED:
        cause = "is not signed (written by an earlier version of the bot, or by hand)"
    else:
        cause = f"was {what} by someone other than the bot (or the bot's state key was replaced)"
    text = (
        f"the checklist's hidden state {cause}, and no signed copy was found, so it is not believed: the SEOC is "
        "the incident's assignee, the other roles come from their rosters, any snooze is cleared and reminder "
        "windows start now. Hand a role off again with a command if that is wrong"
    )
    return Reading(fallback, LogEntry(entry_key, text))
