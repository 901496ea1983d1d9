"""Slack calls over an S1 incident's lifetime: the real ``slack_sdk`` against the simulated Slack (loopback),
the GitLab worker against the simulated GitLab, one injected clock.

    .venv/bin/python bench/bench_slack.py

The scenario: an S1 data breach opens (engagements, summary), two comms children open (team pings, summary
edits), a reminder window passes (a DM to the DRI), a six-point status update (forwarded per engaged
target), all clear (final messages), then a reconcile with nothing new. Prints Slack calls by method, the
lower bound (one post per target per event, plus one per summary target), the posts against it, summary
edits, history reads and the Slack calls of the no-op reconcile (must be 0).

Then the same again under the limits Slack puts on a commercially distributed app outside its Marketplace
(changelog 2025-05-29: ``conversations.history`` once a minute, 15 messages a page), each channel already
holding 40 messages of people talking, and the first two posts landing with their answers lost: every message
still goes out exactly once; prints the 429s met and the longest wait for the last message of a step.

Then the first scenario with ``chat.create_incident_channel``: the calls creating the incident channel and
inviting its people (once for the whole incident), and the GitLab checklist edits the Slack side causes (the
engagements shown engaged: one edit per batch of Slack messages, never one per message).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.commands.world import world
from bot.config import load_config
from bot.integrations.slack.job import SlackPlanner, SlackWorker
from bot.integrations.slack.plan import chat_messages
from bot.integrations.slack.slackapi import SlackChat
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.simslack import SimulatedSlack
from bot.store import open_store
from bot.store.base import WorkerStore
from bot.wiring import slack_renderer
from bot.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)
TOKEN = "xoxb-bench-token"
UPDATE = ("## Current risk\nlow\n## Users impacted\nsome\n## Timeline of events\n- 09:00 found\n"
          "## Mitigation steps taken\nrotated keys\n## Current status of the incident\ncontained\n"
          "## Next steps\nmonitor\n")


class CountingPlanner(SlackPlanner):
    """The planner, remembering every message key the plan called for (for the lower bound)."""

    keys: set[str]

    def offer(self, store: WorkerStore, incident_key: str, desired: Any, observed: Any, now: datetime) -> bool:
        self.keys |= {m.key for m in chat_messages(self.cfg, desired, observed, self.render)}
        return super().offer(store, incident_key, desired, observed, now)


def main() -> None:
    run(distributed=False)
    print()
    print("under a distributed app's limits (history 1/min, 15/page; 40 messages in each channel; 2 lost answers)")
    run(distributed=True)
    print()
    print("creating the incident channel (chat.create_incident_channel: true, incident_channel: '#inc-{iid}')")
    run(distributed=False, create=True)


def run(*, distributed: bool, create: bool = False) -> None:
    clock = ManualClock(T0)
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    data["templates_dir"] = str(ROOT / "issue_templates")
    data["chat"]["people"] = {"sec-incident-manager": "email:simoc@example.com"}
    if create:
        data["chat"].update(create_incident_channel=True, incident_channel="#inc-{iid}")
        data["chat"]["people"].update({"sec-oncall": "email:seoc@example.com", "comms-oncall": "email:cmoc@example.com",
                                       "sec-director": "email:sec-director@example.com"})
    tmp = Path(tempfile.mkdtemp())
    (tmp / "bot.yaml").write_text(yaml.safe_dump(data))
    cfg = load_config(tmp / "bot.yaml")
    planner = CountingPlanner(cfg, slack_renderer(cfg))
    planner.keys = set()
    with SimulatedGitLab(now=clock) as gl, \
            SimulatedSlack(token=TOKEN, clock=lambda: clock().timestamp(), rate_limit=False,
                           distributed_app=distributed) as sl, \
            open_store(str(tmp / "bot.sqlite3")) as store:
        for name in ("e-group", "security-department", "marketing-programs", "support-managers",
                     "community-advocates"):
            sl.state.add_channel(name)
        sl.state.add_user("sec-director", "sec-director@example.com")
        sl.state.add_user("simoc", "simoc@example.com")
        sl.state.add_user("seoc", "seoc@example.com")
        sl.state.add_user("cmoc", "cmoc@example.com")
        if distributed:
            for channel in list(sl.state.channels):
                for i in range(40):
                    sl.state.say(channel, f"people talking {i}")
            sl.fail_after_commit(2)
        w = world(gl, cfg)
        sender = SlackWorker(store, lambda: SlackChat(TOKEN, sl.url, clock=lambda: clock().timestamp()),
                             worker_id="s:1", clock=clock)
        iid = w.incident("severity::1", "data-breach")
        key = f"{w.project_id}#{iid}"
        waits = [0.0]
        reconciles = [0]

        def step(minutes: float) -> None:
            clock.set(max(clock(), T0 + timedelta(minutes=minutes)))  # never back in time after a long wait
            store.enqueue(f"{w.project_id}#{iid}", clock(), "Issue Hook")
            clock.advance(1)
            began = clock()
            for _ in range(3):  # as running workers do: a GitLab job the Slack worker queued runs at once
                clock.advance(1)
                wk = Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock, chat=planner)
                try:
                    ran = 0
                    while wk.run_once() is not None:
                        ran += 1
                        reconciles[0] += 1
                finally:
                    wk.reconciler.close()  # type: ignore[attr-defined]
                if not ran and not store.pending("slack", key):
                    break
                for _ in range(240):  # Slack retries as the queue makes them due, 5 s apart, until nothing waits
                    while sender.run_once() is not None:
                        pass
                    if not store.pending("slack", key):
                        break
                    clock.advance(5)
            waits.append((clock() - began).total_seconds())

        def label(name: str) -> None:
            gl.state.update_issue(w.project, iid, add_labels=[name])

        step(0)
        label("comms-email")
        step(5)
        label("comms-faq")
        step(10)
        step(62)  # the first reminder window
        gl.state.add_note(w.project, iid, UPDATE, author="sec-incident-manager")
        step(70)
        label("comms::all-clear")
        step(80)
        before = len(sl.calls)
        step(90)  # nothing new
        quiet = len(sl.calls) - before

        by_method = Counter(c.method for c in sl.calls)
        bound = len({k for k in planner.keys if "|channel|" not in k})
        posts = by_method["chat.postMessage"]
        keys = sl.state.keys()
        print("Slack calls by method")
        for method, n in sorted(by_method.items()):
            print(f"  {method:<28}{n}")
        print(f"lower bound on posts               {bound}")
        print(f"posts / lower bound                {posts} / {bound} ({posts / bound:.2f}x)")
        print(f"summary edits (chat.update)        {by_method['chat.update']}")
        print(f"history reads                      {by_method['conversations.history']}")
        print(f"messages posted twice              {sum(1 for n in Counter(keys).values() if n > 1)}")
        print(f"Slack calls on a no-op reconcile   {quiet}")
        print(f"history reads answered 429         {sum(1 for c in sl.calls if c.status == 429)}")
        print(f"messages still waiting             {len(store.pending('slack', key))}")
        print(f"longest step until all sent        {max(waits):.0f} s")
        edits = len([r for r in gl.requests if r.method == "PUT" and r.route and r.route.endswith("/notes/:note_id")])
        print(f"GitLab note edits (7 steps)        {edits}")
        print(f"GitLab reconciles (7 steps)        {reconciles[0]}")


if __name__ == "__main__":
    main()
