"""Commands in comments (``@incident-bot handoff simoc @dana``), parsed and judged without I/O.

A command is handled once, ever: the bot's signed state records the highest command note id it has
handled (``BotState.handled``), and a command at or below it is never handled again, even if its reply
was deleted. The reply also carries the log key ``cmd:<note id>``. Effects on the bot's state (role
holders, snooze, requested cadences, the mark) are folded into ``BotState`` in note order and written to the checklist's
marker before the reply is posted, so a crash in between leaves the command applied without a reply,
never applied twice.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.config import ROLE_IDS, Config, parse_duration
from bot.core.model import BotState, CadenceRequest, Note
from bot.text.escape import is_valid_username

COMMANDS = ("help", "status", "handoff", "snooze", "cadence", "channel", "refresh")
CHAT_CHANNEL = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}")
"""A Slack channel name as the ``channel`` command takes it (Slack's own rules: lowercase, digits, ``-``, ``_``)."""
MAX_SNOOZE = timedelta(days=7)


@dataclass(frozen=True)
class Command:
    """A comment addressed to the bot that it has not answered yet."""

    note: Note
    name: str
    args: tuple[str, ...]
    # Filled by the GitLab adapter: may the author command the bot? does the named user exist?
    allowed: bool = False
    target_exists: bool | None = None

    @property
    def key(self) -> str:
        return f"cmd:{self.note.id}"


@dataclass(frozen=True)
class Echo:
    """Text somebody wrote, repeated in a reply. Rendered as a code span: it can form no link, mention or
    GitLab reference (``#12``, ``[vulnerability:7]``, an issue URL), so it posts no "mentioned in" note."""

    text: str


class Reply(str):
    """A reply's text made of the bot's own words and ``Echo`` parts; as a ``str``, echoes are quoted."""

    parts: tuple[str | Echo, ...]

    def __new__(cls, *parts: str | Echo) -> Reply:
        obj = super().__new__(cls, "".join(p if isinstance(p, str) else repr(p.text) for p in parts))
        obj.parts = parts
        return obj


@dataclass(frozen=True)
class Verdict:
    """What a command does: a reply (always), and perhaps a hand-off or a snooze."""

    command: Command
    ok: bool
    reply: str
    handoff: tuple[str, str] | None = None  # (role id, username)
    snooze_until: datetime | None = None
    cadence: tuple[str, CadenceRequest] | None = None  # (engagement id, what was requested)
    chat_channel: str | None = None  # the incident response channel in Slack


# Markdown's line endings (not every Unicode break ``str.splitlines`` knows) and its blank lines.
_MD_LINES = re.compile(r"\r\n|\r|\n")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
# A GFM table's delimiter row (``---|---``, ``:--``, ``|---|``): the line above it is the table's header row, not
# a paragraph. Matched loosely (any such line refuses), which only ever refuses more than GitLab would.
_TABLE_DELIMITER = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")


def _indent(line: str) -> int:
    """Columns of leading spaces and tabs (tab stops of 4), as CommonMark counts them."""
    cols = 0
    for ch in line:
        if ch == " ":
            cols += 1
        elif ch == "\t":
            cols += 4 - cols % 4
        else:
            break
    return cols


def addresses(line: str, bot: str) -> re.Match[str] | None:
    """``@bot`` at the start of ``line`` as GitLab reads a mention of the bot, with the rest of the line.

    ``User.reference_pattern`` (app/models/user.rb) is ``@`` followed by ``Gitlab::PathRegex``'s
    ``FULL_NAMESPACE_FORMAT_REGEX`` (lib/gitlab/path_regex.rb): ASCII letters, digits, ``_``, ``-`` and
    ``.`` only, the longest such run being the name, which GitLab then looks up case-insensitively. So
    ``@Incident-Bot`` is the bot, but ``@ıncident-bot`` (dotless i) or ``@İncident-bot`` mention nobody, and
    ``@incident-bot2``/``@incident-bot.x`` someone else: ``re.ASCII`` keeps Python's case folding from
    matching ``ı``/``İ``/``K`` (Kelvin) with ASCII letters.
    """
    return re.match(rf"@{re.escape(bot)}(?![A-Za-z0-9_-]|\.+[A-Za-z0-9_-])[ \t]*(.*)$", line, re.IGNORECASE | re.ASCII)


def parse(note: Note, bot: str) -> Command | None:
    """The command in a note's first non-blank line, if that line starts a plain paragraph addressing the bot.

    Like GitLab's own quick actions (``QuickActionPipeline`` reads only top-level paragraphs), a command
    that is shown as code or quoted is not a command: an indented line (4 columns or a tab) is a code
    block, a fence, ``>`` or ``>>>`` quote, list item, table row or HTML line does not start with the
    handle, a line underlined with ``===``/``---`` is a heading, and a line followed by a table's delimiter
    row (``---|---``) is a table's header row.
    """
    lines = _MD_LINES.split(note.body)
    for index, line in enumerate(lines):
        if not line.strip(" \t"):
            continue
        if _indent(line) >= 4:
            return None
        m = addresses(line.lstrip(" \t"), bot)
        if not m:
            return None
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if _SETEXT_UNDERLINE.match(following) or _TABLE_DELIMITER.match(following):
            return None
        words = m.group(1).split()
        name = words[0].lower() if words else "help"
        return Command(note=note, name=name, args=tuple(words[1:]))
    return None


def judge(cmd: Command, cfg: Config) -> Verdict:
    """Decide a command's effect and reply text (plain text; the renderer escapes it)."""
    if not cmd.allowed:
        return Verdict(
            cmd,
            False,
            "refused: only project members with at least the Developer role, or people on the bot's "
            "allow-list, may command it",
        )
    name, args = cmd.name, cmd.args
    if name not in COMMANDS:
        return Verdict(cmd, False, Reply("unknown command ", Echo(name), f"; the commands are: {', '.join(COMMANDS)}"))
    if name == "help":
        return Verdict(cmd, True, "help")
    if name == "status":
        return Verdict(cmd, True, "status")
    if name == "refresh":
        return Verdict(cmd, True, "looked at the incident again; the checklist and the child issues are up to date")
    if name == "snooze":
        if len(args) != 1:
            return Verdict(cmd, False, "usage: snooze <duration>, e.g. snooze 2h")
        try:
            length = parse_duration(args[0])
        except (ValueError, OverflowError):
            return Verdict(
                cmd, False, Reply("cannot parse duration ", Echo(args[0]), " (expected e.g. 30m, 1h, 1h30m, 2d)")
            )
        if length > MAX_SNOOZE:
            return Verdict(cmd, False, f"snooze at most {MAX_SNOOZE.days} days")
        since = cmd.note.created_at
        if since is None:
            return Verdict(cmd, False, "cannot tell when the command was written")
        until = since + length
        return Verdict(cmd, True, f"reminders paused until {until:%Y-%m-%d %H:%M} UTC", snooze_until=until)
    if name == "cadence":
        return _cadence(cmd, cfg)
    if name == "channel":
        return _channel(cmd)
    # handoff
    if len(args) != 2 or args[0].lower() not in ROLE_IDS or not args[1].startswith("@"):
        return Verdict(cmd, False, f"usage: handoff {'|'.join(ROLE_IDS)} @user")
    role, user = args[0].lower(), args[1][1:]
    if not is_valid_username(user):
        return Verdict(cmd, False, Reply(Echo(args[1]), " is not a GitLab username"))
    if cmd.target_exists is False:
        return Verdict(cmd, False, Reply("there is no GitLab user ", Echo(user)))
    reply = Reply(f"{role.upper()} handed over to ", Echo(user), " by ", Echo(cmd.note.author))
    return Verdict(cmd, True, reply, handoff=(role, user))


def _duration_text(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = (f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else "")
    return " ".join(p for p in parts if p)


def _cadence(cmd: Command, cfg: Config) -> Verdict:
    """``cadence ENGAGEMENT DURATION|default``: one engagement's update interval for this incident."""
    ids = [e.id for e in cfg.engagements]
    usage = f"usage: cadence ENGAGEMENT DURATION|default, e.g. cadence {ids[0] if ids else 'e-group'} 30m"
    if len(cmd.args) != 2:
        return Verdict(cmd, False, f"{usage}; engagements: {', '.join(ids)}")
    wanted, value = cmd.args[0].lower(), cmd.args[1]
    engagement = cfg.engagement(wanted)
    if engagement is None:
        close = difflib.get_close_matches(wanted, ids, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        return Verdict(
            cmd, False, Reply("unknown engagement ", Echo(cmd.args[0]), f" ({hint}engagements: {', '.join(ids)})")
        )
    if engagement.cadence is None:
        return Verdict(
            cmd,
            False,
            f"{engagement.id} is engaged continuously ({engagement.channel}); it has no update interval to change",
        )
    since = cmd.note.created_at
    if since is None:
        return Verdict(cmd, False, "cannot tell when the command was written")
    if value.lower() == "default":
        request = CadenceRequest(None, cmd.note.author, since)
        reply = Reply(f"{engagement.name}: back to the plan's cadence, requested by ", Echo(cmd.note.author))
        return Verdict(cmd, True, reply, cadence=(engagement.id, request))
    try:
        every = parse_duration(value)
    except (ValueError, OverflowError):
        return Verdict(
            cmd,
            False,
            Reply("cannot parse duration ", Echo(value), " (expected e.g. 30m, 1h, 1h30m, or default)"),
        )
    low, high = cfg.cadence_bounds.min, cfg.cadence_bounds.max
    if not low <= every <= high:
        return Verdict(
            cmd,
            False,
            f"a cadence must be between {_duration_text(low)} and {_duration_text(high)} "
            f"(asked: {_duration_text(every)})",
        )
    request = CadenceRequest(every, cmd.note.author, since)
    reply = Reply(
        f"{engagement.name}: status updates every {_duration_text(every)}, requested by ",
        Echo(cmd.note.author),
        "; the next one is due that long after this comment or the last update, whichever is later",
    )
    return Verdict(cmd, True, reply, cadence=(engagement.id, request))


def _channel(cmd: Command) -> Verdict:
    """``channel #inc-123``: the incident response channel in Slack, where its engagements are posted."""
    if len(cmd.args) != 1 or not CHAT_CHANNEL.fullmatch(cmd.args[0]):
        shown = (Echo(" ".join(cmd.args)), " is not") if cmd.args else ("none given",)
        return Verdict(
            cmd, False, Reply("usage: channel #channel-name, e.g. channel #inc-123 (", *shown,
                              " a Slack channel name: lowercase letters, digits, - and _)")
        )
    name = cmd.args[0]
    return Verdict(cmd, True, Reply("incident response channel set to ", Echo(name), " by ", Echo(cmd.note.author)),
                   chat_channel=name)


def apply(state: BotState, verdicts: list[Verdict]) -> BotState:
    """The bot's state after the accepted commands, in the order they were written."""
    roles = dict(state.roles)
    snoozed = state.snoozed_until
    cadences = dict(state.cadences)
    chat_channel = state.chat_channel
    handled = max([state.handled, *(v.command.note.id for v in verdicts)])
    for v in sorted(verdicts, key=lambda v: v.command.note.id):
        if v.handoff:
            roles[v.handoff[0]] = v.handoff[1]
        if v.snooze_until:
            snoozed = v.snooze_until
        if v.cadence:
            cadences[v.cadence[0]] = v.cadence[1]
        if v.chat_channel:
            chat_channel = v.chat_channel
    return replace(
        state, roles=roles, snoozed_until=snoozed, cadences=cadences, handled=handled, chat_channel=chat_channel
    )
