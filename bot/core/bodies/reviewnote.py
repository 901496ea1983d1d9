"""The communications review comment."""

from __future__ import annotations

import re

from bot.config import Config
from bot.core import review
from bot.core.bodies.common import Renderer, _log, _render
from bot.core.model import Observed
from bot.text.escape import escape_inline
from bot.text.safe import Safe

_LINKABLE = re.compile(r"https?://[A-Za-z0-9._~/:%-]+(?:#note_[0-9]+)?")


def _review_end(event: review.Event | None) -> Safe | None:
    """One end of a metric: what happened, linked to where GitLab shows it, and when."""
    if event is None:
        return None
    what = escape_inline(event.what)
    shown = f"[{what}]({event.url})" if _LINKABLE.fullmatch(event.url) else what
    return Safe(f"{shown} ({event.at:%Y-%m-%d %H:%M})")


def review_body(result: review.Review, observed: Observed, cfg: Config, r: Renderer) -> str:
    """The communications review comment (``bot.core.review``), its signed key finding it again."""
    rows = [
        {
            "name": m.name,
            "value": review.duration(m.seconds),
            "start": _review_end(m.start),
            "end": _review_end(m.end),
            "note": m.note,
        }
        for m in result.metrics
    ]
    return _render(
        r,
        cfg.templates.review,
        "communications review",
        marker=_log(observed, [review.REVIEW_KEY]),
        metrics=rows,
        incident=result.incident,
        schema=review.SCHEMA,
    )
