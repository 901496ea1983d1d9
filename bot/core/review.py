"""The communications review: how long each step of the incident's communications took. Pure.

Every metric is a duration between two events read from GitLab or from the bot's own signed records: the
incident's and its children's times, the comments that first recorded the bot's status log keys
(``Observed.logged_at``), the signed state (roles, engagements' starts, cadence requests, snoozes, clocks) and
people's status updates. A value the facts cannot give is ``None`` with the reason, never a guess.

The JSON form (``as_json``) is versioned by ``SCHEMA``; docs/review.md documents it. Facts this version does not
record (pages and acknowledgements) are ``None`` metrics saying so; a new kind of fact is one more function in
``SECTIONS``. Public posts an outbound integration made (``OutboundFacts.published``) count as external
communications, and each is a metric of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.config import Config, Severity
from bot.core import order
from bot.core.model import Desired, LabelChange, Note, Observed
from bot.text.durations import duration as span

SCHEMA = 1
#: The plan's target from scoping to the first external communication for a critical incident.
FIRST_EXTERNAL_TARGET = timedelta(hours=6)
#: The status log key of the bot's first entry on an incident: the plan engaged, its roles named.
ENGAGED = "engaged"
SCOPED_LABEL = "comms::scoped"
#: The signed log key of the review's comment: it is found again by it and edited in place.
REVIEW_KEY = "review"


@dataclass(frozen=True)
class Event:
    """One end of a metric: what happened, when, and a link to where GitLab shows it."""

    what: str
    at: datetime
    url: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"event": self.what, "at": _iso(self.at), "url": self.url}


@dataclass(frozen=True)
class Metric:
    """A duration between two events; ``seconds`` is None (and ``note`` says why) when the facts cannot give it."""

    name: str
    start: Event | None
    end: Event | None
    note: str = ""

    @property
    def seconds(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return int((self.end.at - self.start.at).total_seconds())

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": self.seconds,
            "from": self.start.as_json() if self.start else None,
            "to": self.end.as_json() if self.end else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class Review:
    incident: str
    confidential: bool
    metrics: tuple[Metric, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "incident": self.incident,
            "confidential": self.confidential,
            "metrics": [m.as_json() for m in self.metrics],
        }


@dataclass(frozen=True)
class Facts:
    """What the review reads: the incident as observed and planned, the config, and the time it is made."""

    observed: Observed
    desired: Desired
    cfg: Config
    labels: Sequence[LabelChange] | None = None  # the incident's label events; None: not read


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _note_url(f: Facts, note: Note) -> str:
    base = f.observed.incident.web_url
    return f"{base}#note_{note.id}" if base else ""


def _logged(f: Facts, key: str, what: str) -> Event | None:
    note = f.observed.logged_at.get(key)
    if note is None or note.created_at is None:
        return None
    return Event(what, note.created_at, _note_url(f, note))


def _declared(f: Facts) -> Event | None:
    inc = f.observed.incident
    return Event("incident declared (issue created)", inc.created_at, inc.web_url) if inc.created_at else None


def _why(start: Event | None, end: Event | None, missing_start: str, missing_end: str) -> str:
    return missing_start if start is None else missing_end if end is None else ""


# ---- sections -----------------------------------------------------------------------------------------
def roles(f: Facts) -> Iterator[Metric]:
    declared = _declared(f)
    named = _logged(f, ENGAGED, "plan engaged and roles named (the bot's first status log entry)")
    no_declared = "the incident's creation time is not known"
    no_named = "the bot has not recorded engaging the plan"
    seoc = f.desired.roles.get("seoc")
    handle = (seoc.handle or "").lower() if seoc else ""
    assigned = handle and handle in {a.lower() for a in f.observed.incident.assignees}
    if assigned:
        yield Metric("declared_to_seoc_assigned", declared, named,
                     "the SEOC is named and assigned to the incident with the plan's first status log entry"
                     if named else _why(declared, named, no_declared, no_named))
    else:
        yield Metric("declared_to_seoc_assigned", declared, None,
                     "the SEOC is not the incident's assignee in GitLab" if seoc else "no SEOC is named")
    yield Metric("declared_to_roles_named", declared, named, _why(declared, named, no_declared, no_named))


def _label_added(f: Facts, label: str) -> Event | None:
    """When ``label`` was first added to the incident, by whom (GitLab's label events)."""
    added = next((c for c in f.labels or () if c.label == label and c.action == "add"), None)
    if added is None:
        return None
    by = f" by {added.by}" if added.by else ""
    return Event(f"{label} added{by}", added.at, f.observed.incident.web_url)


def scoping(f: Facts) -> Iterator[Metric]:
    declared = _declared(f)
    scoped = _label_added(f, SCOPED_LABEL)
    if f.labels is None:
        note = f"when {SCOPED_LABEL} was added is not known: the incident's label events were not read"
    elif scoped is None:
        note = f"{SCOPED_LABEL} was never added to the incident"
    else:
        note = _why(declared, scoped, "the incident's creation time is not known", "")
    yield Metric("declared_to_scoped", declared, scoped, note)
    first = _first_external(f)
    critical = f.desired.severity >= Severity.CRITICAL
    target = f"; the plan's target for a critical incident is {span(FIRST_EXTERNAL_TARGET)}" if critical else ""
    if first is None:
        note = "no child is closed yet (no external communication sent)"
    elif scoped is not None and critical:
        note = "met" if first.at - scoped.at <= FIRST_EXTERNAL_TARGET else "missed"
    yield Metric("scoped_to_first_external_comms", scoped, first, f"{note}{target}" if note else target[2:])


def _first_external(f: Facts) -> Event | None:
    """The first external communication: a child closed (sent), or a public post an integration made."""
    closed = [c for c in f.observed.children.values() if not c.issue.is_open and c.issue.closed_at]
    events = [Event(f"{c.channel} sent (child closed)", c.issue.closed_at, c.issue.web_url)
              for c in closed if c.issue.closed_at is not None]
    events += [Event(f"{p.label}: {p.what}", p.at) for p in f.observed.outbound.published]
    return min(events, key=lambda e: e.at) if events else None


def published(f: Facts) -> Iterator[Metric]:
    """Each public post an outbound integration made, in order, from the incident's scoping (or declaration)."""
    posts = sorted(f.observed.outbound.published, key=lambda p: (p.at, p.key))
    scoped = _label_added(f, SCOPED_LABEL)
    start = scoped or _declared(f)
    counts: dict[str, int] = {}
    for p in posts:
        counts[p.integration] = counts.get(p.integration, 0) + 1
        n = counts[p.integration]
        name = f"{p.integration}:first_post" if n == 1 else f"{p.integration}:post:{n}"
        yield Metric(name, start, Event(f"{p.label}: {p.what}", p.at),
                     "" if start else "when the incident was scoped or declared is not known")


def channels(f: Facts) -> Iterator[Metric]:
    for label, child in sorted(f.observed.children.items(), key=lambda kv: kv[1].iid):
        issue = child.issue
        opened = Event(f"{label} child opened", issue.created_at, issue.web_url) if issue.created_at else None
        sent = (
            Event(f"{label} sent (child closed)", issue.closed_at, issue.web_url)
            if not issue.is_open and issue.closed_at
            else None
        )
        yield Metric(f"channel:{label}:opened_to_sent", opened, sent,
                     _why(opened, sent, "the child's creation time is not known", "the child is still open"))
        yield _draft_to_approved(f, label, issue.web_url)


def _draft_to_approved(f: Facts, label: str, url: str) -> Metric:
    """From the draft's first appearance to the first time the bot said a draft of the channel was ready."""
    name = f"channel:{label}:draft_to_approved"
    if label not in f.cfg.approvals.matrix:
        return Metric(name, None, None, "the policy asks no sign-off of this channel (approvals.matrix)")
    record = f.desired.state.approvals.get(label)
    if record is None:
        return Metric(name, None, None, "no draft was recorded (a '## Draft' section in the child)")
    start = Event(f"{label} draft first read", record.first_seen, url)
    ready = sorted((note.created_at, key) for key, note in f.observed.logged_at.items()
                   if key.startswith(f"approval:ready:{label}:") and note.created_at is not None)
    if not ready:
        return Metric(name, start, None, "not approved yet")
    at, key = ready[0]
    note = f.observed.logged_at[key]
    return Metric(name, start, Event(f"{label} draft {key.rsplit(':', 1)[1]} ready", at, _note_url(f, note)))


def approvals(f: Facts) -> Iterator[Metric]:
    """Each decision recorded: from when its digest was put to the approvers to the decision, with the windows
    exceeded (each one a backup mentioned, while the chain had one)."""
    window = f.cfg.approvals.window
    found = False
    for label, record in sorted(f.desired.state.approvals.items()):
        for n, d in enumerate(record.decisions, 1):
            found = True
            chain = max((len(f.cfg.approvals.groups.get(g, [])) for g in d.groups), default=1)
            exceeded = int((d.at - d.asked) / window) if d.at > d.asked else 0
            what = "approved" if d.approve else "rejected"
            yield Metric(
                f"approval:{label}:{n}:asked_to_decided",
                Event(f"{label} draft {d.digest} asked of {', '.join(d.groups)}", d.asked),
                Event(f"{what} by {d.by}", d.at),
                f"{exceeded} window(s) exceeded, {min(exceeded, chain - 1)} backup(s) engaged",
            )
    if not found:
        yield Metric("approvals:asked_to_decided", None, None, "no approval decision was recorded")


def outbound(f: Facts) -> Iterator[Metric]:
    """The durations the outbound integrations measured (paged → acknowledged), null with the reason when
    they have not ended."""
    for s in f.observed.outbound.spans:
        end = Event(s.end, s.end_at) if s.end_at is not None else None
        yield Metric(s.name, Event(s.start, s.start_at), end, s.note)


def unpaged(f: Facts) -> Iterator[Metric]:
    """Without any page, one null metric saying so (a review read for paging times finds the answer)."""
    if not any(s.name.startswith("pages:") for s in f.observed.outbound.spans):
        yield Metric("pages:paged_to_acknowledged", None, None, "no page was sent for this incident")


def _updates(f: Facts) -> list[Note]:
    return sorted((n for n in f.observed.updates if n.created_at), key=lambda n: (n.created_at, n.id))


def engagements(f: Facts) -> Iterator[Metric]:
    """Per engagement with a cadence: the longest stretch without a status update, the reminders the bot posted
    for windows missed, and the snoozes and cadence changes that explain them."""
    state = f.observed.state
    updates = _updates(f)
    # Until the all clear the last stretch is still running: only the stretches that ended are measured, so the
    # review says the same on every look (and its comment is not edited for the time alone).
    clear = _logged(f, "all-clear", "all clear")
    for e in f.desired.engagements:
        if e.cadence is None:
            continue
        began = state.began.get(e.id)
        if began is None:
            yield Metric(f"engagement:{e.id}:longest_gap", None, None, "the engagement's start is not recorded")
            continue
        points = [Event(f"{e.name} engaged", began)] + [
            Event(f"status update by {n.author}", n.created_at, _note_url(f, n))
            for n in updates
            if n.created_at and began < n.created_at and (clear is None or n.created_at < clear.at)
        ] + ([clear] if clear else [])
        if len(points) < 2:
            yield Metric(f"engagement:{e.id}:longest_gap", points[0], None,
                         "no status update yet and no all clear: the first stretch is still running")
            continue
        start, end = max(itertools.pairwise(points), key=lambda p: p[1].at - p[0].at)
        missed = sorted(k for k in f.observed.logged if k.startswith(f"reminder:{e.id}:"))
        explain = [
            f"{len(points) - 1 - bool(clear)} status updates",
            f"{len(missed)} windows missed (reminders posted)",
            f"cadence {span(e.cadence)}",
        ]
        request = state.cadences.get(e.id)
        if request is not None:
            explain.append(f"cadence changed by {request.by} at {_iso(request.at)}")
        if state.snoozed_until is not None:
            explain.append(f"reminders snoozed until {_iso(state.snoozed_until)}")
        met = end.at - start.at <= e.cadence
        explain.insert(0, "cadence held" if met else "cadence missed")
        yield Metric(f"engagement:{e.id}:longest_gap", start, end, "; ".join(explain))


def order_rules(f: Facts) -> Iterator[Metric]:
    broken = {(b.rule.id, b.later.channel): b for b in order.breaches(f.desired, f.observed, f.cfg)}
    selected = {c.channel for c in f.desired.children}
    for rule in f.cfg.comms_order:
        if rule.channel not in selected:
            continue
        first = f.observed.children.get(rule.channel)
        for label in rule.before:
            later = f.observed.children.get(label)
            if later is None:
                continue
            a = first.issue if first and not first.issue.is_open else None
            b = later.issue if not later.issue.is_open else None
            start = Event(f"{rule.channel} sent", a.closed_at, a.web_url) if a and a.closed_at else None
            end = Event(f"{label} sent", b.closed_at, b.web_url) if b and b.closed_at else None
            if (rule.id, label) in broken:
                note = f"broken: {label} went out before {rule.channel}"
            elif end is None:
                note = f"kept so far: {label} is not sent yet"
            else:
                note = "kept"
            yield Metric(f"order:{rule.id}:{label}", start, end, note)


def clocks(f: Facts) -> Iterator[Metric]:
    """Each stage of each recorded clock: from its deadline back to its filing (its margin, negative when late)."""
    for view in f.desired.clocks:
        name = f"clock:{view.clock.id}"
        if view.stopped:
            yield Metric(name, None, None, f"not required: {view.record.not_required}")
            continue
        if view.problem:
            yield Metric(name, None, None, view.problem)
            continue
        for stage in view.stages:
            label = f"{name}:{stage.stage.id}:margin"
            if stage.deadline is None:
                yield Metric(label, None, None, "its deadline counts from a fix, which the bot is not told")
                continue
            got = stage.filed
            filed = Event(f"{stage.stage.name} filed ({got.reference})", got.at) if got else None
            due = Event(f"{stage.stage.name} due", stage.deadline)
            if filed is None:
                yield Metric(label, None, due, f"not filed yet: due {_iso(due.at)}")
            else:
                yield Metric(label, filed, due, "filed on time" if filed.at <= due.at else "filed late")


SECTIONS: tuple[Callable[[Facts], Iterable[Metric]], ...] = (
    roles,
    scoping,
    channels,
    engagements,
    order_rules,
    clocks,
    approvals,
    published,
    outbound,
    unpaged,
)


def review(
    observed: Observed, desired: Desired, cfg: Config, labels: Sequence[LabelChange] | None = None
) -> Review:
    """The communications review of one incident from what GitLab and the bot's records show; ``labels``, the
    incident's label events, oldest first (None: not read, the metrics that need them say so). It does not
    depend on the time it is made: the same facts give the same review."""
    facts = Facts(observed, desired, cfg, labels)
    inc = observed.incident
    name = f"{inc.project_path or inc.ref.project}#{inc.ref.iid}"
    return Review(name, inc.confidential, tuple(m for section in SECTIONS for m in section(facts)))


def duration(seconds: int | None) -> str:
    """A metric's value for people: ``2h 5m``, ``-1h`` for a negative one, ``—`` for none."""
    if seconds is None:
        return "—"
    return span(timedelta(seconds=seconds))


def lines(items: Sequence[Metric]) -> list[str]:
    """The metrics as plain text lines (the command line's form)."""
    out = []
    for m in items:
        value = duration(m.seconds)
        ends = f" ({m.start.what} → {m.end.what})" if m.start and m.end else ""
        out.append(f"{m.name}: {value}{ends}" + (f" — {m.note}" if m.note else ""))
    return out
