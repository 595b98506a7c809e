"""How every durable store turns an outbox row into an :class:`OutboxEntry`: the columns it
reads (:data:`ENTRY_COLUMNS`, in order) and one builder, so that a damaged row (a result that
is not JSON, counts that are no whole numbers or below zero, a status or times the store did
not write, a body of another effect than its key names) is an
:class:`~returnflow.errors.UnreadableRecord` naming its return and effect on each of them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from returnflow.errors import UnreadableRecord
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import OutboxEntry
from returnflow.stores._errors import readable_effect

__all__ = ["ENTRY_COLUMNS", "STATUSES", "readable_entry"]

STATUSES = frozenset({"pending", "done", "failed"})
"""The statuses a store writes on an outbox row."""

ENTRY_COLUMNS = (
    "seq, body, status, attempts, last_error, result, updated_at, next_attempt_at, "
    "claimed_until, claimed_by, key, shop, return_id"
)
"""The outbox columns :func:`readable_entry` reads, in its order."""


def _as_stored(value: Any) -> datetime | None:
    """A time column a driver reads as a :class:`datetime` (or ``NULL``) already."""
    if value is None or isinstance(value, datetime):
        return value
    raise TypeError(f"a time column holds {type(value).__name__}")


def _no_constant(name: str) -> object:
    """``NaN`` and the infinities, which JSON has not (nor a result the store wrote)."""
    raise ValueError(f"a result holds {name}")


def readable_entry(
    row: Sequence[Any],
    effect: Effect | None = None,
    moment: Callable[[Any], datetime | None] = _as_stored,
) -> OutboxEntry:
    """The :class:`OutboxEntry` of an outbox row (:data:`ENTRY_COLUMNS`, in order); its
    effect ``effect`` when the caller holds it, else parsed from the row; ``moment`` reads
    a time column (``None`` for ``NULL``; :class:`TypeError` or :class:`ValueError` for one
    the store did not write). A damaged row (also: a status not in :data:`STATUSES`, attempts
    that are no whole number or below zero, a body of another effect than the row's key,
    shop and return, ``NaN`` in its result) is an
    :class:`~returnflow.errors.UnreadableRecord` naming its shop, return and effect key."""
    key, shop, return_id = row[10], row[11], row[12]
    if effect is None:
        effect = readable_effect(row[1], key, shop, return_id)
        if (effect.key, effect.shop, effect.return_id) != (key, shop, return_id):
            raise UnreadableRecord(
                shop, return_id, f"its effect {key}: its body is of {effect.key!r}"[:300]
            )
    if row[2] not in STATUSES or type(row[3]) is not int or row[3] < 0:
        raise UnreadableRecord(
            shop,
            return_id,
            f"its effect {key}: status {row[2]!r}, attempts {row[3]!r}"[:300],
        )
    try:
        # by position, in the fields' order; a time not set is no call (every ``moment``
        # reads NULL as None)
        return OutboxEntry(
            effect,
            int(row[0]),
            row[2],
            int(row[3]),
            row[4],
            None if row[5] is None else json.loads(row[5], parse_constant=_no_constant),
            None if row[6] is None else moment(row[6]),
            None if row[7] is None else moment(row[7]),
            None if row[8] is None else moment(row[8]),
            row[9],
        )
    # a damaged row: its times, counts or result (JSON nested past Python's recursion limit)
    except (TypeError, ValueError, RecursionError) as error:
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        raise UnreadableRecord(shop, return_id, f"its effect {key}: {reason}") from error
