"""Loop x Shopify native exchanges (seed 003): even, for less, upsell; fees; documents.

Native mode (`platform_mode="native"`): each return lives on the platform's own return
object too (`PlatformReturns`, here the fake). It is opened with the returned lines, the
exchange lines and the fees; the exchange sits on it, on the original order; processing it
moves the money (checked first against the platform's own figure, to the cent) and fulfils
the exchange; restocking is a disposition apart from the refund.

`quote()` says what a request would settle to before anything is stored (Shopify's
`returnCalculate`); the return then settles exactly so, and the platform agrees. An upsell
balance is charged through the Payments port and does not release the exchange: processing
the return does, as the upsell's timeline shows.
"""

from datetime import datetime, timezone

from returnflow import (
    Exchange,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.domain.settlement import FeePolicy, Percent
from returnflow.testing import Harness

SHOP = "loop-shop"
policy = ReturnPolicy(
    platform_mode="native",
    fees=FeePolicy(restocking=Percent(10), return_shipping=Money("5.00", "USD")),
)
harness = Harness(policy=policy)  # native: the harness adds a FakePlatformReturns
commerce, payments, service = harness.ports.commerce, harness.ports.payments, harness.service
platform = harness.platform_returns
assert platform is not None
commerce.add_order(
    OrderSnapshot(
        id="2001",
        shop=SHOP,
        created_at=datetime(2026, 1, 9, tzinfo=timezone.utc),
        fulfilled_at=datetime(2026, 1, 9, tzinfo=timezone.utc),  # shipped in one go
        currency="USD",
        customer_email="buyer@example.com",
        order_discount=Money("13.00", "USD"),
        lines=[
            OrderLine(
                id="L1",
                sku="SNEAKER-9",
                variant_id="s9",
                quantity=4,
                unit_price=Money("60.00", "USD"),
            ),
            OrderLine(
                id="L2", sku="SOCKS", variant_id="sk", quantity=1, unit_price=Money("20.00", "USD")
            ),
        ],
    )
)


def run(label: str, outcome: Exchange | Refund) -> str:
    request = ReturnRequest(
        shop=SHOP,
        order_id="2001",
        lines=[RequestLine(order_line_id="L1", quantity=1, outcome=outcome)],
    )
    quote = service.quote(request)
    ret = service.request(request)
    after_request = service.get(SHOP, ret.id).exchange_status
    service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=ret.id,
            event_id=f"wms-{ret.id}",
            lines=[ReceivedLine(line_id="L1", quantity=1)],
        )
    )
    final = service.get(SHOP, ret.id)
    documents = ", ".join(f"{kind.value} {amount}" for kind, amount in quote.documents)
    print(f"{label:<18} quote: {quote.as_dict()}")
    print(f"{'':<18} exchange after request: {after_request}; final: {final.state}; {documents}")
    return ret.id


# A sneaker was paid 60.00 less its share of the order discount: the line's share is
# 13.00 x 240 / 260 = 12.00, so 3.00 a unit: each returned sneaker is worth 57.00.
run("refund", Refund())  # 57.00 - 10 % restocking (5.70) - 5.00 shipping = 46.30
run("even exchange", Exchange(variant_id="s10"))  # fees waived for exchanges
run("exchange for less", Exchange(variant_id="s10-sale", unit_price=Money("50.00", "USD")))
upsell = run("upsell", Exchange(variant_id="s10-pro", unit_price=Money("75.00", "USD")))
processed = [str(call.args["refund"]) for call in platform.calls_to("process")]
print("processed, refunded through the platform return:", processed)
print("charged:", [str(payment.amount) for payment in payments.payments])
assert processed == ["46.30 USD", "0.00 USD", "7.00 USD", "0.00 USD"]
assert [str(payment.amount) for payment in payments.payments] == ["18.00 USD"]
assert commerce.refunds == []  # no bare refund, no tag: everything on the platform returns
print("dispositions:", platform.dispositions(SHOP, "gid://Return/1"))
print()
print(service.render_timeline(SHOP, upsell))  # charged, held, released only on completion
