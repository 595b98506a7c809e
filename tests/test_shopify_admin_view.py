"""What the Shopify adapter reads of a person's work in the admin: the kinds of the units
disposed of (the ``type`` of each disposition of the reverse fulfillment order line items)
and what the return's refunds gave back for its lines (each refund's total less the
shipping and duties it gave back), so that returnflow follows a person's disposal with the
right kinds and compares a person's refund with its own figure. An answer with a missing or
odd value is a non-retryable ``PortError`` naming the operation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from returnflow import RequestLine, ReturnRequest
from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    Disposition,
    ReceivedLine,
    WarehouseReceipt,
)
from returnflow.domain.money import Money
from returnflow.errors import PortError
from returnflow.integrations.shopify import ShopifyPlatformReturns, ShopifyShop
from returnflow.ports.platform_returns import Quantity
from test_shopify import ORDER, native

ANSWER = json.loads(
    (Path(__file__).parent / "data" / "shopify" / "return_read_admin.json").read_text()
)
"""A return read (``return(id:)``) after two refunds, one of them a person's in the admin
with no shipping or duties, and three units disposed of, in two kinds, over two reverse
fulfillment orders."""
RETURN_ID = "gid://shopify/Return/945000960"
FIRST, SECOND = "gid://shopify/ReturnLineItem/677614680", "gid://shopify/ReturnLineItem/677614681"


def _answering(body: object) -> ShopifyPlatformReturns:
    content = json.dumps(body).encode()
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=content))
    )
    return ShopifyPlatformReturns(
        {"shop-a": ShopifyShop("a.myshopify.com", "token-a")}, client=client
    )


def _with(change: Any) -> dict[str, Any]:
    body = copy.deepcopy(ANSWER)
    change(body["data"]["return"])
    return body


# -- a recorded answer ---------------------------------------------------------------------------


def test_the_refunds_are_read_less_the_shipping_and_duties_they_gave_back() -> None:
    read = _answering(ANSWER).get_return("shop-a", RETURN_ID)
    # 15.50 less 3.30 + 0.70 shipping and 1.50 duties, and a person's 5.00
    assert read.refunded == Money("15.00", "EUR")


def test_the_disposals_are_read_by_kind_over_every_reverse_fulfillment_order() -> None:
    read = _answering(ANSWER).get_return("shop-a", RETURN_ID)
    assert read.disposed == ((FIRST, 3),)
    assert read.disposed_as(FIRST) == {Disposition.NOT_RESTOCKED: 2, Disposition.RESTOCKED: 1}
    assert read.disposed_as(SECOND) == {}


def test_a_return_with_no_refund_has_refunded_nothing_in_the_orders_currency() -> None:
    read = _answering(_with(lambda node: node["refunds"].update(nodes=[]))).get_return(
        "shop-a", RETURN_ID
    )
    assert read.refunded == Money("0", "EUR")


def test_an_answer_that_does_not_read_the_refunds_does_not_report_them() -> None:
    read = _answering(_with(lambda node: node.pop("refunds"))).get_return("shop-a", RETURN_ID)
    assert read.refunded is None


def _refund(field: str, value: object) -> Any:
    return lambda node: node["refunds"]["nodes"][0].__setitem__(field, value)


def _money(amount: object, currency: object = "EUR") -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


def _disposition(value: object) -> Any:
    def change(node: dict[str, Any]) -> None:
        items = node["reverseFulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"]
        items[0]["dispositions"] = value

    return change


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda node: node.__setitem__("refunds", "none"), "refunds not a connection"),
        (lambda node: node.__setitem__("refunds", None), "refunds null"),
        (lambda node: node["refunds"].__setitem__("nodes", {"id": "x"}), "nodes not a list"),
        (lambda node: node["refunds"]["nodes"].append("gid://shopify/Refund/1"), "an id"),
        (lambda node: node["refunds"]["nodes"][0].pop("totalRefundedSet"), "no total"),
        (lambda node: node["refunds"]["nodes"][0].pop("refundShippingLines"), "no shipping"),
        (_refund("totalRefundedSet", None), "total null"),
        (_refund("totalRefundedSet", _money("abc")), "total not a number"),
        (_refund("totalRefundedSet", _money("NaN")), "total NaN"),
        (_refund("totalRefundedSet", _money("-15.5")), "total below zero"),
        (_refund("totalRefundedSet", _money("15.5", "XXX1")), "no currency"),
        (_refund("totalRefundedSet", _money("15.5", "USD")), "another currency"),
        (_refund("totalRefundedSet", _money("5.0")), "shipping and duties above the total"),
        (_refund("refundShippingLines", {"nodes": [None]}), "a shipping line null"),
        (_refund("refundShippingLines", {"nodes": [{"subtotalAmountSet": _money("1")}]}), "tax"),
        (_refund("refundShippingLines", []), "shipping lines not a connection"),
        (_refund("duties", {"amountSet": _money("1.5")}), "duties not a list"),
        (_refund("duties", [{"amountSet": _money("1.5", "USD")}]), "a duty in another currency"),
        (_refund("duties", [{"amountSet": _money("-1.5")}]), "a duty below zero"),
        (_disposition([{"quantity": 1}]), "a disposition without its type"),
        (_disposition([{"quantity": 1, "type": "DESTROYED"}]), "a type Shopify does not have"),
        (_disposition([{"quantity": -1, "type": "RESTOCKED"}]), "a negative quantity"),
        (_disposition([{"quantity": "1", "type": "RESTOCKED"}]), "a quantity as text"),
        (_disposition([{"type": "RESTOCKED"}]), "a disposition without its quantity"),
        (_disposition({"quantity": 1, "type": "RESTOCKED"}), "dispositions not a list"),
        (_disposition(["RESTOCKED"]), "a disposition not an object"),
    ],
)
def test_an_odd_answer_is_a_refusal_naming_the_operation(change: Any, why: str) -> None:
    with pytest.raises(PortError) as refused:
        _answering(_with(change)).get_return("shop-a", RETURN_ID)
    assert refused.value.operation == "get_return", why
    assert not refused.value.retryable, why
    assert "unexpected answer" in str(refused.value), why


# -- followed end to end, over a stand-in Admin API ----------------------------------------------


def test_a_persons_disposal_in_the_admin_counts_against_the_units_of_its_kind() -> None:
    # Two units processed through Shopify on hand-in; a person says in the admin that one
    # was not restocked. At the warehouse one passes QC and one fails it: the person's unit
    # is the failed one, so returnflow restocks the other (one unit of each kind in the
    # end, not two not restocked).
    made, mock = native({}, refund_trigger="on_handed_in")
    opened = made.service.request(
        ReturnRequest(shop="shop-a", order_id=ORDER, lines=[RequestLine("L1", 2)])
    )
    made.service.handle(
        CarrierUpdate(
            shop="shop-a", return_id=opened.id, event_id="s1", status=CarrierStatus.PICKED_UP
        )
    )
    there_id = made.service.get("shop-a", opened.id).refs.platform_return_id or ""
    line = mock.platform.get_return("shop-a", there_id).line_id("L1")
    mock.platform.dispose(
        "shop-a", there_id, line, 1, Disposition.NOT_RESTOCKED, idempotency_key="admin"
    )
    assert made.platform_returns is not None
    read = made.platform_returns.get_return("shop-a", there_id)
    assert read.disposed_as(line) == {Disposition.NOT_RESTOCKED: 1}
    made.service.handle(
        WarehouseReceipt(
            shop="shop-a",
            return_id=opened.id,
            event_id="r1",
            lines=[
                ReceivedLine(line_id=opened.lines[0].id, quantity=1),
                ReceivedLine(
                    line_id=opened.lines[0].id,
                    quantity=1,
                    disposition=Disposition.NOT_RESTOCKED,
                ),
            ],
        )
    )
    record = made.service.get("shop-a", opened.id)
    assert (record.status, record.review_reasons) == ("closed", ())
    assert mock.platform.dispositions("shop-a", there_id) == [
        (line, 1, Disposition.NOT_RESTOCKED),
        (line, 1, Disposition.RESTOCKED),
    ]


def test_a_persons_refund_in_the_admin_is_compared_with_returnflows_figure() -> None:
    # A person processes one of two units in the admin with a refund of 5.00; returnflow
    # values it at 10.00. Read through the adapter (the return's refunds), the difference
    # sends the return to a person before anything more is processed.
    made, mock = native({})
    opened = made.service.request(
        ReturnRequest(shop="shop-a", order_id=ORDER, lines=[RequestLine("L1", 2)])
    )
    there_id = made.service.get("shop-a", opened.id).refs.platform_return_id or ""
    line = mock.platform.get_return("shop-a", there_id).line_id("L1")
    mock.platform.process(
        "shop-a",
        there_id,
        [Quantity(line, 1)],
        refund=Money("5.00", "EUR"),
        idempotency_key="admin",
    )
    assert made.platform_returns is not None
    assert made.platform_returns.get_return("shop-a", there_id).refunded == Money("5.00", "EUR")
    made.service.handle(
        WarehouseReceipt(
            shop="shop-a",
            return_id=opened.id,
            event_id="r1",
            lines=[ReceivedLine(line_id=opened.lines[0].id, quantity=2)],
        )
    )
    record = made.service.get("shop-a", opened.id)
    assert record.status == "needs_review"
    assert "refund of 5.00 EUR" in record.review_reasons[0]
    assert not any(r.operation == "ReturnflowReturnProcess" for r in mock.requests)
    made.service.close("shop-a", opened.id)
    made.dispatch_due()
    record = made.service.get("shop-a", opened.id)
    assert (record.status, record.review_reasons) == ("closed", ())
    # the person's 5.00 stands, and the other unit gets its 10.00
    assert made.platform_returns.get_return("shop-a", there_id).refunded == Money("15.00", "EUR")
