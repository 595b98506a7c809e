"""Helpdesk returns workflow (seed 001): six steps, each mirrored onto a helpdesk ticket.

A host's EventPublisher adapter turns returnflow's domain events into ticket status updates
(`return_requested`, `approved`, `label_sent`, `item_received`, `refunded`, ...), the way a
helpdesk's webhook integration would.
"""

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from returnflow import (
    ItemCondition,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnReason,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.ports import DomainEvent
from returnflow.testing import Harness

SHOP = "helpdesk-shop"


class TicketMirror:
    """An EventPublisher adapter: one helpdesk ticket per return, its status kept in sync."""

    def __init__(self) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self._seen: set[str] = set()

    def publish(self, event: DomainEvent, *, idempotency_key: str) -> None:
        if idempotency_key in self._seen:  # a redelivery changes nothing
            return
        self._seen.add(idempotency_key)
        ticket = self.tickets.setdefault(
            event.return_id,
            {"subject": f"Return Request - Order #{event.payload['order_id']}", "history": []},
        )
        status = _ticket_status(event.topic, event.payload)
        if status and (not ticket["history"] or ticket["history"][-1] != status):
            ticket["history"].append(status)
            ticket["status"] = status


def _ticket_status(topic: str, payload: Mapping[str, Any]) -> str | None:
    if topic == "returns/request":
        return "return_requested"
    if topic == "refunds/create":
        return "refunded"
    if topic in ("returns/approve", "returns/update", "returns/decline", "returns/close"):
        return {"pending_review": "eligibility_check", "item_received": "item_received"}.get(
            payload["status"], payload["status"]
        )
    return None


harness = Harness()
mirror = TicketMirror()
harness.service.events = mirror  # the host's adapter replaces the fake publisher
harness.ports.commerce.add_order(
    OrderSnapshot(
        id="1234",
        shop=SHOP,
        created_at=datetime(2026, 1, 2, tzinfo=timezone.utc),
        fulfilled_at=datetime(2026, 1, 2, tzinfo=timezone.utc),  # shipped in one go
        currency="USD",
        customer_email="customer@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku="SKU-001",
                variant_id="v1",
                quantity=1,
                unit_price=Money("149.00", "USD"),
            )
        ],
    )
)
service = harness.service

# 1-4: the customer asks; eligibility (30 days, condition) passes; auto-approved; label sent.
ret = service.request(
    ReturnRequest(
        shop=SHOP,
        order_id="1234",
        lines=[
            RequestLine(
                order_line_id="L1",
                quantity=1,
                reason=ReturnReason.SIZE_TOO_SMALL,
                condition=ItemCondition.NEW,
            )
        ],
    )
)
# 5-6: the warehouse confirms receipt in good condition; the refund goes to the payment.
harness.clock.advance(days=13)
service.handle(
    WarehouseReceipt(
        shop=SHOP,
        return_id=ret.id,
        event_id="wh-2024-01-15",
        lines=[ReceivedLine(line_id="L1", quantity=1, condition=ItemCondition.GOOD)],
    )
)

ticket = mirror.tickets[ret.id]
print(ticket["subject"], "->", ticket["status"])
print("ticket statuses:", " > ".join(ticket["history"]))
print("refunds:", [str(refund.amount) for refund in harness.ports.commerce.refunds])
assert ticket["history"][:4] == ["return_requested", "approved", "label_sent", "item_received"]
assert "refunded" in ticket["history"]
print()
print(service.render_timeline(SHOP, ret.id))
