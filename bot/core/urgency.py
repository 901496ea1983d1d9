"""How urgent a job is: which work the queue serves first, and how long each may be kept waiting (pure).

A job's priority comes from what it is, decided when it is queued: at intake from the delivery (a
command, a new incident, its severity), when a reconcile asks to run again later (a reminder at its due
time), and for the sweep's resyncs (last). The queue serves the most urgent ready job first; waiting
raises a job's priority (:data:`AGING`), so a steady stream of urgent work never starves the rest.
"""

from __future__ import annotations

from datetime import timedelta
from enum import IntEnum

from bot.config import Config, Severity
from bot.core.events import Event, Ignored, IssueEvent
from bot.core.policy import severity_of
from bot.core.routing import addresses_bot, is_incident


class Priority(IntEnum):
    """How soon a job is served: a lower value first."""

    URGENT = 0
    """A person waits: a command addressed to the bot, a new (or newly escalated) critical incident."""
    HIGH = 1
    """A critical incident changed; a new high incident; a critical incident's reminder falls due."""
    ELEVATED = 2
    """A high incident changed; a new incident of lower severity; any other reminder falls due."""
    NORMAL = 3
    """Any other change of an incident, and work queued without a known reason."""
    BACKGROUND = 4
    """Resyncs the sweep queues (missed webhooks, an outage caught up on)."""


AGING: dict[Priority, timedelta] = {
    Priority.URGENT: timedelta(0),
    Priority.HIGH: timedelta(seconds=10),
    Priority.ELEVATED: timedelta(minutes=1),
    Priority.NORMAL: timedelta(minutes=3),
    Priority.BACKGROUND: timedelta(minutes=15),
}
"""How much later than an ``URGENT`` job that became ready at the same moment a job of each priority may be
served. The queue ranks a ready job by its ready time plus this: waiting raises its priority, so a job of
priority ``p`` goes before a job of a more urgent ``q`` that became ready more than ``AGING[p] - AGING[q]``
after it. A background job waits behind at most 15 minutes' worth of newer urgent work; nothing waits
forever."""


def clamp(priority: int) -> Priority:
    """A stored or passed priority as a :class:`Priority` (out-of-range values go to the nearest end)."""
    return Priority(min(max(int(priority), Priority.URGENT), Priority.BACKGROUND))


def _escalated(event: IssueEvent, severity: Severity, cfg: Config) -> bool:
    """The delivery made the issue an incident, or set the severity label it now has."""
    if cfg.labels.trigger in event.labels_added:
        return True
    return any(cfg.severity.labels.get(label) == severity for label in event.labels_added)


def intake_priority(event: Event, cfg: Config) -> Priority:
    """The priority of the work a delivery asks for (the receiver computes it from the parsed event).

    ===================================================  ========  ========  ==========
    delivery                                             critical  high      lower
    ===================================================  ========  ========  ==========
    a comment addressed to the bot (a command)           URGENT    URGENT    URGENT
    a new incident (opened, reopened, labelled as one),  URGENT    HIGH      ELEVATED
    or its severity label just set
    any other change or comment                          HIGH      ELEVATED  NORMAL
    ===================================================  ========  ========  ==========

    Severity is the incident's (:func:`bot.core.policy.severity_of`: its labels and its severity field).
    An event the bot ignores queues nothing; it is given ``NORMAL``.
    """
    if isinstance(event, Ignored):
        return Priority.NORMAL
    if isinstance(event, IssueEvent):
        severity = severity_of(event.issue, cfg)[0]
        new = event.action in ("open", "reopen") or _escalated(event, severity, cfg)
    else:
        if not event.system and event.author.lower() != cfg.bot.username.lower() and addresses_bot(event.body, cfg):
            return Priority.URGENT
        if event.issue is None or not is_incident(event.issue, cfg):
            return Priority.NORMAL
        severity = severity_of(event.issue, cfg)[0]
        new = False
    if severity >= Severity.CRITICAL:
        return Priority.URGENT if new else Priority.HIGH
    if severity >= Severity.HIGH:
        return Priority.HIGH if new else Priority.ELEVATED
    return Priority.ELEVATED if new else Priority.NORMAL


def requeue_priority(severity: Severity) -> Priority:
    """The priority of an incident's job when it falls due by time (a reminder, the end of a snooze)."""
    return Priority.HIGH if severity >= Severity.CRITICAL else Priority.ELEVATED


def child_priority() -> Priority:
    """The priority of an incident's job queued because one of its children changed (a person closed or
    reopened it): a change of the incident whose severity the child's event does not say."""
    return Priority.NORMAL
