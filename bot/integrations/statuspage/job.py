"""The status page job kind: what a GitLab reconcile hands to the status page, and the sender that posts it.

After a reconcile the GitLab worker asks :class:`StatusPagePlanner` to offer the one publish the incident calls
for (:func:`~.plan.plan_publish`, from the request in the integration's slot and the approved draft) to the
outbox: a store write, nothing else. :class:`StatusPageSender` runs the ``status_page`` kind on the job loop:
it records the attempt (``trying``) before the call, so that after a lost answer or a kill the next attempt
looks for the incident on the provider first; it records the answer (``sent`` with the provider's incident id,
or ``refused`` with its words), and queues the incident's GitLab job so its checklist row and status log say so.
An ambiguous search (two incidents with the bot's name or key) is dead at once, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.approvals import approved_drafts
from bot.core.outbound import OutboundFacts
from bot.core.policy import instance_of
from bot.integrations.statuspage.config import StatusPagePolicy
from bot.integrations.statuspage.facts import CHANNEL, NAME, recorded, split_key, status_page_facts
from bot.integrations.statuspage.plan import Action, Draft, incident_key, incident_name, plan_publish
from bot.integrations.statuspage.result import Ambiguous, Refused, Result, Sent, Unavailable
from bot.integrations.statuspage.safety import check_draft
from bot.jobloop import JobLoop, Sender, done, failed, retry_after
from bot.jobloop import Result as JobResult
from bot.lease import LeaseKeeper
from bot.redact import redact
from bot.store.base import Job, StoreError, WorkerStore

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Either adapter (:class:`~.statusio.StatusIo`, :class:`~.atlassian.Statuspage`)."""

    provider: str

    def publish(self, action: Action, *, resumed: bool = False) -> Result: ...

    def check(self) -> list[str]: ...


@dataclass(frozen=True)
class Offered:
    """One publish as the outbox holds it: the draft's text under ``<ref>:<kind>:<digest>``."""

    key: str
    target: str
    text: str
    summary: bool = False
    since: datetime | None = None


def wanted(policy: StatusPagePolicy, secret: bytes, desired: Any, observed: Any,
           items: list[Any]) -> Action | None:
    """Pure: the publish the incident calls for now, or None. Only a request the CMOC or SIMOC made (in the
    integration's slot), for the digest that is still the current approved draft of the status page child,
    on an incident carrying the impact label, with nothing unsafe in it."""
    slot = desired.state.slots.get(NAME) or {}
    request = slot.get("request")
    if not isinstance(request, dict):
        return None
    draft = approved_drafts(desired.approvals).get(CHANNEL)
    if draft is None or not draft.approved or not draft.text or not draft.digest \
            or draft.digest != request.get("digest"):
        return None
    incident = observed.incident
    if policy.impact_label not in incident.labels:
        return None
    instance = instance_of(incident.web_url)
    if check_draft(draft.text, gitlab_host=instance, allowed_hosts=policy.allowed_hosts):
        return None
    # The project's numeric id when GitLab gave it: the same whichever path or id a webhook or a sweep named.
    project = str(incident.project_id) if incident.project_id is not None else incident.ref.project
    ref = incident_key(secret, instance, project, incident.ref.iid)
    action = plan_publish(key=ref, stem=policy.name, draft=Draft(draft.digest, draft.text),
                          all_clear=bool(request.get("all_clear")), recorded=recorded(items))
    return None if action.kind == "nothing" else action


def requested_at(desired: Any) -> datetime | None:
    """When the last publish request was written (GitLab's time), from the integration's slot."""
    request = (desired.state.slots.get(NAME) or {}).get("request")
    try:
        return datetime.fromisoformat(request["at"]) if isinstance(request, dict) and request.get("at") else None
    except (TypeError, ValueError):
        return None


class StatusPagePlanner:
    """Offers a reconciled incident's publish to the outbox; used by the GitLab worker."""

    def __init__(self, policy: StatusPagePolicy, secret: bytes, provider: str) -> None:
        self.policy = policy
        self.secret = secret
        self.provider = provider

    def facts(self, store: WorkerStore, incident_key: str) -> OutboundFacts:
        try:
            return status_page_facts(store.items(NAME, incident_key))
        except StoreError as exc:
            log.warning("%s: cannot read its status page posts: %s", incident_key, redact(str(exc)))
            return OutboundFacts()

    def offer(self, store: WorkerStore, incident_key: str, desired: Any, observed: Any, now: datetime) -> bool:
        """Whether a status page job was queued. Never raises."""
        try:
            action = wanted(self.policy, self.secret, desired, observed, store.items(NAME, incident_key))
            if action is None:
                return False
            pending = store.offer(NAME, incident_key, [Offered(action.item_key, self.provider, action.text)], now)
            # Refused before this request was made (an in-band error since fixed): the request tries it again.
            asked = requested_at(desired)
            if asked is not None and store.revive_refused(NAME, incident_key, [action.item_key], asked):
                pending += 1
            if not pending:
                return False
            store.enqueue(incident_key, now, "status page", kind=NAME)
            return True
        except Exception as exc:  # the store: logged, the GitLab side goes on
            log.warning("%s: cannot plan its status page publish: %s", incident_key, redact(str(exc)))
            return False


class StatusPageSender(Sender):
    """Claims jobs of kind ``status_page`` only, and posts their incident's pending publish."""

    what = "status page sender"

    def __init__(self, store: WorkerStore, publisher: Callable[[], Publisher], policy: StatusPagePolicy, *,
                 worker_id: str, clock: Callable[[], datetime], lease: timedelta = timedelta(seconds=60),
                 metrics: Any = None, poll_interval: float = 0.5) -> None:
        self.store = store
        self._publisher_factory = publisher
        self._publisher: Publisher | None = None
        self.policy = policy
        self.worker_id = worker_id
        self.clock = clock
        self.lease = lease
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.after_call: Callable[[], None] | None = None
        """Runs between the provider's answer and its bookkeeping (a test's kill -9 point)."""

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = self._publisher_factory()
        return self._publisher

    def loop(self) -> JobLoop:
        return JobLoop(self.store, self._send, kind=NAME, worker_id=self.worker_id, clock=self.clock,
                       lease=self.lease, heartbeat=self.lease / 3, logger=log)

    def _send(self, job: Job, held: LeaseKeeper) -> JobResult:
        """The kind's handler: each pending publish of the incident, recorded ``trying`` before its call."""
        incident = job.incident_key
        told = False
        for item in self.store.pending(NAME, incident):
            if held.lost:
                break
            action = self._action(item, incident)
            resumed = item.state == "trying" or item.unsure
            self.store.mark_trying(NAME, [item.key], self.clock())
            result = self.publisher.publish(action, resumed=resumed)
            if self.after_call is not None:
                self.after_call()
            now = self.clock()
            if isinstance(result, Sent):
                self.store.mark_sent(NAME, item.key, result.remote_id, item.text, now)
                told = True
                log.info("%s: %s the status page incident %s with draft %s%s", incident,
                         action.kind, result.remote_id, action.digest, " (found again)" if result.found_again
                         else "")
            elif isinstance(result, Refused):
                self.store.mark_refused(NAME, item.key, result.reason, now)
                told = True
                log.warning("%s: the status page refused draft %s: %s", incident, action.digest, result.reason)
            elif isinstance(result, Ambiguous):
                self.store.mark_refused(NAME, item.key, f"stopped: {result.reason}", now)
                self.store.enqueue(incident, now, "status page stopped")
                return failed(redact(result.reason), None, kind="final")
            elif isinstance(result, Unavailable):
                if told:
                    self.store.enqueue(incident, now, "status page posted")
                return failed(redact(result.reason), retry_after(result.retry_after))
        if told:
            self.store.enqueue(incident, self.clock(), "status page posted")
        return done()

    def _action(self, item: Any, incident: str) -> Action:
        """The action an outbox item stands for, with the provider incident the outbox knows (if any)."""
        ref, kind, digest = split_key(item.key)
        known = recorded(self.store.items(NAME, incident))
        return Action(kind, "", item.key, ref, incident_name(self.policy.name, ref),  # type: ignore[arg-type]
                      known.remote_id, digest, item.text)
