"""The values a return is made of: the order as the platform reports it, the request, the record.

All classes are frozen ``attrs`` classes that check their own fields on construction and
raise a :class:`~returnflow.errors.ValidationError` subclass naming the field and value.
Checks that need the order (is this line on it, is this quantity still returnable) live in
:mod:`returnflow.domain.policy`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

import attrs

from returnflow.domain.money import Money
from returnflow.errors import (
    CurrencyMismatch,
    InvalidPayload,
    InvalidQuantity,
    InvalidRequest,
    UnknownOutcome,
    ValidationError,
)

__all__ = [
    "DeclineReason",
    "Exchange",
    "ExchangeLine",
    "ExternalRefs",
    "HistoryEntry",
    "ItemCondition",
    "Keep",
    "OrderLine",
    "OrderSnapshot",
    "Outcome",
    "OutcomeKind",
    "QcResult",
    "Refund",
    "RequestLine",
    "ReturnLine",
    "ReturnReason",
    "ReturnRecord",
    "ReturnRequest",
    "StoreCredit",
]


class ReturnReason(str, enum.Enum):
    """Why the customer returns a line (Shopify's ``ReturnReason`` values)."""

    COLOR = "COLOR"
    DEFECTIVE = "DEFECTIVE"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    OTHER = "OTHER"
    SIZE_TOO_LARGE = "SIZE_TOO_LARGE"
    SIZE_TOO_SMALL = "SIZE_TOO_SMALL"
    STYLE = "STYLE"
    UNKNOWN = "UNKNOWN"
    UNWANTED = "UNWANTED"
    WRONG_ITEM = "WRONG_ITEM"


class ItemCondition(str, enum.Enum):
    """The state of an item, as declared by the customer or found by the warehouse."""

    NEW = "new"
    GOOD = "good"
    USED = "used"
    DAMAGED = "damaged"


class QcResult(str, enum.Enum):
    """The warehouse's quality check of a received unit."""

    PASS = "pass"
    FAIL = "fail"


class DeclineReason(str, enum.Enum):
    """Why a return was declined (Shopify's ``ReturnDeclineReason``)."""

    RETURN_PERIOD_ENDED = "RETURN_PERIOD_ENDED"
    FINAL_SALE = "FINAL_SALE"
    OTHER = "OTHER"


class OutcomeKind(str, enum.Enum):
    REFUND = "refund"
    STORE_CREDIT = "store_credit"
    EXCHANGE = "exchange"
    KEEP = "keep"


# -- small field checks -------------------------------------------------------------------


def _nonempty(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(field, value, "must be a non-empty string")


def _check_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _nonempty(attribute.name, value)


def _check_optional_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _nonempty(attribute.name, value)


def _check_count(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidQuantity(attribute.name, value, "must be a whole number")
        if value < minimum:
            raise InvalidQuantity(attribute.name, value, f"must be at least {minimum}")

    return check


def _check_money(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Money):
        raise InvalidPayload(attribute.name, value, "must be Money")


def _check_aware(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidPayload(attribute.name, value, "must be a timezone-aware datetime")


_E = TypeVar("_E", bound=enum.Enum)


def coerce_enum(enum_type: type[_E], value: object, error: type[ValidationError], field: str) -> _E:
    """``enum_type(value)``, or ``error`` naming ``field``, the value and the allowed values."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in enum_type)
        raise error(field, value, f"must be one of: {allowed}") from None


def _to_reason(value: object) -> ReturnReason:
    return coerce_enum(ReturnReason, value, InvalidRequest, "reason")


def _to_condition(value: object) -> ItemCondition | None:
    return None if value is None else coerce_enum(ItemCondition, value, InvalidRequest, "condition")


def _to_settle(value: object) -> OutcomeKind:
    return coerce_enum(OutcomeKind, value, UnknownOutcome, "settle")


def _to_order_lines(value: Iterable[OrderLine]) -> tuple[OrderLine, ...]:
    return tuple(value)


def _to_request_lines(value: Iterable[RequestLine]) -> tuple[RequestLine, ...]:
    return tuple(value)


# -- the order, as the platform reports it ------------------------------------------------


@attrs.frozen
class OrderLine:
    """One line of an order: what was bought, at what price, discount and tax (line totals)."""

    id: str = attrs.field(validator=_check_id)
    sku: str = attrs.field(validator=_check_id)
    variant_id: str = attrs.field(validator=_check_id)
    quantity: int = attrs.field(validator=_check_count(1))
    unit_price: Money = attrs.field(validator=_check_money)
    discount: Money | None = None
    tax: Money | None = None
    title: str = ""
    product_id: str | None = None
    final_sale: bool = False

    def __attrs_post_init__(self) -> None:
        for name in ("discount", "tax"):
            amount = getattr(self, name)
            if amount is None:
                continue
            _check_money(self, attrs.fields(OrderLine).unit_price, amount)
            if amount.currency != self.unit_price.currency:
                raise CurrencyMismatch(name, amount.currency, "must match unit_price's currency")
            if amount.is_negative:
                raise InvalidPayload(name, amount, "must not be negative")
        if self.unit_price.is_negative:
            raise InvalidPayload("unit_price", self.unit_price, "must not be negative")
        if self.net_total.is_negative:
            raise InvalidPayload("discount", self.discount, "is more than the line's price")

    @property
    def net_total(self) -> Money:
        """Price x quantity less the line's own discount (before any order discount)."""
        total = self.unit_price * self.quantity
        return total - self.discount if self.discount is not None else total

    @property
    def paid_total(self) -> Money:
        """Net total plus tax: what the line cost before an order-level discount."""
        return self.net_total + self.tax if self.tax is not None else self.net_total


@attrs.frozen
class OrderSnapshot:
    """An order as the commerce platform reports it, with the facts return rules need."""

    id: str = attrs.field(validator=_check_id)
    shop: str = attrs.field(validator=_check_id)
    created_at: datetime = attrs.field(validator=_check_aware)
    currency: str
    lines: tuple[OrderLine, ...] = attrs.field(converter=_to_order_lines)
    customer_email: str | None = None
    fulfilled_at: datetime | None = attrs.field(default=None, validator=_check_aware)
    delivered_at: datetime | None = attrs.field(default=None, validator=_check_aware)
    created_by_app: str | None = None
    has_prepaid_subscription: bool = False
    has_duties: bool = False
    addresses_valid: bool = True
    order_discount: Money | None = None
    """A discount on the whole order, shared by the lines in proportion to their net totals."""

    def __attrs_post_init__(self) -> None:
        Money.zero(self.currency)  # validates the code
        if not self.lines:
            raise InvalidPayload("lines", self.lines, "an order has at least one line")
        seen: set[str] = set()
        for index, line in enumerate(self.lines):
            if not isinstance(line, OrderLine):
                raise InvalidPayload(f"lines[{index}]", line, "must be an OrderLine")
            if line.unit_price.currency != self.currency:
                raise CurrencyMismatch(
                    f"lines[{index}].unit_price.currency",
                    line.unit_price.currency,
                    f"order currency is {self.currency}",
                )
            if line.id in seen:
                raise InvalidPayload(f"lines[{index}].id", line.id, "duplicate order line id")
            seen.add(line.id)
        if self.order_discount is not None:
            if not isinstance(self.order_discount, Money):
                raise InvalidPayload("order_discount", self.order_discount, "must be Money")
            if self.order_discount.currency != self.currency:
                raise CurrencyMismatch(
                    "order_discount.currency",
                    self.order_discount.currency,
                    f"order currency is {self.currency}",
                )
            net = Money.sum((line.net_total for line in self.lines), self.currency)
            if self.order_discount.is_negative or self.order_discount > net:
                raise InvalidPayload(
                    "order_discount", self.order_discount, f"must be between 0 and {net}"
                )

    @property
    def paid_total(self) -> Money:
        """What the customer paid for the whole order (lines, less the order discount)."""
        total = Money.sum((line.paid_total for line in self.lines), self.currency)
        return total - self.order_discount if self.order_discount is not None else total

    def line(self, line_id: str) -> OrderLine | None:
        for line in self.lines:
            if line.id == line_id:
                return line
        return None


# -- what the customer asks for -------------------------------------------------------------


@attrs.frozen
class Refund:
    """Refund to the original payment method."""

    kind: Literal[OutcomeKind.REFUND] = attrs.field(default=OutcomeKind.REFUND, init=False)


@attrs.frozen
class StoreCredit:
    """Store credit / gift card, with an optional bonus on top."""

    bonus: Money | None = None
    kind: Literal[OutcomeKind.STORE_CREDIT] = attrs.field(
        default=OutcomeKind.STORE_CREDIT, init=False
    )

    def __attrs_post_init__(self) -> None:
        if self.bonus is not None:
            _check_money(self, attrs.fields(StoreCredit).bonus, self.bonus)
            if self.bonus.is_negative:
                raise InvalidRequest("bonus", self.bonus, "must not be negative")


@attrs.frozen
class Exchange:
    """Another variant (or product) in exchange for the returned units."""

    variant_id: str = attrs.field(validator=_check_id)
    quantity: int = attrs.field(default=1, validator=_check_count(1))
    sku: str | None = None
    unit_price: Money | None = None
    kind: Literal[OutcomeKind.EXCHANGE] = attrs.field(default=OutcomeKind.EXCHANGE, init=False)


@attrs.frozen
class Keep:
    """Returnless: the customer keeps the item and is refunded or credited without a receipt."""

    settle: OutcomeKind = attrs.field(default=OutcomeKind.REFUND, converter=_to_settle)
    kind: Literal[OutcomeKind.KEEP] = attrs.field(default=OutcomeKind.KEEP, init=False)

    def __attrs_post_init__(self) -> None:
        if self.settle not in (OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT):
            raise UnknownOutcome("settle", self.settle, "keep settles as refund or store_credit")


Outcome = Refund | StoreCredit | Exchange | Keep
_OUTCOME_TYPES = (Refund, StoreCredit, Exchange, Keep)


def _check_outcome(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, _OUTCOME_TYPES):
        raise UnknownOutcome(
            attribute.name, value, "must be Refund(), StoreCredit(), Exchange(...) or Keep()"
        )


@attrs.frozen
class RequestLine:
    """One line of a return request."""

    order_line_id: str = attrs.field(validator=_check_id)
    quantity: int = attrs.field(validator=_check_count(1))
    outcome: Outcome = attrs.field(factory=Refund, validator=_check_outcome)
    reason: ReturnReason = attrs.field(default=ReturnReason.UNKNOWN, converter=_to_reason)
    note: str = ""
    condition: ItemCondition | None = attrs.field(
        default=None,
        converter=_to_condition,
    )


@attrs.frozen
class ReturnRequest:
    """What the customer (or an agent on their behalf) asks to return."""

    shop: str = attrs.field(validator=_check_id)
    order_id: str = attrs.field(validator=_check_id)
    lines: tuple[RequestLine, ...] = attrs.field(converter=_to_request_lines)
    customer_note: str = ""
    requested_by: str = "customer"

    def __attrs_post_init__(self) -> None:
        if not self.lines:
            raise InvalidRequest("lines", self.lines, "a return has at least one line")
        for index, line in enumerate(self.lines):
            if not isinstance(line, RequestLine):
                raise InvalidRequest(f"lines[{index}]", line, "must be a RequestLine")


# -- the return record -----------------------------------------------------------------------


@attrs.frozen
class ReturnLine:
    """A line of a stored return with its per-line quantities.

    ``requested >= received``; ``received == accepted + rejected`` once inspected;
    ``restocked <= accepted``; ``settled`` counts units refunded, credited or exchanged.
    ``unit_amounts`` are the paid amounts of exactly these units, to the cent; ``units``
    are their indices among the order line's units (no unit is in two open returns).
    """

    id: str
    order_line_id: str
    sku: str
    variant_id: str
    quantity: int
    outcome: Outcome
    reason: ReturnReason
    unit_amounts: tuple[Money, ...]
    units: tuple[int, ...] = ()
    note: str = ""
    declared_condition: ItemCondition | None = None
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    restocked: int = 0
    settled: int = 0
    condition: ItemCondition | None = None
    qc_notes: tuple[str, ...] = ()

    @property
    def inspected(self) -> int:
        return self.accepted + self.rejected

    @property
    def outstanding(self) -> int:
        """Units still expected from the customer."""
        return self.quantity - self.received

    @property
    def requires_receipt(self) -> bool:
        return not isinstance(self.outcome, Keep)

    def amount_for(self, units: int, *, start: int = 0) -> Money:
        """The paid amount of ``units`` of this line's units, starting at unit ``start``."""
        return Money.sum(self.unit_amounts[start : start + units], self.unit_amounts[0].currency)


@attrs.frozen
class ExchangeLine:
    """A new item the customer gets in exchange, held on the original order until released."""

    id: str
    return_line_id: str
    variant_id: str
    quantity: int
    status: str = "pending"  # pending | held | released | cancelled
    sku: str | None = None
    unit_price: Money | None = None
    platform_item_id: str | None = None


@attrs.frozen
class ExternalRefs:
    """Ids that other systems gave to this return and its parts."""

    platform_return_id: str | None = None
    warehouse_rma_id: str | None = None
    tracking_number: str | None = None
    label_url: str | None = None
    exchange_hold_id: str | None = None
    refund_ids: tuple[str, ...] = ()
    credit_ids: tuple[str, ...] = ()
    source: str | None = None
    """The system the return was imported from (``"loop"``), if it was."""
    source_return_id: str | None = None
    """The return's id in that system."""


@attrs.frozen
class HistoryEntry:
    """One thing that happened to a return: an event, its payload, who did it, what changed."""

    at: datetime
    event: str
    actor: str
    source: tuple[str, str]
    target: tuple[str, str]
    version: int
    payload: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)


@attrs.frozen
class ReturnRecord:
    """A return as stored: the state of both regions, lines, links, version and history."""

    id: str
    shop: str
    order_id: str
    currency: str
    status: str
    exchange_status: str
    lines: tuple[ReturnLine, ...]
    created_at: datetime
    updated_at: datetime
    version: int = 0
    exchange_lines: tuple[ExchangeLine, ...] = ()
    refs: ExternalRefs = attrs.field(factory=ExternalRefs)
    customer_email: str | None = None
    customer_note: str = ""
    parent_id: str | None = None
    child_id: str | None = None
    decline_reason: DeclineReason | None = None
    review_reasons: tuple[str, ...] = ()
    return_shipping_fee: Money | None = None
    """The return shipping fee kept, once charged (it is charged once per return)."""
    restocking_fees: Money | None = None
    """Restocking fees kept so far, one lump sum."""
    balance_paid: Money | None = None
    """What the customer paid for an upsell exchange."""
    balance_settled: bool = False
    """Whether a completion (or a cancel) has accounted for ``balance_paid``."""
    release_confirmed: bool = False
    """Whether the platform was seen to honour the exchange release (seed 000)."""
    completed_at: datetime | None = None
    """When the return was last completed: its outcomes ran; it closes once paid out."""
    history: tuple[HistoryEntry, ...] = ()

    @property
    def state(self) -> tuple[str, str]:
        """``(lifecycle state, exchange state)``."""
        return (self.status, self.exchange_status)

    def line(self, line_id: str) -> ReturnLine | None:
        for line in self.lines:
            if line.id == line_id or line.order_line_id == line_id:
                return line
        return None

    @property
    def has_exchange(self) -> bool:
        return bool(self.exchange_lines)
