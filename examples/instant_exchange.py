"""Instant exchange: the new item ships when the parcel is handed in, on an authorized payment.

At hand-in the customer's payment is authorized for the exchanged units' worth, and the held
exchange is released once the authorization is in. The authorization is voided when the
units come back accepted, and captured when QC fails, when the parcel goes back to the
customer, or when the units have not come back within `instant_exchange_return_days`: for
what the new items shipped cost that no unit that came back paid for, never more than was
authorized.
"""

from datetime import datetime, timezone

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    Money,
    OrderLine,
    OrderSnapshot,
    QcResult,
    ReceivedLine,
    Refund,
    ReleaseTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.testing import Harness

SHOP = "instant-shop"
harness = Harness(
    policy=ReturnPolicy(
        exchange_release=ReleaseTrigger.ON_HANDED_IN, instant_exchange_return_days=14
    )
)
commerce, payments = harness.ports.commerce, harness.ports.payments
for order_id in ("8001", "8002", "8003"):
    commerce.add_order(
        OrderSnapshot(
            id=order_id,
            shop=SHOP,
            created_at=datetime(2026, 1, 10, tzinfo=timezone.utc),
            fulfilled_at=datetime(2026, 1, 10, tzinfo=timezone.utc),  # shipped in one go
            currency="EUR",
            customer_email="customer@example.com",
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
                    quantity=1,
                    unit_price=Money("10.00", "EUR"),
                ),
            ],
        )
    )
service = harness.service


def exchange(order_id: str, *, with_cap: bool = False, price: str | None = None) -> str:
    """The T-shirt for another size (priced ``price``; ``None``: as the T-shirt was paid)."""
    new = Exchange(variant_id="tee-l", unit_price=Money(price, "EUR") if price else None)
    lines = [RequestLine(order_line_id="L1", quantity=1, outcome=new)]
    if with_cap:
        lines.append(RequestLine(order_line_id="L2", quantity=1, outcome=Refund()))
    return service.request(ReturnRequest(shop=SHOP, order_id=order_id, lines=lines)).id


def show(step: str, order_id: str, return_id: str) -> None:
    state = "/".join(service.get(SHOP, return_id).state)
    lines = [line.status for line in commerce.exchange_lines(SHOP, order_id)]
    held = payments.authorizations(SHOP, return_id)
    print(f"  {step}: {state}, exchange lines {lines}, authorizations {held}")


def hand_in(order_id: str, return_id: str) -> None:
    scan = CarrierUpdate(
        shop=SHOP, return_id=return_id, event_id=f"scan-{order_id}", status=CarrierStatus.PICKED_UP
    )
    service.handle(scan)
    show("handed in", order_id, return_id)


def receive(order_id: str, return_id: str, *lines: ReceivedLine) -> None:
    receipt = WarehouseReceipt(
        shop=SHOP, return_id=return_id, event_id=f"wms-{order_id}", lines=list(lines)
    )
    service.handle(receipt)
    show("received", order_id, return_id)


print("The units come back accepted: the authorization is voided")
accepted = exchange("8001")
show("requested", "8001", accepted)
hand_in("8001", accepted)
receive("8001", accepted, ReceivedLine(line_id="L1", quantity=1))

print("QC fails on the exchanged unit: it is captured, the rest refunded")
failed = exchange("8002", with_cap=True)
hand_in("8002", failed)
receive(
    "8002",
    failed,
    ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL, note="worn"),
    ReceivedLine(line_id="L2", quantity=1),
)
print("  refunds:", [str(refund.amount) for refund in commerce.refunds])

print("The parcel never arrives: the new T-shirt (on sale, 18.00) is captured after 14 days")
lost = exchange("8003", price="18.00")
hand_in("8003", lost)
harness.clock.advance(days=15)
print("  tick captured:", service.tick().captured)
show("15 days later", "8003", lost)

print("Payments:")
for payment in payments.payments:
    print(f"  {payment.payment_id} {payment.return_id} {payment.kind}: {payment.amount}")
assert service.get(SHOP, accepted).state == ("closed", "released")
assert payments.authorizations(SHOP, accepted) == {"pay-1": "voided"}
assert service.get(SHOP, failed).state == ("closed", "released")
assert list(payments.authorizations(SHOP, failed).values()) == ["captured"]
assert [str(refund.amount) for refund in commerce.refunds] == ["10.00 EUR"]
assert service.get(SHOP, lost).state == ("in_transit", "released")
assert list(payments.authorizations(SHOP, lost).values()) == ["captured"]
assert [str(p.amount) for p in payments.payments if p.return_id == lost] == [
    "25.00 EUR",  # authorized: the T-shirt sent back
    "18.00 EUR",  # captured: what the customer kept and did not pay for
]
assert [line.status for line in commerce.exchange_lines(SHOP, "8003")] == ["unfulfilled"]
print()
print(service.render_timeline(SHOP, accepted))
