"""What GitLab's roles let the bot do, and what it tells people when its role is too low. Pure.

The rules are GitLab's own (gitlabhq ``app/policies/project_policy.rb``, ``issue_policy.rb``, ``note_policy.rb``,
``app/services/issue_links/create_service.rb``; the table in ``docs/webhook-setup.md``). ``check-config --live``
reads them to judge the bot user's access on each project; a reconcile that GitLab refused reads them to say, on
the incident, which role the bot needs for what it was refused and which it has (:func:`refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.text.escape import code_span, escape_inline

GUEST, REPORTER = 10, 20
LEVEL_NAMES = {
    0: "no access",
    5: "Minimal access",
    10: "Guest",
    15: "Planner",
    20: "Reporter",
    30: "Developer",
    40: "Maintainer",
    50: "Owner",
    60: "administrator",
}
ROLES = (GUEST, REPORTER, 30, 40, 50)
"""The roles a Maintainer can give, lowest first (Planner is left out: it is not above Guest in every right)."""
LINKS_BY_GUESTS = 17
"""The GitLab major version from which Guests in both projects may link issues (Reporter before): gitlabhq
doc/user/project/issues/related_issues.md, app/services/issue_links/create_service.rb."""


def level_name(level: int) -> str:
    return LEVEL_NAMES.get(level, f"access level {level}")


def link_level(major: int | None) -> int:
    """The role needed in both projects to link two issues, on GitLab ``major`` (unknown: the older rule)."""
    return GUEST if major is not None and major >= LINKS_BY_GUESTS else REPORTER


def permits(level: int, major: int | None) -> dict[str, bool]:
    """What GitLab lets a member with ``level`` do that the bot does, as GitLab's own rules say: a Guest
    member creates issues and comments, and sets labels, assignee and confidentiality on an issue it creates
    (``IssuePolicy``: ``set_issue_metadata`` for members on new issues); reading confidential issues and
    internal notes, and changing labels or assignees of existing issues, take Reporter; linking takes
    ``link_level`` in both projects."""
    return {
        "create issues": level >= GUEST,
        "comment": level >= GUEST,
        "link issues": level >= link_level(major),
        "read confidential issues and internal notes": level >= REPORTER,
        "label and assign existing issues": level >= REPORTER,
    }


def needed(right: str, major: int | None) -> int:
    """The lowest role that has ``right`` (a key of :func:`permits`)."""
    return next(level for level in ROLES if permits(level, major)[right])


# ---- a write GitLab refused ------------------------------------------------------------------------------

CANNOT_ACT = "cannot-act"
"""The prefix of the log key that records, on the incident, that the bot said it cannot work on it."""


@dataclass(frozen=True)
class Doing:
    """A kind of write the bot makes on an incident, the right it takes, and how people call it."""

    key: str  # the cause, in the log key: once per incident and cause
    right: str  # a key of ``permits``
    words: str  # "to assign and label the incident"


_DOINGS = (
    # ``update the incident``: the incident's assignee and labels (and a child's assignee on a hand-off).
    ("update the incident", Doing("assign-label", "label and assign existing issues", "to assign and label issues")),
    ("link #", Doing("link", "link issues", "to link its issues to the incident")),
)


def doing(step: str) -> Doing | None:
    """What the bot was doing in the GitLab call named ``step`` (``GitLabCallError.step``), when a role can
    explain GitLab refusing it; None for any other step (reads, comments, a child's own writes)."""
    return next((d for prefix, d in _DOINGS if step.startswith(prefix)), None)


@dataclass(frozen=True)
class Refusal:
    """GitLab refused a write, and the bot's role explains why: what it was doing, what it needs and has."""

    doing: Doing
    project: str  # the incident's project path
    needs: int
    has: int
    bot: str

    @property
    def key(self) -> str:
        return f"{CANNOT_ACT}:{self.doing.key}"

    @property
    def reason(self) -> str:
        """One line, for the log and the dead letter: the same words as the comment."""
        return (
            f"{self.bot} needs the {level_name(self.needs)} role (or higher) in {self.project} {self.doing.words}; "
            f"it has {level_name(self.has)}"
        )

    def body(self) -> str:
        """The comment on the incident (Markdown, values escaped); the caller appends its signed log marker."""
        project = escape_inline(self.project)
        bot = escape_inline(self.bot)
        return (
            f"**{bot} cannot work on this incident**: it needs the {level_name(self.needs)} role (or higher) in "
            f"{project} {self.doing.words}; it has {level_name(self.has)}.\n\n"
            f"Ask a Maintainer of {project} to change its role, then comment "
            f"{code_span('@' + self.bot + ' refresh')}. Until then it does nothing more here."
        )


def refusal(
    step: str, status: int | None, *, level: int, project: str, bot: str, major: int | None = None
) -> Refusal | None:
    """The refusal to tell people about, when GitLab answered ``status`` to the write ``step`` and the bot user
    has ``level`` in the incident's ``project``: only a 403 on a write a role governs, and only when ``level`` is
    below the role GitLab asks for it (else the role does not explain it, and nothing is said). A 404 is not
    explained by a role: the issue may be gone (GitLab also answers 404 for a link target the bot may not link;
    that job is retried, then dead, as before). An unknown ``major`` takes the older, stricter link rule: a
    Guest is refused a link with 403 only before GitLab 17, where Reporter is what it needs."""
    if status != 403:
        return None
    what = doing(step)
    if what is None:
        return None
    needs = needed(what.right, major)
    if level >= needs:
        return None
    return Refusal(what, project, needs, level, bot)
