"""How the Shopify adapter reads Shopify's answers and writes the variables of reads."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any

from returnflow.domain._fields import MAX_QUANTITY, check_key_text
from returnflow.domain.inbound import PlatformLine
from returnflow.domain.money import MONEY_CONTEXT, Money
from returnflow.errors import InvalidPayload, PortError, ReturnflowError
from returnflow.ports.platform_returns import (
    DutyRefund,
    FinancialOutcome,
    PlatformReturnLine,
    Quantity,
)

if TYPE_CHECKING:
    import httpx

PORT = "platform_returns"


def calculate_variables(
    node: dict[str, Any],
    *,
    units: Mapping[str, int] | None = None,
    items: Mapping[str, int] | None = None,
    shipping_fee: bool | Money = True,
) -> dict[str, Any]:
    """The variables of ``returnCalculate`` for a return read with its fees:
    ``{"input": CalculateReturnInput}``; for the whole return, or (``units`` by return line
    id, ``items`` by exchange line id) for one processing call's units, exchange items and,
    when ``shipping_fee``, the return shipping fee (as an amount: that much of it, the
    shares of the call's units or what the return's settlements charged of it, never more
    than the fee the return carries: a non-retryable ``PortError`` otherwise). Shopify
    documents ``CalculateReturnInput.returnShippingFee`` as a fixed amount for the
    calculation, in the order's presentment currency, not as a fee it shares over units."""
    whole = units is None
    wanted = units or {}
    lines = []
    for line in nodes_of(node.get("returnLineItems")):
        quantity = on_return(line) if whole else wanted.get(line["id"], 0)
        if not quantity:
            continue
        item: dict[str, Any] = {
            "fulfillmentLineItemId": (line.get("fulfillmentLineItem") or {}).get("id"),
            "quantity": quantity,
        }
        fee = line.get("restockingFee")
        if fee:
            item["restockingFee"] = {"percentage": fee["percentage"]}
        lines.append(item)
    exchange = [
        {
            "variantId": x["variantId"],
            "quantity": on_return(x) if whole else (items or {})[x["id"]],
        }
        for x in nodes_of(node.get("exchangeLineItems"))
        if whole or x["id"] in (items or {})
    ]
    calculated: dict[str, Any] = {
        "orderId": node["order"]["id"],
        "returnLineItems": lines,
        "exchangeLineItems": [x for x in exchange if x["quantity"]],
    }
    carried = _shipping_fee(node)
    if isinstance(shipping_fee, Money):
        if shipping_fee:
            if carried is None or shipping_fee.currency != carried.currency:
                carried_text = "no fee" if carried is None else str(carried)
            elif shipping_fee > carried:
                carried_text = str(carried)
            else:
                carried_text = ""
            if carried_text:
                raise PortError(
                    PORT,
                    "calculate",
                    f"shipping_fee={shipping_fee}: the return carries {carried_text}",
                    retryable=False,
                )
            calculated["returnShippingFee"] = {"amount": money_input(shipping_fee)}
    elif carried is not None and (whole or shipping_fee):
        calculated["returnShippingFee"] = {"amount": money_input(carried)}
    return {"input": calculated}


def _shipping_fee(node: dict[str, Any]) -> Money | None:
    """The return shipping fee a return carries (its ``returnShippingFees``, summed;
    ``None``: none), in the order's presentment currency, as ``ReturnShippingFeeInput``
    takes it back ("a fixed amount in the presentment currency of the order"); the shop's
    when the answer has no presentment amount."""
    fees = node.get("returnShippingFees") or []
    if not isinstance(fees, list):
        raise bad_answer("calculate", "returnShippingFees", fees)
    amounts = []
    for fee in fees:
        bag = fee.get("amountSet") if isinstance(fee, dict) else None
        shown = bag.get("presentmentMoney") if isinstance(bag, dict) else None
        amounts.append(parse_money(shown or bag, "calculate"))
    if not amounts:
        return None
    if any(amount.currency != amounts[0].currency for amount in amounts):
        raise bad_answer("calculate", "returnShippingFees", fees)
    return Money.sum(amounts, amounts[0].currency)


def remove_variables(
    return_id: str, lines: Sequence[Quantity], exchange_lines: Sequence[Quantity]
) -> dict[str, Any]:
    """The variables of ``removeFromReturn``: return line items and exchange line items."""
    variables: dict[str, Any] = {
        "returnId": return_id,
        "returnLineItems": [{"returnLineItemId": q.line_id, "quantity": q.quantity} for q in lines],
    }
    if exchange_lines:
        variables["exchangeLineItems"] = [
            {"exchangeLineItemId": q.line_id, "quantity": q.quantity} for q in exchange_lines
        ]
    return variables


def on_return(line: dict[str, Any]) -> int:
    """Units of a return or exchange line item still on the return: processed and not
    processed, not those removed. Read as ``processedQuantity + unprocessedQuantity`` when
    Shopify gives both: whether ``quantity`` still counts units taken out by
    ``removeFromReturn`` is documented for exchange line items only ("including refunded
    and removed units"), so it is not relied on; ``quantity`` otherwise."""
    processed, unprocessed = line.get("processedQuantity"), line.get("unprocessedQuantity")
    if processed is None or unprocessed is None:  # not read: the line's quantity
        return count(line["quantity"])
    return count(processed) + count(unprocessed)


def count(value: object) -> int:
    """A count of units in an answer (a GraphQL ``Int``): a whole number from 0 to
    :data:`~returnflow.domain._fields.MAX_QUANTITY`, as every count that comes in;
    ``ValueError`` otherwise (a negative count, a fraction, a flag), which the callers
    report as a bad answer."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUANTITY:
        raise ValueError(f"not a count of units: {value!r}")
    return value


def removed_units(line: dict[str, Any]) -> int:
    """Units taken out of a line (``removeFromReturn``): its quantity less those still on
    it; ``ValueError`` when more are on it than its quantity."""
    gone = count(line["quantity"]) - on_return(line)
    if gone < 0:
        raise ValueError(f"more units on the line than its quantity: {line!r}")
    return gone


def lines_on(node: dict[str, Any]) -> tuple[PlatformLine, ...]:
    """Every fulfillment line item's units on a return read with its line items (the
    ``lines`` of a ``returns/update`` fact), by :func:`on_return`."""
    units: dict[str, int] = {}
    try:
        for line in nodes_of(node.get("returnLineItems")):
            key = answer_id(line["fulfillmentLineItem"]["id"])
            units[key] = units.get(key, 0) + on_return(line)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise bad_answer("lines_now", "return", node) from error
    return tuple(PlatformLine(order_line_id=k, quantity=n) for k, n in units.items())


def exchange_ids(
    nodes: list[dict[str, Any]], lines: list[tuple[str, str, int]]
) -> tuple[tuple[str, str], ...]:
    """Each of returnflow's exchange lines ``(exchange line id, variant id, quantity)`` with
    the id of the exchange line item Shopify answered for it: matched by ``variantId`` (and
    quantity, among items of one variant), not by position, as Shopify documents no order for
    a return's exchange line items. A non-retryable ``PortError`` when the answer does not
    hold one item per line."""
    free = list(nodes)
    pairs: list[tuple[str, str]] = []
    for exchange_line_id, variant_id, quantity in lines:
        same = [x for x in free if x.get("variantId") == variant_id]
        found = next((x for x in same if on_return(x) == quantity), same[0] if same else None)
        if found is None:
            raise bad_answer("open_return", "exchange line items", [x.get("id") for x in nodes])
        free.remove(found)
        pairs.append((exchange_line_id, answer_id(found["id"])))
    if free:
        raise bad_answer("open_return", "exchange line items", [x.get("id") for x in nodes])
    return tuple(pairs)


def outcome(calculated: dict[str, Any], operation: str) -> FinancialOutcome:
    lines = calculated.get("returnLineItems") or []
    exchange = calculated.get("exchangeLineItems") or []
    amounts = [parse_money(x["subtotalSet"], operation) for x in (*lines, *exchange)]
    if not amounts:
        raise bad_answer(operation, "returnCalculate.returnLineItems", lines)
    currency = amounts[0].currency
    returned = Money.sum((parse_money(x["subtotalSet"], operation) for x in lines), currency)
    exchanged = Money.sum((parse_money(x["subtotalSet"], operation) for x in exchange), currency)
    fee_sets = [x["restockingFee"]["amountSet"] for x in lines if x.get("restockingFee")]
    if calculated.get("returnShippingFee"):
        fee_sets.append(calculated["returnShippingFee"]["amountSet"])
    fees = Money.sum((parse_money(x, operation) for x in fee_sets), currency)
    balance = returned - fees - exchanged
    zero = Money.zero(currency)
    return FinancialOutcome(
        returned=returned,
        fees=fees,
        exchanged=exchanged,
        refund=balance if balance > zero else zero,
        owed=zero - balance if balance < zero else zero,
    )


def outstanding(node: dict[str, Any], operation: str) -> Money | None:
    """What the return's order still waits to be paid (``totalOutstandingSet``): a balance
    an exchange leaves owed, for which Shopify holds the exchange's fulfillment (``None``:
    nothing, or not read)."""
    owed = (node.get("order") or {}).get("totalOutstandingSet")
    if owed is None:
        return None
    amount = parse_money(owed, operation)
    return amount if amount > Money.zero(amount.currency) else None


def nodes_of(connection: object) -> list[dict[str, Any]]:
    """The objects of a connection's ``nodes`` (none when it was not read: ``null``);
    ``ValueError`` when the connection is no object or its ``nodes`` no list."""
    if connection is None:
        return []
    nodes = connection.get("nodes") if isinstance(connection, dict) else connection
    if nodes is None:
        return []
    if not isinstance(nodes, list):
        raise ValueError(f"not a connection: {connection!r}"[:200])
    return [item for item in nodes if isinstance(item, dict)]


def refundable_transactions(node: dict[str, Any]) -> list[str]:
    """The order's successful ``SALE``/``CAPTURE`` transactions a return's refund goes to:
    its own payment, not a balance recorded on it (:func:`balance_payments`)."""
    balance = {payment_id for payment_id, *_ in balance_payments(node, "process")}
    return [
        answer_id(item.get("id"))
        for item in _transactions(node)
        if item.get("kind") in ("SALE", "CAPTURE")
        and item.get("status") == "SUCCESS"
        and item.get("id") not in balance
    ]


def _transactions(node: dict[str, Any]) -> list[dict[str, Any]]:
    return nodes_of((node.get("order") or {}).get("transactions"))


def balance_payments(node: dict[str, Any], operation: str) -> list[tuple[str, str, Money]]:
    """The payments of a balance recorded on the return's order (``pay_balance``:
    ``orderCreateManualPayment``), each ``(transaction id, gateway, what is left of it)``
    once refunds are taken off: the successful manual-gateway ``SALE`` transactions after
    the order's first transaction (the order's own payment, a cash-on-delivery one
    included), less the successful ``REFUND`` transactions whose parent each is; none left
    are left out."""
    items = _transactions(node)
    left: dict[str, tuple[str, Money]] = {}
    for item in items[1:]:
        if (item.get("kind"), item.get("status")) == ("SALE", "SUCCESS") and item.get(
            "manualPaymentGateway"
        ):
            amount = parse_money(item.get("amountSet"), operation)
            left[str(item.get("id"))] = (str(item.get("gateway") or "manual"), amount)
    for item in items:
        parent = str((item.get("parentTransaction") or {}).get("id"))
        if (item.get("kind"), item.get("status")) == ("REFUND", "SUCCESS") and parent in left:
            gateway, amount = left[parent]
            left[parent] = (gateway, amount - parse_money(item.get("amountSet"), operation))
    return [
        (payment_id, gateway, amount)
        for payment_id, (gateway, amount) in left.items()
        if amount > Money.zero(amount.currency)
    ]


def balance_paid(node: dict[str, Any], operation: str) -> Money | None:
    """What is left of the balance payments (:func:`balance_payments`); ``None``: none, or
    the order's transactions were not read."""
    payments = balance_payments(node, operation)
    if not payments:
        return None
    return Money.sum((amount for *_, amount in payments), payments[0][2].currency)


def reverse_line(node: dict[str, Any], line_id: str) -> str:
    """The reverse fulfillment order line of the return line ``line_id`` (by the fulfillment
    line item both come from)."""
    fulfillment = next(
        (
            (line.get("fulfillmentLineItem") or {}).get("id")
            for line in nodes_of(node.get("returnLineItems"))
            if line.get("id") == line_id
        ),
        None,
    )
    if fulfillment is None:
        raise PortError(PORT, "dispose", f"return has no line {line_id!r}", retryable=False)
    for order in nodes_of(node.get("reverseFulfillmentOrders")):
        for item in nodes_of(order.get("lineItems")):
            if (item.get("fulfillmentLineItem") or {}).get("id") == fulfillment:
                return answer_id(item.get("id"))
    raise PortError(
        PORT, "dispose", f"no reverse fulfillment order line for {line_id!r}", retryable=False
    )


def return_line_items(
    lines: Sequence[PlatformReturnLine], prices: dict[str, Money]
) -> list[dict[str, Any]]:
    """The ``ReturnLineItemInput`` of each line: its fulfillment line item (the order line's
    id), the count of units it takes, its reason and its fee as a percentage. The units a
    line names are units of that fulfillment line item: as many as its quantity, each once
    (a non-retryable ``PortError`` naming the field otherwise)."""
    items = []
    for index, line in enumerate(lines):
        units = line.units
        if units and (len(units) != line.quantity or len(set(units)) != len(units)):
            raise PortError(
                PORT,
                "open_return",
                f"lines[{index}].units={list(units)}: not {line.quantity} distinct units",
                retryable=False,
            )
        item: dict[str, Any] = {
            "fulfillmentLineItemId": line.order_line_id,
            "quantity": len(units) or line.quantity,
            "returnReason": line.reason,
        }
        if line.restocking_fee is not None:
            item["restockingFee"] = {
                "percentage": fee_percentage(line, prices, f"lines[{index}].restocking_fee")
            }
        items.append(item)
    return items


def fee_percentage(line: PlatformReturnLine, prices: dict[str, Money], field: str) -> Decimal:
    """Shopify's restocking fee is a percentage of the line: the fee's, exact to the cent,
    as a ``Decimal`` (:func:`request_body` writes it digit for digit, never as a float)."""
    assert line.restocking_fee is not None
    price = prices.get(line.order_line_id)
    if price is None:
        raise PortError(
            PORT,
            "open_return",
            f"{field}: no returnable fulfillment line "
            f"{line.order_line_id!r} to price the fee against",
            retryable=False,
        )
    worth = price * line.quantity
    fee = line.restocking_fee
    if fee.currency != worth.currency or not worth or fee > worth or fee.is_negative:
        raise PortError(
            PORT, "open_return", f"{field}={fee}: not a share of {worth}", retryable=False
        )
    with localcontext(MONEY_CONTEXT):
        percentage = (fee.amount * 100 / worth.amount).normalize()
        back = Money.quantized(worth.amount * percentage / 100, worth.currency)
    if back != fee:
        raise PortError(
            PORT,
            "open_return",
            f"{field}={fee}: no percentage of {worth} gives it to the cent",
            retryable=False,
        )
    return percentage


def money_input(amount: Money) -> dict[str, str]:
    """A ``MoneyInput``: the amount as a decimal string, and its currency code."""
    return {"amount": str(amount.amount), "currencyCode": amount.currency}


def parse_money(bag: object, operation: str) -> Money:
    # checked, not asserted: an assert is gone under ``python -O``
    shop_money = bag["shopMoney"] if isinstance(bag, dict) and "shopMoney" in bag else bag
    if not isinstance(shop_money, dict):
        raise bad_answer(operation, "money", bag)
    try:
        return Money(str(shop_money["amount"]), str(shop_money["currencyCode"]))
    except (KeyError, InvalidOperation, ReturnflowError) as error:
        raise bad_answer(operation, "money", bag) from error


def request_body(data: Any) -> bytes:
    """``data`` as a request's JSON: a ``Decimal`` (a fee's percentage, sent or read back)
    written as the number it is, digit for digit (``10.0``, ``14.28571428571428571428571429``),
    never through a float, which would change its digits."""
    return _json_text(data).encode()


def _json_text(value: Any) -> str:
    if isinstance(value, Decimal):  # finite: a percentage computed, or read from JSON
        text = format(value, "f")
        return text if "." in text else f"{text}.0"
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(key))}:{_json_text(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json_text(item) for item in value) + "]"
    return json.dumps(value)


def user_errors(errors: object) -> str:
    """``userErrors`` as one line; an answer whose errors are not objects with a list of
    ``field`` parts is shown as it is, never read as if it were."""
    if not isinstance(errors, list):
        errors = [errors]
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            parts.append(json.dumps(error, default=str)[:200])
            continue
        path = error.get("field")
        path = path if isinstance(path, list) else [] if path is None else [path]
        field = ".".join(str(part) for part in path) or "(no field)"
        code = f" [{error['code']}]" if error.get("code") else ""
        parts.append(f"{field}: {error.get('message')}{code}")
    return "userErrors: " + "; ".join(parts)


def answer_id(value: object) -> str:
    """An id in an answer (a GraphQL ``ID``): non-blank text of at most
    :data:`~returnflow.domain._fields.MAX_KEY_BYTES` bytes, kept as it is; ``ValueError``
    otherwise (``null``, a number, a list: never its ``str()``, which would look like an id),
    which :func:`reading` reports as a bad answer."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not an id: {value!r}")
    try:
        return check_key_text("id", value, InvalidPayload)
    except InvalidPayload as error:
        raise ValueError(f"not an id: {error.reason}") from None


@contextmanager
def reading(operation: str) -> Iterator[None]:
    """Reading an answer of ``operation``: a shape it was not read for (a key missing, a
    number where an object or a list was, an id or a count that is none) is a non-retryable
    :class:`~returnflow.errors.PortError` naming the operation, never the ``KeyError``,
    ``TypeError``, ``AttributeError``, ``IndexError`` or ``ValueError`` of reading it; a
    :class:`~returnflow.errors.ReturnflowError` passes as it is."""
    try:
        yield
    except ReturnflowError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise PortError(
            PORT, operation, f"unexpected answer: {error!r}"[:300], retryable=False
        ) from error


def bad_answer(operation: str, what: str, value: object) -> PortError:
    shown = json.dumps(value, default=str)[:200]
    return PortError(PORT, operation, f"unexpected answer for {what}: {shown}", retryable=False)


def throttled(operation: str, why: str, seconds: float) -> PortError:
    return PortError(
        PORT, operation, f"throttled ({why}); retry after {seconds:g}s", retry_after=seconds
    )


def header_seconds(value: str | None) -> float:
    """``Retry-After`` in seconds; 1.0 when absent, not a number of seconds (an HTTP date)
    or NaN (the dispatcher caps a longer wait)."""
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        return 1.0
    return 1.0 if math.isnan(seconds) else max(seconds, 0.0)


def refill_seconds(body: dict[str, Any]) -> float:
    """Seconds until the bucket holds the query's requested cost again, from
    ``extensions.cost`` (``requestedQueryCost`` and ``throttleStatus``); 1.0 without it."""
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (KeyError, TypeError, ValueError):
        return 1.0
    if rate <= 0:
        return 1.0
    return max(needed / rate, 0.0) or 1.0


def read_answer(answer: httpx.Response, operation: str) -> dict[str, Any]:
    """The ``data`` of an answer; a retryable ``PortError`` for HTTP 429 (with
    ``retry_after``), 5xx, a body that is not JSON and a ``THROTTLED`` error; a
    non-retryable one for another 4xx, another GraphQL error or an answer without data."""
    if answer.status_code == 429:
        raise throttled(operation, "HTTP 429", header_seconds(answer.headers.get("Retry-After")))
    if answer.status_code >= 500:
        raise PortError(PORT, operation, f"HTTP {answer.status_code}")
    if answer.status_code >= 400:
        raise PortError(
            PORT, operation, f"HTTP {answer.status_code}: {answer.text[:200]}", retryable=False
        )
    try:  # a number with a fraction (a fee's percentage) read as the Decimal it says
        body = json.loads(answer.content, parse_float=Decimal)
    except ValueError as error:
        raise PortError(PORT, operation, f"an answer that is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise bad_answer(operation, "body", body)
    errors = body.get("errors")
    if errors:
        if not isinstance(errors, list):  # a list of error objects, as GraphQL says
            errors = [errors]
        codes = [
            str(extensions.get("code"))
            for e in errors
            if isinstance(e, dict) and isinstance(extensions := e.get("extensions"), dict)
        ]
        if "THROTTLED" in codes:
            raise throttled(operation, "THROTTLED", refill_seconds(body))
        messages = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
        )
        raise PortError(PORT, operation, f"GraphQL errors: {messages}", retryable=False)
    data = body.get("data")
    if not isinstance(data, dict):
        raise bad_answer(operation, "data", data)
    return data


def process_input(
    return_id: str,
    lines: Sequence[Quantity],
    exchange_lines: Sequence[Quantity],
    refund: Money,
    refund_shipping: Money | None,
    refund_duties: Sequence[DutyRefund],
    transactions: Sequence[str],
) -> dict[str, Any]:
    """The variables of ``returnProcess``: ``{"input": ReturnProcessInput}``.
    ``transactions`` are the order's successful ``SALE``/``CAPTURE`` transaction ids; the
    refund to the first of them is the whole money moved (the lines, the shipping and the
    duties given back). Duties go back by id, in proportion to the units processed
    (``RefundDutyInput``, ``PROPORTIONAL``)."""
    if refund.is_negative:
        raise PortError(PORT, "process", f"refund={refund}: negative", retryable=False)
    processed: dict[str, Any] = {
        "returnId": return_id,
        "returnLineItems": [{"id": q.line_id, "quantity": q.quantity} for q in lines],
        "exchangeLineItems": [{"id": q.line_id, "quantity": q.quantity} for q in exchange_lines],
    }
    duties = [duty for duty in refund_duties if duty.amount]
    extras = [duty.amount for duty in duties]
    if refund_shipping is not None:
        extras.append(refund_shipping)
    total = Money.sum((refund, *extras), refund.currency)
    if total:
        if not transactions:
            raise PortError(
                PORT,
                "process",
                f"refund={total}: the order has no successful SALE or "
                "CAPTURE transaction to refund",
                retryable=False,
            )
        processed["financialTransfer"] = {
            "issueRefund": {
                "orderTransactions": [
                    {"parentId": transactions[0], "transactionAmount": money_input(total)}
                ]
            }
        }
    if refund_shipping is not None and refund_shipping:
        processed["refundShipping"] = {"shippingRefundAmount": money_input(refund_shipping)}
    if duties:
        processed["refundDuties"] = [
            {"dutyId": duty.duty_id, "refundType": "PROPORTIONAL"} for duty in duties
        ]
    return {"input": processed}
