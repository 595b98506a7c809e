"""Bad input gets a typed error that names the field and the value, and changes nothing.

The product rule: every failure path below raises one class of the tree rooted at
:class:`~returnflow.errors.ReturnflowError`; validation errors carry ``field`` and ``value``;
and when a store is involved, the stored returns, their outboxes, the inbox and the calls
made to the ports are exactly what they were before the call.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest

from returnflow import (
    TABLE,
    CarrierUpdate,
    ConcurrencyConflict,
    ConfigurationError,
    CurrencyMismatch,
    EvidenceRequired,
    Exchange,
    ExchangeNotOffered,
    InvalidAmount,
    InvalidPayload,
    InvalidQuantity,
    InvalidRequest,
    InvalidRule,
    InvalidTransition,
    Keep,
    MoneyError,
    OrderLine,
    OrderSnapshot,
    OutcomeKind,
    OutcomeNotOffered,
    PortError,
    QcResult,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnflowError,
    ReturnNotFound,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
    Rule,
    StoreCredit,
    UnknownCurrency,
    UnknownOrderLine,
    UnknownOutcome,
    UnknownReason,
    UnknownShop,
    ValidationError,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow import errors as errors_module
from returnflow.domain.money import Money
from returnflow.ports.store import InboundKey
from returnflow.testing.harness import Harness

SHOP = "shop-a"
OTHER_SHOP = "shop-b"
ORDER_ID = "1001"
ORDERED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)
# Generous enough that an order from 2018 is still inside the window on 2026-01-15, so that
# only the check under test can refuse a request.
POLICY = ReturnPolicy(window_days=4000)


# -- builders ---------------------------------------------------------------------------------


def make_order(
    order_id: str = ORDER_ID, *, shop: str = SHOP, currency: str = "EUR", **facts: Any
) -> OrderSnapshot:
    """L1: 2 x 25.00; L2: 3 x 10.00 with 3.00 tax; shipped in one go when ordered."""
    created_at = facts.pop("created_at", ORDERED)
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=created_at,
        fulfilled_at=facts.pop("fulfilled_at", created_at),
        currency=currency,
        customer_email="customer@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku="TEE-M",
                variant_id="v-tee-m",
                quantity=2,
                unit_price=Money("25.00", currency),
            ),
            OrderLine(
                id="L2",
                sku="CAP",
                variant_id="v-cap",
                quantity=3,
                unit_price=Money("10.00", currency),
                tax=Money("3.00", currency),
            ),
        ],
        **facts,
    )


def make_request(*lines: RequestLine, order_id: str = ORDER_ID, shop: str = SHOP) -> ReturnRequest:
    return ReturnRequest(shop=shop, order_id=order_id, lines=lines)


def line(order_line_id: str = "L1", quantity: int = 1, **fields: Any) -> RequestLine:
    return RequestLine(order_line_id=order_line_id, quantity=quantity, **fields)


def open_return(policy: ReturnPolicy = POLICY) -> tuple[Harness, ReturnRecord]:
    """A harness whose store already holds one return: R0001, L1 x 1, refund."""
    harness = Harness(policy=policy)
    harness.ports.commerce.add_order(make_order())
    record = harness.service.request(make_request(line("L1", 1)))
    return harness, record


@pytest.fixture
def harness_and_return() -> tuple[Harness, ReturnRecord]:
    return open_return()


@pytest.fixture
def harness(harness_and_return: tuple[Harness, ReturnRecord]) -> Harness:
    return harness_and_return[0]


@pytest.fixture
def rid(harness_and_return: tuple[Harness, ReturnRecord]) -> str:
    return harness_and_return[1].id


# -- the "nothing changed" snapshot -----------------------------------------------------------


def snapshot(harness: Harness, *shops: str) -> dict[str, Any]:
    """Everything a failed call must leave alone, for ``shops`` (default: SHOP).

    Records are frozen attrs classes compared with ``==`` (version included); outbox entries
    likewise. Port calls without an idempotency key are reads (``get_order``,
    ``exchange_hold_status``): a failed request may read the order, but must not mutate.
    """
    shops = shops or (SHOP,)
    records = {shop: tuple(harness.store.list(shop)) for shop in shops}
    return {
        "records": records,
        "outboxes": {
            (shop, record.id): tuple(harness.store.outbox(shop, record.id))
            for shop in shops
            for record in records[shop]
        },
        "pending": tuple(harness.store.pending(10_000)),
        "mutating_calls": {
            fake.port: tuple(call for call in fake.calls if call.idempotency_key is not None)
            for fake in harness.ports.all()
        },
        "refunds": tuple(harness.ports.commerce.refunds),
        "events": tuple(harness.ports.events.events),
        "messages": tuple(harness.ports.notifier.messages),
    }


def assert_unchanged(before: dict[str, Any], harness: Harness, *shops: str) -> None:
    after = snapshot(harness, *shops)
    for key in before:
        assert after[key] == before[key], f"{key} changed on a failed call"


def test_snapshot_sees_a_change(harness: Harness, rid: str) -> None:
    """The helper itself must be able to fail: a successful command is visible in it."""
    before = snapshot(harness)
    assert before["records"][SHOP][0].version >= 1
    assert before["outboxes"][(SHOP, rid)]
    assert sum(len(calls) for calls in before["mutating_calls"].values()) > 0
    harness.service.cancel(SHOP, rid)
    with pytest.raises(AssertionError):
        assert_unchanged(before, harness)


def assert_validation(
    err: ValidationError, cls: type[ValidationError], field: str, value: Any
) -> None:
    assert type(err) is cls
    assert err.field == field
    # repr: Decimal("NaN") != itself, and True == 1; the value must be the one given.
    assert repr(err.value) == repr(value)
    assert str(err).startswith(f"{field}={value!r}: ")


# -- 1. unknown order line ----------------------------------------------------------------------


def test_unknown_order_line_names_the_line_and_stores_nothing(harness: Harness) -> None:
    before = snapshot(harness)
    with pytest.raises(UnknownOrderLine) as info:
        harness.service.request(make_request(line("L9", 1)))
    assert_validation(info.value, UnknownOrderLine, "lines[0].order_line_id", "L9")
    assert ORDER_ID in info.value.reason
    assert_unchanged(before, harness)


def test_unknown_order_line_is_found_at_its_index(harness: Harness) -> None:
    before = snapshot(harness)
    with pytest.raises(UnknownOrderLine) as info:
        harness.service.request(make_request(line("L2", 1), line("nope", 1)))
    assert_validation(info.value, UnknownOrderLine, "lines[1].order_line_id", "nope")
    assert_unchanged(before, harness)


def test_validate_request_refuses_like_request(harness: Harness) -> None:
    before = snapshot(harness)
    with pytest.raises(UnknownOrderLine) as info:
        harness.service.validate_request(make_request(line("L9", 1)))
    assert_validation(info.value, UnknownOrderLine, "lines[0].order_line_id", "L9")
    assert_unchanged(before, harness)


# -- 2. quantities ------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1, -100])
def test_request_line_quantity_below_one(quantity: int) -> None:
    with pytest.raises(InvalidQuantity) as info:
        RequestLine(order_line_id="L1", quantity=quantity)
    assert_validation(info.value, InvalidQuantity, "quantity", quantity)
    assert info.value.reason == "must be at least 1"


@pytest.mark.parametrize("quantity", [True, 1.0, "1", None])
def test_request_line_quantity_not_a_whole_number(quantity: object) -> None:
    with pytest.raises(InvalidQuantity) as info:
        RequestLine(order_line_id="L1", quantity=quantity)  # type: ignore[arg-type]
    assert_validation(info.value, InvalidQuantity, "quantity", quantity)
    assert info.value.reason == "must be a whole number"


def test_quantity_above_purchased(harness: Harness) -> None:
    before = snapshot(harness)
    # L1 still has 1 of 2 left (R0001 took one), so lines[0] passes; L2 has 3.
    with pytest.raises(InvalidQuantity) as info:
        harness.service.request(make_request(line("L1", 1), line("L2", 4)))
    assert_validation(info.value, InvalidQuantity, "lines[1].quantity", 4)
    assert "only 3 of 3 left" in info.value.reason
    assert_unchanged(before, harness)


def test_quantity_above_what_an_earlier_return_left(
    harness_and_return: tuple[Harness, ReturnRecord],
) -> None:
    harness, first = harness_and_return
    assert [(ln.order_line_id, ln.quantity) for ln in first.lines] == [("L1", 1)]
    before = snapshot(harness)
    with pytest.raises(InvalidQuantity) as info:
        harness.service.request(make_request(line("L1", 2)))
    assert_validation(info.value, InvalidQuantity, "lines[0].quantity", 2)
    assert "only 1 of 2 left" in info.value.reason
    assert_unchanged(before, harness)
    # The one unit that is left can still be returned.
    second = harness.service.request(make_request(line("L1", 1)))
    assert second.id == "R0002"
    assert [ln.quantity for ln in second.lines] == [1]


def test_exchange_quantity_below_one() -> None:
    with pytest.raises(InvalidQuantity) as info:
        Exchange(variant_id="v-l", quantity=0)
    assert_validation(info.value, InvalidQuantity, "quantity", 0)


# -- 3. currency mismatch -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "combine",
    [
        pytest.param(lambda a, b: a + b, id="add"),
        pytest.param(lambda a, b: a - b, id="sub"),
        pytest.param(lambda a, b: a < b, id="lt"),
        pytest.param(lambda a, b: a >= b, id="ge"),
    ],
)
def test_money_of_two_currencies_do_not_combine(combine: Callable[[Money, Money], Any]) -> None:
    with pytest.raises(CurrencyMismatch) as info:
        combine(Money("1.00", "EUR"), Money("1.00", "USD"))
    assert_validation(info.value, CurrencyMismatch, "currency", "USD")
    assert info.value.reason == "cannot combine EUR with USD"


def test_order_line_in_another_currency_than_the_order() -> None:
    eur = OrderLine(id="L1", sku="A", variant_id="v-a", quantity=1, unit_price=Money("1.00", "EUR"))
    usd = OrderLine(id="L2", sku="B", variant_id="v-b", quantity=1, unit_price=Money("1.00", "USD"))
    with pytest.raises(CurrencyMismatch) as info:
        OrderSnapshot(
            id="o",
            shop=SHOP,
            created_at=ORDERED,
            fulfilled_at=ORDERED,
            currency="EUR",
            lines=[eur, usd],
        )
    assert_validation(info.value, CurrencyMismatch, "lines[1].unit_price.currency", "USD")
    assert info.value.reason == "order currency is EUR"


def test_order_line_tax_in_another_currency_than_its_price() -> None:
    with pytest.raises(CurrencyMismatch) as info:
        OrderLine(
            id="L1",
            sku="A",
            variant_id="v-a",
            quantity=1,
            unit_price=Money("1.00", "EUR"),
            tax=Money("0.20", "USD"),
        )
    assert_validation(info.value, CurrencyMismatch, "tax.currency", "USD")


def test_exchange_priced_in_another_currency_stores_nothing(harness: Harness) -> None:
    before = snapshot(harness)
    outcome = Exchange(variant_id="v-l", unit_price=Money("25.00", "USD"))
    with pytest.raises(CurrencyMismatch) as info:
        harness.service.request(make_request(line("L2", 1, outcome=outcome)))
    assert_validation(info.value, CurrencyMismatch, "lines[0].outcome.unit_price.currency", "USD")
    assert_unchanged(before, harness)


def test_store_credit_bonus_in_another_currency_stores_nothing(harness: Harness) -> None:
    before = snapshot(harness)
    outcome = StoreCredit(bonus=Money("5.00", "USD"))
    with pytest.raises(CurrencyMismatch) as info:
        harness.service.request(make_request(line("L2", 2, outcome=outcome)))
    assert_validation(info.value, CurrencyMismatch, "lines[0].outcome.bonus.currency", "USD")
    assert_unchanged(before, harness)


# -- 4. money amounts and currencies --------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        pytest.param(0.1, "EUR", "float is not accepted", id="float"),
        pytest.param(1.0, "EUR", "float is not accepted", id="whole-float"),
        pytest.param(True, "EUR", "a bool (True/False) is not an amount", id="bool"),
        pytest.param(False, "EUR", "a bool (True/False) is not an amount", id="bool-false"),
        pytest.param("1.001", "EUR", "EUR has 2 decimals", id="too-many-decimals"),
        pytest.param(Decimal("0.005"), "EUR", "EUR has 2 decimals", id="decimal-too-fine"),
        pytest.param("1.5", "JPY", "JPY has 0 decimals", id="jpy-decimals"),
        pytest.param("1.0005", "KWD", "KWD has 3 decimals", id="kwd-decimals"),
        pytest.param("NaN", "EUR", "plain decimal notation", id="nan-str"),
        pytest.param(Decimal("NaN"), "EUR", "must be finite", id="nan-decimal"),
        pytest.param("sNaN", "EUR", "plain decimal notation", id="snan"),
        pytest.param("Infinity", "EUR", "plain decimal notation", id="inf-str"),
        pytest.param(Decimal("-Infinity"), "EUR", "must be finite", id="-inf-decimal"),
        pytest.param(float("inf"), "EUR", "float is not accepted", id="inf-float"),
        pytest.param("12,50", "EUR", "is not a number", id="comma"),
        pytest.param(None, "EUR", "must be a Decimal, int or str", id="none"),
    ],
)
def test_invalid_amount(amount: object, currency: str, reason: str) -> None:
    with pytest.raises(InvalidAmount) as info:
        Money(amount, currency)  # type: ignore[arg-type]
    assert_validation(info.value, InvalidAmount, "amount", amount)
    assert reason in info.value.reason


@pytest.mark.parametrize("currency", ["EURO", "eur", "E1R", "EU", "", None, 978])
def test_unknown_currency(currency: object) -> None:
    with pytest.raises(UnknownCurrency) as info:
        Money("1.00", currency)  # type: ignore[arg-type]
    assert_validation(info.value, UnknownCurrency, "currency", currency)


def test_order_in_an_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency) as info:
        make_order(currency="euro")
    assert_validation(info.value, UnknownCurrency, "currency", "euro")


# -- 5. outcomes and reasons ----------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["teleport", "refund", OutcomeKind.REFUND, None, Refund])
def test_unknown_outcome(outcome: object) -> None:
    with pytest.raises(UnknownOutcome) as info:
        RequestLine(order_line_id="L1", quantity=1, outcome=outcome)  # type: ignore[arg-type]
    assert_validation(info.value, UnknownOutcome, "outcome", outcome)


@pytest.mark.parametrize("settle", [OutcomeKind.EXCHANGE, OutcomeKind.KEEP, "teleport", None])
def test_keep_settles_as_refund_or_store_credit_only(settle: object) -> None:
    with pytest.raises(UnknownOutcome) as info:
        Keep(settle=settle)  # type: ignore[arg-type]
    assert_validation(info.value, UnknownOutcome, "settle", settle)


def test_keep_settle_given_as_a_string_is_refunded_or_refused(harness: Harness) -> None:
    try:
        outcome = Keep(settle="refund")  # type: ignore[arg-type]
    except UnknownOutcome:
        return  # refusing the string is acceptable too
    record = harness.service.request(make_request(line("L2", 1, outcome=outcome)))
    assert record.status == "closed"
    assert [refund.amount for refund in harness.ports.commerce.refunds] == [Money("11.00", "EUR")]


@pytest.mark.parametrize(
    ("build", "cls", "value"),
    [
        pytest.param(lambda: line(reason="Bored!"), InvalidRequest, "Bored!", id="reason"),
        pytest.param(lambda: line(condition="broken"), InvalidRequest, "broken", id="condition"),
        pytest.param(
            lambda: CarrierUpdate(shop=SHOP, return_id="R0001", event_id="c1", status="TELEPORTED"),
            InvalidPayload,
            "TELEPORTED",
            id="carrier-status",
        ),
        pytest.param(
            lambda: ReceivedLine(line_id="L1", quantity=1, qc="maybe"),
            InvalidPayload,
            "maybe",
            id="qc",
        ),
        pytest.param(
            lambda: ReceivedLine(line_id="L1", quantity=1, condition="soggy"),
            InvalidPayload,
            "soggy",
            id="received-condition",
        ),
    ],
)
def test_unknown_enum_value_is_refused_with_its_value(
    build: Callable[[], object], cls: type[ValidationError], value: str
) -> None:
    with pytest.raises(cls) as info:
        build()
    assert type(info.value) is cls
    assert info.value.value == value
    assert "must be one of: " in info.value.reason


@pytest.mark.parametrize(
    ("build", "field"),
    [
        pytest.param(lambda: line(reason="Bored!"), "reason", id="reason"),
        pytest.param(lambda: line(condition="broken"), "condition", id="condition"),
        pytest.param(
            lambda: CarrierUpdate(shop=SHOP, return_id="R0001", event_id="c1", status="TELEPORTED"),
            "status",
            id="carrier-status",
        ),
        pytest.param(lambda: ReceivedLine(line_id="L1", quantity=1, qc="maybe"), "qc", id="qc"),
        pytest.param(
            lambda: ReceivedLine(line_id="L1", quantity=1, condition="soggy"),
            "condition",
            id="received-condition",
        ),
    ],
)
def test_unknown_enum_value_names_the_field(build: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.field == field


# -- 6. another shop's return ---------------------------------------------------------------------

_OTHER_SHOP_CALLS: dict[str, Callable[[Any, str], object]] = {
    "get": lambda svc, rid: svc.get(OTHER_SHOP, rid),
    "timeline": lambda svc, rid: svc.timeline(OTHER_SHOP, rid),
    "approve": lambda svc, rid: svc.approve(OTHER_SHOP, rid),
    "cancel": lambda svc, rid: svc.cancel(OTHER_SHOP, rid),
    "decline": lambda svc, rid: svc.decline(OTHER_SHOP, rid),
    "close": lambda svc, rid: svc.close(OTHER_SHOP, rid),
    "reopen": lambda svc, rid: svc.reopen(OTHER_SHOP, rid),
    "flag": lambda svc, rid: svc.flag(OTHER_SHOP, rid, "look"),
    "issue_label": lambda svc, rid: svc.issue_label(OTHER_SHOP, rid),
    "reset": lambda svc, rid: svc.reset(OTHER_SHOP, rid),
    "retry_exchange_release": lambda svc, rid: svc.retry_exchange_release(OTHER_SHOP, rid),
    "carrier_update": lambda svc, rid: svc.handle(
        CarrierUpdate(shop=OTHER_SHOP, return_id=rid, event_id="x1", status="RETURN_PICKED_UP")
    ),
    "warehouse_receipt": lambda svc, rid: svc.handle(
        WarehouseReceipt(
            shop=OTHER_SHOP,
            return_id=rid,
            event_id="x1",
            lines=[ReceivedLine(line_id="L1", quantity=1)],
        )
    ),
    "warehouse_finished": lambda svc, rid: svc.handle(
        WarehouseFinished(shop=OTHER_SHOP, return_id=rid, event_id="x1")
    ),
}


@pytest.mark.parametrize("call", list(_OTHER_SHOP_CALLS))
def test_another_shops_return_is_not_found(call: str) -> None:
    harness, record = open_return()
    # shop-b has an order with the same id and a return of its own (R0002).
    harness.ports.commerce.add_order(make_order(shop=OTHER_SHOP))
    theirs = harness.service.request(make_request(line("L2", 1), shop=OTHER_SHOP))
    assert (record.id, theirs.id) == ("R0001", "R0002")
    before = snapshot(harness, SHOP, OTHER_SHOP)

    with pytest.raises(ReturnNotFound) as info:
        _OTHER_SHOP_CALLS[call](harness.service, record.id)

    err = info.value
    assert type(err) is ReturnNotFound
    assert (err.shop, err.return_id) == (OTHER_SHOP, "R0001")
    assert str(err) == "return_id='R0001': no such return in shop 'shop-b'"
    assert_unchanged(before, harness, SHOP, OTHER_SHOP)
    assert harness.service.get(SHOP, record.id) == record
    assert [r.id for r in harness.service.list(OTHER_SHOP)] == ["R0002"]
    for source in ("carrier", "warehouse"):
        assert not harness.store.seen(InboundKey(OTHER_SHOP, source, "x1"))


# -- 7. events a state does not allow ------------------------------------------------------------


def assert_transition(
    err: InvalidTransition, record: ReturnRecord, event: str, state: tuple[str, str]
) -> None:
    assert type(err) is InvalidTransition
    assert err.return_id == record.id
    assert err.state == state == record.state
    assert err.event == event
    assert err.allowed == TABLE.allowed(state)
    assert err.allowed
    assert event not in err.allowed
    assert f"return {record.id!r}" in str(err)
    assert f"event {event!r}" in str(err)


def test_approve_an_auto_approved_return(
    harness_and_return: tuple[Harness, ReturnRecord],
) -> None:
    harness, record = harness_and_return
    # Auto-approved, then the fake carrier's label moved it on.
    assert record.state == ("label_sent", "no_exchange")
    before = snapshot(harness)
    with pytest.raises(InvalidTransition) as info:
        harness.service.approve(SHOP, record.id)
    assert_transition(info.value, record, "approve", ("label_sent", "no_exchange"))
    assert info.value.allowed == harness.service.allowed_events(record)
    assert_unchanged(before, harness)


def test_reopen_an_open_return(harness_and_return: tuple[Harness, ReturnRecord]) -> None:
    harness, record = harness_and_return
    before = snapshot(harness)
    with pytest.raises(InvalidTransition) as info:
        harness.service.reopen(SHOP, record.id, reason="why not")
    assert_transition(info.value, record, "reopen", ("label_sent", "no_exchange"))
    assert_unchanged(before, harness)


def test_close_a_return_pending_review() -> None:
    harness, record = open_return(attrs.evolve(POLICY, auto_approve=False))
    assert record.state == ("pending_review", "no_exchange")
    before = snapshot(harness)
    with pytest.raises(InvalidTransition) as info:
        harness.service.close(SHOP, record.id)
    assert_transition(info.value, record, "close", ("pending_review", "no_exchange"))
    assert_unchanged(before, harness)


def test_cancel_a_declined_return_allows_nothing() -> None:
    harness, record = open_return(attrs.evolve(POLICY, auto_approve=False))
    record = harness.service.decline(SHOP, record.id, "FINAL_SALE")
    assert record.state == ("declined", "no_exchange")
    before = snapshot(harness)
    with pytest.raises(InvalidTransition) as info:
        harness.service.cancel(SHOP, record.id)
    err = info.value
    assert (err.return_id, err.state, err.event) == (record.id, record.state, "cancel")
    assert err.allowed == TABLE.allowed(record.state)
    assert "cancel" not in err.allowed
    assert_unchanged(before, harness)


def test_reset_a_return_not_yet_received(
    harness_and_return: tuple[Harness, ReturnRecord],
) -> None:
    harness, record = harness_and_return
    before = snapshot(harness)
    with pytest.raises(InvalidTransition) as info:
        harness.service.reset(SHOP, record.id)
    assert_transition(info.value, record, "reset_return", ("label_sent", "no_exchange"))
    assert_unchanged(before, harness)


def test_reset_a_return_with_no_accepted_unit() -> None:
    harness = Harness(policy=POLICY)
    harness.ports.commerce.add_order(make_order())
    record = harness.service.request(make_request(line("L2", 2)))
    result = harness.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="w1",
            lines=[ReceivedLine(line_id="L2", quantity=1, qc=QcResult.FAIL)],
        )
    )
    record = result.record
    assert record.state == ("item_received", "no_exchange")
    assert [(ln.received, ln.accepted, ln.rejected) for ln in record.lines] == [(1, 0, 1)]
    before = snapshot(harness)
    with pytest.raises(InvalidPayload) as info:
        harness.service.reset(SHOP, record.id)
    assert_validation(info.value, InvalidPayload, "lines", [f"{record.id}-1"])
    assert info.value.reason == "no accepted unit to carry over"
    assert_unchanged(before, harness)
    # No id was used up by the refused reset.
    assert harness.ids() == "R0002"


# -- 8. inbound bad data --------------------------------------------------------------------------


def _receipt(rid: str, *lines: ReceivedLine, event_id: str = "w1") -> WarehouseReceipt:
    return WarehouseReceipt(shop=SHOP, return_id=rid, event_id=event_id, lines=lines)


def _receive(harness: Harness, rid: str, quantity: object) -> object:
    """Build the receipt (L1 x ``quantity``, event w1) and hand it to the service."""
    received = ReceivedLine(line_id="L1", quantity=quantity)  # type: ignore[arg-type]
    return harness.service.handle(_receipt(rid, received))


WAREHOUSE_W1 = InboundKey(SHOP, "warehouse", "w1")
CARRIER_C1 = InboundKey(SHOP, "carrier", "c1")


def test_receipt_of_an_unknown_line_then_corrected_retry(harness: Harness, rid: str) -> None:
    before = snapshot(harness)
    with pytest.raises(InvalidPayload) as info:
        harness.service.handle(_receipt(rid, ReceivedLine(line_id="L9", quantity=1)))
    assert_validation(info.value, InvalidPayload, "lines[0].line_id", "L9")
    assert_unchanged(before, harness)
    assert not harness.store.seen(WAREHOUSE_W1)

    result = harness.service.handle(_receipt(rid, ReceivedLine(line_id="L1", quantity=1)))
    assert result.status == "applied"
    assert harness.store.seen(WAREHOUSE_W1)
    assert result.record.lines[0].received == 1


def test_receipt_of_an_unknown_line_after_a_good_one(harness: Harness, rid: str) -> None:
    before = snapshot(harness)
    receipt = _receipt(
        rid, ReceivedLine(line_id="L1", quantity=1), ReceivedLine(line_id="L2", quantity=1)
    )
    with pytest.raises(InvalidPayload) as info:
        harness.service.handle(receipt)
    # L2 is on the order but not on this return.
    assert_validation(info.value, InvalidPayload, "lines[1].line_id", "L2")
    assert_unchanged(before, harness)
    assert not harness.store.seen(WAREHOUSE_W1)


def test_receipt_above_what_is_outstanding_then_corrected_retry(harness: Harness, rid: str) -> None:
    before = snapshot(harness)
    with pytest.raises(InvalidPayload) as info:
        harness.service.handle(_receipt(rid, ReceivedLine(line_id="L1", quantity=2)))
    assert_validation(info.value, InvalidPayload, "lines[0].quantity", 2)
    assert info.value.reason == f"line {rid}-1 expects 1 more unit(s)"
    assert_unchanged(before, harness)
    assert not harness.store.seen(WAREHOUSE_W1)

    result = harness.service.handle(_receipt(rid, ReceivedLine(line_id="L1", quantity=1)))
    assert result.status == "applied"
    assert harness.store.seen(WAREHOUSE_W1)
    assert result.record.lines[0].received == 1


def test_receipt_split_over_two_entries_above_outstanding(harness: Harness, rid: str) -> None:
    before = snapshot(harness)
    receipt = _receipt(
        rid, ReceivedLine(line_id="L1", quantity=1), ReceivedLine(line_id=f"{rid}-1", quantity=1)
    )
    with pytest.raises(InvalidPayload) as info:
        harness.service.handle(receipt)
    # The total for the line is what is too many; the first entry of it is named.
    assert_validation(info.value, InvalidPayload, "lines[0].quantity", 1)
    assert info.value.reason == f"line {rid}-1 expects 1 more unit(s)"
    assert_unchanged(before, harness)
    assert not harness.store.seen(WAREHOUSE_W1)


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5, None])
def test_received_line_with_a_bad_quantity_then_corrected_retry(
    harness: Harness, rid: str, quantity: object
) -> None:
    before = snapshot(harness)
    with pytest.raises(InvalidPayload) as info:
        _receive(harness, rid, quantity)
    assert_validation(info.value, InvalidPayload, "quantity", quantity)
    assert_unchanged(before, harness)
    assert not harness.store.seen(WAREHOUSE_W1)

    result = harness.service.handle(_receipt(rid, ReceivedLine(line_id="L1", quantity=1)))
    assert result.status == "applied"


def test_empty_receipt() -> None:
    with pytest.raises(InvalidPayload) as info:
        WarehouseReceipt(shop=SHOP, return_id="R0001", event_id="w1", lines=[])
    assert_validation(info.value, InvalidPayload, "lines", ())


def test_unknown_carrier_status_then_corrected_retry(harness: Harness, rid: str) -> None:
    before = snapshot(harness)
    with pytest.raises(InvalidPayload) as info:
        CarrierUpdate(shop=SHOP, return_id=rid, event_id="c1", status="TELEPORTED")
    assert type(info.value) is InvalidPayload
    assert info.value.value == "TELEPORTED"
    assert_unchanged(before, harness)
    assert not harness.store.seen(CARRIER_C1)

    fixed = CarrierUpdate(shop=SHOP, return_id=rid, event_id="c1", status="RETURN_PICKED_UP")
    result = harness.service.handle(fixed)
    assert result.status == "applied"
    assert result.record.status == "in_transit"
    assert harness.store.seen(CARRIER_C1)


@pytest.mark.parametrize("event", [None, "RETURN_PICKED_UP", {"status": "DELIVERED"}])
def test_handle_something_that_is_not_an_event(harness: Harness, event: object) -> None:
    before = snapshot(harness)
    with pytest.raises(InvalidPayload) as info:
        harness.service.handle(event)  # type: ignore[arg-type]
    assert_validation(info.value, InvalidPayload, "event", event)
    assert_unchanged(before, harness)


def test_request_that_is_not_a_request(harness: Harness) -> None:
    before = snapshot(harness)
    with pytest.raises(InvalidPayload) as info:
        harness.service.request({"order_id": ORDER_ID})  # type: ignore[arg-type]
    assert_validation(info.value, InvalidPayload, "request", {"order_id": ORDER_ID})
    assert_unchanged(before, harness)


# -- 9. decline reason ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["bored", "final_sale", "", None])
def test_decline_with_an_unknown_reason(reason: object) -> None:
    harness, record = open_return(attrs.evolve(POLICY, auto_approve=False))
    before = snapshot(harness)
    with pytest.raises(InvalidPayload) as info:
        harness.service.decline(SHOP, record.id, reason)  # type: ignore[arg-type]
    assert_validation(info.value, InvalidPayload, "reason", reason)
    assert "RETURN_PERIOD_ENDED, FINAL_SALE, OTHER" in info.value.reason
    assert_unchanged(before, harness)
    # The same decline with a known reason goes through.
    assert harness.service.decline(SHOP, record.id, "FINAL_SALE").status == "declined"


# -- 10. policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window_days": -1}, "window_days=-1: "),
        ({"window_days": 1.5}, "window_days=1.5: "),
        ({"window_days": True}, "window_days=True: "),
        ({"max_attempts": 0}, "max_attempts=0: "),
        ({"max_attempts": -3}, "max_attempts=-3: "),
        ({"max_attempts": "3"}, "max_attempts='3': "),
    ],
)
def test_policy_set_up_wrongly(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ReturnPolicy(**settings)
    assert type(info.value) is ConfigurationError
    assert str(info.value).startswith(message)


# -- 11. exchange not offered (seed 003) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "cause"),
    [
        (
            {"created_at": datetime(2018, 6, 1, tzinfo=timezone.utc)},
            "order is older than 2019",
        ),
        (
            {"created_by_app": "some-other-app"},
            "order was created by the app 'some-other-app'",
        ),
        ({"has_duties": True}, "order has duties"),
        ({"has_prepaid_subscription": True}, "order has a prepaid subscription"),
        ({"addresses_valid": False}, "order has an invalid billing or shipping address"),
    ],
)
def test_exchange_not_offered_names_the_cause(facts: dict[str, Any], cause: str) -> None:
    harness = Harness(policy=POLICY)
    harness.ports.commerce.add_order(make_order("2001", **facts))
    before = snapshot(harness)
    exchange = make_request(line("L1", 1, outcome=Exchange(variant_id="v-tee-l")), order_id="2001")
    with pytest.raises(ExchangeNotOffered) as info:
        harness.service.request(exchange)
    assert_validation(info.value, ExchangeNotOffered, "lines[0].outcome", "exchange")
    assert info.value.reason == f"{cause}: refund or store credit"
    assert_unchanged(before, harness)
    assert harness.service.list(SHOP) == []

    refund = harness.service.request(make_request(line("L1", 1), order_id="2001"))
    assert refund.id == "R0001"
    assert refund.status == "label_sent"
    assert refund.exchange_lines == ()


def test_exchange_not_offered_on_a_later_line(harness: Harness) -> None:
    harness.ports.commerce.add_order(make_order("2001", has_duties=True))
    before = snapshot(harness)
    request = make_request(
        line("L1", 1), line("L2", 1, outcome=Exchange(variant_id="v-cap-2")), order_id="2001"
    )
    with pytest.raises(ExchangeNotOffered) as info:
        harness.service.request(request)
    assert_validation(info.value, ExchangeNotOffered, "lines[1].outcome", "exchange")
    assert_unchanged(before, harness)


# -- 12. one tree, picklable ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (ValidationError, ReturnflowError),
        (MoneyError, ValidationError),
        (InvalidAmount, MoneyError),
        (UnknownCurrency, MoneyError),
        (CurrencyMismatch, MoneyError),
        (InvalidRequest, ValidationError),
        (UnknownOrderLine, InvalidRequest),
        (InvalidQuantity, InvalidRequest),
        (UnknownOutcome, InvalidRequest),
        (ExchangeNotOffered, InvalidRequest),
        (UnknownShop, InvalidRequest),
        (UnknownReason, InvalidRequest),
        (EvidenceRequired, InvalidRequest),
        (OutcomeNotOffered, InvalidRequest),
        (InvalidRule, ConfigurationError),
        (InvalidPayload, ValidationError),
        (ReturnNotFound, ReturnflowError),
        (InvalidTransition, ReturnflowError),
        (ConcurrencyConflict, ReturnflowError),
        (PortError, ReturnflowError),
        (ConfigurationError, ReturnflowError),
    ],
)
def test_every_error_is_in_the_one_tree(cls: type[Exception], parent: type[Exception]) -> None:
    assert cls.__bases__[0] is parent
    assert issubclass(cls, ReturnflowError)


@pytest.mark.parametrize("name", errors_module.__all__)
def test_every_exported_error_derives_from_the_root(name: str) -> None:
    assert issubclass(getattr(errors_module, name), ReturnflowError)


def _raised(build: Callable[[], object]) -> ReturnflowError:
    with pytest.raises(ReturnflowError) as info:
        build()
    return info.value


_ERRORS: dict[str, Callable[[], ReturnflowError]] = {
    "InvalidAmount": lambda: _raised(lambda: Money(0.1, "EUR")),  # type: ignore[arg-type]
    "UnknownCurrency": lambda: _raised(lambda: Money("1.00", "EURO")),
    "CurrencyMismatch": lambda: _raised(lambda: Money("1.00", "EUR") + Money("1.00", "USD")),
    "InvalidRequest": lambda: _raised(lambda: line(reason="Bored!")),
    "UnknownOrderLine": lambda: UnknownOrderLine("lines[0].order_line_id", "L9", "no such line"),
    "InvalidQuantity": lambda: _raised(lambda: line(quantity=0)),
    "UnknownOutcome": lambda: _raised(lambda: line(outcome="teleport")),
    "ExchangeNotOffered": lambda: ExchangeNotOffered(
        "lines[0].outcome", "exchange", "order has duties: refund or store credit"
    ),
    "UnknownShop": lambda: UnknownShop("shop", "popup", "no return policy for this shop"),
    "UnknownReason": lambda: UnknownReason("lines[0].reason", "bored", "not a reason here"),
    "EvidenceRequired": lambda: EvidenceRequired("lines[0].note", "", "needs a note"),
    "OutcomeNotOffered": lambda: OutcomeNotOffered(
        "lines[0].outcome", "refund", "rule 'outlet' offers only: store_credit"
    ),
    "InvalidRule": lambda: _raised(lambda: Rule("r", {"sku": 3}, {"keep": True})),
    "InvalidPayload": lambda: _raised(lambda: ReceivedLine(line_id="L1", quantity=0)),
    "ReturnNotFound": lambda: ReturnNotFound(OTHER_SHOP, "R0001"),
    "InvalidTransition": lambda: InvalidTransition(
        "R0001", ("label_sent", "no_exchange"), "approve", ("cancel", "deliver")
    ),
    "ConcurrencyConflict": lambda: ConcurrencyConflict("R0001", 2, 3),
    "PortError": lambda: PortError("commerce", "refund", "boom: twice", retryable=False),
    "ConfigurationError": lambda: _raised(lambda: ReturnPolicy(max_attempts=0)),
}

_ATTRIBUTES = (
    "field",
    "value",
    "reason",
    "shop",
    "return_id",
    "state",
    "event",
    "allowed",
    "expected",
    "actual",
    "port",
    "operation",
    "retryable",
)


@pytest.mark.parametrize("name", list(_ERRORS))
def test_errors_pickle_round_trip(name: str) -> None:
    err = _ERRORS[name]()
    assert type(err).__name__ == name
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert str(copy) == str(err)
    assert copy.args == err.args
    present = [attr for attr in _ATTRIBUTES if hasattr(err, attr)]
    if isinstance(err, ValidationError):
        assert {"field", "value", "reason"} <= set(present)
    for attr in present:
        assert getattr(copy, attr) == getattr(err, attr), attr


# -- plain data of the wrong JSON type -----------------------------------------------------


_SCAN = {"shop": "shop-a", "return_id": "R1", "event_id": "e1", "status": "DELIVERED"}
_RECEIPT = {
    "shop": "shop-a",
    "return_id": "R1",
    "event_id": "e2",
    "lines": [{"line_id": "L1", "quantity": 1}],
}


@pytest.mark.parametrize(
    ("data", "field", "value"),
    [
        ({**_SCAN, "shop": 5}, "shop", 5),
        ({**_SCAN, "return_id": None}, "return_id", None),
        ({**_SCAN, "event_id": ["e1"]}, "event_id", ["e1"]),
        ({**_RECEIPT, "lines": [{"line_id": "L1", "quantity": 1.9}]}, "lines[0].quantity", 1.9),
        ({**_RECEIPT, "lines": [{"line_id": "L1", "quantity": True}]}, "lines[0].quantity", True),
        ({**_RECEIPT, "lines": [{"line_id": "L1", "quantity": "1"}]}, "lines[0].quantity", "1"),
        ({**_RECEIPT, "lines": [{"line_id": 7, "quantity": 1}]}, "lines[0].line_id", 7),
    ],
)
def test_wrong_json_types_are_refused_not_coerced(data: Any, field: str, value: object) -> None:
    """The converter does not call ``str()`` or ``int()`` on what it is given."""
    from returnflow.domain.inbound import CarrierUpdate, WarehouseReceipt
    from returnflow.serialization import structure

    with pytest.raises(InvalidPayload) as caught:
        structure(data, WarehouseReceipt if "lines" in data else CarrierUpdate)
    assert (caught.value.field, caught.value.value) == (field, value)


@pytest.mark.parametrize("data", [[1, 2], "R1", 5, None])
def test_data_that_is_not_an_object_is_refused(data: object) -> None:
    from returnflow.domain.inbound import CarrierUpdate
    from returnflow.serialization import structure

    with pytest.raises(InvalidPayload, match="must be an object for CarrierUpdate") as caught:
        structure(data, CarrierUpdate)
    assert (caught.value.field, caught.value.value) == ("data", data)


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        (None, "lines"),
        (5, "lines"),
        ("L1", "lines"),
        ([{"line_id": "L1", "quantity": 1}], "lines[0]"),
    ],
)
def test_receipt_lines_that_are_not_received_lines_are_refused(lines: Any, field: str) -> None:
    from returnflow import InvalidPayload, WarehouseReceipt

    with pytest.raises(InvalidPayload) as raised:
        WarehouseReceipt(shop="s", return_id="R1", event_id="e", lines=lines)
    assert raised.value.field == field


@pytest.mark.parametrize("limit", ["a", None, 1.5, True])
def test_a_limit_that_is_not_a_whole_number_is_refused(limit: Any) -> None:
    from returnflow import InvalidPayload

    harness = Harness()
    with pytest.raises(InvalidPayload, match="limit"):
        harness.service.tick(limit=limit)
    with pytest.raises(InvalidPayload, match="limit"):
        harness.service.dispatch_pending(limit)
