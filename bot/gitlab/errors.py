"""The one exception family that GitLab API calls raise out of :class:`bot.gitlab.callpolicy.CallPolicy`.

Callers branch on ``transient`` (retry later, e.g. requeue), ``status`` (e.g. 409 on a link means
"already linked") and the subclasses :class:`OutcomeUnknown` (a create may have happened: re-read
GitLab before deciding again) and :class:`GitLabAuthError` (the token is wrong: stop, do not retry).
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = [
    "CannotAct",
    "GitLabAuthError",
    "GitLabCallError",
    "GitLabConfigError",
    "OutcomeUnknown",
    "compact_message",
]

_MAX_MESSAGE = 300
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def compact_message(value: Any, limit: int = _MAX_MESSAGE) -> str:
    """Render a python-gitlab ``error_message`` (str, bytes, dict, list or HTML page) as one short line.

    GitLab validation errors arrive as dicts such as ``{'title': ['is too long']}`` and proxies answer
    5xx with whole HTML pages; neither belongs verbatim in a log line or an issue comment.
    """
    text = _flatten(value)
    if "<" in text and ">" in text and ("<html" in text.lower() or "<body" in text.lower()):
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", text)
        text = html.unescape(text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _flatten(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            inner = _flatten(item)
            parts.append(f"{key}: {inner}" if inner else str(key))
        return "; ".join(parts)
    if isinstance(value, list | tuple | set):
        return ", ".join(_flatten(item) for item in value)
    return str(value)


class GitLabCallError(Exception):
    """A GitLab API call that failed after the policy gave up.

    ``status`` is the HTTP status, or ``None`` when no response arrived (connection error, timeout).
    ``transient`` tells whether trying again later can help. ``retry_after`` carries the server's
    requested wait in seconds when it gave one, so a queue can reschedule instead of spinning.
    """

    def __init__(
        self,
        step: str,
        incident: str,
        status: int | None,
        message: str,
        transient: bool,
        *,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        self.step = step
        self.incident = incident
        self.status = status
        self.message = message
        self.transient = transient
        self.attempts = attempts
        self.retry_after = retry_after
        super().__init__(self._render())

    @property
    def permanent(self) -> bool:
        return not self.transient

    def _render(self) -> str:
        head = f"{self.incident}: " if self.incident else ""
        status = f"{self.status} " if self.status is not None else ""
        kind = "transient" if self.transient else "permanent"
        noun = "attempt" if self.attempts == 1 else "attempts"
        return f"{head}{self.step} failed: {status}{self.message} ({kind}, after {self.attempts} {noun})"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the keyword-only fields when the error crosses a process or queue boundary.
        return (
            _rebuild,
            (
                type(self),
                self.step,
                self.incident,
                self.status,
                self.message,
                self.transient,
                self.attempts,
                self.retry_after,
            ),
        )


def _rebuild(
    cls: type[GitLabCallError],
    step: str,
    incident: str,
    status: int | None,
    message: str,
    transient: bool,
    attempts: int,
    retry_after: float | None,
) -> GitLabCallError:
    err = cls.__new__(cls)
    GitLabCallError.__init__(
        err, step, incident, status, message, transient, attempts=attempts, retry_after=retry_after
    )
    return err


class OutcomeUnknown(GitLabCallError):
    """A create whose request may have reached GitLab (5xx, read timeout, reset after sending).

    Repeating it could duplicate an issue, link or note, so the policy does not; the caller must
    re-read GitLab (find the child issue or the bot's note) and only then decide to create again.
    """

    def __init__(
        self,
        step: str,
        incident: str,
        status: int | None,
        message: str,
        transient: bool = True,
        *,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(step, incident, status, message, True, attempts=attempts, retry_after=retry_after)


class GitLabAuthError(GitLabCallError):
    """GitLab rejected the token (401): retrying cannot help until an operator fixes GITLAB_TOKEN."""


class GitLabConfigError(Exception):
    """A startup problem with GITLAB_URL or GITLAB_TOKEN, worded as one line for the operator."""


class GitLabUnreachable(GitLabConfigError):
    """GitLab did not answer (connection refused, a timeout) or answered 5xx: it may come back by itself,
    unlike a rejected token or a wrong URL."""


class CannotAct(GitLabCallError):
    """GitLab refused a write on an incident the bot can read, and the bot user's role explains it
    (``bot.core.access.refusal``): the failed call's fields, plus the reason in GitLab's roles and whether the
    bot said so on the incident. Trying again gives the same answer until someone changes the bot's role."""

    def __init__(self, failed: GitLabCallError, reason: str, said: str) -> None:
        self.reason = reason
        self.said = said  # "said on the incident", "said on the incident before", or why it could not say it
        super().__init__(
            failed.step, failed.incident, failed.status, failed.message, False, attempts=failed.attempts
        )

    def _render(self) -> str:
        return f"{super()._render()}; {self.reason} ({self.said})"

    def __reduce__(self) -> tuple[Any, ...]:
        failed = GitLabCallError(self.step, self.incident, self.status, self.message, False, attempts=self.attempts)
        return (CannotAct, (failed, self.reason, self.said))
