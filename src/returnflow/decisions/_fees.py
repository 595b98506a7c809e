"""The fees a return's settlements charge: fixed, for what no payout was to bear, when
the return opens.

When a return is approved its whole return is quoted, and a fee that quote waives
because no payout is to bear it (``fees_only_from_payout``: an exchanged line's
restocking fee, the return shipping fee beyond the payout) is left off: noted
(:func:`note_left_off`), and never charged by a later settlement (:func:`left_off`), even
when QC cancels the exchange and its accepted units are paid out after all. In native
mode the platform return is opened without it, and Shopify has no call to add a fee to a
return (nor to take one off: ``removeFromReturn`` removes line items only); in ``tags``
mode the same rule keeps the money the same in both modes, and the same whenever the
refund is paid (a payout made early cannot take a fee the whole return would not).

Pure: reads settlements and history; never calls a port.
"""

from __future__ import annotations

from collections.abc import Sequence

from returnflow.decisions.change import Change
from returnflow.domain.fees import LeftOff
from returnflow.domain.model import HistoryEntry, OutcomeKind, ReturnLine, ReturnRecord
from returnflow.domain.money import Money
from returnflow.domain.settlement import Settlement

__all__ = [
    "LEFT_OFF",
    "apart_note",
    "charges_shipping",
    "left_off",
    "note_left_off",
    "opening_fees",
    "shares_paid",
    "took_shipping_fee",
]

LEFT_OFF = "fees_left_off"
"""The history event of the fees a return's opening quote left off."""


def opening_fees(quote: Settlement) -> tuple[dict[str, Money], dict[str, object]]:
    """The restocking fee of each order line the return opens with, from the ``quote`` of
    its whole return, and the fees it leaves off (keys ``restocking``, by return line
    id, and ``return_shipping``; empty when none).

    A restocking fee waived because no payout covers it is an exchanged line's (refunded
    and credited lines pay their own): the part waived comes off the exchanged lines in
    the quote's order. The part of the return shipping fee left off is that of the
    exchanged units' shares the quote's payout does not bear
    (``Settlement.shipping_left_off``): a refunded or credited unit's share beyond its own
    payout is waived by every settlement alike."""
    zero = Money.zero(quote.currency)
    waived = Money.sum((part.restocking_fee for part in quote.lines), quote.currency)
    waived = waived - (quote.restocking_fee - quote.restocking_owed)  # (owed: charged apart)
    shipping_off = quote.shipping_left_off  # the exchanged units' shares no payout bears
    fees: dict[str, Money] = {}
    off_by_line: dict[str, str] = {}
    for part in quote.lines:
        off = min(waived, part.restocking_fee) if part.outcome is OutcomeKind.EXCHANGE else zero
        waived = waived - off
        fees[part.order_line_id] = fees.get(part.order_line_id, zero) + part.restocking_fee - off
        if off:
            off_by_line[part.line_id] = str(off)
    left: dict[str, object] = {"restocking": off_by_line} if off_by_line else {}
    if shipping_off:
        left["return_shipping"] = str(shipping_off)
    return fees, left


def note_left_off(change: Change, quote: Settlement) -> dict[str, Money]:
    """Note the fees the ``quote`` of the opening return leaves off (none: no note), and
    return the restocking fee of each order line it opens with (:func:`opening_fees`)."""
    fees, left = opening_fees(quote)
    if left:
        change.note(LEFT_OFF, left)
    return fees


def left_off(record: ReturnRecord) -> LeftOff | None:
    """The fees the return's opening left off, as last noted (:func:`note_left_off`);
    ``None`` when none were."""
    noted = next((e for e in reversed(record.history) if e.event == LEFT_OFF), None)
    if noted is None:
        return None
    lines = noted.payload.get("restocking") or {}
    shipping = noted.payload.get("return_shipping")
    return LeftOff(
        {str(line_id): _money(off, record.currency) for line_id, off in lines.items()},
        _money(shipping, record.currency) if shipping else None,
    )


def took_shipping_fee(history: Sequence[HistoryEntry]) -> bool:
    """Whether a settlement in ``history`` took the return shipping fee: a change's (its
    processing call takes the fee too) or a return's own (not the one it was reset from)."""
    return any(e.event == "settled" and "return_shipping_fee" in e.payload for e in history)


def charges_shipping(record: ReturnRecord) -> bool:
    """Whether the return's settlements charge the return shipping fee: not those of a
    return reset from one whose settlements charged it (:mod:`returnflow.decisions.reset`
    notes it with ``created_by_reset``)."""
    return not any(
        e.event == "created_by_reset" and e.payload.get("return_shipping_fee")
        for e in record.history
    )


APART = "shipping_apart"
"""The key, in a settlement's note, of the units whose shares of the return shipping fee
it charged (or waived) apart from any payout: they were never to settle."""


def apart_note(parts: Sequence[tuple[ReturnLine, int, int]]) -> str:
    """``parts`` (line, units, first unit) as a settlement notes them: ``"R1:1:1, R2:0:2"``."""
    return ", ".join(f"{line.id}:{start}:{units}" for line, units, start in parts if units)


def shares_paid(history: Sequence[HistoryEntry]) -> frozenset[tuple[str, int]]:
    """``(return line id, unit)`` whose shares of the return shipping fee a settlement in
    ``history`` charged apart (:func:`apart_note`): no later settlement takes them again
    (the units came after all, the return reopened)."""
    paid: set[tuple[str, int]] = set()
    for entry in history:
        if entry.event != "settled" or not entry.payload.get(APART):
            continue
        for item in str(entry.payload[APART]).split(", "):
            line_id, start, units = item.rsplit(":", 2)
            paid.update((line_id, unit) for unit in range(int(start), int(start) + int(units)))
    return frozenset(paid)


def _money(text: object, currency: str) -> Money:
    """An amount as notes show it (``"15.00 EUR"``)."""
    return Money(str(text).split(" ")[0], currency)
