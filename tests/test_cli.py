"""The command line as a newcomer uses it: plan on the bundled examples, the demo, one-line errors."""

from __future__ import annotations

import json

import pytest

from bot.commands.cli import main
from tests.conftest import EXAMPLES, SHARED_PAYLOADS


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_on_the_s1_example_lists_roles_engagements_and_children(capsys):
    code, out, err = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-incident.json"))
    assert code == 0 and err == ""
    for role in ("SEOC   @sec-oncall", "SIMOC  @sec-incident-manager", "CMOC   @comms-oncall"):
        assert role in out
    assert "Engagements (4):" in out
    for line in (
        "Sr. Director of Security: DRI @sec-incident-manager (Security Incident Manager On Call (SIMOC)), every 1h, "
        "via Slack direct message",
        "Broader e-group: DRI @sec-director (Sr. Director of Security), every 1h, via #e-group Slack channel",
        "Sr. Director of Corporate Marketing and PR Manager: DRI @comms-oncall",
        "Legal: DRI @sec-director (Sr. Director of Security), continuous, via incident response Slack channel",
    ):
        assert line in out
    assert "Child issues (3), all confidential:" in out
    assert out.count("create confidential child issue") == 3
    assert "assigned to @mpm-oncall" in out and "assigned to @comms-oncall" in out and "assigned to @sec-oncall" in out


def test_plan_json_is_machine_readable(capsys):
    code, out, _ = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-incident.json"), "--json")
    data = json.loads(out)
    assert code == 0 and data["in_scope"] and set(data["roles"]) == {"seoc", "simoc", "cmoc"}
    assert len(data["engagements"]) == 4 and all(
        e["dri"] and e["cadence"] and e["channel"] for e in data["engagements"]
    )
    children = [a for a in data["actions"] if a["kind"] == "CreateChild"]
    assert len(children) == 3 and all(c["confidential"] and c["assignee"] for c in children)


def test_plan_on_the_s3_example_is_only_the_out_of_scope_note(capsys):
    code, out, _ = run(capsys, "plan", "--payload", str(EXAMPLES / "s3-incident.json"), "--verbose")
    assert code == 0
    assert "OUT OF SCOPE" in out and "Actions (1):" in out and "post a comment: out of scope" in out
    assert "does not apply" in out


def test_plan_verbose_prints_full_bodies_without_the_payloads_hostile_text(capsys):
    _, out, _ = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-incident.json"), "-v")
    assert "| Checklist (from the communications plan)" in out
    assert "       | /close" not in out and "@all" not in out


def test_plan_on_a_payload_the_bot_ignores_says_why(capsys):
    path = SHARED_PAYLOADS / "note_on_commit.json"
    code, out, _ = run(capsys, "plan", "--payload", str(path))
    assert code == 0 and "Nothing to do: note on a Commit, not on an issue." in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "--payload", "no/such/file.json"], "no/such/file.json: file not found"),
        (["plan"], "plan needs --payload FILE or GROUP/PROJECT#IID"),
        (["reconcile", "not-a-ref"], "expected GROUP/PROJECT#IID, got 'not-a-ref'"),
    ],
)
def test_user_errors_are_one_line(capsys, monkeypatch, argv, message):
    monkeypatch.setenv("GITLAB_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GITLAB_TOKEN", "x")
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.strip() == f"incident-bot: {message}"


def test_reconcile_without_a_token_says_what_is_missing(capsys, monkeypatch):
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    monkeypatch.setenv("GITLAB_URL", "https://gitlab.example.com")
    code, _, err = run(capsys, "reconcile", "acme/sec#1")
    assert code == 2 and "GITLAB_TOKEN is not set" in err and len(err.strip().splitlines()) == 1


def test_plan_against_a_live_gitlab_reads_and_writes_nothing(capsys, monkeypatch, w, sim):
    iid = w.incident("severity::1", "comms-email")
    monkeypatch.setenv("GITLAB_URL", sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", sim.token)
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", w.project)
    sim.reset_log()
    code, out, _ = run(capsys, "plan", f"{w.project}#{iid}")
    assert code == 0 and "create confidential child issue" in out
    assert sim.writes() == []
    code, out, _ = run(capsys, "reconcile", f"{w.project}#{iid}")
    assert code == 0 and "link child" in out and len(w.children()) == 1
    code, out, _ = run(capsys, "reconcile", f"{w.project}#{iid}")
    assert "already converged" in out


def test_the_demo_runs_the_whole_lifecycle_safely(capsys):
    code, out, _ = run(capsys, "demo")
    assert code == 0
    for step in (
        "declares incident #1",
        "Status update due",
        "handoff seoc",
        "All clear: final communications",
        "was closed while communication issues are still open",
    ):
        assert step in out
    assert "Safety: no quick action or unexpected mention reached GitLab" in out
    assert "3 child issues, all confidential" in out


def test_plan_lists_the_slack_messages_it_would_send_without_the_title(capsys):
    code, out, _ = run(capsys, "plan", "--payload", str(EXAMPLES / "s1-incident.json"))
    assert code == 0
    slack = out[out.index("Slack messages ("):]
    assert "  - #e-group: :rotating_light: *Broader e-group* engaged on security incident" in slack
    assert "  - #security-department: :shield: Security incident" in slack and "(edited in place)" in slack
    title = json.loads((EXAMPLES / "s1-incident.json").read_text())["object_attributes"]["title"]
    assert title not in slack
