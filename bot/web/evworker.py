"""The receivers' gunicorn worker: gevent's event loop, with read timeouts on every connection and a bound
on the connections one client address may hold.

A connection costs a greenlet, not a worker, so idle or slow clients cannot hold intake: each worker
serves up to ``worker_connections`` at once. Two timeouts bound what one connection can hold:

- header: the whole request line and headers must arrive within ``keepalive`` seconds of the connection
  (or of the previous request on it); gunicorn's async loop enforces it with a ``gevent.Timeout``;
- body and answer: each read and write of the socket must progress within the same number of seconds.

And one client address cannot take the ``worker_connections`` for itself: beyond ``per_client`` of them,
its oldest idle connection is closed for the new one (``bot.web.clientcap``), or, with none idle long
enough, the new one is held unread and closed a minute later, outside the pool.

This module imports gevent, so gunicorn loads it by name (``bot.web.evworker.IntakeWorker``) only when
that worker class is chosen; the monkey-patching happens in the worker process after the fork.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import time
import warnings
from collections import deque
from typing import Any

import gevent
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from bot.web.clientcap import DEFAULT_GRACE, DEFAULT_PER_CLIENT, ClientTable

# gevent patches the standard library in the worker after the fork, when the master has already imported ssl
# (through urllib3, which the shared modules pull in). The receivers open no TLS connection (they make no
# GitLab or Slack call: docs/architecture.md), so an unpatched ssl is never used here; the warning would only
# be noise at every start.
warnings.filterwarnings("ignore", message="Monkey-patching ssl after ssl has already been imported")

HOLD_SECONDS = 60.0
"""How long a connection beyond its address's bound is held before it is closed (at least 4 read timeouts)."""


def _address(addr: Any) -> str:
    """The client's IP address (a UNIX socket's peer has none: all of them count as one)."""
    return str(addr[0]) if isinstance(addr, tuple) and addr else "unix"


def _drop(sock: Any) -> None:
    """End a connection another greenlet is reading: its read sees the end of the stream and it stops as
    for a client that went away (closing the socket under it would log an error instead)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class IntakeWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with a per-read and per-write timeout on client sockets, and a bound on the
    connections per client address."""

    def init_process(self) -> None:
        self.clients = ClientTable(
            getattr(self.app, "per_client", DEFAULT_PER_CLIENT), getattr(self.app, "per_client_grace", DEFAULT_GRACE)
        )
        self.held: deque[tuple[float, int]] = deque()
        self.hold_limit = _raise_open_files_limit() // 2
        self.hold_seconds = max(HOLD_SECONDS, 4.0 * float(self.cfg.keepalive))
        self.sweeper: Any = None
        super().init_process()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        admission = self.clients.admit(_address(addr), client, time.monotonic())
        for old in admission.shed:
            _drop(old.sock)
        if admission.conn is None:
            self._hold(client)
            return
        try:
            # GeventWorker.handle makes the socket fully blocking; a timeout instead bounds every recv and send.
            client.settimeout(float(self.cfg.keepalive))
            AsyncWorker.handle(self, listener, client, addr)
        finally:
            self.clients.release(admission.conn)

    def _hold(self, client: Any) -> None:
        """A connection beyond its address's bound is held, unread and unanswered, then closed: no greenlet,
        no slot of the pool, only a file descriptor. Closing it at once would have the client open another
        at once, and a client that opens them faster than they are closed fills the kernel's queue of
        connections waiting to be accepted, where GitLab's delivery would wait behind them."""
        # Detached, gevent's close after this handler returns leaves the connection open; the bare descriptor
        # is closed here later.
        self.held.append((time.monotonic(), client.detach()))
        while len(self.held) > self.hold_limit:
            _close_fd(self.held.popleft()[1])
        if self.sweeper is None:
            self.sweeper = gevent.spawn(self._sweep_held)

    def _sweep_held(self) -> None:
        while True:
            deadline = time.monotonic() - self.hold_seconds
            while self.held and self.held[0][0] <= deadline:
                _close_fd(self.held.popleft()[1])
            gevent.sleep(1.0)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        self.clients.busy(sock)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            self.clients.idle(sock, time.monotonic())


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _raise_open_files_limit() -> int:
    """Raise this process's open-files limit to its hard limit (connections held cost one each); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, 65536) if hard == resource.RLIM_INFINITY else hard
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return max(soft - 256, 0)
