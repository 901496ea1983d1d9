"""How many connections one client address may hold in a receiver process, and which to drop beyond that.

gevent makes an idle connection cheap, not free: each receiver process serves at most
``worker_connections`` at once, and a client that opens thousands of connections and sends half a header
on each fills them all; a delivery from GitLab then waits in the kernel's backlog until the read timeout
drops some (measured: 4 to 9 s with 4,000 to 6,400 held; GitLab gives up at 10 s). So each process
bounds the connections per client address. A new connection beyond the bound closes that address's
oldest *idle* connection (one waiting for a request header) that has waited at least ``grace`` seconds;
if it has none, the new connection is the one closed. Connections in the middle of a request are never
dropped, and other addresses are not affected.

GitLab sends its deliveries from a few addresses, each delivery on a short connection that sends its
header at once: it is never idle for ``grace`` and holds a handful of connections even in a burst, far
below the default bound. Behind a proxy every connection comes from the proxy's address: give the bound
at least the proxy's concurrent connections to the bot (a proxy that buffers whole requests never holds an
idle one), or turn it off. ``X-Forwarded-For`` is never used for this: anyone can write it, and it arrives
only with the header, which is exactly what a half-open connection never sends.

Pure bookkeeping, no sockets and no gevent: ``bot.web.evworker`` calls it and closes what it says.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PER_CLIENT = 100
"""Connections one client address may hold in one receiver process (0: no bound)."""
DEFAULT_GRACE = 1.0
"""Seconds a connection must have waited for its request header before it may be dropped for a new one."""


@dataclass(eq=False)
class Conn:
    """One accepted connection: whose it is, and since when it waits for a request header (None: busy)."""

    address: str
    sock: Any
    idle_since: float | None


@dataclass
class Admission:
    """What to do with a new connection: ``conn`` to track it (None: close it at once), ``shed``: the
    connections to close to make room."""

    conn: Conn | None
    shed: list[Conn] = field(default_factory=list)


class ClientTable:
    """The connections of one receiver process, by client address, oldest first."""

    def __init__(self, per_client: int = DEFAULT_PER_CLIENT, grace: float = DEFAULT_GRACE) -> None:
        self.per_client = per_client
        self.grace = grace
        self.by_address: dict[str, OrderedDict[Conn, None]] = {}
        self.by_sock: dict[int, Conn] = {}
        self.shed_total = 0
        self.refused_total = 0

    def admit(self, address: str, sock: Any, now: float) -> Admission:
        conns = self.by_address.setdefault(address, OrderedDict())
        shed: list[Conn] = []
        if self.per_client and len(conns) >= self.per_client:
            oldest = self._oldest_idle(conns, now)
            if oldest is None:
                self.refused_total += 1
                if not conns:
                    del self.by_address[address]
                return Admission(None)
            self._forget(oldest)
            shed.append(oldest)
            self.shed_total += 1
        conn = Conn(address, sock, now)
        self.by_address.setdefault(address, conns)[conn] = None  # _forget drops an address left empty
        self.by_sock[id(sock)] = conn
        return Admission(conn, shed)

    def _oldest_idle(self, conns: OrderedDict[Conn, None], now: float) -> Conn | None:
        candidates = [c for c in conns if c.idle_since is not None and now - c.idle_since >= self.grace]
        return min(candidates, key=lambda c: c.idle_since or 0.0) if candidates else None

    def busy(self, sock: Any) -> None:
        """The connection's request header arrived: it is being served and is never dropped."""
        conn = self.by_sock.get(id(sock))
        if conn is not None:
            conn.idle_since = None

    def idle(self, sock: Any, now: float) -> None:
        """The answer went out; the connection waits for its next request (keep-alive)."""
        conn = self.by_sock.get(id(sock))
        if conn is not None:
            conn.idle_since = now

    def release(self, conn: Conn) -> None:
        self._forget(conn)

    def _forget(self, conn: Conn) -> None:
        conns = self.by_address.get(conn.address)
        if conns is not None:
            conns.pop(conn, None)
            if not conns:
                del self.by_address[conn.address]
        if self.by_sock.get(id(conn.sock)) is conn:
            del self.by_sock[id(conn.sock)]

    def held(self, address: str) -> int:
        return len(self.by_address.get(address, ()))
