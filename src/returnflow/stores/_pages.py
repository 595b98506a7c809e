"""What every store checks the same way: a keyset page's ``after`` and ``limit``, and the
cutoffs of :meth:`~returnflow.ports.store.ReturnStore.prune`.

>>> check_page("R0009", 50)
>>> check_page(None, 0)
Traceback (most recent call last):
...
returnflow.errors.ValidationError: limit=0: must be a whole number of at least 1, or None
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from returnflow.errors import ValidationError

__all__ = ["ENDED", "MAX_ROWS", "PRUNE_BATCH", "check_cutoff", "check_page", "check_run", "rows_of"]

ENDED = ("closed", "cancelled", "expired", "declined", "reset")
"""Statuses of a return that ended: its delivered effects are history once no timer is due."""

PRUNE_BATCH = 1000
"""Rows one pruning transaction deletes: short transactions, so writers are not held up."""


def check_page(after: Any, limit: Any) -> None:
    """``ValidationError`` unless ``after`` is ``None`` or a string and ``limit`` is ``None``
    or a whole number of at least 1."""
    if after is not None and not isinstance(after, str):
        raise ValidationError("after", after, "must be the id of a return (a string), or None")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError("limit", limit, "must be a whole number of at least 1, or None")


MAX_ROWS = 2**63 - 1
"""The most rows a read or a claim asks for: the largest integer every store's SQL takes."""


def rows_of(limit: Any, field: str = "limit") -> int:
    """``limit`` (the most rows a read or a claim returns) as every store takes it: below 1
    none (SQLite would read a negative one as no limit at all, PostgreSQL refuse it), above
    :data:`MAX_ROWS` as many as there are; ``ValidationError`` naming ``field`` unless a
    whole number."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValidationError(field, limit, "must be a whole number")
    return max(0, min(limit, MAX_ROWS))


def check_run(run: Any) -> None:
    """``ValidationError`` unless ``run`` (how many entries of a return a claim hands out)
    is a whole number of at least 1."""
    if isinstance(run, bool) or not isinstance(run, int) or run < 1:
        raise ValidationError("run", run, "must be a whole number of at least 1")


def check_cutoff(field: str, moment: Any) -> datetime:
    """``moment`` in UTC; ``ValidationError`` naming ``field`` unless it is an aware
    datetime."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValidationError(field, moment, "must be a timezone-aware datetime")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # an offset that takes it past year 1 or 9999
        raise ValidationError(field, moment, "is out of range of a UTC datetime") from None
