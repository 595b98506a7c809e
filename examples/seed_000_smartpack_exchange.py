"""Returnflows x SmartPack (seed 000): an exchange held on the original order.

The exchange item is added to the order on hold and the order gets the `hold-order` tag; the
return is created in the warehouse linked to the order, labelled Reason/Action = returnflow.
Only the warehouse's "Finished" closes the return; then the outcome runs and the hold is
released (tag removed, line On Hold -> Unfulfilled).
"""

from datetime import datetime, timezone

from returnflow import (
    CarrierUpdate,
    Completion,
    Exchange,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.testing import Harness

SHOP = "smartpack-shop"
harness = Harness(policy=ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED))
commerce, warehouse = harness.ports.commerce, harness.ports.warehouse
commerce.add_order(
    OrderSnapshot(
        id="5001",
        shop=SHOP,
        created_at=datetime(2026, 1, 8, tzinfo=timezone.utc),
        fulfilled_at=datetime(2026, 1, 8, tzinfo=timezone.utc),  # shipped in one go
        currency="DKK",
        customer_email="kunde@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku="SHIRT-M",
                variant_id="shirt-m",
                quantity=1,
                unit_price=Money("399.00", "DKK"),
            )
        ],
    )
)
service = harness.service

ret = service.request(
    ReturnRequest(
        shop=SHOP,
        order_id="5001",
        lines=[RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="shirt-l"))],
    )
)
print("after request:", ret.state, "tags:", sorted(commerce.tags(SHOP, "5001")))
rma = warehouse.get(service.get(SHOP, ret.id).refs.warehouse_rma_id or "")
print(
    f"warehouse return {rma.rma_id}: order {rma.order_id}, reason={rma.reason}, action={rma.action}"
)

service.handle(
    CarrierUpdate(shop=SHOP, return_id=ret.id, event_id="gls-1", status="RETURN_PICKED_UP")
)
service.handle(
    WarehouseReceipt(
        shop=SHOP,
        return_id=ret.id,
        event_id="sp-rcv-1",
        lines=[ReceivedLine(line_id="L1", quantity=1)],
    )
)
print("received, not finished:", service.get(SHOP, ret.id).state)
service.handle(WarehouseFinished(shop=SHOP, return_id=ret.id, event_id="sp-fin-1"))

final = service.get(SHOP, ret.id)
lines = [(line.variant_id, line.status) for line in commerce.exchange_lines(SHOP, "5001")]
print("after Finished:", final.state, "tags:", sorted(commerce.tags(SHOP, "5001")), lines)
assert final.state == ("closed", "released")
assert lines == [("shirt-l", "unfulfilled")]
print()
print(service.render_timeline(SHOP, ret.id))
