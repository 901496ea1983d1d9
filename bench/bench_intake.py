"""Webhook intake throughput: the real ``/webhook`` next to a bare Flask endpoint, same gunicorn settings.

    .venv/bin/python bench/bench_intake.py [--duration 5] [--connections 8] [--workers 2] [--client auto]

Both servers are gunicorn (embedded exactly as ``incident-bot serve`` embeds it) on 127.0.0.1 with the
same worker class and count, and get the same payload (the example incident, about 4 KB) with a unique
``Idempotency-Key`` per request. The real endpoint checks the token, parses, routes, and records the
delivery durably (SQLite, fsync on every commit, coalesced into one job) before answering 202; the bare
one answers 200 without reading the body. The load generator is ``wrk`` when installed (Debian:
``apt-get install wrk``), otherwise a threaded Python keep-alive client, which needs more of the
shared CPU and so reports lower figures for both. Afterwards every delivery the real endpoint
acknowledged is looked up in the store.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = ROOT / "examples" / "payloads" / "s1-incident.json"
SECRET = "bench-secret"
MODES = ("bare", "nostore", "normal", "full")
LABELS = {
    "bare": "bare Flask (200, body unread)",
    "nostore": "/webhook, no-op store (diagnostic)",
    "normal": "/webhook, SQLite durability=normal",
    "full": "/webhook, SQLite durability=full",
}

WRK_SCRIPT = r"""
local counter, thread_id, n = 0, 0, 0
local body = io.open(os.getenv("BENCH_PAYLOAD"), "rb"):read("*a")
function setup(thread) thread:set("tid", thread_id); thread_id = thread_id + 1 end
function init(args)
  prefix = os.getenv("BENCH_RUN") .. "-" .. tid .. "-"
  ids = io.open(os.getenv("BENCH_IDS") .. "." .. tid, "w")
end
function request()
  counter = counter + 1
  return wrk.format("POST", "/webhook", {
    ["Content-Type"] = "application/json", ["X-Gitlab-Event"] = "Issue Hook",
    ["X-Gitlab-Token"] = os.getenv("BENCH_SECRET"), ["Idempotency-Key"] = prefix .. counter}, body)
end
function response(status, headers, body)
  if status == 202 then
    local id = body:match('"delivery":"([^"]+)"')
    if id then ids:write(id, "\n") end
  end
end
"""


# ---------------------------------------------------------------------------------------- servers


def bare_app() -> Any:
    from flask import Flask

    app = Flask("bare")

    @app.post("/webhook")
    def webhook() -> tuple[str, int]:
        return "ok", 200

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


class NoopStore:
    """Answers like a store and keeps nothing: shows what the intake costs without the durable write."""

    def record_delivery(self, delivery_id: str, incident_key: str | None, *args: Any) -> Any:
        from bot.store import RecordResult

        return RecordResult(new=True, job_id=1 if incident_key else None)

    def ping(self) -> None:
        pass

    def stats(self) -> Any:
        raise RuntimeError("no statistics")


def real_app(db: str, mode: str) -> Any:
    from bot.config import load_config
    from bot.metrics import Metrics
    from bot.store import open_store
    from bot.web.app import WebSettings, create_app

    store = NoopStore() if mode == "nostore" else open_store(db, durability="normal" if mode == "normal" else "full")
    return create_app(WebSettings(secret=SECRET), store=store, config=load_config(), metrics=Metrics())


def serve(mode: str, port: int, workers: int, worker_class: str, db: str) -> None:
    """The server side (a child process of the benchmark): the same gunicorn setup for every mode."""
    import logging

    from bot.metrics import enable_multiprocess
    from bot.web.server import GunicornApp

    logging.basicConfig(level=logging.WARNING)
    if mode != "bare":
        from bot.store import open_store

        open_store(db).close()
        enable_multiprocess(tempfile.mkdtemp(prefix="bench-metrics-"))
    factory = bare_app if mode == "bare" else lambda: real_app(db, mode)
    GunicornApp(
        factory, host="127.0.0.1", port=port, workers=workers, worker_class=worker_class, loglevel="warning"
    ).run()


# ---------------------------------------------------------------------------------------- clients


@dataclass
class Result:
    requests: int = 0
    seconds: float = 0.0
    non_2xx: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    accepted: set[str] = field(default_factory=set)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}[unit]


def run_wrk(port: int, duration: float, connections: int, workdir: Path) -> Result:
    script = workdir / "intake.lua"
    script.write_text(WRK_SCRIPT)
    ids = workdir / f"ids-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "BENCH_PAYLOAD": str(PAYLOAD),
        "BENCH_SECRET": SECRET,
        "BENCH_IDS": str(ids),
        "BENCH_RUN": uuid.uuid4().hex[:8],
    }
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=duration + 30,
    )
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    out = proc.stdout
    result = Result(seconds=duration)
    result.requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    result.seconds = _ms(re.search(r"requests in ([\d.]+(?:us|ms|s))", out).group(1)) / 1000  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result.non_2xx = int(non.group(1)) if non else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result.errors = sum(int(g) for g in errors.groups()) if errors else 0
    result.p50_ms = _ms(re.search(r"^\s*50%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    result.p99_ms = _ms(re.search(r"^\s*99%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    for part in workdir.glob(ids.name + ".*"):
        result.accepted |= set(part.read_text().split())
    return result


def run_python(port: int, duration: float, connections: int) -> Result:
    """A keep-alive HTTP/1.1 client per thread; reconnects when the server closes (sync workers do)."""
    body = PAYLOAD.read_bytes()
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    result = Result(seconds=duration)
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def client(n: int) -> None:
        conn: http.client.HTTPConnection | None = None
        mine: list[float] = []
        accepted: set[str] = set()
        non_2xx = errors = i = 0
        while time.perf_counter() < stop_at:
            i += 1
            headers = {
                "Content-Type": "application/json",
                "X-Gitlab-Event": "Issue Hook",
                "X-Gitlab-Token": SECRET,
                "Idempotency-Key": f"{run}-{n}-{i}",
            }
            start = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/webhook", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn = None
                continue
            mine.append(time.perf_counter() - start)
            if response.status == 202:
                accepted.add(json.loads(data)["delivery"])
            elif not 200 <= response.status < 300:
                non_2xx += 1
            if response.will_close:
                conn.close()
                conn = None
        with lock:
            latencies.extend(mine)
            result.accepted |= accepted
            result.non_2xx += non_2xx
            result.errors += errors

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.requests = len(latencies)
    if latencies:
        cuts = statistics.quantiles(latencies, n=100)
        result.p50_ms, result.p99_ms = cuts[49] * 1000, cuts[98] * 1000
    return result


# ---------------------------------------------------------------------------------------- driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not become ready")


def measure(mode: str, args: argparse.Namespace, workdir: Path, db: Path) -> Result:
    port = free_port()
    cmd = [
        sys.executable,
        __file__,
        "--serve",
        mode,
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--db",
        str(db),
    ]
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        wait_ready(port, proc)
        if args.client == "wrk":
            run_wrk(port, 1, args.connections, workdir)  # warm-up
            return run_wrk(port, args.duration, args.connections, workdir)
        run_python(port, 0.5, args.connections)
        return run_python(port, args.duration, args.connections)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def check_store(db: Path, accepted: set[str]) -> tuple[int, int]:
    """(accepted deliveries found in the store, missing ones)."""
    from bot.store import open_store

    with open_store(db) as store:
        missing = sum(1 for delivery_id in accepted if store.get_delivery(delivery_id) is None)
    return len(accepted) - missing, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint (default 5)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workers, args.worker_class, args.db)
        return 0
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        workdir = Path(tmp)
        results = {mode: measure(mode, args, workdir, workdir / f"{mode}.sqlite3") for mode in MODES}
        checks = {mode: check_store(workdir / f"{mode}.sqlite3", results[mode].accepted) for mode in ("normal", "full")}
    print(
        f"intake benchmark: gunicorn -w {args.workers} -k {args.worker_class}, {args.connections} connections, "
        f"{args.duration:g} s each, client {args.client}, payload {PAYLOAD.stat().st_size} bytes, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'endpoint':<36} {'req/s':>8} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'errors':>7}")
    bare = results["bare"].rps or 1.0
    for mode, r in results.items():
        print(
            f"{LABELS[mode]:<36} {r.rps:>8.0f} {r.rps / bare:>5.2f}x {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.non_2xx:>8} {r.errors:>7}"
        )
    print("goal: /webhook >= 0.80x of the bare endpoint")
    missing = 0
    for mode, (found, lost) in checks.items():
        missing += lost
        acked = len(results[mode].accepted)
        print(f"store check ({mode}): {acked} acknowledged with 202, {found} in the store, {lost} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
