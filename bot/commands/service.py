"""Commands of the long-running service: ``serve``, ``worker``, ``dead-letters``."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import heartbeat, wiring
from bot.clock import utcnow
from bot.config import Config
from bot.errors import UserError
from bot.redact import redact
from bot.settings import Need, Settings, register_secrets
from bot.store.base import DeadLetters
from bot.store.spool import drain
from bot.sweep import sweep
from bot.text.markers import StateKey

log = logging.getLogger("bot.service")

LOG_LEVELS = ("debug", "info", "warning", "error")
WORKER_GRACE = 20.0


def settings(*need: Need) -> Settings:
    """The environment's settings; every problem at once, one line each."""
    return Settings.from_env(need=need)


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr through the redacting filter, and keep every file the process creates private.

    ``log_format``: ``text`` (gunicorn's lines look the same) or ``json`` (one object per line)."""
    from bot import logformat
    from bot import redact as redaction

    private_umask()
    logformat.choose(log_format)
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr)
    logformat.apply([h for h in logging.getLogger().handlers if getattr(h, "stream", None) is sys.stderr])
    logformat.capture_stray_output()
    register_secrets()
    redaction.install()


def private_umask() -> None:
    """Files the bot writes (stores, spool, WAL files, metrics) hold payloads: 0600 in 0700 directories."""
    os.umask(0o077)


def as_bot(cfg: Config, username: str) -> Config:
    """The config with the token's real username, so the bot recognises its own events."""
    if cfg.bot.username.lower() == username.lower():
        return cfg
    log.warning(
        "config bot.username is %r but GITLAB_TOKEN belongs to @%s; using @%s (set bot.username to match)",
        cfg.bot.username,
        username,
        username,
    )
    return cfg.model_copy(update={"bot": cfg.bot.model_copy(update={"username": username})})


# ---------------------------------------------------------------------------------------- serve


@dataclass
class _ReceiverFactory:
    """Builds the Flask app inside each gunicorn worker process (after the fork)."""

    cfg: Config
    settings: Settings
    worker_heartbeat: Path | None = None

    def __call__(self) -> Any:
        from bot.metrics import Metrics
        from bot.web.app import create_app

        web = wiring.web_settings(self.settings)
        store = wiring.open_receiver_store(self.settings)
        app = create_app(
            web,
            store=store,
            config=self.cfg,
            metrics=Metrics(),
            worker_heartbeat=self.worker_heartbeat,
            state_key=self._state_key(),
        )
        wiring.add_routes(app, self.settings, self.cfg, store)
        return app

    def _state_key(self) -> StateKey | None:
        """The bot's state key, to believe a child's marker; None (child events wait for the sweep) when the
        settings name none and no token to derive one from."""
        if not (self.settings.state_key or self.settings.gitlab_token):
            return None
        return wiring.state_key(self.settings)


def _metrics_dir() -> tuple[str, bool]:
    """A fresh prometheus multiprocess directory: the operator's (emptied) or a temporary one."""
    from bot.metrics import multiprocess_dir

    given = multiprocess_dir()
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        return given, False
    return tempfile.mkdtemp(prefix="incident-bot-metrics-"), True


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.metrics import enable_multiprocess

    setup_logging(args.log_level, args.log_format)
    env = settings("gitlab", "webhook")
    wiring.web_settings(env)
    cfg, loaded = wiring.load_policy(env, args.config)
    cfg = wiring.incident_scope(env, cfg)
    try:
        cfg = as_bot(cfg, wiring.check_gitlab(env))
    except wiring.GitLabAway as exc:
        # As with PostgreSQL away: serve, record deliveries, and let the worker wait for GitLab and catch up
        # (/readyz says degraded meanwhile). Exiting here would only crash-loop under a supervisor.
        log.warning("%s; serving anyway: deliveries are recorded and worked on once GitLab answers", exc)
    log.info("serve: %s", loaded)
    wiring.prepare_store(env)

    from bot.web.server import GunicornApp

    metrics_dir, temporary = _metrics_dir()
    enable_multiprocess(metrics_dir)
    child = [sys.executable, "-m", "bot", "worker", "--threads", str(args.threads), "--log-level", args.log_level]
    child += ["--log-format", args.log_format]
    child += ["--exit-with-parent", str(os.getpid())]
    # The worker child writes its heartbeat here; the receivers' /readyz reads it.
    heartbeat_dir = Path(tempfile.mkdtemp(prefix="incident-bot-worker-"))
    worker_heartbeat = heartbeat_dir / "heartbeat"
    child += ["--heartbeat-file", str(worker_heartbeat)]
    child += ["--config", str(Path(cfg.source).resolve())]  # the very file this process loaded
    server = GunicornApp(
        _ReceiverFactory(cfg, env, worker_heartbeat),
        host=args.host,
        port=args.port,
        workers=args.workers,
        worker_class=args.worker_class,
        read_timeout=args.read_timeout,
        worker_connections=args.connections,
        per_client=args.per_client,
        child_argv=child,
        child_grace=WORKER_GRACE,
        loglevel=args.log_level,
    )
    master = os.getpid()
    try:
        server.run()
    finally:
        # gunicorn forks its receivers inside run(): a receiver that exits (at stop, or restarted by the master)
        # unwinds this same frame. Only the master removes what every process of the service shares.
        if os.getpid() == master:
            shutil.rmtree(heartbeat_dir, ignore_errors=True)
            if temporary:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


# --------------------------------------------------------------------------------------- worker


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        if not stop.is_set():
            log.info("%s: finishing the current reconcile, claiming nothing new", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def _watch_parent(parent: int, stop: threading.Event) -> None:
    """Stop when the process that started us is gone (``serve``'s master killed with SIGKILL)."""

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning("the serve process (pid %d) is gone; stopping", parent)
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def cmd_sweep(args: argparse.Namespace) -> int:
    """One sweep now: queue the incidents that need a look, then (unless --queue-only) process the queue."""
    from bot.worker import Worker

    setup_logging(args.log_level, args.log_format)
    env = settings("gitlab")
    cfg, loaded = wiring.load_policy(env, args.config)
    cfg = wiring.incident_scope(env, cfg)
    username = wiring.check_gitlab(env)
    cfg = as_bot(cfg, username)
    log.info("%s: %s", args.command, loaded)
    store = wiring.open_service_store(env)
    client = wiring.client(env, cfg, wiring.call_policy(cfg.api, ledger=store))
    report = sweep(client, store, cfg, utcnow(), key=wiring.state_key(env))
    print(report.summary())
    if args.queue_only:
        return 0
    reconciler = wiring.reconciler(env, cfg, client, bot_username=username)
    worker = Worker(store, reconciler, settle=timedelta(0))
    try:
        done = 0
        while (result := worker.run_once()) is not None:
            done += 1
            print(f"{result.incident_key}: {result.outcome}" + (f" ({result.error})" if result.error else ""))
    finally:
        reconciler.close()
    print(f"processed {done} job(s)")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """``db upgrade``: create or migrate the store's schema now, before new replicas roll out."""
    from bot.store import StoreError, upgrade

    private_umask()
    env = settings()
    location, shown = env.db, wiring.db_shown(env)
    try:
        before, after = upgrade(location)
    except (StoreError, ValueError) as exc:
        raise UserError(f"cannot upgrade INCIDENT_BOT_DB={shown}: {redact(str(exc))}") from None
    if before == after:
        print(f"{shown}: schema version {after}, up to date")
    else:
        print(f"{shown}: schema version {before} -> {after}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.metrics import Metrics, multiprocess_dir
    from bot.worker import WorkerPool, default_worker_id

    setup_logging(args.log_level, args.log_format)
    stop = threading.Event()
    _stop_on_signals(stop)
    if args.exit_with_parent:
        _watch_parent(args.exit_with_parent, stop)
    env = settings("gitlab")
    cfg, loaded = wiring.load_policy(env, args.config)
    cfg = wiring.incident_scope(env, cfg)
    beat_file = Path(args.heartbeat_file) if args.heartbeat_file else None

    def waiting(reason: str) -> None:
        if beat_file is not None:
            heartbeat.beat(beat_file, utcnow(), waiting=reason)

    username = wiring.wait_for_gitlab(env, stop, waiting)
    if username is None:  # stopped while waiting for GitLab
        return 0
    cfg = as_bot(cfg, username)
    log.info("%s: %s", args.command, loaded)
    store = wiring.wait_for_store(env, stop)
    if store is None:  # stopped while waiting for the database
        return 0
    metrics = Metrics()
    metrics.watch_store(store)
    if args.metrics_port and not multiprocess_dir():
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, registry=metrics.registry)
    client = wiring.client(env, cfg, wiring.call_policy(cfg.api, ledger=store, on_call=metrics.on_api_call))
    reconciler = wiring.reconciler(env, cfg, client, bot_username=username)
    sweep_every = env.sweep_every
    chat, senders = wiring.outbound(env, cfg, store, metrics=metrics, clock=utcnow, worker_id=default_worker_id())
    pool = WorkerPool(
        store,
        reconciler,
        threads=args.threads,
        metrics=metrics,
        lease=env.lease,
        retry_base=env.retry_base,
        dead_letter_retention=env.dead_letter_retention,
        drainer=(lambda: drain(spool, store)) if (spool := wiring.spool(env)) is not None else None,
        sweeper=(lambda: sweep(client, store, cfg, utcnow(), key=reconciler.key)) if sweep_every else None,
        sweep_every=sweep_every or timedelta(minutes=5),
        heartbeat=beat_file,
        chat=chat,
        slack=senders.get("slack"),
        senders={name: sender for name, sender in senders.items() if name != "slack"},
    )
    log.info("worker: %d thread(s) on %s as @%s", args.threads, wiring.db_shown(env), username)
    if pool.run(stop, grace=WORKER_GRACE):
        reconciler.close()
        return 0
    # A reconcile outlived the grace period: exit anyway; its lease expires and it is retried.
    logging.shutdown()
    os._exit(1)


# --------------------------------------------------------------------------------- dead letters


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_dead_letters(args: argparse.Namespace) -> int:
    store = wiring.open_service_store(settings())
    try:
        return dead_letters(store, args.action, getattr(args, "job_id", None))
    finally:
        store.close()


def dead_letters(store: DeadLetters, action: str, job_id: int | None) -> int:
    """``dead-letters list`` or ``retry``: the dead letters are all this needs of the store."""
    from bot.worker import incident_path_of

    if action == "list":
        jobs = store.dead_jobs()
        if not jobs:
            print("no dead letters")
        for job in jobs:
            error = " ".join((job.last_error or "").split())
            since = _when(job.updated_at)
            if job.sticky:  # a redelivery does not revive it; an edit of the incident or a retry does
                since += " (waits for a change)"
            name = incident_path_of(store, job) or job.incident_key
            print(f"{job.id}\t{name}\t{job.kind}\t{job.attempts} attempts\tdead since {since}\t{error}")
        return 0
    kinds = Counter(j.kind for j in store.dead_jobs() if job_id is None or j.id == job_id)
    revived = store.retry_dead(job_id, now=datetime.now(UTC))
    if job_id is not None and not revived:
        raise UserError(f"job {job_id} is not a dead letter (see `incident-bot dead-letters list`)")
    which = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    print(f"revived {revived} job{'s' if revived != 1 else ''}{f' ({which})' if which else ''};"
          " the workers will pick them up")
    return 0


# ------------------------------------------------------------------------------------- parsers


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _log_format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text (default) or json: one object per line with time, level, logger, message, incident, job",
    )


def register_service_commands(sub: Any, add: Callable[..., Any]) -> None:
    """Add the service's subcommands to the ``incident-bot`` parser (``add(name, func, help)``)."""
    p = add("serve", cmd_serve, "webhook receiver (gunicorn) and worker; stops cleanly on SIGTERM")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--workers", type=_positive, default=2, help="receiver processes (default 2)")
    p.add_argument("--threads", type=_positive, default=2, help="reconcile worker threads (default 2)")
    p.add_argument(
        "--worker-class",
        choices=("gevent", "sync", "gthread"),
        default="gevent",
        help="gunicorn worker class: gevent (default; slow or idle clients cannot hold it), "
        "sync or gthread only behind a proxy that buffers whole requests",
    )
    p.add_argument(
        "--read-timeout",
        type=_positive,
        default=5,
        help="seconds a client has to send its request header, and each part of its body (default 5)",
    )
    p.add_argument(
        "--connections",
        type=_positive,
        default=1000,
        help="connections each receiver process serves at once (gevent; default 1000)",
    )
    p.add_argument(
        "--per-client",
        type=_not_negative,
        default=100,
        help="connections one client address may hold in each receiver process; beyond it, its oldest idle "
        "one is closed (gevent; default 100, 0: no bound; behind a proxy: at least the proxy's connections)",
    )
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    _log_format_option(p)

    p = add("worker", cmd_worker, "the reconcile worker alone (scale receivers and workers apart)")
    p.add_argument("--threads", type=_positive, default=2, help="reconcile worker threads (default 2)")
    p.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on this port (default: off)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    _log_format_option(p)
    p.add_argument("--exit-with-parent", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--heartbeat-file", default="", help=argparse.SUPPRESS)

    p = add("sweep", cmd_sweep, "reconcile every open incident that needs it now (reminders due, missed events)")
    p.add_argument("--queue-only", action="store_true", help="only queue them for the running workers")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="warning")
    _log_format_option(p)

    p = add("db", cmd_db, "the delivery store's schema: `db upgrade` creates or migrates it")
    p.add_argument("action", choices=("upgrade",))

    p = add("dead-letters", cmd_dead_letters, "jobs that failed too often: list them, or queue them again")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="one line per dead job: id, incident, kind, attempts, since, last error")
    retry = actions.add_parser("retry", help="queue one dead job (JOB_ID) or all of them again")
    retry.add_argument("job_id", nargs="?", type=int, metavar="JOB_ID")
