"""Sending a return to a person (``needs_review``) and reopening a closed one."""

from __future__ import annotations

from returnflow.decisions.change import Change
from returnflow.domain._fields import check_text

__all__ = ["flag", "reopen"]


def flag(change: Change, reason: str) -> None:
    """Send the return to ``needs_review`` with ``reason`` (kept in ``review_reasons``):
    free text (:func:`~returnflow.domain._fields.check_text`), else
    :class:`~returnflow.errors.InvalidRequest` naming ``reason``."""
    check_text("reason", reason)
    change.fire("flag", {"reason": reason}, reason=reason)
    reasons = change.record.review_reasons
    if reason not in reasons:  # the same reason twice says nothing more
        change.update(review_reasons=(*reasons, reason))
    change.publish("update", review_reason=reason)


def reopen(change: Change, reason: str) -> None:
    """Reopen a closed return; it waits in ``needs_review`` for what comes next. ``reason``:
    free text, as :func:`flag`'s."""
    check_text("reason", reason)
    change.fire("reopen", {"reason": reason} if reason else None)
    change.update(review_reasons=(reason or "reopened",), completed_at=None)
    change.publish("reopen", **({"reason": reason} if reason else {}))
