"""The sign-off as GitLab shows it: a checklist row per channel, the comments on the child (asked, backup
mentioned, CMOC warned, cut-off, ready, voided) with their status log lines, and the ready label. Every value
from a person (a username, a reason, the draft's words in a finding) is escaped."""

from __future__ import annotations

from datetime import datetime

from bot.config import Config
from bot.core import records
from bot.core.actions import Action, LabelChild, NoteOnChild
from bot.core.approvalrecords import Decision
from bot.core.approvals import WARN_BEFORE, ChannelApproval, GroupView, Notice, notices
from bot.core.model import Child, Desired, Observed, Person
from bot.text.escape import UnsafeValue, code_span, escape_inline, issue_ref, mention
from bot.text.safe import Safe


def who(p: Person) -> str:
    if p.handle:
        try:
            return mention(p.handle, allow_group=True)
        except UnsafeValue:
            return f"{escape_inline(p.name)} ({escape_inline(p.handle)})"
    return f"{escape_inline(p.name)} (nobody configured)"


def _name(p: Person) -> str:
    """Named without a mention (the checklist is rewritten often; a mention there would notify each time)."""
    return escape_inline(p.handle) if p.handle else f"{escape_inline(p.name)} (nobody configured)"


def _at(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC"


def _decision(g: GroupView) -> str:
    d = g.decision
    if d is None:
        return f"{escape_inline(g.id)}: waiting"
    if d.approve:
        return f"{escape_inline(g.id)}: ✓ approved {code_span(d.digest)} by {escape_inline(d.by)} at {_at(d.at)}"
    return (f"{escape_inline(g.id)}: ✗ rejected {code_span(d.digest)} by {escape_inline(d.by)} at {_at(d.at)}: "
            f"{escape_inline(d.reason)}")


def state_text(v: ChannelApproval) -> str:
    """The channel's approval state in a few words (safe markdown)."""
    if v.child is None:
        return "no issue yet"
    if v.digest is None:
        return "no draft yet (a `## Draft` section in its issue)"
    if v.ready_by == "all":
        return f"draft {code_span(v.digest)} **ready**: every approver group approved it"
    if v.ready_by == "quorum":
        return f"draft {code_span(v.digest)} **ready** at the cut-off: {escape_inline(v.quorum_text())}"
    if v.cut_off:
        return f"draft {code_span(v.digest)} **blocked** at the cut-off ({escape_inline(v.quorum_text())})" \
            if v.quorum_of else f"draft {code_span(v.digest)} **blocked** at the cut-off"
    waiting = ", ".join(
        f"{escape_inline(g.id)} (asked {_name(g.chain[v.asked_index(g)])})" if g.chain else escape_inline(g.id)
        for g in v.waiting()
    )
    return f"draft {code_span(v.digest)} waiting for {waiting}"


def rows(desired: Desired, observed: Observed) -> list[Safe]:
    """One checklist line per channel the matrix names: digest, state, each group's decision, the cut-off, and
    the customer email's findings."""
    out = []
    for v in desired.approvals:
        parts = [f"**{escape_inline(v.title)}** ({code_span(v.channel)})"]
        child = observed.children.get(v.channel)  # opened in this run, perhaps
        if child is not None:
            parts[0] += f" {bodies_ref(child, observed)}"
        parts.append(state_text(v) if child is None or v.child is not None else "no draft yet (a `## Draft` "
                     "section in its issue)")
        if v.digest is not None:
            parts += [_decision(g) for g in v.approvers]
            fyi = [escape_inline(g.id) for g in v.fyi]
            if fyi:
                parts.append(f"kept informed: {', '.join(fyi)}")
        if v.target is not None and not v.ready:
            parts.append(f"cut-off {_at(v.target)}")
        parts += [f"⚠ {escape_inline(f)}" for f in v.findings]
        if v.record is not None and v.record.voided:
            parts.append(f"approvals voided by edits: {', '.join(code_span(d) for d in v.record.voided)}")
        out.append(Safe(" · ".join(parts)))
    return out


def bodies_ref(child: Child, observed: Observed) -> str:
    """``#12``, or the full reference of a child in a team's project."""
    pid = child.issue.project_id
    if pid is not None and pid != observed.incident.project_id and child.issue.project_path:
        return issue_ref(child.iid, child.issue.project_path)
    return issue_ref(child.iid)


def _body(n: Notice, cfg: Config) -> tuple[str, str]:
    """The comment on the child (without its marker) and the status log line, for one notice."""
    v, ch = n.channel, code_span(n.channel.channel)
    people = " ".join(who(p) for p in n.people)
    d = code_span(n.digest)
    bot = cfg.bot.username
    if n.kind == "asked":
        approve = code_span(f"@{bot} approve {v.channel} {n.digest}")
        reject = code_span(f"@{bot} reject {v.channel} {n.digest} REASON")
        backups = any(len(g.chain) > 1 for g in v.approvers)
        text = (f"{people}: please review draft {d} of this issue's `## Draft` section, then comment {approve} or "
                f"{reject} on the incident."
                + (f" Each of you has {_span(v)} before the next person of your group is asked." if backups else ""))
        return text, f"{ch}: draft {d} sent for approval to {', '.join(escape_inline(g) for g in n.groups)}"
    if n.kind == "backup":
        text = (f"{people}: no decision from the {escape_inline(n.groups[0])} group on draft {d} for {_span(v)}; "
                f"you are next in its chain. Comment "
                f"{code_span(f'@{bot} approve {v.channel} {n.digest}')} or "
                f"{code_span(f'@{bot} reject {v.channel} {n.digest} REASON')} on the incident.")
        return text, f"{ch}: {escape_inline(n.groups[0])} silent for a window; asked {_name(n.people[0])} next"
    if n.kind == "warn":
        waiting = ", ".join(escape_inline(g.id) for g in v.waiting())
        assert v.target is not None
        text = (f"{people}: the cut-off for this draft is {_at(v.target)}, in {int(WARN_BEFORE.total_seconds() // 60)} "
                f"minutes; still waiting for {waiting}.")
        return text, f"{ch}: warned the CMOC, cut-off {_at(v.target)}; waiting for {waiting}"
    if n.kind == "blocked":
        why = f" ({escape_inline(v.quorum_text().replace('cleared by', 'short of'))})" if v.quorum_of else ""
        text = (f"{people}: the cut-off has passed and draft {d} is **blocked**: not every approver group approved "
                f"it{why}. It may not be sent.")
        return text, f"{ch}: draft {d} blocked at the cut-off{why}"
    if n.kind == "ready":
        by = "every approver group approved it" if v.ready_by == "all" else escape_inline(v.quorum_text())
        approvals = "; ".join(_approved(g.decision) for g in v.approvers if g.approved and g.decision)
        fyi = [p for p in n.people if v.dri is None or p != v.dri]
        dri = who(v.dri) if v.dri is not None else "the DRI"
        text = (f"Draft {d} is **ready** ({by}): {approvals}. {dri}: you may send exactly this text "
                f"(the bot never sends it itself); the issue has {code_span('~' + cfg.approvals.ready_label)}."
                + (f" Kept informed: {' '.join(who(p) for p in fyi)}." if fyi else ""))
        return text, f"{ch}: draft {d} ready ({by}); {code_span(cfg.approvals.ready_label)} set"
    # voided
    text = (f"The draft changed: the approvals of draft {d} are void (as GitLab resets approvals on a push), and "
            f"{code_span('~' + cfg.approvals.ready_label)} is removed. The current draft is "
            f"{code_span(v.digest or 'none')}; it is asked for again.")
    return text, f"{ch}: draft edited ({d} → {code_span(v.digest or 'none')}): its approvals are void"


def _approved(d: Decision) -> str:
    return f"{', '.join(escape_inline(g) for g in d.groups)} by {escape_inline(d.by)} at {_at(d.at)}"


def _span(v: ChannelApproval) -> str:
    minutes = int(v.window.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} minutes"


def actions(desired: Desired, observed: Observed, cfg: Config) -> list[Action]:
    """The comments due on the children (each once, with its status log line) and the ready label where it is
    wrong. A closed child is left as it is (sent)."""
    out: list[Action] = []
    said = observed.logged | observed.child_noted
    label = cfg.approvals.ready_label
    for v in desired.approvals:
        child = observed.children.get(v.channel)  # as this run has changed it (``desired`` holds the first read)
        if child is None or not child.issue.is_open:
            continue
        for n in notices(v, said):
            text, line = _body(n, cfg)
            marker = records.log_marker(observed.key, observed.incident, [n.key])
            out.append(NoteOnChild(v.channel, child.issue.ref.project, child.iid, f"{marker}\n{text}\n", n.key,
                                   line, what=f"sign-off: {n.kind}"))
        has = label in child.issue.labels
        if v.ready and not has:
            out.append(LabelChild(v.channel, child.issue.ref.project, child.iid, add=(label,)))
        elif has and not v.ready:
            # Removed because an edit voided the approvals: the "voided" comment of this run says so.
            told = v.record is not None and bool(v.record.voided) and (
                f"approval:voided:{v.channel}:{v.record.voided[-1]}" not in said)
            stamp = child.issue.updated_at.isoformat() if child.issue.updated_at else "unknown"
            key = "" if told else f"approval:unlabel:{v.channel}:{stamp}"
            text = (f"{code_span(v.channel)}: removed {code_span('~' + label)}: the current draft is not approved"
                    if key else "")
            out.append(LabelChild(v.channel, child.issue.ref.project, child.iid, remove=(label,), log_key=key,
                                  log_text=text))
    return out
