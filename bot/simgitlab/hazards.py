"""What GitLab would execute or notify from a Markdown body.

Two separate readings of the same text:

* ``extract_commands`` ports GitLab's quick-action extractor
  (gitlabhq ``lib/gitlab/quick_actions/extractor.rb``) closely enough to decide what the
  simulator executes, including its quirks (only ```` ``` ```` fences, HTML blocks and ``>>>``
  quotes protect a command; ``~~~`` fences and indented blocks do not, but an indented line is
  not at column 0 anyway).
* ``scan_hazards`` is deliberately stricter: it flags every column-0 ``/word`` outside those
  blocks (GitLab's lax "inline code" alternative, which can swallow earlier lines, is not honoured)
  and every unescaped ``@handle`` outside CommonMark code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Generous union of GitLab's quick actions (issues, MRs, epics, work items, commits), with aliases.
QUICK_ACTIONS: frozenset[str] = frozenset(
    {
        "add_child",
        "add_contacts",
        "add_email",
        "approve",
        "assign",
        "assign_reviewer",
        "award",
        "blocked_by",
        "blocks",
        "board_move",
        "cc",
        "checkin_reminder",
        "child_epic",
        "clear_health_status",
        "clear_weight",
        "clone",
        "close",
        "confidential",
        "convert_to_ticket",
        "copy_metadata",
        "create_merge_request",
        "done",
        "draft",
        "due",
        "duplicate",
        "epic",
        "escalate",
        "estimate",
        "estimate_time",
        "health_status",
        "invite_email",
        "iteration",
        "label",
        "labels",
        "link",
        "lock",
        "merge",
        "milestone",
        "move",
        "page",
        "parent",
        "parent_epic",
        "promote",
        "promote_to",
        "promote_to_incident",
        "publish",
        "q",
        "react",
        "ready",
        "reassign",
        "reassign_reviewer",
        "rebase",
        "relabel",
        "relate",
        "remove_child",
        "remove_child_epic",
        "remove_contacts",
        "remove_due_date",
        "remove_email",
        "remove_epic",
        "remove_estimate",
        "remove_iteration",
        "remove_label",
        "remove_milestone",
        "remove_parent",
        "remove_parent_epic",
        "remove_reviewer",
        "remove_time_estimate",
        "remove_time_spent",
        "remove_zoom",
        "reopen",
        "request_changes",
        "request_review",
        "reviewer",
        "set_parent",
        "severity",
        "shrug",
        "spend",
        "spend_time",
        "spent",
        "status",
        "submit_review",
        "subscribe",
        "summarize_diff",
        "tableflip",
        "tag",
        "target_branch",
        "timeline",
        "title",
        "todo",
        "type",
        "unapprove",
        "unassign",
        "unassign_reviewer",
        "unlabel",
        "unlink",
        "unlock",
        "unrelate",
        "unsubscribe",
        "weight",
        "wip",
        "zoom",
    }
)

# Substitutions rewrite their line instead of disappearing (GitLab's SubstitutionDefinition).
SUBSTITUTIONS: dict[str, str] = {"shrug": "¯\\＿(ツ)＿/¯", "tableflip": "(╯°□°)╯︵ ┻━┻"}

_PROTECTED = (
    r"(?P<code>^```.+?\n```$)"
    r"|(?P<html>^<[^>]+?>\n.+?\n</[^>]+?>$)"
    r"|(?P<quote>^>>>.+?\n>>>$)"
)


@lru_cache(maxsize=4)
def _commands_regex(names: tuple[str, ...]) -> re.Pattern[str]:
    union = "|".join(re.escape(n) for n in names)
    return re.compile(
        r"(?P<code>^```.+?\n```$)"
        r"|(?P<inline_code>^.*`\n*.+?\n*`$)"
        r"|(?P<html>^<[^>]+?>\n.+?\n</[^>]+?>$)"
        r"|(?P<quote>^>>>.+?\n>>>$)"
        rf"|(?:^/(?P<cmd>{union})(?:[ ](?P<arg>[^\n]*))?(?:\s*\n|$))",
        re.M | re.S | re.I,
    )


# /cc is a no-op definition, which GitLab's extractor leaves in the text.
_COMMAND_NAMES = tuple(sorted(QUICK_ACTIONS - SUBSTITUTIONS.keys() - {"cc"}))
_SUBSTITUTION_NAMES = tuple(sorted(SUBSTITUTIONS))


def extract_commands(content: str) -> tuple[str, list[tuple[str, str]]]:
    """Return ``(content without command lines, [(command, arg), ...])`` like GitLab's extractor."""
    content = content.replace("\r", "")
    commands: list[tuple[str, str]] = []

    def strip(match: re.Match[str]) -> str:
        if match.group("cmd"):
            commands.append((match.group("cmd").lower(), (match.group("arg") or "").strip()))
            return ""
        return match.group(0)

    def substitute(match: re.Match[str]) -> str:
        if not match.group("cmd"):
            return match.group(0)
        name = match.group("cmd").lower()
        arg = (match.group("arg") or "").strip()
        commands.append((name, arg))
        tail = "\n" if match.group(0).endswith("\n") else ""
        return f"{arg} {SUBSTITUTIONS[name]}".lstrip() + tail

    content = _commands_regex(_COMMAND_NAMES).sub(strip, content).rstrip()
    content = _commands_regex(_SUBSTITUTION_NAMES).sub(substitute, content)
    return content, commands


@dataclass(frozen=True)
class Finding:
    kind: str  # "quick_action" | "command_like" | "mention"
    line: str
    line_no: int
    value: str  # the command name, or the mentioned handle


_SLASH_LINE = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.M)
# GitLab merges backslash-escaped ``_ . -`` back into the text before it matches references, so
# ``@sam\_`` (how the bot writes a username ending in ``_``) mentions ``sam_``.
_HANDLE_CHAR = r"(?:[A-Za-z0-9_.\-]|\\[_.\-])"
_HANDLE = rf"(?:[A-Za-z0-9_.]|\\[_.]){_HANDLE_CHAR}*(?:/{_HANDLE_CHAR}+)*"
_ESCAPED = re.compile(r"\\([_.\-])")
_MENTION = re.compile(rf"(?:@|&#0*64;|&#[xX]0*40;|&commat;)(?P<handle>{_HANDLE})")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^( {0,3})([-*+]|\d{1,9}[.)])( +|$)")


def scan_hazards(text: str) -> list[Finding]:
    text = text.replace("\r", "")
    return _scan_commands(text) + _scan_mentions(text)


def _scan_commands(text: str) -> list[Finding]:
    protected = [m.span() for m in re.finditer(_PROTECTED, text, re.M | re.S)]
    found = []
    for match in _SLASH_LINE.finditer(text):
        start = match.start()
        if any(a <= start < b for a, b in protected):
            continue
        name, rest = match.group(1), match.group(2)
        known = name.lower() in QUICK_ACTIONS and (rest == "" or rest[0] in " \t" or not rest.strip())
        line_no = text.count("\n", 0, start) + 1
        found.append(Finding("quick_action" if known else "command_like", match.group(0), line_no, name))
    return found


def _scan_mentions(text: str) -> list[Finding]:
    found = []
    for line_no, line in _prose_lines(text):
        for handle in _mentions_in_line(_strip_code_spans(line)):
            found.append(Finding("mention", line, line_no, handle))
    return found


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """Lines CommonMark would not render as code (fenced or indented)."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    prev_blank = True
    prev_code = False
    list_indent: int | None = None  # content column of the list item we are inside
    for number, line in enumerate(text.split("\n"), start=1):
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]} and _indent(line) < 4:
                fence = None
            continue
        blank = not line.strip()
        if blank:
            prev_blank = True
            continue
        indent = _indent(line)
        opening = _FENCE.match(line)
        item = _LIST_ITEM.match(line)
        code_threshold = (list_indent or 0) + 4
        if indent >= code_threshold and (prev_blank or prev_code) and not opening:
            prev_code, prev_blank = True, False
            continue
        prev_code = False
        if opening:
            fence = opening.group(1)
        elif item and indent < 4:
            list_indent = len(item.group(0).expandtabs(4)) if item.group(3) else indent + 2
            out.append((number, line))
        else:
            if indent == 0 and prev_blank:
                list_indent = None
            out.append((number, line))
        prev_blank = False
    return out


def _strip_code_spans(line: str) -> str:
    """Blank out `code spans` (matching backtick runs) on one line; escaped backticks are literal."""
    result: list[str] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            result.append(line[i : i + 2])
            i += 2
            continue
        if ch == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            closing = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(line, i + run)
            if closing:
                result.append(" " * (closing.end() - i))
                i = closing.end()
                continue
            result.append("`" * run)
            i += run
            continue
        result.append(ch)
        i += 1
    return "".join(result)


def _mentions_in_line(line: str) -> list[str]:
    handles = []
    for match in _MENTION.finditer(line):
        start = match.start()
        if start and (line[start - 1].isalnum() or line[start - 1] == "_"):
            continue  # e-mail address or word@word
        backslashes = len(line[:start]) - len(line[:start].rstrip("\\"))
        if backslashes % 2:
            continue
        handle = _ESCAPED.sub(r"\1", match.group("handle")).rstrip(".-")
        if handle:
            handles.append(handle)
    return handles
