"""The communications plan as configuration: schema, loading and validation.

The whole policy is data: labels, severities, roles, teams, engagements with their conditions, and
channels with their templates. Everything a user can get wrong here is reported as one line naming the
file, the key path and what was expected (``ConfigError.problems``), never as a traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot import clockcheck, paths


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


class BotSettings(_Model):
    username: str = Field("incident-bot", description="The bot user's GitLab username.")
    allow_commands_from: list[str] = Field(
        default_factory=list, description="Usernames allowed to command the bot even without the Developer role."
    )
    min_command_access_level: int = Field(30, description="GitLab access level needed to command the bot.")


class ApiSettings(_Model):
    """The bot's budget on GitLab's API (GitLab.com allows 2,000 authenticated requests a minute per user)."""

    rate_per_minute: float = Field(1800, gt=0)
    burst: float = Field(50, ge=1, description="Requests that may start at once within the per-minute rate.")
    timeout_s: float = Field(10, gt=0, description="Per-request timeout.")
    max_attempts: int = Field(4, ge=1)
    call_budget_s: float = Field(30, gt=0, description="The longest one call may take, retries included.")
    notes_per_minute: int = Field(
        60, ge=0, description="GitLab's limit on new comments per user (GitLab.com 60; self-managed 300; 0: none)."
    )
    issues_per_minute: int = Field(
        200, ge=0, description="GitLab's limit on new issues per project and user (GitLab.com 200; self-managed 300)."
    )
    limit_wait_s: float = Field(
        65, gt=0, description="The longest a call waits for those limits; a longer wait puts the job back until then."
    )


class TimelineSettings(_Model):
    """The incident's GitLab timeline (its GraphQL timeline events): the bot mirrors its facts there."""

    enabled: bool = Field(True, description="Write the bot's facts as timeline events of each incident.")


class LabelSettings(_Model):
    trigger: Label = "security-incident"
    child: Label = "incident-comms"


class SeveritySettings(_Model):
    labels: dict[Label, SeverityName]
    in_scope_at_least: SeverityName = Severity.HIGH


class Phase(_Model):
    label: Label
    name: str


class Override(_Model):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    user: str


class Rotation(_Model):
    """A weekly hand-over: roster[i] is on call during the i-th week after ``start``, wrapping round."""

    timezone: str
    weekday: str = "monday"
    at: time = time(9, 0)
    start: date

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (expected an IANA name such as Europe/Amsterdam)") from None
        return v

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, v: str) -> str:
        if v.lower() not in _WEEKDAYS:
            raise ValueError(f"unknown weekday {v!r} (expected one of: {', '.join(_WEEKDAYS)})")
        return v.lower()


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


class Role(_Model):
    name: str
    description: str = ""
    roster: list[str] = Field(default_factory=list)
    rotation: Rotation | None = None
    overrides: list[Override] = Field(default_factory=list)
    escalate_to: Escalation | None = Field(
        None, description="Mentioned when an update this role owes is overdue for a second window (e.g. its backup)."
    )


class Team(_Model):
    name: str
    handle: str | None = Field(None, description="GitLab username or group path mentioned for this team.")
    assignee: str | None = Field(None, description="Username assigned to child issues owned by this team.")
    escalate_to: Escalation | None = Field(
        None, description="Mentioned when an update this team owes is overdue for a second window (e.g. its manager)."
    )


class Condition(_Model):
    """When an engagement applies. All given keys must hold; ``any`` holds if one sub-condition does.

    An empty condition always holds (for an in-scope incident).
    """

    any_flags: list[Label] | None = None
    all_flags: list[Label] | None = None
    severity_at_least: SeverityName | None = None
    phase_at_least: Label | None = None
    any: list[Condition] | None = None


class FirstAction(_Model):
    id: str
    text: str
    dri: Party


class Engagement(_Model):
    id: str
    name: str
    when: Condition = Field(default_factory=Condition)
    dri: Party
    cadence: Cadence = None
    channel: str
    escalate_to: Escalation | None = Field(
        None,
        description="Mentioned when this engagement's update is overdue for a second window; default: the DRI's "
        "role's or team's escalate_to.",
    )


class ClockStage(_Model):
    """One deadline of a clock: a span counted from the clock's start, from an earlier stage (its filing if
    recorded, else its deadline), or from when a fix is available (``after: fix``, not counted by the bot)."""

    id: str
    name: str
    hours: int | None = Field(None, gt=0, description="Continuous hours, nights and weekends included.")
    business_days: int | None = Field(
        None, gt=0, description="Business days after the start's date in the clock's time zone, ending at midnight."
    )
    days: int | None = Field(None, gt=0, description="Calendar days (24 hours each).")
    months: int | None = Field(None, gt=0, description="Calendar months (the same day of the month, or its last).")
    after: str = "start"


class HolidayCalendar(_Model):
    """Holidays by year (``config/calendars/<name>.yaml``): business days are weekdays not listed here."""

    name: str = ""
    years: dict[int, list[date]]


class Clock(_Model):
    """A regulatory or contractual clock the owner may start on an incident. The bot never decides that it
    applies, nor when it started: ``when`` only says when the checklist offers it."""

    id: str
    name: str
    enabled: bool = True
    owner: Party = "team:legal"
    when: Condition = Field(default_factory=Condition)
    timezone: str = Field("UTC", description="The owner's time zone: shown next to UTC; business days count there.")
    calendar: str | None = Field(None, description="The holiday calendar business days skip (config/calendars).")
    applies_from: date | None = Field(None, description="The day the rule takes effect; no start before it.")
    stages: list[ClockStage]
    note: str = ""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (expected an IANA name such as Europe/Amsterdam)") from None
        return v


class Engaged(_Model):
    party: Party
    note: str = ""


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


class Channel(_Model):
    label: Label
    title: str
    template: str
    assignee: Party
    engaged: list[Engaged] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    project: GitLabPath | None = Field(
        None,
        description="Full path of the GitLab project where this channel's child is opened (default: the incident's).",
    )
    gitlab_template: GitLabTemplate | None = Field(
        None,
        description="An issue template of that project (.gitlab/issue_templates, without .md) the child starts with; "
        "`template` is then used only when the project or its template cannot be read.",
    )
    proposed_when: Condition | None = Field(
        None,
        description="When the plan implies this channel: the checklist proposes it (with the command that adds it) "
        "until a person adds its label; nothing is opened before.",
    )


def _parse_every(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


Every = Annotated[timedelta, BeforeValidator(_parse_every)]


class CadenceBounds(_Model):
    """How short and how long an interval the ``cadence`` command may set for one incident."""

    min: Every = timedelta(minutes=15)
    max: Every = timedelta(hours=4)


class CadenceRule(_Model):
    """A default interval by severity and phase; the first rule that holds wins over the engagement's own
    cadence (a ``cadence`` command on the incident wins over both). Engagements without a cadence
    (continuous) are never given one."""

    severity_at_least: SeverityName | None = None
    phase: Label | None = Field(None, description="Holds while this phase is the incident's phase.")
    engagements: list[str] | None = Field(None, description="Engagement ids; none: every engagement with a cadence.")
    every: Every


class OrderRule(_Model):
    """The plan's order of communications: ``channel``'s child is closed (its comms sent) before each of
    ``before``. Only channels selected on the incident count."""

    id: str
    plan: str = Field(description="The plan's words for the rule, quoted when it is broken.")
    channel: Label
    before: list[Label]


class Templates(_Model):
    checklist: str = "checklist.md.j2"
    status_update: str = "status-update.md.j2"
    reminder: str = "reminder.md.j2"
    all_clear: str = "all-clear.md.j2"
    closed_open_children: str = "closed-open-children.md.j2"
    out_of_scope: str = "out-of-scope.md.j2"
    log: str = "log.md.j2"
    reply: str = "reply.md.j2"
    # The plan's part of a child opened from a team's own GitLab template (a channel's ``gitlab_template``).
    child_plan: str = "child-plan.md.j2"
    review: str = "review.md.j2"


INCIDENT_CHANNEL = "incident-channel"
_SLACK_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9_-]{0,79}$")
_SLACK_ID = re.compile(r"^[CGDUW][A-Z0-9]{6,}$")
_EMAIL = re.compile(r"^email:[^@\s]+@[^@\s]+\.[^@\s]+$")
_CHANNEL_GLOB = re.compile(r"#[a-z0-9*][a-z0-9_*-]{0,79}")
DEFAULT_INCIDENT_CHANNELS = "#inc-*"


def _glob(pattern: str) -> re.Pattern[str]:
    """A channel-name glob (``*``: one or more letters, digits, ``-``, ``_``) as a regular expression."""
    return re.compile("[a-z0-9_-]+".join(re.escape(part) for part in pattern.split("*")))


_TARGET_FORMS = "'#channel-name', a Slack id (C…, U…), 'email:someone@example.com' or 'incident-channel'"


def _chat_target(value: Any) -> str:
    """A Slack target as configured; a near miss names what was probably meant."""
    text = value.strip() if isinstance(value, str) else ""
    if text == INCIDENT_CHANNEL or _SLACK_CHANNEL.match(text) or _SLACK_ID.match(text) or _EMAIL.match(text):
        return text
    guess = ""
    if text.replace("_", "-").replace(" ", "-").lower() in (INCIDENT_CHANNEL, "incidentchannel"):
        guess = INCIDENT_CHANNEL
    elif "@" in text and not text.startswith("email:"):
        guess = "email:" + text.lstrip("@")
    elif text and _SLACK_CHANNEL.match("#" + text.lstrip("#").lower()):
        guess = "#" + text.lstrip("#").lower()
    hint = f"did you mean {guess!r}? " if guess and guess != text else ""
    raise ValueError(f"invalid Slack target {value!r} ({hint}expected {_TARGET_FORMS})")


ChatTarget = Annotated[str, BeforeValidator(_chat_target)]


class ChatRoute(_Model):
    """Where one engagement, team or role is reached in Slack."""

    to: ChatTarget
    forward_updates: bool = Field(
        False, description="Post the text of each status update here; otherwise only a link to it."
    )


def _route(value: Any) -> Any:
    return {"to": value} if isinstance(value, str) else value


Route = Annotated[ChatRoute, BeforeValidator(_route)]


class ChatSettings(_Model):
    """The Slack side: who is told what where. Used only when ``SLACK_BOT_TOKEN`` is set."""

    engagements: dict[str, Route] = Field(default_factory=dict, description="Engagement id -> target.")
    teams: dict[str, Route] = Field(default_factory=dict, description="Team id -> target (its children's pings).")
    roles: dict[RoleId, Route] = Field(default_factory=dict, description="Role id -> target (its children's pings).")
    people: dict[str, ChatTarget] = Field(
        default_factory=dict, description="GitLab username -> Slack target for reminder direct messages."
    )
    summary: list[ChatTarget] = Field(
        default_factory=list, description="Targets holding one summary message per incident, edited in place."
    )
    incident_channel: str | None = Field(
        None, description="The incident response channel by pattern, e.g. '#inc-{iid}' (the channel command wins)."
    )
    incident_channels: str | None = Field(
        None,
        description="The names the channel command accepts, '*' for any run of letters, digits, - and _ (e.g. "
        "'#inc-*'); without it, the incident_channel pattern with '*' for '{iid}', else '#inc-*'. A target the "
        "chat section names for anything else (an engagement, a team, a role, a person, a summary) never is one.",
    )
    create_incident_channel: bool = Field(
        False,
        description="Create the incident response channel in Slack (private, named by incident_channel) when an "
        "incident is engaged and no channel was named with the channel command; invite the role holders and the "
        "engaged teams' people (by chat.people) and share its link in the summary targets. Needs the Slack app's "
        "groups:write scope (channels:manage with private_incident_channel: false).",
    )
    private_incident_channel: bool = Field(True, description="A created incident channel is private.")
    update_every: Every = Field(
        timedelta(minutes=5),
        description="Forwarded status updates are coalesced: at most one message per target this often, "
        "edited to the latest update until the next one may go.",
    )
    updates_per_person: int = Field(
        4, ge=1, description="Status updates one person may have forwarded per hour; later ones only in GitLab."
    )

    @model_validator(mode="after")
    def _creatable(self) -> ChatSettings:
        if self.create_incident_channel and not self.incident_channel:
            raise ValueError("create_incident_channel needs incident_channel, the pattern its name is made from "
                             "(e.g. '#inc-{iid}')")
        return self

    def targets(self) -> list[str]:
        """Every fixed target, in the order configured (``incident-channel`` is per incident: not listed)."""
        routes = [*self.engagements.values(), *self.teams.values(), *self.roles.values()]
        named = [r.to for r in routes] + list(self.people.values()) + list(self.summary)
        return [t for t in dict.fromkeys(named) if t != INCIDENT_CHANNEL]

    def incident_channel_glob(self) -> str:
        """The names the channel command accepts, as a glob with ``*`` (see ``incident_channels``)."""
        if self.incident_channels:
            return self.incident_channels
        if self.incident_channel:
            return self.incident_channel.replace("{iid}", "*")
        return DEFAULT_INCIDENT_CHANNELS

    def may_be_incident_channel(self, name: str) -> bool:
        """Whether ``name`` (``#channel``) may be an incident's response channel: it matches the accepted
        names and is no target the chat section names for anything else (summary, team, executive...)."""
        if not _SLACK_CHANNEL.match(name) or name in self.targets():
            return False
        return _glob(self.incident_channel_glob()).fullmatch(name) is not None

    @field_validator("incident_channels")
    @classmethod
    def _names(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if not _CHANNEL_GLOB.fullmatch(v):
            raise ValueError(f"invalid incident_channels {v!r} (expected a channel name with '*', e.g. '#inc-*')")
        if v.startswith("#*"):
            raise ValueError(f"incident_channels {v!r} would accept any channel: start it with a prefix, e.g. '#inc-*'")
        pattern = info.data.get("incident_channel")
        if isinstance(pattern, str) and not _glob(v).fullmatch(pattern.format(iid=1)):
            raise ValueError(f"incident_channels {v!r} does not accept the names incident_channel {pattern!r} makes: "
                             f"make them agree, e.g. {pattern.replace('{iid}', '*')!r}")
        return v

    @field_validator("incident_channel")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            sample = v.format(iid=1)
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"invalid incident channel pattern {v!r} (expected e.g. '#inc-{{iid}}')") from None
        _chat_target(sample)
        if sample == INCIDENT_CHANNEL:
            raise ValueError("incident_channel must name a channel, e.g. '#inc-{iid}'")
        return v


class Config(_Model):
    bot: BotSettings = Field(default_factory=BotSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    labels: LabelSettings = Field(default_factory=LabelSettings)
    severity: SeveritySettings
    impact_flags: dict[Label, str]
    phases: list[Phase]
    roles: dict[RoleId, Role]
    teams: dict[str, Team]
    first_actions: list[FirstAction] = Field(default_factory=list)
    engagements: list[Engagement]
    channels: list[Channel]
    status_update_points: list[str]
    cadence_bounds: CadenceBounds = Field(default_factory=CadenceBounds)
    cadence_defaults: list[CadenceRule] = Field(default_factory=list)
    comms_order: list[OrderRule] = Field(default_factory=list)
    scope: list[GitLabPath] = Field(
        default_factory=list,
        description="The incident scope: groups or projects (full paths) where incidents live. Only there is a "
        "labelled issue an incident; the bot user must also be a member. INCIDENT_BOT_SCOPE overrides it. Empty: "
        "the services refuse to start.",
    )
    # None: the bundled templates, so a policy file copied anywhere works. A path: the policy's own
    # templates, relative to the policy file; it must then hold every template the policy names.
    templates_dir: str | None = None
    templates: Templates = Field(default_factory=Templates)
    chat: ChatSettings | None = Field(None, description="Slack targets; without it (or a token) nothing goes to Slack.")
    clocks: list[Clock] = Field(default_factory=list)
    # Filled by parse_config from config/calendars: the holiday calendars the clocks name.
    calendars: dict[str, HolidayCalendar] = Field(default_factory=dict, exclude=True)
    timeline: TimelineSettings = Field(default_factory=TimelineSettings)

    # Filled by load_config: where the file and its templates are.
    source: str = Field("<memory>", exclude=True)
    base_dir: str = Field(".", exclude=True)

    @property
    def template_dir(self) -> Path:
        if self.templates_dir is None:
            return paths.bundled_templates_dir().resolve()
        return (Path(self.base_dir) / self.templates_dir).resolve()

    def phase_index(self, label: str) -> int:
        return [p.label for p in self.phases].index(label)

    def engagement(self, engagement_id: str) -> Engagement | None:
        return next((e for e in self.engagements if e.id == engagement_id), None)

    def clock(self, clock_id: str) -> Clock | None:
        return next((c for c in self.clocks if c.id == clock_id), None)

    def channel(self, label: str) -> Channel | None:
        return next((c for c in self.channels if c.label == label), None)

    def all_template_names(self) -> list[str]:
        names = [n for k, n in self.templates.model_dump().items() if k != "child_plan"]
        # The plan's part of a child from a team's template is needed only when a channel names one, so a
        # policy with its own templates_dir from before gitlab_template keeps working.
        if any(c.gitlab_template for c in self.channels):
            names.append(self.templates.child_plan)
        names += [c.template for c in self.channels]
        return names


@dataclass(frozen=True)
class Problem:
    source: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# The key that names an entry of each top-level list: problems say ``engagements[e-group].dri``, which a
# person finds in the file, rather than ``engagements[3].dri``.
_ENTRY_KEYS = {
    "engagements": "id",
    "first_actions": "id",
    "channels": "label",
    "phases": "label",
    "comms_order": "id",
    "clocks": "id",
}


def _entry(section: str, index: int, data: Any) -> str:
    """``section[name]`` when the entry at ``index`` has a usable name, else ``section[index]``."""
    key = _ENTRY_KEYS.get(section)
    items = data.get(section) if isinstance(data, dict) else None
    if key and isinstance(items, list) and 0 <= index < len(items) and isinstance(items[index], dict):
        name = items[index].get(key)
        same = [i for i in items if isinstance(i, dict) and i.get(key) == name]
        if isinstance(name, str) and name and len(same) == 1 and not any(c in name for c in "[]"):
            return f"{section}[{name}]"
    return f"{section}[{index}]"


def _loc(loc: Iterable[Any], data: Any = None) -> str:
    out = ""
    for n, part in enumerate(loc):
        if isinstance(part, int):
            out = _entry(out, part, data) if n == 1 else out + f"[{part}]"
        elif part in ("function-before[_label(), str]",):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f"did you mean {close[0]!r}? " if close else ""


def _known_keys() -> list[str]:
    models = (
        Config,
        BotSettings,
        LabelSettings,
        SeveritySettings,
        Phase,
        Override,
        Rotation,
        Role,
        Team,
        Condition,
        FirstAction,
        Engagement,
        Engaged,
        Channel,
        CadenceBounds,
        CadenceRule,
        OrderRule,
        Templates,
        ChatSettings,
        ChatRoute,
        Clock,
        ClockStage,
        HolidayCalendar,
    )
    return sorted({(f.alias or name) for m in models for name, f in m.model_fields.items()})


def _pydantic_problems(source: str, err: ValidationError, data: Any = None) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
        path = _loc(loc, data)
        if path.startswith("chat.") and path.endswith(".to") and isinstance(e.get("input"), str):
            path = path[: -len(".to")]  # a route written as a plain target
        kind = e["type"]
        if kind == "extra_forbidden":
            parent, _, key = path.rpartition(".")
            close = difflib.get_close_matches(str(key), _known_keys(), n=1)
            msg = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            path = parent
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "value_error":
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
        elif kind == "literal_error":
            msg = f"unknown key (expected one of: {e.get('ctx', {}).get('expected', '')})"
            parent, _, key = path.rpartition(".")
            msg = f"unknown role {key!r} ({_did_you_mean(key, ROLE_IDS)}expected one of: {', '.join(ROLE_IDS)})"
            path = parent
        else:
            msg = f"{e['msg'].lower()} (got {e.get('input')!r})"
        problems.append(Problem(source, path, msg))
    return problems


def scope_conflicts(scope: Iterable[str], cfg: Config) -> list[tuple[str, str]]:
    """Channels whose team project is also named as a project of the incident scope: (where, why) each.
    A team project never holds incidents, so naming it in both is a contradiction."""
    named = {s.lower() for s in scope}
    return [
        (
            f"channels[{ch.label}].project",
            f"project {ch.project!r} is also named in the incident scope: a team project never holds incidents; "
            "remove it from the scope, or point the channel at another project",
        )
        for ch in cfg.channels
        if ch.project and ch.project.lower() in named
    ]


def _scope_key(label: str) -> str | None:
    """GitLab's scope key: everything before the last ``::`` (nested scopes are greedy)."""
    return label.rsplit("::", 1)[0] if "::" in label else None


def semantic_problems(cfg: Config) -> list[Problem]:
    """Cross-references the schema cannot express: unknown roles, teams, labels; scoped-label clashes."""
    src = cfg.source
    out: list[Problem] = []
    teams = set(cfg.teams)
    phase_labels = [p.label for p in cfg.phases]
    flags = set(cfg.impact_flags)

    def check_party(path: str, party: str) -> None:
        kind, _, name = party.partition(":")
        if kind == "role" and name not in ROLE_IDS:
            hint = _did_you_mean(name, ROLE_IDS)
            out.append(Problem(src, path, f"unknown role {name!r} ({hint}expected one of: {', '.join(ROLE_IDS)})"))
        if kind == "team" and name not in teams:
            hint = _did_you_mean(name, teams)
            out.append(
                Problem(src, path, f"unknown team {name!r} ({hint}expected one of: {', '.join(sorted(teams))})")
            )

    def check_condition(path: str, cond: Condition) -> None:
        for key in ("any_flags", "all_flags"):
            for i, flag in enumerate(getattr(cond, key) or []):
                if flag not in flags:
                    hint = _did_you_mean(flag, flags)
                    out.append(
                        Problem(
                            src,
                            f"{path}.{key}[{i}]",
                            f"unknown impact flag {flag!r} ({hint}or declare it in impact_flags)"
                            if hint
                            else f"unknown impact flag {flag!r} (declare it in impact_flags)",
                        )
                    )
        if cond.phase_at_least is not None and cond.phase_at_least not in phase_labels:
            hint = _did_you_mean(cond.phase_at_least, phase_labels)
            out.append(
                Problem(
                    src,
                    f"{path}.phase_at_least",
                    f"unknown phase {cond.phase_at_least!r} ({hint}expected one of: {', '.join(phase_labels)})",
                )
            )
        for i, sub in enumerate(cond.any or []):
            check_condition(f"{path}.any[{i}]", sub)

    for role_id in ROLE_IDS:
        if role_id not in cfg.roles:
            out.append(Problem(src, "roles", f"role {role_id!r} is missing"))
    for role_id, role in cfg.roles.items():
        if role.rotation and not role.roster:
            out.append(Problem(src, f"roles.{role_id}.rotation", "a rotation needs a non-empty roster"))
    raw = {
        "first_actions": [a.model_dump() for a in cfg.first_actions],
        "engagements": [e.model_dump() for e in cfg.engagements],
        "channels": [c.model_dump() for c in cfg.channels],
    }

    def entry(section: str, i: int) -> str:
        return _entry(section, i, raw)

    for i, fa in enumerate(cfg.first_actions):
        check_party(f"{entry('first_actions', i)}.dri", fa.dri)

    def check_unique(section: str, key: str, values: list[str], what: str) -> None:
        seen: set[str] = set()
        for i, value in enumerate(values):
            if value in seen:
                out.append(Problem(src, f"{section}[{i}].{key}", f"duplicate {what} {value!r}"))
            seen.add(value)

    check_unique("engagements", "id", [e.id for e in cfg.engagements], "engagement id")
    check_unique("channels", "label", [c.label for c in cfg.channels], "channel label")
    for i, eng in enumerate(cfg.engagements):
        check_party(f"{entry('engagements', i)}.dri", eng.dri)
        check_condition(f"{entry('engagements', i)}.when", eng.when)
    for i, eng in enumerate(cfg.engagements):
        if eng.escalate_to and ":" in eng.escalate_to:
            check_party(f"{entry('engagements', i)}.escalate_to", eng.escalate_to)
    for role_id, role in cfg.roles.items():
        if role.escalate_to and ":" in role.escalate_to:
            check_party(f"roles.{role_id}.escalate_to", role.escalate_to)
    for team_id, team in cfg.teams.items():
        if team.escalate_to and ":" in team.escalate_to:
            check_party(f"teams.{team_id}.escalate_to", team.escalate_to)
    for i, ch in enumerate(cfg.channels):
        check_party(f"{entry('channels', i)}.assignee", ch.assignee)
        if ch.proposed_when is not None:
            check_condition(f"{entry('channels', i)}.proposed_when", ch.proposed_when)
        for j, engaged in enumerate(ch.engaged):
            check_party(f"{entry('channels', i)}.engaged[{j}].party", engaged.party)
    out.extend(Problem(src, where, why) for where, why in scope_conflicts(cfg.scope, cfg))
    if not cfg.phases:
        out.append(Problem(src, "phases", "at least one phase is needed"))
    out.extend(_cadence_problems(cfg))
    out.extend(_order_problems(cfg))
    out.extend(_chat_problems(cfg))
    for i, clk in enumerate(cfg.clocks):
        check_party(f"{_entry('clocks', i, {'clocks': [c.model_dump() for c in cfg.clocks]})}.owner", clk.owner)
        check_condition(f"{_entry('clocks', i, {'clocks': [c.model_dump() for c in cfg.clocks]})}.when", clk.when)

    # Labels that must sit on one issue together may not share a scope key: GitLab Premium keeps only
    # one label per scope, so adding the second silently removes the first.
    coexist = [("labels.trigger", cfg.labels.trigger), ("labels.child", cfg.labels.child)]
    coexist += [(f"impact_flags.{f}", f) for f in cfg.impact_flags]
    coexist += [(f"{entry('channels', i)}.label", c.label) for i, c in enumerate(cfg.channels)]
    exclusive = {
        _scope_key(label): kind
        for kind, labels in (("the severity labels", list(cfg.severity.labels)), ("the phase labels", phase_labels))
        for label in labels
        if _scope_key(label)
    }
    scopes: dict[str, str] = {}
    for path, label in coexist:
        key = _scope_key(label)
        if key is None:
            continue
        other = f"{scopes[key]!r}" if key in scopes else exclusive.get(key)
        if other:
            out.append(
                Problem(
                    src,
                    path,
                    f"scoped label {label!r} shares the scope '{key}::' with {other}; GitLab Premium keeps one label "
                    "per scope, so use an unscoped label (no '::') here",
                )
            )
        scopes.setdefault(key, label)
    return out


def _cadence_problems(cfg: Config) -> list[Problem]:
    src, out = cfg.source, []
    bounds = cfg.cadence_bounds
    if bounds.min > bounds.max:
        out.append(Problem(src, "cadence_bounds", "min is longer than max"))
    ids = [e.id for e in cfg.engagements]
    phase_labels = [p.label for p in cfg.phases]
    for i, rule in enumerate(cfg.cadence_defaults):
        path = f"cadence_defaults[{i}]"
        if rule.phase is not None and rule.phase not in phase_labels:
            hint = _did_you_mean(rule.phase, phase_labels)
            out.append(
                Problem(src, f"{path}.phase", f"unknown phase {rule.phase!r} ({hint}expected one of: "
                        f"{', '.join(phase_labels)})")
            )
        for j, eid in enumerate(rule.engagements or []):
            if eid not in ids:
                hint = _did_you_mean(eid, ids)
                out.append(
                    Problem(src, f"{path}.engagements[{j}]", f"unknown engagement {eid!r} ({hint}expected one "
                            f"of: {', '.join(ids)})")
                )
    return out


def _order_problems(cfg: Config) -> list[Problem]:
    src, out = cfg.source, []
    labels = [c.label for c in cfg.channels]
    seen: set[str] = set()
    raw = {"comms_order": [r.model_dump() for r in cfg.comms_order]}
    for i, rule in enumerate(cfg.comms_order):
        path = _entry("comms_order", i, raw)
        if rule.id in seen:
            out.append(Problem(src, f"comms_order[{i}].id", f"duplicate rule id {rule.id!r}"))
        seen.add(rule.id)
        if not rule.before:
            out.append(Problem(src, f"{path}.before", "name at least one channel that comes later"))
        for where, label in [("channel", rule.channel), *((f"before[{j}]", b) for j, b in enumerate(rule.before))]:
            if label not in labels:
                hint = _did_you_mean(label, labels)
                out.append(
                    Problem(src, f"{path}.{where}", f"unknown channel {label!r} ({hint}expected one of: "
                            f"{', '.join(labels)})")
                )
        if rule.channel in rule.before:
            out.append(Problem(src, f"{path}.before", f"{rule.channel!r} cannot come before itself"))
    return out


def _chat_problems(cfg: Config) -> list[Problem]:
    """Chat routes that name no engagement or team of this policy."""
    if cfg.chat is None:
        return []
    src, out = cfg.source, []
    for section, known in (("engagements", [e.id for e in cfg.engagements]), ("teams", list(cfg.teams))):
        for name in getattr(cfg.chat, section):
            if name not in known:
                hint = _did_you_mean(name, known)
                out.append(Problem(src, f"chat.{section}.{name}", f"unknown {section[:-1]} {name!r} ({hint}expected "
                                   f"one of: {', '.join(known)})"))
    return out


def _clock_calendars(cfg: Config, base_dir: Path) -> tuple[dict[str, HolidayCalendar], list[Problem]]:
    """The holiday calendars the clocks name, and every problem of the ``clocks`` section."""
    raw = {"clocks": [c.model_dump() for c in cfg.clocks]}
    out = [Problem(cfg.source, where, what) for where, what in clockcheck.clock_problems(
        cfg.clocks, lambda i: _entry("clocks", i, raw))]
    calendars: dict[str, HolidayCalendar] = {}
    for i, clock in enumerate(cfg.clocks):
        if clock.calendar is None or clock.calendar in calendars:
            continue
        where = f"{_entry('clocks', i, raw)}.calendar"
        data, file, why = clockcheck.read_calendar(clock.calendar, base_dir)
        if why:
            out.append(Problem(cfg.source, where, why))
            continue
        try:
            calendars[clock.calendar] = HolidayCalendar.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            out.append(Problem(cfg.source, where, f"holiday calendar {file}: {loc}: {first['msg'].lower()}"))
    return calendars, out


def parse_config(data: Any, *, source: str = "<memory>", base_dir: str | Path = ".") -> Config:
    """Validate a config mapping; raise ``ConfigError`` with every problem found."""
    if not isinstance(data, dict):
        raise ConfigError([Problem(source, "", "expected a mapping at the top level")])
    try:
        cfg = Config.model_validate({**data, "source": source, "base_dir": str(base_dir)})
    except ValidationError as err:
        raise ConfigError(_pydantic_problems(source, err, data)) from None
    calendars, problems = _clock_calendars(cfg, Path(base_dir))
    problems = semantic_problems(cfg) + problems
    if problems:
        raise ConfigError(problems)
    return cfg.model_copy(update={"calendars": calendars}) if calendars else cfg


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a YAML config file (default: ``config/bot.yaml`` or the bundled policy)."""
    file = Path(path) if path else paths.default_config_path()
    source = str(path) if path else str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(source, "", "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(source, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([Problem(source, where, f"invalid YAML: {what}")]) from None
    return parse_config(data, source=source, base_dir=file.parent)
