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
...     fulfilled_at=datetime(2026, 1, 1, tzinfo=timezone.utc), currency="EUR",
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
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta, timezone

import attrs

from returnflow.domain._fields import check_amount
from returnflow.domain.methods import ReturnMethod, to_methods
from returnflow.domain.model import (
    DeclineReason,
    Exchange,
    Fulfillment,
    ItemCondition,
    OrderLine,
    OrderSnapshot,
    OutcomeKind,
    Reason,
    ReturnRequest,
    reason_text,
    request_amounts,
)
from returnflow.domain.money import Money
from returnflow.domain.policy_settings import (
    _STUCK_AFTER,
    RefundOriginal,
    _amount_setting,
    _flag,
    _non_negative_int,
    _positive_int,
    _positive_number,
    _refund_duties,
    _refund_shipping,
    _review_reasons,
    _setting,
    _text,
    _to_conditions,
    _to_stuck_after,
    _version,
)
from returnflow.domain.reasons import STANDARD_REASONS, ReturnReasonDefinition, to_definitions
from returnflow.domain.rules import Rule, to_rules
from returnflow.domain.settlement import FeePolicy, Fixed
from returnflow.errors import (
    ConfigurationError,
    ExchangeNotOffered,
    InvalidQuantity,
    InvalidRequest,
    NotFulfilled,
    NotReturnable,
    UnknownOrderLine,
)

__all__ = [
    "Assessment",
    "Completion",
    "Decision",
    "MoneyAuthority",
    "PlatformMode",
    "RefundOriginal",
    "RefundTrigger",
    "ReleaseTrigger",
    "ReturnPolicy",
    "ReturnToOrigin",
    "WindowStart",
    "exchange_blockers",
    "returnable_units",
    "validate_request",
]


class WindowStart(str, enum.Enum):
    """The date the return window is counted from."""

    ORDER = "order"
    """The order's creation date, for every unit (a merchant's choice, never a fallback)."""
    FULFILLMENT = "fulfillment"
    """Per returned unit, the date of the fulfillment that shipped it (default: a window opens
    when the goods left, not when the order was placed; units with no fulfillment are not
    returnable at all)."""
    DELIVERY = "delivery"
    """Per returned unit, its delivery date; a unit with no delivery date counts from its
    fulfillment."""


class ReturnToOrigin(str, enum.Enum):
    """What happens when the carrier sends the parcel back to the customer."""

    CANCEL = "cancel"
    """The return is cancelled: label voided, warehouse return and exchange cancelled, a
    paid balance given back, no refund, the customer told (default)."""
    REVIEW = "review"
    """A person decides (``needs_review``); the exchange stays held until they do."""


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


class PlatformMode(str, enum.Enum):
    """How returns live on the shop's platform (seed 003)."""

    TAGS = "tags"
    """Exchange items added on hold behind a tag, a bare refund and restock on the
    :class:`~returnflow.ports.commerce.CommercePlatform` (seed 000, seed 002; the default)."""
    NATIVE = "native"
    """The platform's own return object (Shopify's ``Return``) is the primary record: opened,
    approved or declined, processed, disposed, closed or cancelled through
    :class:`~returnflow.ports.platform_returns.PlatformReturns`; exchanges sit on it."""


class MoneyAuthority(str, enum.Enum):
    """Which figure wins when the platform's money for a native return differs from
    returnflow's settlement."""

    REVIEW = "review"
    """Neither: the return goes to ``needs_review`` with both figures (the default)."""
    RETURNFLOW = "returnflow"
    """returnflow's settlement is refunded; the difference is recorded."""
    PLATFORM = "platform"
    """The platform's figure is refunded; the difference is recorded."""


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


_PLATFORM_APPS = frozenset({"shopify", "web", "pos", "returnflow"})

_EXCHANGES_SINCE = datetime(2019, 1, 1, tzinfo=timezone.utc)


def _to_window_start(value: object) -> WindowStart:
    return _setting(WindowStart, value, "window_starts")


def _to_completion(value: object) -> Completion:
    return _setting(Completion, value, "completion")


def _to_return_methods(value: object) -> frozenset[ReturnMethod]:
    return to_methods("return_methods", value)


def _to_release_trigger(value: object) -> ReleaseTrigger:
    return _setting(ReleaseTrigger, value, "exchange_release")


def _to_return_to_origin(value: object) -> ReturnToOrigin:
    return _setting(ReturnToOrigin, value, "on_return_to_origin")


def _to_refund_trigger(value: object) -> RefundTrigger:
    return _setting(RefundTrigger, value, "refund_trigger")


def _to_exchange_difference(value: object) -> OutcomeKind:
    return _setting(OutcomeKind, value, "exchange_difference")


def _to_platform_mode(value: object) -> PlatformMode:
    return _setting(PlatformMode, value, "platform_mode")


def _to_money_authority(value: object) -> MoneyAuthority:
    return _setting(MoneyAuthority, value, "platform_money")


@attrs.frozen
class ReturnPolicy:
    """A shop's return rules. Defaults follow seed 001: 30 days (from the fulfillment of the units
    returned), new or good.

    ``version`` names this set of rules: a return records the version it was opened under
    (``ReturnRecord.policy_version``) and every later decision of it uses that version
    (:class:`~returnflow.ports.policies.PolicySource`)."""

    window_days: int = attrs.field(default=30, validator=_non_negative_int)
    window_starts: WindowStart = attrs.field(
        default=WindowStart.FULFILLMENT, converter=_to_window_start
    )
    accepted_conditions: frozenset[ItemCondition] = attrs.field(
        default=frozenset({ItemCondition.NEW, ItemCondition.GOOD}), converter=_to_conditions
    )
    auto_approve: bool = attrs.field(default=True, validator=_flag)
    auto_approve_limit: Money | None = attrs.field(default=None, validator=_amount_setting)
    """A return worth more than this goes to review; ``None``: no limit. Zero sends every
    return worth anything to review."""
    review_reasons: frozenset[Reason] = attrs.field(factory=frozenset, converter=_review_reasons)
    """Return reasons (standard values or the shop's handles) that go to review."""
    decline_final_sale: bool = attrs.field(default=True, validator=_flag)
    completion: Completion = attrs.field(default=Completion.ON_RECEIPT, converter=_to_completion)
    exchange_release: ReleaseTrigger = attrs.field(
        default=ReleaseTrigger.ON_CLOSE, converter=_to_release_trigger
    )
    on_return_to_origin: ReturnToOrigin = attrs.field(
        default=ReturnToOrigin.CANCEL, converter=_to_return_to_origin
    )
    send_label: bool = attrs.field(default=True, validator=_flag)
    return_methods: frozenset[ReturnMethod] = attrs.field(
        default=frozenset({ReturnMethod.MAIL}), converter=_to_return_methods
    )
    """The return methods the shop offers (:mod:`returnflow.domain.methods`)."""
    hold_tag: str = attrs.field(default="hold-order", validator=_text)
    warehouse_reason: str = attrs.field(default="returnflow", validator=_text)
    warehouse_action: str = attrs.field(default="returnflow", validator=_text)
    restock_accepted: bool = attrs.field(default=True, validator=_flag)
    exchange_apps: frozenset[str] = _PLATFORM_APPS
    max_attempts: int = attrs.field(default=3, validator=_positive_int)
    retry_base_seconds: float = attrs.field(default=2.0, validator=_positive_number)
    """Backoff of a failed effect: base x 2^(attempt - 1), plus up to 25 % jitter."""
    retry_cap_seconds: float = attrs.field(default=600.0, validator=_positive_number)
    ship_within_days: int = attrs.field(default=30, validator=_positive_int)
    """An approved return not handed in within this many days of approval expires."""
    stuck_after: tuple[tuple[str, timedelta], ...] = attrs.field(
        default=_STUCK_AFTER, converter=_to_stuck_after
    )
    """How long a return may stay in a state without progress before a person is asked to
    look (``needs_review``, by a tick), per lifecycle state; a mapping is accepted. States
    not named never count as stuck (a timer of their own covers ``approved`` and
    ``label_sent``: ``ship_within_days``)."""
    instant_exchange_return_days: int = attrs.field(default=30, validator=_positive_int)
    """An instant exchange's authorization is captured when the returned units have not come
    back accepted within this many days of the release."""
    fees: FeePolicy = attrs.field(factory=FeePolicy)
    refund_trigger: RefundTrigger = attrs.field(
        default=RefundTrigger.ON_CLOSE, converter=_to_refund_trigger
    )
    exchange_difference: OutcomeKind = attrs.field(
        default=OutcomeKind.REFUND, converter=_to_exchange_difference
    )
    """Where the rest of an exchange for less goes: refund or store credit."""
    version: str = attrs.field(default="1", validator=_version)
    reasons: tuple[ReturnReasonDefinition, ...] = attrs.field(
        default=STANDARD_REASONS, converter=to_definitions
    )
    """The return reasons the shop offers (:mod:`returnflow.domain.reasons`); a request
    with another is refused. Default: the ten standard reasons."""
    rules: tuple[Rule, ...] = attrs.field(default=(), converter=to_rules)
    """The shop's merchant rules, in order (:mod:`returnflow.domain.rules`)."""
    refund_shipping: RefundOriginal = attrs.field(
        default=RefundOriginal.NEVER,
        converter=_refund_shipping,
    )
    """When a refunded or credited line gives back its units' share of the order's
    shipping (:func:`~returnflow.domain.settlement.original_charges`)."""
    refund_duties: RefundOriginal = attrs.field(
        default=RefundOriginal.NEVER,
        converter=_refund_duties,
    )
    """When it gives back its units' share of the order's duties."""

    def gives_back(self, reason: Reason) -> tuple[bool, bool]:
        """Whether a line with ``reason`` gives back its share of the shipping and of the
        duties, by :attr:`refund_shipping` and :attr:`refund_duties`."""
        definition = next((item for item in self.reasons if item.reason == reason), None)
        at_fault = definition is not None and definition.merchants_fault
        return tuple(  # type: ignore[return-value]
            setting is RefundOriginal.ALWAYS
            or (setting is RefundOriginal.MERCHANTS_FAULT and at_fault)
            for setting in (self.refund_shipping, self.refund_duties)
        )

    platform_mode: PlatformMode = attrs.field(
        default=PlatformMode.TAGS, converter=_to_platform_mode
    )
    """``tags`` (default) or ``native``: see :class:`PlatformMode` (seed 003). ``native``
    needs the service's ``platform_returns`` port."""
    platform_money: MoneyAuthority = attrs.field(
        default=MoneyAuthority.REVIEW,
        converter=_to_money_authority,
    )
    """In ``native`` mode, which figure wins when the platform's money differs from the
    settlement's to the cent: see :class:`MoneyAuthority`."""

    def __attrs_post_init__(self) -> None:
        if self.exchange_difference not in (OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT):
            raise ConfigurationError(
                "the rest of an exchange for less is a refund or store credit",
                field="exchange_difference",
                value=self.exchange_difference,
            )

    @property
    def settled_fees(self) -> FeePolicy:
        """:attr:`fees` with the reasons whose definition waives fees added to
        ``waive_for_reasons``: what settlements apply."""
        waived = {item.reason for item in self.reasons if item.fees_waived}
        if waived <= self.fees.waive_for_reasons:
            return self.fees
        return attrs.evolve(self.fees, waive_for_reasons=self.fees.waive_for_reasons | waived)

    def fees_for(
        self, return_shipping: Money | None = None, method: ReturnMethod = ReturnMethod.MAIL
    ) -> FeePolicy:
        """:attr:`settled_fees` for a return by ``method`` (its fee in ``method_fees``), with
        ``return_shipping`` (a merchant rule's, recorded on the return) in place of both."""
        fees = self.settled_fees
        own = dict(fees.method_fees).get(method)
        fees = fees if own is None else attrs.evolve(fees, return_shipping=own)
        if return_shipping is None:
            return fees
        return attrs.evolve(fees, return_shipping=Fixed(return_shipping))

    def amounts(self) -> list[tuple[str, Money]]:
        """Every fixed amount of the policy, with its path: ``policy.auto_approve_limit`` and
        each fixed fee's amount and tax amount (``policy.fees.return_shipping.amount``,
        ``policy.fees.restocking.tax``, ``policy.fees.method_fees.pickup.amount``, ...).
        Each must be in the order's currency: a request (or an import) for an order in
        another currency is refused with
        :class:`~returnflow.errors.CurrencyMismatch` naming ``<path>.currency``, before
        anything is stored or bought, not when the fee is charged."""
        amounts: list[tuple[str, Money]] = []
        if self.auto_approve_limit is not None:
            amounts.append(("policy.auto_approve_limit", self.auto_approve_limit))
        fees = [(name, getattr(self.fees, name)) for name in ("restocking", "return_shipping")]
        fees += [("exchange_shipping", self.fees.exchange_shipping)]
        fees += [(f"method_fees.{method.value}", fee) for method, fee in self.fees.method_fees]
        for name, fee in fees:
            if isinstance(fee, Fixed):
                amounts.append((f"policy.fees.{name}.amount", fee.amount))
                if isinstance(fee.tax, Money):
                    amounts.append((f"policy.fees.{name}.tax", fee.tax))
        return amounts

    def backoff(self, attempt: int, jitter: float) -> timedelta:
        """The wait before try ``attempt + 1``; ``jitter`` is uniform in [0, 1).

        >>> ReturnPolicy().backoff(3, 0.0).total_seconds()
        8.0
        """
        # the exponent stops growing long after the cap is reached: 2.0 ** 1024 overflows
        delay = min(self.retry_cap_seconds, self.retry_base_seconds * 2.0 ** min(attempt - 1, 512))
        return timedelta(seconds=delay * (1 + 0.25 * jitter))

    def window_start(
        self, order: OrderSnapshot, line: OrderLine | None = None, units: Sequence[int] = ()
    ) -> datetime | None:
        """When the window of ``units`` of ``line`` opened: the order date (``ORDER``), else
        the earliest fulfillment (``FULFILLMENT``) or delivery (``DELIVERY``; a fulfillment
        with no delivery date counts from its fulfillment) of those units. ``None`` when one
        of them never shipped: no date is ever assumed for it. Without ``line``, the first
        fulfillment of the order's first line that shipped."""
        if self.window_starts is WindowStart.ORDER:
            return order.created_at
        if line is None:
            shipped = [order.shipped_units(candidate) for candidate in order.lines]
            units_of = next((found for found in shipped if found), None)
            fulfillments: list[Fulfillment] = list(units_of.values()) if units_of else []
        else:
            shipped_units = order.shipped_units(line)
            if any(unit not in shipped_units for unit in units):
                return None
            fulfillments = [shipped_units[unit] for unit in units]
        if not fulfillments:
            return None
        if self.window_starts is WindowStart.DELIVERY:
            return min(item.delivered_at or item.fulfilled_at for item in fulfillments)
        return min(item.fulfilled_at for item in fulfillments)

    def assess(
        self,
        order: OrderSnapshot,
        request: ReturnRequest,
        *,
        now: datetime,
        value: Money | None = None,
        units: Mapping[str, Sequence[int]] | None = None,
    ) -> Assessment:
        """Decide approve / review / decline for a request already checked by
        :func:`validate_request`. ``value`` is what the return is worth (for the limit);
        ``units`` the units each order line gives back (by default those
        :func:`returnable_units` would take): the window is counted per unit from its own
        fulfillment (or delivery), and every unit must be within it."""
        for line in request.lines:
            order_line = order.line(line.order_line_id)
            if order_line is None:
                continue
            taken = (
                units[line.order_line_id]
                if units is not None and line.order_line_id in units
                else returnable_units(order, order_line, policy=self)[: line.quantity]
            )
            start = self.window_start(order, order_line, taken)
            if start is None:  # a unit that never shipped: validate_request refuses it
                continue
            deadline = start + timedelta(days=self.window_days)
            if now > deadline:
                return Assessment(
                    Decision.DECLINE,
                    DeclineReason.RETURN_PERIOD_ENDED,
                    (
                        f"window of {self.window_days} days ended {deadline.date().isoformat()}"
                        + (f" for line {order_line.id}" if len(request.lines) > 1 else ""),
                    ),
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
                notes.append(f"line {line.order_line_id} reason {reason_text(line.reason)}")
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


def returnable_units(
    order: OrderSnapshot,
    line: OrderLine,
    held: Collection[int] = (),
    policy: ReturnPolicy | None = None,
) -> list[int]:
    """The units of ``line`` that shipped and no return holds (``held``), in the order a
    return takes them: the unit whose window opened last first (its fulfillment, or its
    delivery when ``policy`` counts from delivery), so that a customer returning one of two
    shipments returns the one still in its window; then by unit index."""
    shipped = order.shipped_units(line)
    free = [unit for unit in shipped if unit not in held]
    by_delivery = policy is not None and policy.window_starts is WindowStart.DELIVERY

    def opened(unit: int) -> float:
        fulfillment = shipped[unit]
        moment = (fulfillment.delivered_at if by_delivery else None) or fulfillment.fulfilled_at
        return moment.timestamp()

    return sorted(free, key=lambda unit: (-opened(unit), unit))


def validate_request(
    order: OrderSnapshot,
    request: ReturnRequest,
    already_returned: Mapping[str, int] | Mapping[str, Collection[int]],
    *,
    exchange_apps: frozenset[str] = _PLATFORM_APPS,
    policy: ReturnPolicy | None = None,
) -> None:
    """Refuse a request that cannot be taken as given; the error names field and value.

    ``already_returned``: per order line, the units the order's other returns hold or
    settled (their indices; a bare count is taken as the first units). A line gives back at
    most its shipped units that are still free (:func:`returnable_units`): more than shipped
    is :class:`~returnflow.errors.NotFulfilled`, more than are free
    :class:`~returnflow.errors.InvalidQuantity`. A gift card line is
    :class:`~returnflow.errors.NotReturnable`. Every amount the request carries must be in
    the order's currency (:func:`~returnflow.domain.model.check_amount`), and so must every
    fixed amount of ``policy`` (:meth:`ReturnPolicy.amounts`)."""
    if request.shop != order.shop:
        raise InvalidRequest("shop", request.shop, f"order {order.id} belongs to another shop")
    if request.order_id != order.id:
        raise InvalidRequest("order_id", request.order_id, f"the order given is {order.id}")
    for field, amount in [*request_amounts(request), *(policy.amounts() if policy else ())]:
        check_amount(field, amount, currency=order.currency)
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
        if order_line.gift_card:
            raise NotReturnable(
                f"{path}.order_line_id", line.order_line_id, "a gift card is not returnable"
            )
        returned = already_returned.get(line.order_line_id, 0)
        held = set(range(returned)) if isinstance(returned, int) else set(returned)
        shipped = len(order.shipped_units(order_line))
        free = len(returnable_units(order, order_line, held))
        if line.quantity > free:
            unshipped = order_line.quantity - shipped
            message = (
                f"only {free} of {order_line.quantity} left to return on line {line.order_line_id}"
            )
            if unshipped:
                raise NotFulfilled(
                    f"{path}.quantity",
                    line.quantity,
                    f"{message} ({unshipped} not fulfilled)",
                )
            raise InvalidQuantity(f"{path}.quantity", line.quantity, message)
        outcome = line.outcome
        if isinstance(outcome, Exchange):
            blockers = exchange_blockers(order, exchange_apps)
            if blockers:
                raise ExchangeNotOffered(
                    f"{path}.outcome", "exchange", "; ".join(blockers) + ": refund or store credit"
                )
