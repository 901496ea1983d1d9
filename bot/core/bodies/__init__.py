"""Everything the bot writes into GitLab, rendered from desired and observed state. Pure.

Values that came from GitLab are escaped by the renderer; the pieces composed here in Python (log
lines, who-is-responsible) use the same markdown primitives, so nothing reaches GitLab unescaped.

One module per artifact (``checklist``, ``child``, ``statuslog``, ``notes``, ``reviewnote``, ``replies``,
``breaches``), sharing ``common`` and ``refs``: a new artifact is a new module here, its public names
re-exported below.
"""

from __future__ import annotations

from bot.core.bodies.breaches import order_child_body, order_log_text
from bot.core.bodies.checklist import (
    BY_COMMAND,
    checklist_body,
    find_checklist_marker,
    looks_like_checklist,
    state_copy,
    ticked_items,
    unticked_command_items,
)
from bot.core.bodies.child import child_claim, child_description, child_marker, child_names, child_title
from bot.core.bodies.common import (
    CHECKLIST,
    CHILD,
    INERT_NOTICE,
    ITEM,
    LOG,
    LOG_THREAD,
    RENDER_FAILURES,
    Renderer,
    at,
    dri_of,
    every,
    strict,
    team_name,
    who,
)
from bot.core.bodies.notes import all_clear_body, closed_body, out_of_scope_body, reminder_body
from bot.core.bodies.refs import ChildKey, child_key, child_ref, log_id, recorded_channel, recorded_children
from bot.core.bodies.replies import reply_body, status_update_body
from bot.core.bodies.reviewnote import review_body
from bot.core.bodies.statuslog import is_log_thread_note, log_body, log_entries, logged_keys

__all__ = [
    "BY_COMMAND",
    "CHECKLIST",
    "CHILD",
    "INERT_NOTICE",
    "ITEM",
    "LOG",
    "LOG_THREAD",
    "RENDER_FAILURES",
    "ChildKey",
    "Renderer",
    "all_clear_body",
    "at",
    "checklist_body",
    "child_claim",
    "child_description",
    "child_key",
    "child_marker",
    "child_names",
    "child_ref",
    "child_title",
    "closed_body",
    "dri_of",
    "every",
    "find_checklist_marker",
    "is_log_thread_note",
    "log_body",
    "log_entries",
    "log_id",
    "logged_keys",
    "looks_like_checklist",
    "order_child_body",
    "order_log_text",
    "out_of_scope_body",
    "recorded_channel",
    "recorded_children",
    "reminder_body",
    "reply_body",
    "review_body",
    "state_copy",
    "status_update_body",
    "strict",
    "team_name",
    "ticked_items",
    "unticked_command_items",
    "who",
]
