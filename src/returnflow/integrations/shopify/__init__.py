"""Shopify's native returns behind :class:`~returnflow.ports.platform_returns.PlatformReturns`.

A reference adapter over the GraphQL Admin API (version
:data:`~returnflow.integrations.shopify.documents.API_VERSION`), through an ``httpx.Client``
the host gives (its timeouts, proxies, transport). Install the ``shopify`` extra
(``pip install 'returnflow[shopify]'``: httpx); httpx is imported when the adapter is made.

Ids: returnflow's order ids are Shopify ``Order`` gids and its order line ids are the
``FulfillmentLineItem`` gids that shipped the units (Shopify returns units by fulfillment
line); the return, return line, exchange line and refund ids answered are Shopify's gids.
The units a return line names (``PlatformReturnLine.units``) are all of that fulfillment
line item: Shopify takes their count (``ReturnLineItemInput.quantity``) and values them
itself, so a count named other than the line's quantity is refused.

Calls and mutations, one to one:

==========================  ===================================================================
``open_return``             ``returnCreate`` (``ReturnInput``), or ``returnRequest``
                            (``ReturnRequestInput``) when ``requested``; a restocking fee is
                            sent as Shopify's percentage of the line, so the line's price is
                            read first (``returnableFulfillments``)
``approve`` / ``decline``   ``returnApproveRequest`` / ``returnDeclineRequest``
``process``                 ``returnProcess`` (``ReturnProcessInput``): the refund (the lines,
                            the shipping and the duties given back) goes to the order's first
                            successful ``SALE`` or ``CAPTURE`` transaction; duties by id
                            (``RefundDutyInput``, ``PROPORTIONAL``)
``dispose``                 ``reverseFulfillmentOrderDispose`` on the reverse fulfillment order
                            line of the return line (``RESTOCKED`` units to the line's
                            destination, else to ``restock_location_id``)
``pay_balance``             ``orderCreateManualPayment`` on the return's order (the balance an
                            upsell leaves, collected by the host's processor; Shopify holds
                            the exchange's fulfillment while the order's
                            ``totalOutstandingSet`` is above zero)
``refund_balance``          ``refundCreate`` on the order: ``REFUND`` transactions of those
                            manual payments (``balance_paid``: what is left of them)
``remove_lines``            ``removeFromReturn``
``close`` / ``reopen`` /    ``returnClose`` / ``returnReopen`` / ``returnCancel``
``cancel``
``get_return``              ``return(id:)``
``calculate``               ``returnCalculate`` for the return's lines, fees and exchange items
``lines_now``               ``return(id:)``: the lines of a ``returns/update`` webhook's fact
==========================  ===================================================================

Errors: a ``userErrors`` entry is ``PortError(retryable=False)`` naming its ``field`` path and
``message``; a transport failure, an HTTP 5xx or an answer that is not JSON is retryable;
throttling (HTTP 429, or a ``THROTTLED`` error with ``extensions.cost.throttleStatus``) is
retryable and carries ``retry_after`` in seconds (the ``Retry-After`` header, or the time the
bucket needs to refill for the query's requested cost at its restore rate); any other HTTP
4xx (a bad token, a missing scope) and a GraphQL error are not retryable.

Idempotency: the 2025-07 returns mutations take no idempotency key, so the adapter keeps a
ledger of ``key -> (operation and arguments, result)``: a key repeated with the same arguments
answers the first result without a request, with other arguments it is refused
(``PortError(retryable=False)``). Only successes are recorded: a failed call is sent again.
The ledger is an in-memory dict unless the host gives a durable mapping (``ledger=``, e.g. a
``shelve``): with the in-memory one, a process that restarts between a mutation and its retry
sends the mutation again, and Shopify refuses what it cannot do twice (units already in a
return, processed or disposed) with a ``userError``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from returnflow.domain.inbound import Disposition, PlatformLine
from returnflow.domain.money import Money
from returnflow.errors import ConfigurationError, PortError
from returnflow.integrations.shopify import documents as gql
from returnflow.integrations.shopify._answers import (
    answer_id,
    bad_answer,
    calculate_variables,
    exchange_ids,
    lines_on,
    money_input,
    nodes_of,
    outcome,
    outstanding,
    parse_money,
    process_input,
    read_answer,
    reading,
    refundable_transactions,
    remove_variables,
    request_body,
    return_line_items,
    reverse_line,
    user_errors,
)
from returnflow.integrations.shopify._balance import BalanceCalls
from returnflow.integrations.shopify._view import parse_return
from returnflow.ports.platform_returns import (
    DutyRefund,
    FinancialOutcome,
    PlatformExchangeLine,
    PlatformReturn,
    PlatformReturnLine,
    ProcessResult,
    Quantity,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["ShopifyPlatformReturns", "ShopifyShop"]

PORT = "platform_returns"
T = TypeVar("T")

# ReturnDeclineReason: returnflow's free-text reason goes to declineNote; these are the enum.
DECLINE_REASONS = frozenset({"RETURN_PERIOD_ENDED", "FINAL_SALE", "OTHER"})


_BY_ID = {
    "close": (gql.CLOSE, "returnClose"),
    "reopen": (gql.REOPEN, "returnReopen"),
    "cancel": (gql.CANCEL, "returnCancel"),
}
"""The status mutations that take the return's id alone: operation → (document, field)."""


@attrs.frozen
class ShopifyShop:
    """A shop's Admin API address (``example.myshopify.com``) and access token."""

    domain: str
    access_token: str = attrs.field(repr=False)


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as error:  # pragma: no cover - the dev extra installs it
        raise ConfigurationError(
            "the Shopify adapter needs httpx: pip install 'returnflow[shopify]'",
            field="httpx",
            value=None,
        ) from error
    return httpx


class ShopifyPlatformReturns(BalanceCalls):
    """Platform returns on Shopify (see the module docstring).

    ``shops`` maps returnflow's shop names to their :class:`ShopifyShop`; a call for a shop
    not in it is refused (``PortError(retryable=False)``). ``client`` is the host's
    ``httpx.Client`` (one is made with ``timeout`` seconds when omitted; the adapter closes
    only a client it made). ``ledger`` holds the idempotency keys answered.
    """

    def __init__(
        self,
        shops: Mapping[str, ShopifyShop],
        *,
        client: httpx.Client | None = None,
        api_version: str = gql.API_VERSION,
        restock_location_id: str | None = None,
        ledger: MutableMapping[str, tuple[str, object]] | None = None,
        timeout: float = 10.0,
    ) -> None:
        httpx_module = _httpx()
        for name, shop in shops.items():
            if not isinstance(shop, ShopifyShop) or not shop.domain or not shop.access_token:
                raise ConfigurationError(
                    "a ShopifyShop with a domain and an access token", field=f"shops[{name!r}]"
                )
        self._shops = dict(shops)
        self._own_client = client is None
        self._client: httpx.Client = client or httpx_module.Client(timeout=timeout)
        self._httpx = httpx_module
        self._version = api_version
        self._location = restock_location_id
        self._ledger: MutableMapping[str, tuple[str, object]] = {} if ledger is None else ledger
        self._lock = threading.Lock()
        self._exchange_ids: dict[str, tuple[tuple[str, str], ...]] = {}

    def shutdown(self) -> None:
        """Close the HTTP client if the adapter made it (``close`` is the port's call)."""
        if self._own_client:
            self._client.close()

    # -- the port ----------------------------------------------------------------------------

    def open_return(
        self,
        shop: str,
        order_id: str,
        lines: Sequence[PlatformReturnLine],
        *,
        exchange_lines: Sequence[PlatformExchangeLine] = (),
        return_shipping_fee: Money | None = None,
        requested: bool = False,
        idempotency_key: str,
    ) -> PlatformReturn:
        args = (shop, order_id, tuple(lines), tuple(exchange_lines), return_shipping_fee, requested)

        def call() -> PlatformReturn:
            variables = self.open_variables(
                shop, order_id, lines, exchange_lines, return_shipping_fee, requested
            )
            if requested:
                node = self._mutate(shop, "open_return", gql.REQUEST, variables, "returnRequest")
            else:
                node = self._mutate(shop, "open_return", gql.CREATE, variables, "returnCreate")
            opened = parse_return(node, "open_return")
            mapping = exchange_ids(
                nodes_of(node.get("exchangeLineItems")),
                [(x.exchange_line_id, x.variant_id, x.quantity) for x in exchange_lines],
            )
            self._exchange_ids[opened.return_id] = mapping
            return attrs.evolve(opened, exchange_line_ids=mapping)

        return self._keyed("open_return", args, idempotency_key, call)

    def open_variables(
        self,
        shop: str,
        order_id: str,
        lines: Sequence[PlatformReturnLine],
        exchange_lines: Sequence[PlatformExchangeLine],
        return_shipping_fee: Money | None,
        requested: bool,
    ) -> dict[str, Any]:
        """The variables of ``returnCreate`` (``{"returnInput": ReturnInput}``) or, when
        ``requested``, of ``returnRequest`` (``{"input": ReturnRequestInput}``)."""
        prices = self._unit_prices(shop, order_id) if any(x.restocking_fee for x in lines) else {}
        items = return_line_items(lines, prices)
        shipping = (
            None if return_shipping_fee is None else {"amount": money_input(return_shipping_fee)}
        )
        if requested:
            if exchange_lines:
                raise PortError(
                    PORT,
                    "open_return",
                    "exchange_lines: a requested return (returnRequest) takes no exchange line "
                    "items in Shopify; open it approved or add them after approval",
                    retryable=False,
                )
            request: dict[str, Any] = {"orderId": order_id, "returnLineItems": items}
            if shipping is not None:
                request["returnShippingFee"] = shipping
            return {"input": request}
        create: dict[str, Any] = {
            "orderId": order_id,
            "returnLineItems": items,
            "exchangeLineItems": [
                {"variantId": x.variant_id, "quantity": x.quantity} for x in exchange_lines
            ],
        }
        if shipping is not None:
            create["returnShippingFee"] = shipping
        return {"returnInput": create}

    def get_return(self, shop: str, return_id: str) -> PlatformReturn:
        data = self._request(shop, "get_return", gql.READ, {"id": return_id})
        node = data.get("return")
        if node is None:
            raise PortError(PORT, "get_return", f"no return {return_id!r}", retryable=False)
        with reading("get_return"):
            return self._with_exchange_ids(parse_return(node, "get_return"))

    def lines_now(self, shop: str, return_id: str) -> tuple[PlatformLine, ...]:
        """Every order line's units on the return now, read from Shopify: the ``lines`` of
        the :class:`~returnflow.domain.inbound.PlatformReturnEvent` a host hands on for a
        ``returns/update`` webhook (read rather than taken from the webhook's body)."""
        data = self._request(shop, "lines_now", gql.READ, {"id": return_id})
        node = data.get("return")
        if node is None:
            raise PortError(PORT, "lines_now", f"no return {return_id!r}", retryable=False)
        with reading("lines_now"):
            return lines_on(node)

    def approve(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        return self._status(
            shop,
            "approve",
            gql.APPROVE,
            {"input": {"id": return_id}},
            "returnApproveRequest",
            idempotency_key,
            return_id,
        )

    def decline(
        self, shop: str, return_id: str, *, reason: str, idempotency_key: str
    ) -> PlatformReturn:
        declined: dict[str, Any] = {"id": return_id}
        if reason in DECLINE_REASONS:
            declined["declineReason"] = reason
        else:
            declined["declineReason"] = "OTHER"
            declined["declineNote"] = reason
        return self._status(
            shop,
            "decline",
            gql.DECLINE,
            {"input": declined},
            "returnDeclineRequest",
            idempotency_key,
            return_id,
            reason,
        )

    def close(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        return self._by_id(shop, "close", return_id, idempotency_key)

    def reopen(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        return self._by_id(shop, "reopen", return_id, idempotency_key)

    def cancel(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        return self._by_id(shop, "cancel", return_id, idempotency_key)

    def process(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity],
        *,
        exchange_lines: Sequence[Quantity] = (),
        refund: Money,
        refund_shipping: Money | None = None,
        refund_duties: Sequence[DutyRefund] = (),
        idempotency_key: str,
    ) -> ProcessResult:
        args = (
            shop,
            return_id,
            tuple(lines),
            tuple(exchange_lines),
            refund,
            refund_shipping,
            tuple(refund_duties),
        )

        def call() -> ProcessResult:
            before = self._request(shop, "process", gql.READ_FOR_PROCESS, {"id": return_id})
            node = before.get("return")
            if node is None:
                raise PortError(PORT, "process", f"no return {return_id!r}", retryable=False)
            refunded_before = {answer_id(item["id"]) for item in nodes_of(node.get("refunds"))}
            variables = self.process_variables(
                return_id,
                lines,
                exchange_lines,
                refund,
                refund_shipping,
                refund_duties,
                refundable_transactions(node),
            )
            after = self._mutate(shop, "process", gql.PROCESS, variables, "returnProcess")
            new = [
                item
                for item in nodes_of(after.get("refunds"))
                if answer_id(item["id"]) not in refunded_before
            ]
            currency = refund.currency
            total = Money.sum(
                (parse_money(item["totalRefundedSet"], "process") for item in new), currency
            )
            held = bool(exchange_lines) and outstanding(after, "process") is not None
            return ProcessResult(tuple(item["id"] for item in new), total, (), held)

        return self._keyed("process", args, idempotency_key, call)

    def process_variables(
        self,
        return_id: str,
        lines: Sequence[Quantity],
        exchange_lines: Sequence[Quantity],
        refund: Money,
        refund_shipping: Money | None,
        refund_duties: Sequence[DutyRefund],
        transactions: Sequence[str],
    ) -> dict[str, Any]:
        """The variables of ``returnProcess``: ``{"input": ReturnProcessInput}``: the whole
        refund (the lines, the shipping and the duties given back) to the first of
        ``transactions`` (the order's successful ``SALE``/``CAPTURE`` ids), the shipping as
        ``refundShipping``, the duties by id (``RefundDutyInput``, ``PROPORTIONAL``)."""
        return process_input(
            return_id, lines, exchange_lines, refund, refund_shipping, refund_duties, transactions
        )

    def dispose(
        self,
        shop: str,
        return_id: str,
        line_id: str,
        quantity: int,
        disposition: Disposition,
        *,
        idempotency_key: str,
        location_id: str | None = None,
    ) -> None:
        args = (shop, return_id, line_id, quantity, disposition, location_id)

        def call() -> None:
            data = self._request(shop, "dispose", gql.READ_FOR_PROCESS, {"id": return_id})
            node = data.get("return")
            if node is None:
                raise PortError(PORT, "dispose", f"no return {return_id!r}", retryable=False)
            reverse = reverse_line(node, line_id)
            variables = self.dispose_variables(reverse, quantity, disposition, location_id)
            self._mutate(shop, "dispose", gql.DISPOSE, variables, "reverseFulfillmentOrderDispose")

        self._keyed("dispose", args, idempotency_key, call)

    def dispose_variables(
        self,
        reverse_line_id: str,
        quantity: int,
        disposition: Disposition,
        location_id: str | None = None,
    ) -> dict[str, Any]:
        """The variables of ``reverseFulfillmentOrderDispose``:
        ``{"dispositionInputs": [ReverseFulfillmentOrderDisposeInput]}``; restocked units
        go to ``location_id`` (the line's destination, a Shopify location id), else to
        ``restock_location_id``."""
        item: dict[str, Any] = {
            "reverseFulfillmentOrderLineItemId": reverse_line_id,
            "quantity": quantity,
            "dispositionType": Disposition(disposition).value,
        }
        if disposition is Disposition.RESTOCKED:
            if location_id is not None:
                item["locationId"] = location_id
            elif self._location is None:
                raise ConfigurationError(
                    "RESTOCKED needs a location: ShopifyPlatformReturns(restock_location_id=...)",
                    field="restock_location_id",
                    value=None,
                )
            else:
                item["locationId"] = self._location
        return {"dispositionInputs": [item]}

    def remove_lines(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity],
        *,
        exchange_lines: Sequence[Quantity] = (),
        idempotency_key: str,
    ) -> PlatformReturn:
        return self._status(
            shop,
            "remove_lines",
            gql.REMOVE,
            remove_variables(return_id, lines, exchange_lines),
            "removeFromReturn",
            idempotency_key,
            return_id,
            tuple(lines),
            *((tuple(exchange_lines),) if exchange_lines else ()),
        )

    def calculate(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity] | None = None,
        *,
        exchange_lines: Sequence[Quantity] = (),
        shipping_fee: bool | Money = True,
    ) -> FinancialOutcome:
        with reading("calculate"):
            return self._calculate(shop, return_id, lines, exchange_lines, shipping_fee)

    def _calculate(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity] | None,
        exchange_lines: Sequence[Quantity],
        shipping_fee: bool | Money,
    ) -> FinancialOutcome:
        data = self._request(shop, "calculate", gql.READ_FOR_CALCULATE, {"id": return_id})
        node = data.get("return")
        if node is None:
            raise PortError(PORT, "calculate", f"no return {return_id!r}", retryable=False)
        if lines is None:
            whole_fee = shipping_fee if isinstance(shipping_fee, Money) else True
            variables = calculate_variables(node, shipping_fee=whole_fee)
        else:
            variables = calculate_variables(
                node,
                units={q.line_id: q.quantity for q in lines},
                items={q.line_id: q.quantity for q in exchange_lines},
                shipping_fee=shipping_fee,
            )
        answer = self._request(shop, "calculate", gql.CALCULATE, variables)
        calculated = answer.get("returnCalculate")
        if not isinstance(calculated, dict):
            raise bad_answer("calculate", "returnCalculate", calculated)
        return outcome(calculated, "calculate")

    # -- machinery ---------------------------------------------------------------------------

    def _unit_prices(self, shop: str, order_id: str) -> dict[str, Money]:
        """What a unit of each returnable fulfillment line was paid, by its id."""
        data = self._request(shop, "open_return", gql.RETURNABLE, {"orderId": order_id})
        prices: dict[str, Money] = {}
        for fulfillment in nodes_of(data.get("returnableFulfillments")):
            for item in nodes_of(fulfillment.get("returnableFulfillmentLineItems")):
                line = item.get("fulfillmentLineItem") or {}
                paid = (line.get("lineItem") or {}).get("discountedUnitPriceAfterAllDiscountsSet")
                prices[str(line.get("id"))] = parse_money(paid, "open_return")
        return prices

    def _status(
        self,
        shop: str,
        operation: str,
        document: str,
        variables: dict[str, Any],
        field: str,
        key: str,
        *args: object,
    ) -> PlatformReturn:
        def call() -> PlatformReturn:
            node = self._mutate(shop, operation, document, variables, field)
            return self._with_exchange_ids(parse_return(node, operation))

        return self._keyed(operation, (shop, *args), key, call)

    def _by_id(self, shop: str, operation: str, return_id: str, key: str) -> PlatformReturn:
        """A status mutation whose only argument is the return's id."""
        document, field = _BY_ID[operation]
        return self._status(shop, operation, document, {"id": return_id}, field, key, return_id)

    def _with_exchange_ids(self, read: PlatformReturn) -> PlatformReturn:
        known = self._exchange_ids.get(read.return_id)
        if known is None:
            return read
        return attrs.evolve(read, exchange_line_ids=known)

    def _keyed(
        self, operation: str, args: tuple[object, ...], key: str, call: Callable[[], T]
    ) -> T:
        fingerprint = hashlib.sha256(repr((operation, args)).encode()).hexdigest()
        with self._lock:
            seen = self._ledger.get(key)
        if seen is not None:
            if seen[0] != fingerprint:
                raise PortError(
                    PORT,
                    operation,
                    f"idempotency key {key!r} was used with other arguments",
                    retryable=False,
                )
            return seen[1]  # type: ignore[return-value]
        with reading(operation):
            result = call()
        with self._lock:
            self._ledger[key] = (fingerprint, result)
        return result

    def _mutate(
        self, shop: str, operation: str, document: str, variables: dict[str, Any], field: str
    ) -> dict[str, Any]:
        data = self._request(shop, operation, document, variables)
        payload = data.get(field)
        if not isinstance(payload, dict):
            raise bad_answer(operation, field, payload)
        errors = payload.get("userErrors") or []
        if errors:
            raise PortError(PORT, operation, user_errors(errors), retryable=False)
        node = payload.get("return", payload)
        if not isinstance(node, dict):
            raise bad_answer(operation, f"{field}.return", node)
        return node

    def _request(
        self, shop: str, operation: str, document: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        target = self._shops.get(shop)
        if target is None:
            raise PortError(
                PORT, operation, f"no Shopify shop configured as {shop!r}", retryable=False
            )
        url = f"https://{target.domain}/admin/api/{self._version}/graphql.json"
        headers = {
            "X-Shopify-Access-Token": target.access_token,
            "Content-Type": "application/json",
        }
        try:
            body = request_body({"query": document, "variables": variables})
            answer = self._client.post(url, headers=headers, content=body)
        except self._httpx.HTTPError as error:
            raise PortError(PORT, operation, f"transport: {error!r}") from error
        return read_answer(answer, operation)
