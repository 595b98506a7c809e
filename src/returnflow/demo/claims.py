"""Claims, run against in-process fakes: the ``returnflow demo merchant-claims`` flow. A
parcel lost on its way is refunded, a unit that arrived broken is replaced, and a claim
above what the shop's rule approves waits for a person; none buys a label or expects a
parcel at the warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from returnflow.domain.claim_lines import replacement
from returnflow.domain.claims import Claim, ClaimReason
from returnflow.domain.model import OrderLine, OrderSnapshot, Refund, RequestLine, ReturnRequest
from returnflow.domain.money import Money
from returnflow.domain.order import Fulfillment
from returnflow.domain.policy import ReturnPolicy
from returnflow.domain.rules_data import rules_from_toml
from returnflow.ports.store import ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.testing.harness import Harness

__all__ = ["CLAIM_RULES", "claims"]

_SHIPPED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)

CLAIM_RULES = """
[[rules]]
name = "claims over 100: review"
when = { claim = true, return_value_at_least = "100.01 EUR" }
then = { review = "a large claim is checked by hand" }
"""
"""The shop's claim rule, as a merchant would keep it in a TOML file."""


def _order(shop: str, order_id: str) -> OrderSnapshot:
    """Two mugs at 18.00 EUR and a lamp at 140.00 EUR, shipped on 10 January 2026 and not
    delivered."""
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=_SHIPPED,
        currency="EUR",
        customer_email="customer@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku="MUG",
                variant_id="mug-blue",
                quantity=2,
                unit_price=Money("18.00", "EUR"),
                title="Mug, blue",
                fulfillments=[Fulfillment(2, _SHIPPED)],
            ),
            OrderLine(
                id="L2",
                sku="LAMP",
                variant_id="lamp-brass",
                quantity=1,
                unit_price=Money("140.00", "EUR"),
                title="Lamp, brass",
                fulfillments=[Fulfillment(1, _SHIPPED)],
            ),
        ],
    )


def _claim(
    shop: str, order_id: str, lines: Sequence[RequestLine], reason: ClaimReason, note: str
) -> ReturnRequest:
    return ReturnRequest(
        shop=shop,
        order_id=order_id,
        lines=tuple(lines),
        claim=Claim(reason, note, photos=(f"uploads/{order_id}.jpg",)),
    )


def claims(
    shop: str, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str | tuple[str, str]]]:
    """A lost mug refunded at once; a broken mug replaced by the same variant, released at
    once; a lost lamp (140.00 EUR) over the rule's 100.00 EUR waits for a person, who
    approves it."""
    harness = Harness(
        policy=ReturnPolicy(version="claims-2026", rules=rules_from_toml(CLAIM_RULES)),
        store=store or MemoryStore(),
    )
    order = _order(shop, "1001")
    harness.ports.commerce.add_order(order)
    service = harness.service
    lost = service.request(
        _claim(
            shop,
            "1001",
            [RequestLine(order_line_id="L1", quantity=1, outcome=Refund())],
            ClaimReason.LOST_IN_TRANSIT,
            "the carrier reports the parcel lost",
        )
    )
    broken = service.request(
        _claim(
            shop,
            "1001",
            [RequestLine(order_line_id="L1", quantity=1, outcome=replacement(order, "L1"))],
            ClaimReason.DAMAGED_IN_TRANSIT,
            "arrived in pieces",
        )
    )
    lamp = service.request(
        _claim(
            shop,
            "1001",
            [RequestLine(order_line_id="L2", quantity=1)],
            ClaimReason.LOST_IN_TRANSIT,
            "the carrier reports the parcel lost",
        )
    )
    service.approve(shop, lamp.id, actor="agent")
    return harness, [lost.id, broken.id, lamp.id]
