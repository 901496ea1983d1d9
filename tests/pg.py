"""A throw-away PostgreSQL server on 127.0.0.1 for tests and benchmarks.

``initdb`` + ``pg_ctl`` from the distribution's server package (Debian: ``apt-get install postgresql``, found
under ``/usr/lib/postgresql/<major>/bin``), a data directory in a temp dir, TCP on loopback only (no Unix
socket, so it never collides with a system cluster), trust authentication (only local processes can reach
it), and durability switched off (``fsync=off``, unless ``durable=True``): the data is deleted when the
server stops, so syncing it would only slow the tests down.

PostgreSQL refuses to run as root. Under root the server runs as the ``postgres`` system user the Debian
package creates (else ``nobody``), which then owns the temp dir.

    with PostgresServer.start() as server:
        url = server.create_database("scratch")
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

__all__ = [
    "INSTALL_HINT",
    "PSYCOPG_HINT",
    "PostgresNotInstalled",
    "PostgresServer",
    "PostgresTestDatabase",
    "find_bindir",
    "postgres_unavailable",
]

INSTALL_HINT = "PostgreSQL not installed: apt-get install postgresql to run the PostgreSQL store tests"
SUPERUSER = "incident_bot"
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "''",  # TCP only: the -o string goes through a shell
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "max_wal_size": "1GB",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}

_NOT_DURABLE = ("fsync", "full_page_writes")


class PostgresNotInstalled(RuntimeError):
    """No ``initdb``/``pg_ctl`` on this machine."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path)) or (0,)


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres`` of the newest installed server, if any.

    Debian keeps them out of ``PATH`` (``/usr/lib/postgresql/<major>/bin``); ``PG_BINDIR`` overrides."""
    candidates: list[str] = []
    if override := os.environ.get("PG_BINDIR"):
        candidates.append(override)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    if on_path := shutil.which("pg_ctl"):
        candidates.append(str(Path(on_path).resolve().parent))
    for directory in candidates:
        path = Path(directory)
        if all((path / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    """The OS user to run the server as: None (ourselves) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and found neither a 'postgres' nor a 'nobody' user to run PostgreSQL as")


@dataclass
class PostgresServer:
    """A running throw-away server; :meth:`stop` (or leaving the ``with`` block) kills it and deletes its data."""

    bindir: Path
    root: Path
    port: int
    user: str | None
    durable: bool = False
    """Keep PostgreSQL's default durability (fsync, full page writes): for benchmarks, whose commit rates
    mean nothing without it. Tests run without."""

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, bindir: Path | None = None, *, durable: bool = False, attempts: int = 3) -> Self:
        """initdb a fresh cluster in a temp dir and start it; raises :class:`PostgresNotInstalled` without
        binaries, ``RuntimeError`` (with the server log) when it does not come up."""
        bindir = bindir or find_bindir()
        if bindir is None:
            raise PostgresNotInstalled(INSTALL_HINT)
        user = _server_user()
        root = Path(tempfile.mkdtemp(prefix="incident-bot-pg-"))
        try:
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(root, entry.pw_uid, entry.pw_gid)
            server = cls(bindir=bindir, root=root, port=0, user=user, durable=durable)
            server._run(
                "initdb",
                "--pgdata",
                str(server.data_dir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--no-instructions",
            )
            # The port is picked free and then bound by the server a moment later; another process may take
            # it in between, so a failed start is retried on a new port.
            for attempt in range(1, attempts + 1):
                server.port = _free_port()
                try:
                    server._pg_ctl_start()
                    return server
                except RuntimeError:
                    if attempt == attempts:
                        raise
            raise AssertionError("unreachable")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            cwd=self.root,
            user=self.user,
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")

    def _pg_ctl_start(self) -> None:
        settings = {k: v for k, v in _SERVER_SETTINGS.items() if not (self.durable and k in _NOT_DURABLE)}
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        log = self.root / "server.log"
        try:
            self._run(
                "pg_ctl",
                "start",
                "--pgdata",
                str(self.data_dir),
                "--log",
                str(log),
                "--wait",
                "--timeout",
                "60",
                "-o",
                f"-p {self.port} {options}",
            )
        except RuntimeError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{exc}\n{tail}") from None

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL (psycopg is imported here, not at module import)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def pause(self) -> None:
        """Stop the server but keep its data, as in an outage; :meth:`resume` brings it back on the same port."""
        self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "fast", "--wait")

    def resume(self) -> None:
        self._pg_ctl_start()

    def stop(self) -> None:
        """Stop at once (``immediate``: nothing in it is worth a clean shutdown) and delete the data."""
        if self.data_dir.exists():
            with contextlib.suppress(RuntimeError):
                self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "immediate", "--wait")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


PSYCOPG_HINT = (
    "psycopg not installed: pip install 'psycopg[binary]' (or pip install -e '.[test]') to run the PostgreSQL "
    "store tests"
)


def postgres_unavailable(reason: str) -> None:
    """Skip the test, or fail it under CI, which must run every backend."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, and CI never skips the PostgreSQL tests)", pytrace=False)
    pytest.skip(reason)


@dataclass
class PostgresTestDatabase:
    """Hands out fresh, empty stores' URLs in one database."""

    base_url: str
    admin: Any
    """An autocommit psycopg connection to the database, for creating schemas and test-only surgery."""
    created: list[str] = field(default_factory=list)
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def new_url(self) -> str:
        """The URL of a new empty schema, named in the URL's ``search_path`` and ``application_name`` (so a test
        can find the sessions of its own processes in ``pg_stat_activity``)."""
        schema = f"t{os.getpid()}_{next(self._numbers)}"
        self.admin.execute(f'CREATE SCHEMA "{schema}"')
        self.created.append(schema)
        separator = "&" if "?" in self.base_url else "?"
        options = quote(f"-c search_path={schema}", safe="")
        return f"{self.base_url}{separator}options={options}&application_name={self._application_name(schema)}"

    @staticmethod
    def _application_name(schema: str) -> str:
        return f"incident-bot-test-{schema}"

    def end_sessions(self, url: str) -> int:
        """End every session opened with ``url`` (as a database restart would) and wait until they are gone,
        so whatever a killed client had sent is committed or rolled back. Returns how many there were."""
        from psycopg.conninfo import conninfo_to_dict

        name = conninfo_to_dict(url).get("application_name")
        rows = self.admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
        assert all(ended for (ended,) in rows), "a session outlived pg_terminate_backend's timeout"
        return len(rows)
