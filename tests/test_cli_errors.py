"""Every command reports a user's mistake or an unreachable GitLab in one line, with what to do, exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from bot.commands.cli import main
from tests.conftest import ROOT


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "INCIDENT_BOT_STATE_KEY" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def live(monkeypatch, sim):
    monkeypatch.setenv("GITLAB_URL", sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", sim.token)
    monkeypatch.setenv("INCIDENT_BOT_STATE_KEY", "k" * 32)
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", "acme/security-incidents,nobody")
    return sim


@pytest.mark.parametrize("command", ["plan", "reconcile"])
def test_a_missing_issue_is_one_line_naming_it(capsys, live, w, command):
    code, _, err = run(capsys, command, f"{w.project}#999")
    line = _one_line(err)
    assert code == 2 and f"{w.project}#999" in line and "404" in line
    assert "check" in line


@pytest.mark.parametrize("command", ["plan", "reconcile"])
def test_a_missing_project_is_one_line_naming_it(capsys, live, w, command):
    code, _, err = run(capsys, command, "nobody/nowhere#1")
    line = _one_line(err)
    assert code == 2 and "nobody/nowhere" in line and "check" in line


@pytest.mark.parametrize("command", ["plan", "reconcile"])
def test_a_bad_token_is_one_line_saying_to_fix_the_token(capsys, live, monkeypatch, w, command):
    monkeypatch.setenv("GITLAB_TOKEN", "not-a-token")
    code, _, err = run(capsys, command, f"{w.project}#1")
    line = _one_line(err)
    assert code == 2 and "GITLAB_TOKEN" in line and "not-a-token" not in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["plan", "reconcile", "init"])
def test_an_unreachable_gitlab_is_one_line_saying_to_check_the_url(capsys, monkeypatch, command):
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("GITLAB_URL", url)
    monkeypatch.setenv("GITLAB_TOKEN", "x")
    monkeypatch.setenv("INCIDENT_BOT_STATE_KEY", "k" * 32)
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", "acme")
    target = "acme/sec" if command == "init" else "acme/sec#1"
    code, _, err = run(capsys, command, target)
    line = _one_line(err)
    assert code == 2 and "GITLAB_URL" in line and "reach" in line


def test_the_demo_piped_into_head_ends_quietly():
    proc = subprocess.run(
        f"{sys.executable} -m bot demo | head -3",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(proc.stdout.splitlines()) == 3
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("before", [True, False])
def test_config_works_before_or_after_the_subcommand(capsys, tmp_path, before):
    policy = tmp_path / "policy.yaml"
    policy.write_text((ROOT / "config" / "bot.yaml").read_text())
    argv = ["--config", str(policy), "check-config"] if before else ["check-config", "--config", str(policy)]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out.startswith(f"{policy}: OK")


def test_config_after_the_subcommand_wins_over_the_one_before(capsys, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text((ROOT / "config" / "bot.yaml").read_text())
    code, out, _ = run(capsys, "--config", "no/such.yaml", "check-config", "--config", str(policy))
    assert code == 0 and out.startswith(f"{policy}: OK")
