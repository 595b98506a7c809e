"""What merchants configure, run against in-process fakes: ``returnflow demo`` flows for
per-shop policies (and, as they come, reasons and rules). Each returns the harness and
the returns to show, a ``(shop, return id)`` pair where the return is in another shop
than the one the demo names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import attrs

from returnflow.demo.claims import claims
from returnflow.demo.destinations import destinations
from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    ReceivedLine,
    WarehouseReceipt,
)
from returnflow.domain.methods import ReturnMethod
from returnflow.domain.model import (
    OrderLine,
    OrderSnapshot,
    Reason,
    RequestLine,
    ReturnReason,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import RefundOriginal, RefundTrigger, ReturnPolicy
from returnflow.domain.reasons import ReturnReasonDefinition, with_standard
from returnflow.domain.rules_data import rules_from_toml
from returnflow.domain.settlement import FeePolicy, Percent
from returnflow.ports.policies import ShopPolicies
from returnflow.ports.store import ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.testing.harness import Harness

__all__ = ["RULES", "Shown", "shop_methods", "shop_reasons", "shop_rules", "two_shops"]

Shown = Sequence["str | tuple[str, str]"]
"""The returns a flow shows: ids in the demo's shop, or ``(shop, id)`` pairs."""

_ORDERED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)


def _order(shop: str, order_id: str) -> OrderSnapshot:
    """A pair of trainers at 80.00 EUR with 4.90 EUR shipping, ordered and shipped on 10
    January 2026."""
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=_ORDERED,
        fulfilled_at=_ORDERED,
        currency="EUR",
        customer_email="customer@example.com",
        shipping_price=Money("4.90", "EUR"),
        lines=[
            OrderLine(
                id="L1",
                sku="TRAINER-42",
                variant_id="trainer-42",
                quantity=1,
                unit_price=Money("80.00", "EUR"),
                title="Trainers, 42",
            )
        ],
    )


def _request(
    shop: str,
    order_id: str,
    reason: Reason = ReturnReason.UNKNOWN,
    photos: Sequence[str] = (),
) -> ReturnRequest:
    return ReturnRequest(
        shop=shop,
        order_id=order_id,
        lines=[RequestLine(order_line_id="L1", quantity=1, reason=reason, photos=photos)],
    )


def two_shops(shop: str, store: ReturnStore | None = None) -> tuple[Harness, Shown]:
    """One service, two shops: ``shop`` (60 days, 10 % restocking, refund at completion)
    and ``<shop>-outlet`` (14 days, 5.00 EUR return shipping, refund at the first carrier
    scan). Each opens a return five days after the order; the outlet's is refunded at the
    scan, the flagship's waits. Twenty days after the order the outlet declines a late
    return the flagship still approves."""
    outlet = f"{shop}-outlet"
    policies = ShopPolicies(
        {
            shop: ReturnPolicy(
                version="flagship-2026", window_days=60, fees=FeePolicy(restocking=Percent(10))
            ),
            outlet: ReturnPolicy(
                version="outlet-2026",
                window_days=14,
                fees=FeePolicy(return_shipping=Money("5.00", "EUR")),
                refund_trigger=RefundTrigger.ON_HANDED_IN,
            ),
        }
    )
    harness = Harness(policies=policies, store=store or MemoryStore())
    for name in (shop, outlet):
        for order_id in ("1001", "1002"):
            harness.ports.commerce.add_order(_order(name, order_id))
    service = harness.service
    shown: list[str | tuple[str, str]] = []
    for name in (shop, outlet):
        record = service.request(_request(name, "1001"))
        service.handle(
            CarrierUpdate(
                shop=name, return_id=record.id, event_id="scan-1", status=CarrierStatus.PICKED_UP
            )
        )
        shown.append(record.id if name == shop else (name, record.id))
    harness.clock.advance(days=15)
    for name in (shop, outlet):
        record = service.request(_request(name, "1002"))
        shown.append(record.id if name == shop else (name, record.id))
    return harness, shown


def shop_reasons(shop: str, store: ReturnStore | None = None) -> tuple[Harness, Shown]:
    """A shop's own return reasons: "arrived-late" (the merchant's fault: no return
    shipping fee) beside the standard ones, and "defective" redefined to need a photo. A
    size return pays the 5.00 EUR fee; a late delivery and a defect (the merchant's fault)
    do not, and get the order's 4.90 EUR shipping back; a defect comes with its photo (one
    without is refused before anything is stored). Refunds go out at the first carrier
    scan, so each shows what it gives back."""
    policy = ReturnPolicy(
        version="reasons-2026",
        fees=FeePolicy(return_shipping=Money("5.00", "EUR")),
        refund_trigger=RefundTrigger.ON_HANDED_IN,
        refund_shipping=RefundOriginal.MERCHANTS_FAULT,
        reasons=with_standard(
            [
                ReturnReasonDefinition(
                    "arrived-late", "Arrived too late", fees_waived=True, merchants_fault=True
                ),
                ReturnReasonDefinition(
                    "defective", "Defective", photo_required=True, merchants_fault=True
                ),
            ]
        ),
    )
    harness = Harness(policy=policy, store=store or MemoryStore())
    for order_id in ("1001", "1002", "1003"):
        harness.ports.commerce.add_order(_order(shop, order_id))
    service = harness.service
    shown: list[str | tuple[str, str]] = []
    for order_id, reason, photos in (
        ("1001", ReturnReason.SIZE_TOO_SMALL, ()),
        ("1002", "arrived-late", ()),
        ("1003", "defective", ("https://cdn.example.com/returns/1003-sole.jpg",)),
    ):
        record = service.request(_request(shop, order_id, reason, photos))
        service.handle(
            CarrierUpdate(
                shop=shop,
                return_id=record.id,
                event_id=f"scan-{order_id}",
                status=CarrierStatus.PICKED_UP,
            )
        )
        shown.append(record.id)
    return harness, shown


RULES = """
[[rules]]
name = "outlet final sale: store credit only"
when = { collections = ["outlet"], final_sale = true }
then = { offer = ["store_credit"], approve = true }

[[rules]]
name = "orders over 500: review"
when = { return_value_at_least = "500.00 EUR" }
then = { review = "a large return is checked by hand" }

[[rules]]
name = "repeat returners: no free shipping"
when = { customer_returns = { days = 90, at_least = 2 } }
then = { return_shipping = "7.50 EUR" }
"""
"""The rules of :func:`shop_rules`, as a merchant would keep them in a TOML file."""


def _outlet_order(shop: str, order_id: str) -> OrderSnapshot:
    """A final-sale dress from the outlet collection, a coat and trainers."""
    base = _order(shop, order_id)
    return attrs.evolve(
        base,
        lines=(
            OrderLine(
                id="D1",
                sku="DRESS-OUTLET",
                variant_id="dress-outlet",
                quantity=1,
                unit_price=Money("60.00", "EUR"),
                final_sale=True,
                collections=("outlet",),
                title="Dress (outlet, final sale)",
            ),
            OrderLine(
                id="C1",
                sku="COAT",
                variant_id="coat",
                quantity=1,
                unit_price=Money("520.00", "EUR"),
                title="Coat",
            ),
            *base.lines,
        ),
    )


def shop_rules(shop: str, store: ReturnStore | None = None) -> tuple[Harness, Shown]:
    """Rules read from TOML (:data:`RULES`): the final-sale outlet dress is returned for
    store credit and approved by a rule; the coat is over 500.00 EUR and waits for a
    person; the customer's third return in 90 days pays 7.50 EUR return shipping, taken
    from the refund when the trainers come back."""
    policy = ReturnPolicy(
        version="rules-2026", rules=rules_from_toml(RULES), decline_final_sale=False
    )
    harness = Harness(policy=policy, store=store or MemoryStore())
    for order_id in ("1001", "1002", "1003"):
        harness.ports.commerce.add_order(_outlet_order(shop, order_id))
    service = harness.service
    dress = service.request(
        ReturnRequest(
            shop=shop,
            order_id="1001",
            lines=[RequestLine(order_line_id="D1", quantity=1, outcome=StoreCredit())],
        )
    )
    coat = service.request(
        ReturnRequest(
            shop=shop, order_id="1002", lines=[RequestLine(order_line_id="C1", quantity=1)]
        )
    )
    trainers = service.request(_request(shop, "1003"))
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=trainers.id,
            event_id="wms-1003",
            lines=[ReceivedLine(line_id="L1", quantity=1)],
        )
    )
    return harness, [dress.id, coat.id, trainers.id]


def shop_methods(shop: str, store: ReturnStore | None = None) -> tuple[Harness, Shown]:
    """Four returns, one per return method: mailed with a label (5.00 EUR return shipping),
    dropped off with a QR code (same fee), handed over in store (free: no label, the return
    waits approved for the store's receipt), picked up at home (9.50 EUR). Each comes back
    to the warehouse (the store's counter for the in-store one) and is refunded less its
    method's fee."""
    policy = ReturnPolicy(
        version="methods-2026",
        return_methods=list(ReturnMethod),
        fees=FeePolicy(
            return_shipping=Money("5.00", "EUR"),
            method_fees={"in_store": Money("0.00", "EUR"), "pickup": Money("9.50", "EUR")},
        ),
    )
    harness = Harness(policy=policy, store=store or MemoryStore())
    service = harness.service
    shown: list[str | tuple[str, str]] = []
    for number, method in enumerate(ReturnMethod, start=1):
        order_id = f"100{number}"
        harness.ports.commerce.add_order(_order(shop, order_id))
        record = service.request(attrs.evolve(_request(shop, order_id), method=method))
        service.handle(
            WarehouseReceipt(
                shop=shop,
                return_id=record.id,
                event_id=f"receipt-{order_id}",
                lines=[ReceivedLine(line_id="L1", quantity=1)],
            )
        )
        shown.append(record.id)
    return harness, shown


FLOWS: tuple[tuple[str, str, Callable[[str, ReturnStore | None], tuple[Harness, Shown]]], ...] = (
    ("merchant-shops", "Merchant setup: two shops, two policies, one service", two_shops),
    ("merchant-reasons", "Merchant setup: the shop's own return reasons", shop_reasons),
    ("merchant-rules", "Merchant setup: rules read from TOML", shop_rules),
    ("merchant-methods", "Merchant setup: mail, drop-off, in store and pickup", shop_methods),
    ("merchant-claims", "Merchant setup: claims for parcels lost or damaged", claims),
    ("merchant-destinations", "Merchant setup: one return, three locations", destinations),
)
"""The flows ``returnflow demo`` runs for this module: name, title, flow."""
