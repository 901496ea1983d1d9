"""The sign-off's pure rules as tables: what is ready, which notice is due when, when the incident needs a look,
and the record's round trip through the signed state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core import approvals
from bot.core.approvalrecords import ApprovalRecord, Decision
from bot.core.approvals import ChannelApproval, GroupView
from bot.core.model import BotState, Person
from bot.core.state import decode, encode

T = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
W = timedelta(minutes=30)
D = "f63eec26"
QUORUM = ("security", "legal", "cs", "ir")


def p(name: str) -> Person:
    return Person(f"user:{name}", name, name, name)


def view(approved: tuple[str, ...] = (), rejected: tuple[str, ...] = (), *, at: timedelta = timedelta(0),
         target: timedelta | None = timedelta(hours=6), digest: str | None = D) -> ChannelApproval:
    decisions = tuple(Decision(D, (g,), f"{g}-1", T + timedelta(minutes=5), True, T) for g in approved) + tuple(
        Decision(D, (g,), f"{g}-1", T + timedelta(minutes=5), False, T, "no") for g in rejected)
    record = ApprovalRecord(T, D, T, decisions)
    chains = [GroupView(g, "approver", (p(f"{g}-1"), p(f"{g}-2"), p(f"{g}-3")), record.current(g)) for g in QUORUM]
    groups = (*chains, GroupView("support", "fyi", (p("support-1"),)))
    return ChannelApproval("comms-email", "Email", None, "text" if digest else None, digest, record, groups, T + at,
                           W, T + target if target else None, QUORUM, 2, (), p("cmoc"), p("mpm"))


@pytest.mark.parametrize(
    ("approved", "at", "ready_by"),
    [
        ((), timedelta(0), ""),
        (QUORUM, timedelta(0), "all"),  # every approver group: ready at once
        (("security", "legal"), timedelta(hours=5, minutes=59), ""),  # 2 of 4 before the cut-off: not yet
        (("security", "legal"), timedelta(hours=6), "quorum"),  # at the cut-off the quorum clears it
        (("security",), timedelta(hours=7), ""),  # 1 of 4: blocked
    ],
)
def test_ready(approved: tuple[str, ...], at: timedelta, ready_by: str) -> None:
    assert view(approved, at=at).ready_by == ready_by


def test_the_quorum_text_names_the_missing_groups() -> None:
    assert view(("security", "legal"), at=timedelta(hours=6)).quorum_text() == \
        "cleared by quorum 2/4, missing: cs, ir"


def test_a_rejection_is_not_an_approval_and_nobody_is_chased_on_that_digest() -> None:
    v = view(("security", "legal", "cs"), ("ir",), at=timedelta(hours=1))
    assert not v.ready and [n.kind for n in approvals.notices(v, frozenset())] == []


@pytest.mark.parametrize(
    ("at", "kinds", "people"),
    [
        (timedelta(0), ["asked"], ["security-1", "legal-1", "cs-1", "ir-1"]),
        (timedelta(minutes=29), ["asked"], ["security-1", "legal-1", "cs-1", "ir-1"]),
        (timedelta(minutes=30), ["asked", "backup", "backup", "backup", "backup"],
         ["security-1", "legal-1", "cs-1", "ir-1", "security-2", "legal-2", "cs-2", "ir-2"]),
        (timedelta(hours=2), ["asked", "backup", "backup", "backup", "backup"],  # the chain ends at its last
         ["security-1", "legal-1", "cs-1", "ir-1", "security-3", "legal-3", "cs-3", "ir-3"]),
        (timedelta(hours=5, minutes=30), ["asked", "backup", "backup", "backup", "backup", "warn"], None),
        (timedelta(hours=6), ["asked", "backup", "backup", "backup", "backup", "blocked"], None),
    ],
)
def test_what_is_due_when_nobody_decides(at: timedelta, kinds: list[str], people: list[str] | None) -> None:
    due = approvals.notices(view(at=at), frozenset())
    assert [n.kind for n in due] == kinds
    if people is not None:
        assert [x.handle for n in due for x in n.people] == people


def test_each_notice_is_said_once() -> None:
    v = view(at=timedelta(minutes=31))
    said = frozenset(n.key for n in approvals.notices(v, frozenset()))
    assert approvals.notices(v, said) == []


@pytest.mark.parametrize(
    ("approved", "at", "next_at"),
    [
        ((), timedelta(0), T + W),  # the first window's end
        ((), timedelta(minutes=31), T + 2 * W),
        ((), timedelta(hours=1, minutes=1), T + timedelta(hours=5, minutes=30)),  # chains ended: the warning
        ((), timedelta(hours=5, minutes=31), T + timedelta(hours=6)),  # then the cut-off
        ((), timedelta(hours=6, minutes=1), None),  # nothing more is timed
        (QUORUM, timedelta(0), None),  # ready: nothing timed
    ],
)
def test_when_the_incident_needs_a_look(approved: tuple[str, ...], at: timedelta, next_at: datetime | None) -> None:
    assert approvals.next_time([view(approved, at=at)]) == next_at


def test_the_record_survives_the_signed_state() -> None:
    record = ApprovalRecord(T, D, T + W, (Decision(D, ("security", "legal"), "dana", T + W, True, T, ""),
                                          Decision(D, ("cs",), "carl", T + 2 * W, False, T, "too long")), ("0badf00d",))
    state = BotState(approvals={"comms-email": record})
    assert decode(encode(state)).approvals == {"comms-email": record}
    assert decode({**encode(state), "approvals": {"comms-email": {"digest": D}}}).approvals == {}  # malformed: dropped


def test_the_status_page_reads_only_an_approved_digest() -> None:
    got = approvals.approved_drafts([view(QUORUM), view(("security",))])
    assert got["comms-email"].approved is False  # the last view of the channel wins; one per channel in practice
    (one,) = approvals.approved_drafts([view(QUORUM)]).values()
    assert (one.digest, one.text, one.approved, one.ready_by) == (D, "text", True, "all")
    assert [d.by for d in one.approvals] == ["security-1", "legal-1", "cs-1", "ir-1"]
