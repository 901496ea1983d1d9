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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.config import ROLE_IDS, ChatSettings, Config, parse_duration
from bot.core.approvalrecords import ApprovalRecord
from bot.core.model import BotState, CadenceRequest, ClockRecord, Note, Tick
from bot.core.outbound import CommandSpec, Context, Said, Slot
from bot.text.durations import duration
from bot.text.escape import is_valid_username

COMMANDS = (
    "help", "status", "handoff", "snooze", "cadence", "channel", "add", "done", "undo", "refresh", "clock", "report",
    "approve", "reject",
)
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
class Item:
    """A checklist item a person can mark done: its number as the checklist shows it, its key, its name.
    Numbers follow the policy (first actions, then engagements), so they do not move as engagements start."""

    number: int
    key: str
    name: str


def checklist_items(cfg: Config, engaged: Collection[str] | None = None) -> tuple[Item, ...]:
    """The items of the checklist with a box people tick: every first action, and the engagements in
    ``engaged`` (all of them when None)."""
    items = [Item(n, f"first:{fa.id}", fa.text) for n, fa in enumerate(cfg.first_actions, 1)]
    offset = len(items)
    items += [
        Item(offset + n, f"engagement:{e.id}", e.name)
        for n, e in enumerate(cfg.engagements, 1)
        if engaged is None or e.id in engaged
    ]
    return tuple(items)


@dataclass(frozen=True)
class Ticks:
    """What ``done`` and ``undo`` judge against: the checklist's items, those marked done with ``done``, and
    those whose box was ticked by hand (by the comment's author or a Maintainer, the only people GitLab
    lets edit it)."""

    items: tuple[Item, ...]
    done: Mapping[str, Tick] = field(default_factory=dict)
    hand: frozenset[str] = frozenset()


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
    tick: tuple[Item, Tick | None] | None = None  # an item marked done (a Tick) or not done (None)
    add_channels: tuple[str, ...] = ()  # channel labels to put on the incident (``add``)
    clock: tuple[str, ClockRecord] | None = None  # (clock id, what its owner has recorded now) (``clock``)
    review: bool = False  # the communications review is asked for (``report``)
    slot: tuple[str, Slot] | None = None  # (integration, its slot of the state afterwards): its own command
    approval: tuple[str, ApprovalRecord] | None = None  # (channel label, its record now) (``approve``, ``reject``)


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


def judge(
    cmd: Command,
    cfg: Config,
    ticks: Ticks | None = None,
    selected: Collection[str] = (),
    extra: Sequence[CommandSpec] = (),
    slots: Mapping[str, Slot] | None = None,
    context: Context | None = None,
) -> Verdict:
    """Decide a command's effect and reply text (plain text; the renderer escapes it). ``ticks``: the
    checklist as it stands, for ``done`` and ``undo`` (default: every item, none ticked); ``selected``: the
    channels already selected on the incident (their label set and their issue opened), for ``add``;
    ``extra``: the commands the outbound integrations add, judged with their slot of ``slots`` and ``context``
    (the incident as the core knows it)."""
    if not cmd.allowed:
        return Verdict(
            cmd,
            False,
            "refused: only project members with at least the Developer role, or people on the bot's "
            "allow-list, may command it",
        )
    name, args = cmd.name, cmd.args
    spec = next((c for c in extra if c.name == name), None) if name not in COMMANDS else None
    if spec is not None:
        said = Said(args, cmd.note.author, cmd.note.created_at, context or Context(cfg=cfg), cmd.note.id)
        judged = spec.judge(said, (slots or {}).get(spec.integration, {}))
        slot = (spec.integration, judged.slot) if judged.ok and judged.slot is not None else None
        return Verdict(cmd, judged.ok, judged.reply, slot=slot)
    if name not in COMMANDS:
        known = ", ".join((*COMMANDS, *(c.name for c in extra if c.name not in COMMANDS)))
        return Verdict(cmd, False, Reply("unknown command ", Echo(name), f"; the commands are: {known}"))
    if name == "help":
        return Verdict(cmd, True, "help")
    if name == "status":
        return Verdict(cmd, True, "status")
    if name == "report":
        return Verdict(
            cmd,
            True,
            "the communications review is posted on the incident as one comment, edited in place as facts arrive",
            review=True,
        )
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
        return _channel(cmd, cfg)
    if name == "add":
        return _add(cmd, cfg, selected)
    if name in ("done", "undo"):
        return _done(cmd, cfg, ticks or Ticks(checklist_items(cfg)))
    if name in ("approve", "reject"):  # judged with the drafts and the chains (``bot.core.approvals``)
        return Verdict(cmd, False, f"usage: {name} CHANNEL [DIGEST]{' REASON' if name == 'reject' else ''}")
    if name == "clock":  # judged with the clocks' owners and records (``bot.core.clockcmd``)
        return Verdict(cmd, False, "usage: clock start|filed|not-required|delay-reason CLOCK ...")
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
            f"a cadence must be between {duration(low)} and {duration(high)} "
            f"(asked: {duration(every)})",
        )
    request = CadenceRequest(every, cmd.note.author, since)
    reply = Reply(
        f"{engagement.name}: status updates every {duration(every)}, requested by ",
        Echo(cmd.note.author),
        "; the next one is due that long after this comment or the last update, whichever is later",
    )
    return Verdict(cmd, True, reply, cadence=(engagement.id, request))


def _channel(cmd: Command, cfg: Config) -> Verdict:
    """``channel #inc-123``: the incident response channel in Slack, where its engagements are posted. Only a
    name the policy accepts for incident channels (``chat.incident_channels``), and never a target the policy
    uses for anything else: nobody redirects the incident's engagements to ``#general`` or the e-group."""
    if len(cmd.args) != 1 or not CHAT_CHANNEL.fullmatch(cmd.args[0]):
        shown = (Echo(" ".join(cmd.args)), " is not") if cmd.args else ("none given",)
        return Verdict(
            cmd, False, Reply("usage: channel #channel-name, e.g. channel #inc-123 (", *shown,
                              " a Slack channel name: lowercase letters, digits, - and _)")
        )
    name = cmd.args[0]
    chat = cfg.chat or ChatSettings()
    if not chat.may_be_incident_channel(name):
        why = ("the policy's Slack section already uses it for something else" if name in chat.targets()
               else f"incident channels are named {chat.incident_channel_glob()} (chat.incident_channels)")
        return Verdict(cmd, False, Reply("refused: ", Echo(name), f" cannot be the incident channel: {why}"))
    return Verdict(cmd, True, Reply("incident response channel set to ", Echo(name), " by ", Echo(cmd.note.author)),
                   chat_channel=name)


def short_name(label: str, cfg: Config) -> str:
    """A channel's short name for ``add``: its label without the prefix all channel labels share up to a ``-``
    (``email`` for ``comms-email``); the label itself when there is no such prefix."""
    labels = [c.label for c in cfg.channels]
    prefix = labels[0] if len(labels) > 1 else ""
    for other in labels[1:]:
        while not other.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix[: prefix.rfind("-") + 1]
    short = label[len(prefix) :] if prefix and label.startswith(prefix) else ""
    return short or label


def channel_names(cfg: Config) -> dict[str, str]:
    """Every name ``add`` takes, lowercase, to the channel's label: the label and its short name."""
    names = {short_name(c.label, cfg).lower(): c.label for c in cfg.channels}
    names.update({c.label.lower(): c.label for c in cfg.channels})
    return names


def _add(cmd: Command, cfg: Config, selected: Collection[str]) -> Verdict:
    """``add CHANNEL [CHANNEL ...]``: put channel labels on the incident, so their issues are opened (as if a
    person had added the labels). All or nothing: one unknown name and nothing is added."""
    names = channel_names(cfg)
    listing = ", ".join(short_name(c.label, cfg) for c in cfg.channels)
    if not cmd.args:
        return Verdict(cmd, False, f"usage: add CHANNEL [CHANNEL ...], e.g. add email; channels: {listing}")
    labels: list[str] = []
    for arg in cmd.args:
        wanted = arg.lower().lstrip("~")
        label = names.get(wanted)
        if label is None:
            close = difflib.get_close_matches(wanted, list(names), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            return Verdict(
                cmd, False, Reply("unknown channel ", Echo(arg), f"; nothing added ({hint}channels: {listing})")
            )
        if label not in labels:
            labels.append(label)
    added = tuple(label for label in labels if label not in selected)
    already = [label for label in labels if label in selected]
    parts: list[str | Echo] = []
    if added:
        parts += ["added ", *_joined(added), " to the incident, asked by ", Echo(cmd.note.author),
                  "; the checklist lists " + ("their issues" if len(added) > 1 else "its issue")]
    if already:
        parts += ["; " if added else "", *_joined(already),
                  " is already selected" if len(already) == 1 else " are already selected"]
    return Verdict(cmd, True, Reply(*parts), add_channels=added)


def _joined(labels: Collection[str]) -> list[str | Echo]:
    out: list[str | Echo] = []
    for n, label in enumerate(labels):
        out += [", "] if n else []
        out.append(Echo(label))
    return out


def _find_item(wanted: str, items: tuple[Item, ...]) -> Item | None:
    """An item by its number, its id (``e-group``) or its name as the checklist shows it, in any case."""
    text = wanted.strip().lstrip("(").rstrip(")").lower()
    for item in items:
        if text in (str(item.number), item.key.split(":", 1)[1].lower(), item.key.lower(), item.name.lower()):
            return item
    return None


def _done(cmd: Command, cfg: Config, ticks: Ticks) -> Verdict:
    """``done ITEM`` / ``undo ITEM``: mark a checklist item done or not, for those GitLab does not let tick
    the bot's boxes (everyone but the bot and Maintainers)."""
    undo = cmd.name == "undo"
    listing = ", ".join(f"{i.number} {i.key.split(':', 1)[1]}" for i in ticks.items)
    if not cmd.args:
        return Verdict(cmd, False, f"usage: {cmd.name} ITEM, the item's number or name in the checklist ({listing})")
    wanted = " ".join(cmd.args)
    item = _find_item(wanted, ticks.items)
    if item is None:
        return Verdict(cmd, False, Reply("no checklist item ", Echo(wanted), f" (the items: {listing})"))
    shown = f"({item.number}) {item.name}"
    earlier = ticks.done.get(item.key)
    if not undo:
        if earlier is not None:
            return Verdict(cmd, True, Reply(f"{shown} was already marked done by ", Echo(earlier.by),
                                            f" at {earlier.at:%Y-%m-%d %H:%M} UTC"))
        if item.key in ticks.hand:
            return Verdict(cmd, True, f"{shown} is already ticked in the checklist")
        if cmd.note.created_at is None:
            return Verdict(cmd, False, "cannot tell when the command was written")
        tick = Tick(cmd.note.author, cmd.note.created_at)
        reply = Reply(f"{shown} marked done by ", Echo(cmd.note.author), f" at {tick.at:%Y-%m-%d %H:%M} UTC")
        return Verdict(cmd, True, reply, tick=(item, tick))
    if earlier is not None:
        return Verdict(cmd, True, Reply(f"{shown} marked not done by ", Echo(cmd.note.author)), tick=(item, None))
    if item.key in ticks.hand:
        return Verdict(cmd, False, f"{shown} was ticked by hand in the checklist; only a Maintainer can untick it")
    return Verdict(cmd, False, f"{shown} is not marked done")


def apply(state: BotState, verdicts: list[Verdict]) -> BotState:
    """The bot's state after the accepted commands, in the order they were written."""
    roles = dict(state.roles)
    snoozed = state.snoozed_until
    cadences = dict(state.cadences)
    chat_channel = state.chat_channel
    done = dict(state.done)
    clocks = dict(state.clocks)
    slots = dict(state.slots)
    approvals = dict(state.approvals)
    review = state.review or any(v.review for v in verdicts)
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
        if v.clock:
            clocks[v.clock[0]] = v.clock[1]
        if v.slot:
            slots[v.slot[0]] = v.slot[1]
        if v.approval:
            approvals[v.approval[0]] = v.approval[1]
        if v.tick:
            item, tick = v.tick
            if tick is None:
                done.pop(item.key, None)
            else:
                done[item.key] = tick
    return replace(
        state,
        roles=roles,
        snoozed_until=snoozed,
        cadences=cadences,
        handled=handled,
        chat_channel=chat_channel,
        done=done,
        clocks=clocks,
        review=review,
        slots=slots,
        approvals=approvals,
    )
