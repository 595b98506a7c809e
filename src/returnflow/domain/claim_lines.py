"""A claim's lines against the order (:mod:`returnflow.domain.claims`): a replacement is an
exchange for the order line's own variant, the same quantity, at no charge."""

from __future__ import annotations

from returnflow.domain.model import Exchange, ReturnRequest
from returnflow.domain.order import OrderSnapshot
from returnflow.errors import InvalidRequest

__all__ = ["check_claim", "replacement"]


def check_claim(order: OrderSnapshot, request: ReturnRequest) -> None:
    """Check a claim's lines against ``order`` (nothing for a request that is no claim): a
    replacement is an exchange for the order line's own variant, the same quantity, at no
    charge, and a claim adopts no platform return. Raises
    :class:`~returnflow.errors.InvalidRequest` naming ``lines[i].outcome.variant_id``,
    ``.quantity``, ``.unit_price`` or ``platform_return_id``."""
    if request.claim is None:
        return
    if request.platform_return_id is not None:
        raise InvalidRequest(
            "platform_return_id",
            request.platform_return_id,
            "a claim ships nothing back: it adopts no platform return (decline that return "
            "on the platform and file the claim on its own)",
        )
    for index, line in enumerate(request.lines):
        outcome = line.outcome
        order_line = order.line(line.order_line_id)
        if not isinstance(outcome, Exchange) or order_line is None:
            continue
        field = f"lines[{index}].outcome"
        if outcome.variant_id != order_line.variant_id:
            raise InvalidRequest(
                f"{field}.variant_id",
                outcome.variant_id,
                f"a claim replaces the same variant ({order_line.variant_id})",
            )
        if outcome.quantity != line.quantity:
            raise InvalidRequest(
                f"{field}.quantity", outcome.quantity, f"a claim replaces {line.quantity} units"
            )
        if outcome.unit_price is not None:
            raise InvalidRequest(
                f"{field}.unit_price", outcome.unit_price, "a replacement is at no charge"
            )


def replacement(order: OrderSnapshot, order_line_id: str, quantity: int = 1) -> Exchange:
    """The outcome replacing ``quantity`` units of ``order_line_id``: an exchange for the
    same variant (and SKU) at no charge. Raises
    :class:`~returnflow.errors.InvalidRequest` naming ``order_line_id`` when the order has
    no such line."""
    order_line = order.line(order_line_id)
    if order_line is None:
        raise InvalidRequest("order_line_id", order_line_id, f"not a line of order {order.id}")
    return Exchange(variant_id=order_line.variant_id, quantity=quantity, sku=order_line.sku)
