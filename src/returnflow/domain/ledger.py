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
return; every shipped store and the store contract suite follow it: a new return takes its held
units; a return that ends unsettled gives back all but those it still holds.

The shipped stores keep one row per held unit, keyed by ``(shop, order, order line, unit)``
(SQLite's and PostgreSQL's ``order_units``; a dict in memory): the key itself refuses a
second holder inside the commit's transaction, with no read-then-write; two returns of one
order that take different units never conflict (a version per order would make one of them
retry); freeing units is deleting the return's rows. A host's store may keep a version per
order instead: :class:`~returnflow.testing.StoreContract` tests what a store does, not how.

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
    """The units ``record`` holds, or settled. A return that ended unsettled keeps only the
    units it paid for (a refund paid early, before QC rejected the unit) and its reset did
    not hand on: a unit paid for is never free again. A line settles its units in order
    (the first ``settled`` of ``units``); a reset hands on the first ``accepted``."""
    if record.status not in ENDED_UNSETTLED:
        return frozenset((line.order_line_id, unit) for line in record.lines for unit in line.units)
    return frozenset(
        (line.order_line_id, unit)
        for line in record.lines
        for unit in line.units[(line.accepted if record.status == "reset" else 0) : line.settled]
    )


def claimed_units(records: Iterable[ReturnRecord]) -> dict[str, set[int]]:
    """Units of each order line held by ``records`` (the returns of one order)."""
    claimed: dict[str, set[int]] = {}
    for record in records:
        for line_id, unit in held_units(record):
            claimed.setdefault(line_id, set()).add(unit)
    return claimed
