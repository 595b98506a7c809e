"""Late and out-of-order inbound facts follow explicit rules: applied, or recorded and ignored."""

from __future__ import annotations

from returnflow import (
    CarrierUpdate,
    ReceivedLine,
    RequestLine,
    ReturnRequest,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.demo.scenarios import SHOP, order_1001
from returnflow.testing import Harness


def opened() -> tuple[Harness, str]:
    harness = Harness()
    harness.ports.commerce.add_order(order_1001())
    record = harness.service.request(
        ReturnRequest(
            shop=SHOP, order_id="1001", lines=[RequestLine(order_line_id="L3", quantity=1)]
        )
    )
    return harness, record.id


def scan(harness: Harness, return_id: str, event_id: str, status: str) -> str:
    update = CarrierUpdate(shop=SHOP, return_id=return_id, event_id=event_id, status=status)
    return harness.service.handle(update).status


def test_delivered_before_picked_up_applies_and_the_late_pickup_is_recorded() -> None:
    harness, return_id = opened()
    assert scan(harness, return_id, "c2", "DELIVERED") == "applied"
    before = harness.service.get(SHOP, return_id)

    assert scan(harness, return_id, "c1", "RETURN_PICKED_UP") == "ignored"

    after = harness.service.get(SHOP, return_id)
    assert after.state == before.state == ("delivered", "no_exchange")
    assert after.version == before.version + 1
    note = after.history[-1]
    assert note.event == "ignored"
    assert dict(note.payload) == {
        "fact": "CarrierUpdate",
        "id": "c1",
        "why": "picked up while delivered",
    }
    assert scan(harness, return_id, "c1", "RETURN_PICKED_UP") == "duplicate"


def test_a_receipt_for_a_closed_return_is_recorded_not_applied() -> None:
    harness, return_id = opened()
    receipt = WarehouseReceipt(
        shop=SHOP,
        return_id=return_id,
        event_id="w1",
        lines=[ReceivedLine(line_id="L3", quantity=1)],
    )
    assert harness.service.handle(receipt).record.status == "closed"
    refunds = list(harness.ports.commerce.refunds)

    again = WarehouseReceipt(
        shop=SHOP,
        return_id=return_id,
        event_id="w2",
        lines=[ReceivedLine(line_id="L3", quantity=1)],
    )
    result = harness.service.handle(again)

    assert result.status == "ignored"
    assert result.reason == "receipt while closed"
    assert result.record.history[-1].event == "ignored"
    assert harness.ports.commerce.refunds == refunds
    assert [line.received for line in result.record.lines] == [1]


def test_warehouse_finished_before_any_receipt_is_parked_until_it_can_apply() -> None:
    harness, return_id = opened()
    result = harness.service.handle(WarehouseFinished(shop=SHOP, return_id=return_id, event_id="f"))
    assert result.status == "parked"
    assert result.record.status == "label_sent"
    assert result.reason == "finished while label_sent"
    assert [parked.event_id for parked in result.record.parked] == ["f"]


def test_a_carrier_rto_after_receipt_is_ignored() -> None:
    harness, return_id = opened()
    harness.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=return_id,
            event_id="w1",
            lines=[ReceivedLine(line_id="L3", quantity=1)],
        )
    )
    assert scan(harness, return_id, "c9", "RTO") == "ignored"
    assert harness.service.get(SHOP, return_id).status == "closed"
