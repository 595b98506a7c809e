"""One scenario per seed flow, driven through the public API against the fakes.

* Seed 000, Returnflows x SmartPack: the exchange is held on the original order (tag
  ``hold-order``, line On Hold), the return is created in the warehouse linked to the order
  with Reason = Action = returnflow, only the warehouse's "Finished" closes it, the hold is
  then released; Instant Exchange releases on hand-in; a partial receipt is reset into a new
  return holding the accepted items only.
* Seed 001, helpdesk workflow: return_requested -> eligibility_check -> approved ->
  label_sent -> item_received -> refunded, with a status event and a message at each step;
  agent review; the 30-day window and final sale.
* Seed 002, Increff x Clickpost: carrier RETURN_PICKED_UP / RTO notifications, QC Pass
  releases the held exchange and QC Fail cancels its lines; inbound ids de-duplicated per
  source.

Each test checks the steps, not only the end state: the state after each step, what the
ports hold, the published topics in order, and that the recorded history walks the
transition table.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import attrs
import pytest

from returnflow import (
    TABLE,
    CarrierStatus,
    CarrierUpdate,
    Completion,
    DeclineReason,
    DispatchReport,
    Exchange,
    HandleResult,
    InvalidTransition,
    ItemCondition,
    Money,
    OrderLine,
    OrderSnapshot,
    PortError,
    QcResult,
    ReceivedLine,
    ReleaseTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRecord,
    ReturnRequest,
    ReturnToOrigin,
    ShopifyReturnStatus,
    WarehouseFinished,
    WarehouseReceipt,
    WindowStart,
    shopify_status,
)
from returnflow.ports import HoldStatus, LineQuantity
from returnflow.testing import Harness

SHOP = "shop-1"
ORDER_ID = "1001"
EMAIL = "customer@example.com"
ORDERED_AT = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)  # the harness clock: +5 days

SMARTPACK = ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED)
INSTANT = ReturnPolicy(
    completion=Completion.ON_WAREHOUSE_FINISHED, exchange_release=ReleaseTrigger.ON_HANDED_IN
)
HELPDESK = ReturnPolicy()  # seed 001 defaults: on receipt, 30 days from the order, new/good


@pytest.fixture
def order() -> OrderSnapshot:
    """A T-shirt (25.00), two caps (2 x 10.00 + 3.80 tax = 23.80, 11.90 each), a jacket
    (120.00 - 20.00 discount = 100.00) and final-sale socks (5.00)."""
    return OrderSnapshot(
        id=ORDER_ID,
        shop=SHOP,
        created_at=ORDERED_AT,
        fulfilled_at=ORDERED_AT,
        currency="EUR",
        customer_email=EMAIL,
        lines=[
            OrderLine(
                id="L1",
                sku="TEE-M",
                variant_id="tee-m",
                quantity=1,
                unit_price=Money("25.00", "EUR"),
            ),
            OrderLine(
                id="L2",
                sku="CAP",
                variant_id="cap",
                quantity=2,
                unit_price=Money("10.00", "EUR"),
                tax=Money("3.80", "EUR"),
            ),
            OrderLine(
                id="L3",
                sku="JACKET-M",
                variant_id="jacket-m",
                quantity=1,
                unit_price=Money("120.00", "EUR"),
                discount=Money("20.00", "EUR"),
            ),
            OrderLine(
                id="L4",
                sku="SOCKS",
                variant_id="socks",
                quantity=1,
                unit_price=Money("5.00", "EUR"),
                final_sale=True,
            ),
        ],
    )


# -- helpers --------------------------------------------------------------------------------


def make_harness(order: OrderSnapshot, policy: ReturnPolicy) -> Harness:
    harness = Harness(policy=policy)
    harness.ports.commerce.add_order(order)
    return harness


def open_return(harness: Harness, *lines: RequestLine, actor: str | None = None) -> ReturnRecord:
    request = ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=lines)
    return harness.service.request(request, actor=actor)


def exchange(line_id: str, variant_id: str) -> RequestLine:
    return RequestLine(
        order_line_id=line_id,
        quantity=1,
        outcome=Exchange(variant_id=variant_id),
        reason=ReturnReason.SIZE_TOO_SMALL,
    )


def scan(
    harness: Harness,
    return_id: str,
    event_id: str,
    status: CarrierStatus = CarrierStatus.PICKED_UP,
    *,
    source: str = "carrier",
) -> HandleResult:
    return harness.service.handle(
        CarrierUpdate(
            shop=SHOP, return_id=return_id, event_id=event_id, status=status, source=source
        )
    )


def receive(
    harness: Harness,
    return_id: str,
    event_id: str,
    *lines: ReceivedLine,
    source: str = "warehouse",
) -> HandleResult:
    return harness.service.handle(
        WarehouseReceipt(
            shop=SHOP, return_id=return_id, event_id=event_id, lines=lines, source=source
        )
    )


def finish(harness: Harness, return_id: str, event_id: str) -> HandleResult:
    return harness.service.handle(
        WarehouseFinished(shop=SHOP, return_id=return_id, event_id=event_id)
    )


def state(harness: Harness, return_id: str) -> tuple[str, str]:
    return harness.service.get(SHOP, return_id).state


def platform_lines(harness: Harness) -> list[tuple[str, str]]:
    """``(variant, status)`` of every exchange line added to the order."""
    lines = harness.ports.commerce.exchange_lines(SHOP, ORDER_ID)
    return [(line.variant_id, line.status) for line in lines]


def templates(harness: Harness) -> list[str]:
    messages = harness.ports.notifier.messages
    assert {message.recipient for message in messages} <= {EMAIL}
    return [message.template for message in messages]


def refunds(harness: Harness) -> list[tuple[Decimal, str, tuple[LineQuantity, ...]]]:
    return [
        (refund.amount.amount, refund.amount.currency, refund.lines)
        for refund in harness.ports.commerce.refunds
    ]


def lifecycle_path(record: ReturnRecord) -> list[str]:
    """The lifecycle states the return went through, in order."""
    path = [record.history[0].source[0]]
    for entry in record.history:
        if entry.target[0] != path[-1]:
            path.append(entry.target[0])
    return path


def assert_history_follows_table(
    record: ReturnRecord, start: tuple[str, str] = TABLE.initial
) -> None:
    """Every state in the history is declared in the table, every transition recorded is the
    table's, notes change no state, and each entry starts where the previous one ended."""
    assert record.history, record.id
    current = start
    for entry in record.history:
        assert TABLE.is_valid(entry.source), entry
        assert TABLE.is_valid(entry.target), entry
        assert entry.target[0] in TABLE.lifecycle_states
        assert entry.target[1] in TABLE.exchange_states
        assert entry.source == current, entry
        if entry.event in TABLE.events:
            assert TABLE.target(entry.source, entry.event) == entry.target, entry
        else:
            assert entry.source == entry.target, entry
        current = entry.target
    assert current == record.state


# -- seed 000: Returnflows x SmartPack -----------------------------------------------------


def test_seed000_exchange_held_until_the_warehouse_finishes(order: OrderSnapshot) -> None:
    harness = make_harness(order, SMARTPACK)
    commerce, warehouse = harness.ports.commerce, harness.ports.warehouse

    # The customer chooses an exchange: item added On Hold, order tagged, return sent to WMS.
    ret = open_return(harness, exchange("L1", "tee-l"))
    assert ret.state == ("label_sent", "on_hold")
    assert commerce.tags(SHOP, ORDER_ID) == {"hold-order"}
    [added] = commerce.exchange_lines(SHOP, ORDER_ID)
    assert (added.variant_id, added.quantity, added.status) == ("tee-l", 1, "on_hold")
    [held] = ret.exchange_lines
    assert (held.variant_id, held.status) == ("tee-l", "held")
    assert (added.exchange_line_id, added.item_id) == (held.id, held.platform_item_id)
    assert ret.refs.exchange_hold_id == added.hold_id

    [rma] = warehouse.returns
    assert rma.rma_id == ret.refs.warehouse_rma_id
    assert (rma.shop, rma.order_id, rma.return_id) == (SHOP, ORDER_ID, ret.id)
    assert rma.lines == (LineQuantity("L1", 1),)
    assert rma.reason == rma.action == "returnflow"
    assert rma.status == "expected"
    assert harness.ports.events.topics_for(ret.id) == [
        "returns/request",
        "returns/approve",
        "returns/update",
        "exchanges/hold",
    ]

    # Handed in: with the default release trigger the exchange stays on hold.
    assert scan(harness, ret.id, "gls-1").status == "applied"
    assert state(harness, ret.id) == ("in_transit", "on_hold")

    # Received but not "Finished": nothing closes, nothing is released.
    harness.clock.advance(days=3)
    result = receive(
        harness,
        ret.id,
        "sp-rcv-1",
        ReceivedLine(line_id="L1", quantity=1, condition=ItemCondition.NEW),
    )
    assert result.status == "applied"
    assert result.record.state == ("item_received", "on_hold")
    assert commerce.tags(SHOP, ORDER_ID) == {"hold-order"}
    assert platform_lines(harness) == [("tee-l", "on_hold")]
    assert commerce.calls_to("release_exchange") == []

    # "Finished" closes the return, then the hold is released.
    result = finish(harness, ret.id, "sp-fin-1")
    assert result.status == "applied"
    final = harness.service.get(SHOP, ret.id)
    assert final.state == ("closed", "released")
    assert shopify_status(final.status) is ShopifyReturnStatus.CLOSED
    assert commerce.tags(SHOP, ORDER_ID) == set()
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]
    assert [line.status for line in final.exchange_lines] == ["released"]
    assert commerce.exchange_hold_status(SHOP, ORDER_ID, added.hold_id) is HoldStatus.RELEASED
    assert refunds(harness) == []
    assert [restock.lines for restock in commerce.restocks] == [(LineQuantity("L1", 1),)]
    assert warehouse.get(rma.rma_id).status == "expected"

    assert harness.ports.events.topics_for(ret.id) == [
        "returns/request",
        "returns/approve",
        "returns/update",
        "exchanges/hold",
        "carrier/picked_up",
        "returns/update",
        "returns/close",
        "exchanges/release",
    ]
    assert templates(harness) == [
        "return_requested",
        "return_approved",
        "label_sent",
        "item_received",
        "return_closed",
        "exchange_released",
    ]
    assert lifecycle_path(final) == [
        "requested",
        "eligibility_check",
        "approved",
        "label_sent",
        "in_transit",
        "item_received",
        "closed",
    ]
    assert_history_follows_table(final)


def test_seed000_finished_before_anything_arrived_waits_for_the_receipt(
    order: OrderSnapshot,
) -> None:
    harness = make_harness(order, SMARTPACK)
    ret = open_return(harness, exchange("L1", "tee-l"))
    before = harness.service.get(SHOP, ret.id)

    topics = harness.ports.events.topics_for(ret.id)

    result = finish(harness, ret.id, "sp-fin-early")

    assert result.status == "parked"
    assert result.reason == "finished while label_sent"
    assert result.record.state == ("label_sent", "on_hold")
    [note] = result.record.history[len(before.history) :]
    assert (note.event, note.source, note.target) == ("parked", before.state, before.state)
    assert harness.ports.commerce.tags(SHOP, ORDER_ID) == {"hold-order"}
    assert platform_lines(harness) == [("tee-l", "on_hold")]
    assert harness.ports.events.topics_for(ret.id) == topics
    assert_history_follows_table(result.record)
    # the Finished re-sent is a duplicate; the receipt makes the parked one apply at once
    assert finish(harness, ret.id, "sp-fin-early").status == "duplicate"
    line_id = ret.lines[0].id
    done = receive(harness, ret.id, "sp-rcv", ReceivedLine(line_id=line_id, quantity=1))
    assert done.status == "applied"
    assert done.record.state == ("closed", "released")
    assert done.record.parked == ()
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]
    assert_history_follows_table(done.record)


def test_seed000_instant_exchange_releases_when_handed_in(order: OrderSnapshot) -> None:
    harness = make_harness(order, INSTANT)
    commerce = harness.ports.commerce
    ret = open_return(harness, exchange("L1", "tee-l"))
    assert ret.state == ("label_sent", "on_hold")

    result = scan(harness, ret.id, "gls-1")

    # Released on the carrier's first scan, before anything reached the warehouse.
    assert result.status == "applied"
    record = harness.service.get(SHOP, ret.id)
    assert record.state == ("in_transit", "released")
    assert [line.received for line in record.lines] == [0]
    assert commerce.tags(SHOP, ORDER_ID) == set()
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]
    # on a payment to fall back on: authorized first, released once it was
    assert harness.ports.events.topics_for(ret.id)[-3:] == [
        "carrier/picked_up",
        "payments/authorize",
        "exchanges/release",
    ]
    assert [(p.kind, p.amount) for p in harness.ports.payments.payments] == [
        ("authorization", Money("25.00", "EUR"))
    ]
    assert record.payment_authorized == Money("25.00", "EUR")

    assert receive(
        harness, ret.id, "sp-rcv-1", ReceivedLine(line_id="L1", quantity=1)
    ).record.state == (
        "item_received",
        "released",
    )
    assert finish(harness, ret.id, "sp-fin-1").record.state == ("closed", "released")
    assert len(commerce.calls_to("release_exchange")) == 1
    # the units came back accepted: the authorization is let go
    assert harness.ports.events.topics_for(ret.id)[-3:] == [
        "returns/update",
        "returns/close",
        "payments/void",
    ]
    assert_history_follows_table(harness.service.get(SHOP, ret.id))


def test_seed000_release_the_platform_did_not_honour_is_retried(order: OrderSnapshot) -> None:
    harness = make_harness(order, INSTANT)
    commerce = harness.ports.commerce
    ret = open_return(harness, exchange("L1", "tee-l"))
    hold_id = ret.refs.exchange_hold_id
    assert hold_id is not None

    # The platform accepts the release but the line stays On Hold ("the tag is removed, but
    # the order is still not moving forward").
    commerce.ignore_releases(times=1)
    scan(harness, ret.id, "gls-1")
    assert state(harness, ret.id) == ("in_transit", "released")
    assert commerce.tags(SHOP, ORDER_ID) == set()
    assert platform_lines(harness) == [("tee-l", "on_hold")]
    assert commerce.exchange_hold_status(SHOP, ORDER_ID, hold_id) is HoldStatus.HELD

    retried = harness.service.retry_exchange_release(SHOP, ret.id)

    first, second = commerce.calls_to("release_exchange")
    assert (first.outcome, second.outcome) == ("ok", "ok")
    assert first.idempotency_key != second.idempotency_key
    assert first.args["hold_id"] == second.args["hold_id"] == hold_id
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]
    assert commerce.exchange_hold_status(SHOP, ORDER_ID, hold_id) is HoldStatus.RELEASED
    assert retried.state == ("in_transit", "released")
    notes = [entry for entry in retried.history if entry.event == "exchange_release_retried"]
    assert [dict(entry.payload) for entry in notes] == [{"hold": "still held", "attempt": 2}]

    # Released for real now: checking again does not release again.
    checked = harness.service.retry_exchange_release(SHOP, ret.id)
    assert len(commerce.calls_to("release_exchange")) == 2
    assert checked.state == ("in_transit", "released")
    assert checked.history[-1].event == "exchange_release_checked"
    assert dict(checked.history[-1].payload) == {"hold": "released"}
    assert harness.ports.events.topics_for(ret.id) == [
        "returns/request",
        "returns/approve",
        "returns/update",
        "exchanges/hold",
        "carrier/picked_up",
        "payments/authorize",
        "exchanges/release",  # once: the retry is not news to the helpdesk
    ]
    assert_history_follows_table(checked)


def test_seed000_retry_release_is_refused_while_the_exchange_is_held(
    order: OrderSnapshot,
) -> None:
    harness = make_harness(order, SMARTPACK)
    ret = open_return(harness, exchange("L1", "tee-l"))

    with pytest.raises(InvalidTransition):
        harness.service.retry_exchange_release(SHOP, ret.id)

    assert harness.ports.commerce.calls_to("release_exchange") == []
    assert harness.service.get(SHOP, ret.id).version == ret.version


def _caps_and_jacket(harness: Harness) -> ReturnRecord:
    return open_return(
        harness,
        RequestLine(order_line_id="L2", quantity=2),
        RequestLine(order_line_id="L3", quantity=1),
    )


def test_seed000_partial_receipt_is_reset_into_a_return_of_the_accepted_items(
    order: OrderSnapshot,
) -> None:
    harness = make_harness(order, SMARTPACK)
    warehouse, events = harness.ports.warehouse, harness.ports.events
    ret = _caps_and_jacket(harness)
    [first_rma] = warehouse.returns
    assert first_rma.lines == (LineQuantity("L2", 2), LineQuantity("L3", 1))

    # Only the caps arrive; the warehouse does not mark it "Finished".
    received = receive(harness, ret.id, "sp-rcv-1", ReceivedLine(line_id="L2", quantity=2))
    assert received.record.state == ("item_received", "no_exchange")
    assert refunds(harness) == []

    old, new = harness.service.reset(SHOP, ret.id, actor="agent:jeppe")

    assert old.status == "reset"
    assert old.state == ("reset", "no_exchange")
    assert shopify_status(old.status) is ShopifyReturnStatus.CLOSED
    assert old.child_id == new.id
    assert new.parent_id == old.id
    assert new.id != old.id
    assert new.state == ("item_received", "no_exchange")
    assert [
        (line.order_line_id, line.quantity, line.received, line.accepted) for line in new.lines
    ] == [("L2", 2, 2, 2)]
    assert [amount.amount for amount in new.lines[0].unit_amounts] == [
        Decimal("11.90"),
        Decimal("11.90"),
    ]
    [reset_entry] = [entry for entry in old.history if entry.event == "reset_return"]
    assert (reset_entry.actor, dict(reset_entry.payload)) == ("agent:jeppe", {"child_id": new.id})

    # The old warehouse return is cancelled; a new one expects the accepted items only.
    cancelled, created = warehouse.returns
    assert (cancelled.rma_id, cancelled.status) == (first_rma.rma_id, "cancelled")
    assert (created.return_id, created.order_id, created.status) == (new.id, ORDER_ID, "expected")
    assert created.lines == (LineQuantity("L2", 2),)
    assert created.reason == created.action == "returnflow"
    assert harness.service.get(SHOP, new.id).refs.warehouse_rma_id == created.rma_id
    assert refunds(harness) == []  # completion waits for "Finished"

    # "Finished" on the new return closes it and refunds exactly the accepted units.
    result = finish(harness, new.id, "sp-fin-2")
    assert result.status == "applied"
    assert result.record.state == ("closed", "no_exchange")
    assert refunds(harness) == [(Decimal("23.80"), "EUR", (LineQuantity("L2", 2),))]
    assert result.record.refs.refund_ids == ("refund-1",)
    assert harness.service.get(SHOP, old.id).state == ("reset", "no_exchange")
    # The caps were restocked once, on the first receipt; the reset does not restock again.
    assert [restock.lines for restock in harness.ports.commerce.restocks] == [
        (LineQuantity("L2", 2),)
    ]

    assert events.topics_for(old.id) == [
        "returns/request",
        "returns/approve",
        "returns/update",
        "returns/update",
        "returns/update",
    ]
    assert events.topics_for(new.id) == ["returns/request", "refunds/create", "returns/close"]
    assert lifecycle_path(harness.service.get(SHOP, old.id))[-2:] == ["item_received", "reset"]
    assert_history_follows_table(harness.service.get(SHOP, old.id))
    assert_history_follows_table(result.record, start=("item_received", "no_exchange"))


def test_seed000_reset_carries_part_of_a_line(order: OrderSnapshot) -> None:
    harness = make_harness(order, SMARTPACK)
    ret = open_return(harness, RequestLine(order_line_id="L2", quantity=2))
    receive(harness, ret.id, "sp-rcv-1", ReceivedLine(line_id="L2", quantity=1))

    _, new = harness.service.reset(SHOP, ret.id)

    assert [(line.order_line_id, line.quantity) for line in new.lines] == [("L2", 1)]
    assert harness.ports.warehouse.returns[-1].lines == (LineQuantity("L2", 1),)
    finish(harness, new.id, "sp-fin-2")
    assert state(harness, new.id) == ("closed", "no_exchange")
    assert refunds(harness) == [(Decimal("11.90"), "EUR", (LineQuantity("L2", 1),))]


def test_seed000_finished_on_a_short_receipt_needs_review_then_reset(
    order: OrderSnapshot,
) -> None:
    harness = make_harness(order, SMARTPACK)
    ret = _caps_and_jacket(harness)
    receive(harness, ret.id, "sp-rcv-1", ReceivedLine(line_id="L2", quantity=2))

    # Marked "Finished" although the jacket never arrived: a person has to look.
    result = finish(harness, ret.id, "sp-fin-1")
    assert result.status == "applied"
    assert result.record.state == ("needs_review", "no_exchange")
    [reason] = result.record.review_reasons
    assert "short receipt" in reason
    assert "L3: 0/1" in reason
    assert refunds(harness) == []
    assert harness.ports.events.topics_for(ret.id)[-2:] == ["returns/update", "returns/update"]

    old, new = harness.service.reset(SHOP, ret.id)
    assert old.state == ("reset", "no_exchange")
    assert (old.child_id, new.parent_id) == (new.id, old.id)
    assert [(line.order_line_id, line.quantity) for line in new.lines] == [("L2", 2)]
    assert [rma.status for rma in harness.ports.warehouse.returns] == ["cancelled", "expected"]

    assert finish(harness, new.id, "sp-fin-2").record.state == ("closed", "no_exchange")
    assert refunds(harness) == [(Decimal("23.80"), "EUR", (LineQuantity("L2", 2),))]
    assert_history_follows_table(harness.service.get(SHOP, old.id))


def _instant_exchange_with_failed_qc(harness: Harness) -> ReturnRecord:
    """An instant exchange of the T-shirt and a refund of the jacket: released on hand-in,
    then the T-shirt fails QC."""
    ret = open_return(harness, exchange("L1", "tee-l"), RequestLine(order_line_id="L3", quantity=1))
    scan(harness, ret.id, "gls-1")
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]
    received = receive(
        harness,
        ret.id,
        "sp-rcv-1",
        ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL, note="stained"),
        ReceivedLine(line_id="L3", quantity=1),
    )
    assert received.record.state == ("item_received", "released")
    return ret


def test_seed000_qc_failure_after_an_instant_release_captures_the_authorization(
    order: OrderSnapshot,
) -> None:
    harness = make_harness(order, INSTANT)
    ret = _instant_exchange_with_failed_qc(harness)

    result = finish(harness, ret.id, "sp-fin-1")

    # The new T-shirt shipped and the old one failed QC: the customer pays for it through
    # the authorization; the accepted jacket is refunded; nobody has to step in.
    assert result.status == "applied"
    assert result.record.state == ("closed", "released")
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]  # already shipped
    assert [(p.kind, p.amount) for p in harness.ports.payments.payments] == [
        ("authorization", Money("25.00", "EUR")),
        ("capture", Money("25.00", "EUR")),
    ]
    assert refunds(harness) == [(Decimal("100.00"), "EUR", (LineQuantity("L3", 1),))]
    assert result.record.authorization_settled is True
    assert_history_follows_table(result.record)


def test_seed000_an_instant_exchange_whose_units_pass_qc_voids_the_authorization(
    order: OrderSnapshot,
) -> None:
    harness = make_harness(order, INSTANT)
    ret = open_return(harness, exchange("L1", "tee-l"))
    scan(harness, ret.id, "gls-1")
    receive(harness, ret.id, "sp-rcv-1", ReceivedLine(line_id="L1", quantity=1))
    result = finish(harness, ret.id, "sp-fin-1")
    assert result.record.state == ("closed", "released")
    assert [p.kind for p in harness.ports.payments.payments] == ["authorization", "void"]
    assert refunds(harness) == []


def test_seed000_an_instant_exchange_whose_authorization_is_refused_stays_on_hold(
    order: OrderSnapshot,
) -> None:
    harness = make_harness(order, INSTANT)
    declined = PortError("payments", "authorize", "card declined", retryable=False)
    harness.ports.payments.fail("authorize", error=declined)
    ret = open_return(harness, exchange("L1", "tee-l"))
    scan(harness, ret.id, "gls-1")
    record = harness.service.get(SHOP, ret.id)
    # nothing to fall back on: the new item is not shipped, a person looks
    assert record.state == ("needs_review", "on_hold")
    assert platform_lines(harness) == [("tee-l", "on_hold")]
    assert "authorize_payment failed" in record.review_reasons[-1]


def test_seed000_reset_keeps_the_carried_exchange_on_hold(order: OrderSnapshot) -> None:
    harness = make_harness(order, SMARTPACK)
    ret = open_return(harness, exchange("L1", "tee-l"), RequestLine(order_line_id="L3", quantity=1))
    receive(harness, ret.id, "sp-rcv-1", ReceivedLine(line_id="L1", quantity=1))

    _, new = harness.service.reset(SHOP, ret.id)

    assert new.state == ("item_received", "on_hold")
    assert platform_lines(harness) == [("tee-l", "on_hold")]
    assert harness.ports.commerce.tags(SHOP, ORDER_ID) == {"hold-order"}
    finish(harness, new.id, "sp-fin-2")
    assert state(harness, new.id) == ("closed", "released")
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]
    assert harness.ports.commerce.tags(SHOP, ORDER_ID) == set()


def test_seed000_instant_exchange_released_when_the_first_scan_is_delivered(
    order: OrderSnapshot,
) -> None:
    harness = make_harness(order, INSTANT)
    ret = open_return(harness, exchange("L1", "tee-l"))

    scan(harness, ret.id, "gls-1", CarrierStatus.DELIVERED)

    assert state(harness, ret.id) == ("delivered", "released")
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]


# -- seed 001: helpdesk returns workflow ---------------------------------------------------


def test_seed001_the_six_steps_with_an_event_and_a_message_at_each(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    events, carrier = harness.ports.events, harness.ports.carrier

    # 1-4: requested, eligibility checked, auto-approved, label sent.
    ret = open_return(
        harness,
        RequestLine(
            order_line_id="L3",
            quantity=1,
            reason=ReturnReason.SIZE_TOO_LARGE,
            condition=ItemCondition.NEW,
        ),
    )
    assert ret.state == ("label_sent", "no_exchange")
    assert lifecycle_path(ret) == ["requested", "eligibility_check", "approved", "label_sent"]
    check = next(entry for entry in ret.history if entry.event == "check")
    assert dict(check.payload) == {"decision": "approve"}
    [label] = carrier.labels
    assert (label.return_id, label.order_id, label.status) == (ret.id, ORDER_ID, "active")
    assert ret.refs.tracking_number == label.tracking_number
    assert ret.refs.label_url == label.label_url
    label_mail = harness.ports.notifier.messages[-1]
    assert (label_mail.recipient, label_mail.template) == (EMAIL, "label_sent")
    assert label_mail.context["tracking_number"] == label.tracking_number

    # 5-6: the warehouse confirms receipt in good condition; refunded, then closed.
    harness.clock.advance(days=4)
    result = receive(
        harness,
        ret.id,
        "wh-1",
        ReceivedLine(line_id="L3", quantity=1, condition=ItemCondition.GOOD),
    )
    assert result.status == "applied"
    final = harness.service.get(SHOP, ret.id)
    assert final.state == ("closed", "no_exchange")
    assert lifecycle_path(final) == [
        "requested",
        "eligibility_check",
        "approved",
        "label_sent",
        "item_received",
        "refunded",
        "closed",
    ]
    [line] = final.lines
    assert (line.received, line.accepted, line.settled) == (1, 1, 1)
    assert line.condition is ItemCondition.GOOD
    assert refunds(harness) == [(Decimal("100.00"), "EUR", (LineQuantity("L3", 1),))]
    assert final.refs.refund_ids == ("refund-1",)

    assert [(event.topic, event.payload["status"]) for event in events.events] == [
        ("returns/request", "requested"),
        ("returns/approve", "approved"),
        ("returns/update", "label_sent"),
        ("returns/update", "item_received"),
        ("refunds/create", "refunded"),
        ("returns/close", "closed"),
    ]
    assert events.events[4].payload["amount"] == "100.00 EUR"
    assert [event.payload["shopify_status"] for event in events.events] == [
        "REQUESTED",
        "OPEN",
        "OPEN",
        "OPEN",
        "OPEN",
        "CLOSED",
    ]
    assert templates(harness) == [
        "return_requested",
        "return_approved",
        "label_sent",
        "item_received",
        "refund_issued",
        "return_closed",
    ]
    assert harness.ports.notifier.messages[4].context["amount"] == "100.00 EUR"
    assert_history_follows_table(final)


def test_seed001_customer_is_told_the_item_was_received(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    ret = open_return(harness, RequestLine(order_line_id="L3", quantity=1))
    receive(harness, ret.id, "wh-1", ReceivedLine(line_id="L3", quantity=1))

    sent = templates(harness)
    between = sent[sent.index("label_sent") + 1 : sent.index("refund_issued")]
    assert len(between) == 1


def test_seed001_return_closes_only_once_the_refund_is_confirmed(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    ret = open_return(harness, RequestLine(order_line_id="L2", quantity=1))
    harness.ports.commerce.fail("refund", times=1)

    receive(harness, ret.id, "wh-1", ReceivedLine(line_id="L2", quantity=1))

    assert state(harness, ret.id) == ("refunded", "no_exchange")
    assert refunds(harness) == []
    # the refund heads what the receipt planned: the restock, the receipt's event and
    # message wait behind it
    assert "item_received" not in templates(harness)
    waiting = [e.effect.kind for e in harness.store.outbox(SHOP, ret.id) if e.status == "pending"]
    assert waiting == ["issue_refund", "restock", "publish", "notify"]

    # The retried refund goes through and the confirmation closes the return; what waited
    # behind it, and the events and messages that confirmation planned, go out in the same
    # call.
    assert harness.dispatch_due() == DispatchReport(delivered=8)
    assert templates(harness)[-3:] == ["item_received", "refund_issued", "return_closed"]
    assert state(harness, ret.id) == ("closed", "no_exchange")
    assert refunds(harness) == [(Decimal("11.90"), "EUR", (LineQuantity("L2", 1),))]
    assert harness.ports.events.topics_for(ret.id)[-2:] == ["refunds/create", "returns/close"]
    assert templates(harness)[-2:] == ["refund_issued", "return_closed"]
    assert harness.dispatch_due() == DispatchReport()
    assert_history_follows_table(harness.service.get(SHOP, ret.id))


def test_seed001_a_used_item_goes_to_an_agent_who_approves_it(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    ports = harness.ports

    ret = open_return(
        harness,
        RequestLine(
            order_line_id="L2",
            quantity=1,
            reason=ReturnReason.DEFECTIVE,
            condition=ItemCondition.USED,
        ),
    )

    assert ret.state == ("pending_review", "no_exchange")
    assert shopify_status(ret.status) is ShopifyReturnStatus.REQUESTED
    assert ret.review_reasons == ("line L2 declared used",)
    assert lifecycle_path(ret) == ["requested", "eligibility_check", "pending_review"]
    assert {"approve", "decline"} <= set(harness.service.allowed_events(ret))
    # Nothing happens on the ports before an agent decides.
    assert ports.carrier.labels == []
    assert ports.warehouse.returns == []
    assert ports.commerce.refunds == []
    assert ports.events.topics_for(ret.id) == ["returns/request", "returns/update"]
    assert ports.events.events[-1].payload["status"] == "pending_review"
    assert templates(harness) == ["return_requested"]

    approved = harness.service.approve(SHOP, ret.id, actor="agent:maria")

    assert approved.state == ("label_sent", "no_exchange")
    assert shopify_status(approved.status) is ShopifyReturnStatus.OPEN
    assert approved.review_reasons == ()
    [entry] = [entry for entry in approved.history if entry.event == "approve"]
    assert (entry.actor, entry.source, entry.target) == (
        "agent:maria",
        ("pending_review", "no_exchange"),
        ("approved", "no_exchange"),
    )
    assert {e.actor for e in approved.history if e.event in ("check", "route_to_review")} == {
        "customer"
    }
    assert [label.return_id for label in ports.carrier.labels] == [ret.id]
    assert [rma.lines for rma in ports.warehouse.returns] == [(LineQuantity("L2", 1),)]
    assert ports.events.topics_for(ret.id)[2:] == ["returns/approve", "returns/update"]

    receive(harness, ret.id, "wh-1", ReceivedLine(line_id="L2", quantity=1))
    assert state(harness, ret.id) == ("closed", "no_exchange")
    assert refunds(harness) == [(Decimal("11.90"), "EUR", (LineQuantity("L2", 1),))]
    assert_history_follows_table(harness.service.get(SHOP, ret.id))


@pytest.mark.parametrize(
    ("days_after_order", "expected"),
    [(30, ("label_sent", "no_exchange")), (31, ("declined", "no_exchange"))],
)
def test_seed001_thirty_day_window_from_the_order(
    order: OrderSnapshot, days_after_order: int, expected: tuple[str, str]
) -> None:
    harness = make_harness(order, HELPDESK)
    harness.clock.advance(days=days_after_order - 5)
    assert harness.clock.now() == ORDERED_AT + timedelta(days=days_after_order)

    ret = open_return(harness, RequestLine(order_line_id="L1", quantity=1))

    assert ret.state == expected
    assert_history_follows_table(ret)


def test_seed001_request_after_the_window_is_declined(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    harness.clock.advance(days=26)  # 31 days after the order

    ret = open_return(harness, RequestLine(order_line_id="L1", quantity=1))

    assert ret.state == ("declined", "no_exchange")
    assert ret.decline_reason is DeclineReason.RETURN_PERIOD_ENDED
    assert shopify_status(ret.status) is ShopifyReturnStatus.DECLINED
    assert lifecycle_path(ret) == ["requested", "eligibility_check", "declined"]
    assert "declined" in TABLE.terminal_states
    assert harness.ports.carrier.labels == []
    assert harness.ports.warehouse.returns == []
    assert harness.ports.events.topics_for(ret.id) == ["returns/request", "returns/decline"]
    assert harness.ports.events.events[-1].payload["reason"] == "RETURN_PERIOD_ENDED"
    assert templates(harness) == ["return_requested", "return_declined"]
    declined = harness.ports.notifier.messages[-1]
    assert declined.context["reason"] == "RETURN_PERIOD_ENDED"
    assert "2026-02-09" in declined.context["note"]  # 30 days after 2026-01-10
    assert_history_follows_table(ret)


@pytest.mark.parametrize("lines", [["L4"], ["L1", "L4"]])
def test_seed001_final_sale_is_declined(order: OrderSnapshot, lines: list[str]) -> None:
    harness = make_harness(order, HELPDESK)

    ret = open_return(harness, *(RequestLine(order_line_id=line, quantity=1) for line in lines))

    assert ret.state == ("declined", "no_exchange")
    assert ret.decline_reason is DeclineReason.FINAL_SALE
    assert harness.ports.carrier.labels == []
    assert harness.ports.events.topics_for(ret.id) == ["returns/request", "returns/decline"]
    assert harness.ports.events.events[-1].payload["reason"] == "FINAL_SALE"
    assert_history_follows_table(ret)


@pytest.mark.parametrize(
    ("window_starts", "expected"),
    [
        (WindowStart.ORDER, ("declined", "no_exchange")),  # 40 days after the order
        (WindowStart.FULFILLMENT, ("declined", "no_exchange")),  # 35 days after fulfilment
        (WindowStart.DELIVERY, ("label_sent", "no_exchange")),  # 10 days after delivery
    ],
)
def test_seed001_window_counted_from_the_date_the_policy_names(
    order: OrderSnapshot, window_starts: WindowStart, expected: tuple[str, str]
) -> None:
    delivered = attrs.evolve(
        order,
        fulfilled_at=ORDERED_AT + timedelta(days=5),
        delivered_at=ORDERED_AT + timedelta(days=30),
    )
    harness = make_harness(delivered, ReturnPolicy(window_starts=window_starts))
    harness.clock.advance(days=35)
    assert harness.clock.now() == ORDERED_AT + timedelta(days=40)

    ret = open_return(harness, RequestLine(order_line_id="L1", quantity=1))

    assert ret.state == expected
    if expected[0] == "declined":
        assert ret.decline_reason is DeclineReason.RETURN_PERIOD_ENDED
    else:
        assert ret.decline_reason is None
        assert [label.return_id for label in harness.ports.carrier.labels] == [ret.id]


# -- seed 002: Increff x Clickpost ---------------------------------------------------------


def test_seed002_a_parcel_sent_back_cancels_the_return_by_default(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    ret = open_return(harness, exchange("L1", "tee-l"))
    scan(harness, ret.id, "cp-1", CarrierStatus.PICKED_UP, source="clickpost")
    rto = scan(harness, ret.id, "cp-2", CarrierStatus.RETURN_TO_ORIGIN, source="clickpost")
    assert rto.record.state == ("cancelled", "exchange_cancelled")
    assert platform_lines(harness) == [("tee-l", "cancelled")]  # it never ships
    assert refunds(harness) == []
    assert [label.status for label in harness.ports.carrier.labels] == ["void"]
    assert [r.status for r in harness.ports.warehouse.returns] == ["cancelled"]
    assert (
        harness.service.request(
            ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=[exchange("L1", "tee-l")])
        ).status
        != "declined"
    )  # the units are the customer's again: returnable once more


def test_seed002_carrier_notifications_become_events(order: OrderSnapshot) -> None:
    harness = make_harness(order, ReturnPolicy(on_return_to_origin=ReturnToOrigin.REVIEW))
    events = harness.ports.events
    ret = open_return(harness, RequestLine(order_line_id="L3", quantity=1))

    picked = scan(harness, ret.id, "cp-1", CarrierStatus.PICKED_UP, source="clickpost")
    assert picked.status == "applied"
    assert picked.record.state == ("in_transit", "no_exchange")
    assert events.topics_for(ret.id)[-1] == "carrier/picked_up"
    assert picked.record.history[-1].actor == "clickpost"
    assert dict(picked.record.history[-1].payload) == {"carrier_event": "cp-1"}

    # The same notification delivered again changes nothing.
    again = scan(harness, ret.id, "cp-1", CarrierStatus.PICKED_UP, source="clickpost")
    assert again.status == "duplicate"
    assert again.reason == "clickpost:cp-1"
    assert again.record == picked.record
    assert harness.service.get(SHOP, ret.id).version == picked.record.version

    rto = scan(harness, ret.id, "cp-2", CarrierStatus.RETURN_TO_ORIGIN, source="clickpost")
    assert rto.status == "applied"
    assert rto.record.state == ("needs_review", "no_exchange")
    assert rto.record.review_reasons == ("parcel returned to origin",)
    assert events.events[-1].topic == "carrier/rto"
    assert events.events[-1].payload["status"] == "needs_review"
    assert templates(harness)[-1] == "return_to_origin"

    topics = events.topics_for(ret.id)
    repeat = scan(harness, ret.id, "cp-2", CarrierStatus.RETURN_TO_ORIGIN, source="clickpost")
    assert repeat.status == "duplicate"
    assert repeat.record.version == rto.record.version
    assert (
        events.topics_for(ret.id)
        == topics
        == [
            "returns/request",
            "returns/approve",
            "returns/update",
            "carrier/picked_up",
            "carrier/rto",
        ]
    )
    assert refunds(harness) == []
    assert_history_follows_table(harness.service.get(SHOP, ret.id))


def test_seed002_qc_pass_releases_the_held_exchange(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    commerce = harness.ports.commerce
    ret = open_return(harness, exchange("L1", "tee-l"))
    assert commerce.tags(SHOP, ORDER_ID) == {"hold-order"}
    assert platform_lines(harness) == [("tee-l", "on_hold")]
    scan(harness, ret.id, "cp-1", source="clickpost")
    assert state(harness, ret.id) == ("in_transit", "on_hold")

    result = receive(
        harness,
        ret.id,
        "increff-qc-1",
        ReceivedLine(line_id="L1", quantity=1, qc=QcResult.PASS),
        source="increff",
    )

    assert result.status == "applied"
    final = harness.service.get(SHOP, ret.id)
    assert final.state == ("closed", "released")
    assert commerce.tags(SHOP, ORDER_ID) == set()
    assert platform_lines(harness) == [("tee-l", "unfulfilled")]
    assert [line.status for line in final.exchange_lines] == ["released"]
    assert refunds(harness) == []
    assert [restock.lines for restock in commerce.restocks] == [(LineQuantity("L1", 1),)]
    assert harness.ports.events.topics_for(ret.id) == [
        "returns/request",
        "returns/approve",
        "returns/update",
        "exchanges/hold",
        "carrier/picked_up",
        "returns/update",
        "returns/close",
        "exchanges/release",
    ]
    assert_history_follows_table(final)


def test_seed002_qc_fail_cancels_the_exchange_lines(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    commerce = harness.ports.commerce
    ret = open_return(harness, exchange("L1", "tee-l"))
    scan(harness, ret.id, "cp-1", source="clickpost")

    result = receive(
        harness,
        ret.id,
        "increff-qc-1",
        ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL, note="worn, tags removed"),
        source="increff",
    )

    assert result.status == "applied"
    final = harness.service.get(SHOP, ret.id)
    assert final.state == ("closed", "exchange_cancelled")
    [line] = final.lines
    assert (line.received, line.accepted, line.rejected, line.settled) == (1, 0, 1, 0)
    assert line.qc_notes == ("worn, tags removed",)
    assert [ex.status for ex in final.exchange_lines] == ["cancelled"]
    assert platform_lines(harness) == [("tee-l", "cancelled")]
    assert commerce.tags(SHOP, ORDER_ID) == set()
    assert commerce.calls_to("release_exchange") == []
    assert refunds(harness) == []
    assert commerce.credits == []
    assert commerce.restocks == []
    topics = harness.ports.events.topics_for(ret.id)
    assert topics[-3:] == ["returns/update", "returns/close", "exchanges/cancel"]
    assert "refunds/create" not in topics
    assert "exchanges/release" not in topics
    assert_history_follows_table(final)


def test_seed002_one_exchanged_line_passes_and_one_fails(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    commerce = harness.ports.commerce
    ret = open_return(harness, exchange("L1", "tee-l"), exchange("L3", "jacket-l"))
    tee, jacket = commerce.exchange_lines(SHOP, ORDER_ID)
    assert platform_lines(harness) == [("tee-l", "on_hold"), ("jacket-l", "on_hold")]

    receive(
        harness,
        ret.id,
        "increff-qc-1",
        ReceivedLine(line_id="L1", quantity=1, qc=QcResult.PASS),
        ReceivedLine(line_id="L3", quantity=1, qc=QcResult.FAIL),
        source="increff",
    )

    final = harness.service.get(SHOP, ret.id)
    assert final.state == ("closed", "released")
    assert platform_lines(harness) == [("tee-l", "unfulfilled"), ("jacket-l", "cancelled")]
    assert [(ex.variant_id, ex.status) for ex in final.exchange_lines] == [
        ("tee-l", "released"),
        ("jacket-l", "cancelled"),
    ]
    [cancel] = commerce.calls_to("cancel_exchange_items")
    assert cancel.args["item_ids"] == (jacket.item_id,)
    assert tee.item_id not in cancel.args["item_ids"]
    assert commerce.tags(SHOP, ORDER_ID) == set()
    assert refunds(harness) == []
    assert [restock.lines for restock in commerce.restocks] == [(LineQuantity("L1", 1),)]
    assert harness.ports.events.topics_for(ret.id)[-4:] == [
        "returns/update",
        "returns/close",
        "exchanges/cancel",
        "exchanges/release",
    ]
    assert_history_follows_table(final)


def test_seed002_inbound_ids_are_deduplicated_per_source(order: OrderSnapshot) -> None:
    harness = make_harness(order, HELPDESK)
    ret = open_return(harness, RequestLine(order_line_id="L2", quantity=2))
    one_cap = ReceivedLine(line_id="L2", quantity=1)

    first = receive(harness, ret.id, "evt-1", one_cap, source="increff")
    assert first.status == "applied"
    assert first.record.state == ("item_received", "no_exchange")
    assert first.record.lines[0].received == 1

    repeat = receive(harness, ret.id, "evt-1", one_cap, source="increff")
    assert repeat.status == "duplicate"
    assert repeat.reason == "increff:evt-1"
    assert repeat.record.version == first.record.version
    assert repeat.record.lines[0].received == 1

    # The same id from another source is another event.
    other = receive(harness, ret.id, "evt-1", one_cap, source="returns-prime")
    assert other.status == "applied"
    final = harness.service.get(SHOP, ret.id)
    assert final.lines[0].received == 2
    assert final.state == ("closed", "no_exchange")
    assert refunds(harness) == [(Decimal("23.80"), "EUR", (LineQuantity("L2", 2),))]
    receipts = [entry.actor for entry in final.history if entry.event == "receive"]
    assert receipts == ["increff", "returns-prime"]
    assert_history_follows_table(final)
