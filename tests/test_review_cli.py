"""``incident-bot report GROUP/PROJECT#IID [--json]`` against a live (simulated) GitLab: reads only."""

from __future__ import annotations

import json

from bot.commands.cli import main
from tests.conftest import at, look


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_prints_the_review_and_writes_nothing(capsys, monkeypatch, w, sim, clock):
    iid = w.incident("severity::1", "comms-email")
    look(w, clock, iid)
    at(clock, "09:45")
    labels = sim.state.get_issue(w.project, iid)["labels"]
    sim.state.set_labels(w.project, iid, [*labels, "comms::scoped"], actor="sec-oncall")
    at(clock, "10:30")
    child = w.children()[0]
    sim.state.close_issue(w.project, child["iid"], actor="mpm-oncall")
    look(w, clock, iid)
    monkeypatch.setenv("GITLAB_URL", sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", sim.token)
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", w.project)
    sim.reset_log()
    code, out, _ = run(capsys, "report", f"{w.project}#{iid}", "--json")
    assert code == 0 and sim.writes() == []
    data = json.loads(out)
    assert data["schema"] == 1 and data["incident"] == f"{w.project}#{iid}"
    metrics = {m["name"]: m for m in data["metrics"]}
    assert metrics["declared_to_scoped"]["seconds"] == 45 * 60
    assert metrics["declared_to_scoped"]["to"]["event"] == "comms::scoped added by sec-oncall"
    assert metrics["scoped_to_first_external_comms"]["seconds"] == 45 * 60
    assert metrics["channel:comms-email:opened_to_sent"]["seconds"] == 90 * 60
    code, out, _ = run(capsys, "report", f"{w.project}#{iid}")
    assert code == 0 and out.startswith(f"Communications review of {w.project}#{iid}")
    assert "declared_to_scoped: 45m (incident declared (issue created) → comms::scoped added by sec-oncall)" in out
    assert sim.writes() == []


def test_report_of_a_mistyped_incident_says_so_in_one_line(capsys, monkeypatch, sim):
    monkeypatch.setenv("GITLAB_URL", sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", sim.token)
    code, _, err = run(capsys, "report", "acme/security-incidents")
    assert code == 2 and err.strip() == "incident-bot: expected GROUP/PROJECT#IID, got 'acme/security-incidents'"
