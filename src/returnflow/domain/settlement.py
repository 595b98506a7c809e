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


@attrs.frozen
class FeePolicy:
    """Which fees a return pays. Fees are waived for exchanges and for items the merchant got
    wrong (defective, wrong item, not as described) unless told otherwise."""

    restocking: Fee | None = attrs.field(default=None, converter=_fee)
    return_shipping: Fixed | None = attrs.field(default=None, converter=_shipping)
    waive_for_exchanges: bool = True
    waive_for_reasons: frozenset[ReturnReason] = _WAIVED_REASONS

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
    """The new items of an exchange."""


@attrs.frozen
class LineSettlement:
    """``units`` of one return line: their paid ``value``, the restocking fee kept, and what
    goes to the line's outcome (``amount``; the bonus of store credit is separate)."""

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
    card; ``exchange_credit`` pays for ``exchange_total`` of new items: the rest of it is in
    ``refund`` (or ``store_credit``), a shortfall is ``balance_due`` from the customer. What
    the customer prepaid for new items they no longer get is ``balance_refund``, given back
    through the payment processor that took it.
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
    """The part of ``return_shipping_fee`` taken from the refund (the rest from credit)."""

    @property
    def fees(self) -> Money:
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
    difference_to: OutcomeKind = OutcomeKind.REFUND,
    prepaid: Money | None = None,
) -> Settlement:
    """Settle ``parts``: ``(line, units, start)`` = ``units`` of ``line`` from unit ``start``.

    ``exchange_lines`` are the new items the exchanged parts pay for; an exchange line
    without a price is an even exchange. ``prepaid`` is what the customer already paid
    towards them (an upsell balance). ``charge_shipping`` is false once a return paid it.
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
                amount=value - fee,
                bonus=bonus,
            )
        )

    def total(kind: OutcomeKind) -> Money:
        return Money.sum((part.amount for part in settled if part.outcome is kind), currency)

    refund, credit = total(OutcomeKind.REFUND), total(OutcomeKind.STORE_CREDIT)
    exchange_credit = total(OutcomeKind.EXCHANGE)
    exchanged = {part.line_id: part for part in settled if part.outcome is OutcomeKind.EXCHANGE}
    exchange_total = zero
    for item in exchange_lines:
        part = exchanged.get(item.return_line_id)
        if part is None:
            continue
        if item.unit_price is None:  # an even exchange: the new item costs what was returned
            exchange_total = exchange_total + part.amount
        else:
            if item.unit_price.currency != currency:
                raise CurrencyMismatch(
                    "exchange.unit_price.currency",
                    item.unit_price.currency,
                    f"the return is in {currency}",
                )
            exchange_total = exchange_total + item.unit_price * item.quantity
    difference = exchange_credit - exchange_total
    balance_refund = zero
    if prepaid is not None and prepaid:
        # What was prepaid and is no longer needed goes back the way it came.
        balance_refund = max(min(prepaid, difference + prepaid), zero)
        difference = difference + prepaid - balance_refund
    balance_due = zero
    if difference.is_negative:
        balance_due = -difference
    elif difference_to is OutcomeKind.STORE_CREDIT:
        credit = credit + difference
    else:
        refund = refund + difference

    shipping = from_refund = zero
    everything_waived = all(fees.waived(line) for line, _, _ in parts)
    if fees.return_shipping is not None and charge_shipping and parts and not everything_waived:
        shipping = min(fees.return_shipping.of(zero), refund + credit)
        from_refund = min(shipping, refund)
        refund = refund - from_refund
        credit = credit - (shipping - from_refund)

    bonus = Money.sum((part.bonus for part in settled), currency)
    documents: list[tuple[Document, Money]] = []
    if refund:
        documents.append((Document.REFUNDED_CREDIT_MEMO, refund))
    if credit or bonus:
        documents.append((Document.CREDIT_MEMO, credit + bonus))
    if exchanged:
        documents.append((Document.EXCHANGE_ORDER, exchange_total))
    return Settlement(
        currency=currency,
        lines=tuple(settled),
        restocking_fee=Money.sum((part.restocking_fee for part in settled), currency),
        return_shipping_fee=shipping,
        refund=refund,
        store_credit=credit,
        bonus=bonus,
        exchange_credit=exchange_credit,
        exchange_total=exchange_total,
        balance_due=balance_due,
        documents=tuple(documents),
        balance_refund=balance_refund,
        shipping_from_refund=from_refund,
    )


def lines_by_order_line(settlement: Settlement, kind: OutcomeKind) -> Mapping[str, int]:
    """Units per order line that ``settlement`` pays out as ``kind``."""
    counts: dict[str, int] = {}
    for part in settlement.lines:
        if part.outcome is kind:
            counts[part.order_line_id] = counts.get(part.order_line_id, 0) + part.units
    return counts
