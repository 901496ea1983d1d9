"""Severity, durations and the validated value types the policy's models share."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import IntEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


class Severity(IntEnum):
    """Severity levels, ordered so that a higher value is more severe."""

    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: Any) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r} (expected one of: {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


SeverityName = Annotated[Severity, BeforeValidator(Severity.parse)]

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*$")
CONTINUOUS = "continuous"


def parse_duration(text: str) -> timedelta:
    """Parse ``1h``, ``30m``, ``1h30m``, ``2d`` into a positive timedelta."""
    m = _DURATION.match(str(text))
    if not m or not any(m.groups()):
        raise ValueError(f"cannot parse duration {text!r} (expected e.g. 30m, 1h, 1h30m, 2d)")
    d, h, mins = (int(g) if g else 0 for g in m.groups())
    value = timedelta(days=d, hours=h, minutes=mins)
    if value <= timedelta(0):
        raise ValueError(f"duration {text!r} must be longer than zero")
    return value


def _parse_cadence(value: Any) -> timedelta | None:
    if value is None or str(value).strip().lower() in (CONTINUOUS, "none"):
        return None
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(str(value))
    except ValueError:
        raise ValueError(
            f"cannot parse cadence {value!r} (expected a duration such as 1h or 30m, or 'continuous')"
        ) from None


Cadence = Annotated[timedelta | None, BeforeValidator(_parse_cadence)]

ROLE_IDS = ("seoc", "simoc", "cmoc")
RoleId = Literal["seoc", "simoc", "cmoc"]
_PARTY = re.compile(r"^(role|team):([a-z][a-z0-9_]*)$")
_LABEL_FORBIDDEN = re.compile(r"[,\n\r\x00]")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _label(value: Any) -> str:
    text = str(value).strip()
    if not text or len(text) > 255 or _LABEL_FORBIDDEN.search(text):
        raise ValueError(f"invalid label name {value!r} (1-255 characters, no commas or line breaks)")
    return text


Label = Annotated[str, BeforeValidator(_label)]


def _party(value: Any) -> str:
    text = str(value).strip()
    if not _PARTY.match(text):
        raise ValueError(f"invalid party {value!r} (expected 'role:<seoc|simoc|cmoc>' or 'team:<team id>')")
    return text


Party = Annotated[str, BeforeValidator(_party)]

# A GitLab group or project full path: segments of letters, digits, '_', '-', '.', not starting with '-'
# or '.', joined by '/' (GitLab's path rules, without its reserved names).
_GITLAB_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")


def gitlab_path(value: Any) -> str:
    """A group or project's full path as GitLab writes it, or ``ValueError`` saying what is expected."""
    text = str(value).strip().strip("/") if isinstance(value, str) else ""
    if not text or len(text) > 255 or not _GITLAB_PATH.match(text) or ".." in text:
        raise ValueError(
            f"invalid GitLab group or project path {value!r} (expected a full path such as 'acme/security')"
        )
    return text


GitLabPath = Annotated[str, BeforeValidator(gitlab_path)]


_ESCALATION = re.compile(r"^(?:(?:role|team):[a-z][a-z0-9_]*|@?[A-Za-z0-9_][A-Za-z0-9_.-]*)$")


def _escalation(value: Any) -> str:
    text = str(value).strip() if isinstance(value, str) else ""
    if not _ESCALATION.match(text) or len(text) > 255:
        raise ValueError(
            f"invalid escalation {value!r} (expected 'role:<seoc|simoc|cmoc>', 'team:<team id>' or a GitLab username)"
        )
    return text.lstrip("@")


Escalation = Annotated[str, BeforeValidator(_escalation)]
"""Who a status update overdue for a second window is escalated to: a role, a team or a GitLab username."""


# A GitLab description template's name: the file name in ``.gitlab/issue_templates`` without ``.md``. One path
# segment, no leading dot (GitLab lists only ``*.md`` files there).
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]*$")


def _gitlab_template(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if text.lower().endswith(".md"):
        raise ValueError(
            f"invalid issue template name {value!r} (name it without '.md', as GitLab lists it: {text[:-3]!r})"
        )
    if not text or len(text) > 200 or not _TEMPLATE_NAME.match(text) or text.endswith((".", " ")):
        raise ValueError(
            f"invalid issue template name {value!r} (expected the file name in .gitlab/issue_templates without '.md', "
            "such as 'Email-Request-mpm')"
        )
    return text


GitLabTemplate = Annotated[str, BeforeValidator(_gitlab_template)]


def _parse_every(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


Every = Annotated[timedelta, BeforeValidator(_parse_every)]


def _time_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r} (expected an IANA name such as Europe/Amsterdam)") from None
    return v


TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
"""An IANA time zone name (``Europe/Amsterdam``)."""
