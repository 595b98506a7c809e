"""Returnflow's money for a processing call in the platform's terms (native mode,
:mod:`returnflow.decisions.platform`): what the customer paid for the return, the
outbound shipping a platform return never carries, the whole return netted, and the
return shipping fee a call's units bear.

Pure: reads the change, its history and the planned effects; never calls a port.
"""

from __future__ import annotations

from collections.abc import Sequence

from returnflow.decisions import exchange
from returnflow.decisions.change import Change
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.domain.money import Money
from returnflow.lifecycle import effects as fx

__all__ = ["outbound", "owed", "owed_apart", "restocking_owed", "shipping_fee_share", "whole"]


def _money(text: str, currency: str) -> Money:
    """An amount as notes show it (``"15.00 EUR"``)."""
    return Money(text.split(" ")[0], currency)


def owed(change: Change, planned: Sequence[fx.Effect]) -> Money:
    """What the customer pays for the whole return: prepaid, charged by settlements (and in
    this change), less what this change gives back of it (not a captured authorization
    given back: it never paid the return's balance)."""
    record = change.record
    zero = Money.zero(record.currency)
    charged = Money.sum(
        (e.amount for e in planned if isinstance(e, fx.ChargeBalance) and not e.prepay),
        record.currency,
    )
    back = Money.sum(
        (e.amount for e in planned if isinstance(e, fx.RefundBalance)), record.currency
    )
    captured = [e for e in change.history if e.event == "capture_refunded"]
    back = back - Money.sum(
        (_money(str(e.payload["amount"]), record.currency) for e in captured), record.currency
    )
    return (record.balance_paid or zero) + (record.balance_charged or zero) + charged - back


def outbound(history: Sequence[HistoryEntry], currency: str) -> Money:
    """The exchange's outbound shipping the settlements of ``history`` took from the units'
    value: a platform return never carries it, so its figure for the units is that much more."""
    return Money.sum(
        (
            _money(str(e.payload["exchange_shipping"]), currency)
            for e in history
            if e.event == "settled" and "exchange_shipping" in e.payload
        ),
        currency,
    )


def _prepaid_shipping(history: Sequence[HistoryEntry], currency: str) -> Money:
    """The exchange's outbound shipping in the balance asked up front."""
    return Money.sum(
        (
            _money(str(e.payload["exchange_shipping"]), currency)
            for e in history
            if e.event == "require_payment" and "exchange_shipping" in e.payload
        ),
        currency,
    )


def whole(
    record: ReturnRecord, paid_out: Money, charged: Money, *, paid_apart: Money | None = None
) -> tuple[Money, Money]:
    """Returnflow's refund and owed for the whole return in the platform's terms: netted
    (Shopify's ``suggestedFinancialOutcome`` is one refund or one balance, where returnflow
    may charge a fee and refund apart), less the exchange's outbound shipping the customer's
    balance or payout paid, which a platform return never carries (Shopify's ``ReturnInput``
    has no shipping for it). ``paid_apart``: what an instant exchange's captured
    authorization paid of the items (``ProcessPlatformReturn.owed_paid_apart``); the capture
    pays the items first, then their outbound shipping, so what it took beyond them is
    outbound shipping no balance paid."""
    zero = Money.zero(record.currency)
    shipped = outbound(record.history, record.currency)
    # the outbound shipping a payout paid where capture and balance fell short (completion)
    settled = [e for e in record.history if e.event == "settled" and "exchange_total" in e.payload]
    shipping = [
        _money(str(e.payload["outbound_unpaid"]), record.currency)
        if "outbound_unpaid" in e.payload
        else zero
        for e in settled
    ]
    by_payout = Money.sum(shipping, record.currency)
    settled_items = any(
        _money(str(e.payload["exchange_total"]), record.currency) > paid
        for e, paid in zip(settled, shipping, strict=True)
    )
    if (
        not shipped
        and not settled_items
        and any(x.status != "cancelled" for x in record.exchange_lines)
    ):
        # no settlement took it from the units (they never came: a captured authorization
        # paid for the items), so a balance paid up front paid it, and a payout what that
        # left (nothing asked up front: what completion charged for it, from a payout or
        # as a balance, outbound_unpaid); one that settled items and took none waived it,
        # and gave back what was paid up front for it; what a capture took beyond the
        # items paid it first, and the balance asked up front for it paid the fees instead
        by_capture = max(_captured(record) - (paid_apart or zero), zero)
        asked = _prepaid_shipping(record.history, record.currency)
        prepaid = max(asked - min(asked, by_capture), by_payout)
        shipped = min(prepaid, max(charged, zero) + by_payout)
    elif settled_items:
        # the other lines' payout paid the outbound shipping of items a capture paid for
        shipped = shipped + by_payout
    net = paid_out - charged + shipped
    return (net, zero) if net >= zero else (zero, -net)


def _captured(record: ReturnRecord) -> Money:
    """What an instant exchange's captured authorization took and kept (zero: none, or it
    was given back when the units came)."""
    if any(e.event == "capture_refunded" for e in record.history):
        return Money.zero(record.currency)
    return exchange.captured(record) or Money.zero(record.currency)


def shipping_fee_share(history: Sequence[HistoryEntry], currency: str, *, whole: bool) -> Money:
    """The return shipping fee a processing call's figure counts, from the settlements of
    ``history``: for one call of several (``history``: this change's), the shares its
    units' payouts bear (each unit pays its own share,
    :func:`~returnflow.domain.fees.unit_shipping_fees`; what its payout does not bear is
    owed apart, ``shipping_owed``); for the whole return processed at once (``history``:
    the return's), every share its settlements charged, those owed too (the platform nets
    them), not those waived. Shopify's ``returnCalculate`` takes the fee as an amount
    (``CalculateReturnInput.returnShippingFee``), so the call's share is asked for as it
    is."""
    charged = owed = Money.zero(currency)
    for e in history:
        if e.event != "settled":
            continue
        if "return_shipping_fee" in e.payload:
            charged = charged + _money(str(e.payload["return_shipping_fee"]), currency)
        if "shipping_owed" in e.payload:
            owed = owed + _money(str(e.payload["shipping_owed"]), currency)
    return charged if whole else charged - owed


def owed_apart(history: Sequence[HistoryEntry], currency: str) -> Money:
    """The shares of the return shipping fee and of the exchanged lines' restocking fee the
    settlements of ``history`` left owed, no payout bearing them (``shipping_owed``,
    ``restocking_owed``): charged apart, and not in the platform's figure for a call."""
    return Money.sum(
        (
            _money(str(e.payload[key]), currency)
            for e in history
            if e.event == "settled"
            for key in ("shipping_owed", "restocking_owed")
            if key in e.payload
        ),
        currency,
    )


def restocking_owed(history: Sequence[HistoryEntry], currency: str) -> Money:
    """The shares of the exchanged lines' restocking fee the settlements of ``history``
    left owed (``restocking_owed``): charged apart, and never on the platform return (its
    lines carry the shares their payouts bear), so not in its figure for the whole return
    either."""
    return Money.sum(
        (
            _money(str(e.payload["restocking_owed"]), currency)
            for e in history
            if e.event == "settled" and "restocking_owed" in e.payload
        ),
        currency,
    )
