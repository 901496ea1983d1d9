"""``incident-bot report``: the communications review of one incident against a live GitLab (reads only)."""

from __future__ import annotations

from collections.abc import Callable

from bot.core import review
from bot.core.model import IncidentRef
from bot.errors import UserError
from bot.reconciler import Reconciler


def report_live(text: str, make_reconciler: Callable[[], Reconciler]) -> review.Review:
    """Read the incident as a dry run does (nothing is written) and compute its review.
    Raises ``OutsideRemit`` for an incident the bot may not act on."""
    try:
        ref = IncidentRef.parse(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    reconciler = make_reconciler()
    try:
        report = reconciler.dry_run(ref)
        labels = report.observed.label_changes
        if labels is None:  # read by the dry run when the review is due; else read here
            labels = tuple(reconciler.client.for_incident(ref.key).label_events(ref))
    finally:
        reconciler.close()
    return review.review(report.observed, report.desired, reconciler.cfg, labels)


def as_text(result: review.Review) -> str:
    head = f"Communications review of {result.incident}" + (" (confidential)" if result.confidential else "")
    return "\n".join([head, *review.lines(result.metrics)])
