"""The ``pagerduty`` job kind: what a GitLab reconcile offers to PagerDuty's outbox, and the sender.

After a reconcile the GitLab worker asks :class:`PagingPlanner` to offer the events the plan calls for (a
store write only) and, when any wait, to queue a ``pagerduty`` job for the incident. :class:`PagingSender`
runs that kind on the job loop: each event is recorded ``trying`` BEFORE its POST, then ``sent`` (``remote``
= the dedup key) or ``refused`` (a 4xx: dead at once, PagerDuty's errors in one line); 429/5xx fail the job to
be retried with back-off. A crash between the POST and its bookkeeping leaves the row ``trying``: the retry
sends the same trigger with the same ``dedup_key``, which PagerDuty folds into the open alert.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bot.config import Config
from bot.config.fields import Severity
from bot.core.model import Desired, Observed
from bot.core.outbound import OutboundFacts
from bot.integrations.pagerduty.adapter import Refused, Sent
from bot.integrations.pagerduty.command import page_command, requests_of
from bot.integrations.pagerduty.config import PagingConfig
from bot.integrations.pagerduty.facts import NAME, RESOLVE, paging_facts, recorded, split
from bot.integrations.pagerduty.plan import Facts, Page, State, pending, plan_pages
from bot.jobloop import JobLoop, Result, Sender, done, failed, retry_after
from bot.lease import LeaseKeeper
from bot.redact import redact
from bot.store.base import Job, OutboxItem, StoreError

log = logging.getLogger(__name__)

WITHDRAWN = "not sent: the incident was closed or all clear first"


class Row(NamedTuple):
    """An outbox row offered: ``summary`` False, so a row once offered is never rewritten."""

    key: str
    target: str
    text: str
    summary: bool = False


def incident_facts(instance_url: str, desired: Desired, observed: Observed) -> Facts:
    """What the paging plan reads of the reconciled incident (never its title or description)."""
    inc = observed.incident
    project_id = inc.project_id or (int(inc.ref.project) if inc.ref.project.isdigit() else 0)
    state: State = "closed" if desired.closed or not inc.is_open else "all-clear" if desired.all_clear else "open"
    severity = None if desired.severity == Severity.UNKNOWN else desired.severity.name.lower()
    channels = frozenset(inc.labels) | {c.channel for c in desired.children} | frozenset(observed.children)
    slot = desired.state.slots.get(NAME, {})
    return Facts(instance_url=instance_url, project_id=project_id, project_path=inc.project_path or inc.ref.project,
                 iid=inc.ref.iid, severity=severity, channels=frozenset(channels), confidential=inc.confidential,
                 web_url=inc.web_url, state=state, role_holders=dict(desired.state.roles),
                 requests=requests_of(slot))


def page_text(page: Page) -> str:
    """A page as its outbox row's text (what the sender rebuilds it from)."""
    data = asdict(page)
    data["links"] = [dict(link) for link in page.links]
    return json.dumps(data, sort_keys=True)


def page_of(text: str) -> Page:
    data = json.loads(text)
    data["links"] = tuple(data["links"])
    return Page(**data)


def row_of(page: Page) -> Row:
    key = page.key if page.action == "trigger" else f"{page.key}|{RESOLVE}"
    return Row(key, page.target, page_text(page))


class PagingPlanner:
    """Offers a reconciled incident's pages to the outbox; used by the GitLab worker. Never raises."""

    def __init__(self, cfg: Config, paging: PagingConfig, on: frozenset[str], instance_url: str) -> None:
        self.cfg, self.paging, self.on, self.instance_url = cfg, paging, on, instance_url
        self.names = {t.id: t.name for t in paging.targets}
        self.command = page_command(self.names, on)

    def items(self, store: Any, incident_key: str) -> list[OutboxItem]:
        try:
            return list(store.items(NAME, incident_key))
        except StoreError as exc:
            log.warning("%s: cannot read its pages: %s", incident_key, redact(str(exc)))
            return []

    def facts(self, store: Any, incident_key: str) -> OutboundFacts:
        return paging_facts(self.names, self.on, self.items(store, incident_key), (self.command,))

    def pages(self, desired: Desired, observed: Observed, items: list[OutboxItem]) -> tuple[Page, ...]:
        """Every page the incident wants now (in scope only), whatever the outbox holds."""
        if not desired.in_scope:
            return ()
        targets = [t for t in self.paging.targets if t.id in self.on]
        return plan_pages(targets, incident_facts(self.instance_url, desired, observed), recorded(items))

    def offer(self, store: Any, incident_key: str, desired: Any, observed: Any, now: datetime) -> bool:
        try:
            items = self.items(store, incident_key)
            todo = pending(self.pages(desired, observed, items), recorded(items))
            if desired.closed or desired.all_clear or not observed.incident.is_open:
                for item in items:  # offered, never tried: no one is paged for an incident already over
                    if split(item.key)[1] == "" and item.state == "intent":
                        store.mark_refused(NAME, item.key, WITHDRAWN, now)
            if not todo:
                return False
            if store.offer(NAME, incident_key, [row_of(p) for p in todo], now) == 0:
                return False
            store.enqueue(incident_key, now, "pagerduty", kind=NAME)
            return True
        except Exception as exc:  # the store: logged, the GitLab side goes on
            log.warning("%s: cannot plan its pages: %s", incident_key, redact(str(exc)))
            return False


class PagingSender(Sender):
    """Claims jobs of kind ``pagerduty`` only, and sends their incident's pending events."""

    what = "PagerDuty sender"

    def __init__(self, store: Any, port: Callable[[], Any], *, worker_id: str, clock: Callable[[], datetime],
                 lease: timedelta = timedelta(seconds=60), poll_interval: float = 0.5) -> None:
        self.store, self._port_factory, self._port = store, port, None
        self.worker_id, self.clock, self.lease, self.poll_interval = worker_id, clock, lease, poll_interval

    @property
    def port(self) -> Any:
        if self._port is None:
            self._port = self._port_factory()
        return self._port

    def loop(self) -> JobLoop:
        return JobLoop(self.store, self.handle, kind=NAME, worker_id=self.worker_id, clock=self.clock,
                       lease=self.lease, logger=log)

    def handle(self, job: Job, held: LeaseKeeper) -> Result:
        """Send the incident's pending events one by one, each recorded ``trying`` before its POST."""
        incident_key = job.incident_key
        try:
            items = self.store.pending(NAME, incident_key)
            resolving = {split(i.key)[0] for i in self.store.items(NAME, incident_key) if split(i.key)[1] == RESOLVE}
        except Exception as exc:
            return failed(redact(f"PagerDuty: {type(exc).__name__}: {exc}"))
        news, refused = False, []
        for item in items:
            base, suffix = split(item.key)
            if suffix not in ("", RESOLVE):
                continue
            if suffix == "" and item.state == "intent" and base in resolving:
                self.store.mark_refused(NAME, item.key, WITHDRAWN, self.clock())
                continue
            try:
                page = page_of(item.text)
            except (ValueError, TypeError, KeyError) as exc:
                refused.append(f"unreadable outbox row {item.key}: {exc}")
                self.store.mark_refused(NAME, item.key, refused[-1], self.clock())
                continue
            self.store.mark_trying(NAME, [item.key], self.clock())
            outcome = self.port.send(page)
            now = self.clock()
            if isinstance(outcome, Sent):
                self.store.mark_sent(NAME, item.key, page.dedup_key, item.text, now)
                news = True
            elif isinstance(outcome, Refused):
                self.store.mark_refused(NAME, item.key, outcome.reason, now)
                log.warning("%s: PagerDuty refused %s: %s", incident_key, item.key, outcome.reason)
                refused.append(outcome.reason)
            else:
                if news or refused:
                    self.store.enqueue(incident_key, now, "pagerduty paged")
                return failed(f"PagerDuty unavailable: {outcome.reason}", retry_after(outcome.retry_after))
        if news or refused:
            self.store.enqueue(incident_key, self.clock(), "pagerduty paged")
        if refused:  # a 4xx: the same event would be refused again
            return failed(refused[0], kind="final")
        return done()
