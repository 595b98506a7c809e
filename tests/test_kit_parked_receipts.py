"""Units in a receipt parked with the return (waiting for an upsell's balance charge) are at
the warehouse already: no longer to come, so neither the service nor the testing kit's
strategies take a second receipt for them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from returnflow import (
    Exchange,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.decisions.warehouse import units_to_come
from returnflow.errors import InvalidPayload
from returnflow.testing import Harness
from returnflow.testing.strategies import inbound_streams

SHOP = "shop-1"
AT = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)


def waiting_for_the_charge() -> tuple[Harness, str]:
    """An upsell (a dearer item) whose balance charge is asked and not answered yet, and a
    receipt of both units parked until it is."""
    made = Harness(auto_dispatch=False)
    price = Money("10.00", "EUR")
    line = OrderLine(id="L1", sku="TEE", variant_id="tee", quantity=2, unit_price=price)
    made.ports.commerce.add_order(
        OrderSnapshot(
            id="1001",
            shop=SHOP,
            created_at=AT,
            fulfilled_at=AT,
            currency="EUR",
            customer_email="c@example.com",
            lines=[line],
        )
    )
    dearer = Exchange(variant_id="tee-xl", quantity=2, unit_price=Money("15.00", "EUR"))
    request = ReturnRequest(
        shop=SHOP,
        order_id="1001",
        lines=[RequestLine(order_line_id="L1", quantity=2, outcome=dearer)],
    )
    rid = made.service.request(request).id
    assert made.service.get(SHOP, rid).exchange_status == "awaiting_payment"
    units = [ReceivedLine(line_id="L1", quantity=2)]
    status = made.service.handle(
        WarehouseReceipt(shop=SHOP, return_id=rid, event_id="r1", lines=units)
    ).status
    assert status == "parked"
    return made, rid


def test_units_of_a_parked_receipt_are_not_to_come_and_a_second_receipt_is_refused() -> None:
    made, rid = waiting_for_the_charge()
    record = made.service.get(SHOP, rid)
    assert record.lines[0].outstanding == 2  # not received yet ...
    assert units_to_come(record, record.lines[0]) == 0  # ... but at the warehouse
    again = WarehouseReceipt(
        shop=SHOP, return_id=rid, event_id="r2", lines=[ReceivedLine(line_id="L1", quantity=1)]
    )
    with pytest.raises(InvalidPayload, match="expects 0 more unit") as raised:
        made.service.handle(again)
    assert raised.value.field == "lines[0].quantity"
    assert made.service.get(SHOP, rid) == record  # nothing stored
    made.dispatch_due()  # the charge is answered: the parked receipt applies
    after = made.service.get(SHOP, rid)
    assert (after.lines[0].received, after.parked) == (2, ())


_MADE = waiting_for_the_charge()


@given(st.data())
def test_the_kits_streams_take_no_receipt_of_units_a_parked_receipt_holds(
    data: st.DataObject,
) -> None:
    made, rid = _MADE
    record = made.service.get(SHOP, rid)
    stream = data.draw(inbound_streams(record))
    assert not [fact for fact in stream if isinstance(fact, WarehouseReceipt)]
