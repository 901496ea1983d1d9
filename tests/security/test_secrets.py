"""The operator's secrets: the GitLab token, the webhook secret, the signing token and the database password
never appear in a log line, an HTTP answer, /metrics, a stored row or a spool file, on any error path; files
the bot writes are private; a secret read with a trailing newline still works."""

from __future__ import annotations

import base64
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.core.model import IncidentRef
from bot.simgitlab import SimulatedGitLab
from bot.store import SQLiteStore
from bot.store.spool import Spool, Spooled
from bot.web.app import WebSettings
from bot.web.auth import sign
from bot.worker import Worker
from tests.security.support import ROOT, Serve, free_port, hook_headers, incident_body, service_env, wait_for

WEBHOOK_SECRET = "hook-secret-Q7f3"
SIGNING_KEY = b"signing-key-bytes-0123456789abcd"
SIGNING_TOKEN = "whsec_" + base64.b64encode(SIGNING_KEY).decode()
DB_PASSWORD = "db-pass-Zk81x"
WRONG_GITLAB_TOKEN = "glpat-known-wrong-Hh20"
URL_PASSWORD = "url-pass-Lm55"
STATE_KEY = "state-key-Pw7Tq2Rv9Xs4Yz"
PREVIOUS_STATE_KEY = "old-state-key-Jd3Nc8Vb6Hg1"


def leaks(text: str | bytes, secrets: list[str]) -> list[str]:
    """The secrets (or their base64 key) found in ``text``."""
    data = text.encode() if isinstance(text, str) else text
    found = [s for s in secrets if s.encode() in data]
    if SIGNING_KEY in data or base64.b64encode(SIGNING_KEY) in data:
        found.append("the signing key")
    return found


@pytest.fixture
def gitlab() -> Iterator[SimulatedGitLab]:
    with SimulatedGitLab() as sim:
        yield sim


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_no_secret_appears_on_any_error_path(gitlab: SimulatedGitLab, tmp_path: Path) -> None:
    secrets = [gitlab.token, WEBHOOK_SECRET, SIGNING_TOKEN, DB_PASSWORD, WRONG_GITLAB_TOKEN, URL_PASSWORD]
    secrets += [STATE_KEY, PREVIOUS_STATE_KEY]
    (tmp_path / "previous-key").write_text(PREVIOUS_STATE_KEY + "\n")
    seen: dict[str, str | bytes] = {}
    closed_port = free_port()
    db_url = f"postgresql://incident_bot:{DB_PASSWORD}@127.0.0.1:{closed_port}/bot"
    env = service_env(
        gitlab.url,
        gitlab.token,
        tmp_path,
        GITLAB_WEBHOOK_SECRET=WEBHOOK_SECRET + "\n",
        GITLAB_WEBHOOK_SIGNING_TOKEN=SIGNING_TOKEN,
        INCIDENT_BOT_DB=db_url,
        INCIDENT_BOT_SPOOL=str(tmp_path / "spool" / "spool.sqlite3"),
        INCIDENT_BOT_STATE_KEY=STATE_KEY,
        INCIDENT_BOT_STATE_KEY_PREVIOUS_FILE=str(tmp_path / "previous-key"),
    )

    # The database is unreachable: serve starts anyway, spools, and the worker keeps retrying.
    server = Serve(env, tmp_path, "--workers", "1", "--log-level", "debug").start()
    try:
        body = incident_body()
        now = str(int(datetime.now(UTC).timestamp()))
        signed = {"webhook-id": "msg_1", "webhook-timestamp": now}
        signed["webhook-signature"] = "v1," + sign(SIGNING_KEY, "msg_1", now, body)
        answers = {
            "bad token": requests.post(server.url + "/webhook", data=body, headers=hook_headers("nope"), timeout=5),
            "bad signature": requests.post(
                server.url + "/webhook",
                data=body,
                headers=hook_headers(WEBHOOK_SECRET) | signed | {"webhook-signature": "v1,AAAA"},
                timeout=5,
            ),
            "spooled": requests.post(
                server.url + "/webhook", data=body, headers=hook_headers(WEBHOOK_SECRET) | signed, timeout=5
            ),
            "readyz": requests.get(server.url + "/readyz", timeout=5),
            "readyz insider": requests.get(server.url + "/readyz", headers={"X-Gitlab-Token": WEBHOOK_SECRET}),
            "metrics": requests.get(server.url + "/metrics", timeout=5),
        }
        assert answers["spooled"].status_code == 202, answers["spooled"].text
        assert answers["readyz insider"].json()["status"] == "degraded"
        wait_for(lambda: "trying again" in server.output(), 20, "the worker to retry the database")
    finally:
        server.stop()
    for name, answer in answers.items():
        seen[f"HTTP {name}"] = f"{answer.status_code} {answer.headers} {answer.text}"
    seen["serve log"] = server.output()
    assert "127.0.0.1" in str(seen["serve log"]) and "trying again" in str(seen["serve log"])
    for path in (tmp_path / "spool").iterdir():
        seen[f"spool file {path.name}"] = path.read_bytes()

    upgrade = run_cli(env, tmp_path, "db", "upgrade")
    assert upgrade.returncode != 0
    seen["db upgrade"] = upgrade.stdout + upgrade.stderr

    # GitLab answers 401 to a wrong token; 500 to everything; is unreachable (with a password in its URL).
    incident = "sec/incidents#1"
    wrong = run_cli(env | {"GITLAB_TOKEN": WRONG_GITLAB_TOKEN}, tmp_path, "reconcile", incident)
    seen["reconcile, GitLab 401"] = wrong.stdout + wrong.stderr
    gitlab.faults.inject("500", times=None)
    failing = run_cli(env, tmp_path, "reconcile", incident)
    seen["reconcile, GitLab 500"] = failing.stdout + failing.stderr
    away = f"http://bot:{URL_PASSWORD}@127.0.0.1:{closed_port}"
    unreachable = run_cli(env | {"GITLAB_URL": away}, tmp_path, "reconcile", incident)
    seen["reconcile, GitLab unreachable"] = unreachable.stdout + unreachable.stderr
    assert all(run.returncode != 0 for run in (wrong, failing, unreachable))
    # serve starts while GitLab is away (and waits for it): what it logs meanwhile holds no secret either.
    serve_away = Serve(env | {"GITLAB_URL": away}, tmp_path, "--workers", "1")
    try:
        serve_away.start()
        wait_for(lambda: "serving anyway" in serve_away.output(), 20, "serve to say it serves anyway")
        wait_for(lambda: "trying again" in serve_away.output(), 20, "the worker to wait for GitLab")
    finally:
        serve_away.stop()
    seen["serve, GitLab unreachable"] = serve_away.output()

    if os.environ.get("INCIDENT_BOT_TEST_SHOW"):
        for where, text in seen.items():
            print(f"== {where}\n{text if isinstance(text, str) else len(text)}")
    found = {where: leaks(text, secrets) for where, text in seen.items()}
    assert {where: what for where, what in found.items() if what} == {}


class Leaky:
    """A reconcile that fails with the secrets in its error, as a driver or library might word it."""

    def __init__(self, message: str) -> None:
        self.message = message

    def reconcile(self, ref: IncidentRef, *, event_uuid: str | None = None, guard: Any = None) -> Any:
        raise RuntimeError(self.message)


def test_dead_letters_store_and_list_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import redact

    db_url = f"postgresql://incident_bot:{DB_PASSWORD}@db.internal/bot"
    token = "glpat-in-env-Yy71"
    monkeypatch.setenv("GITLAB_TOKEN", token)
    monkeypatch.setenv("INCIDENT_BOT_DB", db_url)
    monkeypatch.setenv("GITLAB_WEBHOOK_SECRET", WEBHOOK_SECRET)
    redact.secrets_from_env(os.environ)
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Capture()
    redact.install([handler])  # as setup_logging does for the service's handlers
    logging.getLogger().addHandler(handler)
    db = tmp_path / "bot.sqlite3"
    store = SQLiteStore(db, max_attempts=1)
    try:
        now = datetime.now(UTC) - timedelta(minutes=1)
        store.record_delivery("d-1", "sec/incidents#1", "Issue Hook", now, b"{}")
        message = f"could not reach {db_url} with PRIVATE-TOKEN {token} (secret {WEBHOOK_SECRET})"
        result = Worker(store, Leaky(message), settle=timedelta(0)).run_once()
        assert result is not None and result.error is not None
        dead = store.dead_jobs()
        assert len(dead) == 1
        stored = dead[0].last_error or ""
    finally:
        store.close()
        logging.getLogger().removeHandler(handler)
    env = {k: v for k, v in os.environ.items()} | {"INCIDENT_BOT_DB": str(db), "PYTHONPATH": str(ROOT)}
    listed = run_cli(env, tmp_path, "dead-letters", "list")
    assert "sec/incidents#1" in listed.stdout
    secrets = [DB_PASSWORD, token, WEBHOOK_SECRET]
    files = b"".join(p.read_bytes() for p in tmp_path.glob("bot.sqlite3*"))
    assert "could not reach" in stored and "db.internal" in stored
    assert leaks(stored, secrets) == []
    assert leaks("\n".join(records), secrets) == []
    assert any("crash" in line for line in records)
    assert leaks(listed.stdout + listed.stderr, secrets) == []
    assert leaks(files, secrets) == []


def test_a_webhook_secret_read_with_a_trailing_newline_still_authenticates() -> None:
    settings = WebSettings.from_env({"GITLAB_WEBHOOK_SECRET": "from-a-file\n", "GITLAB_WEBHOOK_SIGNING_TOKEN": ""})
    assert settings.secret == "from-a-file"
    windows = WebSettings.from_env({"GITLAB_WEBHOOK_SECRET": "from-a-file\r\n"})
    assert windows.secret == "from-a-file"
    signed = WebSettings.from_env({"GITLAB_WEBHOOK_SECRET": "s", "GITLAB_WEBHOOK_SIGNING_TOKEN": SIGNING_TOKEN + "\n"})
    assert signed.signing_key == SIGNING_KEY


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_the_bot_writes_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: without care, files would be 0644 in 0755 directories
    try:
        store = SQLiteStore(tmp_path / "var" / "store" / "bot.sqlite3")
        store.record_delivery("d-1", "sec/incidents#1", "Issue Hook", datetime.now(UTC), b'{"secret": 1}')
        spool = Spool(tmp_path / "spool-dir" / "spool.sqlite3")
        spool.put(Spooled("d-2", "sec/incidents#1", "Issue Hook", datetime.now(UTC), b'{"secret": 2}', None))
        written = sorted(tmp_path.glob("var/store/bot.sqlite3*")) + sorted(tmp_path.glob("spool-dir/spool.sqlite3*"))
        names = {p.name for p in written}
        assert {"bot.sqlite3", "bot.sqlite3-wal", "bot.sqlite3-shm", "spool.sqlite3", "spool.sqlite3-wal"} <= names
        assert {p.name: oct(_mode(p)) for p in written} == {p.name: oct(0o600) for p in written}
        for directory in (tmp_path / "var", tmp_path / "var" / "store", tmp_path / "spool-dir"):
            assert _mode(directory) == 0o700, directory
        store.close()
    finally:
        os.umask(old)


def test_a_store_file_left_readable_by_an_older_version_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    Spool(path)
    for p in tmp_path.glob("spool.sqlite3*"):
        p.chmod(0o644)
    Spool(path)
    assert {p.name: oct(_mode(p)) for p in tmp_path.glob("spool.sqlite3*")} == {
        p.name: oct(0o600) for p in tmp_path.glob("spool.sqlite3*")
    }


@pytest.mark.parametrize(
    "name",
    ["PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER", "PAGERDUTY_WEBHOOK_SECRET", "STATUSIO_API_KEY", "STATUSPAGE_API_KEY"],
)
def test_the_paging_and_status_page_keys_are_masked_in_every_log_line(name: str) -> None:
    """An operator's routing key or status page key read from the environment never reaches a log line, even
    when an error message quotes it whole."""
    from bot.redact import redact, secrets_from_env

    secret = f"{name.lower()}-value-0123456789abcdef"
    secrets_from_env({name: secret})
    assert secret not in redact(f"PagerDuty said: routing key {secret} is wrong")
