"""Helpers for the sign-off tests against the simulated GitLab: a critical data breach with a customer email,
its child, the draft written and edited as the SIMOC does, and what people read."""

from __future__ import annotations

from typing import Any

from bot.commands.world import World
from bot.simgitlab import ManualClock
from tests.conftest import look
from tests.rendered import rendered_lines

SEV1_EMAIL = ("severity::1", "data-breach", "comms-email")
DIRECTOR = "sec-director"  # team:sr_director_security in the bundled policy
SIMOC = "sec-incident-manager"  # the SIMOC's roster
CMOC = "comms-oncall"
DRAFT = ("Subject: Security incident notice\n\nWe detected unauthorised access to a database on 2026-11-29.\n"
         "Questions: security@gitlab.com\n")


def shown(body: str) -> str:
    return "\n".join(ln.text for ln in rendered_lines(body))


def child_of(w: World, channel: str = "comms-email") -> dict[str, Any]:
    (child,) = [c for c in w.children() if channel in c["labels"]]
    return child


def write_draft(w: World, text: str, channel: str = "comms-email", actor: str = SIMOC) -> None:
    """The drafter appends (or replaces) the ``## Draft`` section of the child's description."""
    child = child_of(w, channel)
    description = child["description"].split("\n## Draft\n")[0]
    w.sim.state.update_issue(w.project, child["iid"], actor=actor, description=f"{description}\n## Draft\n{text}")


def say(w: World, iid: int, text: str, author: str) -> dict[str, Any]:
    return w.sim.state.add_note(w.project, iid, f"@incident-bot {text}", author=author)


def checklist(w: World, iid: int) -> str:
    return next(n["body"] for n in w.bot_notes(iid) if "communications checklist" in n["body"])


def signoff_rows(w: World, iid: int) -> list[str]:
    """The checklist's sign-off lines, as GitLab shows them."""
    body = checklist(w, iid)
    if "#### Sign-off of the drafts" not in body:
        return []
    part = body.split("#### Sign-off of the drafts", 1)[1].split("\n####", 1)[0]
    return [ln.text for ln in rendered_lines(part) if ln.block == "li"]


def replies(w: World, iid: int, command: str) -> list[str]:
    out = []
    for n in w.bot_notes(iid):
        text = shown(n["body"])
        first = text.split("\n")[0] + " "
        if f"✓ {command} " in first or f"✗ {command} " in first:
            out.append(text)
    return out


def child_notes(w: World, channel: str = "comms-email") -> list[str]:
    child = child_of(w, channel)
    notes = w.sim.state.notes(w.project, child["iid"], include_system=False)
    return [shown(n["body"]) for n in notes if n["author"]["username"] == w.cfg.bot.username]


def log_lines(w: World, iid: int) -> list[str]:
    """The lines of the status log thread (each entry a reply in it) and of the bot's other comments, but the
    checklist's."""
    return [ln for n in w.bot_notes(iid) if "communications checklist" not in n["body"]
            for ln in shown(n["body"]).split("\n")]


def opened(w: World, clock: ManualClock) -> int:
    """A critical data breach with the customer email selected; its child opened."""
    iid = w.incident(*SEV1_EMAIL)
    look(w, clock, iid)
    return iid
