"""The bot's own settings: its user, API budget, timeline, labels, severities, phases and templates."""

from __future__ import annotations

from pydantic import Field

from bot.config.fields import Label, Severity, SeverityName, _Model


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
