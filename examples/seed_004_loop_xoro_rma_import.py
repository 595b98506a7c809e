"""Loop x Xoro (seed 004): Loop returns imported into the ERP as RMAs, each with an ASN.

Three ways to import: by date range, by the Loop return id, and by the scheduler, which
`service.tick()` (or `returnflow worker`) drives every 15 minutes from a durable mark. When
an ASN is closed, a fully received return is processed (a refunded credit memo, a credit
memo, an exchange order) and a short one is flagged for a person.
"""

from datetime import datetime, timedelta, timezone

from returnflow import (
    Completion,
    Exchange,
    ExternalLine,
    ExternalReturn,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    ReturnImporter,
    ReturnPolicy,
    StoreCredit,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.testing import FakeReturnSource, Harness, ManualClock

SHOP = "xoro-shop"
AT = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)

# Xoro processes a return when its ASN is closed: the warehouse's "Finished".
harness = Harness(
    policy=ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED),
    clock=ManualClock(AT + timedelta(hours=1)),
)
service, ports = harness.service, harness.ports
for order_id in ("5001", "5002", "5003"):
    ports.commerce.add_order(
        OrderSnapshot(
            id=order_id,
            shop=SHOP,
            created_at=datetime(2026, 1, 3, tzinfo=timezone.utc),
            fulfilled_at=datetime(2026, 1, 3, tzinfo=timezone.utc),  # shipped in one go
            currency="USD",
            customer_email="buyer@example.com",
            lines=[
                OrderLine(
                    id="L1",
                    sku="HOODIE-M",
                    variant_id="hoodie-m",
                    quantity=1,
                    unit_price=Money("60.00", "USD"),
                ),
                OrderLine(
                    id="L2",
                    sku="BEANIE",
                    variant_id="beanie",
                    quantity=2,
                    unit_price=Money("15.00", "USD"),
                ),
            ],
        )
    )


def loop_return(
    external_id: str, order_id: str, minutes: int, *lines: ExternalLine
) -> ExternalReturn:
    at = AT + timedelta(minutes=minutes)
    return ExternalReturn(
        source="loop",
        external_id=external_id,
        shop=SHOP,
        order_id=order_id,
        lines=lines,
        created_at=at,
        updated_at=at,
    )


loop = FakeReturnSource("loop")  # stands in for the Loop API adapter
loop.add(
    loop_return(
        "52393555",
        "5001",
        0,
        ExternalLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="hoodie-l")),
        ExternalLine(order_line_id="L2", quantity=2, outcome=StoreCredit()),
    )
)
loop.add(loop_return("52393556", "5002", 30, ExternalLine(order_line_id="L2", quantity=2)))
importer = ReturnImporter(service, loop, shop=SHOP, every=timedelta(minutes=15))

# 1. manually by date range, 2. manually by RMA (the id in the Loop admin URL)
report = importer.import_range(AT - timedelta(days=1), AT + timedelta(minutes=10))
print(f"by range: {report.imported}")
print(f"by id:    {importer.import_one('52393556').return_id}")
# 3. automatically: the app registers the importer; every tick polls it when it is due
service.register_poller(importer)
loop.add(loop_return("52393557", "5003", 50, ExternalLine(order_line_id="L1", quantity=1)))
tick = service.tick(AT + timedelta(hours=1))
print(f"polled:   {tick.imports[0].imported}, mark {importer.mark()}")

# The ASNs: the first and the third fully received, the second short; then closed.
received = {
    "loop-52393555": {"L1": 1, "L2": 2},
    "loop-52393556": {"L2": 1},
    "loop-52393557": {"L1": 1},
}
for return_id, units in received.items():
    assert service.get(SHOP, return_id).refs.warehouse_rma_id  # the ASN, linked to the RMA
    lines = [ReceivedLine(line_id=line, quantity=count) for line, count in units.items()]
    service.handle(
        WarehouseReceipt(shop=SHOP, return_id=return_id, event_id=f"{return_id}-rcv", lines=lines)
    )
    service.handle(WarehouseFinished(shop=SHOP, return_id=return_id, event_id=f"{return_id}-fin"))

for return_id in received:
    print()
    print(service.render_timeline(SHOP, return_id))

states = {return_id: service.get(SHOP, return_id).status for return_id in received}
print()
print(f"states: {states}")
print("credit memos:", [str(credit.amount) for credit in ports.commerce.credits])
print("refunded credit memos:", [str(refund.amount) for refund in ports.commerce.refunds])
print("exchange orders:", [line.variant_id for line in ports.commerce.exchange_lines(SHOP, "5001")])
assert states == {
    "loop-52393555": "closed",
    "loop-52393556": "needs_review",  # flagged: a person acts on it in Loop
    "loop-52393557": "closed",
}
assert [str(credit.amount) for credit in ports.commerce.credits] == ["30.00 USD"]
assert [str(refund.amount) for refund in ports.commerce.refunds] == ["60.00 USD"]
assert importer.import_range(AT - timedelta(days=1), AT + timedelta(days=1)).imported == ()
