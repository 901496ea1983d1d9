"""A loopback HTTP server for the simulated platforms.

Every simulator (GitLab, Slack, PagerDuty, the status pages) serves over real HTTP on ``127.0.0.1``: the standard
library's ``ThreadingHTTPServer`` on a free port, served from a daemon thread, started and stopped with
``start()``/``stop()`` or ``with``. This module is that plumbing, once; what a platform answers stays in its
own package. It imports nothing of the bot.
"""

from __future__ import annotations

import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

S = TypeVar("S")


class LoopbackServer(ThreadingHTTPServer, Generic[S]):
    """A threading HTTP server that knows its simulator (``sim``), binds without a DNS lookup, logs nothing."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sim: S) -> None:
        self.sim = sim
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]  # type: ignore[assignment]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients vanish mid-request on purpose here (timeouts, resets, stop())


class LoopbackHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no Nagle delay, no access log."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; do not wait for an ACK between

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        """The request body, by its ``Content-Length`` (empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""


class Loopback:
    """Serve ``handler`` on ``http://<host>:<port><url_path>`` from a daemon thread.

    A subclass sets ``handler`` (and may set ``server_class``, ``url_path``, ``thread_name``). The port is the
    one asked for, or a free one chosen at the first ``start()`` and kept after ``stop()``, so a restarted
    simulator answers on the same URL. ``stopping`` is set while stopped (handlers wait on it, not on time).
    """

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    server_class: ClassVar[type[LoopbackServer[Any]]] = LoopbackServer
    url_path: ClassVar[str] = ""
    thread_name: ClassVar[str] = ""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self.stopping = threading.Event()
        self._httpd: LoopbackServer[Any] | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}{self.url_path}"

    @property
    def serving(self) -> bool:
        return self._httpd is not None

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self.stopping.clear()
        self._httpd = self.server_class((self._host, self._port), self.handler, self)
        self._port = self._httpd.server_address[1]
        self._on_start()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name or type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        httpd, self._httpd = self._httpd, None
        self.stopping.set()
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        self._on_stop(httpd)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _on_start(self) -> None:
        """Bound, not yet serving: a subclass learns its URL here."""

    def _on_stop(self, httpd: LoopbackServer[Any]) -> None:
        """No longer accepting: a subclass closes what it holds open here."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
