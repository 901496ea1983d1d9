"""The Slack job kind: what a GitLab reconcile hands to Slack, and the worker that sends it.

After a reconcile of incident K the GitLab worker asks :class:`SlackPlanner` to offer the messages the plan
calls for to the outbox (a store write, nothing else: Slack being slow or down never delays or fails the
GitLab job). When any need sending it queues a job of kind ``slack`` for K in the same durable queue.
:class:`SlackWorker` runs that kind's handler on the job loop (``bot.jobloop``): it claims only those jobs,
sends the pending messages through the :class:`ChatPort`, records each result in the outbox (integration
``slack``), and completes the job, or fails it to be retried (Slack unavailable) or dead (the token is refused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.config import Config
from bot.core.outbound import OutboundFacts
from bot.integrations.slack.deliver import Outgoing, Scan, deliver
from bot.integrations.slack.facts import channel_of, slack_facts, ts_of
from bot.integrations.slack.plan import Render, chat_messages, engagement_of, is_channel_key, read_channel_spec
from bot.integrations.slack.ports import ChatAuthError, ChatError, ChatMessage, ChatPort, ChatUnavailable
from bot.jobloop import MIN_RETRY, JobLoop, Result, Sender, done, failed, retry_after
from bot.lease import LeaseKeeper
from bot.metrics import Metrics
from bot.redact import redact
from bot.store.base import Job, OutboxItem, StoreError, WorkerStore

log = logging.getLogger(__name__)

SLACK = "slack"
"""Slack's name as an outbound integration: its rows of the outbox, and the job kind that sends them."""
SLACK_KIND = SLACK
HISTORY_MARGIN = timedelta(minutes=2)
"""Read history back to this long before a message's first send attempt: Slack's clock and ours differ."""
REFUSED_RETRY = timedelta(minutes=10)
"""A message Slack refused is tried again at the incident's next look after this long: the channel may
have been created, or the bot invited, since."""
SCANS_KEPT = timedelta(minutes=15)
"""How long a history read held back by Slack's rate limit may be resumed where it stopped."""


@dataclass
class _Opened:
    """What creating the incident channel did: ``first`` when the GitLab side has news (created, or refused
    for the first time); ``stop`` when Slack was unavailable or refused the token (the job is retried/dead)."""

    first: bool = False
    stop: ChatError | None = None


def kind_of(key: str) -> str:
    """A message key's kind for metrics (``engage``, ``reminder``, ``update``, ``child``, ``all-clear``,
    ``summary``): bounded, unlike the key."""
    parts = key.split("|")
    return parts[1].split(":")[0] if len(parts) > 1 else "unknown"


class SlackPlanner:
    """Offers a reconciled incident's Slack messages to the outbox; used by the GitLab worker."""

    def __init__(self, cfg: Config, render: Render, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.render = render
        self.metrics = metrics

    def offer(self, store: WorkerStore, incident_key: str, desired: Any, observed: Any, now: datetime) -> bool:
        """Whether a Slack job was queued. Never raises: the GitLab job's outcome does not depend on Slack."""
        try:
            messages = chat_messages(self.cfg, desired, observed, self.render)
            if not messages:
                return False
            pending = store.offer(SLACK, incident_key, messages, now)
            # Refused long enough ago: the channel may exist now (a restart changes nothing about that).
            revived = 0
            if store.refused_targets(SLACK, incident_key):
                revived = store.revive_refused(SLACK, incident_key, [m.key for m in messages], now - REFUSED_RETRY)
            if pending == 0 and revived == 0:
                return False
            store.enqueue(incident_key, now, "slack", kind=SLACK_KIND)
            return True
        except Exception as exc:  # a template or the store: logged, the GitLab side goes on
            log.warning("%s: cannot plan its Slack messages: %s", incident_key, redact(str(exc)))
            return False


    def facts(self, store: WorkerStore, incident_key: str) -> OutboundFacts:
        """What the outbox says of the incident for its reconcile (targets that refused, engagements sent, the
        incident channel created); never raises."""
        return slack_facts(self.refused(store, incident_key), self.items(store, incident_key))

    def items(self, store: WorkerStore, incident_key: str) -> list[OutboxItem]:
        try:
            return store.items(SLACK, incident_key)
        except StoreError as exc:
            log.warning("%s: cannot read its Slack engagements: %s", incident_key, redact(str(exc)))
            return []

    def refused(self, store: WorkerStore, incident_key: str) -> dict[str, str]:
        """Slack targets that refused the incident's messages, for its status log; never raises."""
        try:
            return store.refused_targets(SLACK, incident_key)
        except StoreError as exc:
            log.warning("%s: cannot read its refused Slack targets: %s", incident_key, redact(str(exc)))
            return {}


class SlackWorker(Sender):
    """Claims jobs of kind ``slack`` only, and sends their incident's pending messages."""

    what = "Slack worker"

    def __init__(
        self,
        store: WorkerStore,
        port: Callable[[], ChatPort],
        *,
        worker_id: str,
        clock: Callable[[], datetime],
        lease: timedelta = timedelta(seconds=60),
        metrics: Metrics | None = None,
        poll_interval: float = 0.5,
        heartbeat: timedelta | None = None,
    ) -> None:
        self.store = store
        self._port_factory = port
        self._port: ChatPort | None = None
        self.worker_id = worker_id
        self.clock = clock
        self.lease = lease
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.heartbeat = heartbeat or lease / 3
        self._scans: dict[str, tuple[int, datetime, dict[str, Scan]]] = {}
        """Incident key -> (job id, when, how far its targets' history was read), kept while some messages
        wait on a rate-limited history read, so the next try resumes there instead of rereading. Used only
        by the job's very next claim (``attempts == 1`` after the requeue): if anyone else held the job in
        between, they may have posted, and the history is read afresh."""

    @property
    def port(self) -> ChatPort:
        if self._port is None:
            self._port = self._port_factory()
        return self._port

    def loop(self) -> JobLoop:
        """The job loop that runs this worker's Slack jobs (claim, lease, record the outcome)."""
        return JobLoop(
            self.store, self._send, kind=SLACK_KIND, worker_id=self.worker_id, clock=self.clock, lease=self.lease,
            heartbeat=self.heartbeat, logger=log,
        )

    def _send(self, job: Job, held: LeaseKeeper) -> Result:
        """The Slack kind's handler: send the incident's pending messages, record each result."""
        incident_key = job.incident_key
        try:
            items = self.store.pending(SLACK, incident_key)
            # The incident channel first: the messages to it can go there only once it exists.
            channels = [i for i in items if is_channel_key(i.key)]
            items = [i for i in items if not is_channel_key(i.key)]
            created = self._open_channels(incident_key, channels) if channels else _Opened()
            if created.stop is not None:
                return self._stopped(job, created.stop)
            items = self._hold_back(items)
            start = self.clock()
            outgoing = [
                Outgoing(ChatMessage(i.key, i.target, i.text, i.summary), ts_of(i), i.sent_text == i.text, i.unsure,
                         _oldest(i.history_from))
                for i in items
            ]
            # From here until recorded sent, each may be in Slack: a crash mid-send looks in the history.
            self.store.mark_trying(SLACK, [i.key for i in items], start)
            kept_job, kept_at, scans = self._scans.pop(incident_key, (job.id, start, {}))
            if kept_job != job.id or job.attempts != 1 or start - kept_at > SCANS_KEPT:
                kept_at, scans = start, {}
            # Slack timeouts can outlast a lease: the loop keeps it, so another replica does not send the same job.
            report = deliver(outgoing, self.port, scans) if outgoing else None
        except Exception as exc:
            return self._fail(job, f"Slack: {type(exc).__name__}: {exc}", None)
        if report is None:
            if created.first:
                self.store.enqueue(incident_key, self.clock(), "slack channel")
            return self._complete(job)
        texts = {i.key: i.text for i in items}
        now = self.clock()
        for sent in report.sent:
            self.store.mark_sent(SLACK, sent.key, remote_of(sent.channel, sent.ts), texts[sent.key], now)
            self._count(sent.key, "sent")
        known_refusals = self.store.refused_targets(SLACK, incident_key) if report.refused else {}
        for key, reason in report.refused.items():
            self.store.mark_refused(SLACK, key, reason, now)
            self._count(key, "refused")
            log.warning("%s: Slack refused %s: %s", incident_key, key.split("|")[2], reason)
        target_of = {i.key: i.target for i in items}
        # A target refused for the first time: the incident's GitLab job says so in its status log. An
        # engagement message sent: its checklist row shows it engaged. One GitLab job for the whole batch.
        newly_refused = bool({target_of[key] for key in report.refused} - set(known_refusals))
        engaged = any(engagement_of(s.key) for s in report.sent)
        if newly_refused or engaged or created.first:
            self.store.enqueue(incident_key, now, "slack refused" if newly_refused else "slack engaged")
        done = {s.key for s in report.sent} | set(report.refused)
        for key in texts:
            if key not in done and (report.unavailable or report.auth_error):
                self._count(key, "failed")
        if report.auth_error is not None:
            return self._fail(job, report.auth_error.reason, None, final=True)
        if report.unavailable is not None:
            return self._fail(job, f"Slack unavailable: {report.unavailable.reason}",
                              retry_after(report.unavailable.retry_after))
        if report.deferred:  # the rest went out; these wait for the history read Slack held back
            self._scans[incident_key] = (job.id, kept_at, scans)
            wait = max(timedelta(seconds=report.defer_after or 60), MIN_RETRY)
            log.info("%s: %d Slack message(s) wait %gs for a history read: %s", incident_key, len(report.deferred),
                     wait.total_seconds(), next(iter(report.deferred.values())))
            return self._complete(job, requeue_at=now + wait)
        return self._complete(job)

    def _open_channels(self, incident_key: str, items: list[OutboxItem]) -> _Opened:
        """Create the incident channel (once: ``create_channel`` adopts the bot's own after a lost answer) and
        invite its people; record it sent with the channel's id, or refused with Slack's reason."""
        opened = _Opened()
        for item in items:
            private, people = read_channel_spec(item.text)
            try:
                channel = channel_of(item) or self.port.create_channel(item.target, private=private)
                failed = self.port.invite(channel, people) if people else []
            except (ChatUnavailable, ChatAuthError) as err:
                opened.stop = err
                return opened
            except ChatError as err:
                self.store.mark_refused(SLACK, item.key, err.reason, self.clock())
                self._count(item.key, "refused")
                log.warning("%s: cannot create the incident channel %s in Slack: %s", incident_key, item.target,
                            err.reason)
                opened.first = opened.first or not item.reason  # refused before: in the status log already
                continue
            for reason in failed:
                log.warning("%s: %s", incident_key, reason)
            self.store.mark_sent(SLACK, item.key, remote_of(channel, ""), item.text, self.clock())
            self._count(item.key, "sent")
            if not item.sent:
                log.info("%s: created the incident channel %s (%s) in Slack, %d invited", incident_key,
                         item.target, channel, len(people) - len(failed))
                opened.first = True
        return opened

    def _hold_back(self, items: list[OutboxItem]) -> list[OutboxItem]:
        """The messages that may go out: none to an incident channel the bot was to create and could not
        (a channel of that name someone else made is never used for the incident); those are refused with
        the channel's reason."""
        if not items:
            return items
        incident_key = items[0].incident_key
        unmade = {i.target: i.reason or "" for i in self.store.items(SLACK, incident_key)
                  if is_channel_key(i.key) and not i.sent and i.state == "refused"}
        if not unmade:
            return items
        now = self.clock()
        for item in items:
            if item.target in unmade:
                self.store.mark_refused(SLACK, item.key, unmade[item.target], now)
                self._count(item.key, "refused")
        return [i for i in items if i.target not in unmade]

    def _stopped(self, job: Job, err: ChatError) -> Result:
        if isinstance(err, ChatAuthError):
            return self._fail(job, err.reason, None, final=True)
        after = err.retry_after if isinstance(err, ChatUnavailable) else None
        return self._fail(job, f"Slack unavailable: {err.reason}", retry_after(after))

    def _count(self, key: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.slack_message(kind_of(key), outcome)

    def _complete(self, job: Job, requeue_at: datetime | None = None) -> Result:
        return done(requeue_at)

    def _fail(self, job: Job, error: str, retry_in: timedelta | None, *, final: bool = False) -> Result:
        error = redact(error)
        log.warning("Slack job %d (%s): %s", job.id, job.incident_key, error)
        return failed(error, retry_in, kind="final" if final else "retry")

def _oldest(history_from: datetime | None) -> float | None:
    """Where a message's history read stops (seconds since the epoch), a margin before ``history_from``."""
    return None if history_from is None else (history_from - HISTORY_MARGIN).timestamp()


def remote_of(channel: str, ts: str) -> str:
    """A Slack message's remote reference in the outbox: ``"<channel id> <ts>"``, or just the channel's id for
    an incident channel the bot created. Slack's ids and timestamps never hold a space."""
    return f"{channel} {ts}" if ts else channel
