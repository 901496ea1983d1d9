"""The Slack settings: targets, routes and the incident channel."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from bot.config.fields import Every, RoleId, _Model

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
