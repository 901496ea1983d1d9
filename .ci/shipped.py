"""CI: the package as a user installs it serves, and its worker runs against PostgreSQL.

The test suite runs against a development install, whose test extras can hide a missing runtime dependency
(pytest brings ``packaging``, which gunicorn's gevent worker imports). This check proves the shipped
artifact instead, the way the Dockerfile and a user install it:

1. build the wheel; install it with the lock (``constraints.txt``) and no extras into a fresh virtual
   environment, as the Dockerfile's ``pip install --constraint constraints.txt /src`` does;
2. import every module of the installed package in that environment (isolated mode: no checkout on the path);
3. from a directory that holds only a policy file, run ``incident-bot serve`` (the Dockerfile's command line)
   against the built-in simulated GitLab, post a signed delivery of a critical incident, see it converge,
   and stop it with SIGTERM within 10 s;
4. the same for ``incident-bot worker`` against PostgreSQL (``db upgrade``, ``sweep --queue-only``, the worker);
5. build and run the container image the same way when a container engine answers; otherwise say
   "skipped: no container engine", never silently.

Run by ``.ci/run`` with the development environment's Python (the simulated GitLab and the throw-away
PostgreSQL server of the test suite run here); every ``incident-bot`` process is the installed one.
Loopback only; every process started here is stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.commands.world import configured_users  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.simgitlab import SimulatedGitLab  # noqa: E402
from bot.simgitlab.hooks import issue_event_header, issue_hook  # noqa: E402
from tests.pg import PostgresServer, find_bindir  # noqa: E402

PROJECT = "sec/incidents"
BOT = "incident-bot"
SECRET = "shipped-check-secret"
STOP_WITHIN_S = 10.0


def step(text: str) -> None:
    print(f"shipped package: {text}", flush=True)


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, text=True, capture_output=True, **kw)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(f"shipped package: {' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result  # type: ignore[no-any-return]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise SystemExit(f"shipped package: timed out after {timeout:g} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_and_install(work: Path) -> Path:
    """The wheel, installed with the lock and no extras into a fresh venv; returns the venv's bin dir."""
    dist = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(ROOT)])
    wheels = sorted(dist.glob("incident_bot-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"shipped package: expected one wheel in {dist}, found {[w.name for w in wheels]}")
    step(f"built {wheels[0].name}")
    venv = work / "venv"
    base_python = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    run([base_python, "-m", "venv", str(venv)])
    pip_env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
    lock = str(ROOT / "constraints.txt")
    run([str(venv / "bin" / "pip"), "install", "--quiet", "--constraint", lock, str(wheels[0])], env=pip_env)
    step(f"installed {wheels[0].name} with constraints.txt and no extras into a fresh virtual environment")
    return venv / "bin"


IMPORT_ALL = """
import importlib, pkgutil, sys, bot
assert not any(p.startswith({root!r}) for p in map(str, bot.__path__)), bot.__path__
failed, count = [], 0
for module in pkgutil.walk_packages(bot.__path__, "bot."):
    if module.name.endswith("__main__"):
        continue
    count += 1
    try:
        importlib.import_module(module.name)
    except BaseException as exc:
        failed.append(f"{{module.name}}: {{exc!r}}")
print(count)
if failed:
    sys.exit("cannot import: " + "; ".join(failed))
"""


def import_everything(bindir: Path, cwd: Path) -> None:
    result = run([str(bindir / "python"), "-I", "-c", IMPORT_ALL.format(root=str(ROOT))], cwd=cwd)
    step(f"imported all {result.stdout.strip()} modules of the installed package (isolated, no checkout on the path)")


def seed(sim: SimulatedGitLab, policy: Path) -> None:
    cfg = load_config(str(policy))
    names = (configured_users(cfg) | {"alice"}) - {BOT}
    for name in sorted(names):
        sim.state.add_user(name)
    members = dict.fromkeys(names, 30) | {BOT: 30, "alice": 40}
    sim.state.add_project(PROJECT, members=members)


def open_incident(sim: SimulatedGitLab, title: str) -> int:
    labels = ["security-incident", "severity::1", "data-breach", "comms-email"]
    return int(sim.state.create_issue(PROJECT, title, labels=labels, author="alice")["iid"])


def converged(sim: SimulatedGitLab, iid: int) -> bool:
    notes = sim.state.notes(PROJECT, iid, include_system=False)
    checklist = any(n["author"]["username"] == BOT and "incident-bot:checklist" in n["body"] for n in notes)
    child = any(i["title"].endswith(f"security incident #{iid}") for i in sim.state.issues(PROJECT))
    return checklist and child


def service_env(sim: SimulatedGitLab, policy: Path, bindir: Path, **extra: str) -> dict[str, str]:
    """The environment a user gives the installed bot: no checkout, no test tooling on any path."""
    drop = ("GITLAB_", "INCIDENT_BOT_", "PROMETHEUS_", "SLACK_", "PYTHON", "VIRTUAL_ENV", "PIP_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    return env | {
        "GITLAB_URL": sim.url,
        "GITLAB_TOKEN": sim.token,
        "GITLAB_WEBHOOK_SECRET": SECRET,
        "INCIDENT_BOT_CONFIG": str(policy),
        "INCIDENT_BOT_SCOPE": PROJECT,
        "INCIDENT_BOT_SWEEP_SECONDS": "off",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Service:
    """One installed ``incident-bot`` command in its own process group, its output in a file."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.out = log.open("w")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def tail(self, lines: int = 40) -> str:
        self.out.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sigterm(self) -> float:
        """SIGTERM to the command; how long it took to exit (fails past the limit)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.kill()
            sys.exit(f"shipped package: still running {STOP_WITHIN_S:g} s after SIGTERM:\n{self.tail()}")
        took = time.monotonic() - started
        if code != 0:
            sys.exit(f"shipped package: exit code {code} after SIGTERM:\n{self.tail()}")
        with self.out:
            pass
        return took

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def deliver(url: str, sim: SimulatedGitLab, iid: int) -> int:
    payload = issue_hook(sim.state, PROJECT, iid, "open", user="alice", object_kind="work_item")
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": issue_event_header(payload),
        "X-Gitlab-Token": SECRET,
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Idempotency-Key": str(uuid.uuid4()),
    }
    return requests.post(url + "/webhook", data=json.dumps(payload), headers=headers, timeout=5).status_code


def ready(url: str) -> bool:
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def check_serve(sim: SimulatedGitLab, bindir: Path, home: Path, policy: Path, argv_prefix: list[str]) -> None:
    """``serve`` as the Dockerfile runs it: ready, a signed delivery converges, SIGTERM stops it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = service_env(sim, policy, bindir, INCIDENT_BOT_DB=str(home / "bot.sqlite3"))
    argv = [*argv_prefix, "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--worker-class", "gevent", "--read-timeout", "5"]
    service = Service(argv, env, home, home.parent / "serve.log")
    try:
        wait_for(lambda: ready(url) or not service.alive(), 60, "serve to be ready")
        if not service.alive():
            sys.exit(f"shipped package: serve exited at start:\n{service.tail()}")
        iid = open_incident(sim, "Customer data exposed (serve)")
        started = time.monotonic()
        status = deliver(url, sim, iid)
        if status != 202:
            sys.exit(f"shipped package: the signed delivery was answered {status}:\n{service.tail()}")
        wait_for(lambda: converged(sim, iid), 30, f"#{iid} to converge under serve")
        step(f"serve: a signed delivery of a critical incident converged in {time.monotonic() - started:.1f} s")
        step(f"serve: stopped by SIGTERM in {service.sigterm():.1f} s")
    finally:
        service.kill()


def check_worker_on_postgres(sim: SimulatedGitLab, bindir: Path, home: Path, policy: Path) -> None:
    """``db upgrade``, ``sweep --queue-only`` and ``worker`` against PostgreSQL."""
    with PostgresServer.start() as server:
        url = server.create_database("shipped")
        env = service_env(sim, policy, bindir, INCIDENT_BOT_DB=url)
        cli = str(bindir / "incident-bot")
        run([cli, "db", "upgrade"], env=env, cwd=home)
        iid = open_incident(sim, "Customer data exposed (worker)")
        queued = run([cli, "sweep", "--queue-only"], env=env, cwd=home)
        step(f"sweep --queue-only on PostgreSQL: {queued.stdout.strip().splitlines()[-1]}")
        service = Service([cli, "worker", "--threads", "2"], env, home, home.parent / "worker.log")
        try:
            wait_for(lambda: converged(sim, iid) or not service.alive(), 30, f"#{iid} to converge under worker")
            if not service.alive():
                sys.exit(f"shipped package: worker exited:\n{service.tail()}")
            step("worker on PostgreSQL: the queued critical incident converged")
            step(f"worker: stopped by SIGTERM in {service.sigterm():.1f} s")
        finally:
            service.kill()


def container_engine() -> str | None:
    for engine in ("docker", "podman"):
        if shutil.which(engine):
            probe = subprocess.run([engine, "info"], capture_output=True, text=True)
            if probe.returncode == 0:
                return engine
    return None


def check_image(sim: SimulatedGitLab, home: Path, policy: Path) -> None:
    engine = container_engine()
    if engine is None:
        step("container image: skipped: no container engine (no docker or podman that answers `info`)")
        return
    tag = f"incident-bot-ci:{uuid.uuid4().hex[:8]}"
    run([engine, "build", "--quiet", "-t", tag, str(ROOT)])
    step(f"container image: built {tag} with {engine}")
    try:
        mount = ["-v", f"{policy.parent}:/policy:ro", "-e", "INCIDENT_BOT_CONFIG=/policy/bot.yaml"]
        env_args: list[str] = []
        for key, value in service_env(sim, policy, Path("/usr/local/bin")).items():
            if key.startswith(("GITLAB_", "INCIDENT_BOT_")) and key != "INCIDENT_BOT_CONFIG":
                env_args += ["-e", f"{key}={value}"]
        run(
            [
                engine,
                "run",
                "--rm",
                "--network",
                "host",
                *mount,
                *env_args,
                "-e",
                "INCIDENT_BOT_DB=/data/ci.sqlite3",
                tag,
                "python",
                "-I",
                "-c",
                IMPORT_ALL.format(root="/nonexistent"),
            ]
        )
        step("container image: every module imports")
        check_serve(
            sim,
            Path("/usr/local/bin"),
            home,
            policy,
            [engine, "run", "--rm", "--network", "host", "--init", *mount, *env_args, tag, "incident-bot"],
        )
    finally:
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="incident-bot-shipped-"))
    try:
        bindir = build_and_install(work)
        home = work / "home"
        home.mkdir()
        policy = home / "bot.yaml"
        shutil.copy(ROOT / "config" / "bot.yaml", policy)
        import_everything(bindir, home)
        with SimulatedGitLab() as sim:
            seed(sim, policy)
            check_serve(sim, bindir, home, policy, [str(bindir / "incident-bot")])
            if find_bindir() is None:
                sys.exit("shipped package: PostgreSQL's server binaries are missing (apt-get install postgresql)")
            check_worker_on_postgres(sim, bindir, home, policy)
            check_image(sim, home, policy)
        step("ok")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
