"""The operator's intent is explicit (issue 20, section 2): a service runs only a policy file it was given.

``serve``, ``worker``, ``sweep`` and ``reconcile`` refuse to start, in one line saying what to set, when no
policy file is found: ``INCIDENT_BOT_CONFIG`` empty (what a compose file passes by default), naming a missing
file, or unset with no ``config/bot.yaml`` where the bot runs. The bundled example runs only when it is named.
Each logs the file it loaded and its SHA-256.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.security.support import SECRET, service_env

COMMANDS = ["serve", "worker", "sweep", "reconcile"]
EXAMPLE = ROOT / "config" / "bot.yaml"


def run(command: str, env: dict[str, str], cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bot", command, *extra]
    if command == "reconcile":
        argv.append("acme/security-incidents#1")
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "config, expected",
    [
        ("", "incident-bot: INCIDENT_BOT_CONFIG is empty: set it to your policy file (e.g. /policy/bot.yaml); "
             "the example policy runs only when named explicitly"),
        (None, "incident-bot: no policy file: set INCIDENT_BOT_CONFIG (or --config) to your policy file; there is "
               "no config/bot.yaml in {cwd}, and the example policy runs only when named explicitly"),
        ("missing.yaml", "incident-bot: policy file missing.yaml (INCIDENT_BOT_CONFIG) not found: set "
                         "INCIDENT_BOT_CONFIG (or --config) to your policy file; the example policy runs only when "
                         "named explicitly"),
    ],
    ids=["empty", "unset", "missing"],
)
def test_without_a_policy_file_the_services_refuse_to_start_in_one_line(command, config, expected, sim, tmp_path):
    env = service_env(sim.url, sim.token, tmp_path, GITLAB_WEBHOOK_SECRET=SECRET)
    if config is None:
        del env["INCIDENT_BOT_CONFIG"]
    else:
        env["INCIDENT_BOT_CONFIG"] = config
    sim.reset_log()
    result = run(command, env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [expected.format(cwd=tmp_path)]
    assert sim.requests == [], "refused before GitLab is asked anything"


def test_each_logs_the_policy_file_it_loaded_and_its_digest(w, sim, tmp_path):
    """Named explicitly, the example runs; a policy in ``config/bot.yaml`` where the bot runs is found without
    being named. The log (``sweep``) and the output (``reconcile``) name the file and its SHA-256."""
    env = service_env(sim.url, sim.token, tmp_path, INCIDENT_BOT_STATE_KEY="k" * 32)
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    swept = run("sweep", env, tmp_path, "--queue-only", "--log-level", "info")
    assert swept.returncode == 0, swept.stderr
    assert f"sweep: policy {EXAMPLE} (sha256 {digest})" in swept.stderr

    local = tmp_path / "config" / "bot.yaml"
    local.parent.mkdir()
    text = EXAMPLE.read_text(encoding="utf-8").replace("cadence: 1h", "cadence: 2h", 1)
    local.write_text(text, encoding="utf-8")
    del env["INCIDENT_BOT_CONFIG"]
    iid = w.incident("severity::3")
    reconciled = subprocess.run(
        [sys.executable, "-m", "bot", "reconcile", f"{w.project}#{iid}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert reconciled.returncode == 0, reconciled.stderr
    local_digest = hashlib.sha256(text.encode()).hexdigest()
    assert reconciled.stdout.splitlines()[0] == f"{w.project}#{iid}: policy {local} (sha256 {local_digest})"
