"""The incident's GitLab timeline: the bot's facts as timeline events, each exactly once. Pure.

GitLab shows an incident's timeline from timeline events, which only its GraphQL API writes
(``timelineEventCreate``: gitlabhq ``app/graphql/mutations/incident_management/timeline_event/create.rb``).
What was checked in GitLab's source, and what follows for the bot:

- ``app/models/incident_management/timeline_event.rb``: ``note`` is required and at most 10,000 characters;
  it is rendered by ``lib/banzai/pipeline/incident_management/timeline_event_pipeline.rb`` (plain Markdown,
  references, a sanitiser allowing only ``p b i strong em pre code a img``), so an HTML comment is not shown,
  but the ``note`` field of ``TimelineEventType`` returns the text as written. The bot's key rides in the note
  as a signed marker (``bot.text.markers``) that readers of the timeline do not see and the bot reads back.
- ``TimelineEventType`` has an ``author``: an event counts as the bot's only when its author is the bot's user
  and its marker verifies for this incident. Creating events needs ``admin_incident_management_timeline_event``
  (``app/policies/issuable_policy.rb``: ``can?(:read_issue) & can?(:developer_access)``, the Developer role), so
  Guests and Reporters cannot write any; a Developer who copies the text is still not the bot.
- ``app/services/incident_management/timeline_events/create_service.rb``: tag names must exist in the project,
  except the predefined ones (``TimelineEventTag::PREDEFINED_TAGS``), which GitLab creates on first use. The bot
  uses only those (``PREDEFINED_TAGS`` here).
- The service does not check the issue's type, but GitLab shows the timeline only on incidents (and the
  ``/timeline`` quick action requires ``work_item_type.incident?``): the bot writes events only there.

A new kind of fact is one more function in ``SOURCES``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.config import Config
from bot.core.model import Desired, Issue, Observed
from bot.core.state import TRUSTED, scope_of
from bot.text.escape import escape_inline
from bot.text.markers import StateKey, marker_spans, signed_marker, verify

#: The marker kind in the bot's timeline events.
KIND = "timeline"
#: ``IncidentManagement::TimelineEvent`` validates ``note`` to at most this many characters.
MAX_NOTE_CHARS = 10_000
#: The tags every project has (GitLab creates them on first use); any other must be created first.
START, IMPACT_DETECTED, RESPONSE_INITIATED = "Start time", "Impact detected", "Response initiated"
IMPACT_MITIGATED, CAUSE_IDENTIFIED, END = "Impact mitigated", "Cause identified", "End time"
PREDEFINED_TAGS = (START, IMPACT_DETECTED, RESPONSE_INITIATED, IMPACT_MITIGATED, CAUSE_IDENTIFIED, END)


@dataclass(frozen=True)
class Fact:
    """One thing that happened, as one timeline event. ``key`` is stable: the same fact on every run."""

    key: str
    occurred_at: datetime
    text: str  # safe markdown: values from GitLab escaped
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Event:
    """A timeline event as GitLab lists it."""

    id: str
    author: str
    note: str
    occurred_at: datetime | None = None


def applies(incident: Issue, cfg: Config) -> bool:
    """Whether the bot keeps this issue's timeline: the setting is on and the issue is a GitLab incident."""
    return cfg.timeline.enabled and incident.issue_type == "incident"


# ---- the facts -------------------------------------------------------------------------------------

FactSource = Callable[[Observed, Desired, Config, datetime], Iterable[Fact]]


def _declared(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    when = observed.incident.created_at or now
    yield Fact("declared", when, f"Incident declared: {desired.severity.name.lower()} severity", (START,))


def _roles(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    for rid, user in sorted(desired.state.roles.items()):
        role = next((r for r_id, r in cfg.roles.items() if r_id == rid), None)
        name = role.name if role else rid.upper()
        text = f"{escape_inline(name)}: {escape_inline(user)}"
        yield Fact(f"role:{rid}:{user.lower()}", now, text)


def _engagements(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    began = sorted(desired.state.began.items(), key=lambda kv: (kv[1], kv[0]))
    names = {e.id: e.name for e in desired.engagements}
    for n, (eid, when) in enumerate(began):
        tags = (RESPONSE_INITIATED,) if n == 0 else ()
        yield Fact(f"engaged:{eid}", when, f"Engaged: {escape_inline(names.get(eid, eid))}", tags)


def _children(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    for channel, child in sorted(observed.children.items()):
        ref = f"{escape_inline(channel)} (child issue {child.iid})"
        yield Fact(f"child:{channel}:opened", child.issue.created_at or now, f"Opened the communication {ref}")
        if not child.issue.is_open:
            yield Fact(f"child:{channel}:sent", child.issue.closed_at or now, f"Sent the communication {ref}")


def _sign_off(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    """Each approval or rejection of a channel's draft that counted (who, which digest, for which groups), and
    each draft ready to send: when its last needed approval came in, or at the cut-off for a quorum."""
    for view in desired.approvals:
        ch = escape_inline(view.channel)
        for d in view.record.decisions if view.record is not None else ():
            verb = "Approved" if d.approve else "Rejected"
            groups = ", ".join(escape_inline(g) for g in d.groups)
            yield Fact(f"approval:{view.channel}:{d.digest}:{d.by.lower()}:{'approve' if d.approve else 'reject'}",
                       d.at, f"{verb} the draft of {ch} (digest {d.digest}): {escape_inline(d.by)} for {groups}")
        if view.ready and view.digest is not None:
            # Ready when the last approval it needed came in, or at the cut-off when the quorum cleared it.
            decided = [g.decision.at for g in view.approvers if g.decision is not None and g.approved]
            when = max(decided) if view.ready_by == "all" and decided else view.target or now
            yield Fact(f"ready:{view.channel}:{view.digest}", when,
                       f"The draft of {ch} (digest {view.digest}) may be sent")


def _clock_decisions(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    """What the clocks' owners recorded: a clock started (at the time they gave), each stage filed with its
    reference, a clock not required with the reason. The owner's words are escaped."""
    for view in desired.clocks:
        cid, name, rec = view.clock.id, escape_inline(view.clock.name), view.record
        if rec.not_required:
            yield Fact(f"clock:{cid}:not-required", rec.at or now,
                       f"Regulatory clock not required: {name} ({escape_inline(rec.by)}: "
                       f"{escape_inline(rec.not_required)})")
        if rec.started is not None:
            by = escape_inline(rec.by)
            yield Fact(f"clock:{cid}:started", rec.started, f"Regulatory clock started: {name} ({by})")
        stages = {stage.stage.id: stage.stage.name for stage in view.stages}
        for filing in rec.filings:
            stage = escape_inline(stages.get(filing.stage, filing.stage))
            yield Fact(f"clock:{cid}:filed:{filing.stage}", filing.at,
                       f"Filed: {stage} under {name}, reference {escape_inline(filing.reference)}")


def _published(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    """Each public post an outbound integration made (``OutboundFacts.published``), once."""
    for p in observed.outbound.published:
        yield Fact(f"published:{p.integration}:{p.key}", p.at, f"{escape_inline(p.label)}: {escape_inline(p.what)}")


def _all_clear(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    if desired.all_clear:
        yield Fact("all-clear", now, "All clear", (END,))


def _outbound(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> Iterable[Fact]:
    """What the outbound integrations did or saw (a page, its acknowledgement): one event each."""
    for h in observed.outbound.happened:
        yield Fact(f"outbound:{h.key}", h.at, h.text)


#: Where facts come from, in order. A new kind of fact is one more source.
SOURCES: tuple[FactSource, ...] = (
    _declared, _roles, _engagements, _children, _sign_off, _clock_decisions, _published, _outbound, _all_clear,
)


def facts(observed: Observed, desired: Desired, cfg: Config, now: datetime) -> list[Fact]:
    """Every fact of the incident so far, each key once."""
    out: dict[str, Fact] = {}
    for source in SOURCES:
        for fact in source(observed, desired, cfg, now):
            out.setdefault(fact.key, fact)
    return list(out.values())


def digest(found: Iterable[Fact]) -> str:
    """A short digest of the facts' keys: recorded in the signed state once all of them are in GitLab."""
    return hashlib.sha256("\n".join(sorted(f.key for f in found)).encode()).hexdigest()[:16]


# ---- found again -----------------------------------------------------------------------------------


def note(fact: Fact, key: StateKey, incident: Issue) -> str:
    """The event's note: the fact's text, then its key in a signed marker bound to this incident."""
    mark = signed_marker(KIND, key, scope_of(incident), k=fact.key)
    return f"{fact.text[: MAX_NOTE_CHARS - len(mark) - 2]}\n\n{mark}"


def mirrored(events: Sequence[Event], bot: str, key: StateKey, incident: Issue) -> set[str]:
    """The keys of the facts already in the timeline: events by the bot's user with a marker it signed for this
    incident. Anyone else's event, or one whose marker does not verify, is not the bot's."""
    scope = scope_of(incident)
    keys: set[str] = set()
    for event in events:
        if event.author.lower() != bot.lower():
            continue
        for _, _, m in marker_spans(event.note):
            k = m.fields.get("k")
            if m.kind == KIND and isinstance(k, str) and verify(m, key, scope) in TRUSTED:
                keys.add(k)
    return keys


def missing(all_facts: Sequence[Fact], found: set[str]) -> list[Fact]:
    """The facts not in the timeline yet, oldest first."""
    return sorted((f for f in all_facts if f.key not in found), key=lambda f: f.occurred_at)
