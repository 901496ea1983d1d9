"""``incident-bot serve`` as a real process against the simulated GitLab: end to end, kill -9, SIGTERM,
and the one-line refusals at start. Loopback only; every process started here is killed at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from websupport import PROJECT, ROOT, SECRET, free_port, seed_people

from bot.commands.cli import main
from bot.config import Config
from bot.simgitlab import SimulatedGitLab
from bot.simgitlab.hooks import issue_event_header, issue_hook
from bot.store import SQLiteStore
from tests import store_inspect as peek
from tests.security import support

CONFIG = ROOT / "config" / "bot.yaml"
BOT = "incident-bot"


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class Serve(support.Serve):
    """``python -m bot serve`` with two receivers and two worker threads, in its own process group, so kill -9
    takes all of it down at once."""

    def __init__(self, sim: SimulatedGitLab, workdir: Path, port: int, **env: str) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_", "PROMETHEUS_"))}
        base |= {
            "GITLAB_URL": sim.url,
            "GITLAB_TOKEN": sim.token,
            "GITLAB_WEBHOOK_SECRET": SECRET,
            "INCIDENT_BOT_DB": str(workdir / "bot.sqlite3"),
            "INCIDENT_BOT_CONFIG": str(CONFIG),
            "INCIDENT_BOT_SCOPE": PROJECT,
            "INCIDENT_BOT_LEASE_SECONDS": "3",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        super().__init__(base, workdir, "--workers", "2", port=port, threads=2)

    def kill9(self) -> None:
        """The whole service dies at once, as in an OOM kill or a container kill."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def group_alive(self) -> bool:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def worker_pid(self) -> int | None:
        """The reconcile worker: the master's child running ``bot worker`` (Linux /proc)."""
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.proc.pid and b"worker" in argv:
                return int(entry.name)
        return None

    def cleanup(self) -> None:
        if self.proc is not None and self.group_alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def sim(default_config: Config) -> Iterator[SimulatedGitLab]:
    with SimulatedGitLab() as s:
        seed_people(s.state, default_config)
        yield s


@pytest.fixture
def serve_factory(sim: SimulatedGitLab, tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []
    port = free_port()

    def make(**env: str) -> Serve:
        server = Serve(sim, tmp_path, port, **env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.cleanup()


def open_incident(sim: SimulatedGitLab, title: str, labels: list[str]) -> int:
    base = ["security-incident", "severity::1"]
    return int(sim.state.create_issue(PROJECT, title, labels=base + labels, author="alice")["iid"])


def deliver(
    base_url: str, payload: dict[str, Any], token: str = SECRET, key: str | None = None, event_uuid: str | None = None
) -> int:
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": issue_event_header(payload),
        "X-Gitlab-Token": token,
        "X-Gitlab-Event-UUID": event_uuid or str(uuid.uuid4()),
        "Idempotency-Key": key or str(uuid.uuid4()),
    }
    return requests.post(base_url + "/webhook", data=json.dumps(payload), headers=headers, timeout=5).status_code


def children(sim: SimulatedGitLab, iid: int) -> list[dict[str, Any]]:
    return [i for i in sim.state.issues(PROJECT) if i["title"].endswith(f"security incident #{iid}")]


def bot_notes(sim: SimulatedGitLab, iid: int) -> list[str]:
    notes = sim.state.notes(PROJECT, iid, include_system=False)
    return [n["body"] for n in notes if n["author"]["username"] == BOT]


def converged(sim: SimulatedGitLab, iid: int, channels: int) -> bool:
    checklists = [b for b in bot_notes(sim, iid) if "incident-bot:checklist" in b]
    return len(children(sim, iid)) == channels and len(sim.state.links(PROJECT, iid)) == channels and bool(checklists)


def assert_no_duplicates(sim: SimulatedGitLab, iid: int, channels: int) -> None:
    notes = bot_notes(sim, iid)
    assert len(children(sim, iid)) == channels, f"#{iid}: children {[c['title'] for c in children(sim, iid)]}"
    assert len(sim.state.links(PROJECT, iid)) == channels
    assert sum("incident-bot:checklist" in b for b in notes) == 1, f"#{iid}: {len(notes)} bot notes"
    assert len(notes) == len(set(notes)), f"#{iid}: a bot comment was posted twice"


# ---------------------------------------------------------------------------- end to end


def test_serve_converges_an_incident_survives_a_dead_worker_and_stops_on_sigterm(
    sim: SimulatedGitLab, serve_factory: Callable[..., Serve]
) -> None:
    iid = open_incident(sim, "Customer data exposed", ["comms-email", "comms-blog", "data-breach"])
    server = serve_factory(INCIDENT_BOT_MAX_BODY_BYTES="65536").start()
    headers = {"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": SECRET}
    chunked = requests.post(server.url + "/webhook", data=iter([b"{}"] * 40_000), headers=headers, timeout=5)
    assert chunked.status_code == 411  # under gunicorn a chunked body would be cut at the limit, not refused
    oversize = requests.post(server.url + "/webhook", data=b" " * 70_000, headers=headers, timeout=5)
    assert oversize.status_code == 413
    opened = issue_hook(sim.state, PROJECT, iid, "open", user="alice", object_kind="work_item")
    assert deliver(server.url, opened, key="open-1", event_uuid="chain-open-1") == 202
    wait_for(lambda: converged(sim, iid, 2), 20, f"incident #{iid} to converge ({server.tail()})")

    # The bot forwarded the delivery's event UUID on its writes (GitLab's recursion guard needs it).
    writes = [r for r in sim.writes() if r.actor == BOT]
    assert writes and {r.headers.get("X-Gitlab-Event-UUID") for r in writes} == {"chain-open-1"}

    # The worker process dies; the master starts a new one.
    first_worker = server.worker_pid()
    assert first_worker is not None
    os.kill(first_worker, signal.SIGKILL)
    wait_for(lambda: server.worker_pid() not in (None, first_worker), 15, f"a new worker ({server.tail()})")

    # A label added later: the update hook brings one more child, nothing is duplicated.
    before = sim.state.get_issue(PROJECT, iid)["labels"]
    sim.state.set_labels(PROJECT, iid, [*before, "comms-faq"], actor="alice")
    changes = {"labels": {"previous": before, "current": [*before, "comms-faq"]}}
    updated = issue_hook(sim.state, PROJECT, iid, "update", changes, user="alice")
    assert deliver(server.url, updated, key="update-1") == 202
    assert deliver(server.url, updated, key="update-1") == 200  # GitLab's resend: a duplicate
    wait_for(lambda: converged(sim, iid, 3), 20, f"the third child of #{iid} ({server.tail()})")
    assert_no_duplicates(sim, iid, 3)

    # One scrape shows the receivers' deliveries and the worker process's reconciles and API calls.
    wait_for(lambda: requests.get(server.url + "/readyz", timeout=2).status_code == 200, 5, "readiness")
    # The worker records a reconcile's duration after its last write, so GitLab can look converged a moment
    # before the metric is there: wait for it (bounded) instead of racing it.
    reconciled = 'incident_bot_reconcile_duration_seconds_count{outcome="ok"}'
    wait_for(lambda: reconciled in requests.get(server.url + "/metrics", timeout=2).text, 10, "the reconcile metric")
    text = requests.get(server.url + "/metrics", timeout=2).text
    assert 'incident_bot_webhook_deliveries_total{event="Issue Hook",outcome="accepted"} 2.0' in text
    assert 'incident_bot_webhook_deliveries_total{event="Issue Hook",outcome="duplicate"} 1.0' in text
    assert 'incident_bot_reconcile_duration_seconds_count{outcome="ok"}' in text
    assert 'incident_bot_gitlab_api_calls_total{status="ok"}' in text

    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0, server.tail()
    wait_for(lambda: not server.group_alive(), 10, "every serve process to exit")


# ---------------------------------------------------------------------------- kill -9


def test_nothing_acknowledged_is_lost_across_kill_9_and_nothing_is_done_twice(
    sim: SimulatedGitLab, serve_factory: Callable[..., Serve], tmp_path: Path
) -> None:
    sim.latency = 0.01  # reconciles take a while, so the kill lands while jobs run
    incidents = [open_incident(sim, f"Incident {n}", ["comms-email"]) for n in range(14)]
    forged = set(incidents[3::4])  # deliveries with a wrong token: must never be acted on
    server = serve_factory(INCIDENT_BOT_SWEEP_SECONDS="off").start()  # webhooks only: a 401 must cause nothing
    acked: dict[int, str] = {}
    refused: set[int] = set()
    done, killed = threading.Event(), threading.Event()

    def stream() -> None:
        """Deliver each incident once; a delivery that got no answer is re-sent with its key, as from
        GitLab's Recent events. Halfway, wait for the kill, so it lands mid-stream."""
        for n, iid in enumerate(incidents):
            if n == len(incidents) // 2:
                killed.wait(30)
            payload = issue_hook(sim.state, PROJECT, iid, "open", user="alice", object_kind="work_item")
            key = f"open-{iid}"
            token = "forged" if iid in forged else SECRET
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    status = deliver(server.url, payload, token=token, key=key)
                except requests.RequestException:
                    time.sleep(0.05)  # the service is down
                    continue
                if status == 401:
                    refused.add(iid)
                elif 200 <= status < 300:
                    acked[iid] = key
                else:
                    continue
                break
            time.sleep(0.01)
        done.set()

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    store = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal")
    try:

        def writing() -> bool:
            return peek.depth(store)["running"] > 0 and any(r.actor == BOT for r in sim.writes())

        wait_for(writing, 20, f"jobs to run and write to GitLab ({server.tail()})")
        running = peek.depth(store)["running"]
        server.kill9()
        killed.set()
        assert running > 0 and not done.is_set(), "the kill lands mid-stream while jobs run"
        server.start()
        sender.join(60)
        assert done.is_set()
        for iid in acked:
            wait_for(lambda iid=iid: converged(sim, iid, 1), 30, f"#{iid} to converge ({server.tail()})")
        wait_for(lambda: peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}, 30, "the queue to drain")
        time.sleep(1)  # a duplicate would have to show up now: nothing is left in the queue
        for key in acked.values():
            assert peek.get_delivery(store, key) is not None
    finally:
        store.close()
    assert refused == forged
    assert set(acked) == set(incidents) - forged
    for iid in acked:
        assert_no_duplicates(sim, iid, 1)
    for iid in forged:
        assert children(sim, iid) == [] and bot_notes(sim, iid) == []


def running(pid: int | None) -> bool:
    """True while the process exists and is not a zombie waiting for its new parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_the_worker_stops_by_itself_when_the_master_is_killed(serve_factory: Callable[..., Serve]) -> None:
    server = serve_factory().start()
    wait_for(lambda: server.worker_pid() is not None, 10, "the worker process")
    worker = server.worker_pid()
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(5)
    wait_for(lambda: not running(worker), 10, "the orphaned worker to exit")


def receiver_pids(server: Serve) -> set[int]:
    """The master's children that serve HTTP (forked receivers, whose command line is the master's)."""
    assert server.proc is not None
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server.proc.pid and b"serve" in argv and running(int(entry.name)):
            found.add(int(entry.name))
    return found


def test_a_receiver_that_exits_leaves_the_services_shared_files_alone(
    serve_factory: Callable[..., Serve], tmp_path: Path
) -> None:
    """gunicorn forks receivers inside the master's ``run()``: one that exits unwinds the master's frames in its
    own process. It must not remove the metrics and heartbeat directories the other processes still use."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = serve_factory(TMPDIR=str(scratch)).start()
    wait_for(lambda: len(receiver_pids(server)) == 2, 10, f"two receivers ({server.tail()})")
    shared = sorted(p.name.split("-")[2] for p in scratch.iterdir())
    assert shared == ["metrics", "worker"], shared
    first = receiver_pids(server)
    victim = min(first)
    # A graceful exit: gunicorn starts another. A receiver just forked still has the master's signal handlers
    # until it installs its own (gunicorn's Worker.init_signals), and the master's handler only queues the
    # signal in the master's memory, so a SIGTERM in that window is lost: sent again while it lives on.
    for attempt in range(3):
        os.kill(victim, signal.SIGTERM)
        try:
            wait_for(lambda: len(receiver_pids(server) - first) == 1, 15, f"a new receiver ({server.tail()})")
            break
        except AssertionError:
            if attempt == 2 or not running(victim):
                raise
    assert sorted(p.name.split("-")[2] for p in scratch.iterdir()) == shared, "a receiver removed shared files"
    wait_for(lambda: requests.get(server.url + "/readyz", timeout=2).status_code == 200, 10, "readiness")


def test_with_log_format_json_every_line_from_start_to_stop_is_an_object(
    sim: SimulatedGitLab, serve_factory: Callable[..., Serve]
) -> None:
    """A log pipeline reads serve's stderr as JSON lines: gevent's start-up warning and the "Exception ignored"
    lines a receiver's exit used to print in plain text are gone or are objects too."""
    iid = open_incident(sim, "Customer data exposed", ["comms-email"])
    server = serve_factory()
    server.argv += ["--log-format", "json"]
    server.start()
    opened = issue_hook(sim.state, PROJECT, iid, "open", user="alice")
    assert deliver(server.url, opened) == 202
    wait_for(lambda: converged(sim, iid, 1), 20, f"#{iid} to converge ({server.tail()})")
    server.stop()
    lines = [line for line in server.output().splitlines() if line.strip()]
    assert any("reconciled" in line for line in lines)
    not_json = []
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            not_json.append(line)
    assert not_json == [], "\n".join(not_json[:10])


# ---------------------------------------------------------------------------- refusing to start


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=clean | {"INCIDENT_BOT_CONFIG": str(CONFIG), "INCIDENT_BOT_SCOPE": PROJECT} | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_refuses_to_start_without_the_webhook_secret(tmp_path: Path) -> None:
    result = run_cli("serve", env={"GITLAB_URL": "http://127.0.0.1:9", "GITLAB_TOKEN": "x"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "incident-bot: neither GITLAB_WEBHOOK_SECRET nor GITLAB_WEBHOOK_SIGNING_TOKEN is set: "
        "the receiver refuses unauthenticated webhooks"
    ]


def test_serve_says_in_one_line_that_the_token_was_rejected(sim: SimulatedGitLab, tmp_path: Path) -> None:
    env = {"GITLAB_URL": sim.url, "GITLAB_TOKEN": "glpat-wrong", "GITLAB_WEBHOOK_SECRET": SECRET}
    result = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "GITLAB_TOKEN was rejected" in lines[0]


def test_serve_started_while_gitlab_is_away_records_deliveries_and_catches_up(
    default_config: Config, tmp_path: Path
) -> None:
    """GitLab unreachable at start (a GitLab upgrade, a network blip): serve starts anyway instead of exiting
    (which crash-loops under compose and can take the proxy down with it), says so in /readyz, records what
    arrives, and works on it once GitLab answers."""
    port = free_port()
    later = SimulatedGitLab(port=port)  # its state exists now; it starts listening later
    seed_people(later.state, default_config)
    iid = open_incident(later, "Customer data exposed", ["comms-email"])
    away = SimpleNamespace(url=f"http://127.0.0.1:{port}", token=later.token)  # what serve is told
    server = Serve(away, tmp_path, free_port())  # type: ignore[arg-type]
    try:
        server.start()
        insider = {"X-Gitlab-Token": SECRET}
        wait_for(
            lambda: requests.get(server.url + "/readyz", headers=insider, timeout=2).json()["status"] == "degraded",
            15,
            f"/readyz to say degraded ({server.tail()})",
        )
        answer = requests.get(server.url + "/readyz", headers=insider, timeout=2)
        assert answer.status_code == 200 and "the worker waits for GitLab" in answer.json()["reason"]
        opened = issue_hook(later.state, PROJECT, iid, "open", user="alice")
        assert deliver(server.url, opened) == 202
        later.start()
        wait_for(lambda: converged(later, iid, 1), 60, f"#{iid} to converge once GitLab answers ({server.tail()})")
        wait_for(lambda: requests.get(server.url + "/readyz", timeout=2).json()["status"] == "ready", 15, "ready")
    finally:
        server.cleanup()
        later.stop()


# ---------------------------------------------------------------------------- dead letters


def test_dead_letters_list_and_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    db = tmp_path / "bot.sqlite3"
    now = datetime.now(UTC)
    with SQLiteStore(db, max_attempts=1) as store:
        store.record_delivery("d1", "42#7", "Issue Hook", now, b"{}")
        job = store.claim("w", now, timedelta(seconds=60))
        assert job is not None
        store.fail(job.id, "w", "create a child issue failed: 403 Forbidden (permanent)", now)
    monkeypatch.setenv("INCIDENT_BOT_DB", str(db))

    assert main(["dead-letters", "list"]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == 1 and listed[0].startswith(f"{job.id}\t42#7\t") and "403 Forbidden" in listed[0]

    assert main(["dead-letters", "retry", "999"]) == 2
    assert "job 999 is not a dead letter" in capsys.readouterr().err
    assert main(["dead-letters", "retry", str(job.id)]) == 0
    assert "revived 1 job" in capsys.readouterr().out
    assert main(["dead-letters", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no dead letters"
    with SQLiteStore(db) as store:
        assert peek.depth(store)["pending"] == 1


def test_serve_sweeps_at_start_and_catches_incidents_no_webhook_announced(
    sim: SimulatedGitLab, serve_factory: Callable[..., Serve]
) -> None:
    """Deliveries missed while the bot was down: the incident exists, no webhook will ever come for it."""
    iid = open_incident(sim, "Declared while the bot was down", ["comms-email"])
    server = serve_factory().start()  # the fixture cleans it up
    wait_for(lambda: converged(sim, iid, 1), 30, f"#{iid} to converge by the start-up sweep ({server.tail()})")
    assert_no_duplicates(sim, iid, 1)


def test_a_postgresql_outage_loses_nothing_and_answers_only_2xx(
    sim: SimulatedGitLab, serve_factory: Callable[..., Serve], tmp_path: Path
) -> None:
    """PostgreSQL stops while deliveries arrive: the receivers spool them, say so on /readyz, and once the
    database is back every incident converges, exactly once. The outage lasts
    ``INCIDENT_BOT_TEST_OUTAGE_SECONDS`` (default 8; 60 for the full drill)."""
    from tests.pg import INSTALL_HINT, PostgresNotInstalled, PostgresServer, postgres_unavailable

    try:
        pg = PostgresServer.start(durable=True)
    except PostgresNotInstalled:
        postgres_unavailable(INSTALL_HINT)
    outage = float(os.environ.get("INCIDENT_BOT_TEST_OUTAGE_SECONDS", "8"))
    try:
        url = pg.create_database("outage")
        server = serve_factory(
            INCIDENT_BOT_DB=url,
            INCIDENT_BOT_SPOOL=str(tmp_path / "spool.sqlite3"),
            INCIDENT_BOT_SWEEP_SECONDS="off",  # only the deliveries themselves may cause work here
            INCIDENT_BOT_RETRY_SECONDS="0.5",
        ).start()
        incidents = [open_incident(sim, f"Incident {n}", ["comms-email"]) for n in range(12)]
        answers: list[int] = []

        def send(iid: int) -> None:
            try:
                answers.append(deliver(server.url, issue_hook(sim.state, PROJECT, iid, "open"), key=f"open-{iid}"))
            except requests.RequestException as exc:
                raise AssertionError(f"delivery for #{iid} got no answer: {exc}\n{server.tail(60)}") from None

        for iid in incidents[:4]:
            send(iid)
        pg.pause()
        try:
            for iid in incidents[4:]:
                send(iid)
            ready = requests.get(server.url + "/readyz", headers={"X-Gitlab-Token": SECRET}, timeout=5)
            assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
            assert "spooled" in ready.json()["reason"]
            deadline = time.monotonic() + outage
            while time.monotonic() < deadline:  # keep delivering while the database is away
                send(incidents[len(answers) % len(incidents)])
                time.sleep(0.25)
        finally:
            pg.resume()
        assert set(answers) <= {200, 202}, f"non-2xx answers: {answers}"
        for iid in incidents:
            wait_for(
                lambda iid=iid: converged(sim, iid, 1), 60, f"#{iid} to converge after the outage ({server.tail()})"
            )
        wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).json()["status"] == "ready", 20, "ready")
        for iid in incidents:
            assert_no_duplicates(sim, iid, 1)
    finally:
        pg.stop()
