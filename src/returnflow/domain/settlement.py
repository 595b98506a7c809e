"""Settlement: what returned units are worth, what fees keep, and what each outcome pays.

Per unit, the refundable amount is what the customer actually paid for it: the unit price,
less its share of the line's discount and of the order's discount, plus its tax. Shares are
allocated with the largest-remainder method, so returning every unit of an order, in any
number of returns, gives back exactly what was paid, to the minor unit.

>>> from datetime import datetime, timezone
>>> from returnflow.domain.model import OrderLine, OrderSnapshot
>>> order = OrderSnapshot(
...     id="1", shop="s", created_at=datetime(2026, 1, 1, tzinfo=timezone.utc), currency="EUR",
...     fulfilled_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
...     order_discount=Money("10.00", "EUR"),
...     lines=[OrderLine(id="A", sku="A", variant_id="a", quantity=3,
...                      unit_price=Money("20.00", "EUR")),
...            OrderLine(id="B", sku="B", variant_id="b", quantity=1,
...                      unit_price=Money("40.00", "EUR"))])
>>> units = unit_amounts(order)
>>> [str(amount) for amount in units["A"]], [str(amount) for amount in units["B"]]
(['18.00 EUR', '18.00 EUR', '18.00 EUR'], ['36.00 EUR'])

Fees (Shopify's return shipping fee per return, restocking fee per line, in
:mod:`returnflow.domain.fees`) are taken from what is paid back, and what it does not cover
is owed by the customer (or waived, ``FeePolicy.fees_only_from_payout``); several fees of
one type are one lump sum. An exchange's new items may cost outbound shipping.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from returnflow.domain import _exchange_items as exchange_items
from returnflow.domain import _exchange_restocking as exchange_restocking
from returnflow.domain import _from_payout as from_payout
from returnflow.domain import _shipping_shares as shipping_shares
from returnflow.domain._original_charges import (
    duty_shares,
    original_charges,
    unit_amounts,
    unit_taxes,
    with_original_charges,
)
from returnflow.domain.fees import (
    FeePolicy,
    Fixed,
    LeftOff,
    Percent,
    charged,
    tax_of,
    tax_share,
    unit_fee_taxes,
    unit_restocking_fees,
)
from returnflow.domain.model import (
    ExchangeLine,
    Keep,
    OutcomeKind,
    ReturnLine,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.errors import CurrencyMismatch

__all__ = [
    "Document",
    "FeePolicy",
    "Fixed",
    "LineSettlement",
    "Percent",
    "Settlement",
    "duty_shares",
    "original_charges",
    "settle",
    "unit_amounts",
    "unit_restocking_fees",
    "unit_taxes",
    "with_original_charges",
]


# -- the settlement ---------------------------------------------------------------------------


class Document(str, enum.Enum):
    """The ERP document an outcome becomes (seed 004)."""

    CREDIT_MEMO = "credit_memo"
    """Store credit / gift card."""
    REFUNDED_CREDIT_MEMO = "refunded_credit_memo"
    """A refund to the original payment."""
    EXCHANGE_ORDER = "exchange_order"
    """The new items of an exchange, with their outbound shipping."""
    INVOICE = "invoice"
    """Fees the payout did not cover, charged to the customer."""


@attrs.frozen
class LineSettlement:
    """``units`` of one return line: their paid ``value``, the restocking fee that applies,
    and what goes to the line's outcome (``amount``; the bonus of store credit is
    separate). A refunded or credited line pays its own restocking fee and its units'
    shares of the exchanged lines' (``amount`` is the value less the fee); an exchanged
    line's whole value pays for the new items, its fee carried by the units that pay out
    (none bearing fees: taken from the exchange's own difference, or owed)."""

    line_id: str
    order_line_id: str
    units: int
    start: int
    outcome: OutcomeKind
    value: Money
    restocking_fee: Money
    amount: Money
    bonus: Money
    tax: Money
    """The tax part of ``value``."""
    restocking_fee_tax: Money
    """The tax part of ``restocking_fee``."""
    original_shipping: Money
    """The units' share of the order's shipping given back with them (in ``amount``)."""
    original_shipping_tax: Money
    """The tax part of ``original_shipping``."""
    duties: Money
    """The units' share of the order's duties given back with them (in ``amount``)."""
    return_shipping_fee: Money
    """The units' shares of the return shipping fee taken from ``amount`` (a refunded or
    credited part's; an exchanged part's are taken from the return's payout)."""
    return_shipping_fee_tax: Money
    """The tax part of ``return_shipping_fee``."""
    return_shipping_fee_left: Money
    """The units' shares their own payout does not bear: owed when they settle (or waived
    under ``fees_only_from_payout``)."""


@attrs.frozen
class Settlement:
    """What a return (or part of one) settles to.

    ``refund`` goes to the original payment, ``store_credit`` (with ``bonus``) to a gift
    card; ``exchange_credit`` (the exchanged units' worth) pays for ``exchange_total`` of
    new items and their ``exchange_shipping``: the rest of it is in ``refund`` (or
    ``store_credit``), a shortfall is ``balance_due`` from the customer. Fees
    (``restocking_fee``, ``return_shipping_fee``: what is charged) are taken from the
    payout first; the part it does not cover (``fees_owed``) is in ``balance_due``, or
    ``fees_waived`` under ``FeePolicy.fees_only_from_payout``. What the customer prepaid
    and no longer owes is ``balance_refund``, given back through the payment processor
    that took it.

    Every amount adds up: value of the units + ``original_shipping`` + ``duties`` +
    prepaid used + ``balance_due`` = ``refund`` + ``store_credit`` + ``exchange_total`` +
    ``exchange_shipping`` + ``fees``.
    """

    currency: str
    lines: tuple[LineSettlement, ...]
    restocking_fee: Money
    return_shipping_fee: Money
    refund: Money
    store_credit: Money
    bonus: Money
    exchange_credit: Money
    exchange_total: Money
    balance_due: Money
    documents: tuple[tuple[Document, Money], ...]
    balance_refund: Money
    shipping_from_refund: Money
    """The part of ``return_shipping_fee`` taken from the refund (the rest from credit or
    owed)."""
    exchange_shipping: Money
    """The outbound shipping of the exchange's new items."""
    fees_owed: Money
    """The part of the fees the payout did not cover: in ``balance_due``."""
    fees_waived: Money
    """The part of the fees waived because the payout did not cover it
    (``FeePolicy.fees_only_from_payout``)."""
    shipping_owed: Money
    """The part of ``return_shipping_fee`` in ``fees_owed``."""
    restocking_owed: Money
    """The part of ``restocking_fee`` in ``fees_owed``: the shares of the exchanged lines'
    fee no payout bears (units never to settle, a unit paying out less than its shares)."""
    refund_tax: Money
    """The tax part of ``refund``: that of the units it pays back (and of the part of an
    exchange credit it pays back), less that of the fees taken from it."""
    store_credit_tax: Money
    """The tax part of ``store_credit``, the same way (the bonus carries none)."""
    exchange_credit_tax: Money
    """The tax part of ``exchange_credit``."""
    restocking_fee_tax: Money
    """The tax part of ``restocking_fee``."""
    return_shipping_fee_tax: Money
    """The tax part of ``return_shipping_fee``."""
    exchange_shipping_tax: Money
    """The tax part of ``exchange_shipping``."""
    fees_owed_tax: Money
    """The tax part of ``fees_owed`` (the invoice)."""
    original_shipping: Money
    """The share of the order's shipping given back (in ``refund`` / ``store_credit``)."""
    duties: Money
    """The share of the order's duties given back (in ``refund`` / ``store_credit``)."""
    shipping_left_off: Money | None = None
    """Under ``fees_only_from_payout``: the part of the return shipping fee the return's
    payout does not bear (waived) beside the units' shares (a quote of a return with an
    exchange: what is left of the whole payout once the exchange's shortfall and the
    exchanged lines' restocking are paid bears the fee; an exchanged unit's share the
    payout does not cover): what a return opened on this quote is opened without
    (``LeftOff.return_shipping``)."""
    rules: tuple[str, ...] = ()
    """In a quote: the merchant rules that fired, each with its lines, why and what it did
    (:meth:`returnflow.domain.rules.Firing.explain`)."""

    @property
    def tax(self) -> Money:
        """The tax part of the returned units' value."""
        return Money.sum((part.tax for part in self.lines), self.currency)

    @property
    def fees(self) -> Money:
        """The fees charged: from the payout or owed."""
        return self.restocking_fee + self.return_shipping_fee

    def as_dict(self) -> dict[str, Any]:
        """The amounts as strings, for history payloads and events."""
        return {
            name: str(getattr(self, name))
            for name in (
                "refund",
                "store_credit",
                "bonus",
                "restocking_fee",
                "return_shipping_fee",
                "exchange_credit",
                "exchange_total",
                "exchange_shipping",
                "fees_owed",
                "fees_waived",
                "balance_due",
                "balance_refund",
                "refund_tax",
                "store_credit_tax",
                "exchange_credit_tax",
                "restocking_fee_tax",
                "return_shipping_fee_tax",
                "exchange_shipping_tax",
                "fees_owed_tax",
                "original_shipping",
                "duties",
            )
            if getattr(self, name)
        }


def settle(
    currency: str,
    parts: Sequence[tuple[ReturnLine, int, int]],
    *,
    fees: FeePolicy,
    exchange_lines: Sequence[ExchangeLine] = (),
    charge_shipping: bool = True,
    charge_exchange_shipping: bool = True,
    difference_to: OutcomeKind = OutcomeKind.REFUND,
    prepaid: Money | None = None,
    taxes_included: bool = False,
    shipping_lines: Sequence[ReturnLine] | None = None,
    items_unpaid: Money | None = None,
    left_off: LeftOff | None = None,
    shipping_apart: Sequence[tuple[ReturnLine, int, int]] = (),
    shares_paid: Collection[tuple[str, int]] = (),
) -> Settlement:
    """Settle ``parts``: ``(line, units, start)`` = ``units`` of ``line`` from unit ``start``.

    ``exchange_lines`` are the new items the exchanged parts pay for; an exchange line
    without a price is an even exchange (the new item costs what the returned units were
    worth); ``items_unpaid``: what new items no part pays for still cost (a capture short of
    them), paid like a shortfall. ``prepaid``: what the customer paid towards the balance
    (an upsell, fees). ``charge_shipping`` / ``charge_exchange_shipping`` are false once a
    return paid its return shipping fee / its exchange's outbound shipping. ``taxes_included``:
    whether the order's prices include tax, so a fee includes its tax (else its tax is added).
    A line's restocking fee follows its units (as a platform return carries one fee per
    line): the fee of the whole line is allocated over its units to the cent
    (:func:`unit_restocking_fees`), its tax likewise (:func:`unit_fee_taxes`), and a part
    pays its units' shares, so units never settled (QC failed, never received) pay none and
    parts settled apart, in whatever order and grouping, add up to the whole line's fee.
    The return shipping fee follows the units too: it is spread once over the units of
    ``shipping_lines`` (the return's lines; ``None``: the parts' lines) that bear it
    (:func:`~returnflow.domain.fees.unit_shipping_fees`), its tax likewise, and a refunded
    or credited part pays its units' shares from its own amount, each unit at most what it
    pays out (the rest is owed, or waived under ``fees_only_from_payout``), so the money
    and the kind of money that bears the fee do not depend on the order the units settle
    in. ``shipping_apart``: units that will never settle (QC failed, never received),
    whose shares are due now, owed or waived like a fee no payout covers;
    ``shares_paid``: ``(line id, unit)`` whose shares a settlement before took apart so.
    ``left_off``: the parts of the fees the return was opened without
    (:class:`~returnflow.domain.fees.LeftOff`), which no settlement charges; a line with a
    part left off pays its units' shares of the rest.

    The order of the money: refunded and credited units pay their own shares of their
    line's restocking fee, of the exchanged lines'
    (:func:`~returnflow.domain._exchange_restocking.carried`) and of the return shipping
    fee, whenever they are paid (a share their payout does not bear is owed apart,
    ``restocking_owed``, ``shipping_owed``, or waived under ``fees_only_from_payout``);
    the exchange's difference goes to ``refund`` or ``store_credit``
    (``difference_to``), less the exchanged lines' own restocking fee (when no unit that
    pays out bears fees) and the exchanged units' shares of the return shipping fee, in
    that order, what it does not bear owed (or waived); the exchange's shortfall is taken
    from the refund, then from store credit (never the bonus), the rest owed; the prepaid
    amount pays what is owed and the rest of it is given back. A quote of a whole return
    with an exchange (``shipping_lines`` ``None``) under ``fees_only_from_payout`` spreads
    only the part of the return shipping fee the payout left by the shortfall and the
    exchanged lines' restocking bears (the rest waived, ``Settlement.shipping_left_off``).
    Besides the fees owed apart (what no payout of their own units, nor the exchange's
    difference, bears) a return either pays out or charges, never both.
    Raises :class:`~returnflow.errors.CurrencyMismatch` for an amount in another currency.
    """
    zero = Money.zero(currency)
    quote_left = zero  # a quote's part of the fee the whole payout does not bear (waived)
    if (
        shipping_lines is None
        and fees.fees_only_from_payout
        and fees.return_shipping is not None
        and charge_shipping
        and not (left_off and left_off.return_shipping)
        and any(_kind(line) is OutcomeKind.EXCHANGE for line, _, _ in parts)
    ):
        # the whole return's payout pays the exchange's shortfall and the exchanged lines'
        # restocking before the return shipping fee: what is left of it bears the fee
        before = settle(
            currency,
            parts,
            fees=fees,
            exchange_lines=exchange_lines,
            charge_shipping=False,
            charge_exchange_shipping=charge_exchange_shipping,
            difference_to=difference_to,
            taxes_included=taxes_included,
            left_off=left_off,
        )
        whole = charged(fees.return_shipping, zero, taxes_included=taxes_included)
        quote_left = whole - min(whole, before.refund + before.store_credit)
    spread = shipping_shares.spread(
        currency,
        [line for line, _, _ in parts] if shipping_lines is None else shipping_lines,
        fees,
        charge_shipping=charge_shipping,
        taxes_included=taxes_included,
        less=left_off.return_shipping if left_off and left_off.return_shipping else quote_left,
    )
    carried = exchange_restocking.carried(  # the exchanged lines' restocking, by the payout
        currency,
        [line for line, _, _ in parts] if shipping_lines is None else shipping_lines,
        fees,
        taxes_included=taxes_included,
        left_off=left_off,
    )
    pooled = pooled_tax = zero  # the exchanged units' shares: from the return's payout
    units_left = units_left_tax = zero  # units' shares their own payout does not bear
    carried_left = exchange_restocking.apart(shipping_apart, carried, shares_paid, currency)
    for line, units, start in shipping_apart:  # never to settle: owed (or waived) now
        for unit in range(start, start + units):
            share, share_tax = spread.get((line.id, unit), (zero, zero))
            if (line.id, unit) not in shares_paid:
                units_left, units_left_tax = units_left + share, units_left_tax + share_tax
    settled: list[LineSettlement] = []
    for line, units, start in parts:
        value = line.amount_for(units, start=start)
        if value.currency != currency:
            raise CurrencyMismatch("currency", value.currency, f"the return is in {currency}")
        kind = _kind(line)
        shipped_back, shipped_back_tax, duties_back = line.original_for(units, start=start)
        if kind is OutcomeKind.EXCHANGE:
            shipped_back = shipped_back_tax = duties_back = zero
        fee = fee_tax = zero
        less = left_off.restocking.get(line.id) if left_off else None  # by unit, the rest
        shares: tuple[Money, ...] = ()
        carrying = kind is OutcomeKind.EXCHANGE and bool(carried)  # the payout bears it
        if fees.restocking is not None and not fees.waived(line) and not carrying:
            shares = unit_restocking_fees(
                fees.restocking, line, taxes_included=taxes_included, less=less
            )
            fee = Money.sum(shares[start : start + units], currency)
            taxes = unit_fee_taxes(fees.restocking, shares)
            fee_tax = Money.sum(taxes[start : start + units], currency)
        bore = shipping_shares.UnitShares.none(currency)
        by_unit: dict[int, Money] = {}
        if kind is not OutcomeKind.EXCHANGE:  # its units' shares of the exchanged lines'
            span = range(start, start + units)
            bore, by_unit = exchange_restocking.take(line, span, carried, shares, shares_paid)
            fee, fee_tax = fee + bore.taken, fee_tax + bore.taken_tax
            carried_left = (carried_left[0] + bore.left, carried_left[1] + bore.left_tax)
        ship = shipping_shares.UnitShares.none(currency)
        for unit in range(start, start + units):
            share, share_tax = spread.get((line.id, unit), (zero, zero))
            if not share or (line.id, unit) in shares_paid:
                continue
            if kind is OutcomeKind.EXCHANGE:
                pooled, pooled_tax = pooled + share, pooled_tax + share_tax
                continue
            fees_before = (shares[unit] if shares else zero) + by_unit.get(unit, zero)
            ship.take(share, share_tax, exchange_restocking.room(line, unit) - fees_before)
        bonus = zero
        if isinstance(line.outcome, StoreCredit) and line.outcome.bonus and start == 0:
            bonus = line.outcome.bonus
        settled.append(
            LineSettlement(
                line_id=line.id,
                order_line_id=line.order_line_id,
                units=units,
                start=start,
                outcome=kind,
                value=value,
                restocking_fee=fee,
                amount=value
                if kind is OutcomeKind.EXCHANGE
                else value - fee + shipped_back + duties_back - ship.taken,
                bonus=bonus,
                tax=line.tax_for(units, start=start),
                restocking_fee_tax=fee_tax,
                original_shipping=shipped_back,
                original_shipping_tax=shipped_back_tax,
                duties=duties_back,
                return_shipping_fee=ship.taken,
                return_shipping_fee_tax=ship.taken_tax,
                return_shipping_fee_left=ship.left,
            )
        )
        units_left, units_left_tax = units_left + ship.left, units_left_tax + ship.left_tax

    def total(kind: OutcomeKind) -> Money:
        return Money.sum((part.amount for part in settled if part.outcome is kind), currency)

    def net_tax(kind: OutcomeKind) -> Money:
        return Money.sum(
            (
                part.tax
                - part.restocking_fee_tax
                - part.return_shipping_fee_tax
                + part.original_shipping_tax
                for part in settled
                if part.outcome is kind
            ),
            currency,
        )

    payout = {OutcomeKind.REFUND: total(OutcomeKind.REFUND)}
    payout[OutcomeKind.STORE_CREDIT] = total(OutcomeKind.STORE_CREDIT)
    payout_tax = {kind: net_tax(kind) for kind in payout}
    exchange_credit = total(OutcomeKind.EXCHANGE)
    exchange_credit_tax = Money.sum(
        (part.tax for part in settled if part.outcome is OutcomeKind.EXCHANGE), currency
    )
    exchanged = {part.line_id: part for part in settled if part.outcome is OutcomeKind.EXCHANGE}
    exchange_total, priced = exchange_items.cost(currency, exchanged, exchange_lines, items_unpaid)
    outbound = zero
    at_fault = all(  # a claim's replacement is the merchant's (or the carrier's) loss
        line.reason in fees.waive_for_reasons or line.claimed
        for line, _, _ in parts
        if line.id in exchanged
    )
    if fees.exchange_shipping is not None and charge_exchange_shipping and priced and not at_fault:
        outbound = charged(fees.exchange_shipping, zero, taxes_included=taxes_included)
    difference = exchange_credit - exchange_total - outbound
    shortfall = zero
    # the exchanged lines' own restocking fees, then the exchanged units' shares of the
    # return shipping fee (no unit pays out that bears fees): from the exchange's own
    # difference, the rest owed (or waived), never from another unit's payout
    to = difference_to if difference_to is OutcomeKind.STORE_CREDIT else OutcomeKind.REFUND
    by_own = shipping_shares.UnitShares.none(currency)
    by_own.take(*exchange_restocking.own(settled, currency), difference)
    by_exchange = shipping_shares.UnitShares.none(currency)
    by_exchange.take(pooled, pooled_tax, difference - by_own.taken)
    units_left, units_left_tax = (
        units_left + by_exchange.left,
        units_left_tax + by_exchange.left_tax,
    )
    if difference.is_negative:
        shortfall = -difference
    else:
        # The rest of the exchange credit carries its share of the returned units' tax.
        payout[to] = payout[to] + difference - by_own.taken - by_exchange.taken
        payout_tax[to] += tax_share(exchange_credit_tax, difference, exchange_credit)
        payout_tax[to] -= by_own.taken_tax + by_exchange.taken_tax

    # The exchange's shortfall is taken from the payout, the refund first, then store
    # credit; the rest is owed.
    kinds = (OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT)
    pieces, _ = from_payout.take(payout, payout_tax, ((shortfall, None),))
    refund, credit = payout[OutcomeKind.REFUND], payout[OutcomeKind.STORE_CREDIT]
    owed = pieces[0][2]
    restocking_left, shipping_left = by_own.left, units_left
    shipping_left_tax = units_left_tax
    own = dict.fromkeys(kinds, zero)  # the units' shares taken from their own payout
    own[to], shipping_tax = by_exchange.taken, by_exchange.taken_tax
    for part in settled:
        if part.outcome in own:
            own[part.outcome] = own[part.outcome] + part.return_shipping_fee
            shipping_tax = shipping_tax + part.return_shipping_fee_tax
    shipping = own[OutcomeKind.REFUND] + own[OutcomeKind.STORE_CREDIT] + units_left
    shipping_tax = shipping_tax + units_left_tax
    from_refund = own[OutcomeKind.REFUND]
    left_tax = by_own.left_tax + shipping_left_tax
    fees_owed = fees_waived = restocking_waived = fees_owed_tax = zero
    restocking_tax_waived = shipping_tax_waived = zero
    if fees.fees_only_from_payout:
        fees_waived = restocking_left + shipping_left + quote_left + carried_left[0]
        carried_left = (zero, zero)  # (waived: never part of the fee)
        restocking_waived = restocking_left
        restocking_tax_waived, shipping_tax_waived = by_own.left_tax, shipping_left_tax
        shipping = shipping - shipping_left
        shipping_left = zero
    else:
        fees_owed = restocking_left + shipping_left + carried_left[0]
        fees_owed_tax = left_tax + carried_left[1]
        owed = owed + fees_owed

    balance_refund = zero
    if prepaid is not None and prepaid:
        # What was prepaid pays what is owed; the rest goes back the way it came.
        used = min(prepaid, owed)
        owed = owed - used
        balance_refund = prepaid - used

    bonus = Money.sum((part.bonus for part in settled), currency)
    restocking_fee = Money.sum((part.restocking_fee for part in settled), currency)
    restocking_fee_tax = Money.sum((part.restocking_fee_tax for part in settled), currency)
    documents: list[tuple[Document, Money]] = []
    if refund:
        documents.append((Document.REFUNDED_CREDIT_MEMO, refund))
    if credit or bonus:
        documents.append((Document.CREDIT_MEMO, credit + bonus))
    if exchanged:
        documents.append((Document.EXCHANGE_ORDER, exchange_total + outbound))
    if fees_owed:
        documents.append((Document.INVOICE, fees_owed))
    return Settlement(
        currency=currency,
        lines=tuple(settled),
        restocking_fee=restocking_fee - restocking_waived + carried_left[0],
        return_shipping_fee=shipping,
        refund=refund,
        store_credit=credit,
        bonus=bonus,
        exchange_credit=exchange_credit,
        exchange_total=exchange_total,
        balance_due=owed,
        documents=tuple(documents),
        balance_refund=balance_refund,
        shipping_from_refund=from_refund,
        exchange_shipping=outbound,
        fees_owed=fees_owed,
        fees_waived=fees_waived,
        shipping_owed=shipping_left,
        restocking_owed=carried_left[0],
        refund_tax=payout_tax[OutcomeKind.REFUND],
        store_credit_tax=payout_tax[OutcomeKind.STORE_CREDIT],
        exchange_credit_tax=exchange_credit_tax,
        restocking_fee_tax=restocking_fee_tax - restocking_tax_waived + carried_left[1],
        return_shipping_fee_tax=shipping_tax - shipping_tax_waived,
        exchange_shipping_tax=tax_of(fees.exchange_shipping, outbound),
        fees_owed_tax=fees_owed_tax,
        shipping_left_off=quote_left if fees.fees_only_from_payout else None,
        original_shipping=Money.sum((part.original_shipping for part in settled), currency),
        duties=Money.sum((part.duties for part in settled), currency),
    )


def _kind(line: ReturnLine) -> OutcomeKind:
    """What ``line``'s units settle as (a returnless line's: its ``settle``)."""
    return line.outcome.settle if isinstance(line.outcome, Keep) else line.outcome.kind


def lines_by_order_line(settlement: Settlement, kind: OutcomeKind) -> Mapping[str, int]:
    """Units per order line that ``settlement`` pays out as ``kind``."""
    counts: dict[str, int] = {}
    for part in settlement.lines:
        if part.outcome is kind:
            counts[part.order_line_id] = counts.get(part.order_line_id, 0) + part.units
    return counts
