"""Destinations, run against in-process fakes: the ``returnflow demo merchant-destinations``
flow. One return of three lines goes back to three locations: the trainers to the Berlin
warehouse and the bulky lamp to the bulky-goods hub (the host's resolver, by product tag),
the outlet tee to the outlet store (a merchant rule read from TOML). Each location gets its
own warehouse return, receives its units and says Finished; the return completes when the
last one has."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timezone

from returnflow.domain.inbound import ReceivedLine, WarehouseFinished, WarehouseReceipt
from returnflow.domain.model import OrderLine, OrderSnapshot, RequestLine, ReturnLine, ReturnRequest
from returnflow.domain.money import Money
from returnflow.domain.policy import Completion, ReturnPolicy
from returnflow.domain.rules_data import rules_from_toml
from returnflow.ports.store import ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.testing.harness import Harness

__all__ = ["DESTINATION_RULES", "RouteByTag", "destinations"]

_SHIPPED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)

DESTINATION_RULES = """
[[rules]]
name = "outlet items back to the outlet store"
when = { collections = ["outlet"] }
then = { destination = "outlet-store" }
"""
"""The shop's routing rule, as a merchant would keep it in a TOML file."""


class RouteByTag:
    """A host's :class:`~returnflow.ports.locations.DestinationResolver`: lines whose
    product has a tag in ``by_tag`` go to that tag's location, the rest to ``default``."""

    def __init__(self, by_tag: dict[str, str], default: str, also: Sequence[str] = ()) -> None:
        self.by_tag = dict(by_tag)
        self.default = default
        self.known = frozenset({default, *by_tag.values(), *also})

    def locations(self, shop: str) -> Collection[str]:
        return self.known

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        order_line = order.line(line.order_line_id)
        tags = () if order_line is None else order_line.tags
        return next((self.by_tag[tag] for tag in tags if tag in self.by_tag), self.default)


def _order(shop: str, order_id: str) -> OrderSnapshot:
    """Trainers at 80.00 EUR, a floor lamp at 140.00 EUR (bulky) and an outlet tee at
    15.00 EUR, shipped on 10 January 2026."""
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=_SHIPPED,
        fulfilled_at=_SHIPPED,
        currency="EUR",
        customer_email="customer@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku="TRAINER-42",
                variant_id="trainer-42",
                quantity=1,
                unit_price=Money("80.00", "EUR"),
            ),
            OrderLine(
                id="L2",
                sku="FLOOR-LAMP",
                variant_id="floor-lamp",
                quantity=1,
                unit_price=Money("140.00", "EUR"),
                tags=["bulky"],
            ),
            OrderLine(
                id="L3",
                sku="TEE-OUTLET",
                variant_id="tee-outlet",
                quantity=1,
                unit_price=Money("15.00", "EUR"),
                collections=["outlet"],
            ),
        ],
    )


def destinations(shop: str, store: ReturnStore | None = None) -> tuple[Harness, list[str]]:
    """One return, three locations, each with its receipt and its Finished; completed (and
    refunded 235.00 EUR) on the last Finished."""
    policy = ReturnPolicy(
        version="destinations-2026",
        completion=Completion.ON_WAREHOUSE_FINISHED,
        rules=rules_from_toml(DESTINATION_RULES),
    )
    resolver = RouteByTag({"bulky": "bulky-hub"}, "berlin", also=["outlet-store"])
    harness = Harness(policy=policy, store=store or MemoryStore(), destinations=resolver)
    harness.ports.commerce.add_order(_order(shop, "1001"))
    service = harness.service
    record = service.request(
        ReturnRequest(
            shop=shop,
            order_id="1001",
            lines=[RequestLine(order_line_id=line, quantity=1) for line in ("L1", "L2", "L3")],
        )
    )
    for line in record.lines:
        where = line.location_id
        service.handle(
            WarehouseReceipt(
                shop=shop,
                return_id=record.id,
                event_id=f"receipt-{where}",
                lines=[ReceivedLine(line_id=line.order_line_id, quantity=1)],
                location_id=where,
            )
        )
        service.handle(
            WarehouseFinished(
                shop=shop, return_id=record.id, event_id=f"finished-{where}", location_id=where
            )
        )
    return harness, [record.id]
