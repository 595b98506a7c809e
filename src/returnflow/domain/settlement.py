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

Fees (Shopify's return shipping fee per return, restocking fee per line) reduce what is paid
back and never below zero; several fees of one type are one lump sum.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs

from returnflow.domain.model import (
    Exchange,
    ExchangeLine,
    Keep,
    OrderSnapshot,
    OutcomeKind,
    ReturnLine,
    ReturnReason,
    StoreCredit,
)
from returnflow.domain.money import Money, to_decimal
from returnflow.errors import CurrencyMismatch, InvalidFee

__all__ = [
    "Document",
    "FeePolicy",
    "Fixed",
    "LineSettlement",
    "Percent",
    "Settlement",
    "settle",
    "unit_amounts",
]


def unit_amounts(order: OrderSnapshot) -> dict[str, tuple[Money, ...]]:
    """The paid amount of every unit of every line of ``order``, exact to the minor unit."""
    currency = order.currency
    nets = [line.net_total for line in order.lines]
    shares: Sequence[Money] = [Money.zero(currency)] * len(order.lines)
    if order.order_discount is not None and order.order_discount:
        weights = [max(net.minor_units, 0) for net in nets]
        if not any(weights):
            weights = [line.quantity for line in order.lines]
        shares = order.order_discount.allocate(weights)
    result: dict[str, tuple[Money, ...]] = {}
    for line, net, share in zip(order.lines, nets, shares, strict=True):
        paid = net - share + (line.tax or Money.zero(currency))
        result[line.id] = paid.split(line.quantity)
    return result


# -- fees -------------------------------------------------------------------------------------


def _percent(value: object) -> Decimal:
    number = to_decimal(value, "percent")
    if not Decimal(0) <= number <= Decimal(100):
        raise InvalidFee("percent", value, "a percentage fee is between 0 and 100")
    return number


@attrs.frozen
class Percent:
    """A fee of this percentage of the amount it applies to (0 to 100)."""

    value: Decimal = attrs.field(converter=_percent)

    def of(self, amount: Money) -> Money:
        return Money.quantized(amount.amount * self.value / 100, amount.currency, ROUND_HALF_EVEN)


def _fixed(value: object) -> Money:
    if not isinstance(value, Money):
        raise InvalidFee("amount", value, "a fixed fee is Money")
    if value.is_negative:
        raise InvalidFee("amount", value, "a fee is never negative")
    return value


@attrs.frozen
class Fixed:
    """A fixed fee."""

    amount: Money = attrs.field(converter=_fixed)

    def of(self, amount: Money) -> Money:
        if self.amount.currency != amount.currency:
            raise CurrencyMismatch(
                "fee.currency", self.amount.currency, f"the return is in {amount.currency}"
            )
        return self.amount


Fee = Percent | Fixed

_WAIVED_REASONS = frozenset(
    {ReturnReason.DEFECTIVE, ReturnReason.WRONG_ITEM, ReturnReason.NOT_AS_DESCRIBED}
)


def _fee(value: object) -> Fee | None:
    if value is None or isinstance(value, (Percent, Fixed)):
        return value
    raise InvalidFee("fee", value, "must be Percent(...), Fixed(...) or None")


def _shipping(value: object) -> Fixed | None:
    if value is None or isinstance(value, Fixed):
        return value
    if isinstance(value, Money):
        return Fixed(value)
    raise InvalidFee("return_shipping", value, "must be Money, Fixed(...) or None")


def _exchange_shipping(value: object) -> Fixed | None:
    if value is None or isinstance(value, Fixed):
        return value
    if isinstance(value, Money):
        return Fixed(value)
    raise InvalidFee("exchange_shipping", value, "must be Money, Fixed(...) or None")


@attrs.frozen
class FeePolicy:
    """Which fees a return pays, and what shipping the new items of an exchange cost.

    ``restocking`` (per line) and ``return_shipping`` (per return) are waived for exchanged
    lines (``waive_for_exchanges``) and for items the merchant got wrong
    (``waive_for_reasons``: defective, wrong item, not as described). A fee that applies is
    taken from the payout (the refund first, then store credit; never the bonus); what the
    payout does not cover is added to what the customer owes (``Settlement.balance_due``,
    charged through ``Payments``), or waived when ``fees_only_from_payout`` is set
    (``Settlement.fees_waived``). A fee is never kept without being charged.

    ``exchange_shipping`` is the outbound shipping of an exchange's new items (Medusa's
    outbound shipping, a shipping line on Shopify's exchange), once per return: part of what
    the new items cost, so of the balance due. It is waived when every exchanged line's
    reason is one the merchant got wrong, not by ``waive_for_exchanges``, and is no fee:
    ``fees_only_from_payout`` does not waive it."""

    restocking: Fee | None = attrs.field(default=None, converter=_fee)
    return_shipping: Fixed | None = attrs.field(default=None, converter=_shipping)
    waive_for_exchanges: bool = True
    waive_for_reasons: frozenset[ReturnReason] = _WAIVED_REASONS
    exchange_shipping: Fixed | None = attrs.field(default=None, converter=_exchange_shipping)
    fees_only_from_payout: bool = False

    def waived(self, line: ReturnLine) -> bool:
        exchange = isinstance(line.outcome, Exchange)
        return (exchange and self.waive_for_exchanges) or line.reason in self.waive_for_reasons


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
    separate). A refunded or credited line pays its own restocking fee (``amount`` is the
    value less the fee); an exchanged line's whole value pays for the new items, and its
    fee is taken from the return's payout or owed."""

    line_id: str
    order_line_id: str
    units: int
    start: int
    outcome: OutcomeKind
    value: Money
    restocking_fee: Money
    amount: Money
    bonus: Money


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

    Every amount adds up: value of the units + prepaid used + ``balance_due`` = ``refund``
    + ``store_credit`` + ``exchange_total`` + ``exchange_shipping`` + ``fees``.
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
) -> Settlement:
    """Settle ``parts``: ``(line, units, start)`` = ``units`` of ``line`` from unit ``start``.

    ``exchange_lines`` are the new items the exchanged parts pay for; an exchange line
    without a price is an even exchange (the new item costs what the returned units were
    worth). ``prepaid`` is what the customer already paid towards the balance (an upsell,
    fees). ``charge_shipping`` / ``charge_exchange_shipping`` are false once a return paid
    its return shipping fee / its exchange's outbound shipping.

    The order of the money: refunded and credited lines pay their own restocking fee; the
    exchange's difference goes to ``refund`` or ``store_credit`` (``difference_to``);
    then the exchange's shortfall, the exchanged lines' restocking fee and the return
    shipping fee are taken, in that order, from the refund, then from store credit (never
    the bonus); what the payout does not cover is owed (a fee, under
    ``fees_only_from_payout``, waived); the prepaid amount pays what is owed and the rest
    of it is given back. A return either pays out or charges, never both.
    Raises :class:`~returnflow.errors.CurrencyMismatch` for an amount in another currency.
    """
    zero = Money.zero(currency)
    settled: list[LineSettlement] = []
    for line, units, start in parts:
        value = line.amount_for(units, start=start)
        if value.currency != currency:
            raise CurrencyMismatch("currency", value.currency, f"the return is in {currency}")
        kind = line.outcome.settle if isinstance(line.outcome, Keep) else line.outcome.kind
        fee = zero
        if fees.restocking is not None and not fees.waived(line):
            fee = min(fees.restocking.of(value), value)
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
                amount=value if kind is OutcomeKind.EXCHANGE else value - fee,
                bonus=bonus,
            )
        )

    def total(kind: OutcomeKind) -> Money:
        return Money.sum((part.amount for part in settled if part.outcome is kind), currency)

    refund, credit = total(OutcomeKind.REFUND), total(OutcomeKind.STORE_CREDIT)
    exchange_credit = total(OutcomeKind.EXCHANGE)
    exchanged = {part.line_id: part for part in settled if part.outcome is OutcomeKind.EXCHANGE}
    exchange_total = zero
    priced = False
    for item in exchange_lines:
        part = exchanged.get(item.return_line_id)
        if part is None:
            continue
        priced = True
        if item.unit_price is None:  # an even exchange: the new item costs what was returned
            exchange_total = exchange_total + part.value
        else:
            if item.unit_price.currency != currency:
                raise CurrencyMismatch(
                    "exchange.unit_price.currency",
                    item.unit_price.currency,
                    f"the return is in {currency}",
                )
            exchange_total = exchange_total + item.unit_price * item.quantity
    outbound = zero
    at_fault = all(
        line.reason in fees.waive_for_reasons for line, _, _ in parts if line.id in exchanged
    )
    if fees.exchange_shipping is not None and charge_exchange_shipping and priced and not at_fault:
        outbound = fees.exchange_shipping.of(zero)
    difference = exchange_credit - exchange_total - outbound
    shortfall = zero
    if difference.is_negative:
        shortfall = -difference
    elif difference_to is OutcomeKind.STORE_CREDIT:
        credit = credit + difference
    else:
        refund = refund + difference

    # What the return owes besides its own lines' fees (the exchange's shortfall, the
    # exchanged lines' restocking, the return shipping) is taken from the payout, the
    # refund first, then store credit; the rest is owed, or for fees, waived.
    restocking = Money.sum(
        (part.restocking_fee for part in settled if part.outcome is OutcomeKind.EXCHANGE), currency
    )
    shipping = zero
    everything_waived = all(fees.waived(line) for line, _, _ in parts)
    if fees.return_shipping is not None and charge_shipping and parts and not everything_waived:
        shipping = fees.return_shipping.of(zero)
    taken_from: list[Money] = []
    for amount in (shortfall, restocking, shipping):
        from_refund = min(amount, refund)
        from_credit = min(amount - from_refund, credit)
        refund, credit = refund - from_refund, credit - from_credit
        taken_from.append(from_refund)
        taken_from.append(from_refund + from_credit)
    _, shortfall_taken, _, restocking_taken, from_refund, shipping_taken = taken_from
    owed = shortfall - shortfall_taken
    restocking_left = restocking - restocking_taken
    shipping_left = shipping - shipping_taken
    fees_owed = fees_waived = restocking_waived = zero
    if fees.fees_only_from_payout:
        fees_waived = restocking_left + shipping_left
        restocking_waived = restocking_left
        shipping = shipping_taken
        shipping_left = zero
    else:
        fees_owed = restocking_left + shipping_left
        owed = owed + fees_owed

    balance_refund = zero
    if prepaid is not None and prepaid:
        # What was prepaid pays what is owed; the rest goes back the way it came.
        used = min(prepaid, owed)
        owed = owed - used
        balance_refund = prepaid - used

    bonus = Money.sum((part.bonus for part in settled), currency)
    restocking_fee = Money.sum((part.restocking_fee for part in settled), currency)
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
        restocking_fee=restocking_fee - restocking_waived,
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
    )


def lines_by_order_line(settlement: Settlement, kind: OutcomeKind) -> Mapping[str, int]:
    """Units per order line that ``settlement`` pays out as ``kind``."""
    counts: dict[str, int] = {}
    for part in settlement.lines:
        if part.outcome is kind:
            counts[part.order_line_id] = counts.get(part.order_line_id, 0) + part.units
    return counts
