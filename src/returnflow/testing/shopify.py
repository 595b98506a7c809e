"""A stand-in Shopify Admin API for the Shopify adapter's tests: answers like Shopify, over
``httpx.MockTransport``.

:class:`ShopifyAdminMock` answers the GraphQL documents of
:mod:`returnflow.integrations.shopify` (by operation name) with the shapes Shopify documents
for API 2025-07, and keeps the returns' state in a
:class:`~returnflow.testing.platform_returns.FakePlatformReturns` on the orders of a
:class:`~returnflow.testing.fakes.FakeCommercePlatform`: a refusal of the fake comes back as a
``userErrors`` entry, as Shopify's would. It records every request (operation, variables) and
throttles or fails on demand (HTTP 429, a ``THROTTLED`` error with the cost extension, HTTP
503, a dropped connection). Needs httpx (the ``shopify`` extra).

>>> from returnflow.testing import FakeCommercePlatform, make_order
>>> from returnflow.integrations.shopify import ShopifyPlatformReturns, ShopifyShop
>>> import httpx
>>> commerce = FakeCommercePlatform()
>>> commerce.add_order(make_order("shop-a", "gid://shopify/Order/1"))
>>> mock = ShopifyAdminMock(commerce, {"a.myshopify.com": ("shop-a", "token-a")})
>>> platform = ShopifyPlatformReturns(
...     {"shop-a": ShopifyShop("a.myshopify.com", "token-a")},
...     client=httpx.Client(transport=mock.transport()),
... )
>>> opened = platform.open_return(
...     "shop-a", "gid://shopify/Order/1", [PlatformReturnLine("L1", 1)], idempotency_key="k"
... )
>>> opened.status.value, [call.operation for call in mock.requests]
('OPEN', ['ReturnflowReturnCreate'])
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import httpx

from returnflow.domain.inbound import Disposition
from returnflow.domain.money import Money
from returnflow.domain.settlement import unit_amounts
from returnflow.errors import PortError
from returnflow.integrations.shopify._answers import request_body
from returnflow.ports.platform_returns import (
    DutyRefund,
    PlatformExchangeLine,
    PlatformReturn,
    PlatformReturnLine,
    Quantity,
)
from returnflow.testing.fakes import FakeCommercePlatform
from returnflow.testing.platform_returns import FakePlatformReturns

__all__ = ["Request", "ShopifyAdminMock"]

_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")
TRANSACTION = "gid://shopify/OrderTransaction/1"


@attrs.frozen
class Request:
    """A request the mock answered: the shop's domain, the operation name, the variables."""

    domain: str
    operation: str
    variables: dict[str, Any]
    version: str


@attrs.frozen
class _Refund:
    """A refund of the return: its total, and the shipping and duties it gave back."""

    id: str
    total: Money
    shipping: Money | None = None
    duties: tuple[Money, ...] = ()

    def node(self) -> dict[str, Any]:
        lines = [] if self.shipping is None else [self.shipping]
        zero = Money.zero(self.total.currency)
        return {
            "id": self.id,
            "totalRefundedSet": _bag(self.total),
            "refundShippingLines": {
                "nodes": [
                    {"subtotalAmountSet": _bag(amount), "taxAmountSet": _bag(zero)}
                    for amount in lines
                ]
            },
            "duties": [{"amountSet": _bag(amount)} for amount in self.duties],
        }

    def for_lines(self) -> Money:
        given = [*([] if self.shipping is None else [self.shipping]), *self.duties]
        return self.total - Money.sum(given, self.total.currency)


@attrs.define
class _Extra:
    """What Shopify keeps of a return that the fake does not: quantities asked, fee
    percentages, exchange variants, refunds, the shipping fee."""

    quantities: dict[str, int] = attrs.field(factory=dict)
    percentages: dict[str, Decimal] = attrs.field(factory=dict)
    variants: dict[str, tuple[str, int]] = attrs.field(factory=dict)
    refunds: list[_Refund] = attrs.field(factory=list)
    shipping_fee: Money | None = None
    currency: str = "EUR"


class ShopifyAdminMock:
    """Shopify's Admin API for ``domains`` (``domain -> (returnflow shop, access token)``).

    ``variant_prices`` prices exchange variants (Shopify prices them itself); a variant not in
    it costs 0. The returns live in :attr:`platform` on the orders of ``commerce``.

    Two things Shopify's documentation leaves open are settings, so that the adapter is
    tested under either answer: ``removed_in_quantity`` (default ``True``): a return line
    item's ``quantity`` still counts units taken out by ``removeFromReturn`` (as exchange
    line items' is documented to), else it drops by them; ``exchange_order`` (default
    ``"given"``): a return's exchange line items come back in the order they were given, or
    ``"reversed"``.
    """

    def __init__(
        self,
        commerce: FakeCommercePlatform,
        domains: Mapping[str, tuple[str, str]],
        *,
        variant_prices: Mapping[str, Decimal] | None = None,
        location_id: str = "gid://shopify/Location/1",
        removed_in_quantity: bool = True,
        exchange_order: str = "given",
    ) -> None:
        if exchange_order not in ("given", "reversed"):
            raise ValueError(f"exchange_order is 'given' or 'reversed', not {exchange_order!r}")
        self.removed_in_quantity = removed_in_quantity
        self.exchange_order = exchange_order
        self.commerce = commerce
        self.platform = FakePlatformReturns(commerce)
        self.requests: list[Request] = []
        self._domains = dict(domains)
        self._prices = dict(variant_prices or {})
        self._location = location_id
        self._extra: dict[str, _Extra] = {}
        self._failures: list[Callable[[], httpx.Response]] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        # The transactions recorded on each order after its own payment: the manual payments
        # of a balance and the refunds of them, as Shopify lists them (oldest first).
        self._transactions: dict[tuple[str, str], list[dict[str, Any]]] = {}

    # -- failing on demand -------------------------------------------------------------------

    def throttle(self, *, available: int = 10, requested: int = 52, restore_rate: int = 50) -> None:
        """Answer the next request with a ``THROTTLED`` error and its cost extension."""
        body = {
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": None,
                    "throttleStatus": {
                        "maximumAvailable": 2000.0,
                        "currentlyAvailable": available,
                        "restoreRate": float(restore_rate),
                    },
                }
            },
        }
        self._failures.append(lambda: httpx.Response(200, json=body))

    def fail(self, status: int, *, headers: Mapping[str, str] | None = None) -> None:
        """Answer the next request with HTTP ``status``."""
        self._failures.append(
            lambda: httpx.Response(status, headers=dict(headers or {}), text="failure")
        )

    def drop(self) -> None:
        """Drop the connection of the next request (``httpx.ConnectError``)."""

        def dropped() -> httpx.Response:
            raise httpx.ConnectError("connection reset")

        self._failures.append(dropped)

    def transport(self) -> httpx.MockTransport:
        """The transport to give an ``httpx.Client``."""
        return httpx.MockTransport(self.handle)

    # -- answering ---------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)()
            match = re.fullmatch(r"/admin/api/([\w-]+)/graphql\.json", request.url.path)
            known = self._domains.get(request.url.host)
            if match is None or known is None:
                return httpx.Response(404, text="Not Found")
            shop, token = known
            if request.headers.get("X-Shopify-Access-Token") != token:
                return httpx.Response(401, json={"errors": "[API] Invalid API key or access token"})
            body = json.loads(request.content, parse_float=Decimal)  # as Shopify reads it
            found = _OPERATION.search(body["query"])
            if found is None:
                return httpx.Response(200, json={"errors": [{"message": "syntax error"}]})
            operation, variables = found.group(1), body.get("variables") or {}
            self.requests.append(Request(request.url.host, operation, variables, match.group(1)))
            answer = getattr(self, "_" + operation, None)
            if answer is None:
                message = f"Field '{operation}' doesn't exist"
                return httpx.Response(200, json={"errors": [{"message": message}]})
            try:
                data = answer(shop, variables)
            except PortError as error:
                data = {_FIELDS[operation]: {"userErrors": [_user_error(operation, error)]}}
            cost = {
                "requestedQueryCost": 12,
                "actualQueryCost": 10,
                "throttleStatus": {
                    "maximumAvailable": 2000.0,
                    "currentlyAvailable": 1990,
                    "restoreRate": 100.0,
                },
            }
            answered = request_body({"data": data, "extensions": {"cost": cost}})
            return httpx.Response(200, content=answered, headers=_JSON)

    # -- one method per operation --------------------------------------------------------------

    def _ReturnflowReturnCreate(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        return {"returnCreate": self._open(shop, variables["returnInput"], requested=False)}

    def _ReturnflowReturnRequest(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        return {"returnRequest": self._open(shop, variables["input"], requested=True)}

    def _open(self, shop: str, given: dict[str, Any], *, requested: bool) -> dict[str, Any]:
        order = self.commerce.get_order(shop, given["orderId"])
        prices = unit_amounts(order)
        lines, percentages = [], {}
        for item in given["returnLineItems"]:
            fee = None
            if "restockingFee" in item:
                percentage = item["restockingFee"]["percentage"]
                worth = Money.sum(
                    prices[item["fulfillmentLineItemId"]][: item["quantity"]], order.currency
                )
                fee = Money.quantized(worth.amount * Decimal(str(percentage)) / 100, order.currency)
                percentages[item["fulfillmentLineItemId"]] = percentage
            lines.append(
                PlatformReturnLine(
                    item["fulfillmentLineItemId"],
                    item["quantity"],
                    item.get("returnReason", "UNKNOWN"),
                    fee,
                )
            )
        exchange = [
            PlatformExchangeLine(
                f"X{index}",
                x["variantId"],
                x["quantity"],
                Money.quantized(self._prices.get(x["variantId"], Decimal(0)), order.currency),
            )
            for index, x in enumerate(given.get("exchangeLineItems") or [])
        ]
        shipping = given.get("returnShippingFee")
        shipping_fee = None if shipping is None else _money(shipping["amount"])
        opened = self.platform.open_return(
            shop,
            order.id,
            lines,
            exchange_lines=exchange,
            return_shipping_fee=shipping_fee,
            requested=requested,
            idempotency_key=uuid.uuid4().hex,
        )
        extra = _Extra(shipping_fee=shipping_fee, currency=order.currency)
        for line, (order_line, line_id) in zip(lines, opened.line_ids, strict=True):
            extra.quantities[line_id] = line.quantity
            if order_line in percentages:
                extra.percentages[line_id] = percentages[order_line]
        for x, (_, exchange_id) in zip(exchange, opened.exchange_line_ids, strict=True):
            extra.variants[exchange_id] = (x.variant_id, x.quantity)
        self._extra[opened.return_id] = extra
        return {"return": self._node(shop, opened), "userErrors": []}

    def _ReturnflowReturn(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        node = self._read(shop, variables["id"])
        if node is not None:  # each disposition given, as Shopify lists them
            given = self.platform.dispositions(shop, node["id"])
            items = [
                {
                    "fulfillmentLineItem": line["fulfillmentLineItem"],
                    "dispositions": [
                        {"quantity": units, "type": kind.value}
                        for line_id, units, kind in given
                        if line_id == line["id"]
                    ],
                }
                for line in node["returnLineItems"]["nodes"]
            ]
            node["reverseFulfillmentOrders"] = {"nodes": [{"lineItems": {"nodes": items}}]}
        return {"return": node}

    def _ReturnflowReturnForProcess(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        node = self._read(shop, variables["id"])
        if node is not None:
            node["reverseFulfillmentOrders"] = {
                "nodes": [
                    {
                        "lineItems": {
                            "nodes": [
                                {
                                    "id": _reverse_id(line["id"]),
                                    "fulfillmentLineItem": line["fulfillmentLineItem"],
                                }
                                for line in node["returnLineItems"]["nodes"]
                            ]
                        }
                    }
                ]
            }
            node["order"]["transactions"] = [
                {
                    "id": "gid://shopify/OrderTransaction/0",
                    "kind": "AUTHORIZATION",
                    "status": "SUCCESS",
                    "manualPaymentGateway": False,
                    "gateway": "shopify_payments",
                    "amountSet": node["order"]["transactions"][0]["amountSet"],
                    "parentTransaction": None,
                },
                *node["order"]["transactions"],
            ]
        return {"return": node}

    def _ReturnflowReturnForCalculate(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        node = self._read(shop, variables["id"])
        if node is not None:
            extra = self._extra[node["id"]]
            for line in node["returnLineItems"]["nodes"]:
                percentage = extra.percentages.get(line["id"])
                line["restockingFee"] = None if percentage is None else {"percentage": percentage}
            fee = extra.shipping_fee
            node["returnShippingFees"] = [] if fee is None else [{"amountSet": _bag(fee)}]
        return {"return": node}

    def _ReturnflowReturnCalculate(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        given = variables["input"]
        order = self.commerce.get_order(shop, given["orderId"])
        prices = unit_amounts(order)
        lines = []
        for item in given["returnLineItems"]:
            worth = Money.sum(
                prices[item["fulfillmentLineItemId"]][: item["quantity"]], order.currency
            )
            fee = None
            if item.get("restockingFee"):
                amount = worth.amount * Decimal(str(item["restockingFee"]["percentage"])) / 100
                fee = {"amountSet": _bag(Money.quantized(amount, order.currency))}
            lines.append(
                {
                    "fulfillmentLineItem": {"id": item["fulfillmentLineItemId"]},
                    "quantity": item["quantity"],
                    "subtotalSet": _bag(worth),
                    "restockingFee": fee,
                }
            )
        exchange = [
            {
                "variant": {"id": x["variantId"]},
                "quantity": x["quantity"],
                "subtotalSet": _bag(
                    Money.quantized(
                        self._prices.get(x["variantId"], Decimal(0)) * x["quantity"], order.currency
                    )
                ),
            }
            for x in given.get("exchangeLineItems") or []
        ]
        shipping = given.get("returnShippingFee")
        return {
            "returnCalculate": {
                "returnLineItems": lines,
                "exchangeLineItems": exchange,
                "returnShippingFee": None
                if shipping is None
                else {"amountSet": _bag(_money(shipping["amount"]))},
            }
        }

    def _ReturnflowReturnApproveRequest(
        self, shop: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        key = uuid.uuid4().hex
        done = self.platform.approve(shop, variables["input"]["id"], idempotency_key=key)
        return {"returnApproveRequest": {"return": self._node(shop, done), "userErrors": []}}

    def _ReturnflowReturnDeclineRequest(
        self, shop: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        given = variables["input"]
        reason = given.get("declineNote") or given["declineReason"]
        done = self.platform.decline(
            shop, given["id"], reason=reason, idempotency_key=uuid.uuid4().hex
        )
        return {"returnDeclineRequest": {"return": self._node(shop, done), "userErrors": []}}

    def _ReturnflowReturnClose(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        done = self.platform.close(shop, variables["id"], idempotency_key=uuid.uuid4().hex)
        return {"returnClose": {"return": self._node(shop, done), "userErrors": []}}

    def _ReturnflowReturnReopen(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        done = self.platform.reopen(shop, variables["id"], idempotency_key=uuid.uuid4().hex)
        return {"returnReopen": {"return": self._node(shop, done), "userErrors": []}}

    def _ReturnflowReturnCancel(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        done = self.platform.cancel(shop, variables["id"], idempotency_key=uuid.uuid4().hex)
        return {"returnCancel": {"return": self._node(shop, done), "userErrors": []}}

    def _ReturnflowRemoveFromReturn(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        lines = [
            Quantity(x["returnLineItemId"], x["quantity"]) for x in variables["returnLineItems"]
        ]
        items = [
            Quantity(x["exchangeLineItemId"], x["quantity"])
            for x in variables.get("exchangeLineItems") or ()
        ]
        done = self.platform.remove_lines(
            shop,
            variables["returnId"],
            lines,
            exchange_lines=items,
            idempotency_key=uuid.uuid4().hex,
        )
        return {"removeFromReturn": {"return": self._node(shop, done), "userErrors": []}}

    def _ReturnflowReturnProcess(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        given = variables["input"]
        current = self.platform.get_return(shop, given["returnId"])
        currency = self.commerce.get_order(shop, current.order_id).currency
        refund = Money.zero(currency)
        issue = (given.get("financialTransfer") or {}).get("issueRefund")
        for transaction in (issue or {}).get("orderTransactions", []):
            if transaction["parentId"] != TRANSACTION:
                raise PortError(
                    "platform_returns",
                    "process",
                    f"no transaction {transaction['parentId']}",
                    retryable=False,
                )
            refund = refund + _money(transaction["transactionAmount"])
        shipping = (given.get("refundShipping") or {}).get("shippingRefundAmount")
        lines = [Quantity(x["id"], x["quantity"]) for x in given.get("returnLineItems", [])]
        duties = self._duties(shop, current, lines, given.get("refundDuties") or [])
        # The transactions carry the whole refund: the lines' part is what is left.
        for duty in duties:
            refund = refund - duty.amount
        if shipping is not None:
            refund = refund - _money(shipping)
        result = self.platform.process(
            shop,
            given["returnId"],
            lines,
            exchange_lines=[
                Quantity(x["id"], x["quantity"]) for x in given.get("exchangeLineItems", [])
            ],
            refund=refund,
            refund_shipping=None if shipping is None else _money(shipping),
            refund_duties=duties,
            idempotency_key=uuid.uuid4().hex,
        )
        extra = self._extra[given["returnId"]]
        for refund_id in result.refund_ids:
            extra.refunds.append(
                _Refund(
                    refund_id,
                    result.refunded,
                    None if shipping is None else _money(shipping),
                    tuple(duty.amount for duty in duties),
                )
            )
        node = self._node(shop, self.platform.get_return(shop, given["returnId"]))
        return {"returnProcess": {"return": node, "userErrors": []}}

    def _ReturnflowOrderCreateManualPayment(
        self, shop: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        """A manual payment on the order: it pays the balance of the order's return that
        leaves one (Shopify refuses a payment on an order paid in full)."""
        amount = _money(variables["amount"])
        for return_id in list(self._extra):
            read = self.platform.get_return(shop, return_id)
            if read.order_id == variables["id"] and read.balance_owed is not None:
                self.platform.pay_balance(shop, return_id, amount, idempotency_key=uuid.uuid4().hex)
                break
        else:
            raise PortError("platform_returns", "pay_balance", "the order is paid", retryable=False)
        self._transactions.setdefault((shop, variables["id"]), []).append(
            _transaction(f"gid://shopify/OrderTransaction/{100 + next(self._numbers)}", amount)
        )
        return {"orderCreateManualPayment": {"order": {"id": variables["id"]}, "userErrors": []}}

    def _ReturnflowRefundCreate(self, shop: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A refund on the order of its manual payments (``REFUND`` transactions whose
        parent is one): the balance of the order's return that was paid gives it back
        (Shopify refuses a refund above what is left of its parent)."""
        given = variables["input"]
        order_id = given["orderId"]
        recorded = self._transactions.setdefault((shop, order_id), [])
        left = {
            item["id"]: _money(item["amountSet"]["shopMoney"])
            for item in recorded
            if item["kind"] == "SALE"
        }
        for item in recorded:
            if item["kind"] == "REFUND":
                parent = item["parentTransaction"]["id"]
                left[parent] = left[parent] - _money(item["amountSet"]["shopMoney"])
        refunds = []
        for transaction in given.get("transactions") or []:
            parent = transaction.get("parentId")
            if transaction.get("kind") != "REFUND" or parent not in left:
                raise PortError("platform_returns", "refund_balance", f"no payment {parent!r}")
            amount = Money(transaction["amount"], left[parent].currency)
            if amount > left[parent] or transaction.get("orderId") != order_id:
                raise PortError(
                    "platform_returns", "refund_balance", f"{amount} above {left[parent]}"
                )
            left[parent] = left[parent] - amount
            refunds.append((parent, amount))
        if not refunds:
            raise PortError("platform_returns", "refund_balance", "no transaction to refund")
        total = Money.sum((amount for _, amount in refunds), refunds[0][1].currency)
        for return_id in list(self._extra):
            read = self.platform.get_return(shop, return_id)
            if read.order_id == order_id and read.balance_paid is not None:
                self.platform.refund_balance(
                    shop, return_id, total, idempotency_key=uuid.uuid4().hex
                )
                break
        else:
            raise PortError("platform_returns", "refund_balance", "nothing paid to give back")
        refund_id = f"gid://shopify/Refund/{100 + next(self._numbers)}"
        for parent, amount in refunds:
            number = 100 + next(self._numbers)
            recorded.append(
                _transaction(f"gid://shopify/OrderTransaction/{number}", amount, parent)
            )
        return {"refundCreate": {"refund": {"id": refund_id}, "userErrors": []}}

    def _ReturnflowReverseFulfillmentOrderDispose(
        self, shop: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        disposed = []
        for item in variables["dispositionInputs"]:
            return_id, line_id = self._from_reverse(shop, item["reverseFulfillmentOrderLineItemId"])
            disposition = Disposition(item["dispositionType"])
            if disposition is Disposition.RESTOCKED and item.get("locationId") != self._location:
                raise PortError(
                    "platform_returns",
                    "dispose",
                    "a location is required to restock",
                    retryable=False,
                )
            self.platform.dispose(
                shop,
                return_id,
                line_id,
                item["quantity"],
                disposition,
                idempotency_key=uuid.uuid4().hex,
            )
            disposed.append({"id": item["reverseFulfillmentOrderLineItemId"]})
        return {
            "reverseFulfillmentOrderDispose": {
                "reverseFulfillmentOrderLineItems": disposed,
                "userErrors": [],
            }
        }

    def _ReturnflowReturnableFulfillments(
        self, shop: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        order = self.commerce.get_order(shop, variables["orderId"])
        paid = unit_amounts(order)
        items = [
            {
                "quantity": line.quantity,
                "fulfillmentLineItem": {
                    "id": line.id,
                    "lineItem": {"discountedUnitPriceAfterAllDiscountsSet": _bag(paid[line.id][0])},
                },
            }
            for line in order.lines
        ]
        return {
            "returnableFulfillments": {
                "nodes": [{"returnableFulfillmentLineItems": {"nodes": items}}]
            }
        }

    def _duties(
        self,
        shop: str,
        current: PlatformReturn,
        lines: list[Quantity],
        asked: list[dict[str, Any]],
    ) -> list[DutyRefund]:
        """What Shopify gives back of each duty asked for: ``FULL``, all of what is left of
        it; ``PROPORTIONAL``, the shares of its line's units processed now (the duty split
        evenly over the line's units, the first ones taking the odd cents)."""
        order = self.commerce.get_order(shop, current.order_id)
        line_of = {duty.id: (line, duty) for line in order.lines for duty in line.duties}
        by_order_line = {return_line: order_line for order_line, return_line in current.line_ids}
        done = dict(current.processed)
        refunds = []
        for item in asked:
            if item["dutyId"] not in line_of:
                raise PortError(
                    "platform_returns", "process", f"no duty {item['dutyId']}", retryable=False
                )
            line, duty = line_of[item["dutyId"]]
            before = self.platform.given_back(shop, order.id, duty.id)
            if item.get("refundType") == "FULL":
                amount = duty.amount - (before or Money.zero(order.currency))
            else:
                start = sum(
                    units for line_id, units in done.items() if by_order_line[line_id] == line.id
                )
                now = sum(q.quantity for q in lines if by_order_line.get(q.line_id) == line.id)
                shares = duty.amount.split(line.quantity)[start : start + now]
                amount = Money.sum(shares, order.currency)
            refunds.append(DutyRefund(duty.id, amount))
        return refunds

    # -- shapes ------------------------------------------------------------------------------

    def _read(self, shop: str, return_id: str) -> dict[str, Any] | None:
        try:
            return self._node(shop, self.platform.get_return(shop, return_id))
        except PortError:
            return None  # Shopify answers null for an id it does not have (or not for this shop)

    def _from_reverse(self, shop: str, reverse_id: str) -> tuple[str, str]:
        line_id = reverse_id.replace("ReverseFulfillmentOrderLineItem", "ReturnLineItem")
        for return_id, extra in self._extra.items():
            if line_id in extra.quantities:
                return return_id, line_id
        raise PortError("platform_returns", "dispose", f"no line {reverse_id}", retryable=False)

    def _node(self, shop: str, read: PlatformReturn) -> dict[str, Any]:
        extra = self._extra.get(read.return_id, _Extra())
        processed, removed = dict(read.processed), dict(read.removed)
        exchange_done = dict(read.exchange_processed)
        exchange_gone = dict(read.exchange_removed)
        lines = []
        for order_line, line_id in read.line_ids:
            quantity = extra.quantities.get(line_id, 0)
            done, gone = processed.get(line_id, 0), removed.get(line_id, 0)
            lines.append(
                {
                    "id": line_id,
                    "quantity": quantity if self.removed_in_quantity else quantity - gone,
                    "processedQuantity": done,
                    "unprocessedQuantity": quantity - done - gone,
                    "fulfillmentLineItem": {"id": order_line},
                }
            )
        exchange = []
        for _, exchange_id in read.exchange_line_ids:
            variant, quantity = extra.variants.get(exchange_id, ("", 0))
            done, gone = exchange_done.get(exchange_id, 0), exchange_gone.get(exchange_id, 0)
            exchange.append(
                {
                    "id": exchange_id,
                    "quantity": quantity,
                    "variantId": variant,
                    "processedQuantity": done,
                    "unprocessedQuantity": quantity - done - gone,
                }
            )
        if self.exchange_order == "reversed":
            exchange.reverse()
        currency = extra.currency
        order = self.commerce.get_order(shop, read.order_id)
        paid = Money.sum(
            (amount for amounts in unit_amounts(order).values() for amount in amounts), currency
        )
        sale = {
            "id": TRANSACTION,
            "kind": "SALE",
            "status": "SUCCESS",
            "gateway": "shopify_payments",
            "manualPaymentGateway": False,
            "amountSet": _bag(paid),
            "parentTransaction": None,
        }
        recorded = self._transactions.get((shop, read.order_id), [])
        return_refunds = self._refunds(extra, read, currency)
        return {
            "id": read.return_id,
            "status": read.status.value,
            "order": {
                "id": read.order_id,
                "totalOutstandingSet": _bag(read.balance_owed or Money.zero(currency)),
                "transactions": [sale, *(dict(item) for item in recorded)],
            },
            "returnLineItems": {"nodes": lines},
            "exchangeLineItems": {"nodes": exchange},
            "refunds": {"nodes": [refund.node() for refund in return_refunds]},
        }

    def _refunds(self, extra: _Extra, read: PlatformReturn, currency: str) -> list[_Refund]:
        """The return's refunds: those its processings through the API made, and one for
        what the platform refunded for the lines beyond them (processed in the admin)."""
        if read.refunded is not None and read.return_id in self._extra:
            made = Money.sum((refund.for_lines() for refund in extra.refunds), currency)
            if read.refunded > made:
                number = 100 + next(self._numbers)
                extra.refunds.append(
                    _Refund(f"gid://shopify/Refund/{number}", read.refunded - made)
                )
        return list(extra.refunds)


_FIELDS = {
    "ReturnflowReturnCreate": "returnCreate",
    "ReturnflowReturnRequest": "returnRequest",
    "ReturnflowReturnApproveRequest": "returnApproveRequest",
    "ReturnflowReturnDeclineRequest": "returnDeclineRequest",
    "ReturnflowReturnClose": "returnClose",
    "ReturnflowReturnReopen": "returnReopen",
    "ReturnflowReturnCancel": "returnCancel",
    "ReturnflowRemoveFromReturn": "removeFromReturn",
    "ReturnflowReturnProcess": "returnProcess",
    "ReturnflowReverseFulfillmentOrderDispose": "reverseFulfillmentOrderDispose",
    "ReturnflowReturnableFulfillments": "returnableFulfillments",
    "ReturnflowReturnCalculate": "returnCalculate",
    "ReturnflowOrderCreateManualPayment": "orderCreateManualPayment",
    "ReturnflowRefundCreate": "refundCreate",
}


_JSON = {"Content-Type": "application/json"}


def _transaction(transaction_id: str, amount: Money, parent: str | None = None) -> dict[str, Any]:
    """A manual payment on an order (``parent`` ``None``) or a refund of one."""
    return {
        "id": transaction_id,
        "kind": "SALE" if parent is None else "REFUND",
        "status": "SUCCESS",
        "gateway": "manual",
        "manualPaymentGateway": True,
        "amountSet": _bag(amount),
        "parentTransaction": None if parent is None else {"id": parent},
    }


def _user_error(operation: str, error: PortError) -> dict[str, Any]:
    message = str(error).split(": ", 1)[-1]
    return {"field": ["input"], "message": message, "code": "INVALID"}


def _reverse_id(line_id: str) -> str:
    return line_id.replace("ReturnLineItem", "ReverseFulfillmentOrderLineItem")


def _bag(amount: Money) -> dict[str, Any]:
    shown = {"amount": str(amount.amount), "currencyCode": amount.currency}
    return {"shopMoney": shown, "presentmentMoney": dict(shown)}


def _money(given: dict[str, Any]) -> Money:
    return Money(given["amount"], given["currencyCode"])
