"""Increff x Clickpost (seed 002): carrier notifications and warehouse QC drive the exchange.

RETURN_PICKED_UP and RTO notifications become events; QC Status=Pass releases the held
exchange order, QC Status=Fail cancels the exchange lines.
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
    RequestLine,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.testing import Harness

SHOP = "brand.com"
harness = Harness()
commerce = harness.ports.commerce
for order_id in ("7001", "7002", "7003"):
    commerce.add_order(
        OrderSnapshot(
            id=order_id,
            shop=SHOP,
            created_at=datetime(2026, 1, 5, tzinfo=timezone.utc),
            fulfilled_at=datetime(2026, 1, 5, tzinfo=timezone.utc),  # shipped in one go
            currency="INR",
            customer_email="buyer@example.com",
            lines=[
                OrderLine(
                    id="L1",
                    sku="KURTA-M",
                    variant_id="kurta-m",
                    quantity=1,
                    unit_price=Money("1499.00", "INR"),
                )
            ],
        )
    )
service = harness.service


def exchange(order_id: str) -> str:
    request = ReturnRequest(
        shop=SHOP,
        order_id=order_id,
        lines=[RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="kurta-l"))],
    )
    return service.request(request).id


def scan(return_id: str, event_id: str, status: CarrierStatus) -> None:
    update = CarrierUpdate(
        shop=SHOP, return_id=return_id, event_id=event_id, source="clickpost", status=status
    )
    print(f"  clickpost {status.value}: {service.handle(update).record.state}")


def qc(return_id: str, result: QcResult) -> None:
    receipt = WarehouseReceipt(
        shop=SHOP,
        return_id=return_id,
        event_id=f"increff-{return_id}",
        source="increff",
        lines=[ReceivedLine(line_id="L1", quantity=1, qc=result)],
    )
    print(f"  increff QC {result.value}: {service.handle(receipt).record.state}")


print("QC pass releases the held exchange:")
passed = exchange("7001")
scan(passed, "cp-1", CarrierStatus.PICKED_UP)
qc(passed, QcResult.PASS)
print("  exchange lines:", [line.status for line in commerce.exchange_lines(SHOP, "7001")])

print("QC fail cancels the exchange lines:")
failed = exchange("7002")
scan(failed, "cp-2", CarrierStatus.PICKED_UP)
qc(failed, QcResult.FAIL)
print("  exchange lines:", [line.status for line in commerce.exchange_lines(SHOP, "7002")])

print("RTO cancels the return; the replacement never ships:")
rto = exchange("7003")
scan(rto, "cp-3", CarrierStatus.PICKED_UP)
scan(rto, "cp-4", CarrierStatus.RETURN_TO_ORIGIN)
print("  state:", "/".join(service.get(SHOP, rto).state))
print("  exchange lines:", [line.status for line in commerce.exchange_lines(SHOP, "7003")])

assert service.get(SHOP, passed).state == ("closed", "released")
assert service.get(SHOP, failed).state == ("closed", "exchange_cancelled")
assert service.get(SHOP, rto).state == ("cancelled", "exchange_cancelled")
print()
print(service.render_timeline(SHOP, failed))
