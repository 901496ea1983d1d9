"""The plan's engagements and channels, their conditions, cadence and order rules."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from bot.config.fields import Cadence, Escalation, Every, GitLabPath, GitLabTemplate, Label, Party, SeverityName, _Model


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


class Engaged(_Model):
    party: Party
    note: str = ""


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
