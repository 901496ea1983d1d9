"""What a status page adapter answers, for both providers: one of four results, never an exception.

* :class:`Sent`: the provider holds the text; ``remote_id`` is its incident id (the outbox's remote reference);
* :class:`Refused`: the provider said no (a bad key, a bad component, a 4xx); retrying the same call will not help;
* :class:`Unavailable`: try again later (a timeout, a 5xx, a rate limit); ``retry_after`` in seconds when known;
* :class:`Ambiguous`: more than one provider incident carries the bot's name or key: stop, a person must look.

Every reason goes through :func:`scrub` so that no API key reaches a log line or a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.redact import MASK, redact


@dataclass(frozen=True)
class Sent:
    remote_id: str
    """The provider's incident id."""
    found_again: bool = False
    """The incident (and this very text) was already there: found by name or metadata, nothing was posted twice."""
    calls: int = 0
    """HTTP requests this result took."""


@dataclass(frozen=True)
class Refused:
    reason: str
    calls: int = 0


@dataclass(frozen=True)
class Unavailable:
    reason: str
    retry_after: float | None = None
    calls: int = 0


@dataclass(frozen=True)
class Ambiguous:
    reason: str
    calls: int = 0


Result = Sent | Refused | Unavailable | Ambiguous


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets and every registered secret masked, on one line, at most 300 characters."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = " ".join(redact(text).split())
    return text if len(text) <= 300 else text[:297] + "..."
