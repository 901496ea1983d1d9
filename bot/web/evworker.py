"""The receivers' gunicorn worker: gevent's event loop, with read timeouts on every connection.

A connection costs a greenlet, not a worker, so idle or slow clients cannot hold intake: each worker
serves up to ``worker_connections`` at once. Two timeouts bound what one connection can hold:

- header: the whole request line and headers must arrive within ``keepalive`` seconds of the connection
  (or of the previous request on it); gunicorn's async loop enforces it with a ``gevent.Timeout``;
- body and answer: each read and write of the socket must progress within the same number of seconds.

This module imports gevent, so gunicorn loads it by name (``bot.web.evworker.IntakeWorker``) only when
that worker class is chosen; the monkey-patching happens in the worker process after the fork.
"""

from __future__ import annotations

import warnings
from typing import Any

from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker

# gevent patches the standard library in the worker after the fork, when the master has already imported ssl
# (through urllib3, which the shared modules pull in). The receivers open no TLS connection (they make no
# GitLab or Slack call: docs/architecture.md), so an unpatched ssl is never used here; the warning would only
# be noise at every start.
warnings.filterwarnings("ignore", message="Monkey-patching ssl after ssl has already been imported")


class IntakeWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with a per-read and per-write timeout on client sockets."""

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        # GeventWorker.handle makes the socket fully blocking; a timeout instead bounds every recv and send.
        client.settimeout(float(self.cfg.keepalive))
        AsyncWorker.handle(self, listener, client, addr)
