"""Tests of the in-memory port fakes in :mod:`returnflow.testing`."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from returnflow.domain.model import OrderLine, OrderSnapshot
from returnflow.domain.money import Money
from returnflow.errors import PortError
from returnflow.ports.carrier import Carrier
from returnflow.ports.commerce import (
    CommercePlatform,
    CreditReceipt,
    ExchangeItem,
    HoldStatus,
    LineQuantity,
)
from returnflow.ports.events import DomainEvent, EventPublisher
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import Payments
from returnflow.ports.warehouse import Warehouse
from returnflow.testing import (
    Call,
    FakeCarrier,
    FakeCommercePlatform,
    FakeEventPublisher,
    FakeExchangeLine,
    FakeNotifier,
    FakePayments,
    FakePorts,
    FakeRefund,
    FakeWarehouse,
)

SHOP = "shop-1"
ORDER = "order-1"
CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def make_order(shop: str = SHOP, order_id: str = ORDER, currency: str = "EUR") -> OrderSnapshot:
    """Two lines: 2 x 10.00 and 1 x 10.00, paid 30.00 in total."""
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=CREATED,
        fulfilled_at=CREATED,
        currency=currency,
        lines=(
            OrderLine(
                id="line-1",
                sku="SKU-1",
                variant_id="var-1",
                quantity=2,
                unit_price=Money("10.00", currency),
            ),
            OrderLine(
                id="line-2",
                sku="SKU-2",
                variant_id="var-2",
                quantity=1,
                unit_price=Money("10.00", currency),
            ),
        ),
        customer_email="customer@example.com",
    )


@pytest.fixture
def commerce() -> FakeCommercePlatform:
    fake = FakeCommercePlatform()
    fake.add_order(make_order())
    return fake


def hold_items(commerce: FakeCommercePlatform, key: str = "hold-key", tag: str = "rf-hold") -> str:
    items = [
        ExchangeItem(exchange_line_id="x-1", variant_id="var-9", quantity=1, sku="SKU-9"),
        ExchangeItem(exchange_line_id="x-2", variant_id="var-8", quantity=2),
    ]
    hold = commerce.add_exchange_items(SHOP, ORDER, items, hold_tag=tag, idempotency_key=key)
    return hold.hold_id


def statuses(commerce: FakeCommercePlatform) -> list[str]:
    return [line.status for line in commerce.exchange_lines(SHOP, ORDER)]


# -- protocols ------------------------------------------------------------------------------


def test_fakes_satisfy_their_protocols() -> None:
    commerce: CommercePlatform = FakeCommercePlatform()
    warehouse: Warehouse = FakeWarehouse()
    carrier: Carrier = FakeCarrier()
    payments: Payments = FakePayments()
    notifier: Notifier = FakeNotifier()
    events: EventPublisher = FakeEventPublisher()
    ports = FakePorts()
    bundled: tuple[CommercePlatform, Warehouse, Carrier, Payments, Notifier, EventPublisher] = (
        ports.commerce,
        ports.warehouse,
        ports.carrier,
        ports.payments,
        ports.notifier,
        ports.events,
    )
    assert [type(port).__name__ for port in bundled] == [
        type(port).__name__ for port in (commerce, warehouse, carrier, payments, notifier, events)
    ]
    assert len({id(port) for port in ports.all()}) == 6


# -- idempotency ----------------------------------------------------------------------------


def test_replayed_refund_returns_the_same_receipt_and_refunds_once(
    commerce: FakeCommercePlatform,
) -> None:
    lines = [LineQuantity("line-1", 1)]
    first = commerce.refund(SHOP, ORDER, Money("10.00", "EUR"), lines, idempotency_key="r1")
    again = commerce.refund(SHOP, ORDER, Money("10.00", "EUR"), lines, idempotency_key="r1")

    assert again is first
    assert first.refund_id == "refund-1"
    assert commerce.refunds == [
        FakeRefund("refund-1", SHOP, ORDER, Money("10.00", "EUR"), (LineQuantity("line-1", 1),))
    ]
    assert [call.outcome for call in commerce.calls_to("refund")] == ["ok", "replayed"]


def test_replayed_hold_adds_no_second_lines_and_replayed_release_no_second_change(
    commerce: FakeCommercePlatform,
) -> None:
    hold_id = hold_items(commerce)
    assert hold_items(commerce) == hold_id
    assert len(commerce.exchange_lines(SHOP, ORDER)) == 2

    commerce.release_exchange(SHOP, ORDER, hold_id, hold_tag="rf-hold", idempotency_key="rel")
    assert commerce.tags(SHOP, ORDER) == set()
    commerce.add_order(make_order(), tags={"rf-hold"})  # the merchant puts the tag back
    commerce.release_exchange(SHOP, ORDER, hold_id, hold_tag="rf-hold", idempotency_key="rel")

    assert commerce.tags(SHOP, ORDER) == {"rf-hold"}
    assert [call.outcome for call in commerce.calls_to("release_exchange")] == [
        "ok",
        "replayed",
    ]


def test_replayed_label_is_the_same_and_no_second_label_is_bought() -> None:
    carrier = FakeCarrier()
    first = carrier.create_label(SHOP, "ret-1", ORDER, idempotency_key="label")
    again = carrier.create_label(SHOP, "ret-1", ORDER, idempotency_key="label")
    other = carrier.create_label(SHOP, "ret-2", ORDER, idempotency_key="label-2")

    assert again is first
    assert first.tracking_number == "TRK000001"
    assert first.label_url == "https://labels.example/TRK000001.pdf"
    assert other.tracking_number == "TRK000002"
    assert [label.tracking_number for label in carrier.labels] == ["TRK000001", "TRK000002"]
    assert carrier.get("TRK000001").status == "active"


def test_key_reused_with_other_arguments_is_refused(commerce: FakeCommercePlatform) -> None:
    lines = [LineQuantity("line-1", 1)]
    commerce.refund(SHOP, ORDER, Money("10.00", "EUR"), lines, idempotency_key="r1")

    with pytest.raises(PortError, match="idempotency key reused with other arguments") as info:
        commerce.refund(SHOP, ORDER, Money("5.00", "EUR"), lines, idempotency_key="r1")

    assert info.value.port == "commerce"
    assert info.value.operation == "refund"
    assert info.value.retryable is False
    assert len(commerce.refunds) == 1
    assert commerce.calls_to("refund")[-1].outcome == "failed"


def test_key_reused_for_another_operation_is_refused(commerce: FakeCommercePlatform) -> None:
    commerce.refund(SHOP, ORDER, Money("10.00", "EUR"), [], idempotency_key="k")
    with pytest.raises(PortError, match="reused") as info:
        commerce.issue_store_credit(SHOP, ORDER, Money("10.00", "EUR"), idempotency_key="k")
    assert info.value.retryable is False
    assert commerce.credits == []


def test_sequences_of_equal_items_count_as_the_same_arguments() -> None:
    warehouse = FakeWarehouse()
    args = (SHOP, ORDER, "ret-1")
    first = warehouse.create_return(
        *args, [LineQuantity("line-1", 1)], reason="SIZE", action="refund", idempotency_key="w"
    )
    again = warehouse.create_return(
        *args, (LineQuantity("line-1", 1),), reason="SIZE", action="refund", idempotency_key="w"
    )
    assert again is first
    assert len(warehouse.returns) == 1


# -- scripted failures ----------------------------------------------------------------------


def test_fail_twice_then_succeed_without_effect_from_failed_calls(
    commerce: FakeCommercePlatform,
) -> None:
    commerce.fail("refund", times=2)
    amount = Money("10.00", "EUR")
    for _ in range(2):
        with pytest.raises(PortError, match="injected failure") as info:
            commerce.refund(SHOP, ORDER, amount, [], idempotency_key="r1")
        assert info.value.retryable is True
        assert commerce.refunds == []

    receipt = commerce.refund(SHOP, ORDER, amount, [], idempotency_key="r1")

    assert receipt.refund_id == "refund-1"
    assert len(commerce.refunds) == 1
    assert [call.outcome for call in commerce.calls] == ["failed", "failed", "ok"]


def test_fail_only_hits_the_named_operation(commerce: FakeCommercePlatform) -> None:
    commerce.fail("restock")
    assert commerce.get_order(SHOP, ORDER).id == ORDER
    with pytest.raises(PortError):
        commerce.restock(SHOP, ORDER, [LineQuantity("line-2", 1)], idempotency_key="s")
    assert commerce.restocks == []
    commerce.restock(SHOP, ORDER, [LineQuantity("line-2", 1)], idempotency_key="s")
    assert len(commerce.restocks) == 1


def test_fail_raises_the_given_error_forever_until_healed() -> None:
    notifier = FakeNotifier()
    boom = TimeoutError("smtp timed out")
    notifier.fail(times=None, error=boom)
    for number in range(3):
        with pytest.raises(TimeoutError) as info:
            notifier.notify(SHOP, "a@example.com", "t", {}, idempotency_key=f"n{number}")
        assert info.value is boom
    notifier.heal()
    notifier.notify(SHOP, "a@example.com", "t", {"n": 1}, idempotency_key="n0")

    assert [message.context for message in notifier.messages] == [{"n": 1}]
    assert [call.outcome for call in notifier.calls] == ["failed"] * 3 + ["ok"]


def test_fail_of_an_unknown_operation_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="no operation"):
        FakeCarrier().fail("create_lable")
    with pytest.raises(ValueError, match="times"):
        FakeCarrier().fail(times=0)
    with pytest.raises(ValueError, match="rate"):
        FakeCarrier().fail_rate(1.5, seed=1)


def test_a_lost_answer_acts_and_then_times_out_and_the_retry_is_replayed() -> None:
    # The call does what it was asked (the message is sent once), its answer is lost; the
    # retry under its key is answered from the first call, and a new key is lost again
    # while the script lasts.
    notifier = FakeNotifier()
    notifier.lose_answers("notify", times=2)
    with pytest.raises(PortError, match="timed out") as info:
        notifier.notify(SHOP, "a@example.com", "t", {"n": 1}, idempotency_key="n1")
    assert info.value.retryable
    notifier.notify(SHOP, "a@example.com", "t", {"n": 1}, idempotency_key="n1")
    with pytest.raises(PortError, match="timed out"):
        notifier.notify(SHOP, "a@example.com", "t", {"n": 2}, idempotency_key="n2")
    notifier.notify(SHOP, "a@example.com", "t", {"n": 3}, idempotency_key="n3")

    assert [message.context for message in notifier.messages] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [call.outcome for call in notifier.calls] == ["ok", "replayed", "ok", "ok"]


def test_lost_answers_for_one_operation_leave_others_and_refusals_alone() -> None:
    payments = FakePayments()
    payments.lose_answers("charge", times=None)
    payments.authorize(SHOP, "ret-1", Money("5.00", "EUR"), idempotency_key="a")
    payments.fail("charge")
    with pytest.raises(PortError, match="injected"):
        payments.charge(SHOP, "ret-1", Money("5.00", "EUR"), idempotency_key="c")
    for key in ("c", "d"):
        with pytest.raises(PortError, match="timed out"):
            payments.charge(SHOP, "ret-1", Money("5.00", "EUR"), idempotency_key=key)
    payments.heal()
    payments.charge(SHOP, "ret-1", Money("5.00", "EUR"), idempotency_key="d")
    assert [payment.kind for payment in payments.payments] == ["authorization", "charge", "charge"]
    assert [call.outcome for call in payments.calls] == ["ok", "failed", "ok", "ok", "replayed"]


def test_lose_answers_of_an_unknown_operation_or_no_times_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="no operation"):
        FakeCarrier().lose_answers("create_lable")
    with pytest.raises(ValueError, match="times"):
        FakeCarrier().lose_answers(times=0)


def fail_pattern(rate: float, seed: int, calls: int = 40) -> list[bool]:
    events = FakeEventPublisher()
    events.fail_rate(rate, seed=seed)
    pattern = []
    for number in range(calls):
        event = DomainEvent("returns/request", SHOP, f"ret-{number}", {})
        try:
            events.publish(event, idempotency_key=f"e{number}")
        except PortError:
            pattern.append(True)
        else:
            pattern.append(False)
    assert len(events.events) == pattern.count(False)
    return pattern


def test_fail_rate_is_deterministic_for_a_seed() -> None:
    pattern = fail_pattern(0.5, seed=7)
    assert fail_pattern(0.5, seed=7) == pattern
    assert fail_pattern(0.5, seed=8) != pattern
    assert 0 < pattern.count(True) < len(pattern)


def test_fail_rate_zero_never_fails_and_one_always_fails() -> None:
    assert not any(fail_pattern(0.0, seed=3))
    assert all(fail_pattern(1.0, seed=3))


def test_fail_rate_for_one_operation_leaves_others_alone() -> None:
    payments = FakePayments()
    payments.fail_rate(1.0, seed=1, operation="charge")
    receipt = payments.authorize(SHOP, "ret-1", Money("5.00", "EUR"), idempotency_key="a")
    with pytest.raises(PortError):
        payments.charge(SHOP, "ret-1", Money("5.00", "EUR"), idempotency_key="c")
    assert [payment.payment_id for payment in payments.payments] == [receipt.payment_id]
    assert payments.payments[0].kind == "authorization"


def test_fake_ports_fail_and_heal_together() -> None:
    ports = FakePorts()
    ports.commerce.add_order(make_order())
    ports.fail_all_rate(1.0, seed=5)
    with pytest.raises(PortError):
        ports.commerce.get_order(SHOP, ORDER)
    with pytest.raises(PortError):
        ports.carrier.create_label(SHOP, "ret-1", ORDER, idempotency_key="l")
    ports.heal_all()
    assert ports.commerce.get_order(SHOP, ORDER).id == ORDER
    assert ports.carrier.create_label(SHOP, "ret-1", ORDER, idempotency_key="l").tracking_number
    assert ports.carrier.calls_to("create_label")[0].outcome == "failed"


# -- commerce -------------------------------------------------------------------------------


def test_get_order_refuses_unknown_order_and_other_shop(commerce: FakeCommercePlatform) -> None:
    assert commerce.get_order(SHOP, ORDER) == make_order()
    for shop, order_id in [(SHOP, "order-404"), ("shop-2", ORDER)]:
        with pytest.raises(PortError) as info:
            commerce.get_order(shop, order_id)
        assert (info.value.port, info.value.operation) == ("commerce", "get_order")
        assert info.value.retryable is False
    assert commerce.calls_to("get_order") == [
        Call("get_order", {"shop": SHOP, "order_id": ORDER}, None, "ok"),
        Call("get_order", {"shop": SHOP, "order_id": "order-404"}, None, "failed"),
        Call("get_order", {"shop": "shop-2", "order_id": ORDER}, None, "failed"),
    ]


def test_add_exchange_items_holds_them_and_tags_the_order(
    commerce: FakeCommercePlatform,
) -> None:
    hold_id = hold_items(commerce)

    assert hold_id == "hold-1"
    assert commerce.tags(SHOP, ORDER) == {"rf-hold"}
    assert commerce.exchange_lines(SHOP, ORDER) == [
        FakeExchangeLine("item-1", "hold-1", "var-9", 1, "on_hold", "x-1", "SKU-9"),
        FakeExchangeLine("item-2", "hold-1", "var-8", 2, "on_hold", "x-2", None),
    ]
    assert commerce.exchange_hold_status(SHOP, ORDER, hold_id) is HoldStatus.HELD
    call = commerce.calls_to("add_exchange_items")[0]
    assert call.idempotency_key == "hold-key"
    assert call.args["hold_tag"] == "rf-hold"


def test_release_moves_lines_to_unfulfilled_and_removes_the_tag(
    commerce: FakeCommercePlatform,
) -> None:
    hold_id = hold_items(commerce)
    commerce.release_exchange(SHOP, ORDER, hold_id, hold_tag="rf-hold", idempotency_key="rel")

    assert commerce.tags(SHOP, ORDER) == set()
    assert statuses(commerce) == ["unfulfilled", "unfulfilled"]
    assert commerce.exchange_hold_status(SHOP, ORDER, hold_id) is HoldStatus.RELEASED


def test_ignored_release_leaves_lines_on_hold_until_released_again_after_heal(
    commerce: FakeCommercePlatform,
) -> None:
    hold_id = hold_items(commerce)
    commerce.ignore_releases(times=None)

    commerce.release_exchange(SHOP, ORDER, hold_id, hold_tag="rf-hold", idempotency_key="rel")

    assert commerce.calls_to("release_exchange")[0].outcome == "ok"
    assert commerce.tags(SHOP, ORDER) == set()
    assert statuses(commerce) == ["on_hold", "on_hold"]
    assert commerce.exchange_hold_status(SHOP, ORDER, hold_id) is HoldStatus.HELD

    commerce.release_exchange(SHOP, ORDER, hold_id, hold_tag="rf-hold", idempotency_key="rel")
    assert statuses(commerce) == ["on_hold", "on_hold"]  # a replay changes nothing

    commerce.heal()
    commerce.release_exchange(SHOP, ORDER, hold_id, hold_tag="rf-hold", idempotency_key="rel-2")
    assert statuses(commerce) == ["unfulfilled", "unfulfilled"]
    assert commerce.exchange_hold_status(SHOP, ORDER, hold_id) is HoldStatus.RELEASED


def test_ignore_releases_once_by_default(commerce: FakeCommercePlatform) -> None:
    hold_id = hold_items(commerce)
    commerce.ignore_releases()
    commerce.release_exchange(SHOP, ORDER, hold_id, hold_tag="rf-hold", idempotency_key="r1")
    assert commerce.exchange_hold_status(SHOP, ORDER, hold_id) is HoldStatus.HELD
    commerce.release_exchange(SHOP, ORDER, hold_id, hold_tag="rf-hold", idempotency_key="r2")
    assert commerce.exchange_hold_status(SHOP, ORDER, hold_id) is HoldStatus.RELEASED


def test_unknown_hold_is_refused(commerce: FakeCommercePlatform) -> None:
    hold_id = hold_items(commerce)
    with pytest.raises(PortError) as info:
        commerce.release_exchange(SHOP, ORDER, "hold-9", hold_tag="rf-hold", idempotency_key="r")
    assert info.value.retryable is False
    with pytest.raises(PortError):
        commerce.exchange_hold_status(SHOP, ORDER, "hold-9")
    with pytest.raises(PortError):
        commerce.cancel_exchange_items(SHOP, ORDER, "hold-9", ["item-1"], idempotency_key="c")
    with pytest.raises(PortError):
        commerce.exchange_hold_status("shop-2", ORDER, hold_id)
    assert commerce.tags(SHOP, ORDER) == {"rf-hold"}
    assert statuses(commerce) == ["on_hold", "on_hold"]


def test_cancel_part_of_a_hold_keeps_the_tag_and_all_of_it_removes_it(
    commerce: FakeCommercePlatform,
) -> None:
    hold_id = hold_items(commerce)
    commerce.cancel_exchange_items(SHOP, ORDER, hold_id, ["item-1"], idempotency_key="c1")
    assert statuses(commerce) == ["cancelled", "on_hold"]
    assert commerce.tags(SHOP, ORDER) == {"rf-hold"}
    assert commerce.exchange_hold_status(SHOP, ORDER, hold_id) is HoldStatus.HELD

    commerce.cancel_exchange_items(SHOP, ORDER, hold_id, ["item-2"], idempotency_key="c2")
    assert statuses(commerce) == ["cancelled", "cancelled"]
    assert commerce.tags(SHOP, ORDER) == set()
    assert commerce.exchange_hold_status(SHOP, ORDER, hold_id) is HoldStatus.CANCELLED


def test_cancel_keeps_the_tag_while_another_hold_still_holds_items(
    commerce: FakeCommercePlatform,
) -> None:
    first = hold_items(commerce, key="h1")
    second = hold_items(commerce, key="h2")
    assert (first, second) == ("hold-1", "hold-2")
    commerce.cancel_exchange_items(SHOP, ORDER, first, ["item-1", "item-2"], idempotency_key="c")
    assert commerce.tags(SHOP, ORDER) == {"rf-hold"}
    assert commerce.exchange_hold_status(SHOP, ORDER, second) is HoldStatus.HELD


def test_cancel_refuses_items_of_another_hold(commerce: FakeCommercePlatform) -> None:
    first = hold_items(commerce, key="h1")
    hold_items(commerce, key="h2")
    with pytest.raises(PortError, match="no items"):
        commerce.cancel_exchange_items(SHOP, ORDER, first, ["item-3"], idempotency_key="c")
    assert statuses(commerce) == ["on_hold"] * 4


def test_over_refund_is_refused(commerce: FakeCommercePlatform) -> None:
    commerce.refund(SHOP, ORDER, Money("25.00", "EUR"), [], idempotency_key="r1")
    with pytest.raises(PortError, match="exceeds") as info:
        commerce.refund(SHOP, ORDER, Money("5.01", "EUR"), [], idempotency_key="r2")
    assert info.value.retryable is False
    receipt = commerce.refund(SHOP, ORDER, Money("5.00", "EUR"), [], idempotency_key="r3")
    assert receipt.refund_id == "refund-2"
    assert [refund.amount for refund in commerce.refunds] == [
        Money("25.00", "EUR"),
        Money("5.00", "EUR"),
    ]


def test_refund_of_more_units_than_bought_is_refused(commerce: FakeCommercePlatform) -> None:
    commerce.refund(
        SHOP, ORDER, Money("10.00", "EUR"), [LineQuantity("line-2", 1)], idempotency_key="r1"
    )
    with pytest.raises(PortError, match="units"):
        commerce.refund(
            SHOP, ORDER, Money("1.00", "EUR"), [LineQuantity("line-2", 1)], idempotency_key="r2"
        )
    with pytest.raises(PortError, match="no line"):
        commerce.refund(
            SHOP, ORDER, Money("1.00", "EUR"), [LineQuantity("line-9", 1)], idempotency_key="r3"
        )
    assert len(commerce.refunds) == 1


def test_refund_and_credit_in_another_currency_are_refused(
    commerce: FakeCommercePlatform,
) -> None:
    with pytest.raises(PortError, match="USD") as info:
        commerce.refund(SHOP, ORDER, Money("10.00", "USD"), [], idempotency_key="r1")
    assert info.value.retryable is False
    with pytest.raises(PortError, match="USD"):
        commerce.issue_store_credit(SHOP, ORDER, Money("10.00", "USD"), idempotency_key="c1")
    assert commerce.refunds == []
    assert commerce.credits == []


def test_refund_of_unknown_order_is_refused(commerce: FakeCommercePlatform) -> None:
    with pytest.raises(PortError, match="no order"):
        commerce.refund("shop-2", ORDER, Money("1.00", "EUR"), [], idempotency_key="r")


def test_store_credit_is_recorded_and_not_capped_by_the_paid_total(
    commerce: FakeCommercePlatform,
) -> None:
    first = commerce.issue_store_credit(SHOP, ORDER, Money("33.00", "EUR"), idempotency_key="c")
    second = commerce.issue_store_credit(SHOP, ORDER, Money("1.00", "EUR"), idempotency_key="d")
    assert first == CreditReceipt("gift-1", Money("33.00", "EUR"))
    assert second.credit_id == "gift-2"
    assert [credit.amount for credit in commerce.credits] == [
        Money("33.00", "EUR"),
        Money("1.00", "EUR"),
    ]
    with pytest.raises(PortError, match="positive"):
        commerce.issue_store_credit(SHOP, ORDER, Money("0.00", "EUR"), idempotency_key="e")


def test_restock_is_recorded_and_refused_beyond_the_bought_units(
    commerce: FakeCommercePlatform,
) -> None:
    commerce.restock(SHOP, ORDER, [LineQuantity("line-1", 2)], idempotency_key="s1")
    with pytest.raises(PortError, match="units"):
        commerce.restock(SHOP, ORDER, [LineQuantity("line-1", 1)], idempotency_key="s2")
    assert [(r.order_id, r.lines) for r in commerce.restocks] == [
        (ORDER, (LineQuantity("line-1", 2),))
    ]


def test_ids_are_per_instance() -> None:
    one, two = FakeCommercePlatform([make_order()]), FakeCommercePlatform([make_order()])
    assert hold_items(one) == hold_items(two) == "hold-1"


# -- warehouse, carrier, payments, notifier, events -----------------------------------------


def test_warehouse_creates_and_cancels_returns() -> None:
    warehouse = FakeWarehouse()
    created = warehouse.create_return(
        SHOP,
        ORDER,
        "ret-1",
        [LineQuantity("line-1", 1)],
        reason="returnflow",
        action="refund",
        idempotency_key="w1",
    )
    assert created.rma_id == "RMA-1"
    assert warehouse.get("RMA-1").status == "expected"
    assert warehouse.get("RMA-1").return_id == "ret-1"

    warehouse.cancel_return(SHOP, "RMA-1", idempotency_key="w2")
    assert warehouse.get("RMA-1").status == "cancelled"
    assert [r.status for r in warehouse.returns] == ["cancelled"]

    for shop, rma_id in [(SHOP, "RMA-9"), ("shop-2", "RMA-1")]:
        with pytest.raises(PortError) as info:
            warehouse.cancel_return(shop, rma_id, idempotency_key=f"w-{shop}-{rma_id}")
        assert (info.value.port, info.value.retryable) == ("warehouse", False)
    with pytest.raises(KeyError):
        warehouse.get("RMA-9")


def test_carrier_voids_labels_and_refuses_unknown_ones() -> None:
    carrier = FakeCarrier()
    label = carrier.create_label(SHOP, "ret-1", ORDER, idempotency_key="l1")
    carrier.void_label(SHOP, label.tracking_number, idempotency_key="v1")
    assert carrier.get(label.tracking_number).status == "void"
    with pytest.raises(PortError) as info:
        carrier.void_label(SHOP, "TRK999999", idempotency_key="v2")
    assert (info.value.port, info.value.operation, info.value.retryable) == (
        "carrier",
        "void_label",
        False,
    )
    assert [call.outcome for call in carrier.calls] == ["ok", "ok", "failed"]


def test_payments_record_charges_and_refuse_non_positive_amounts() -> None:
    payments = FakePayments()
    charge = payments.charge(SHOP, "ret-1", Money("4.50", "EUR"), idempotency_key="p1")
    assert payments.charge(SHOP, "ret-1", Money("4.50", "EUR"), idempotency_key="p1") is charge
    for amount in (Money("0.00", "EUR"), Money("-1.00", "EUR")):
        with pytest.raises(PortError) as info:
            payments.authorize(SHOP, "ret-1", amount, idempotency_key=f"a{amount.amount}")
        assert info.value.retryable is False
    assert [(p.payment_id, p.kind) for p in payments.payments] == [("pay-1", "charge")]


def test_notifier_keeps_messages_once_per_key() -> None:
    notifier = FakeNotifier()
    context = {"return_id": "ret-1"}
    notifier.notify(SHOP, "a@example.com", "approved", context, idempotency_key="n1")
    notifier.notify(SHOP, "a@example.com", "approved", context, idempotency_key="n1")
    with pytest.raises(PortError, match="reused"):
        notifier.notify(SHOP, "a@example.com", "declined", context, idempotency_key="n1")
    context["return_id"] = "changed"  # the fake kept a copy
    assert [(m.template, m.context) for m in notifier.messages] == [
        ("approved", {"return_id": "ret-1"})
    ]


def test_events_keep_topics_per_return_and_compare_payloads_on_replay() -> None:
    events = FakeEventPublisher()
    events.publish(DomainEvent("returns/request", SHOP, "ret-1", {"a": 1}), idempotency_key="e1")
    events.publish(DomainEvent("returns/request", SHOP, "ret-2", {}), idempotency_key="e2")
    events.publish(DomainEvent("returns/approve", SHOP, "ret-1", {}), idempotency_key="e3")
    events.publish(DomainEvent("returns/request", SHOP, "ret-1", {"a": 1}), idempotency_key="e1")
    with pytest.raises(PortError, match="reused"):
        events.publish(
            DomainEvent("returns/request", SHOP, "ret-1", {"a": 2}), idempotency_key="e1"
        )

    assert events.topics() == ["returns/request", "returns/request", "returns/approve"]
    assert events.topics_for("ret-1") == ["returns/request", "returns/approve"]
    assert [call.outcome for call in events.calls] == ["ok", "ok", "ok", "replayed", "failed"]


def test_concurrent_calls_with_one_key_have_one_effect() -> None:
    commerce = FakeCommercePlatform([make_order()])
    barrier = threading.Barrier(8)
    receipts = []

    def worker() -> None:
        barrier.wait()
        receipts.append(
            commerce.refund(SHOP, ORDER, Money("10.00", "EUR"), [], idempotency_key="same")
        )

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(commerce.refunds) == 1
    assert all(receipt is receipts[0] for receipt in receipts)
    assert sorted(call.outcome for call in commerce.calls) == ["ok"] + ["replayed"] * 7


def test_payments_refund_gives_back_at_most_what_was_charged() -> None:
    payments = FakePayments()
    payments.charge("s", "R1", Money("10.00", "EUR"), idempotency_key="c1")

    first = payments.refund("s", "R1", Money("4.00", "EUR"), idempotency_key="r1")
    again = payments.refund("s", "R1", Money("4.00", "EUR"), idempotency_key="r1")

    assert again == first
    assert [p.kind for p in payments.payments] == ["charge", "refund"]
    with pytest.raises(PortError, match="exceeds"):
        payments.refund("s", "R1", Money("6.01", "EUR"), idempotency_key="r2")
    with pytest.raises(PortError, match="exceeds"):
        payments.refund("s", "R2", Money("1.00", "EUR"), idempotency_key="r3")
    payments.refund("s", "R1", Money("6.00", "EUR"), idempotency_key="r4")
    assert [str(p.amount) for p in payments.payments if p.kind == "refund"] == [
        "4.00 EUR",
        "6.00 EUR",
    ]


def test_a_release_keeps_the_hold_tag_while_another_hold_of_the_order_is_held() -> None:
    # the tag pauses the whole order: taken off by one return's release, it would ship the
    # items another return still holds
    from returnflow.ports.commerce import ExchangeItem
    from returnflow.testing import FakeCommercePlatform, make_order

    commerce = FakeCommercePlatform()
    commerce.add_order(make_order("s", "1001"))
    first, second = (
        commerce.add_exchange_items(
            "s",
            "1001",
            [ExchangeItem(f"X{n}", f"v{n}", 1)],
            hold_tag="hold",
            idempotency_key=f"h{n}",
        )
        for n in (1, 2)
    )
    commerce.release_exchange("s", "1001", first.hold_id, hold_tag="hold", idempotency_key="r1")
    assert "hold" in commerce.tags("s", "1001")
    assert [line.status for line in commerce.exchange_lines("s", "1001")] == [
        "unfulfilled",
        "on_hold",
    ]
    commerce.release_exchange("s", "1001", second.hold_id, hold_tag="hold", idempotency_key="r2")
    assert "hold" not in commerce.tags("s", "1001")
