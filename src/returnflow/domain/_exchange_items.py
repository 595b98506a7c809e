"""What an exchange's new items cost, for a settlement
(:func:`returnflow.domain.settlement.settle`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from returnflow.domain.model import ExchangeLine
from returnflow.domain.money import Money
from returnflow.errors import CurrencyMismatch

if TYPE_CHECKING:
    from returnflow.domain.settlement import LineSettlement

__all__ = ["cost"]


def cost(
    currency: str,
    exchanged: Mapping[str, LineSettlement],
    exchange_lines: Sequence[ExchangeLine],
    items_unpaid: Money | None,
) -> tuple[Money, bool]:
    """What the new items of ``exchange_lines`` that the ``exchanged`` parts (by return line
    id) pay for cost, with ``items_unpaid`` (what new items no part pays for still cost),
    and whether any of them is priced (paid for by a part). An exchange line without a
    price is an even exchange: the new item costs what the returned units were worth.
    Raises :class:`~returnflow.errors.CurrencyMismatch` for a price in another currency."""
    total = items_unpaid or Money.zero(currency)
    priced = False
    for item in exchange_lines:
        part = exchanged.get(item.return_line_id)
        if part is None:
            continue
        priced = True
        if item.unit_price is None:  # an even exchange: the new item costs what was returned
            total = total + part.value
            continue
        if item.unit_price.currency != currency:
            raise CurrencyMismatch(
                "exchange.unit_price.currency",
                item.unit_price.currency,
                f"the return is in {currency}",
            )
        total = total + item.unit_price * item.quantity
    return total, priced
