"""Builds the running parts from settings and config: renderer, call policy, GitLab client, state key,
store, reconciler and the receiver's settings. Command-line modules ask here; nothing here parses."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import ApiSettings, Config
from bot.errors import UserError
from bot.redact import redact
from bot.settings import Settings

if TYPE_CHECKING:
    from flask import Flask

    from bot.gitlab.budget import BudgetLedger
    from bot.gitlab.callpolicy import CallPolicy
    from bot.gitlab.client import GitLabClient
    from bot.integrations.base import Integration, Outbound
    from bot.integrations.slack.job import SlackPlanner, SlackWorker
    from bot.integrations.slack.ports import ChatPort
    from bot.integrations.slack.render import SlackRenderer
    from bot.integrations.slack.slackapi import SlackChat
    from bot.metrics import Metrics
    from bot.reconciler import Reconciler
    from bot.store import DeliveryStore, Intake
    from bot.store.spool import Spool
    from bot.text.markers import StateKey
    from bot.text.templates import TemplateRenderer
    from bot.web.app import WebSettings

log = logging.getLogger("bot.service")


LOCAL_POLICY = Path("config/bot.yaml")


def policy_file(settings: Settings, given: str | None) -> Path:
    """The policy file a service (``serve``, ``worker``, ``sweep``, ``reconcile``) runs: named by ``--config``
    or ``INCIDENT_BOT_CONFIG``, else ``config/bot.yaml`` where it runs. Never the bundled example unless it is
    named: a service that silently ran the example would act on production with placeholder people."""
    hint = "the example policy runs only when named explicitly"
    if given:
        path, named = Path(given), "--config"
    elif settings.config is not None:
        path, named = settings.config, "INCIDENT_BOT_CONFIG"
    elif settings.config_blank:
        raise UserError(f"INCIDENT_BOT_CONFIG is empty: set it to your policy file (e.g. /policy/bot.yaml); {hint}")
    elif LOCAL_POLICY.is_file():
        path, named = LOCAL_POLICY, "the working directory's"
    else:
        raise UserError(
            f"no policy file: set INCIDENT_BOT_CONFIG (or --config) to your policy file; there is no "
            f"{LOCAL_POLICY} in {Path.cwd()}, and {hint}"
        )
    if not path.is_file():
        raise UserError(f"policy file {path} ({named}) not found: set INCIDENT_BOT_CONFIG (or --config) to your "
                        f"policy file; {hint}")
    return path


def checked(cfg: Config) -> Config:
    """``cfg`` once every integration's section of it is read without a problem (else ``UserError``, a line each)."""
    from bot.integrations import registry

    problems = registry.config_problems(cfg)
    if problems:
        raise UserError("\n".join(problems))
    return cfg


def load_policy(settings: Settings, given: str | None) -> tuple[Config, str]:
    """The service's policy (:func:`policy_file`) and a line naming the file and its SHA-256, for its log."""
    import hashlib

    from bot.config import load_config

    path = policy_file(settings, given)
    cfg = checked(load_config(path))
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:  # read a moment ago; gone now
        raise UserError(f"cannot read the policy file {path}: {exc.strerror}") from None
    return cfg, f"policy {path.resolve()} (sha256 {digest})"


def incident_scope(settings: Settings, cfg: Config, *, required: bool = True) -> Config:
    """The policy with the incident scope the process acts in: ``INCIDENT_BOT_SCOPE`` over the policy's ``scope:``.
    Without either and ``required`` (the services, ``reconcile``): one line saying what to set."""
    from bot.config import scope_conflicts
    from bot.core.scope import SCOPE_HINT

    if settings.scope is not None:
        conflicts = scope_conflicts(settings.scope, cfg)
        if conflicts:
            where, why = conflicts[0]
            raise UserError(f"INCIDENT_BOT_SCOPE: {why} ({where} in {cfg.source})")
        cfg = cfg.model_copy(update={"scope": list(settings.scope)})
    if required and not cfg.scope:
        raise UserError(f"no incident scope: {SCOPE_HINT} ({cfg.source} has none)")
    return cfg


def renderer_for(cfg: Config) -> TemplateRenderer:
    from bot.text.templates import TemplateRenderer

    return TemplateRenderer([cfg.template_dir])


def slack_renderer(cfg: Config) -> SlackRenderer:
    """The policy's own ``slack/`` templates first, then the bundled ones."""
    from bot.integrations.slack import wire

    return wire.slack_renderer(cfg)


def slack_chat(settings: Settings) -> SlackChat:
    """The Slack Web API adapter (``slack_sdk``); imported only when Slack is configured."""
    from bot.integrations.slack import wire

    return wire.slack_chat(settings)


def slack(
    settings: Settings,
    cfg: Config,
    store: DeliveryStore,
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime],
    worker_id: str,
    port: Callable[[], ChatPort] | None = None,
) -> tuple[SlackPlanner | None, SlackWorker | None]:
    """The Slack side, or ``(None, None)``: without ``SLACK_BOT_TOKEN`` or a ``chat:`` section nothing of it runs."""
    from bot.integrations.slack import wire

    return wire.slack(settings, cfg, store, metrics=metrics, clock=clock, worker_id=worker_id, port=port)


def outbound(
    settings: Settings,
    cfg: Config,
    store: DeliveryStore,
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime],
    worker_id: str,
) -> tuple[Outbound | None, dict[str, Any]]:
    """The one place the outbound integrations are assembled: every enabled integration's planner, as one
    :class:`~bot.integrations.base.Outbound` for the GitLab worker (None when none runs), and its sender by
    integration name (the job kind)."""
    from bot.integrations import registry
    from bot.integrations.base import Planners

    planners: list[tuple[Integration, Outbound]] = []
    senders: dict[str, Any] = {}
    for integration in registry.enabled(cfg, settings):
        if integration.build is None:
            continue
        planner, sender = integration.build(settings, cfg, store, metrics=metrics, clock=clock,
                                            worker_id=f"{worker_id}:{integration.name}")
        if planner is not None:
            planners.append((integration, planner))
        if sender is not None:
            senders[integration.name] = sender
    return (Planners(planners) if planners else None), senders


def add_routes(app: Flask, settings: Settings, cfg: Config, store: Any) -> list[str]:
    """Each enabled integration's inbound route on the receiver (``POST /<name>``); the paths added."""
    from bot.integrations import registry

    added = []
    for integration in registry.enabled(cfg, settings):
        route = integration.route
        if route is not None:
            app.add_url_rule(route.path, endpoint=f"integration_{integration.name}",
                             view_func=route.view(settings, cfg, store), methods=list(route.methods))
            added.append(route.path)
    return added


def call_policy(api: ApiSettings, *, ledger: BudgetLedger | None = None, **overrides: Any) -> CallPolicy:
    """The config's API budget as the client's call policy (``overrides``: e.g. ``on_call`` for metrics).

    ``ledger`` keeps the budgets of GitLab's per-endpoint limits: the store, so that every process (and, on
    PostgreSQL, every replica) of the bot's GitLab user draws from one; without it, this process alone."""
    from bot.gitlab.budget import Budgets
    from bot.gitlab.callpolicy import CallPolicy

    limits = {"notes": api.notes_per_minute, "issues": api.issues_per_minute}
    settings: dict[str, Any] = {
        "rate_per_minute": api.rate_per_minute,
        "burst": api.burst,
        "max_attempts": api.max_attempts,
        "call_budget_s": api.call_budget_s,
        "budgets": Budgets(limits, ledger, max_wait_s=api.limit_wait_s),
        **overrides,
    }
    return CallPolicy(**settings)


def client_from(url: str, token: str, policy: CallPolicy | None = None, *, timeout: float = 10.0) -> GitLabClient:
    from bot.gitlab.callpolicy import CallPolicy
    from bot.gitlab.client import GitLabClient, UserCache
    from bot.gitlab.connect import make_gitlab

    return GitLabClient(lambda: make_gitlab(url, token, timeout=timeout), policy or CallPolicy(), users=UserCache())


def client(settings: Settings, cfg: Config, policy: CallPolicy | None = None) -> GitLabClient:
    """The GitLab client for ``GITLAB_URL``/``GITLAB_TOKEN`` under the config's call policy."""
    url, token = settings.gitlab()
    return client_from(url, token, policy or call_policy(cfg.api), timeout=cfg.api.timeout_s)


def state_key(settings: Settings) -> StateKey:
    from bot.statekey import build_state_key

    return build_state_key(settings.state_key, settings.state_key_previous, settings.gitlab_token)


def reconciler(
    settings: Settings,
    cfg: Config,
    gitlab: GitLabClient | None = None,
    *,
    bot_username: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Reconciler:
    from bot.integrations import registry
    from bot.reconciler import Reconciler

    extra: dict[str, Any] = {"clock": clock} if clock else {}
    return Reconciler(
        cfg,
        renderer_for(cfg),
        gitlab or client(settings, cfg),
        bot_username=bot_username,
        key=state_key(settings),
        commands=tuple(c for i in registry.enabled(cfg, settings) for c in i.commands_in(cfg, settings)),
        **extra,
    )


def web_settings(settings: Settings) -> WebSettings:
    from bot.web.app import WebSettings

    try:
        return WebSettings(
            secret=settings.webhook_secret,
            signing_token=settings.webhook_signing_token,
            max_body_bytes=settings.max_body_bytes,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None


class GitLabAway(UserError):
    """GitLab did not answer or answered 5xx: a service starts anyway and waits for it."""


def check_gitlab(settings: Settings) -> str:
    """Authenticate with ``GITLAB_URL``/``GITLAB_TOKEN`` once; return the bot's username or one line
    (:class:`GitLabAway` when GitLab may come back by itself)."""
    from bot.gitlab.connect import check_token, make_gitlab
    from bot.gitlab.errors import GitLabConfigError, GitLabUnreachable

    url, token = settings.gitlab()
    try:
        return check_token(make_gitlab(url, token, timeout=10.0))
    except GitLabUnreachable as exc:
        raise GitLabAway(str(exc)) from None
    except (GitLabConfigError, ValueError) as exc:
        raise UserError(str(exc)) from None


def wait_for_gitlab(
    settings: Settings,
    stop: threading.Event,
    waiting: Callable[[str], None] = lambda reason: None,
    retry: float = 2.0,
    most: float = 30.0,
) -> str | None:
    """The bot's username once GitLab answers; while it does not, say so (``waiting``, and the log each time
    the wait grows) and try again with a growing pause. None: stopped while waiting. A rejected token or a
    wrong URL is still one line (``UserError``): waiting would not fix it."""
    pause = retry
    while True:
        try:
            return check_gitlab(settings)
        except GitLabAway as exc:
            log.warning("%s; trying again in %.0f s (deliveries are recorded meanwhile)", exc, pause)
            until = time.monotonic() + pause
            while (left := until - time.monotonic()) > 0:
                waiting(str(exc))  # every second: the heartbeat stays fresh while the worker waits
                if stop.wait(min(1.0, left)):
                    return None
            pause = min(pause * 2, most)


# ---------------------------------------------------------------------------------------- store


def db_shown(settings: Settings) -> str:
    """``INCIDENT_BOT_DB`` as messages show it: without the password."""
    return redact(settings.db)


def open_service_store(settings: Settings) -> DeliveryStore:
    """The delivery store named by ``INCIDENT_BOT_DB``, or one clear line saying why not."""
    from bot.store import StoreError, open_store

    try:
        return open_store(settings.db, durability=settings.db_durability)
    except (StoreError, ValueError) as exc:
        raise UserError(f"cannot open the delivery store INCIDENT_BOT_DB={db_shown(settings)}: {exc}") from None


def prepare_store(settings: Settings) -> None:
    """Create and migrate the store once, before any process forks. PostgreSQL may be away (a restart
    during an outage): then start all the same; the receivers spool deliveries, the worker waits for the
    database, and ``/readyz`` says degraded. A database too new for this code still stops the start."""
    from bot.store import SchemaVersionError, StoreError, open_store

    if not settings.is_postgres():
        open_service_store(settings).close()
        return
    try:
        open_store(settings.db, durability=settings.db_durability).close()
    except SchemaVersionError as exc:
        raise UserError(redact(str(exc))) from None
    except StoreError as exc:
        log.warning("starting without the delivery store %s: %s; deliveries are spooled until it answers",
                    db_shown(settings), redact(str(exc)))


def spool(settings: Settings) -> Spool | None:
    """The receivers' local spool (``INCIDENT_BOT_SPOOL``), when the shared store is PostgreSQL: a
    delivery that arrives while the database is away is kept on the replica's own disk, not refused."""
    from bot.store.spool import Spool

    if not settings.is_postgres():
        return None  # a SQLite store is already on the receiver's own disk
    return Spool(settings.spool)


def open_receiver_store(settings: Settings) -> Intake:
    """The receiver's intake: the shared store, or with PostgreSQL the shared store behind a local spool."""
    from bot.store.spool import SpoolingStore

    local = spool(settings)
    if local is None:
        return open_service_store(settings)
    return SpoolingStore(lambda: _open_shared_store(settings), local)


def _open_shared_store(settings: Settings) -> DeliveryStore:
    from bot.store import StoreError

    try:
        return open_service_store(settings)
    except UserError as exc:  # the spool takes deliveries meanwhile; the next one tries again
        raise StoreError(str(exc)) from None


def wait_for_store(settings: Settings, stop: threading.Event, retry: float = 2.0) -> DeliveryStore | None:
    """The worker's store; while it cannot be opened (PostgreSQL away at start), say so and keep trying."""
    while True:
        try:
            return open_service_store(settings)
        except UserError as exc:
            if settings.is_postgres():
                log.warning("%s; trying again in %.0f s", exc, retry)
                if stop.wait(retry):
                    return None
                continue
            raise
