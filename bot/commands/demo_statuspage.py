"""The demo's status page part: a live incident's draft written in the status page child, the SIMOC's approval,
and the CMOC's publish to a simulated status.io over HTTP through the real adapter, the outbox and the job loop.

Its own simulated GitLab and status.io on 127.0.0.1, its own clock: the main story's transcript is unchanged.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bot.commands.world import World, world
from bot.config import Config
from bot.core import drafts
from bot.integrations.base import Planners
from bot.integrations.statuspage.command import PUBLISH
from bot.integrations.statuspage.config import StatusIoSettings
from bot.integrations.statuspage.facts import CHANNEL
from bot.integrations.statuspage.integration import STATUS_PAGE, policy_of
from bot.integrations.statuspage.job import StatusPagePlanner, StatusPageSender
from bot.integrations.statuspage.statusio import StatusIo
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.simstatus import SimulatedStatusIo
from bot.statekey import derived_key
from bot.store.sqlite import SQLiteStore
from bot.text.markers import StateKey
from bot.worker import Worker

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
COMPONENT, CONTAINER = "cmp-web", "ctr-global"
DRAFT = ("We are investigating reports of failed sign-ins on the hosted service.\n"
         "Next update within the hour on this page.\n")
CMOC, SIMOC = "comms-oncall", "sec-incident-manager"


def status_page_story(cfg: Config, log: Callable[[str], None], readable: Callable[[str], str]) -> bool:
    """The story; whether the status page shows exactly the approved draft, once. ``readable``: a comment as a
    person reads it."""
    section = {"provider": "statusio", "components": [COMPONENT], "containers": [CONTAINER],
               "allowed_hosts": ["status.gitlab.com"]}
    cfg = cfg.model_copy(update={"integrations": {**cfg.integrations, "status_page": section}})
    policy = policy_of(cfg)
    assert policy is not None
    clock = ManualClock(START)
    with (SimulatedGitLab(now=clock) as sim, SimulatedStatusIo(components={COMPONENT: [CONTAINER]},
                                                               clock=lambda: clock().timestamp()) as status,
          tempfile.TemporaryDirectory(prefix="incident-bot-demo-") as scratch,
          SQLiteStore(Path(scratch) / "outbox.sqlite3", durability="normal") as store):
        w = world(sim, cfg)
        settings = StatusIoSettings(status.url, status.api_id, status.api_key, status.statuspage_id)
        planner = Planners([(STATUS_PAGE, StatusPagePlanner(policy, derived_key(sim.token), "statusio"))])
        sender = StatusPageSender(store, lambda: StatusIo(settings, policy, timeout=5), policy,
                                  worker_id="demo:status-page", clock=clock)

        def look() -> None:
            """The incident's webhook, the GitLab worker, the status page sender, and the look its news queues."""
            reconciler = w.reconciler(clock=clock, commands=(PUBLISH,), key=StateKey(derived_key(sim.token)))
            worker = Worker(store, reconciler, worker_id="demo", clock=clock, chat=planner)
            try:
                store.enqueue(f"{w.project_id}#{iid}", clock(), "Issue Hook")
                clock.advance(60)
                while worker.run_once() is not None:
                    pass
                while sender.run_once() is not None:
                    pass
                clock.advance(1)  # the sender's news: the incident's GitLab job, after the send
                while worker.run_once() is not None:
                    pass
            finally:
                reconciler.close()

        log("\nThe status page: a second, live incident, with a simulated status.io on 127.0.0.1 (as with "
            "STATUSIO_API_KEY set)")
        iid = w.incident("severity::1", "live-incident", CHANNEL, title="Sign-in tokens leaked by the auth proxy",
                         confidential=True)
        look()
        child = next(c for c in w.children() if CHANNEL in c["labels"])
        log(f"  @sec-oncall declares #{iid} (live-incident, {CHANNEL}); the bot opens #{child['iid']} "
            f"'{child['title']}' for the CMOC")
        sim.state.update_issue(w.project, child["iid"], actor=CMOC,
                               description=f"{child['description']}\n## Draft\n{DRAFT}")
        look()
        digest = drafts.digest(DRAFT)
        log(f"  @{CMOC} writes the update under '## Draft' in #{child['iid']} (digest {digest})")
        for who, text in ((CMOC, "publish status-page"), (SIMOC, f"approve status-page {digest}"),
                          (CMOC, f"publish status-page {digest}")):
            sim.state.add_note(w.project, iid, f"@incident-bot {text}", author=who)
            before = len(status.requests)
            look()
            log(f"  @{who}: `@incident-bot {text}`")
            log(f"    the bot replies: {_reply(w, iid, text.split()[0], readable)}")
            for r in status.requests[before:]:
                log(f"    status.io {r.method} {r.path} -> {r.status}")
        shown = list(status.incidents.values())
        for incident in shown:
            log(f"  status.io now shows '{incident['name']}': {incident['messages'][-1]['details']!r}")
        row = next((line for n in w.bot_notes(iid) for line in n["body"].splitlines()
                    if "the status page incident" in line and "draft" in line), "")
        if row:
            log(f"  the checklist: {row.strip().lstrip('-* ').strip()}")
        title_sent = any("Sign-in tokens" in r.raw for r in status.requests)
        log("  the incident's title never reached status.io" if not title_sent else "  THE TITLE REACHED status.io")
        return len(shown) == 1 and shown[0]["messages"][-1]["details"] == DRAFT.strip() and not title_sent


def _reply(w: World, iid: int, verb: str, readable: Callable[[str], str]) -> str:
    body = next(n["body"] for n in reversed(w.bot_notes(iid)) if f" {verb} " in n["body"])
    lines = [line for line in readable(body).splitlines() if line.strip()]
    return " / ".join(line.strip() for line in lines[:2])
