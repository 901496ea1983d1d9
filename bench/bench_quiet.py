"""How loud an incident is: the bot's comments a person scrolls past, against the simulated GitLab (loopback).

    .venv/bin/python bench/bench_quiet.py

The scenario of issue 11: an S1 incident, two label changes, three commands (a top-level one, one replied in
a person's thread, an internal one), one reminder, all clear. Prints the top-level comments by the bot and by
people, the bot's notes in all, the notes in the status log thread, and the requests each look cost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.commands.world import world
from bot.config import load_config
from bot.core.model import IncidentRef
from bot.simgitlab import ManualClock, SimulatedGitLab

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)


def main() -> None:
    clock = ManualClock(T0)
    cfg = load_config(ROOT / "config" / "bot.yaml")
    bot = cfg.bot.username
    with SimulatedGitLab(now=clock) as sim:
        w = world(sim, cfg)
        iid = w.incident("severity::1", "data-breach")
        ref = IncidentRef(w.project, iid)
        requests: list[int] = []

        def look(hhmm: str) -> None:
            clock.set(T0.replace(hour=int(hhmm[:2]), minute=int(hhmm[3:])))
            sim.reset_log()
            r = w.reconciler(clock=clock)
            try:
                r.reconcile(ref)
            finally:
                r.close()
            requests.append(len(sim.requests))

        def label(*names: str) -> None:
            sim.state.set_labels(w.project, iid, [*sim.state.get_issue(w.project, iid)["labels"], *names])

        look("09:00")
        label("comms-email")
        look("09:05")
        label("comms-faq")
        look("09:10")
        sim.state.add_note(w.project, iid, "@incident-bot status", author="sec-incident-manager")
        look("09:15")
        question = sim.state.add_note(w.project, iid, "Who takes comms tonight?", author="sec-oncall")
        sim.state.add_note(
            w.project, iid, "@incident-bot handoff cmoc @pr-manager", author="comms-oncall", reply_to=question["id"]
        )
        look("09:20")
        sim.state.add_note(w.project, iid, "@incident-bot help", author="sec-oncall", internal=True)
        look("09:25")
        look("10:00")  # one reminder
        label("comms::all-clear")
        look("10:05")
        look("10:06")  # nothing new

        item = sim.state.find_issue(w.project, iid)
        notes = sorted((n for n in sim.state.notes_of(item) if not n.system), key=lambda n: n.id)
        roots: dict[str, object] = {}
        for n in notes:
            roots.setdefault(n.discussion_id, n)
        top = [n for n in notes if roots[n.discussion_id] is n]
        by_bot = [n for n in notes if sim.state.users_by_id[n.author_id].username == bot]
        top_bot = [n for n in top if n in by_bot]
        log_thread = max((sum(1 for m in notes if m.discussion_id == n.discussion_id) for n in top_bot), default=0)
        print(f"top-level comments by the bot      {len(top_bot)}")
        print(f"top-level comments by people       {len(top) - len(top_bot)}")
        print(f"notes by the bot (all)             {len(by_bot)}")
        print(f"notes in the longest bot thread    {log_thread}")
        print(f"requests per look                  {requests}")


if __name__ == "__main__":
    main()
