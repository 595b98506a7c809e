"""How the Shopify adapter reads what a person may have done to a return in the admin: its
units disposed of by kind and what its refunds gave back for its lines."""

from __future__ import annotations

from typing import Any

from returnflow.domain.inbound import Disposition
from returnflow.domain.money import Money
from returnflow.integrations.shopify._answers import (
    answer_id,
    bad_answer,
    balance_paid,
    count,
    nodes_of,
    outstanding,
    parse_money,
    removed_units,
)
from returnflow.ports.platform_returns import PlatformReturn, ShopifyReturnStatus

__all__ = ["disposals", "parse_return", "refunded"]


def parse_return(node: dict[str, Any], operation: str) -> PlatformReturn:
    """A return as an answer shows it (a ``Return`` read with :data:`RETURN_FIELDS
    <returnflow.integrations.shopify.documents.RETURN_FIELDS>`, and its dispositions when
    read); a shape it was not read for is a non-retryable ``PortError`` naming
    ``operation``."""
    try:
        lines = nodes_of(node.get("returnLineItems"))
        disposed, kinds = disposals(node, lines)
        exchange = nodes_of(node.get("exchangeLineItems"))
        return PlatformReturn(
            return_id=answer_id(node["id"]),
            order_id=answer_id(node["order"]["id"]),
            status=ShopifyReturnStatus(node["status"]),
            line_ids=tuple(
                (answer_id(line["fulfillmentLineItem"]["id"]), answer_id(line["id"]))
                for line in lines
            ),
            exchange_line_ids=tuple((answer_id(x["id"]), x["id"]) for x in exchange),
            processed=tuple((line["id"], count(line["processedQuantity"])) for line in lines),
            removed=tuple((line["id"], removed_units(line)) for line in lines),
            exchange_processed=tuple((x["id"], count(x["processedQuantity"])) for x in exchange),
            exchange_removed=tuple(
                (x["id"], gone) for x in exchange if (gone := removed_units(x)) > 0
            ),
            disposed=disposed,
            dispositions=kinds,
            exchange_on_hold=bool(exchange) and outstanding(node, operation) is not None,
            balance_owed=outstanding(node, operation),
            balance_paid=balance_paid(node, operation),
            refunded=refunded(node, operation),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise bad_answer(operation, "return", node) from error


def disposals(
    node: dict[str, Any], lines: list[dict[str, Any]]
) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, Disposition, int], ...]]:
    """Units disposed of per return line item, and per return line item and kind: the
    ``quantity`` and ``type`` of the ``dispositions`` of the reverse fulfillment order line
    items of its fulfillment line item (by whoever gave them: returnflow or a person in the
    admin); none when the answer does not read them. ``ValueError`` for a quantity that is
    not a count or a type that is not a ``ReverseFulfillmentOrderDispositionType``."""
    by_item = {line["fulfillmentLineItem"]["id"]: line["id"] for line in lines}
    disposed: dict[str, int] = {}
    kinds: dict[tuple[str, Disposition], int] = {}
    for order in nodes_of(node.get("reverseFulfillmentOrders")):
        for item in nodes_of(order.get("lineItems")):
            line_id = by_item.get((item.get("fulfillmentLineItem") or {}).get("id"))
            given = item.get("dispositions") or []
            if not isinstance(given, list):
                raise ValueError(f"not a list of dispositions: {given!r}"[:200])
            for disposition in given:
                units = count(disposition["quantity"])
                if line_id is None or not units:
                    continue
                kind = Disposition(disposition["type"])
                disposed[line_id] = disposed.get(line_id, 0) + units
                kinds[(line_id, kind)] = kinds.get((line_id, kind), 0) + units
    return (
        tuple(disposed.items()),
        tuple((line_id, kind, units) for (line_id, kind), units in kinds.items()),
    )


def refunded(node: dict[str, Any], operation: str) -> Money | None:
    """What the return's refunds gave back for its lines: each refund's
    ``totalRefundedSet`` less the order's shipping (``refundShippingLines``: subtotal and
    tax) and duties (``duties``) it gave back, summed; in the order's currency (its
    ``totalOutstandingSet``'s) when there is none. ``None`` when the answer does not read
    the refunds. A refund that is not there in full (a total, its shipping lines), an
    amount that is no money or below zero, refunds in several currencies, or shipping and
    duties above the refund's total is a non-retryable ``PortError`` naming ``operation``."""
    if "refunds" not in node:
        return None
    connection = node["refunds"]
    if not isinstance(connection, dict) or not isinstance(connection.get("nodes"), list):
        raise bad_answer(operation, "Return.refunds", connection)
    owed = (node.get("order") or {}).get("totalOutstandingSet")
    currency = None if owed is None else parse_money(owed, operation).currency
    total: Money | None = None
    for refund in connection["nodes"]:
        if not isinstance(refund, dict):
            raise bad_answer(operation, "Return.refunds", refund)
        lines = _for_lines(refund, operation)
        currency = currency or lines.currency
        if lines.currency != currency:
            raise bad_answer(operation, f"refund in {lines.currency}, not {currency}", refund)
        total = lines if total is None else total + lines
    if total is None:
        return None if currency is None else Money.zero(currency)
    return total


def _for_lines(refund: dict[str, Any], operation: str) -> Money:
    """What one refund gave back for the return's lines."""
    if "totalRefundedSet" not in refund or "refundShippingLines" not in refund:
        raise bad_answer(operation, "Refund", refund)
    whole = _amount(refund["totalRefundedSet"], operation, refund)
    shipping = refund["refundShippingLines"]
    if not isinstance(shipping, dict) or not isinstance(shipping.get("nodes"), list):
        raise bad_answer(operation, "Refund.refundShippingLines", refund)
    duties = refund.get("duties") or []
    if not isinstance(duties, list):
        raise bad_answer(operation, "Refund.duties", refund)
    given = [
        _amount(line.get(field) if isinstance(line, dict) else None, operation, refund)
        for line in shipping["nodes"]
        for field in ("subtotalAmountSet", "taxAmountSet")
    ]
    given += [
        _amount(duty.get("amountSet") if isinstance(duty, dict) else None, operation, refund)
        for duty in duties
    ]
    if any(amount.currency != whole.currency for amount in given):
        raise bad_answer(operation, "Refund in several currencies", refund)
    lines = whole - Money.sum(given, whole.currency)
    if lines.is_negative:
        raise bad_answer(operation, "Refund: shipping and duties above its total", refund)
    return lines


def _amount(bag: object, operation: str, refund: dict[str, Any]) -> Money:
    amount = parse_money(bag, operation)
    if amount.is_negative:
        raise bad_answer(operation, "Refund: an amount below zero", refund)
    return amount
