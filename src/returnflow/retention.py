"""How long a store keeps what it no longer needs, and the pruning that drops it.

Two kinds of rows grow with every return and are not needed for ever:

* **delivered effects** (outbox rows ``done``) of returns that ended (closed, cancelled,
  expired, declined, reset) and have no timer due: kept :data:`OUTBOX_WINDOW` (90 days) after
  the return was last written, then dropped. The return, its history (every state change)
  and its failed effects (which wait for a person) stay; its timeline no longer lists the
  effects delivered.
* **inbox keys** (the ids of inbound events processed, which make a redelivered webhook a
  ``duplicate``): kept :data:`INBOX_WINDOW` (400 days) after the event was processed. A
  sender that redelivers an event after its key was dropped has it applied again; the
  window is therefore much longer than any sender redelivers in: Shopify retries a webhook
  8 times over 4 hours, carriers and warehouse systems for days, and an import run again
  over an old period goes through the importer's own checks, not the inbox.

``returnflow prune --db PATH --older-than 90d [--inbox-older-than 400d]`` runs
:func:`prune` on a store; a host can call it from its own scheduler.

>>> [str(age(text)) for text in ("90d", "36h", "2w")]
['90 days, 0:00:00', '1 day, 12:00:00', '14 days, 0:00:00']
>>> age("90")
Traceback (most recent call last):
...
returnflow.errors.ValidationError: older_than='90': must be a number and a unit: 90d, 36h, 2w
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from returnflow.domain._time import EARLIEST, instant
from returnflow.errors import ValidationError
from returnflow.ports.store import Pruned, ReturnStore

__all__ = ["INBOX_WINDOW", "OUTBOX_WINDOW", "age", "prune"]

OUTBOX_WINDOW = timedelta(days=90)
"""How long delivered effects of an ended return are kept after its last write."""

INBOX_WINDOW = timedelta(days=400)
"""How long inbox keys are kept: far longer than any sender redelivers an event."""

_AGE = re.compile(r"\s*([0-9]+)\s*([dhw])\s*")  # ASCII digits: int() takes others too
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def age(text: str, *, field: str = "older_than") -> timedelta:
    """``"90d"`` (days), ``"36h"`` (hours) or ``"2w"`` (weeks) as a ``timedelta``;
    ``ValidationError`` naming ``field`` for anything else (no unit, zero, negative)."""
    found = _AGE.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValidationError(field, text, "must be a number and a unit: 90d, 36h, 2w")
    try:
        span = int(found[1]) * _UNITS[found[2]]
    except (OverflowError, ValueError):  # beyond what a timedelta (or int()) holds
        raise ValidationError(field, text, f"must be at most {timedelta.max.days} days") from None
    if not span:
        raise ValidationError(field, text, "must be more than 0")
    return span


def prune(
    store: ReturnStore,
    *,
    now: datetime | None = None,
    older_than: timedelta = OUTBOX_WINDOW,
    inbox_older_than: timedelta = INBOX_WINDOW,
) -> Pruned:
    """Drop what ``store`` no longer needs (:meth:`ReturnStore.prune
    <returnflow.ports.store.ReturnStore.prune>`): delivered effects of returns that ended
    more than ``older_than`` before ``now`` (default: the current time, UTC), inbox keys
    processed more than ``inbox_older_than`` before it. Raises ``ValidationError`` for a
    window that is not a positive ``timedelta`` or a naive ``now``."""
    for field, span in (("older_than", older_than), ("inbox_older_than", inbox_older_than)):
        if not isinstance(span, timedelta) or span <= timedelta(0):
            raise ValidationError(field, span, "must be a timedelta above 0")
    moment = datetime.now(timezone.utc) if now is None else now
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValidationError("now", moment, "must be a timezone-aware datetime")
    moment = instant("now", moment)
    return store.prune(
        older_than=_before(moment, older_than), inbox_older_than=_before(moment, inbox_older_than)
    )


def _before(moment: datetime, span: timedelta) -> datetime:
    """``span`` before ``moment``, or :data:`~returnflow.domain._time.EARLIEST` when that is
    earlier (no store holds an instant before it, so the cutoff drops the same rows)."""
    try:
        return max(moment - span, EARLIEST)
    except OverflowError:  # before year 1
        return EARLIEST
