"""What every body shares: the renderer, safe rendering with its inert fallback, names and the log marker."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Protocol

from bot.core import records
from bot.core import state as bot_state
from bot.core.model import Desired, LogEntry, Observed, Person
from bot.text.durations import duration
from bot.text.escape import UnsafeValue, escape_inline, issue_ref, mention
from bot.text.hazards import UnsafeOutput, unexpected_hazards, valid_mentions_in
from bot.text.safe import Safe, TemplateRenderError

# The package's name, as before it was split by artifact: its log lines keep their logger.
log = logging.getLogger("bot.core.bodies")

CHECKLIST = bot_state.CHECKLIST
CHILD = "child"
LOG = records.LOG
ITEM = "item"


class Renderer(Protocol):
    def render(self, name: str, /, **context: Any) -> str: ...


# One unsafe value must not stop the rest of the incident: a value that cannot be written as asked is
# written as inert text, a body that still fails its last check is replaced by an inert notice that keeps
# its marker (so what it was for is recorded and not retried forever), and the reason goes to the log.
RENDER_FAILURES = (UnsafeOutput, UnsafeValue, TemplateRenderError)
INERT_NOTICE = (
    "This comment could not be written safely: a value in it would have notified people or run a "
    "command. The bot's log says which; everything else on the incident carries on."
)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def at(username: str) -> Safe:
    """``@username`` for a user GitLab resolved; inert text (and a log line) if it cannot be a mention."""
    try:
        return Safe(mention(username))
    except UnsafeValue as exc:
        log.warning("wrote %r as text, not a mention: %s", username[:100], _one_line(exc))
        return Safe(escape_inline(username))


_strict: contextvars.ContextVar[bool] = contextvars.ContextVar("incident_bot_strict_render", default=False)


@contextlib.contextmanager
def strict() -> Iterator[None]:
    """Within this block an unsafe body raises instead of becoming a notice (``check-config`` wants to know)."""
    token = _strict.set(True)
    try:
        yield
    finally:
        _strict.reset(token)


def _render(r: Renderer, name: str, what: str, fallback_extra: str = "", /, **context: Any) -> str:
    """``r.render(name, **context)``, or the context's marker and ``INERT_NOTICE`` when a value made it unsafe.

    A template that is broken whatever the values (undefined name, syntax) still raises: that is the
    operator's to fix, and ``check-config`` reports it.
    """
    try:
        return r.render(name, **context)
    except RENDER_FAILURES as exc:
        broken_template = isinstance(exc, TemplateRenderError) and not isinstance(exc.__cause__, UnsafeValue)
        if broken_template or _strict.get():
            raise
        log.warning("%s: %s; wrote an inert notice instead", what, _one_line(exc))
        return f"{context.get('marker', '')}\n{INERT_NOTICE}\n{fallback_extra}"


def who(person: Person) -> Safe:
    """``@handle`` for a configured or GitLab-resolved handle, else the escaped name: who is mentioned to engage
    them (a team's group handle)."""
    if person.handle:
        try:
            return Safe(mention(person.handle, allow_group=True))
        except UnsafeValue as exc:
            log.warning("%s: %s; named without a mention", person.party, _one_line(exc))
            return Safe(f"{escape_inline(person.name)} ({escape_inline(person.handle)})")
    return Safe(f"{escape_inline(person.name)} (nobody configured)")


def dri_of(person: Person) -> Safe:
    """The DRI, a person: ``@assignee`` (the user a team's work is assigned to), else ``who``. The same name in
    the checklist, the child, the status log and the outbound integrations; a team's group handle is who is
    engaged (``who``)."""
    if person.assignee and person.assignee != person.handle:
        return at(person.assignee)
    return who(person)


def _engaged_as(person: Person) -> str:
    """`` (@group)``: the team's handle, mentioned to engage it, when its DRI is a person other than it."""
    return f" ({who(person)})" if person.assignee and person.handle and person.assignee != person.handle else ""


def team_name(person: Person) -> str:
    """The party's name, with its group handle when the DRI is a person other than it (``Legal, @legal``)."""
    if person.assignee and person.handle and person.assignee != person.handle:
        return Safe(f"{escape_inline(person.name)}, {who(person)}")
    return person.name


def every(cadence: timedelta | None) -> str:
    if cadence is None:
        return "continuous"
    return "every " + duration(cadence)


def _incident_context(observed: Observed) -> dict[str, Any]:
    inc = observed.incident
    return {"ref": Safe(issue_ref(inc.ref.iid)), "iid": inc.ref.iid, "title": inc.title, "url": inc.web_url}


def _roles_context(desired: Desired) -> list[dict[str, Any]]:
    return [{"id": rid, "name": p.name, "who": who(p)} for rid, p in desired.roles.items()]


def _checked_entry(entry: LogEntry) -> Safe:
    """An entry's text, or ``INERT_NOTICE`` if it holds a hazard it did not build on purpose."""
    hazards = unexpected_hazards(entry.text, valid_mentions_in(entry.text))
    if not hazards:
        return Safe(entry.text)
    if _strict.get():
        raise UnsafeOutput(f"status log entry {entry.key}: unsafe output: {hazards[0]}", hazards)
    log.warning("status log entry %s: %s; wrote an inert notice instead", entry.key, hazards[0])
    return Safe(INERT_NOTICE)


#: The field of a status log marker that says the note belongs to the incident's status log thread.
LOG_THREAD = records.THREAD


def _log(observed: Observed, keys: list[str], **extra: Any) -> Safe:
    """The signed marker recording ``keys`` (``bot.core.records``)."""
    return Safe(records.log_marker(observed.key, observed.incident, keys, **extra))
