"""The Shopify adapter against what Shopify documents, where its answers were guessed before:
every field the GraphQL documents select on the types the adapter reads is one Shopify
documents (``tests/data/shopify/output_fields_2025-07.json``), a return's exchange line items
are matched by variant whatever order they come back in, and the platform's money after a
removal counts only the units still on the return whichever way ``quantity`` counts them."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from returnflow import PlatformReturnEvent, RequestLine, ReturnPolicy, ReturnRequest
from returnflow.domain.money import Money
from returnflow.errors import PortError
from returnflow.integrations.shopify import ShopifyPlatformReturns, ShopifyShop
from returnflow.integrations.shopify import documents as gql
from returnflow.ports.platform_returns import PlatformExchangeLine, PlatformReturnLine, Quantity
from returnflow.testing import FakeCommercePlatform, Harness, make_order
from returnflow.testing.shopify import ShopifyAdminMock

DATA = Path(__file__).parent / "data" / "shopify"
SCHEMA = json.loads((DATA / "output_fields_2025-07.json").read_text())["types"]
ORDER = "gid://shopify/Order/1"
SHOPS = {"shop-a": ShopifyShop("a.myshopify.com", "token-a")}
_TOKEN = re.compile(r"\.\.\.|[{}():]|\$?[A-Za-z_][A-Za-z0-9_]*|\"[^\"]*\"|[^\s,]")


def unknown_fields(document: str, schema: dict[str, dict[str, str | None]]) -> list[str]:
    """``Type.field`` of every selection of ``document`` on a type of ``schema`` that the type
    does not have (queries start on ``Query``; fragments on their type; mutations, whose
    payloads are not in the schema, are not checked)."""
    tokens = _TOKEN.findall(document)
    found: list[str] = []

    def skip_arguments(i: int) -> int:
        depth = 0
        while True:
            depth += {"(": 1, ")": -1}.get(tokens[i], 0)
            i += 1
            if depth == 0:
                return i

    def block(i: int, type_name: str | None) -> int:
        assert tokens[i] == "{", tokens[i:]
        i += 1
        while tokens[i] != "}":
            if tokens[i] == "...":
                if tokens[i + 1] == "on":
                    i = block(i + 3, tokens[i + 2])
                else:
                    i += 2  # a fragment spread: its definition is checked on its own
                continue
            name = tokens[i]
            i += 1
            if tokens[i] == ":":  # an alias
                name, i = tokens[i + 1], i + 2
            if tokens[i] == "(":
                i = skip_arguments(i)
            fields = schema.get(type_name or "")
            child = None
            if fields is not None:
                if name in fields:
                    child = fields[name]
                else:
                    found.append(f"{type_name}.{name}")
            if tokens[i] == "{":
                i = block(i, child)
        return i + 1

    i = 0
    while i < len(tokens):
        if tokens[i] == "fragment":
            i = block(i + 4, tokens[i + 3])  # fragment Name on Type {
        elif tokens[i] in ("query", "mutation"):
            root = "Query" if tokens[i] == "query" else None
            i += 2
            if tokens[i] == "(":
                i = skip_arguments(i)
            i = block(i, root)
        else:
            i += 1
    return found


def test_the_checker_finds_a_field_a_type_does_not_have() -> None:
    document = """
    query Q($id: ID!) {
      returnCalculate(input: $input) {
        exchangeLineItems { variantId variant { id } subtotalSet { shopMoney { amount cost } } }
        returnLineItems { ... on Nothing { anything } quantity wrong: nope }
      }
      return(id: $id) { ...F }
    }
    fragment F on Return { status returnLineItems(first: 5) { nodes { quantity oops } } }
    mutation M { returnCreate(x: 1) { whatever } }
    """
    assert unknown_fields(document, SCHEMA) == [
        "CalculatedExchangeLineItem.variantId",
        "MoneyV2.cost",
        "CalculatedReturnLineItem.nope",
        "ReturnLineItemType.oops",
    ]


@pytest.mark.parametrize("name", sorted(n for n in gql.__all__ if n != "API_VERSION"))
def test_every_document_selects_only_fields_shopify_documents(name: str) -> None:
    assert unknown_fields(getattr(gql, name), SCHEMA) == []


def _adapter(mock: ShopifyAdminMock) -> ShopifyPlatformReturns:
    return ShopifyPlatformReturns(
        SHOPS,
        client=httpx.Client(transport=mock.transport()),
        restock_location_id="gid://shopify/Location/1",
    )


def _mock(**how: object) -> ShopifyAdminMock:
    commerce = FakeCommercePlatform()
    commerce.add_order(make_order("shop-a", ORDER))
    prices = {"V-9": Decimal("10.00"), "V-7": Decimal("4.00")}
    return ShopifyAdminMock(
        commerce,
        {"a.myshopify.com": ("shop-a", "token-a")},
        variant_prices=prices,
        **how,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("order", ["given", "reversed"])
def test_exchange_line_items_are_matched_by_variant_whatever_their_order(order: str) -> None:
    mock = _mock(exchange_order=order)
    adapter = _adapter(mock)
    eur = mock.commerce.get_order("shop-a", ORDER).currency
    opened = adapter.open_return(
        "shop-a",
        ORDER,
        [PlatformReturnLine("L1", 2)],
        exchange_lines=[
            PlatformExchangeLine("X-blue", "V-9", 1, Money("10.00", eur)),
            PlatformExchangeLine("X-red", "V-7", 2, Money("4.00", eur)),
        ],
        idempotency_key="open",
    )
    there = mock.platform.get_return("shop-a", opened.return_id)  # X0, X1: as given
    fake_ids = dict(there.exchange_line_ids)
    assert dict(opened.exchange_line_ids) == {"X-blue": fake_ids["X0"], "X-red": fake_ids["X1"]}
    # processing the red items confirms the red items on the platform
    adapter.process(
        "shop-a",
        opened.return_id,
        [Quantity(opened.line_id("L1"), 2)],
        exchange_lines=[Quantity(dict(opened.exchange_line_ids)["X-red"], 2)],
        refund=Money("0.00", eur),
        idempotency_key="process",
    )
    done = dict(mock.platform.get_return("shop-a", opened.return_id).exchange_processed)
    assert (done[fake_ids["X0"]], done[fake_ids["X1"]]) == (0, 2)


def test_an_answer_without_an_item_per_exchange_line_is_refused() -> None:
    answer = json.loads((DATA / "return_create.json").read_text())
    answer["data"]["returnCreate"]["return"]["exchangeLineItems"]["nodes"] = []
    adapter = ShopifyPlatformReturns(
        SHOPS,
        client=httpx.Client(
            transport=httpx.MockTransport(lambda _: httpx.Response(200, json=answer))
        ),
    )
    with pytest.raises(PortError, match="exchange line items") as refused:
        adapter.open_return(
            "shop-a",
            ORDER,
            [PlatformReturnLine("gid://shopify/FulfillmentLineItem/4", 1)],
            exchange_lines=[
                PlatformExchangeLine("X1", "gid://shopify/ProductVariant/1", 1, Money("1", "USD"))
            ],
            idempotency_key="open",
        )
    assert not refused.value.retryable


@pytest.mark.parametrize("removed_in_quantity", [True, False])
def test_the_platforms_money_after_a_removal_counts_the_units_left(
    removed_in_quantity: bool,
) -> None:
    mock = _mock(removed_in_quantity=removed_in_quantity)
    adapter = _adapter(mock)
    opened = adapter.open_return(
        "shop-a", ORDER, [PlatformReturnLine("L1", 2)], idempotency_key="open"
    )
    adapter.remove_lines(
        "shop-a", opened.return_id, [Quantity(opened.line_id("L1"), 1)], idempotency_key="rm"
    )
    outcome = adapter.calculate("shop-a", opened.return_id)
    asked = [r for r in mock.requests if r.operation == "ReturnflowReturnCalculate"][-1]
    assert asked.variables["input"]["returnLineItems"] == [
        {"fulfillmentLineItemId": "L1", "quantity": 1}
    ]
    assert outcome.returned == mock.platform.calculate("shop-a", opened.return_id).returned


def test_a_line_removed_whole_is_not_calculated() -> None:
    mock = _mock()
    adapter = _adapter(mock)
    opened = adapter.open_return(
        "shop-a",
        ORDER,
        [PlatformReturnLine("L1", 1), PlatformReturnLine("L2", 1)],
        idempotency_key="open",
    )
    adapter.remove_lines(
        "shop-a", opened.return_id, [Quantity(opened.line_id("L2"), 1)], idempotency_key="rm"
    )
    adapter.calculate("shop-a", opened.return_id)
    asked = [r for r in mock.requests if r.operation == "ReturnflowReturnCalculate"][-1]
    assert [x["fulfillmentLineItemId"] for x in asked.variables["input"]["returnLineItems"]] == [
        "L1"
    ]


def test_the_mock_refuses_an_order_of_exchange_lines_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="exchange_order"):
        _mock(exchange_order="shuffled")


@pytest.mark.parametrize("removed_in_quantity", [True, False])
def test_a_returns_update_webhook_becomes_a_fact_read_from_shopify(
    removed_in_quantity: bool,
) -> None:
    ports = Harness().ports
    ports.commerce.add_order(make_order("shop-a", ORDER))
    mock = ShopifyAdminMock(
        ports.commerce,
        {"a.myshopify.com": ("shop-a", "token-a")},
        removed_in_quantity=removed_in_quantity,
    )
    adapter = _adapter(mock)
    made = Harness(
        policy=ReturnPolicy(platform_mode="native"), ports=ports, platform_returns=adapter
    )
    opened = made.service.request(
        ReturnRequest(shop="shop-a", order_id=ORDER, lines=[RequestLine("L1", 2)])
    )
    there_id = made.service.get("shop-a", opened.id).refs.platform_return_id
    assert there_id is not None
    # a person takes a unit out in Shopify's admin
    line_id = mock.platform.get_return("shop-a", there_id).line_id("L1")
    mock.platform.remove_lines("shop-a", there_id, [Quantity(line_id, 1)], idempotency_key="admin")
    lines = adapter.lines_now("shop-a", there_id)
    assert [(line.order_line_id, line.quantity) for line in lines] == [("L1", 1)]
    result = made.service.handle(
        PlatformReturnEvent(
            shop="shop-a",
            return_id=opened.id,
            event_id="webhook-1",
            topic="returns/update",  # type: ignore[arg-type]
            platform_return_id=there_id,
            lines=lines,
        )
    )
    assert result.status == "applied"
    assert [line.quantity for line in made.service.get("shop-a", opened.id).lines] == [1]


def test_lines_now_of_a_return_shopify_does_not_have_is_a_refusal() -> None:
    adapter = _adapter(_mock())
    with pytest.raises(PortError, match="no return") as refused:
        adapter.lines_now("shop-a", "gid://shopify/Return/404")
    assert not refused.value.retryable


def test_lines_now_of_an_answer_it_cannot_read_is_a_refusal() -> None:
    node = {"id": "gid://shopify/Return/1", "returnLineItems": {"nodes": [{"quantity": 1}]}}
    answer = httpx.Response(200, json={"data": {"return": node}})
    adapter = ShopifyPlatformReturns(
        SHOPS, client=httpx.Client(transport=httpx.MockTransport(lambda _: answer))
    )
    with pytest.raises(PortError, match="unexpected answer") as refused:
        adapter.lines_now("shop-a", "gid://shopify/Return/1")
    assert not refused.value.retryable


def test_a_calls_share_of_the_return_shipping_fee_goes_to_return_calculate_as_an_amount() -> None:
    # The return shipping fee follows the units: a processing call's figure counts its
    # units' shares, asked for as the amount CalculateReturnInput.returnShippingFee takes;
    # the whole return counts what its settlements charged of it.
    mock = _mock()
    adapter = _adapter(mock)
    opened = adapter.open_return(
        "shop-a",
        ORDER,
        [PlatformReturnLine("L1", 2)],
        return_shipping_fee=Money("3.00", "EUR"),
        idempotency_key="open",
    )
    line = opened.line_id("L1")
    share = adapter.calculate(
        "shop-a", opened.return_id, [Quantity(line, 1)], shipping_fee=Money("1.50", "EUR")
    )
    whole = adapter.calculate("shop-a", opened.return_id, shipping_fee=Money("2.00", "EUR"))
    asked = [r for r in mock.requests if r.operation == "ReturnflowReturnCalculate"]
    fees = [request.variables["input"].get("returnShippingFee") for request in asked[-2:]]
    assert fees == [
        {"amount": {"amount": "1.50", "currencyCode": "EUR"}},
        {"amount": {"amount": "2.00", "currencyCode": "EUR"}},
    ]
    assert (share.fees, whole.fees) == (Money("1.50", "EUR"), Money("2.00", "EUR"))
    fake = mock.platform.calculate(
        "shop-a", opened.return_id, [Quantity(line, 1)], shipping_fee=Money("1.50", "EUR")
    )
    assert fake == share
    with pytest.raises(PortError, match=r"carries 3\.00 EUR"):
        mock.platform.calculate("shop-a", opened.return_id, shipping_fee=Money("3.01", "EUR"))


def test_a_share_of_the_return_shipping_fee_above_the_fee_the_return_carries_is_refused() -> None:
    # As the port says and the fake does: at most the fee the return carries; no request
    # goes to returnCalculate for more.
    mock = _mock()
    adapter = _adapter(mock)
    opened = adapter.open_return(
        "shop-a",
        ORDER,
        [PlatformReturnLine("L1", 2)],
        return_shipping_fee=Money("3.00", "EUR"),
        idempotency_key="open",
    )
    plain = adapter.open_return(
        "shop-a", ORDER, [PlatformReturnLine("L2", 1)], idempotency_key="plain"
    )
    line = opened.line_id("L1")
    for return_id, fee in ((opened.return_id, "3.01"), (plain.return_id, "0.01")):
        with pytest.raises(PortError) as refused:
            adapter.calculate(
                "shop-a", return_id, [Quantity(line, 1)], shipping_fee=Money(fee, "EUR")
            )
        assert (refused.value.operation, refused.value.retryable) == ("calculate", False)
        assert f"shipping_fee={fee} EUR" in str(refused.value)
    assert not any(r.operation == "ReturnflowReturnCalculate" for r in mock.requests)
    whole = adapter.calculate("shop-a", opened.return_id, shipping_fee=Money("3.00", "EUR"))
    assert whole.fees == Money("3.00", "EUR")


def test_the_return_shipping_fee_goes_back_in_the_orders_presentment_currency() -> None:
    # ReturnShippingFeeInput.amount is "a fixed amount in the presentment currency of the
    # order": the fee read from the return is sent back as its presentment amount, not as
    # the shop's amount in the presentment currency's place.
    read = json.loads((DATA / "return_for_calculate.json").read_text())
    read["data"]["return"]["returnShippingFees"] = [
        {
            "amountSet": {
                "shopMoney": {"amount": "5.0", "currencyCode": "USD"},
                "presentmentMoney": {"amount": "4.6", "currencyCode": "EUR"},
            }
        }
    ]
    answers = [json.dumps(read).encode(), (DATA / "return_calculate.json").read_bytes()]
    sent: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, content=answers[len(sent) - 1])

    adapter = ShopifyPlatformReturns(
        SHOPS, client=httpx.Client(transport=httpx.MockTransport(answer))
    )
    adapter.calculate("shop-a", "gid://shopify/Return/945000954")
    variables: Any = sent[1]["variables"]
    assert variables["input"]["returnShippingFee"] == {
        "amount": {"amount": "4.60", "currencyCode": "EUR"}
    }
