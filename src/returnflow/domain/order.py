"""The order, as the commerce platform reports it: its lines, what they cost, and what of
them shipped (fulfillments). Re-exported by :mod:`returnflow.domain.model`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from returnflow.domain._fields import (
    _check_amount,
    _check_count,
    _check_id,
    _check_optional_id,
    check_amount,
    check_bool,
    check_email,
    check_instant,
    check_required_instant,
    check_str,
    check_text,
    check_words,
    items_of,
    to_utc,
)
from returnflow.domain.money import Money
from returnflow.errors import CurrencyMismatch, InvalidPayload, InvalidQuantity

__all__ = ["Duty", "Fulfillment", "OrderLine", "OrderSnapshot"]


def _to_order_lines(value: Iterable[OrderLine]) -> tuple[OrderLine, ...]:
    return items_of("lines", value, InvalidPayload)


@attrs.frozen
class Fulfillment:
    """Units of one order line shipped together (Shopify's fulfillment line item): how many,
    when they were fulfilled and, if the carrier said so, delivered. A line may ship in
    several fulfillments on different days."""

    quantity: int = attrs.field(validator=_check_count(1))
    fulfilled_at: datetime = attrs.field(converter=to_utc, validator=check_required_instant)
    delivered_at: datetime | None = attrs.field(
        default=None, converter=to_utc, validator=check_instant
    )
    id: str | None = attrs.field(default=None, validator=_check_optional_id)

    def __attrs_post_init__(self) -> None:
        if self.fulfilled_at is None:
            raise InvalidPayload("fulfilled_at", None, "must be a timezone-aware datetime")
        if self.delivered_at is not None and self.delivered_at < self.fulfilled_at:
            raise InvalidPayload(
                "delivered_at", self.delivered_at, "is before the fulfillment's fulfilled_at"
            )


@attrs.frozen
class Duty:
    """A duty charged on an order line (Shopify's ``LineItem.duties``: a ``Duty`` with its id
    and price): what the customer paid to import the line's units. ``id`` is the platform's,
    by which a native return gives it back (Shopify's ``RefundDutyInput.dutyId``); ``amount``
    is :class:`Money` in the order's currency, never negative."""

    id: str = attrs.field(validator=_check_id)
    amount: Money = attrs.field(validator=_check_amount)


def _to_duties(value: Iterable[Duty]) -> tuple[Duty, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidPayload("duties", value, "must be a list of Duty")
    return tuple(value)


def _names(field: str, value: object) -> tuple[str, ...]:
    """A list of non-empty strings (tags, collection handles) as a tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidPayload(field, value, "must be a list of strings")
    names = tuple(value)
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise InvalidPayload(f"{field}[{index}]", name, "must be a non-empty string")
        check_text(f"{field}[{index}]", name, InvalidPayload)
    return names


def _tags(value: object) -> tuple[str, ...]:
    return _names("tags", value)


def _collections(value: object) -> tuple[str, ...]:
    return _names("collections", value)


def _country(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 2 or not value.isascii() or not value.isalpha():
        raise InvalidPayload("shipping_country", value, "must be an ISO 3166 alpha-2 code")
    return value.upper()


def _to_fulfillments(value: Iterable[Fulfillment]) -> tuple[Fulfillment, ...]:
    return items_of("fulfillments", value, InvalidPayload)


@attrs.frozen
class OrderLine:
    """One line of an order: what was bought, at what price, discount and tax (line totals),
    and what of it shipped.

    ``fulfillments`` say which units shipped and when; units are counted in order (the first
    fulfillment's units are the line's first units). A line that lists none ships with the
    order's ``fulfilled_at``, if the order has one (an order fulfilled in one go); otherwise
    nothing of it shipped and nothing of it can be returned. ``gift_card`` lines are never
    returnable (Shopify's ``isGiftCard``); ``final_sale`` lines are declined by the policy.

    ``unit_price``, ``discount`` and ``tax`` are :class:`Money` in one currency (the order's),
    never negative, and may be zero (a free item, no discount, no tax); each is checked by
    :func:`~returnflow.domain.model.check_amount` (:class:`~returnflow.errors.InvalidAmount`
    or :class:`~returnflow.errors.CurrencyMismatch` naming the field and the value).
    """

    id: str = attrs.field(validator=_check_id)
    sku: str = attrs.field(validator=_check_id)
    variant_id: str = attrs.field(validator=_check_id)
    quantity: int = attrs.field(validator=_check_count(1))
    unit_price: Money = attrs.field(validator=_check_amount)
    discount: Money | None = None
    tax: Money | None = None
    title: str = attrs.field(default="", validator=check_words(InvalidPayload))
    product_id: str | None = attrs.field(default=None, validator=check_str(InvalidPayload))
    final_sale: bool = attrs.field(default=False, validator=check_bool())
    gift_card: bool = attrs.field(default=False, validator=check_bool())
    fulfillments: tuple[Fulfillment, ...] = attrs.field(default=(), converter=_to_fulfillments)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    """The product's tags (Shopify product tags), for merchant rules."""
    collections: tuple[str, ...] = attrs.field(default=(), converter=_collections)
    """The handles of the collections the product is in, for merchant rules."""
    duties: tuple[Duty, ...] = attrs.field(default=(), converter=_to_duties)
    """The duties charged on the line's units, with the platform's ids (Shopify's
    ``LineItem.duties``); when any line has some, they are the order's duties
    (:attr:`OrderSnapshot.duties`), each shared evenly by its line's units."""

    def __attrs_post_init__(self) -> None:
        for index, duty in enumerate(self.duties):
            if not isinstance(duty, Duty):
                raise InvalidPayload(f"duties[{index}]", duty, "must be a Duty")
            check_amount(f"duties[{index}].amount", duty.amount, currency=self.unit_price.currency)
        for index, fulfillment in enumerate(self.fulfillments):
            if not isinstance(fulfillment, Fulfillment):
                raise InvalidPayload(f"fulfillments[{index}]", fulfillment, "must be a Fulfillment")
        shipped = sum(fulfillment.quantity for fulfillment in self.fulfillments)
        if shipped > self.quantity:
            raise InvalidQuantity(
                "fulfillments", shipped, f"more units fulfilled than the {self.quantity} ordered"
            )
        for name in ("discount", "tax"):
            check_amount(name, getattr(self, name), currency=self.unit_price.currency)
        if self.net_total.is_negative:
            raise InvalidPayload("discount", self.discount, "is more than the line's price")

    @property
    def net_total(self) -> Money:
        """Price x quantity less the line's own discount (before any order discount)."""
        total = self.unit_price * self.quantity
        return total - self.discount if self.discount is not None else total

    @property
    def paid_total(self) -> Money:
        """Net total plus tax: what the line cost before an order-level discount, when its
        prices exclude tax (see :attr:`OrderSnapshot.taxes_included`)."""
        return self.net_total + self.tax if self.tax is not None else self.net_total

    @property
    def fulfilled(self) -> int:
        """Units fulfilled (shipped), by the line's own fulfillments."""
        return sum(fulfillment.quantity for fulfillment in self.fulfillments)


@attrs.frozen
class OrderSnapshot:
    """An order as the commerce platform reports it, with the facts return rules need."""

    id: str = attrs.field(validator=_check_id)
    shop: str = attrs.field(validator=_check_id)
    created_at: datetime = attrs.field(converter=to_utc, validator=check_required_instant)
    currency: str
    lines: tuple[OrderLine, ...] = attrs.field(converter=_to_order_lines)
    customer_email: str | None = attrs.field(default=None, validator=check_email)
    fulfilled_at: datetime | None = attrs.field(
        default=None, converter=to_utc, validator=check_instant
    )
    """When the whole order shipped, for an order fulfilled in one go: every line that lists
    no fulfillments of its own shipped in full then. ``None``: only the lines' own
    fulfillments say what shipped."""
    delivered_at: datetime | None = attrs.field(
        default=None, converter=to_utc, validator=check_instant
    )
    """When that one fulfillment was delivered, if known."""
    created_by_app: str | None = attrs.field(default=None, validator=check_str(InvalidPayload))
    has_prepaid_subscription: bool = attrs.field(default=False, validator=check_bool())
    has_duties: bool = attrs.field(default=False, validator=check_bool())
    addresses_valid: bool = attrs.field(default=True, validator=check_bool())
    order_discount: Money | None = None
    """A discount on the whole order, shared by the lines in proportion to their net totals."""
    taxes_included: bool = attrs.field(default=False, validator=check_bool())
    """Whether the prices (and so the discounts) include tax (Shopify's ``taxesIncluded``,
    the norm in the EU, the UK and Australia). ``False``: each line's ``tax`` is added to
    what it cost; ``True``: it is the part of that cost that is tax. Either way a line's
    ``tax`` is its tax after every discount, as the platform computed it."""
    shipping_country: str | None = attrs.field(default=None, converter=_country)
    """Where the order was shipped, an ISO 3166 alpha-2 code (``"DE"``), for merchant rules."""
    shipping_price: Money | None = None
    """What the customer paid for shipping the order (its tax included or added as the
    order's prices, ``taxes_included``); a return may give it back in part
    (``ReturnPolicy.refund_shipping``)."""
    shipping_tax: Money | None = None
    """The tax part of ``shipping_price`` (``taxes_included``: never more than it, else
    :class:`~returnflow.errors.InvalidPayload` naming ``shipping_tax``) or the tax added to it."""
    duties: Money | None = None
    """The duties and import taxes the customer paid (Shopify's total duties); a return may
    give them back in part (``ReturnPolicy.refund_duties``). When the lines carry their
    duties (:attr:`OrderLine.duties`, with the platform's ids) it is their sum, or
    ``None`` (:attr:`total_duties`)."""

    def __attrs_post_init__(self) -> None:
        Money.zero(self.currency)  # validates the code
        if (
            self.fulfilled_at is not None
            and self.delivered_at is not None
            and self.delivered_at < self.fulfilled_at
        ):
            raise InvalidPayload("delivered_at", self.delivered_at, "is before fulfilled_at")
        if not self.lines:
            raise InvalidPayload("lines", self.lines, "an order has at least one line")
        seen: set[str] = set()
        for index, line in enumerate(self.lines):
            if not isinstance(line, OrderLine):
                raise InvalidPayload(f"lines[{index}]", line, "must be an OrderLine")
            for name in ("unit_price", "discount", "tax"):
                check_amount(f"lines[{index}].{name}", getattr(line, name), currency=self.currency)
            if line.id in seen:
                raise InvalidPayload(f"lines[{index}].id", line.id, "duplicate order line id")
            seen.add(line.id)
        for name in ("shipping_price", "shipping_tax", "duties"):
            charge = getattr(self, name)
            if charge is None:
                continue
            if not isinstance(charge, Money):
                raise InvalidPayload(name, charge, "must be Money")
            if charge.currency != self.currency:
                raise CurrencyMismatch(
                    f"{name}.currency", charge.currency, f"order currency is {self.currency}"
                )
            if charge.is_negative:
                raise InvalidPayload(name, charge, "must not be negative")
        shipping = self.shipping_price or Money.zero(self.currency)
        if self.taxes_included and self.shipping_tax is not None and self.shipping_tax > shipping:
            raise InvalidPayload(
                "shipping_tax",
                self.shipping_tax,
                f"is more than the {shipping} shipping cost, tax included",
            )
        duty_ids = [duty.id for line in self.lines for duty in line.duties]
        if len(set(duty_ids)) != len(duty_ids):
            raise InvalidPayload("lines.duties", duty_ids, "a duty id appears twice")
        if duty_ids and self.duties is not None and self.duties != self.total_duties:
            raise InvalidPayload(
                "duties", self.duties, f"is not the {self.total_duties} of the lines' duties"
            )
        check_amount("order_discount", self.order_discount, currency=self.currency)
        if self.order_discount is not None:
            net = Money.sum((line.net_total for line in self.lines), self.currency)
            if self.order_discount > net:
                raise InvalidPayload(
                    "order_discount", self.order_discount, f"must be between 0 and {net}"
                )
        if self.taxes_included:
            for index, (line, paid) in enumerate(
                zip(self.lines, self.paid_by_line().values(), strict=True)
            ):
                if line.tax is not None and line.tax > paid:
                    raise InvalidPayload(
                        f"lines[{index}].tax",
                        line.tax,
                        f"is more than the {paid} the line cost, tax included",
                    )

    @property
    def paid_total(self) -> Money:
        """What the customer paid for the whole order (lines, less the order discount)."""
        return Money.sum(self.paid_by_line().values(), self.currency)

    @property
    def charged_total(self) -> Money:
        """Everything the customer paid: :attr:`paid_total`, the shipping (its tax added
        when prices exclude tax) and the duties."""
        zero = Money.zero(self.currency)
        shipping = self.shipping_price or zero
        if not self.taxes_included:
            shipping = shipping + (self.shipping_tax or zero)
        return self.paid_total + shipping + self.total_duties

    @property
    def total_duties(self) -> Money:
        """The duties the customer paid: the lines' (:attr:`OrderLine.duties`) when they carry
        some, else :attr:`duties` (zero when none)."""
        zero = Money.zero(self.currency)
        by_line = [duty.amount for line in self.lines for duty in line.duties]
        return Money.sum(by_line, self.currency) if by_line else (self.duties or zero)

    def discount_shares(self) -> tuple[Money, ...]:
        """Each line's share of the order discount, in proportion to the lines' net totals
        (by quantity when every net total is zero), with the largest-remainder method."""
        zero = Money.zero(self.currency)
        if self.order_discount is None or not self.order_discount:
            return (zero,) * len(self.lines)
        weights = [max(line.net_total.minor_units, 0) for line in self.lines]
        if not any(weights):
            weights = [line.quantity for line in self.lines]
        return self.order_discount.allocate(weights)

    def paid_by_line(self) -> dict[str, Money]:
        """What the customer paid for each line: its net total less its share of the order
        discount, plus its tax unless the prices include it (:attr:`taxes_included`)."""
        paid: dict[str, Money] = {}
        for line, share in zip(self.lines, self.discount_shares(), strict=True):
            tax = line.tax if line.tax is not None and not self.taxes_included else None
            paid[line.id] = line.net_total - share + (tax or Money.zero(self.currency))
        return paid

    def line(self, line_id: str) -> OrderLine | None:
        for line in self.lines:
            if line.id == line_id:
                return line
        return None

    def fulfillments(self, line: OrderLine) -> tuple[Fulfillment, ...]:
        """What of ``line`` shipped: its own fulfillments, or, when it lists none and the
        order has a ``fulfilled_at``, the whole line then; else nothing."""
        if line.fulfillments:
            return line.fulfillments
        if self.fulfilled_at is not None:
            return (Fulfillment(line.quantity, self.fulfilled_at, self.delivered_at),)
        return ()

    def shipped_units(self, line: OrderLine) -> dict[int, Fulfillment]:
        """The line's shipped units, by index (0-based, in fulfillment order), each with the
        fulfillment that shipped it. Units not in it never shipped."""
        units: dict[int, Fulfillment] = {}
        for fulfillment in self.fulfillments(line):
            start = len(units)
            for unit in range(start, start + fulfillment.quantity):
                units[unit] = fulfillment
        return units
