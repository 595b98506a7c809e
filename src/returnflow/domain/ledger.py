"""The order-level ledger of units: which return holds which unit of an order line.

Every unit of every order line is, at any time, exactly one of: not shipped (no fulfillment
covers it), free to return, held by one open return, or settled by a closed one (refunded,
credited, exchanged or kept). A return holds the units of its lines (``ReturnLine.units``,
indices among the order line's units) from the commit that stores it until it ends without
settling them (declined, cancelled, expired, or reset: a reset's new return takes over the
units it carries, in the same commit).

The store keeps the ledger in the same atomic commit as the returns, so that two returns
racing for one unit cannot both be stored: the second commit fails with
:class:`~returnflow.errors.UnitsTaken`. :func:`held_units` is what a store records for a
return; every shipped store and the store contract suite follow it.

>>> sorted(ENDED_UNSETTLED)
['cancelled', 'declined', 'expired', 'reset']
"""

from __future__ import annotations

from collections.abc import Iterable

from returnflow.domain.model import ReturnRecord

__all__ = ["ENDED_UNSETTLED", "UnitKey", "claimed_units", "held_units"]

ENDED_UNSETTLED = frozenset({"declined", "cancelled", "expired", "reset"})
"""Statuses of a return that ended without settling its units: it holds none."""

UnitKey = tuple[str, int]
"""A unit of an order: ``(order_line_id, unit index)``."""


def held_units(record: ReturnRecord) -> frozenset[UnitKey]:
    """The units ``record`` holds (or settled): none once it ended unsettled."""
    if record.status in ENDED_UNSETTLED:
        return frozenset()
    return frozenset((line.order_line_id, unit) for line in record.lines for unit in line.units)


def claimed_units(records: Iterable[ReturnRecord]) -> dict[str, set[int]]:
    """Units of each order line held by ``records`` (the returns of one order)."""
    claimed: dict[str, set[int]] = {}
    for record in records:
        for line_id, unit in held_units(record):
            claimed.setdefault(line_id, set()).add(unit)
    return claimed
