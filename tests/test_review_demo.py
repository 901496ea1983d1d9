"""The communications review of the demo's incident: a golden file, and every metric checked against GitLab.

Each metric's two events are read back from the simulated GitLab (the comment, the child issue, the label event
its link names) and the metric must be exactly the time between them.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.commands.demo import Demo, run_demo
from bot.commands.reportview import report_live

GOLDEN = Path(__file__).parent / "golden" / "demo_review.json"
BASE = "https://gitlab.example"


def _demo_review(cfg) -> tuple[dict[str, Any], dict[str, Any]]:
    """The review's JSON (links under ``BASE``) and, for each link, the times GitLab shows there."""
    out: dict[str, Any] = {}

    def at_end(demo: Demo) -> None:
        sim = demo.w.sim
        reconciler = demo.w.reconciler(clock=demo.clock)
        sim.reset_log()
        review = report_live(f"{demo.w.project}#{demo.incident}", lambda: reconciler)
        assert sim.writes() == [], "the review reads only"
        out["json"] = json.loads(json.dumps(review.as_json()).replace(sim.url, BASE))
        truth: dict[str, set[str]] = {}
        for issue in sim.state.issues_by_id.values():
            project = sim.state.projects_by_id[issue.project_id]
            url = f"{BASE}/{project.path_with_namespace}/-/issues/{issue.iid}"
            times = {issue.created_at, issue.closed_at} | {e.created_at for e in sim.state.label_events_of(issue)}
            truth[url] = {_iso(t) for t in times if t}
            for note in sim.state.notes_of(issue):
                truth[f"{url}#note_{note.id}"] = {_iso(note.created_at)}
        out["truth"] = truth

    assert run_demo(cfg, log=lambda _: None, at_end=at_end) == 0
    return out["json"], out["truth"]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_demo_review_matches_its_golden_file(default_config):
    got, _ = _demo_review(default_config)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(GOLDEN.read_text())


def test_each_metric_is_the_time_between_its_two_linked_events_as_gitlab_shows_them(default_config):
    got, truth = _demo_review(default_config)
    assert got["schema"] == 1 and got["incident"] == "acme/security-incidents#1"
    measured = 0
    for m in got["metrics"]:
        if m["seconds"] is None:
            assert m["note"], f"{m['name']}: a null metric says why"
            continue
        start, end = m["from"], m["to"]
        assert m["seconds"] == int((_when(end["at"]) - _when(start["at"])).total_seconds()), m["name"]
        for event in (start, end):
            if event["url"]:  # "review made" has no link: it is the review's own time
                assert event["at"] in truth[event["url"]], (m["name"], event)
        measured += 1
    assert measured >= 8
    names = {m["name"]: m for m in got["metrics"]}
    assert names["declared_to_scoped"]["seconds"] == 20 * 60  # 09:00 declared, 09:20 comms::scoped
    assert names["scoped_to_first_external_comms"]["seconds"] == 100 * 60  # the blog closed at 11:00
    assert names["order:customers-first:comms-blog"]["note"].startswith("broken")
    assert re.search(r"2 windows missed", names["engagement:e-group:longest_gap"]["note"])
    assert names["pages:paged_to_acknowledged"]["seconds"] is None
