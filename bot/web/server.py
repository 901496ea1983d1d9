"""gunicorn, embedded: the production WSGI server for the receiver, supervising the reconcile worker process.

Why gevent workers by default, and how the worker process is supervised: docs/architecture.md.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger

from bot import logformat
from bot.metrics import mark_process_dead
from bot.redact import install as install_redaction
from bot.web.clientcap import DEFAULT_PER_CLIENT

WORKER_CLASSES = ("gevent", "sync", "gthread")
GUNICORN_CLASSES = {"gevent": "bot.web.evworker.IntakeWorker", "sync": "sync", "gthread": "gthread"}
DEFAULT_READ_TIMEOUT = 5
"""Seconds a client has to send its whole request header, and each part of its body."""
DEFAULT_CONNECTIONS = 1000
"""Connections one receiver process serves at once (gunicorn's ``worker_connections``)."""


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with the redacting filter on its handlers (they do not pass through the root's)
    and the bot's log format (``bot.logformat``), so its lines and the bot's look the same."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        handlers = self.error_log.handlers + self.access_log.handlers
        logformat.apply(handlers)
        install_redaction(handlers)


class ChildProcess:
    """One supervised child (the reconcile worker), restarted with a growing delay if it dies."""

    def __init__(self, argv: Sequence[str], log: Any, *, grace: float = 20.0) -> None:
        self.argv = list(argv)
        self.log = log
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.delay = 1.0
        self.started_at = 0.0
        self.next_start = 0.0

    def spawn(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        self.log.info("started the reconcile worker (pid %s)", self.proc.pid)

    def poll(self) -> None:
        """Notice an exit. Runs before gunicorn's ``waitpid(-1)`` so the exit status is ours to read."""
        if self.proc is None or self.proc.poll() is None:
            return
        code, self.proc = self.proc.returncode, None
        if self.stopping:
            return
        ran = time.monotonic() - self.started_at
        self.delay = 1.0 if ran > 60 else min(self.delay * 2, 60.0)
        self.next_start = time.monotonic() + self.delay
        self.log.error("the reconcile worker exited (status %s); restarting it in %.0f s", code, self.delay)

    def maintain(self) -> None:
        self.poll()
        if self.proc is None and not self.stopping and time.monotonic() >= self.next_start:
            self.spawn()

    def terminate(self) -> None:
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        """Wait out the worker's grace period (it finishes the reconcile it is in), then kill it."""
        if self.proc is None:
            return
        try:
            self.proc.wait(self.grace + 2)
        except subprocess.TimeoutExpired:
            self.log.error("the reconcile worker did not stop in time; killing it")
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class _Arbiter(Arbiter):
    """gunicorn's master plus one supervised child; hooks into the master loop, no extra threads."""

    def __init__(self, app: GunicornApp) -> None:
        super().__init__(app)
        self.child = ChildProcess(app.child_argv, self.log, grace=app.child_grace) if app.child_argv else None

    def start(self) -> None:
        super().start()
        if self.child is not None:
            self.child.spawn()

    def manage_workers(self) -> None:
        super().manage_workers()
        if self.child is not None:
            self.child.maintain()

    def reap_workers(self) -> None:
        if self.child is not None:
            self.child.poll()
        super().reap_workers()

    def stop(self, graceful: bool = True) -> None:
        if self.child is not None:
            self.child.terminate()  # first, so it drains while the HTTP workers do
        super().stop(graceful)
        if self.child is not None:
            self.child.wait()


def _child_exit(server: Any, worker: Any) -> None:
    mark_process_dead(worker.pid)


def bind_address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


class GunicornApp(BaseApplication):  # type: ignore[misc]
    """gunicorn with options given in code; ``factory`` builds the WSGI app in each worker process,
    after the fork, so every process opens its own store connection and metric files."""

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        workers: int = 2,
        worker_class: str = "gevent",
        threads: int = 4,
        read_timeout: int = DEFAULT_READ_TIMEOUT,
        worker_connections: int = DEFAULT_CONNECTIONS,
        per_client: int = DEFAULT_PER_CLIENT,
        child_argv: Sequence[str] | None = None,
        child_grace: float = 20.0,
        graceful_timeout: int = 25,
        loglevel: str = "info",
        accesslog: str | None = None,
    ) -> None:
        if worker_class not in WORKER_CLASSES:
            raise ValueError(f"worker class must be one of {', '.join(WORKER_CLASSES)}")
        if read_timeout < 1:
            raise ValueError(f"the read timeout must be at least 1 s, got {read_timeout}")
        if per_client < 0:
            raise ValueError(f"the connections per client must be 0 (no bound) or more, got {per_client}")
        self.factory = factory
        # Read by the gevent worker (bot.web.evworker) through its ``app``.
        self.per_client = per_client
        self.child_argv = list(child_argv or [])
        self.child_grace = child_grace
        self.options: dict[str, Any] = {
            "bind": bind_address(host, port),
            "workers": workers,
            "worker_class": GUNICORN_CLASSES[worker_class],
            "threads": threads if worker_class == "gthread" else 1,
            "worker_connections": worker_connections,
            # Intake takes milliseconds; a request still running after 30 s is a stuck worker.
            "timeout": 30,
            "graceful_timeout": graceful_timeout,
            # The gevent worker's header and read timeout (and, for all classes, the keep-alive idle time).
            "keepalive": read_timeout,
            "logger_class": RedactingLogger,
            "loglevel": loglevel,
            "accesslog": accesslog,
            "errorlog": "-",
            "proc_name": "incident-bot",
            "child_exit": _child_exit,
            # The control socket would be one more thread in the master and a file in $HOME.
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()

    def run(self) -> None:
        try:
            _Arbiter(self).run()
        except RuntimeError as exc:
            raise SystemExit(f"incident-bot: {exc}") from exc
