"""Return policy: what may be returned, what is approved on its own, and when things happen.

Two kinds of "no" are kept apart:

* bad input (a line the order does not have, a quantity above what is left to return) is a
  :class:`~returnflow.errors.ValidationError`: nothing is stored;
* a valid request the policy does not allow (the window ended, a final-sale item) is stored
  and declined with a :class:`~returnflow.domain.model.DeclineReason`, so the customer and
  the helpdesk see why.

>>> from datetime import datetime, timezone
>>> from returnflow.domain.money import Money
>>> from returnflow.domain.model import OrderLine, OrderSnapshot, RequestLine, ReturnRequest
>>> order = OrderSnapshot(
...     id="1001", shop="shop-a", created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
...     currency="EUR",
...     lines=[OrderLine(id="L1", sku="TEE-M", variant_id="v1", quantity=2,
...                      unit_price=Money("20.00", "EUR"))])
>>> request = ReturnRequest(shop="shop-a", order_id="1001",
...                         lines=[RequestLine(order_line_id="L1", quantity=1)])
>>> policy = ReturnPolicy(window_days=30)
>>> policy.assess(order, request, now=datetime(2026, 1, 20, tzinfo=timezone.utc)).decision
<Decision.APPROVE: 'approve'>
>>> late = policy.assess(order, request, now=datetime(2026, 3, 1, tzinfo=timezone.utc))
>>> late.decision, late.decline_reason
(<Decision.DECLINE: 'decline'>, <DeclineReason.RETURN_PERIOD_ENDED: 'RETURN_PERIOD_ENDED'>)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

from returnflow.domain.model import (
    DeclineReason,
    Exchange,
    ItemCondition,
    OrderSnapshot,
    OutcomeKind,
    ReturnReason,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.settlement import FeePolicy
from returnflow.errors import (
    ConfigurationError,
    CurrencyMismatch,
    ExchangeNotOffered,
    InvalidQuantity,
    InvalidRequest,
    UnknownOrderLine,
)

__all__ = [
    "Assessment",
    "Completion",
    "Decision",
    "RefundTrigger",
    "ReleaseTrigger",
    "ReturnPolicy",
    "WindowStart",
    "exchange_blockers",
    "validate_request",
]


class WindowStart(str, enum.Enum):
    """The date the return window is counted from."""

    ORDER = "order"
    FULFILLMENT = "fulfillment"
    DELIVERY = "delivery"


class ReleaseTrigger(str, enum.Enum):
    """When a held exchange is released (seed 000)."""

    ON_CLOSE = "on_close"
    """When the return is completed (default)."""
    ON_HANDED_IN = "on_handed_in"
    """Instant exchange: as soon as the carrier reports the parcel handed in."""


class Completion(str, enum.Enum):
    """What completes a return: runs its outcomes and closes it."""

    ON_RECEIPT = "on_receipt"
    """Every expected unit received and inspected (seed 001, seed 002)."""
    ON_WAREHOUSE_FINISHED = "on_warehouse_finished"
    """Only the warehouse's "Finished" status (seed 000)."""


class RefundTrigger(str, enum.Enum):
    """When refunds and store credit are issued; restocking is separate (seed 003)."""

    ON_HANDED_IN = "on_handed_in"
    """At the first carrier scan, for every requested unit (trust the parcel)."""
    ON_DELIVERED = "on_delivered"
    """When the carrier delivers the parcel to the warehouse."""
    ON_RECEIVED = "on_received"
    """Per receipt, for the units that passed inspection."""
    ON_CLOSE = "on_close"
    """When the return is completed (default)."""


class Decision(str, enum.Enum):
    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


@attrs.frozen
class Assessment:
    """The eligibility check's verdict and the reasons for it."""

    decision: Decision
    decline_reason: DeclineReason | None = None
    notes: tuple[str, ...] = ()


def _positive_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError("must be a whole number >= 1", field=attribute.name, value=value)


def _non_negative_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError("must be a whole number >= 0", field=attribute.name, value=value)


def _positive_number(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError("must be a number > 0", field=attribute.name, value=value)


_PLATFORM_APPS = frozenset({"shopify", "web", "pos", "returnflow"})
_EXCHANGES_SINCE = datetime(2019, 1, 1, tzinfo=timezone.utc)


@attrs.frozen
class ReturnPolicy:
    """A shop's return rules. Defaults follow seed 001: 30 days from the order, new or good."""

    window_days: int = attrs.field(default=30, validator=_non_negative_int)
    window_starts: WindowStart = WindowStart.ORDER
    accepted_conditions: frozenset[ItemCondition] = frozenset(
        {ItemCondition.NEW, ItemCondition.GOOD}
    )
    auto_approve: bool = True
    auto_approve_limit: Money | None = None
    review_reasons: frozenset[ReturnReason] = frozenset()
    decline_final_sale: bool = True
    completion: Completion = Completion.ON_RECEIPT
    exchange_release: ReleaseTrigger = ReleaseTrigger.ON_CLOSE
    send_label: bool = True
    hold_tag: str = "hold-order"
    warehouse_reason: str = "returnflow"
    warehouse_action: str = "returnflow"
    restock_accepted: bool = True
    exchange_apps: frozenset[str] = _PLATFORM_APPS
    max_attempts: int = attrs.field(default=3, validator=_positive_int)
    retry_base_seconds: float = attrs.field(default=2.0, validator=_positive_number)
    """Backoff of a failed effect: base x 2^(attempt - 1), plus up to 25 % jitter."""
    retry_cap_seconds: float = attrs.field(default=600.0, validator=_positive_number)
    ship_within_days: int = attrs.field(default=30, validator=_positive_int)
    """An approved return not handed in within this many days of approval expires."""
    fees: FeePolicy = attrs.field(factory=FeePolicy)
    refund_trigger: RefundTrigger = RefundTrigger.ON_CLOSE
    exchange_difference: OutcomeKind = OutcomeKind.REFUND
    """Where the rest of an exchange for less goes: refund or store credit."""

    def __attrs_post_init__(self) -> None:
        if self.exchange_difference not in (OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT):
            raise ConfigurationError(
                "the rest of an exchange for less is a refund or store credit",
                field="exchange_difference",
                value=self.exchange_difference,
            )

    def backoff(self, attempt: int, jitter: float) -> timedelta:
        """The wait before try ``attempt + 1``; ``jitter`` is uniform in [0, 1).

        >>> ReturnPolicy().backoff(3, 0.0).total_seconds()
        8.0
        """
        delay = min(self.retry_cap_seconds, self.retry_base_seconds * 2 ** (attempt - 1))
        return timedelta(seconds=delay * (1 + 0.25 * jitter))

    def window_start(self, order: OrderSnapshot) -> datetime:
        """The start of the window; the order date stands in for a date the order lacks."""
        if self.window_starts is WindowStart.DELIVERY and order.delivered_at is not None:
            return order.delivered_at
        if self.window_starts is not WindowStart.ORDER and order.fulfilled_at is not None:
            return order.fulfilled_at
        return order.created_at

    def assess(
        self,
        order: OrderSnapshot,
        request: ReturnRequest,
        *,
        now: datetime,
        value: Money | None = None,
    ) -> Assessment:
        """Decide approve / review / decline for a request already checked by
        :func:`validate_request`. ``value`` is what the return is worth (for the limit)."""
        deadline = self.window_start(order) + timedelta(days=self.window_days)
        if now > deadline:
            return Assessment(
                Decision.DECLINE,
                DeclineReason.RETURN_PERIOD_ENDED,
                (f"window of {self.window_days} days ended {deadline.date().isoformat()}",),
            )
        final_sale = [
            line.order_line_id
            for line in request.lines
            if (order_line := order.line(line.order_line_id)) is not None and order_line.final_sale
        ]
        if final_sale and self.decline_final_sale:
            return Assessment(
                Decision.DECLINE,
                DeclineReason.FINAL_SALE,
                (f"final-sale lines: {', '.join(final_sale)}",),
            )
        notes: list[str] = [f"final-sale lines: {', '.join(final_sale)}"] if final_sale else []
        for line in request.lines:
            if line.condition is not None and line.condition not in self.accepted_conditions:
                notes.append(f"line {line.order_line_id} declared {line.condition.value}")
            if line.reason in self.review_reasons:
                notes.append(f"line {line.order_line_id} reason {line.reason.value}")
        if (
            self.auto_approve_limit is not None
            and value is not None
            and value > self.auto_approve_limit
        ):
            notes.append(f"value {value} above auto-approval limit {self.auto_approve_limit}")
        if not self.auto_approve:
            notes.append("auto-approval is off")
        if notes:
            return Assessment(Decision.REVIEW, None, tuple(notes))
        return Assessment(Decision.APPROVE)


def exchange_blockers(order: OrderSnapshot, allowed_apps: frozenset[str]) -> tuple[str, ...]:
    """Why the platform cannot add an exchange to ``order`` (seed 003); empty when it can."""
    blockers: list[str] = []
    if order.created_at < _EXCHANGES_SINCE:
        blockers.append("order is older than 2019")
    if order.created_by_app is not None and order.created_by_app.lower() not in allowed_apps:
        blockers.append(f"order was created by the app {order.created_by_app!r}")
    if not order.addresses_valid:
        blockers.append("order has an invalid billing or shipping address")
    if order.has_prepaid_subscription:
        blockers.append("order has a prepaid subscription")
    if order.has_duties:
        blockers.append("order has duties")
    return tuple(blockers)


def validate_request(
    order: OrderSnapshot,
    request: ReturnRequest,
    already_returned: Mapping[str, int],
    *,
    exchange_apps: frozenset[str] = _PLATFORM_APPS,
) -> None:
    """Refuse a request that cannot be taken as given; the error names field and value."""
    if request.shop != order.shop:
        raise InvalidRequest("shop", request.shop, f"order {order.id} belongs to another shop")
    if request.order_id != order.id:
        raise InvalidRequest("order_id", request.order_id, f"the order given is {order.id}")
    seen: set[str] = set()
    for index, line in enumerate(request.lines):
        path = f"lines[{index}]"
        order_line = order.line(line.order_line_id)
        if order_line is None:
            raise UnknownOrderLine(
                f"{path}.order_line_id", line.order_line_id, f"order {order.id} has no such line"
            )
        if line.order_line_id in seen:
            raise InvalidRequest(
                f"{path}.order_line_id", line.order_line_id, "appears twice in the request"
            )
        seen.add(line.order_line_id)
        left = order_line.quantity - already_returned.get(line.order_line_id, 0)
        if line.quantity > left:
            raise InvalidQuantity(
                f"{path}.quantity",
                line.quantity,
                f"only {left} of {order_line.quantity} left to return on line {line.order_line_id}",
            )
        outcome = line.outcome
        if isinstance(outcome, Exchange):
            blockers = exchange_blockers(order, exchange_apps)
            if blockers:
                raise ExchangeNotOffered(
                    f"{path}.outcome", "exchange", "; ".join(blockers) + ": refund or store credit"
                )
            if outcome.unit_price is not None and outcome.unit_price.currency != order.currency:
                raise CurrencyMismatch(
                    f"{path}.outcome.unit_price.currency",
                    outcome.unit_price.currency,
                    f"order currency is {order.currency}",
                )
        if (
            isinstance(outcome, StoreCredit)
            and outcome.bonus is not None
            and outcome.bonus.currency != order.currency
        ):
            raise CurrencyMismatch(
                f"{path}.outcome.bonus.currency",
                outcome.bonus.currency,
                f"order currency is {order.currency}",
            )
