"""Fees: a restocking fee per line, a return shipping fee per return and the outbound
shipping of an exchange's new items, each of which may carry tax (Shopify's return fees,
Medusa's return and outbound shipping). Re-exported by :mod:`returnflow.domain.settlement`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, localcontext

import attrs

from returnflow.domain.methods import ReturnMethod
from returnflow.domain.model import Exchange, Reason, ReturnLine, ReturnReason, to_reason
from returnflow.domain.money import MONEY_CONTEXT, Money, to_decimal
from returnflow.errors import CurrencyMismatch, InvalidFee, ValidationError

__all__ = [
    "Fee",
    "FeePolicy",
    "Fixed",
    "LeftOff",
    "Percent",
    "charged",
    "split_tax",
    "tax_of",
    "tax_share",
    "unit_fee_taxes",
    "unit_restocking_fees",
    "unit_shipping_fees",
]


def _percent(value: object) -> Decimal:
    number = to_decimal(value, "percent")
    if not Decimal(0) <= number <= Decimal(100):
        raise InvalidFee("percent", value, "a percentage fee is between 0 and 100")
    return number


def _rate(value: object) -> Decimal | None:
    if value is None:
        return None
    number = to_decimal(value, "tax")
    if not Decimal(0) <= number <= Decimal(100):
        raise InvalidFee("tax", value, "a tax rate is a percentage between 0 and 100")
    return number


def _tax(value: object) -> Decimal | Money | None:
    if isinstance(value, Money):
        if value.is_negative:
            raise InvalidFee("tax", value, "a fee's tax is never negative")
        return value
    return _rate(value)


@attrs.frozen
class Percent:
    """A fee of this percentage (0 to 100) of the amount it applies to (what the units were
    paid, tax included); ``tax``: the fee's tax rate in percent, if it carries tax."""

    value: Decimal = attrs.field(converter=_percent)
    tax: Decimal | None = attrs.field(default=None, converter=_rate)

    def of(self, amount: Money) -> Money:
        with localcontext(MONEY_CONTEXT):
            return Money.quantized(amount.amount * self.value / 100, amount.currency)  # half even


def _fixed(value: object) -> Money:
    if not isinstance(value, Money):
        raise InvalidFee("amount", value, "a fixed fee is Money")
    if value.is_negative:
        raise InvalidFee("amount", value, "a fee is never negative")
    return value


@attrs.frozen
class Fixed:
    """A fixed fee; ``tax``: its tax, a rate in percent (``Decimal``, ``int`` or ``str``) or
    an amount (``Money``), if it carries tax."""

    amount: Money = attrs.field(converter=_fixed)
    tax: Decimal | Money | None = attrs.field(default=None, converter=_tax)

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


def _reasons(value: object) -> frozenset[Reason]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidFee("waive_for_reasons", value, "must be a set of return reasons")
    try:
        return frozenset(to_reason(item, "waive_for_reasons") for item in value)
    except ValidationError as error:
        raise InvalidFee("waive_for_reasons", error.value, error.reason) from None


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


def _method_fees(value: object) -> tuple[tuple[ReturnMethod, Fixed], ...]:
    if isinstance(value, tuple) and all(isinstance(pair, tuple) for pair in value):
        value = dict(value)
    if not isinstance(value, Mapping):
        raise InvalidFee("method_fees", value, "must be a mapping of method to Money or Fixed")
    fees: dict[ReturnMethod, Fixed] = {}
    for key, fee in value.items():
        try:
            method = ReturnMethod(key)
        except ValueError:
            raise InvalidFee(f"method_fees[{key!r}]", key, "not a return method") from None
        fixed = Fixed(fee) if isinstance(fee, Money) else fee
        if not isinstance(fixed, Fixed):
            raise InvalidFee(f"method_fees[{method.value}]", fee, "must be Money or Fixed(...)")
        fees[method] = fixed
    return tuple(sorted(fees.items(), key=lambda pair: pair[0].value))


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
    waive_for_reasons: frozenset[Reason] = attrs.field(default=_WAIVED_REASONS, converter=_reasons)
    exchange_shipping: Fixed | None = attrs.field(default=None, converter=_exchange_shipping)
    fees_only_from_payout: bool = False
    method_fees: tuple[tuple[ReturnMethod, Fixed], ...] = attrs.field(
        default=(), converter=_method_fees
    )
    """A return method's own fee, per return, in place of ``return_shipping`` for returns
    by that method (``{"in_store": Money("0.00", "EUR"), "pickup": Money("9.50", "EUR")}``):
    waived and taken like it; a merchant rule's return shipping fee still wins."""

    def waived(self, line: ReturnLine) -> bool:
        exchange = isinstance(line.outcome, Exchange)
        return (
            (exchange and self.waive_for_exchanges)
            or line.reason in self.waive_for_reasons
            or line.fees_waived
        )


@attrs.frozen
class LeftOff:
    """The parts of the fees a return was opened without: its whole return's quote when it
    was approved waived them, no payout being there to bear them
    (``fees_only_from_payout``), and no settlement of the return charges them (native
    mode: the platform return was opened without them, and the platform has no call to
    add a fee). ``restocking``: by return line id, the part of the line's restocking fee
    (its units' shares are those of the rest, :func:`unit_restocking_fees`);
    ``return_shipping``: the part of the return shipping fee (the units' shares are those
    of the rest, :func:`unit_shipping_fees`)."""

    restocking: Mapping[str, Money] = attrs.field(factory=dict)
    return_shipping: Money | None = None


def charged(fee: Fee, base: Money, *, taxes_included: bool) -> Money:
    """What ``fee`` charges on ``base`` (the units' paid amount; zero for a per-return fee),
    tax included: in an order whose prices include tax the fee includes its tax; otherwise
    its tax is added to it, as to the order's prices.

    >>> eur = lambda amount: Money(amount, "EUR")
    >>> charged(Fixed(eur("7.50"), tax=20), eur("0"), taxes_included=True)
    Money('7.50', 'EUR')
    >>> charged(Fixed(eur("7.50"), tax=20), eur("0"), taxes_included=False)
    Money('9.00', 'EUR')
    """
    amount = fee.of(base)
    if fee.tax is None or taxes_included or not amount:
        return amount
    if isinstance(fee.tax, Money):
        return amount + _same_currency(fee.tax, amount)
    with localcontext(MONEY_CONTEXT):
        return amount + Money.quantized(amount.amount * fee.tax / 100, amount.currency)


def tax_of(fee: Fee | None, gross: Money) -> Money:
    """The tax part of ``gross`` charged of ``fee`` (:func:`charged`, or the part of it
    charged): by its rate, ``gross x rate / (100 + rate)`` (so ``charged`` of a net amount
    gives back exactly the tax added to it); by an amount, that amount (never more than
    ``gross``); zero without tax.

    >>> eur = lambda amount: Money(amount, "EUR")
    >>> shipping = Fixed(eur("7.50"), tax=20)
    >>> tax_of(shipping, eur("7.50")), tax_of(shipping, eur("9.00"))
    (Money('1.25', 'EUR'), Money('1.50', 'EUR'))
    """
    zero = Money.zero(gross.currency)
    if fee is None or fee.tax is None or not gross:
        return zero
    if isinstance(fee.tax, Money):
        return min(_same_currency(fee.tax, gross), gross)
    with localcontext(MONEY_CONTEXT):
        net = Money.quantized(gross.amount * 100 / (100 + fee.tax), gross.currency)
    return gross - net


def _same_currency(tax: Money, amount: Money) -> Money:
    if tax.currency != amount.currency:
        raise CurrencyMismatch(
            "fee.tax.currency", tax.currency, f"the return is in {amount.currency}"
        )
    return tax


def unit_restocking_fees(
    fee: Fee, line: ReturnLine, *, taxes_included: bool = False, less: Money | None = None
) -> tuple[Money, ...]:
    """Each unit's share of ``line``'s restocking fee, to the cent: the fee on the whole
    line (never more than it is worth, less ``less``: a part of it a platform return was
    opened without, never below zero) allocated over its units in proportion to what they
    were paid (largest remainder; evenly when none was paid), so the shares of any units
    add up to the whole fee when all of them are settled.

    >>> from returnflow.domain.model import Refund, ReturnLine, ReturnReason
    >>> eur = lambda amount: Money(amount, "EUR")
    >>> line = ReturnLine(id="R1", order_line_id="L1", sku="S", variant_id="v", quantity=3,
    ...                   outcome=Refund(), reason=ReturnReason.UNWANTED,
    ...                   unit_amounts=(eur("3.34"), eur("3.33"), eur("3.33")))
    >>> [str(share) for share in unit_restocking_fees(Percent(10), line)]
    ['0.34 EUR', '0.33 EUR', '0.33 EUR']
    >>> [str(share) for share in unit_restocking_fees(Fixed(eur("5.00")), line)]
    ['1.67 EUR', '1.67 EUR', '1.66 EUR']
    >>> [str(share) for share in unit_restocking_fees(Percent(10), line, less=eur("0.40"))]
    ['0.20 EUR', '0.20 EUR', '0.20 EUR']
    """
    whole = line.amount_for(line.quantity)
    total = min(charged(fee, whole, taxes_included=taxes_included), whole)
    if less is not None:
        total = max(total - less, Money.zero(total.currency))
    weights: list[int] = [amount.minor_units for amount in line.unit_amounts[: line.quantity]]
    if not any(weights):
        weights = [1] * line.quantity
    return total.allocate(weights)


def unit_shipping_fees(
    total: Money, lines: Sequence[ReturnLine], fees: FeePolicy, *, less: Money | None = None
) -> dict[str, tuple[Money, ...]]:
    """Each unit's share of the return shipping fee ``total`` (tax included as charged),
    by return line id, one share per unit of the line: the fee spread once over the
    units of the return's ``lines`` that bear it (a line whose fees are waived,
    :meth:`FeePolicy.waived`, bears none: its shares are zero), in proportion to what each
    unit was paid, to the cent (largest remainder, ties to the earlier line, then the
    earlier unit; evenly when no unit was paid). So a payout pays its own units' shares,
    whichever receipts come first, and the shares of all the units add up to the fee.
    An exchange's fees come from the payout (``waive_for_exchanges=False``): while a unit
    that is refunded or credited and worth something bears the fee, the units that pay
    out carry the exchanged units' part, in proportion to their worth, and the exchanged
    units have no share; they bear the fee only when no such unit does.
    ``less``: the part of the fee the return was opened without (no payout was to bear
    it, ``fees_only_from_payout``): the rest is spread. No unit bears a fee of zero, nor
    one no line bears.

    >>> from returnflow.domain.model import Refund, ReturnLine, ReturnReason
    >>> eur = lambda amount: Money(amount, "EUR")
    >>> def line(id: str, *amounts: str, reason: ReturnReason = ReturnReason.UNWANTED):
    ...     return ReturnLine(id=id, order_line_id=id, sku="S", variant_id="v",
    ...                       quantity=len(amounts), outcome=Refund(), reason=reason,
    ...                       unit_amounts=tuple(eur(amount) for amount in amounts))
    >>> lines = [line("R1", "10.00", "10.00"), line("R2", "20.00"),
    ...          line("R3", "50.00", reason=ReturnReason.DEFECTIVE)]
    >>> shares = unit_shipping_fees(eur("5.00"), lines, FeePolicy())
    >>> {key: [str(share) for share in value] for key, value in shares.items()}
    {'R1': ['1.25 EUR', '1.25 EUR'], 'R2': ['2.50 EUR'], 'R3': ['0.00 EUR']}
    """
    zero = Money.zero(total.currency)
    shares = {line.id: [zero] * line.quantity for line in lines}
    bearing = [
        (line, unit) for line in lines if not fees.waived(line) for unit in range(line.quantity)
    ]
    paying = [
        (line, unit)
        for line, unit in bearing
        if not isinstance(line.outcome, Exchange)
        and unit < len(line.unit_amounts)
        and line.unit_amounts[unit]
    ]
    bearing = paying or bearing  # an exchange's fees come from the payout, if there is one
    if less is not None:
        total = max(total - less, zero)
    if not total or not bearing:
        return {key: tuple(value) for key, value in shares.items()}
    weights = [
        line.unit_amounts[unit].minor_units if unit < len(line.unit_amounts) else 0
        for line, unit in bearing
    ]
    if not any(weights):
        weights = [1] * len(bearing)
    for (line, unit), share in zip(bearing, total.allocate(weights), strict=True):
        shares[line.id][unit] = share
    return {key: tuple(value) for key, value in shares.items()}


def unit_fee_taxes(fee: Fee, shares: Sequence[Money]) -> tuple[Money, ...]:
    """The tax part of each unit's fee share (``shares``, :func:`unit_restocking_fees`),
    to the cent: the tax of the whole fee (:func:`tax_of` their sum) allocated over the
    units in proportion to their shares (largest remainder), so the taxes of any units add
    up to the whole fee's tax, whichever units are settled together. Empty for no shares.

    >>> eur = lambda amount: Money(amount, "EUR")
    >>> [str(tax) for tax in unit_fee_taxes(Percent(10, tax=20), [eur("0.40"), eur("0.40")])]
    ['0.07 EUR', '0.06 EUR']
    """
    if not shares:
        return ()
    tax = tax_of(fee, Money.sum(shares, shares[0].currency))
    if not tax:
        return tuple(tax for _ in shares)
    return tax.allocate([share.minor_units for share in shares])


def split_tax(tax: Money, pieces: tuple[Money, Money, Money]) -> tuple[Money, Money, Money]:
    """``tax`` split over ``pieces`` of one amount in proportion, adding up exactly."""
    if not tax:
        return (tax, tax, tax)
    first, second, third = tax.allocate([piece.minor_units for piece in pieces])
    return (first, second, third)


def tax_share(tax: Money, part: Money, whole: Money) -> Money:
    """The share of ``tax`` that ``part`` of ``whole`` carries, exact to the minor unit:
    the shares of the parts of a whole add up to its tax."""
    if not whole or not part:
        return Money.zero(tax.currency)
    if part == whole:
        return tax
    return tax.allocate([part.minor_units, (whole - part).minor_units])[0]
