"""The operator: a mistyped setting (a plain ``http://`` GitLab or Slack URL for a host on the network), and
``incident-bot dead-letters retry``, which must not open a child twice.

The bot sends ``GITLAB_TOKEN`` (``PRIVATE-TOKEN`` header) on every GitLab call and ``SLACK_BOT_TOKEN``
(``Authorization: Bearer``) on every Slack call; over plain HTTP anyone on the path reads them. Plain HTTP
is refused, with one line saying how to allow it on purpose, except for loopback (127.0.0.0/8, ::1,
localhost), where the simulators, the demo and a local proxy live.

The simulated GitLab and Slack listen on every address here, and the bot is pointed at this machine's
non-loopback address, so an old version's requests (and their tokens) would reach them over the network.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.commands.world import world
from bot.config import load_config
from bot.settings import Settings, SettingsError
from bot.simgitlab import SimulatedGitLab
from bot.simslack import SimulatedSlack
from bot.store import JobState, SQLiteStore
from bot.worker import Outcome, Worker
from tests import store_inspect as peek
from tests.conftest import ROOT
from tests.security.support import free_port, service_env
from tests.test_team_projects import NAME, TEAM, TEMPLATE, team_config

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
REPORTER = "randy-reporter"


def network_address() -> str | None:
    """This machine's address on its network (not loopback), or None if it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 9))  # no packet is sent: this only picks the route's source address
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


ADDRESS = network_address()
needs_network = pytest.mark.skipif(ADDRESS is None, reason="this machine has no non-loopback IPv4 address")


@pytest.fixture
def gitlab() -> Iterator[SimulatedGitLab]:
    with SimulatedGitLab(host="0.0.0.0") as server:
        yield server


def over_network(url: str) -> str:
    assert ADDRESS is not None
    return url.replace("0.0.0.0", ADDRESS)


def run_cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:  # a service that started instead of refusing
        raise AssertionError(f"incident-bot {args[0]} started instead of refusing its settings") from exc


@needs_network
def test_a_plain_http_gitlab_url_on_the_network_is_refused_before_the_token_is_sent(gitlab, tmp_path):
    project = gitlab.state.add_project("acme/security-incidents", members={"incident-bot": 40})
    issue = gitlab.state.create_issue(project["path_with_namespace"], "Customer data exposed")
    incident = f"{project['path_with_namespace']}#{issue['iid']}"
    env = service_env(over_network(gitlab.url), gitlab.token, tmp_path)

    refused = run_cli(env, tmp_path, "plan", incident)
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert "GITLAB_URL" in lines[0] and "plain HTTP" in lines[0]
    assert "INCIDENT_BOT_ALLOW_INSECURE_HTTP=1" in lines[0]
    assert gitlab.token not in refused.stderr + refused.stdout
    assert gitlab.requests == [], "the token went out over plain HTTP"

    # Allowed on purpose, it is used as given (a lab GitLab without TLS).
    allowed = run_cli(env | {"INCIDENT_BOT_ALLOW_INSECURE_HTTP": "1"}, tmp_path, "plan", incident)
    assert allowed.returncode == 0, allowed.stderr
    assert gitlab.requests


def test_loopback_stays_allowed_for_simulators_and_local_proxies(gitlab, tmp_path):
    for url in ("http://127.0.0.1:8080", "http://127.1.2.3", "http://localhost:3000", "http://[::1]:8080",
                "https://gitlab.example.com"):
        assert Settings.from_env({"GITLAB_URL": url, "SLACK_API_URL": url}).gitlab_url is not None
    project = gitlab.state.add_project("acme/security-incidents", members={"incident-bot": 40})
    issue = gitlab.state.create_issue(project["path_with_namespace"], "Customer data exposed")
    loopback = gitlab.url.replace("0.0.0.0", "127.0.0.1")
    done = run_cli(service_env(loopback, gitlab.token, tmp_path), tmp_path, "plan",
                   f"{project['path_with_namespace']}#{issue['iid']}")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("host", ["gitlab.example.com", "10.0.0.5", "[fd00::2]", "127.0.0.1.example.com"])
def test_every_plain_http_url_off_loopback_is_one_line_naming_the_variable(host):
    env = {"GITLAB_URL": f"http://{host}", "SLACK_API_URL": f"http://{host}/api/"}
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert [p.split("=", 1)[0] for p in info.value.problems] == ["GITLAB_URL", "SLACK_API_URL"]
    assert all("INCIDENT_BOT_ALLOW_INSECURE_HTTP=1" in p for p in info.value.problems)
    assert Settings.from_env(env | {"INCIDENT_BOT_ALLOW_INSECURE_HTTP": "1"}).slack_api_url == f"http://{host}/api/"


@needs_network
def test_a_plain_http_slack_url_on_the_network_is_refused_before_the_token_is_sent(gitlab, tmp_path):
    with SimulatedSlack(host="0.0.0.0", token="xoxb-111-222-secretsecret") as slack:
        env = service_env(
            gitlab.url.replace("0.0.0.0", "127.0.0.1"),
            gitlab.token,
            tmp_path,
            SLACK_BOT_TOKEN=slack.token,
            SLACK_API_URL=over_network(slack.url),
            GITLAB_WEBHOOK_SECRET="hook-secret-123",
        )
        refused = run_cli(env, tmp_path, "serve", "--port", str(free_port()), timeout=20)
        assert refused.returncode != 0
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].count("SLACK_API_URL") >= 1, refused.stderr
        assert "INCIDENT_BOT_ALLOW_INSECURE_HTTP=1" in lines[0]
        assert slack.token not in refused.stderr + refused.stdout
        assert slack.calls == [], "the Slack token went out over plain HTTP"


# ---- dead-letters retry never opens a second child ---------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal", max_attempts=3)
    yield s
    s.close()


@pytest.mark.parametrize("where", ["incident project", "team project"])
def test_dead_letters_retry_finds_the_child_by_its_signed_marker_before_it_creates(sim, clock, store, where):
    """Linking the children keeps failing, and meanwhile a Reporter removes their labels: the job dies with
    the create recorded ("not creating another"). ``incident-bot dead-letters retry`` (``retry_dead``) clears
    that record; the retry then searches the bot's own issues in every project the child may be in, by the
    marker the bot signed for the incident, and links what it finds instead of opening another."""
    cfg = team_config() if where == "team project" else load_config(ROOT / "config" / "bot.yaml")
    w = world(sim, cfg)
    if where == "team project":
        w.team_project(TEAM, bot_level=20, templates={NAME: TEMPLATE})
    w.sim.state.add_user(REPORTER)
    projects = [w.project, *([TEAM] if where == "team project" else [])]
    for project in projects:
        w.sim.state.add_member(project, REPORTER, 20)
    iid = w.incident(*S1)
    store.record_delivery("d1", f"{w.project_id}#{iid}", "Issue Hook", clock(), b"{}")
    w.sim.inject("500", times=None, method="POST", path_regex=r"/issues/\d+/links$", applied=False)
    worker = Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock, settle=timedelta(0))

    def mine() -> list[dict]:
        bot = w.cfg.bot.username
        return [i for p in projects for i in w.sim.state.issues(p) if i["author"]["username"] == bot]

    first = worker.run_once()
    assert first is not None and first.outcome is Outcome.TRANSIENT
    opened = sorted((i["project_id"], i["iid"]) for i in mine())
    assert len(opened) == 2
    for issue in mine():  # a Reporter tidies the labels away
        edit = w.sim.client(REPORTER).projects.get(issue["project_id"], lazy=True).issues.get(issue["iid"])
        edit.labels = []
        edit.save()
    for _ in range(6):
        clock.advance(minutes=30)
        worker.run_once()
        if peek.get_job(store, first.job_id).state is JobState.DEAD:
            break
    job = peek.get_job(store, first.job_id)
    assert job.state is JobState.DEAD, job
    assert sorted((i["project_id"], i["iid"]) for i in mine()) == opened

    w.sim.clear_faults()
    assert store.retry_dead(first.job_id, now=clock()) == 1  # what `incident-bot dead-letters retry` does
    done = worker.run_once()
    assert done is not None and done.outcome is Outcome.OK, done
    assert sorted((i["project_id"], i["iid"]) for i in mine()) == opened, "the retry opened a second child"
    assert w.snapshot(iid)["links"] == 2
