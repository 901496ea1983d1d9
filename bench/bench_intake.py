"""Webhook intake throughput: the real ``/webhook`` next to a bare Flask endpoint, same gunicorn settings.

    .venv/bin/python bench/bench_intake.py [--duration 5] [--rounds 1] [--connections 8]
        [--workers 2] [--worker-class sync|gthread] [--threads 4] [--modes bare,parse,nostore,normal,full]

Every server is gunicorn (embedded exactly as ``incident-bot serve`` embeds it) on 127.0.0.1 and gets
the same payload (the example incident, about 9 KB) with a unique ``Idempotency-Key`` per request.

Modes (``--modes``, comma-separated; ``MODE:k=gthread+t=8+w=1`` overrides worker class, threads and
workers for that mode):

- ``bare``: Flask answers 200 without reading the body. The reference the goal is measured against.
- ``parse``: Flask checks the token and the length, reads and ``json.loads`` the body, answers 202.
  The least any receiver that tells valid deliveries from garbage must do (diagnostic).
- ``nostore``: the real ``/webhook`` with a store that keeps nothing (diagnostic).
- ``normal`` / ``full``: the real ``/webhook`` on SQLite with that durability (``full``: fsync on
  every commit, the default; ``normal``: survives kill -9 of the bot, not power loss).
- ``normal-group`` / ``full-group``: the same through the group-commit prototype
  (``bench/intake_prototypes.py``); requests served by the threads of one process share a
  transaction, so it needs ``gthread``.
- ``normal-flock`` / ``full-flock``: the same, with writers queued on a host-wide ``flock`` instead
  of SQLite's sleep-and-retry busy handler (prototype in ``bench/intake_prototypes.py``).
- ``normal-ckpt`` / ``full-ckpt``: the same, with the intake connections checkpointing the WAL every
  4000 pages (16 MB) instead of SQLite's 1000 (prototype in ``bench/intake_prototypes.py``).

The load generator is ``wrk`` (``apt-get install wrk``) on the same machine, so every figure is a
lower bound and the ratio between modes is what matters; without wrk a threaded Python keep-alive
client is used, which needs more of the shared CPU. Each mode also reports the CPU its server
processes used per request (``srv us/req``: it depends little on how the cores were shared), how idle
the machine was, and the share of CPU that went to processes other than the server and the client
(``other``). A mode measured while something else loaded the machine (``--max-other``) is measured
again, at most ``--retries`` times. ``--rounds N`` runs all modes N times, interleaved, and reports
medians. Afterwards every delivery a durable mode acknowledged with 202 (in every attempt) is looked
up in its store; the exit status is 1 if one is missing.

The server logs at ``--log-level`` (default ``info``, as ``incident-bot serve``) into a file.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
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

from tests import store_inspect as peek

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = ROOT / "examples" / "payloads" / "s1-incident.json"
SECRET = "bench-secret"
LABELS = {
    "bare": "bare Flask (200, body unread)",
    "parse": "bare Flask + token, read, json.loads",
    "nostore": "/webhook, no-op store",
    "normal": "/webhook, SQLite normal",
    "full": "/webhook, SQLite full",
    "normal-group": "/webhook, normal, group commit",
    "full-group": "/webhook, full, group commit",
    "normal-flock": "/webhook, normal, host write lock",
    "full-flock": "/webhook, full, host write lock",
    "normal-ckpt": "/webhook, normal, checkpoint 16 MB",
    "full-ckpt": "/webhook, full, checkpoint 16 MB",
}
DURABLE = tuple(mode for mode in LABELS if mode.startswith(("normal", "full")))
DEFAULT_MODES = "bare,parse,nostore,normal,full"
CLK_TCK = os.sysconf("SC_CLK_TCK")

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


def parse_app() -> Any:
    """Section 3 of the engineering notes: token, length, body, JSON; nothing recorded."""
    import hmac

    from flask import Flask, abort, jsonify, request

    app = Flask("parse")
    app.config["MAX_CONTENT_LENGTH"] = 25 * 1024 * 1024
    secret = SECRET.encode()

    @app.post("/webhook")
    def webhook() -> Any:
        if not hmac.compare_digest(request.headers.get("X-Gitlab-Token", "").encode("latin-1"), secret):
            abort(401)
        if request.content_length is None:
            abort(411)
        try:
            json.loads(request.get_data(cache=False))
        except ValueError:
            abort(400)
        return jsonify(status="accepted", delivery=request.headers.get("Idempotency-Key")), 202

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


class NoopStore:
    """Answers like a store and keeps nothing: shows what the intake costs without the durable write."""

    def record_delivery(self, delivery_id: str, incident_key: str | None, *args: Any, **kwargs: Any) -> Any:
        from bot.store import RecordResult

        return RecordResult(new=True, job_id=1 if incident_key else None)

    def ping(self) -> None:
        pass

    def stats(self) -> Any:
        raise RuntimeError("no statistics")


def real_app(db: str, mode: str) -> Any:
    from bot.config import load_config
    from bot.metrics import Metrics
    from bot.store import SQLiteStore
    from bot.web.app import WebSettings, create_app

    store: Any
    if mode == "nostore":
        store = NoopStore()
    else:
        store = SQLiteStore(db, durability="full" if mode.startswith("full") else "normal")
        if "-" in mode:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from intake_prototypes import CheckpointStore, GroupCommitStore, HostLockStore

            if mode.endswith("-group"):
                store = GroupCommitStore(store)
            elif mode.endswith("-flock"):
                store = HostLockStore(store)
            else:
                store = CheckpointStore(store, pages=4000)
    # The example payload's project is the incident scope, as INCIDENT_BOT_SCOPE sets it for `serve`.
    cfg = load_config().model_copy(update={"scope": ["acme/security-incidents"]})
    return create_app(WebSettings(secret=SECRET), store=store, config=cfg, metrics=Metrics())


def serve(mode: str, port: int, workers: int, worker_class: str, threads: int, db: str, loglevel: str) -> None:
    """The server side (a child process of the benchmark): the gunicorn setup of ``incident-bot serve``."""
    import logging

    from bot.commands.service import setup_logging
    from bot.metrics import enable_multiprocess
    from bot.web.server import GunicornApp

    setup_logging(loglevel)
    logging.getLogger("gunicorn.error").propagate = False
    if mode not in ("bare", "parse"):
        if mode != "nostore":
            from bot.store import SQLiteStore

            SQLiteStore(db).close()  # create and migrate once, before the fork, as serve does
        enable_multiprocess(tempfile.mkdtemp(prefix="metrics-", dir=Path(db).parent))
    factories = {"bare": bare_app, "parse": parse_app}
    factory = factories.get(mode) or (lambda: real_app(db, mode))
    GunicornApp(
        factory,
        host="127.0.0.1",
        port=port,
        workers=workers,
        worker_class=worker_class,
        threads=threads,
        loglevel=loglevel,
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
    server_cpu: float = 0.0
    idle: float = 0.0
    other: float = 0.0
    accepted: set[str] = field(default_factory=set)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        return self.server_cpu / self.requests * 1e6 if self.requests else 0.0


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
        part.unlink()
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
                delivery = json.loads(data).get("delivery")
                if delivery:
                    accepted.add(delivery)
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


# ---------------------------------------------------------------------------------------- CPU accounting


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in a process group (the gunicorn master and workers)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[0] is the state; pgrp is the 5th field of the whole line
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def client_cpu_seconds() -> float:
    """CPU used so far by this process and its finished children (wrk, or the Python client's threads)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine_idle() -> tuple[float, float, float]:
    """(idle, interrupts, total) jiffies of the whole machine, from /proc/stat. Interrupt time (mostly
    loopback TCP in softirq) belongs to no process, so it is kept out of "other"."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return float(values[3] + values[4]), float(values[5] + values[6]), float(sum(values[:8]))


# ---------------------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class Setup:
    mode: str
    workers: int
    worker_class: str
    threads: int

    def describe(self) -> str:
        threads = f"x{self.threads}" if self.worker_class == "gthread" else ""
        return f"-w{self.workers} {self.worker_class}{threads}"


def parse_modes(text: str, args: argparse.Namespace) -> list[Setup]:
    setups = []
    for spec in filter(None, (part.strip() for part in text.split(","))):
        mode, _, options = spec.partition(":")
        if mode not in LABELS:
            raise SystemExit(f"unknown mode {mode!r}; choose from {', '.join(LABELS)}")
        values = {"w": args.workers, "k": args.worker_class, "t": args.threads}
        for option in filter(None, options.split("+")):
            key, _, value = option.partition("=")
            if key not in values or not value:
                raise SystemExit(f"bad option {option!r} in {spec!r}: use w=N, k=sync|gthread, t=N joined by +")
            values[key] = value if key == "k" else int(value)
        if values["k"] not in ("sync", "gthread"):
            raise SystemExit(f"worker class must be sync or gthread, got {values['k']!r}")
        setups.append(Setup(mode, int(values["w"]), str(values["k"]), int(values["t"])))
    return setups


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


def measure(setup: Setup, args: argparse.Namespace, workdir: Path, db: Path) -> Result:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", setup.mode, "--port", str(port), "--db", str(db)]
    cmd += ["--workers", str(setup.workers), "--worker-class", setup.worker_class, "--threads", str(setup.threads)]
    cmd += ["--log-level", args.log_level]
    with open(workdir / "server.log", "ab") as log:
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=log, stderr=log)
    try:
        wait_ready(port, proc)
        if args.client == "wrk":
            run_wrk(port, 1, args.connections, workdir)  # warm-up
        else:
            run_python(port, 0.5, args.connections)
        cpu0, (idle0, irq0, total0), client0 = group_cpu_seconds(proc.pid), machine_idle(), client_cpu_seconds()
        if args.client == "wrk":
            result = run_wrk(port, args.duration, args.connections, workdir)
        else:
            result = run_python(port, args.duration, args.connections)
        (idle1, irq1, total1), client = machine_idle(), client_cpu_seconds() - client0
        result.server_cpu = group_cpu_seconds(proc.pid) - cpu0
        elapsed = max(1.0, total1 - total0)
        result.idle = (idle1 - idle0) / elapsed
        busy = (elapsed - (idle1 - idle0) - (irq1 - irq0)) / CLK_TCK
        result.other = max(0.0, busy - result.server_cpu - client) / (elapsed / CLK_TCK)
        return result
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def check_store(db: Path, accepted: set[str]) -> tuple[int, int]:
    """(accepted deliveries found in the store, missing ones)."""
    from bot.store import SQLiteStore

    store = SQLiteStore(db)
    try:
        missing = sum(1 for delivery_id in accepted if peek.get_delivery(store, delivery_id) is None)
    finally:
        store.close()
    return len(accepted) - missing, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per mode and round (default 5)")
    parser.add_argument("--rounds", type=int, default=1, help="run every mode this many times, interleaved")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker (default 4)")
    parser.add_argument("--modes", default=DEFAULT_MODES, help=f"comma-separated (default {DEFAULT_MODES})")
    parser.add_argument("--log-level", choices=("debug", "info", "warning"), default="info")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--max-other",
        type=float,
        default=0.05,
        help="measure a mode again when other processes took more than this share of the CPU (default 0.05)",
    )
    parser.add_argument("--retries", type=int, default=2, help="at most this many extra attempts per mode (default 2)")
    parser.add_argument("--serve", choices=tuple(LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workers, args.worker_class, args.threads, args.db, args.log_level)
        return 0
    if not 1 <= args.rounds <= 20 or not 1 <= args.duration <= 120 or not 0 <= args.retries <= 5:
        raise SystemExit("--rounds must be 1..20, --duration 1..120 s and --retries 0..5")
    setups = parse_modes(args.modes, args)
    if not setups:
        raise SystemExit("no modes to run")
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    runs: dict[Setup, list[Result]] = {s: [] for s in setups}
    checks: dict[Setup, list[tuple[int, int]]] = {s: [] for s in setups}
    acknowledged: dict[Setup, int] = dict.fromkeys(setups, 0)
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        workdir = Path(tmp)
        for _ in range(args.rounds):
            for setup in setups:
                best: Result | None = None
                for attempt in range(1 + args.retries):
                    db = workdir / "intake.sqlite3"
                    result = measure(setup, args, workdir, db)
                    if best is None or result.other < best.other:
                        best = result
                    if setup.mode in DURABLE:  # every attempt's acknowledged deliveries are checked
                        checks[setup].append(check_store(db, result.accepted))
                        acknowledged[setup] += len(result.accepted)
                    for leftover in workdir.glob("intake.sqlite3*"):
                        leftover.unlink()
                    if result.other <= args.max_other or attempt == args.retries:
                        break
                    print(
                        f"  {setup.mode} ({setup.describe()}): {result.other:.0%} of the CPU went to other processes; "
                        "measuring again",
                        file=sys.stderr,
                    )
                assert best is not None
                runs[setup].append(best)  # the attempt least disturbed by other processes

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else 0.0

    print(
        f"intake benchmark: {args.connections} connections, {args.duration:g} s x {args.rounds} round(s) per mode "
        f"(medians), client {args.client}, payload {PAYLOAD.stat().st_size} bytes, server log level "
        f"{args.log_level}, {os.cpu_count()} CPUs"
    )
    header = f"{'endpoint':<38} {'gunicorn':<13} {'req/s':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}"
    print(header + f" {'srv us/req':>10} {'idle':>5} {'other':>5} {'non-2xx':>7} {'errors':>6}")
    bare = next((s for s in setups if s.mode == "bare"), None)
    bare_rps = median([r.rps for r in runs[bare]]) if bare else 0.0
    for setup, results in runs.items():
        rps = median([r.rps for r in results])
        ratio = f"{rps / bare_rps:5.2f}x" if bare_rps else "    - "
        print(
            f"{LABELS[setup.mode]:<38} {setup.describe():<13} {rps:>7.0f} {ratio:>6} "
            f"{median([r.p50_ms for r in results]):>7.2f} {median([r.p99_ms for r in results]):>7.2f} "
            f"{median([r.cpu_us for r in results]):>10.0f} {median([r.idle for r in results]):>5.0%} "
            f"{median([r.other for r in results]):>5.0%} "
            f"{sum(r.non_2xx for r in results):>7} {sum(r.errors for r in results):>6}"
        )
    print("goal: /webhook >= 0.80x of the bare endpoint (ratio column: against the bare row)")
    missing = 0
    for setup, found_lost in checks.items():
        if not found_lost:
            continue
        acked = acknowledged[setup]
        found, lost = sum(f for f, _ in found_lost), sum(m for _, m in found_lost)
        missing += lost
        if not acked and any(r.requests > r.non_2xx for r in runs[setup]):
            print(f"store check ({setup.mode}): no delivery id found in the 2xx answers; cannot verify")
            missing += 1
        print(
            f"store check ({setup.mode}, {setup.describe()}): {acked} acknowledged with 202, {found} in the store, "
            f"{lost} missing"
        )
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
