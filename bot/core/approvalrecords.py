"""What the bot records about a channel's sign-off in its signed state: when the draft first appeared, the digest
it last read and since when, and every decision with the digest it was bound to. Plain data (the model and the
state codec build on it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_DECISIONS = 40
"""The most decisions kept per channel (the oldest drop first): the state lives in one comment's marker."""


@dataclass(frozen=True)
class Decision:
    """An ``approve`` or ``reject`` that counted: for the ``groups`` its author is in, bound to ``digest``.
    ``asked`` is when that digest was first read (the approvers were asked), ``at`` the command's time."""

    digest: str
    groups: tuple[str, ...]
    by: str
    at: datetime
    approve: bool
    asked: datetime
    reason: str = ""


@dataclass(frozen=True)
class ApprovalRecord:
    """One channel: its draft's first appearance, the current digest and since when, the decisions, and the
    digests whose approvals an edit voided."""

    first_seen: datetime
    digest: str
    since: datetime
    decisions: tuple[Decision, ...] = ()
    voided: tuple[str, ...] = ()

    def current(self, group: str) -> Decision | None:
        """The group's latest decision on the current digest."""
        found = [d for d in self.decisions if d.digest == self.digest and group in d.groups]
        return found[-1] if found else None


def encode(record: ApprovalRecord) -> dict[str, Any]:
    return {
        "first": record.first_seen.isoformat(),
        "digest": record.digest,
        "since": record.since.isoformat(),
        "decisions": [
            {"d": d.digest, "g": list(d.groups), "by": d.by, "at": d.at.isoformat(), "ok": d.approve,
             "asked": d.asked.isoformat(), **({"why": d.reason} if d.reason else {})}
            for d in record.decisions[-MAX_DECISIONS:]
        ],
        "voided": list(record.voided[-MAX_DECISIONS:]),
    }


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def decode(raw: Any) -> dict[str, ApprovalRecord]:
    """The records in a state's ``approvals`` field; anything malformed is dropped (a state before approvals has
    none)."""
    out: dict[str, ApprovalRecord] = {}
    if not isinstance(raw, dict):
        return out
    for channel, v in raw.items():
        if not isinstance(channel, str) or not isinstance(v, dict):
            continue
        first, since, digest = _time(v.get("first")), _time(v.get("since")), _text(v.get("digest"))
        if first is None or since is None or not digest:
            continue
        decisions = []
        for d in v.get("decisions") or []:
            if not isinstance(d, dict):
                continue
            at, asked = _time(d.get("at")), _time(d.get("asked"))
            groups = d.get("g")
            if at is None or asked is None or not isinstance(groups, list) or not _text(d.get("d")):
                continue
            decisions.append(Decision(_text(d.get("d")), tuple(g for g in groups if isinstance(g, str)),
                                      _text(d.get("by")), at, d.get("ok") is True, asked, _text(d.get("why"))))
        voided = tuple(x for x in (v.get("voided") or []) if isinstance(x, str))
        out[channel] = ApprovalRecord(first, digest, since, tuple(decisions), voided)
    return out
