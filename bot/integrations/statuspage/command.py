"""``@incident-bot publish status-page [DIGEST]``, judged without I/O.

Only the CMOC or the SIMOC (the role holders in the bot's state) may publish; the request counts only when the
named digest is the current draft of the status page child and approved, the incident carries the policy's
impact label, and :func:`~.safety.check_draft` finds nothing. Otherwise the reply says every condition that
failed and nothing is recorded. An accepted request is kept in the integration's slot of the signed state
(``{"request": {"digest", "by", "at", "all_clear"}}``); the planner sends from that, and only the approved text.
"""

from __future__ import annotations

from bot.core.outbound import CommandSpec, Judged, Said, Slot
from bot.integrations.statuspage.config import SECTION, StatusPageConfigError, parse_policy
from bot.integrations.statuspage.facts import CHANNEL, NAME
from bot.integrations.statuspage.plan import publish_refusals
from bot.integrations.statuspage.safety import check_draft

PUBLISHERS = ("cmoc", "simoc")
USAGE = "usage: publish status-page [DIGEST]"


def judge(said: Said, slot: Slot) -> Judged:
    """Whether the publish may go out; the reply says why not, or what will be posted."""
    ctx = said.context
    if not said.args or said.args[0].lower().lstrip("~") not in ("status-page", "status_page", CHANNEL):
        return Judged(False, USAGE)
    if len(said.args) > 2:
        return Judged(False, USAGE)
    try:
        policy = parse_policy(ctx.cfg.integrations.get(SECTION) if ctx.cfg is not None else None)
    except StatusPageConfigError:
        policy = None
    if policy is None:
        return Judged(False, "nothing sent: the policy has no integrations.status_page section")
    holders = {r: ctx.holders.get(r) for r in PUBLISHERS}
    if said.author.lower() not in {h.lower() for h in holders.values() if h}:
        named = ", ".join(f"{r.upper()} {('@' + h) if h else '(nobody)'}" for r, h in holders.items())
        return Judged(False, f"nothing sent: only the CMOC or the SIMOC may publish to the status page ({named})")
    draft = ctx.drafts.get(CHANNEL)
    text = draft.text if draft is not None else None
    findings = check_draft(text, gitlab_host=ctx.instance, allowed_hosts=policy.allowed_hosts) if text else []
    reasons = publish_refusals(
        labels=ctx.labels, impact_label=policy.impact_label, current_digest=draft.digest if draft else None,
        requested_digest=said.args[1] if len(said.args) > 1 else None,
        approved=bool(draft and draft.approved), findings=findings)
    if reasons:
        return Judged(False, "nothing sent to the status page: " + "; ".join(reasons))
    assert draft is not None and draft.digest is not None
    request = {"digest": draft.digest, "by": said.author, "at": said.at.isoformat() if said.at else None,
               "all_clear": ctx.all_clear}
    before = slot.get("request")
    if isinstance(before, dict) and before.get("digest") == draft.digest and before.get("all_clear") == ctx.all_clear:
        reply = (f"draft {draft.digest} was asked for before: it is sent only if it is not on the status page yet "
                 "(a refusal is tried again); the checklist row shows where it is")
    else:
        what = "resolves the status page incident with" if ctx.all_clear else "posts"
        reply = f"the status page {what} draft {draft.digest} (approved); its checklist row shows when it is out"
    return Judged(True, reply, {**slot, "request": request})


PUBLISH = CommandSpec(NAME, "publish", "publish status-page [DIGEST]",
                      "post the approved status page draft (CMOC or SIMOC; needs the live-incident label)", judge)
