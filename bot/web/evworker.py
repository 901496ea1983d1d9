"""The receivers' gunicorn worker: gevent's event loop, with read timeouts on every connection and a bound
on the connections one client address may hold.

A connection costs a greenlet, not a worker, so idle or slow clients cannot hold intake: each worker
serves up to ``worker_connections`` at once. Two timeouts bound what one connection can hold:

- header: the whole request line and headers must arrive within ``keepalive`` seconds of the connection
  (or of the previous request on it); gunicorn's async loop enforces it with a ``gevent.Timeout``;
- body and answer: each read and write of the socket must progress within the same number of seconds.

And one client address cannot take the ``worker_connections`` for itself: beyond ``per_client`` of them,
its oldest idle connection is closed for the new one (``bot.web.clientcap``).

This module imports gevent, so gunicorn loads it by name (``bot.web.evworker.IntakeWorker``) only when
that worker class is chosen; the monkey-patching happens in the worker process after the fork.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

from bot.web.clientcap import DEFAULT_GRACE, DEFAULT_PER_CLIENT, ClientTable


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
        super().init_process()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        admission = self.clients.admit(_address(addr), client, time.monotonic())
        for old in admission.shed:
            _drop(old.sock)
        if admission.conn is None:
            self.log.debug("refused a connection from %s: it holds %d already", _address(addr), self.clients.held(
                _address(addr)))
            _drop(client)
            client.close()
            return
        try:
            # GeventWorker.handle makes the socket fully blocking; a timeout instead bounds every recv and send.
            client.settimeout(float(self.cfg.keepalive))
            AsyncWorker.handle(self, listener, client, addr)
        finally:
            self.clients.release(admission.conn)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        self.clients.busy(sock)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            self.clients.idle(sock, time.monotonic())
