"""``plan GROUP/PROJECT#IID`` (live) tells which Slack messages were already sent, from the store
(``INCIDENT_BOT_DB``), instead of listing them all as if pending; without a store it says it cannot know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.commands.cli import main
from bot.commands.world import World
from bot.simgitlab import ManualClock
from bot.store import open_store
from tests.chat.fakechat import FakeChat
from tests.chat.test_slack_job import reconcile, send_all, slack_worker


def plan(capsys: Any, monkeypatch: pytest.MonkeyPatch, w: World, iid: int, db: Path, *extra: str) -> str:
    monkeypatch.setenv("GITLAB_URL", w.sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", w.sim.token)
    monkeypatch.setenv("INCIDENT_BOT_DB", str(db))
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", w.project)
    assert main(["plan", f"{w.project}#{iid}", *extra]) == 0
    out: str = capsys.readouterr().out
    return out


def slack_lines(out: str) -> dict[str, str]:
    """Slack target -> its line of the plan's Slack section (the first line per target)."""
    section = out[out.index("Slack messages ("):].splitlines()[1:]
    lines: dict[str, str] = {}
    for line in section:
        if line.startswith("  - "):
            lines.setdefault(line[4:].split(":", 1)[0], line)
    return lines


def test_plan_marks_each_slack_message_sent_pending_or_refused(capsys, monkeypatch, w, clock: ManualClock,
                                                                 tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    fake = FakeChat()
    fake.refuse = {"#e-group"}
    with open_store(str(db)) as store:
        iid = w.incident("severity::1", "data-breach")
        reconcile(w, store, clock, iid)
        sent_at = clock()
        send_all(slack_worker(store, clock, fake))
        w.sim.state.update_issue(w.project, iid, add_labels=["comms-email"])
        clock.advance(60)
        reconcile(w, store, clock, iid)  # a new child: its ping and the summary's edit wait for the Slack worker
    w.sim.reset_log()
    out = plan(capsys, monkeypatch, w, iid, db)
    lines = slack_lines(out)
    assert lines["email"].endswith(f"[sent {sent_at:%Y-%m-%d %H:%M} UTC]"), lines["email"]
    assert "[refused " in lines["#e-group"] and "channel_not_found" in lines["#e-group"]
    assert lines["#marketing-programs"].endswith("[pending]"), "offered after the last send: not sent yet"
    summary = lines["#security-department"]
    assert summary.endswith("[sent (an edit to this text is pending)]"), "the summary is to show the new child"

    assert "which were sent is unknown" not in out
    assert w.sim.writes() == [], "plan writes nothing to GitLab"
    data = json.loads(plan(capsys, monkeypatch, w, iid, db, "--json"))
    states = {m["target"]: m["state"] for m in data["slack"]}
    assert states["#e-group"] == "refused" and states["#marketing-programs"] == "pending"
    assert states["email:sec-director@example.com"] == "sent"


def test_plan_without_a_reachable_store_says_which_were_sent_is_unknown(capsys, monkeypatch, w,
                                                                       tmp_path: Path) -> None:
    iid = w.incident("severity::1", "data-breach")
    missing = tmp_path / "nowhere" / "bot.sqlite3"
    out = plan(capsys, monkeypatch, w, iid, missing)
    assert "  (the store is not reachable: which were sent is unknown)" in out
    assert "[pending]" not in out and "[sent" not in out
    assert not missing.exists() and not missing.parent.exists(), "plan does not create a store"
