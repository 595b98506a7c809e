"""What each unit of an order was paid (and its tax), what the order charged besides its
items (shipping, duties) shared over its units, and a return line giving its units'
shares back. Re-exported by
:mod:`returnflow.domain.settlement`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from returnflow.domain.model import Exchange, OrderSnapshot, ReturnLine
from returnflow.domain.money import Money

__all__ = [
    "duty_shares",
    "original_charges",
    "unit_amounts",
    "unit_taxes",
    "with_original_charges",
]


def unit_amounts(order: OrderSnapshot) -> dict[str, tuple[Money, ...]]:
    """The paid amount of every unit of every line of ``order``, exact to the minor unit:
    the line's paid total (:meth:`~returnflow.domain.order.OrderSnapshot.paid_by_line`,
    tax included in both modes) split over its units."""
    paid = order.paid_by_line()
    return {line.id: paid[line.id].split(line.quantity) for line in order.lines}


def unit_taxes(order: OrderSnapshot) -> dict[str, tuple[Money, ...]]:
    """The tax part of every unit's paid amount (:func:`unit_amounts`): the line's tax split
    over its units the same way (the larger parts first), zero where a line has none.

    >>> from datetime import datetime, timezone
    >>> from returnflow.domain.model import OrderLine, OrderSnapshot
    >>> vat = OrderSnapshot(
    ...     id="1", shop="s", created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ...     currency="EUR", taxes_included=True,
    ...     lines=[OrderLine(id="A", sku="A", variant_id="a", quantity=1,
    ...                      unit_price=Money("10.00", "EUR"), tax=Money("0.91", "EUR"))])
    >>> unit_amounts(vat), unit_taxes(vat)
    ({'A': (Money('10.00', 'EUR'),)}, {'A': (Money('0.91', 'EUR'),)})
    """
    zero = Money.zero(order.currency)
    return {line.id: (line.tax or zero).split(line.quantity) for line in order.lines}


def original_charges(order: OrderSnapshot) -> dict[str, tuple[Money, ...]]:
    """Every unit's share of what the order charged besides its items, to the cent: the
    shipping (``shipping_price``, its tax added when prices exclude tax), the tax part of
    it, and the duties, each allocated over every unit of the order in proportion to the
    unit's paid amount (:func:`unit_amounts`) with the
    largest-remainder method, so that the shares of all units add up to exactly what was
    charged (when the lines carry their own duties, each unit's duties are its line's,
    :func:`duty_shares`). Keys ``shipping``, ``shipping_tax`` and ``duties`` map to the
    shares in order line, then unit order.

    >>> from datetime import datetime, timezone
    >>> from returnflow.domain.model import OrderLine, OrderSnapshot
    >>> order = OrderSnapshot(
    ...     id="1", shop="s", created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ...     currency="EUR", shipping_price=Money("10.00", "EUR"),
    ...     lines=[OrderLine(id="A", sku="A", variant_id="a", quantity=3,
    ...                      unit_price=Money("20.00", "EUR"))])
    >>> [str(share) for share in original_charges(order)["shipping"]]
    ['3.34 EUR', '3.33 EUR', '3.33 EUR']
    """
    zero = Money.zero(order.currency)
    paid = [amount for amounts in unit_amounts(order).values() for amount in amounts]
    weights: list[int | Decimal] = [amount.amount for amount in paid]
    if not any(weights):
        weights = [1 for _ in paid]
    tax = order.shipping_tax or zero
    shipping = order.shipping_price or zero
    if not order.taxes_included:
        shipping = shipping + tax
    by_line = duty_shares(order)
    duties = (order.duties or zero).allocate(weights)
    if any(line.duties for line in order.lines):  # each line's own duties, by its units
        duties = tuple(
            Money.sum((shares[unit] for _, shares in by_line[line.id]), order.currency)
            for line in order.lines
            for unit in range(line.quantity)
        )
    return {
        "shipping": shipping.allocate(weights),
        "shipping_tax": tax.allocate(weights),
        "duties": duties,
    }


def duty_shares(order: OrderSnapshot) -> dict[str, tuple[tuple[str, tuple[Money, ...]], ...]]:
    """Each order line's duties (:attr:`~returnflow.domain.order.OrderLine.duties`) by the
    platform's duty id, each split evenly over the line's units to the cent (the first
    units take the odd cents), as a platform gives a duty back in proportion to the units
    returned."""
    return {
        line.id: tuple((duty.id, duty.amount.split(line.quantity)) for duty in line.duties)
        for line in order.lines
    }


def with_original_charges(
    order: OrderSnapshot, line: ReturnLine, *, shipping: bool, duties: bool
) -> ReturnLine:
    """``line`` giving back its units' share of the order's shipping (``shipping``) and of
    its duties (``duties``) with them (:func:`original_charges`); a share once given is
    kept. An exchanged line gives back neither: its new items ship too."""
    if isinstance(line.outcome, Exchange) or not (shipping or duties):
        return line
    shares = original_charges(order)
    first = 0
    for order_line in order.lines:
        if order_line.id == line.order_line_id:
            break
        first += order_line.quantity
    picked = [first + unit for unit in line.units]
    changes: dict[str, Any] = {}
    if shipping and not line.unit_shipping:
        changes["unit_shipping"] = tuple(shares["shipping"][index] for index in picked)
        changes["unit_shipping_taxes"] = tuple(shares["shipping_tax"][index] for index in picked)
    if duties and not line.unit_duties:
        changes["unit_duties"] = tuple(shares["duties"][index] for index in picked)
        changes["duty_shares"] = tuple(
            (duty, tuple(each[unit] for unit in line.units))
            for duty, each in duty_shares(order).get(line.order_line_id, ())
        )
    return attrs.evolve(line, **changes) if changes else line
