"""What a child in a team's project costs, against the simulated GitLab (loopback).

    .venv/bin/python bench/bench_teams.py

An S1 incident with the customer email and the FAQ selected, reconciled by a fresh process (empty caches and
database): once with both children in the incident's project from the bundled templates, once with the email's
child in ``marketing/programs`` from the team's ``Email-Request-mpm`` template. Prints requests, writes and
template reads for the creating look and for the no-op look after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.commands.world import world
from bot.config import Config, parse_config
from bot.core.model import IncidentRef
from bot.simgitlab import SimulatedGitLab

ROOT = Path(__file__).resolve().parent.parent
TEAM, NAME = "marketing/programs", "Email-Request-mpm"
TEMPLATE = "## Email request\n\nMarketing Programs' intake form.\n\n- [ ] Audience list attached\n"


def config(team: bool) -> Config:
    data: Any = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    for channel in data["channels"]:
        if team and channel["label"] == "comms-email":
            channel.update({"project": TEAM, "gitlab_template": NAME})
    return parse_config(data, source="bench", base_dir=ROOT / "config")


def run(team: bool) -> list[tuple[int, int, int]]:
    figures = []
    with SimulatedGitLab() as sim:
        w = world(sim, config(team))
        if team:
            w.team_project(TEAM, templates={NAME: TEMPLATE})
        iid = w.incident("severity::1", "data-breach", "comms-email", "comms-faq")
        for _look in range(2):
            sim.reset_log()
            r = w.reconciler()
            try:
                r.reconcile(IncidentRef(w.project, iid))
            finally:
                r.close()
            reads = sim.count("GET", r"/templates/issues/")
            figures.append((len(sim.requests), len(sim.writes()), reads))
    return figures


def main() -> None:
    print(f"{'':32} {'requests':>8} {'writes':>6} {'template reads':>14}")
    for team in (False, True):
        where = "team project" if team else "incident's project"
        for look, (requests, writes, reads) in zip(("creating", "no-op"), run(team), strict=True):
            print(f"{where + ', ' + look + ' look':32} {requests:>8} {writes:>6} {reads:>14}")


if __name__ == "__main__":
    main()
