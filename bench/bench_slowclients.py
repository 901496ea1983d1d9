"""Intake under slow clients: ``incident-bot serve`` on loopback with many idle half-open connections.

    .venv/bin/python bench/bench_slowclients.py [--worker-class gevent] [--idle 5000] [--duration 5]
        [--connections 8] [--workers 2] [--read-timeout 5] [--samples 10] [--per-client 100]

Starts the simulated GitLab and ``python -m bot serve`` (SQLite store, durability ``normal``, sweep
off) and measures, in this order:

1. intake throughput with no idle connection: ``--connections`` keep-alive client threads post the
   example incident (about 9 KB, a fresh ``Idempotency-Key`` each) for ``--duration`` seconds;
2. with one client (``--attacker``, another loopback address) holding ``--idle`` connections open,
   each having sent half a request header and then nothing (a connection the server drops, for its
   read timeout or its bound per client address, is opened again at once, as an attacker would): the
   time for ``--samples`` single deliveries on fresh connections from 127.0.0.1 to be answered 2xx,
   ``--settle`` seconds after the connections were opened (the server still accepts the burst before)
   (a delivery with no answer within 10 s, GitLab's timeout, counts as failed);
3. the same throughput run while the idle connections are held.

It prints the figures and whether they meet the goal (every delivery answered within 2 s; throughput
with the idle connections within 20 % of without). ``--per-client 0`` turns the bound per client
address off, to compare. It raises its open-files limit to hold the connections (the server inherits
it) and stops by itself. The exit status is 0 either way: it is a measurement,
not a test (``tests/security/test_network.py`` holds the functional check). The client runs on the
same machine, so absolute rates are lower bounds; the ratio is what matters.
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.simgitlab import SimulatedGitLab  # noqa: E402

PAYLOAD = (ROOT / "examples" / "payloads" / "s1-incident.json").read_bytes()
SECRET = "bench-secret"
HALF_HEADER = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Gitlab-Event: Issue Ho"
GITLAB_TIMEOUT = 10.0


def headers() -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Issue Hook",
        "X-Gitlab-Token": SECRET,
        "Idempotency-Key": uuid.uuid4().hex,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class IdleHolder:
    """Holds ``count`` connections that sent half a header; reopens each one the server closes."""

    def __init__(self, port: int, count: int, source: str) -> None:
        self.port, self.count, self.source = port, count, source
        self.selector = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.reopened = 0
        self.failed_opens = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> None:
        sock = socket.socket()
        sock.settimeout(2)
        try:
            sock.bind((self.source, 0))
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(HALF_HEADER)
        except OSError:
            self.failed_opens += 1
            sock.close()
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ)

    def held(self) -> int:
        return len(self.selector.get_map())

    def start(self) -> None:
        for _ in range(self.count):
            self._open()
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:  # dropped by the server (read timeout): hold another one
                    self.selector.unregister(sock)
                    sock.close()
                    self.reopened += 1
            while self.held() < self.count and not self.stop.is_set():
                self._open()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]


def one_delivery(port: int) -> float | None:
    """Seconds until a delivery on a fresh connection is answered 2xx; None if not within GitLab's 10 s."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GITLAB_TIMEOUT)
    try:
        conn.request("POST", "/webhook", body=PAYLOAD, headers=headers())
        status = conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()
    return time.monotonic() - start if 200 <= status < 300 else None


def throughput(port: int, connections: int, duration: float) -> tuple[float, int]:
    """2xx deliveries per second over ``duration`` with ``connections`` keep-alive clients; and failures."""
    done, failed = [0] * connections, [0] * connections
    deadline = time.monotonic() + duration

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GITLAB_TIMEOUT)
        while time.monotonic() < deadline:
            try:
                conn.request("POST", "/webhook", body=PAYLOAD, headers=headers())
                response = conn.getresponse()
                response.read()
                if 200 <= response.status < 300:
                    done[n] += 1
                else:
                    failed[n] += 1
            except OSError:
                failed[n] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GITLAB_TIMEOUT)
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started), sum(failed)


def wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"serve did not answer /healthz: {log.read_text()[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker-class", default="gevent", choices=("gevent", "sync", "gthread"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--attacker", default="127.0.0.2", help="the loopback address the idle connections come from")
    parser.add_argument("--per-client", type=int, default=100, help="serve --per-client (0: no bound)")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--read-timeout", type=int, default=5)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds between opening the idle connections and the first sample"
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle + 4 * 1024
    if soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    with SimulatedGitLab() as sim, tempfile.TemporaryDirectory(prefix="bench-slow-") as tmp:
        port = free_port()
        log = Path(tmp) / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_", "PROMETHEUS_"))}
        env |= {
            "GITLAB_URL": sim.url,
            "GITLAB_TOKEN": sim.token,
            "GITLAB_WEBHOOK_SECRET": SECRET,
            "INCIDENT_BOT_DB": str(Path(tmp) / "bot.sqlite3"),
            "INCIDENT_BOT_DB_DURABILITY": "normal",
            "INCIDENT_BOT_SWEEP_SECONDS": "off",
            "INCIDENT_BOT_CONFIG": str(ROOT / "config" / "bot.yaml"),
            "PYTHONPATH": str(ROOT),
        }
        argv = [sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", str(args.workers)]
        argv += ["--threads", "1", "--worker-class", args.worker_class, "--read-timeout", str(args.read_timeout)]
        if args.worker_class == "gevent":
            argv += ["--per-client", str(args.per_client)]
        argv += ["--log-level", "warning"]
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=env, cwd=tmp, stdout=out, stderr=out, start_new_session=True)
        try:
            wait_healthy(port, proc, log)
            throughput(port, args.connections, 1.0)  # warm up
            base, base_failed = throughput(port, args.connections, args.duration)
            holder = IdleHolder(port, args.idle, args.attacker)
            opening = time.monotonic()
            holder.start()
            opened_in = time.monotonic() - opening
            try:
                time.sleep(args.settle)
                latencies = [one_delivery(port) for _ in range(args.samples)]
                loaded, loaded_failed = throughput(port, args.connections, args.duration)
                held = holder.held()
            finally:
                holder.close()
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    answered = [x for x in latencies if x is not None]
    ratio = loaded / base if base else 0.0
    worst = max(answered) if len(answered) == len(latencies) else float("inf")
    print(f"server: serve --worker-class {args.worker_class} --workers {args.workers} "
          f"--read-timeout {args.read_timeout} --per-client {args.per_client}; "
          f"client: {args.connections} keep-alive connections, {args.duration:g} s")
    print(f"one client at {args.attacker} opened {args.idle} half-open connections in {opened_in:.1f} s "
          f"and reopened every one the server closed; first sample {args.settle:g} s later")
    print(f"intake without idle connections: {base:8.0f} deliveries/s ({base_failed} failed)")
    print(f"intake with {args.idle} idle half-open:  {loaded:8.0f} deliveries/s ({loaded_failed} failed), "
          f"{ratio:.0%} of without")
    shown = ", ".join("none" if x is None else f"{x * 1000:.0f}" for x in latencies)
    print(f"single deliveries with {args.idle} idle held (ms): {shown}")
    if answered:
        print(f"  median {statistics.median(answered) * 1000:.0f} ms, worst {worst * 1000:.0f} ms; "
              f"{len(latencies) - len(answered)} of {len(latencies)} not answered 2xx within {GITLAB_TIMEOUT:g} s")
    print(f"idle connections held at the end: {held}; reopened after the server dropped them: {holder.reopened}; "
          f"failed to open: {holder.failed_opens}")
    goal = worst < 2.0 and ratio >= 0.8
    print(f"goal (every delivery 2xx within 2 s, throughput within 20 %): {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
