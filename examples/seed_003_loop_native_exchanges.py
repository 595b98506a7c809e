"""Loop x Shopify native exchanges (seed 003): even, for less, upsell; fees; documents.

`quote()` says what a request would settle to before anything is stored (Shopify's
`returnCalculate`); the return then settles exactly so. An upsell balance is charged through
the Payments port and does not release the exchange: completing the return does, as the
upsell's timeline shows.
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
policy = ReturnPolicy(fees=FeePolicy(restocking=Percent(10), return_shipping=Money("5.00", "USD")))
harness = Harness(policy=policy)
commerce, payments, service = harness.ports.commerce, harness.ports.payments, harness.service
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
print("refunds:", [str(refund.amount) for refund in commerce.refunds])
print("charged:", [str(payment.amount) for payment in payments.payments])
assert [str(refund.amount) for refund in commerce.refunds] == ["46.30 USD", "7.00 USD"]
assert [str(payment.amount) for payment in payments.payments] == ["18.00 USD"]
print()
print(service.render_timeline(SHOP, upsell))  # charged, held, released only on completion
