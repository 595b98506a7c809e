"""Hypothesis strategies for returnflow's values: money, orders, requests, policies, inbound facts.

Installed with the ``[testing]`` extra (it needs Hypothesis, which only this module and
:mod:`returnflow.testing.stateful` import). Every strategy draws values that are valid as
returnflow understands them, except :func:`invalid_return_requests`, which draws exactly one
defect and says which error it must cause.

A property test of a host's own code, for example::

    from hypothesis import given, strategies as st
    from returnflow.testing import Harness
    from returnflow.testing.strategies import orders, return_requests

    @given(order=orders(shop="my-shop"), data=st.data())
    def test_a_valid_request_is_stored(order, data):
        harness = Harness()
        harness.ports.commerce.add_order(order)
        request = data.draw(return_requests(order))
        record = harness.service.request(request)
        assert record.order_id == order.id

Orders are dated relative to ``now`` (by default :class:`~returnflow.testing.ManualClock`'s
start, 2026-01-15 12:00 UTC), so that some fall inside a policy's window and some outside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from returnflow.decisions.warehouse import units_to_come
from returnflow.domain.claim_lines import replacement
from returnflow.domain.claims import Claim, ClaimReason
from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    Disposition,
    InboundEvent,
    ReceivedLine,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.model import (
    Exchange,
    Fulfillment,
    ItemCondition,
    Keep,
    OrderLine,
    OrderSnapshot,
    Outcome,
    OutcomeKind,
    QcResult,
    Refund,
    RequestLine,
    ReturnReason,
    ReturnRecord,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import (
    Completion,
    RefundTrigger,
    ReleaseTrigger,
    ReturnPolicy,
    WindowStart,
    exchange_blockers,
)
from returnflow.domain.settlement import FeePolicy, Fixed, Percent
from returnflow.errors import (
    CurrencyMismatch,
    ExchangeNotOffered,
    InvalidAmount,
    InvalidQuantity,
    InvalidRequest,
    UnknownOrder,
    UnknownOrderLine,
    ValidationError,
)

__all__ = [
    "CURRENCIES",
    "DEFAULT_NOW",
    "InvalidRequestCase",
    "claim_requests",
    "currencies",
    "inbound_streams",
    "invalid_return_requests",
    "money",
    "orders",
    "policies",
    "return_requests",
]

CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP", "CHF", "JPY", "KWD")
"""The currencies :func:`currencies` draws from: two decimals, none (JPY) and three (KWD)."""

DEFAULT_NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
"""The ``now`` orders are dated from by default: :class:`~returnflow.testing.ManualClock`'s
start."""


def _rarely(numerator: int = 1, denominator: int = 8) -> st.SearchStrategy[bool]:
    """``True`` about ``numerator / denominator`` of the time (and shrinking to ``False``)."""
    return st.integers(0, denominator - 1).map(lambda n: n >= denominator - numerator)


def _other_currency(currency: str) -> str:
    return next(code for code in ("EUR", "USD", "JPY") if code != currency)


# -- money ------------------------------------------------------------------------------------


def currencies() -> st.SearchStrategy[str]:
    """ISO 4217 codes of :data:`CURRENCIES`, with 2, 0 and 3 decimals."""
    return st.sampled_from(CURRENCIES)


def money(
    currency: str | None = None, *, min_minor_units: int = 0, max_minor_units: int = 100_000
) -> st.SearchStrategy[Money]:
    """Amounts of ``currency`` (any of :func:`currencies` when ``None``) between the two
    bounds, counted in the currency's minor units (cents, yen, fils)."""
    if min_minor_units > max_minor_units:
        raise InvalidArgument(f"min_minor_units={min_minor_units} > {max_minor_units}")
    codes = st.just(currency) if currency is not None else currencies()
    return st.builds(Money.from_minor_units, st.integers(min_minor_units, max_minor_units), codes)


# -- orders -----------------------------------------------------------------------------------


def _moments(
    draw: st.DrawFn, start: datetime, now: datetime, label: str
) -> tuple[datetime, datetime | None]:
    """A fulfillment date between ``start`` and ``now`` (shrinking to ``start``) and,
    half of the time, a delivery date between it and ``now``."""
    fulfilled = start + max(now - start, timedelta(0)) * draw(st.integers(0, 4), label=label) / 8
    delivered = None
    if draw(st.booleans(), label=f"{label} delivered"):
        delivered = fulfilled + max(now - fulfilled, timedelta(0)) * draw(st.integers(0, 4)) / 8
    return fulfilled, delivered


def _line_fulfillments(
    draw: st.DrawFn, quantity: int, created: datetime, now: datetime, at_least: int, label: str
) -> tuple[Fulfillment, ...]:
    """A line's own fulfillments: ``at_least`` to ``quantity`` units shipped, in one or two
    fulfillments in date order; the rest of the line never shipped."""
    shipped = draw(st.integers(at_least, quantity), label=f"{label} shipped")
    if shipped == 0:
        return ()
    first = draw(st.integers(1, shipped), label=f"{label} first fulfillment")
    parts = [first, shipped - first] if first < shipped else [first]
    made: list[Fulfillment] = []
    start = created
    for index, units in enumerate(parts):
        fulfilled, delivered = _moments(draw, start, now, f"{label} fulfillment {index + 1}")
        made.append(Fulfillment(units, fulfilled, delivered, id=f"{label}-F{index + 1}"))
        start = fulfilled
    return tuple(made)


@st.composite
def _orders(
    draw: st.DrawFn,
    shop: str,
    currency: str | None,
    max_lines: int,
    now: datetime,
    order_id: str | None,
    max_quantity: int,
    max_age_days: int,
    blockers: bool,
) -> OrderSnapshot:
    code = currency if currency is not None else draw(currencies(), label="currency")

    def minor(units: int) -> Money:
        return Money.from_minor_units(units, code)

    created = now - timedelta(
        days=draw(st.integers(0, max_age_days), label="age_days"), hours=draw(st.integers(0, 23))
    )
    # Most orders ship in one go (the order's fulfilled_at); about one in four ships per line,
    # in parts, some units never (the first line always ships at least one unit, so that a
    # request can be drawn for a new order).
    per_line = draw(_rarely(1, 4), label="fulfilled per line")
    # About one order in four has prices that include tax: a line's tax is then at most half
    # its net total, and the order discount at most half the order's, so the tax is never
    # more than what the line cost.
    included = draw(_rarely(1, 4), label="taxes_included")
    lines: list[OrderLine] = []
    for index in range(draw(st.integers(1, max_lines), label="lines")):
        quantity = draw(st.integers(1, max_quantity))
        price = draw(st.integers(0, 50_000))
        discount = draw(st.none() | st.integers(0, quantity * price))
        tax_limit = (quantity * price - (discount or 0)) // 2 if included else 5_000
        tax = draw(st.none() | st.integers(0, tax_limit))
        lines.append(
            OrderLine(
                id=f"L{index + 1}",
                sku=f"SKU-{index + 1}",
                variant_id=f"v{index + 1}",
                quantity=quantity,
                unit_price=minor(price),
                discount=None if discount is None else minor(discount),
                tax=None if tax is None else minor(tax),
                title=f"Item {index + 1}",
                final_sale=draw(_rarely(1, 16), label="final_sale"),
                fulfillments=(
                    _line_fulfillments(
                        draw, quantity, created, now, 1 if index == 0 else 0, f"L{index + 1}"
                    )
                    if per_line
                    else ()
                ),
            )
        )
    net = sum(line.net_total.minor_units for line in lines)
    order_discount = draw(
        st.none() | st.integers(0, net // 2 if included else net), label="order_discount"
    )
    fulfilled: datetime | None = None
    delivered: datetime | None = None
    if not per_line:
        fulfilled, delivered = _moments(draw, created, now, "fulfilled")
    blocked: dict[str, Any] = {}
    if blockers and draw(_rarely(1, 10), label="exchange blocker"):
        blocked = draw(
            st.sampled_from(
                [
                    {"created_by_app": "marketplace-app"},
                    {"has_duties": True},
                    {"has_prepaid_subscription": True},
                    {"addresses_valid": False},
                ]
            )
        )
    return OrderSnapshot(
        id=order_id if order_id is not None else f"O{draw(st.integers(1000, 9999))}",
        shop=shop,
        created_at=created,
        currency=code,
        lines=lines,
        customer_email=draw(st.sampled_from(["ann@example.com", None])),
        fulfilled_at=fulfilled,
        delivered_at=delivered,
        order_discount=None if order_discount is None else minor(order_discount),
        taxes_included=included,
        **blocked,
    )


def orders(
    shop: str = "shop",
    currency: str | None = None,
    max_lines: int = 5,
    *,
    now: datetime | None = None,
    order_id: str | None = None,
    max_quantity: int = 4,
    max_age_days: int = 45,
    blockers: bool = True,
) -> st.SearchStrategy[OrderSnapshot]:
    """Orders of ``shop`` with 1 to ``max_lines`` lines (ids ``L1``, ``L2``, ...).

    Each line has 1 to ``max_quantity`` units, a price (0 included), an optional line
    discount up to its net price and an optional tax, and is now and then final sale; the
    order has an optional order discount up to its net total. About one order in four has
    prices that include tax (``taxes_included``; its taxes and discount are then at most half
    of what they apply to). It was placed 0 to
    ``max_age_days`` days before ``now`` (default :data:`DEFAULT_NOW`). Every order states
    what shipped: most ship in one go (``fulfilled_at`` between the order date and ``now``,
    perhaps a ``delivered_at``); about one in four ships per line (``OrderLine.fulfillments``):
    in one or two parts on their own dates, some units never (those are not returnable; the
    first line always ships at least one unit). With ``blockers``, about one order in ten
    cannot get an exchange (another app's order, duties, a subscription, a bad address).
    ``currency`` ``None`` draws one of :func:`currencies`; ``order_id`` ``None`` draws one.
    """
    if max_lines < 1 or max_quantity < 1 or max_age_days < 0:
        raise InvalidArgument("max_lines and max_quantity must be >= 1, max_age_days >= 0")
    moment = now if now is not None else DEFAULT_NOW
    if moment.tzinfo is None:
        raise InvalidArgument("now must be timezone-aware")
    return _orders(
        shop, currency, max_lines, moment, order_id, max_quantity, max_age_days, blockers
    )


# -- return requests --------------------------------------------------------------------------


def _left(order: OrderSnapshot, already_returned: Mapping[str, int] | None) -> dict[str, int]:
    """Per order line, its shipped units less those open returns hold: units that never
    shipped are not returnable."""
    taken = already_returned or {}
    return {line.id: len(order.shipped_units(line)) - taken.get(line.id, 0) for line in order.lines}


def _outcomes(order: OrderSnapshot, *, exchange: bool, keep: bool) -> st.SearchStrategy[Outcome]:
    currency = order.currency
    options: list[st.SearchStrategy[Outcome]] = [
        st.just(Refund()),
        st.builds(StoreCredit, bonus=st.none() | money(currency, max_minor_units=2_000)),
    ]
    if exchange:
        options.append(
            st.builds(
                Exchange,
                variant_id=st.sampled_from(["v-new", "v-other"]),
                quantity=st.integers(1, 2),
                sku=st.none() | st.just("SKU-NEW"),
                unit_price=st.none() | money(currency, max_minor_units=60_000),
            )
        )
    if keep:
        options.append(st.sampled_from([Keep(), Keep(OutcomeKind.STORE_CREDIT)]))
    return st.one_of(options)


@st.composite
def _return_requests(
    draw: st.DrawFn,
    order: OrderSnapshot,
    left: Mapping[str, int],
    exchange: bool,
    keep: bool,
) -> ReturnRequest:
    available = [line_id for line_id, units in left.items() if units > 0]
    chosen = draw(
        st.lists(st.sampled_from(available), min_size=1, max_size=len(available), unique=True),
        label="lines",
    )
    outcomes = _outcomes(order, exchange=exchange, keep=keep)
    lines = [
        RequestLine(
            order_line_id=line_id,
            quantity=draw(st.integers(1, left[line_id]), label=f"{line_id} quantity"),
            outcome=draw(outcomes, label=f"{line_id} outcome"),
            reason=draw(st.sampled_from(list(ReturnReason)), label=f"{line_id} reason"),
            note=draw(st.sampled_from(["", "too small"])),
            condition=draw(st.none() | st.sampled_from(list(ItemCondition))),
        )
        for line_id in chosen
    ]
    return ReturnRequest(
        shop=order.shop,
        order_id=order.id,
        lines=lines,
        customer_note=draw(st.sampled_from(["", "please hurry"])),
        requested_by=draw(st.sampled_from(["customer", "agent"])),
    )


def return_requests(
    order: OrderSnapshot,
    already_returned: Mapping[str, int] | None = None,
    *,
    exchange_apps: frozenset[str] | None = None,
    exchanges: bool = True,
    keep: bool = True,
) -> st.SearchStrategy[ReturnRequest]:
    """Requests that are valid for ``order``: one or more of its lines, each once, each with
    at least one and at most the units left to return (shipped, and not held by a return).

    ``already_returned`` maps order line ids to the units open returns already hold (what
    ``validate_request`` is given). Outcomes are refund, store credit (with or without a
    bonus), exchange (even, for less or an upsell) unless ``exchanges`` is false or the
    order cannot get one under ``exchange_apps`` (default: ``ReturnPolicy().exchange_apps``),
    and keep (returnless) unless ``keep`` is false; reasons, declared conditions and notes
    vary. Raises ``InvalidArgument`` when no unit is left to return.
    """
    left = _left(order, already_returned)
    if not any(units > 0 for units in left.values()):
        raise InvalidArgument(f"no unit of order {order.id} is left to return")
    apps = exchange_apps if exchange_apps is not None else ReturnPolicy().exchange_apps
    exchange = exchanges and not exchange_blockers(order, apps)
    return _return_requests(order, left, exchange, keep)


def _claims() -> st.SearchStrategy[Claim]:
    return st.builds(
        Claim,
        reason=st.sampled_from(list(ClaimReason)),
        note=st.sampled_from(["the carrier lost the parcel", "arrived broken", "not in the box"]),
        photos=st.lists(
            st.sampled_from(["uploads/parcel.jpg", "uploads/box.jpg"]), max_size=2, unique=True
        ).map(tuple),
    )


@st.composite
def _claim_requests(
    draw: st.DrawFn, order: OrderSnapshot, left: Mapping[str, int], replace: bool
) -> ReturnRequest:
    available = [line_id for line_id, units in left.items() if units > 0]
    chosen = draw(
        st.lists(st.sampled_from(available), min_size=1, max_size=len(available), unique=True),
        label="claimed lines",
    )
    lines = []
    for line_id in chosen:
        quantity = draw(st.integers(1, left[line_id]), label=f"{line_id} claimed")
        outcomes: list[st.SearchStrategy[Outcome]] = [
            st.just(Refund()),
            st.builds(StoreCredit, bonus=st.none() | money(order.currency, max_minor_units=500)),
        ]
        if replace:
            outcomes.append(st.just(replacement(order, line_id, quantity)))
        lines.append(
            RequestLine(
                order_line_id=line_id,
                quantity=quantity,
                outcome=draw(st.one_of(outcomes), label=f"{line_id} claim outcome"),
                reason=draw(st.sampled_from(list(ReturnReason)), label=f"{line_id} reason"),
            )
        )
    return ReturnRequest(
        shop=order.shop,
        order_id=order.id,
        lines=lines,
        requested_by=draw(st.sampled_from(["customer", "agent"])),
        claim=draw(_claims(), label="claim"),
    )


def claim_requests(
    order: OrderSnapshot,
    already_returned: Mapping[str, int] | None = None,
    *,
    exchange_apps: frozenset[str] | None = None,
    replacements: bool = True,
) -> st.SearchStrategy[ReturnRequest]:
    """Claims (:mod:`returnflow.domain.claims`) that are valid for ``order``: units lost or
    damaged on their way to the customer, one or more of its lines, each once, each with at
    least one and at most the units left (shipped, and not held by a return: the same
    ledger as returns). Reasons, evidence notes and photo references vary; each line is
    refunded, credited (with or without a bonus) or, unless ``replacements`` is false or the
    order cannot get an exchange under ``exchange_apps``, replaced
    (:func:`~returnflow.domain.claim_lines.replacement`). Raises ``InvalidArgument`` when
    no unit is left."""
    left = _left(order, already_returned)
    if not any(units > 0 for units in left.values()):
        raise InvalidArgument(f"no unit of order {order.id} is left to claim")
    apps = exchange_apps if exchange_apps is not None else ReturnPolicy().exchange_apps
    return _claim_requests(order, left, replacements and not exchange_blockers(order, apps))


class InvalidRequestCase(NamedTuple):
    """A request with one defect, drawn by :func:`invalid_return_requests`.

    ``build()`` makes the request; the defect may already be refused there (a quantity of 0,
    an amount that is not Money or negative, no lines, an unknown reason are refused by the
    value classes), so call it inside the ``pytest.raises(case.error)`` block together with
    ``service.request``. ``defect`` names the defect.
    """

    build: Callable[[], ReturnRequest]
    error: type[ValidationError]
    defect: str


_INVALID_DEFECTS = (
    "unknown_line",
    "zero_quantity",
    "too_many",
    "duplicate_line",
    "exchange_currency",
    "bonus_currency",
    "negative_bonus",
    "negative_exchange_price",
    "exchange_price_not_money",
    "no_lines",
    "unknown_reason",
    "unknown_order",
    "exchange_not_offered",
    "claim_without_evidence",
    "claim_replacing_another_variant",
)


# Defects found only after the quantity check: the line must have a unit left.
_NEEDS_A_FREE_UNIT = frozenset(
    {
        "duplicate_line",
        "exchange_currency",
        "bonus_currency",
        "exchange_not_offered",
        "claim_replacing_another_variant",
    }
)


@st.composite
def _invalid_return_requests(
    draw: st.DrawFn,
    order: OrderSnapshot,
    left: Mapping[str, int],
    apps: frozenset[str],
    claims: bool,
) -> InvalidRequestCase:
    blocked = bool(exchange_blockers(order, apps))
    free = [line_id for line_id, units in left.items() if units > 0]
    possible = [
        defect
        for defect in _INVALID_DEFECTS
        if (free or defect not in _NEEDS_A_FREE_UNIT)
        and (blocked or defect != "exchange_not_offered")
        and not (blocked and defect == "claim_replacing_another_variant")
        and (claims or not defect.startswith("claim_"))
    ]
    defect = draw(st.sampled_from(possible), label="defect")
    line_id = draw(st.sampled_from(free or [line.id for line in order.lines]), label="line")
    other = _other_currency(order.currency)
    shop, order_id = order.shop, order.id
    not_money = draw(st.sampled_from([12.5, 12, Decimal("12.50"), "12.50"]), label="price")

    def request(*lines: RequestLine, order_ref: str = order_id) -> ReturnRequest:
        return ReturnRequest(shop=shop, order_id=order_ref, lines=lines)

    def build() -> ReturnRequest:
        if defect == "unknown_line":
            return request(RequestLine(order_line_id=f"{line_id}-missing", quantity=1))
        if defect == "zero_quantity":
            return request(RequestLine(order_line_id=line_id, quantity=0))
        if defect == "too_many":
            return request(RequestLine(order_line_id=line_id, quantity=max(left[line_id], 0) + 1))
        if defect == "duplicate_line":
            one = RequestLine(order_line_id=line_id, quantity=1)
            return request(one, one)
        if defect == "exchange_currency":
            price = Money.from_minor_units(1_000, other)
            return request(
                RequestLine(
                    order_line_id=line_id,
                    quantity=1,
                    outcome=Exchange(variant_id="v-new", unit_price=price),
                )
            )
        if defect == "bonus_currency":
            bonus = Money.from_minor_units(500, other)
            return request(
                RequestLine(order_line_id=line_id, quantity=1, outcome=StoreCredit(bonus=bonus))
            )
        if defect == "negative_bonus":
            bonus = Money.from_minor_units(-500, order.currency)
            return request(
                RequestLine(order_line_id=line_id, quantity=1, outcome=StoreCredit(bonus=bonus))
            )
        if defect in ("negative_exchange_price", "exchange_price_not_money"):
            bad_price: Any = (
                Money.from_minor_units(-500, order.currency)
                if defect == "negative_exchange_price"
                else not_money
            )
            return request(
                RequestLine(
                    order_line_id=line_id,
                    quantity=1,
                    outcome=Exchange(variant_id="v-new", unit_price=bad_price),
                )
            )
        if defect == "no_lines":
            return request()
        if defect == "unknown_reason":
            return request(RequestLine(order_line_id=line_id, quantity=1, reason="BORED"))
        if defect == "unknown_order":
            return request(
                RequestLine(order_line_id=line_id, quantity=1), order_ref=f"{order_id}-missing"
            )
        if defect == "claim_without_evidence":
            return ReturnRequest(
                shop=shop,
                order_id=order_id,
                lines=[RequestLine(order_line_id=line_id, quantity=1)],
                claim=Claim(ClaimReason.LOST_IN_TRANSIT, note="  "),
            )
        if defect == "claim_replacing_another_variant":
            return ReturnRequest(
                shop=shop,
                order_id=order_id,
                lines=[
                    RequestLine(
                        order_line_id=line_id, quantity=1, outcome=Exchange(variant_id="v-new")
                    )
                ],
                claim=Claim(ClaimReason.DAMAGED_IN_TRANSIT, note="arrived broken"),
            )
        assert defect == "exchange_not_offered"
        return request(
            RequestLine(order_line_id=line_id, quantity=1, outcome=Exchange(variant_id="v-new"))
        )

    errors: dict[str, type[ValidationError]] = {
        "unknown_line": UnknownOrderLine,
        "zero_quantity": InvalidQuantity,
        "too_many": InvalidQuantity,
        "duplicate_line": InvalidRequest,
        # every amount is checked before the lines: the currency comes first
        "exchange_currency": CurrencyMismatch,
        "bonus_currency": CurrencyMismatch,
        "negative_bonus": InvalidAmount,
        "negative_exchange_price": InvalidAmount,
        "exchange_price_not_money": InvalidAmount,
        "no_lines": InvalidRequest,
        "unknown_reason": InvalidRequest,
        "unknown_order": UnknownOrder,
        "exchange_not_offered": ExchangeNotOffered,
        "claim_without_evidence": InvalidRequest,
        "claim_replacing_another_variant": InvalidRequest,
    }
    return InvalidRequestCase(build, errors[defect], defect)


def invalid_return_requests(
    order: OrderSnapshot,
    already_returned: Mapping[str, int] | None = None,
    *,
    exchange_apps: frozenset[str] | None = None,
    claims: bool = True,
) -> st.SearchStrategy[InvalidRequestCase]:
    """Requests for ``order`` with exactly one defect, and the error it must raise.

    Defects: a line the order does not have (``UnknownOrderLine``), a quantity of 0 or above
    what is left to return, counting only shipped units (``InvalidQuantity``; above what
    shipped, its subclass ``NotFulfilled``), a line twice, no lines, an unknown reason
    (``InvalidRequest``), a negative bonus, an exchange priced below zero or not in ``Money``
    (``InvalidAmount``), an exchange priced or a bonus in another currency
    (``CurrencyMismatch``), an order the platform does not have (``UnknownOrder``) and an
    exchange on an order that cannot get one (``ExchangeNotOffered``), and (unless
    ``claims`` is false) a claim without an evidence note or whose replacement is another
    variant (``InvalidRequest``). The errors are returnflow's ``ValidationError``
    subclasses; nothing may be stored. Draws
    :class:`InvalidRequestCase` values (``build, error, defect``).
    """
    apps = exchange_apps if exchange_apps is not None else ReturnPolicy().exchange_apps
    return _invalid_return_requests(order, _left(order, already_returned), apps, claims)


# -- policies ---------------------------------------------------------------------------------


def _fee_policies(currency: str | None) -> st.SearchStrategy[FeePolicy]:
    restocking: st.SearchStrategy[Percent | Fixed | None] = st.none() | st.builds(
        Percent, st.sampled_from([Decimal(0), Decimal("2.5"), Decimal(10), Decimal(15)])
    )
    shipping: st.SearchStrategy[Fixed | None] = st.none()
    outbound: st.SearchStrategy[Fixed | None] = st.none()
    if currency is not None:
        restocking = restocking | st.builds(Fixed, money(currency, max_minor_units=2_000))
        shipping = shipping | st.builds(Fixed, money(currency, max_minor_units=1_500))
        outbound = outbound | st.builds(Fixed, money(currency, max_minor_units=1_000))
    return st.builds(
        FeePolicy,
        restocking=restocking,
        return_shipping=shipping,
        waive_for_exchanges=st.booleans(),
        exchange_shipping=outbound,
        fees_only_from_payout=st.booleans(),
    )


def policies(currency: str | None = None, **fixed: Any) -> st.SearchStrategy[ReturnPolicy]:
    """Return policies: window (length and start), accepted conditions, auto-approval (on or
    off, a value limit), reasons sent to review, final-sale rule, completion (receipt or
    warehouse "Finished"), exchange release trigger (on close or instant), refund trigger,
    label, restocking, ``max_attempts`` (1 to 5), shipping deadline, fees (``Percent``
    restocking; ``Fixed`` restocking, return shipping and an exchange's outbound shipping
    when ``currency`` is given, since a fixed fee is in one currency; fees taken only from
    the payout or not) and where the rest of an exchange for less goes.

    Keyword arguments fix a field: ``policies(max_attempts=4, completion=Completion.ON_RECEIPT)``
    (a strategy as the value is drawn from).
    """
    known = {attribute.name for attribute in ReturnPolicy.__attrs_attrs__}
    unknown = sorted(set(fixed) - known)
    if unknown:
        raise InvalidArgument(f"ReturnPolicy has no field(s) {', '.join(unknown)}")
    limit: st.SearchStrategy[Money | None] = st.none()
    if currency is not None:
        limit = limit | money(currency, min_minor_units=1_000, max_minor_units=200_000)
    drawn: dict[str, st.SearchStrategy[Any]] = {
        "window_days": st.sampled_from([30, 30, 30, 14, 60, 365, 0]),
        "window_starts": st.sampled_from(list(WindowStart)),
        "accepted_conditions": st.sampled_from(
            [
                frozenset({ItemCondition.NEW, ItemCondition.GOOD}),
                frozenset(ItemCondition),
                frozenset({ItemCondition.NEW}),
            ]
        ),
        "auto_approve": st.sampled_from([True, True, True, False]),
        "auto_approve_limit": limit,
        "review_reasons": st.sampled_from(
            [frozenset(), frozenset({ReturnReason.DEFECTIVE, ReturnReason.WRONG_ITEM})]
        ),
        "decline_final_sale": st.booleans(),
        "completion": st.sampled_from(list(Completion)),
        "exchange_release": st.sampled_from(list(ReleaseTrigger)),
        "send_label": st.sampled_from([True, True, False]),
        "restock_accepted": st.booleans(),
        "max_attempts": st.integers(1, 5),
        "ship_within_days": st.sampled_from([30, 7, 1]),
        "fees": _fee_policies(currency),
        "refund_trigger": st.sampled_from(list(RefundTrigger)),
        "exchange_difference": st.sampled_from([OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT]),
    }
    for name, value in fixed.items():
        drawn[name] = value if isinstance(value, st.SearchStrategy) else st.just(value)
    return st.fixed_dictionaries(drawn).map(lambda kwargs: ReturnPolicy(**kwargs))


# -- inbound facts ----------------------------------------------------------------------------


@st.composite
def _inbound_streams(
    draw: st.DrawFn,
    record: ReturnRecord,
    prefix: str,
    late: bool,
    duplicates: bool,
    reorder: bool,
    return_to_origin: bool,
) -> list[InboundEvent]:
    shop, rid = record.shop, record.id
    counter = iter(range(1, 10_000))

    def scan(status: CarrierStatus) -> CarrierUpdate:
        return CarrierUpdate(
            shop=shop, return_id=rid, event_id=f"{prefix}-scan-{next(counter)}", status=status
        )

    def finished() -> WarehouseFinished:
        return WarehouseFinished(shop=shop, return_id=rid, event_id=f"{prefix}-fin-{next(counter)}")

    shipped = [line for line in record.lines if line.requires_receipt]
    events: list[InboundEvent] = []
    if shipped:
        if draw(st.integers(0, 4), label="picked up") > 0:
            events.append(scan(CarrierStatus.PICKED_UP))
        if draw(st.booleans(), label="delivered"):
            events.append(scan(CarrierStatus.DELIVERED))
    if return_to_origin and draw(_rarely(1, 8), label="return to origin"):
        events.append(scan(CarrierStatus.RETURN_TO_ORIGIN))
    # Receipts: each outstanding unit is received at most once; some may never arrive.
    parts: list[ReceivedLine] = []
    for line in shipped:
        outstanding = units_to_come(record, line)  # not those of a receipt still parked
        while outstanding > 0 and draw(st.integers(0, 5), label=f"{line.id} arrives") > 0:
            quantity = draw(st.integers(1, outstanding), label=f"{line.id} units")
            outstanding -= quantity
            passed = draw(st.integers(0, 3), label="qc") > 0
            parts.append(
                ReceivedLine(
                    line_id=draw(st.sampled_from([line.id, line.order_line_id])),
                    quantity=quantity,
                    qc=QcResult.PASS if passed else QcResult.FAIL,
                    condition=draw(st.none() | st.sampled_from(list(ItemCondition))),
                    note="" if passed else "worn",
                    disposition=draw(st.none() | st.sampled_from(list(Disposition))),
                )
            )
    while parts:
        size = draw(st.integers(1, min(3, len(parts))), label="lines per receipt")
        chunk, parts = parts[:size], parts[size:]
        events.append(
            WarehouseReceipt(
                shop=shop, return_id=rid, event_id=f"{prefix}-rcv-{next(counter)}", lines=chunk
            )
        )
    if draw(st.booleans(), label="finished"):
        events.append(finished())
    if late:
        # Facts arriving after the return moved on: they are recorded and ignored.
        for _ in range(draw(st.integers(0, 2), label="late events")):
            kind = draw(st.sampled_from(["pickup", "delivered", "finished"]))
            if kind == "finished":
                events.append(finished())
            else:
                status = CarrierStatus.PICKED_UP if kind == "pickup" else CarrierStatus.DELIVERED
                events.append(scan(status))
    if reorder and len(events) > 1 and draw(_rarely(1, 3), label="reordered"):
        events = list(draw(st.permutations(events)))
    if duplicates and events:
        for _ in range(draw(st.integers(0, 3), label="duplicates")):
            repeated = events[draw(st.integers(0, len(events) - 1))]
            events.insert(draw(st.integers(0, len(events))), repeated)
    return events


def inbound_streams(
    record: ReturnRecord,
    *,
    event_prefix: str | None = None,
    late: bool = True,
    duplicates: bool = True,
    reorder: bool = True,
    return_to_origin: bool = False,
) -> st.SearchStrategy[list[InboundEvent]]:
    """What carriers and the warehouse may report about the stored return ``record``: a
    pickup and a delivery scan, receipts of its units still to come (never more than are
    expected, and none of a receipt parked with it:
    :func:`~returnflow.decisions.warehouse.units_to_come`; QC pass or fail, conditions,
    dispositions, by return line or order line id, one to three lines per receipt, some
    units possibly never arriving) and the warehouse's "Finished".

    Then, each optional: ``late`` facts that arrive after the return moved on (another scan,
    another "Finished"), ``reorder`` (the facts in any order), ``duplicates`` (the *same
    object* delivered again, anywhere in the stream: it must be reported as a duplicate)
    and a ``return_to_origin`` scan. Event ids start with ``event_prefix`` (default: the
    return id); use a new prefix for each stream of one return.
    """
    prefix = event_prefix if event_prefix is not None else record.id
    return _inbound_streams(record, prefix, late, duplicates, reorder, return_to_origin)
