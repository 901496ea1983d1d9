"""Sign-off of the channels' drafts, bound to the exact text: who may decide, what is ready, what is due. Pure.

A channel the policy's approval matrix names (``approvals.matrix``) is signed off on its child's draft
(``bot.core.drafts``): each ``approver`` group approves the current digest, a member of its chain at a time (the
primary first; one backup more is mentioned per ``window`` the group stays silent). An edit that changes the
digest voids the approvals of the old one. The draft is ready when every approver group approved the current
digest, or, from the cut-off (``target`` per severity, from the draft's first appearance), when the ``quorum``
of groups did; then the child gets ``ready_label``. The bot never sends anything itself.

Everything is recorded in the bot's signed state (``ApprovalRecord``): the draft's first appearance, the digest
last read and since when, each decision with its digest, when it was asked and when decided. The notices
(asked, backup mentioned, CMOC warned, cut-off, ready, voided) are keyed so each is said once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.config import Config, Severity
from bot.core import drafts
from bot.core.approvalrecords import ApprovalRecord, Decision
from bot.core.commands import Command, Echo, Reply, Verdict, channel_names
from bot.core.model import Child, Person

WARN_BEFORE = timedelta(minutes=30)
"""How long before the cut-off the CMOC is warned of a channel not cleared yet."""
MAX_REASON = 300

Resolve = Callable[[str], Person]
"""A chain member (``role:…``, ``team:…`` or a username) as a person, with the role holders of now."""


def person(member: str, resolve: Resolve) -> Person:
    if ":" in member:
        return resolve(member)
    return Person(f"user:{member}", member, member, member)


def is_member(author: str, p: Person) -> bool:
    names = {n.lower() for n in (p.handle, p.assignee) if n}
    return author.lower() in names


@dataclass(frozen=True)
class GroupView:
    """One group of the channel's row: ``approver`` or ``fyi``, its chain as people, its decision on the current
    digest (None: none yet)."""

    id: str
    part: str
    chain: tuple[Person, ...]
    decision: Decision | None = None

    @property
    def approved(self) -> bool:
        return self.decision is not None and self.decision.approve


@dataclass(frozen=True)
class ChannelApproval:
    """A channel the matrix names, as it stands at ``now``."""

    channel: str
    title: str
    child: Child | None
    draft: str | None
    digest: str | None
    record: ApprovalRecord | None  # as recorded; its decisions count only when its digest is ``digest``
    groups: tuple[GroupView, ...]
    now: datetime
    window: timedelta
    target: datetime | None = None  # the cut-off: the draft's first appearance plus the severity's target
    quorum_of: tuple[str, ...] = ()
    quorum_at_least: int = 0
    findings: tuple[str, ...] = ()
    cmoc: Person | None = None
    dri: Person | None = None

    @property
    def approvers(self) -> tuple[GroupView, ...]:
        return tuple(g for g in self.groups if g.part == "approver")

    @property
    def fyi(self) -> tuple[GroupView, ...]:
        return tuple(g for g in self.groups if g.part == "fyi")

    @property
    def all_approved(self) -> bool:
        return self.digest is not None and all(g.approved for g in self.approvers)

    @property
    def cut_off(self) -> bool:
        return self.target is not None and self.now >= self.target

    @property
    def quorum(self) -> tuple[int, list[str]]:
        """How many of the quorum's groups approved the current digest, and which did not."""
        by_id = {g.id: g for g in self.groups}
        approved = [gid for gid in self.quorum_of if gid in by_id and by_id[gid].approved]
        return len(approved), [gid for gid in self.quorum_of if gid not in approved]

    @property
    def quorum_met(self) -> bool:
        return bool(self.quorum_of) and self.digest is not None and self.quorum[0] >= self.quorum_at_least

    @property
    def ready_by(self) -> str:
        """``all`` (every approver group), ``quorum`` (at the cut-off), or empty: not ready."""
        if self.all_approved:
            return "all"
        if self.cut_off and self.quorum_met:
            return "quorum"
        return ""

    @property
    def ready(self) -> bool:
        return bool(self.ready_by)

    def quorum_text(self) -> str:
        count, missing = self.quorum
        return f"cleared by quorum {count}/{len(self.quorum_of)}, missing: {', '.join(missing) or 'none'}"

    def waiting(self) -> list[GroupView]:
        return [g for g in self.approvers if not g.approved]

    def asked_index(self, group: GroupView, at: datetime | None = None) -> int:
        """Which member of the group's chain is asked at ``at`` (default now): one more per window without a
        decision, the last one staying asked."""
        if self.record is None or not group.chain:
            return 0
        passed = int(((at or self.now) - self.record.since) / self.window)
        return max(0, min(passed, len(group.chain) - 1))


# ---- reading the drafts -----------------------------------------------------------------------------------


def track(records: Mapping[str, ApprovalRecord], children: Mapping[str, Child], cfg: Config,
          now: datetime) -> dict[str, ApprovalRecord]:
    """The records after reading the drafts now: a draft seen for the first time starts its record; a changed
    digest starts a new round (``since``), and the old digest is listed as voided when it had approvals."""
    out = dict(records)
    for channel in cfg.approvals.matrix:
        child = children.get(channel)
        text = drafts.draft_of(child.issue.description) if child is not None else None
        if text is None:
            continue
        digest = drafts.digest(text)
        old = out.get(channel)
        if old is None:
            out[channel] = ApprovalRecord(now, digest, now)
        elif old.digest != digest:
            had = any(d.digest == old.digest and d.approve for d in old.decisions)
            out[channel] = replace(old, digest=digest, since=now,
                                   voided=(*old.voided, old.digest) if had else old.voided)
    return out


def views(records: Mapping[str, ApprovalRecord], children: Mapping[str, Child], cfg: Config, now: datetime,
          severity: Severity, resolve: Resolve, selected: Collection[str] = ()) -> tuple[ChannelApproval, ...]:
    """Each channel the matrix names whose label is ``selected`` (on the incident) or whose child exists, in the
    policy's channel order."""
    a = cfg.approvals
    out = []
    for ch in cfg.channels:
        row = a.matrix.get(ch.label)
        if not row:
            continue
        child = children.get(ch.label)
        if child is None and ch.label not in selected:
            continue
        record = records.get(ch.label)
        text = drafts.draft_of(child.issue.description) if child is not None else None
        digest = drafts.digest(text) if text is not None else None
        # Decisions count only for the digest of the draft as it reads now.
        current = record if record is not None and record.digest == digest else None
        groups = tuple(
            GroupView(gid, part, tuple(person(m, resolve) for m in a.groups.get(gid, [])),
                      current.current(gid) if current is not None else None)
            for gid, part in row.items()
        )
        span = a.target.get(severity)
        target = record.first_seen + span if record is not None and span is not None else None
        findings = tuple(drafts.email_findings(text)) if text is not None and ch.label in a.customer_email else ()
        out.append(ChannelApproval(
            ch.label, ch.title, child, text, digest, record, groups, now, a.window, target,
            tuple(a.quorum.of) if a.quorum else (), a.quorum.at_least if a.quorum else 0, findings,
            resolve("role:cmoc"), resolve(ch.assignee),
        ))
    return tuple(out)


# ---- the commands --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalContext:
    """What ``approve`` and ``reject`` are judged against: each channel as it stands, and the records so far
    (with earlier commands of the same run)."""

    channels: Mapping[str, ChannelApproval] = field(default_factory=dict)
    records: Mapping[str, ApprovalRecord] = field(default_factory=dict)


def judge(cmd: Command, cfg: Config, ctx: ApprovalContext) -> Verdict:
    """``approve CHANNEL [DIGEST]`` / ``reject CHANNEL [DIGEST] REASON``: counts only from a member of a chain the
    matrix names for the channel, and only for the current digest."""
    rejecting = cmd.name == "reject"
    usage = f"usage: {cmd.name} CHANNEL [DIGEST]{' REASON' if rejecting else ''}"
    names = {k: v for k, v in channel_names(cfg).items() if v in cfg.approvals.matrix}
    listing = ", ".join(sorted({v for v in names.values()})) or "none"
    if not cmd.args:
        return Verdict(cmd, False, f"{usage}; channels signed off: {listing}")
    wanted = cmd.args[0].lower().lstrip("~")
    label = names.get(wanted)
    if label is None:
        if wanted in channel_names(cfg):
            return Verdict(cmd, False, Reply(Echo(cmd.args[0]), " needs no sign-off in the policy (approvals.matrix)"))
        close = difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        return Verdict(cmd, False, Reply("unknown channel ", Echo(cmd.args[0]), f" ({hint}signed off: {listing})"))
    view = ctx.channels.get(label)
    if view is None or view.child is None:
        return Verdict(cmd, False, f"{label} has no issue yet: nothing to sign off")
    groups = [g.id for g in view.groups if any(is_member(cmd.note.author, p) for p in g.chain)]
    if not groups:
        who = "; ".join(f"{g.id}: " + ", ".join(_name(p) for p in g.chain) for g in view.groups if g.chain)
        return Verdict(cmd, False, f"refused: only a member of a group the policy names for {label} may decide ({who})")
    rest = list(cmd.args[1:])
    given = rest.pop(0).lower() if rest and drafts.is_digest(rest[0]) else None
    if view.digest is None:
        return Verdict(cmd, False, f"{label} has no draft yet: write it under a '## Draft' heading in its issue")
    if given is not None and given != view.digest:
        return Verdict(cmd, False, f"refused: draft {given} is no longer current; the current draft of {label} is "
                                   f"{view.digest} ({cmd.name} {label} {view.digest})")
    reason = " ".join(rest)
    if rejecting and not reason:
        return Verdict(cmd, False, f"{usage}: say what must change")
    if len(reason) > MAX_REASON:
        return Verdict(cmd, False, f"at most {MAX_REASON} characters of reason, please")
    if cmd.note.created_at is None:
        return Verdict(cmd, False, "cannot tell when the command was written")
    record = ctx.records.get(label) or view.record
    if record is None or record.digest != view.digest:  # ``track`` runs before the commands: never
        return Verdict(cmd, False, f"{label}: the draft could not be read; try again")
    decision = Decision(view.digest, tuple(groups), cmd.note.author, cmd.note.created_at, not rejecting,
                        record.since, reason)
    new = replace(record, decisions=(*record.decisions, decision))
    bound = "" if given else " (bound to the draft as read now)"
    parts: list[str | Echo] = [f"{label}: draft {view.digest}{bound} {'rejected' if rejecting else 'approved'} by ",
                               Echo(cmd.note.author), f" for {', '.join(groups)}"]
    if reason:
        parts += [": ", Echo(reason)]
    after = _with(view, new)
    if rejecting:
        parts.append(". The DRI revises the draft; a new draft is asked for again")
    elif after.ready:
        parts.append(f". Ready: every approver group approved it; the issue gets {cfg.approvals.ready_label}")
    else:
        parts.append(f". Still waiting for: {', '.join(g.id for g in after.waiting())}")
    if view.findings:  # they quote the draft (a link, a tag): echoed, never as the bot's own words
        parts.append(". Check before sending: ")
        for n, finding in enumerate(view.findings):
            parts += (["; "] if n else []) + [Echo(finding)]
    return Verdict(cmd, True, Reply(*parts), approval=(label, new))


def _with(view: ChannelApproval, record: ApprovalRecord) -> ChannelApproval:
    return replace(view, record=record,
                   groups=tuple(replace(g, decision=record.current(g.id)) for g in view.groups))


def _name(p: Person) -> str:
    return f"@{p.handle}" if p.handle else f"{p.name} (nobody)"


# ---- what is due ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """Something to say once on the child (and in the status log): ``kind`` is ``asked``, ``backup``, ``warn``,
    ``blocked``, ``ready`` or ``voided``; ``people`` are mentioned."""

    key: str
    kind: str
    channel: ChannelApproval
    people: tuple[Person, ...] = ()
    groups: tuple[str, ...] = ()
    digest: str = ""


def notices(view: ChannelApproval, said: frozenset[str]) -> list[Notice]:
    """What is due now for one channel and not said yet (``said``: the keys logged or noted on the child)."""
    out: list[Notice] = []
    record, ch = view.record, view.channel
    for old in record.voided if record is not None else ():
        out.append(Notice(f"approval:voided:{ch}:{old}", "voided", view, digest=old))
    if record is None or view.digest is None:
        return [n for n in out if n.key not in said]
    d = view.digest
    if view.ready:
        fyi = tuple(g.chain[0] for g in view.fyi if g.chain)
        out.append(Notice(f"approval:ready:{ch}:{d}", "ready", view, (*fyi, *(p for p in [view.dri] if p)), digest=d))
        return [n for n in out if n.key not in said]
    waiting = view.waiting()
    if not any(g.decision is not None for g in waiting):
        asked = tuple(g.chain[0] for g in waiting if g.chain)
        out.append(Notice(f"approval:asked:{ch}:{d}", "asked", view, asked, tuple(g.id for g in waiting), d))
    for g in waiting:
        if g.decision is not None:  # rejected: the DRI revises; nobody else is chased on this digest
            continue
        k = view.asked_index(g)
        if k > 0:
            out.append(Notice(f"approval:backup:{ch}:{d}:{g.id}:{k}", "backup", view, (g.chain[k],), (g.id,), d))
    if view.target is not None and view.cmoc is not None:
        if view.cut_off:
            out.append(Notice(f"approval:blocked:{ch}:{d}", "blocked", view, (view.cmoc,), digest=d))
        elif view.now >= view.target - WARN_BEFORE:
            out.append(Notice(f"approval:warn:{ch}", "warn", view, (view.cmoc,), digest=d))
    return [n for n in out if n.key not in said]


def next_time(items: Sequence[ChannelApproval]) -> datetime | None:
    """When a channel next needs a look without any webhook: a window's end, the CMOC's warning, the cut-off."""
    times: list[datetime] = []
    for v in items:
        if v.record is None or v.digest is None or v.ready:
            continue
        for g in v.waiting():
            if g.decision is None and len(g.chain) > 1:
                k = v.asked_index(g)
                if k < len(g.chain) - 1:
                    times.append(v.record.since + v.window * (k + 1))
        if v.target is not None:
            times += [t for t in (v.target - WARN_BEFORE, v.target) if t > v.now]
    return min(times, default=None)


# ---- for the status page: approved text only -------------------------------------------------------------


@dataclass(frozen=True)
class ApprovedDraft:
    """One channel's draft as it may be published: the current digest and text, and whether that exact digest
    is ready (and by whom, when)."""

    channel: str
    digest: str | None
    text: str | None
    approved: bool
    ready_by: str
    approvals: tuple[Decision, ...]


def approved_drafts(items: Sequence[ChannelApproval]) -> dict[str, ApprovedDraft]:
    """Per channel label: the current digest, the draft text and whether that digest is approved (ready), with
    the approving decisions. ``items`` is ``Desired.approvals``."""
    out = {}
    for v in items:
        decisions = tuple(g.decision for g in v.approvers if g.decision is not None and g.decision.approve)
        out[v.channel] = ApprovedDraft(v.channel, v.digest, v.draft, v.ready, v.ready_by, decisions)
    return out
