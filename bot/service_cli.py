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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Config, load_config
from bot.errors import UserError
from bot.reconciler import gitlab_credentials, utcnow
from bot.redact import redact
from bot.store.spool import Spool, SpoolingStore, drain
from bot.sweep import sweep

if TYPE_CHECKING:
    from bot.store import DeliveryStore, Durability

log = logging.getLogger("bot.service")

DEFAULT_DB = "var/incident-bot.sqlite3"
DEFAULT_SPOOL = "var/incident-bot-spool.sqlite3"
LOG_LEVELS = ("debug", "info", "warning", "error")
WORKER_GRACE = 20.0


def db_location() -> str:
    return os.environ.get("INCIDENT_BOT_DB") or DEFAULT_DB


def db_shown() -> str:
    """``INCIDENT_BOT_DB`` as messages show it: without the password."""
    return redact(db_location())


def open_service_store() -> DeliveryStore:
    """The delivery store named by ``INCIDENT_BOT_DB``, or one clear line saying why not.

    ``INCIDENT_BOT_DB_DURABILITY``: ``full`` (default) fsyncs every accepted delivery, so it survives
    power loss; ``normal`` survives a crash or kill of the bot but not of the machine, and takes more
    deliveries per second, the more so the slower the disk's fsync (``bench/bench_intake.py`` measures both).
    """
    from bot.store import StoreError, open_store

    location = db_location()
    durability = durability_from_env()
    try:
        return open_store(location, durability=durability)
    except (StoreError, ValueError) as exc:
        raise UserError(f"cannot open the delivery store INCIDENT_BOT_DB={redact(location)}: {exc}") from None


def prepare_store() -> None:
    """Create and migrate the store once, before any process forks. PostgreSQL may be away (a restart
    during an outage): then start all the same; the receivers spool deliveries, the worker waits for the
    database, and ``/readyz`` says degraded. A database too new for this code still stops the start."""
    from bot.store import SchemaVersionError, StoreError, open_store

    if not is_postgres_url_env():
        open_service_store().close()
        return
    try:
        open_store(db_location(), durability=durability_from_env()).close()
    except SchemaVersionError as exc:
        raise UserError(redact(str(exc))) from None
    except StoreError as exc:
        log.warning("starting without the delivery store %s: %s; deliveries are spooled until it answers",
                    db_shown(), redact(str(exc)))


def durability_from_env() -> Durability:
    text = os.environ.get("INCIDENT_BOT_DB_DURABILITY", "full").strip().lower()
    if text not in ("full", "normal"):
        raise UserError(f"INCIDENT_BOT_DB_DURABILITY must be full or normal, got {text!r}")
    return "normal" if text == "normal" else "full"


def spool_from_env() -> Spool | None:
    """The receivers' local spool (``INCIDENT_BOT_SPOOL``), when the shared store is PostgreSQL: a
    delivery that arrives while the database is away is kept on the replica's own disk, not refused."""
    if not is_postgres_url_env():
        return None  # a SQLite store is already on the receiver's own disk
    return Spool(os.environ.get("INCIDENT_BOT_SPOOL") or DEFAULT_SPOOL)


def open_receiver_store() -> DeliveryStore:
    spool = spool_from_env()
    if spool is None:
        return open_service_store()
    return SpoolingStore(_open_shared_store, spool)


def _open_shared_store() -> DeliveryStore:
    from bot.store import StoreError

    try:
        return open_service_store()
    except UserError as exc:  # the spool takes deliveries meanwhile; the next one tries again
        raise StoreError(str(exc)) from None


def wait_for_store(stop: threading.Event, retry: float = 2.0) -> DeliveryStore | None:
    """The worker's store; while it cannot be opened (PostgreSQL away at start), say so and keep trying."""
    while True:
        try:
            return open_service_store()
        except UserError as exc:
            if is_postgres_url_env():
                log.warning("%s; trying again in %.0f s", exc, retry)
                if stop.wait(retry):
                    return None
                continue
            raise


def is_postgres_url_env() -> bool:
    from bot.store import is_postgres_url

    return is_postgres_url(db_location())


def lease_from_env() -> timedelta:
    """``INCIDENT_BOT_LEASE_SECONDS``: how long a job a dead worker held waits before another takes it."""
    from bot.worker import DEFAULT_LEASE

    text = os.environ.get("INCIDENT_BOT_LEASE_SECONDS", "").strip()
    if not text:
        return DEFAULT_LEASE
    if not text.isdigit() or int(text) < 3:
        raise UserError(f"INCIDENT_BOT_LEASE_SECONDS must be a whole number of seconds, at least 3; got {text!r}")
    return timedelta(seconds=int(text))


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr through the redacting filter, and keep every file the process creates private.

    ``log_format``: ``text`` (gunicorn's lines look the same) or ``json`` (one object per line)."""
    from bot import logformat
    from bot import redact as redaction

    private_umask()
    logformat.choose(log_format)
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr)
    logformat.apply([h for h in logging.getLogger().handlers if getattr(h, "stream", None) is sys.stderr])
    redaction.secrets_from_env()
    redaction.install()


def private_umask() -> None:
    """Files the bot writes (stores, spool, WAL files, metrics) hold payloads: 0600 in 0700 directories."""
    os.umask(0o077)


def check_gitlab() -> str:
    """Authenticate with ``GITLAB_URL``/``GITLAB_TOKEN`` once; return the bot's username or one line."""
    from bot.gitlab.connect import check_token, make_gitlab
    from bot.gitlab.errors import GitLabConfigError

    url, token = gitlab_credentials()
    try:
        return check_token(make_gitlab(url, token, timeout=10.0))
    except (GitLabConfigError, ValueError) as exc:
        raise UserError(str(exc)) from None


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

    def __call__(self) -> Any:
        from bot.metrics import Metrics
        from bot.web.app import WebSettings, create_app

        return create_app(WebSettings.from_env(), store=open_receiver_store(), config=self.cfg, metrics=Metrics())


def _metrics_dir() -> tuple[str, bool]:
    """A fresh prometheus multiprocess directory: the operator's (emptied) or a temporary one."""
    from bot.metrics import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        return given, False
    return tempfile.mkdtemp(prefix="incident-bot-metrics-"), True


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.metrics import enable_multiprocess
    from bot.web.app import WebSettings

    setup_logging(args.log_level, args.log_format)
    try:
        WebSettings.from_env()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    lease_from_env()
    cfg = load_config(args.config)
    cfg = as_bot(cfg, check_gitlab())
    prepare_store()

    from bot.web.server import GunicornApp

    metrics_dir, temporary = _metrics_dir()
    enable_multiprocess(metrics_dir)
    child = [sys.executable, "-m", "bot", "worker", "--threads", str(args.threads), "--log-level", args.log_level]
    child += ["--log-format", args.log_format]
    child += ["--exit-with-parent", str(os.getpid())]
    if args.config:
        child += ["--config", args.config]
    server = GunicornApp(
        _ReceiverFactory(cfg),
        host=args.host,
        port=args.port,
        workers=args.workers,
        worker_class=args.worker_class,
        read_timeout=args.read_timeout,
        child_argv=child,
        child_grace=WORKER_GRACE,
        loglevel=args.log_level,
    )
    try:
        server.run()
    finally:
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


def retry_base_from_env() -> timedelta | None:
    """``INCIDENT_BOT_RETRY_SECONDS``: the first retry of a failed job (doubling after); unset: 10 s."""
    raw = os.environ.get("INCIDENT_BOT_RETRY_SECONDS")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise UserError(f"INCIDENT_BOT_RETRY_SECONDS={raw!r} is not a number of seconds") from None
    if seconds <= 0:
        raise UserError(f"INCIDENT_BOT_RETRY_SECONDS={raw!r} must be more than 0")
    return timedelta(seconds=seconds)


def dead_letter_retention_from_env() -> timedelta:
    """``INCIDENT_BOT_DEAD_LETTER_DAYS``: how long dead letters and their payloads are kept (default 14)."""
    raw = os.environ.get("INCIDENT_BOT_DEAD_LETTER_DAYS", "14")
    try:
        days = float(raw)
    except ValueError:
        raise UserError(f"INCIDENT_BOT_DEAD_LETTER_DAYS={raw!r} is not a number of days") from None
    if not 1 <= days <= 3650:
        raise UserError(f"INCIDENT_BOT_DEAD_LETTER_DAYS={raw!r} must be between 1 and 3650")
    return timedelta(days=days)


def sweep_interval_from_env() -> timedelta | None:
    """How often the worker sweeps (default 5 min); ``off`` for never (webhooks only)."""
    raw = os.environ.get("INCIDENT_BOT_SWEEP_SECONDS", "300")
    if raw.strip().lower() == "off":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        raise UserError(f"INCIDENT_BOT_SWEEP_SECONDS={raw!r} is not a number of seconds") from None
    if seconds < 10:
        raise UserError(f"INCIDENT_BOT_SWEEP_SECONDS={raw!r} is too short (at least 10)")
    return timedelta(seconds=seconds)


def cmd_sweep(args: argparse.Namespace) -> int:
    """One sweep now: queue the incidents that need a look, then (unless --queue-only) process the queue."""
    from bot.cli import renderer_for
    from bot.reconciler import Reconciler, client_from_env
    from bot.worker import Worker

    setup_logging(args.log_level, args.log_format)
    cfg = load_config(args.config)
    username = check_gitlab()
    cfg = as_bot(cfg, username)
    store = open_service_store()
    client = client_from_env(cfg)
    report = sweep(client, store, cfg, utcnow())
    print(report.summary())
    if args.queue_only:
        return 0
    reconciler = Reconciler(cfg, renderer_for(cfg), client, bot_username=username)
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
    location, shown = db_location(), db_shown()
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
    from bot.cli import renderer_for
    from bot.metrics import Metrics, multiprocess_dir
    from bot.reconciler import Reconciler, client_from_env
    from bot.worker import WorkerPool

    setup_logging(args.log_level, args.log_format)
    stop = threading.Event()
    _stop_on_signals(stop)
    if args.exit_with_parent:
        _watch_parent(args.exit_with_parent, stop)
    lease = lease_from_env()
    cfg = load_config(args.config)
    username = check_gitlab()
    cfg = as_bot(cfg, username)
    store = wait_for_store(stop)
    if store is None:  # stopped while waiting for the database
        return 0
    metrics = Metrics()
    metrics.watch_store(store)
    if args.metrics_port and not multiprocess_dir():
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, registry=metrics.registry)
    client = client_from_env(cfg, cfg.api.policy(on_call=metrics.on_api_call))
    reconciler = Reconciler(cfg, renderer_for(cfg), client, bot_username=username)
    sweep_every = sweep_interval_from_env()
    pool = WorkerPool(
        store,
        reconciler,
        threads=args.threads,
        metrics=metrics,
        lease=lease,
        retry_base=retry_base_from_env(),
        dead_letter_retention=dead_letter_retention_from_env(),
        drainer=(lambda: drain(spool, store)) if (spool := spool_from_env()) is not None else None,
        sweeper=(lambda: sweep(client, store, cfg, utcnow())) if sweep_every else None,
        sweep_every=sweep_every or timedelta(minutes=5),
    )
    log.info("worker: %d thread(s) on %s as @%s", args.threads, db_shown(), username)
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
    from bot.worker import incident_path_of

    store = open_service_store()
    try:
        if args.action == "list":
            jobs = store.dead_jobs()
            if not jobs:
                print("no dead letters")
            for job in jobs:
                error = " ".join((job.last_error or "").split())
                since = _when(job.updated_at)
                if job.sticky:  # a redelivery does not revive it; an edit of the incident or a retry does
                    since += " (waits for a change)"
                name = incident_path_of(store, job) or job.incident_key
                print(f"{job.id}\t{name}\t{job.attempts} attempts\tdead since {since}\t{error}")
            return 0
        revived = store.retry_dead(args.job_id, now=datetime.now(UTC))
        if args.job_id is not None and not revived:
            raise UserError(f"job {args.job_id} is not a dead letter (see `incident-bot dead-letters list`)")
        print(f"revived {revived} job{'s' if revived != 1 else ''}; the worker will pick them up")
        return 0
    finally:
        store.close()


# ------------------------------------------------------------------------------------- parsers


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
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
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    _log_format_option(p)

    p = add("worker", cmd_worker, "the reconcile worker alone (scale receivers and workers apart)")
    p.add_argument("--threads", type=_positive, default=2, help="reconcile worker threads (default 2)")
    p.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on this port (default: off)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    _log_format_option(p)
    p.add_argument("--exit-with-parent", type=int, default=0, help=argparse.SUPPRESS)

    p = add("sweep", cmd_sweep, "reconcile every open incident that needs it now (reminders due, missed events)")
    p.add_argument("--queue-only", action="store_true", help="only queue them for the running workers")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="warning")
    _log_format_option(p)

    p = add("db", cmd_db, "the delivery store's schema: `db upgrade` creates or migrates it")
    p.add_argument("action", choices=("upgrade",))

    p = add("dead-letters", cmd_dead_letters, "jobs that failed too often: list them, or queue them again")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="one line per dead job: id, incident, attempts, since, last error")
    retry = actions.add_parser("retry", help="queue one dead job (JOB_ID) or all of them again")
    retry.add_argument("job_id", nargs="?", type=int, metavar="JOB_ID")
