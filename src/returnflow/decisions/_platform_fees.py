"""Native mode: the fees a platform return carries from its opening.

Shopify's ``Return`` takes a restocking fee per line and a return shipping fee when it is
opened, and has no call to add a fee later or to take one off (``removeFromReturn``
removes line items only). So the fees it is opened with are the fees the return's
settlements charge: a fee the opening's quote waived because no payout was to bear it
(``fees_only_from_payout``: an exchanged line's restocking fee, the return shipping fee
beyond the payout) is left off the platform return, noted on the opening, and never
charged by a later settlement (:func:`left_off`), even when QC cancels the exchange and
its units are paid out after all.

Pure: reads settlements and history; never calls a port.
"""

from __future__ import annotations

from collections.abc import Sequence

from returnflow.domain.fees import LeftOff
from returnflow.domain.model import HistoryEntry, OutcomeKind, ReturnRecord
from returnflow.domain.money import Money
from returnflow.domain.settlement import Settlement

__all__ = ["OPENING", "left_off", "opening_fees", "took_shipping_fee"]

OPENING = "platform_return_opening"
"""The history event of a platform return opened (or asked to open)."""


def opening_fees(quote: Settlement) -> tuple[dict[str, Money], dict[str, object]]:
    """The restocking fee of each order line a platform return is opened with, from the
    ``quote`` of its whole return, and what the opening's note records of the fees left
    off (keys ``restocking_left_off``, by return line id, and ``shipping_left_off``).

    A restocking fee waived because no payout covers it is an exchanged line's (refunded
    and credited lines pay their own): the part waived comes off the exchanged lines in
    the quote's order; the part of the return shipping fee waived is the rest of what the
    quote waived."""
    zero = Money.zero(quote.currency)
    waived = Money.sum((part.restocking_fee for part in quote.lines), quote.currency)
    waived = waived - quote.restocking_fee
    shipping_off = quote.fees_waived - waived
    fees: dict[str, Money] = {}
    off_by_line: dict[str, str] = {}
    for part in quote.lines:
        off = min(waived, part.restocking_fee) if part.outcome is OutcomeKind.EXCHANGE else zero
        waived = waived - off
        fees[part.order_line_id] = fees.get(part.order_line_id, zero) + part.restocking_fee - off
        if off:
            off_by_line[part.line_id] = str(off)
    note: dict[str, object] = {"restocking_left_off": off_by_line} if off_by_line else {}
    if shipping_off:
        note["shipping_left_off"] = str(shipping_off)
    return fees, note


def left_off(record: ReturnRecord) -> LeftOff | None:
    """The parts of the fees the return's platform return was opened without, as its
    opening noted them (:func:`opening_fees`); ``None`` when nothing was left off (or no
    platform return was opened)."""
    opening = next((e for e in reversed(record.history) if e.event == OPENING), None)
    if opening is None:
        return None
    lines = opening.payload.get("restocking_left_off") or {}
    shipping = opening.payload.get("shipping_left_off")
    if not lines and not shipping:
        return None
    return LeftOff(
        {str(line_id): _money(off, record.currency) for line_id, off in lines.items()},
        _money(shipping, record.currency) if shipping else None,
    )


def took_shipping_fee(history: Sequence[HistoryEntry]) -> bool:
    """Whether a settlement in ``history`` took the return shipping fee: a change's (its
    processing call takes the fee too) or a return's own (not the one it was reset from)."""
    return any(e.event == "settled" and "return_shipping_fee" in e.payload for e in history)


def _money(text: object, currency: str) -> Money:
    """An amount as notes show it (``"15.00 EUR"``)."""
    return Money(str(text).split(" ")[0], currency)
