"""How soon a closed child shows on its incident: GitLab's webhook -> the checklist edited, over HTTP.

    .venv/bin/python bench/bench_child_event.py [--rounds 3] [--sweep-seconds 10]

``python -m bot serve`` (receiver and worker, as deployed) against the simulated GitLab on loopback, on the
wall clock. The simulated GitLab delivers its webhooks (``bot.simgitlab.delivery``) to the receiver for changes
made through its API, as GitLab does for a project (or group) hook. Each round declares an incident with a blog
post child (in the incident's project) and a customer email child (in the team project
``marketing/programs``), waits until it is converged, then a person closes the blog post through the API:
the time until the incident's checklist shows it ticked, with the comms-order warning, is the webhook path.
Then the webhook is removed (as for a team project without a hook) and the person closes the customer email:
the time until that is ticked is the sweep path (``INCIDENT_BOT_SWEEP_SECONDS``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.commands.world import World, world
from bot.config import load_config
from bot.core import bodies
from bot.simgitlab import SimulatedGitLab
from tests.security.support import Serve, service_env

ROOT = Path(__file__).resolve().parent.parent
TEAM = "marketing/programs"
SECRET = "bench-secret"


def wait(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check()`` holds (polled every 20 ms); raises after ``timeout``."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if check():
            return time.perf_counter() - start
        time.sleep(0.02)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


def line_of(w: World, iid: int, ref: str) -> str:
    for note in w.bot_notes(iid):
        if bodies.find_checklist_marker(note["body"]):
            return next((x for x in note["body"].splitlines() if ref in x), "")
    return ""


def close_as(sim: SimulatedGitLab, user: str, project: int, iid: int) -> None:
    """A person closes an issue through the API (so GitLab sends its webhooks)."""
    url = f"{sim.url}/api/v4/projects/{project}/issues/{iid}"
    answer = requests.put(url, data={"state_event": "close"}, headers={"PRIVATE-TOKEN": sim.token_for(user)},
                          timeout=5)
    answer.raise_for_status()


def one_round(sim: SimulatedGitLab, w: World, serve: Serve, n: int, team_pid: int, sweep_s: int) -> tuple[float, float]:
    """One incident: (seconds from the blog closed to its tick, via the webhook; from the customer email closed
    in the team's project, with no webhook, to its tick, via the sweep)."""
    hook = sim.subscribe(serve.url + "/webhook", SECRET)
    labels = ",".join((w.cfg.labels.trigger, "severity::2", "data-breach", "comms-email", "comms-blog"))
    made = requests.post(f"{sim.url}/api/v4/projects/{w.project_id}/issues", timeout=5,
                         data={"title": f"round {n}", "labels": labels, "issue_type": "incident"},
                         headers={"PRIVATE-TOKEN": sim.token_for("sec-oncall")})
    made.raise_for_status()
    iid = int(made.json()["iid"])

    def children() -> tuple[dict, dict] | None:
        found = [c for c in w.all_children() if f"#{iid}" in c["title"]]
        blog = next((c for c in found if "comms-blog" in c["labels"]), None)
        email = next((c for c in found if "comms-email" in c["labels"]), None)
        return (blog, email) if blog and email and line_of(w, iid, "comms") else None

    wait(lambda: children() is not None, 60, f"incident #{iid} converged")
    blog, email = children() or ({}, {})
    time.sleep(1.5)  # let the worker finish with the incident
    close_as(sim, "sec-oncall", w.project_id, blog["iid"])
    hooked = wait(lambda: "⚠ closed before" in line_of(w, iid, f"#{blog['iid']} "), 60, "blog ticked")
    sim.hooks.unsubscribe(hook)  # the team's project sends no webhook to the bot
    close_as(sim, "mpm-oncall", team_pid, email["iid"])
    swept = wait(lambda: line_of(w, iid, f"{TEAM}#{email['iid']}").startswith("- [x]"), 3 * sweep_s + 30,
                 "email ticked by the sweep")
    return hooked, swept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep-seconds", type=int, default=10)
    args = parser.parse_args()
    print(f"$ .venv/bin/python bench/bench_child_event.py --rounds {args.rounds} --sweep-seconds {args.sweep_seconds}")
    policy = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    for channel in policy["channels"]:
        if channel["label"] == "comms-email":
            channel["project"] = TEAM
    hooked, swept = [], []
    with tempfile.TemporaryDirectory() as tmp, SimulatedGitLab() as sim:
        workdir = Path(tmp)
        config = workdir / "bot.yaml"
        config.write_text(yaml.safe_dump(policy), encoding="utf-8")
        w = world(sim, load_config(config))
        team_pid = w.team_project(TEAM)
        env = service_env(sim.url, sim.token, workdir, GITLAB_WEBHOOK_SECRET=SECRET, INCIDENT_BOT_CONFIG=str(config),
                          INCIDENT_BOT_SWEEP_SECONDS=str(args.sweep_seconds))
        serve = Serve(env, workdir, threads=2).start()
        try:
            for n in range(args.rounds):
                webhook, sweep = one_round(sim, w, serve, n, team_pid, args.sweep_seconds)
                hooked.append(webhook)
                swept.append(sweep)
                print(f"round {n}: webhook -> checklist ticked with the order warning {webhook:.2f} s; "
                      f"team child without a webhook -> ticked {sweep:.2f} s (sweep every {args.sweep_seconds} s)")
        except SystemExit:
            print(serve.tail(40))
            raise
        finally:
            serve.stop()
    print(f"\nwebhook path: median {statistics.median(hooked):.2f} s, max {max(hooked):.2f} s (goal: 10 s)")
    print(f"sweep path:   median {statistics.median(swept):.2f} s, max {max(swept):.2f} s "
          f"(goal: one sweep, {args.sweep_seconds} s)")


if __name__ == "__main__":
    main()
