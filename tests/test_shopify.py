"""The Shopify adapter (returnflow.integrations.shopify): the platform-returns contract over a
stand-in Admin API, every request's variables against the input objects Shopify documents
(tests/data/shopify/input_objects_2025-07.json), recorded answers, userErrors and throttling."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from decimal import Decimal, localcontext
from functools import partial
from pathlib import Path

import attrs
import httpx
import pytest

from _builders import order, order_line
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Duty,
    Exchange,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.domain.inbound import Disposition
from returnflow.domain.money import MONEY_CONTEXT, Money
from returnflow.errors import ConfigurationError, PortError
from returnflow.integrations.shopify import ShopifyPlatformReturns, ShopifyShop
from returnflow.integrations.shopify import documents as gql
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.platform_returns import (
    DutyRefund,
    FinancialOutcome,
    PlatformExchangeLine,
    PlatformReturn,
    PlatformReturnLine,
    PlatformReturns,
    Quantity,
    ShopifyReturnStatus,
)
from returnflow.testing import FakeCommercePlatform, Harness, make_order
from returnflow.testing.platform_contract import PlatformReturnsContract
from returnflow.testing.shopify import TRANSACTION, Request, ShopifyAdminMock

LOCATION = "gid://shopify/Location/1"
ORDER = "gid://shopify/Order/1"
DOMAINS = {"a.myshopify.com": ("shop-a", "token-a"), "b.myshopify.com": ("shop-b", "token-b")}
SHOPS = {
    "shop-a": ShopifyShop("a.myshopify.com", "token-a"),
    "shop-b": ShopifyShop("b.myshopify.com", "token-b"),
}


def make(
    commerce: FakeCommercePlatform | None = None,
) -> tuple[ShopifyPlatformReturns, ShopifyAdminMock]:
    mock = ShopifyAdminMock(
        commerce or FakeCommercePlatform(),
        DOMAINS,
        variant_prices={
            "V-9": Decimal("25.00"),
            **{f"V-{price}": Decimal(price) for price in ("15.00", "20.00", "25.00")},
        },
    )
    client = httpx.Client(transport=mock.transport())
    return ShopifyPlatformReturns(SHOPS, client=client, restock_location_id=LOCATION), mock


class TestShopifyAdapterContract(PlatformReturnsContract):
    """The port's contract, held by the adapter over a mock that answers like Shopify."""

    NAMES_UNITS = False  # Shopify takes a count of a fulfillment line item's units
    mocks: list[ShopifyAdminMock]

    def make_platform(self) -> tuple[PlatformReturns, CommercePlatform]:
        adapter, mock = make()
        self.__dict__.setdefault("mocks", []).append(mock)
        return adapter, mock.commerce


# -- the variables, field by field, against Shopify's documented input objects --------------------

DATA = Path(__file__).parent / "data" / "shopify"
SCHEMA = json.loads((DATA / "input_objects_2025-07.json").read_text())
SCALARS: dict[str, Callable[[object], bool]] = {
    "ID": lambda v: isinstance(v, str) and bool(v),
    "String": lambda v: isinstance(v, str),
    "DateTime": lambda v: isinstance(v, str),
    "Int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "Float": lambda v: isinstance(v, (int, float, Decimal)) and not isinstance(v, bool),
    "Boolean": lambda v: isinstance(v, bool),
    "Decimal": lambda v: isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v) is not None,
    "Money": lambda v: isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v) is not None,
    "CurrencyCode": lambda v: isinstance(v, str) and re.fullmatch(r"[A-Z]{3}", v) is not None,
}


def conforms(value: object, kind: str, path: str) -> list[str]:
    """What is wrong with ``value`` as a ``kind`` (a GraphQL input type, e.g. ``[X!]!``)."""
    if kind.endswith("!"):
        if value is None:
            return [f"{path}: required ({kind})"]
        kind = kind[:-1]
    if value is None:
        return []
    if kind.startswith("["):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list ({kind})"]
        return [
            p for i, item in enumerate(value) for p in conforms(item, kind[1:-1], f"{path}[{i}]")
        ]
    if kind in SCALARS:
        return [] if SCALARS[kind](value) else [f"{path}: {value!r} is not a {kind}"]
    if kind in SCHEMA["enums"]:
        ok = value in SCHEMA["enums"][kind]
        return [] if ok else [f"{path}: {value!r} is not one of {kind}"]
    fields = SCHEMA["input_objects"].get(kind)
    assert fields is not None, f"{kind} is not in the schema data"
    if not isinstance(value, dict):
        return [f"{path}: {value!r} is not a {kind}"]
    problems = [f"{path}.{name}: {kind} has no such field" for name in value if name not in fields]
    for name, field_kind in fields.items():
        problems += conforms(value.get(name), field_kind, f"{path}.{name}")
    return problems


def request_problems(request: Request) -> list[str]:
    arguments = SCHEMA["operations"].get(request.operation)
    if arguments is None:
        return [f"{request.operation}: not an operation of the schema data"]
    problems = [f"${name}: not an argument" for name in request.variables if name not in arguments]
    for name, kind in arguments.items():
        problems += conforms(request.variables.get(name), kind, f"{request.operation}.${name}")
    return problems


def test_the_schema_data_checks_what_it_says() -> None:
    good = {
        "fulfillmentLineItemId": "gid://shopify/FulfillmentLineItem/1",
        "quantity": 1,
        "returnReason": "UNKNOWN",
    }
    assert conforms(good, "ReturnLineItemInput!", "x") == []
    assert conforms({**good, "reason": "x"}, "ReturnLineItemInput", "x") == [
        "x.reason: ReturnLineItemInput has no such field"
    ]
    assert conforms({**good, "quantity": "1"}, "ReturnLineItemInput", "x") == [
        "x.quantity: '1' is not a Int"
    ]
    assert conforms({**good, "returnReason": "BORED"}, "ReturnLineItemInput", "x") == [
        "x.returnReason: 'BORED' is not one of ReturnReason"
    ]
    assert conforms(None, "ReturnInput!", "x") == ["x: required (ReturnInput!)"]


def test_every_document_declares_the_arguments_shopify_documents() -> None:
    for name in gql.__all__:
        document = getattr(gql, name)
        if not isinstance(document, str) or name == "API_VERSION":
            continue
        operation = re.search(r"(?:query|mutation)\s+(\w+)", document)
        assert operation is not None, name
        declared = dict(re.findall(r"\$(\w+):\s*([\w!\[\]]+)", document))
        assert declared == SCHEMA["operations"][operation.group(1)], name
    assert SCHEMA["api_version"] == gql.API_VERSION


def test_a_cancelled_exchange_item_is_removed_from_the_return() -> None:
    commerce = FakeCommercePlatform()
    commerce.add_order(charged_order())
    adapter, mock = make(commerce)
    opened = adapter.open_return(
        "shop-a",
        ORDER,
        [PlatformReturnLine("L1", 1)],
        exchange_lines=[PlatformExchangeLine("X1", "V-9", 1, Money("25.00", "EUR"))],
        idempotency_key="open",
    )
    exchange_id = dict(opened.exchange_line_ids)["X1"]
    adapter.remove_lines(
        "shop-a",
        opened.return_id,
        [],
        exchange_lines=[Quantity(exchange_id, 1)],
        idempotency_key="rm",
    )
    [request] = [r for r in mock.requests if r.operation == "ReturnflowRemoveFromReturn"]
    assert request_problems(request) == []
    assert request.variables["exchangeLineItems"] == [
        {"exchangeLineItemId": exchange_id, "quantity": 1}
    ]
    assert adapter.calculate("shop-a", opened.return_id).exchanged == Money("0.00", "EUR")


DUTY = "gid://shopify/Duty/1"


def charged_order() -> OrderSnapshot:
    """The contract's order with 4.00 of shipping and a 3.00 duty on L1 (Shopify's
    ``LineItem.duties``)."""
    order = make_order("shop-a", ORDER)
    first, second = order.lines
    return attrs.evolve(
        order,
        shipping_price=Money("4.00", "EUR"),
        lines=(attrs.evolve(first, duties=(Duty(DUTY, Money("3.00", "EUR")),)), second),
    )


def test_every_request_of_a_whole_return_matches_the_input_objects() -> None:
    commerce = FakeCommercePlatform()
    commerce.add_order(charged_order())
    adapter, mock = make(commerce)
    fee = Money("2.00", "EUR")
    opened = adapter.open_return(
        "shop-a",
        ORDER,
        [
            PlatformReturnLine("L1", 2, "SIZE_TOO_SMALL", fee, units=(1, 0)),
            PlatformReturnLine("L2", 1, units=(0,)),
        ],
        exchange_lines=[PlatformExchangeLine("X1", "V-9", 1, Money("25.00", "EUR"))],
        return_shipping_fee=Money("5.00", "EUR"),
        idempotency_key="open",
    )
    assert adapter.calculate("shop-a", opened.return_id).owed == Money("2.00", "EUR")
    adapter.remove_lines(
        "shop-a", opened.return_id, [Quantity(opened.line_id("L2"), 1)], idempotency_key="rm"
    )
    exchange_id = dict(opened.exchange_line_ids)["X1"]
    result = adapter.process(
        "shop-a",
        opened.return_id,
        [Quantity(opened.line_id("L1"), 2)],
        exchange_lines=[Quantity(exchange_id, 1)],
        refund=Money("0.00", "EUR"),
        refund_shipping=Money("3.00", "EUR"),
        refund_duties=[DutyRefund(DUTY, Money("3.00", "EUR"))],
        idempotency_key="process",
    )
    assert result.refunded == Money("6.00", "EUR")
    assert mock.platform.given_back("shop-a", ORDER, DUTY) == Money("3.00", "EUR")
    assert mock.platform.given_back("shop-a", ORDER, "shipping") == Money("3.00", "EUR")
    # The new item (25.00) costs more than what came back, less the fees: held until paid.
    owed = adapter.get_return("shop-a", opened.return_id)
    assert (owed.exchange_on_hold, owed.balance_owed) == (True, Money("12.00", "EUR"))
    paid = adapter.pay_balance(
        "shop-a", opened.return_id, Money("12.00", "EUR"), idempotency_key="pay"
    )
    assert (paid.exchange_on_hold, paid.balance_owed) == (False, None)
    assert paid.balance_paid == Money("12.00", "EUR")
    assert list(mock.platform.fulfillments("shop-a", opened.return_id).values()) == [False]
    # Part of the payment given back: a refund of it on the order, and the order owes it.
    back = adapter.refund_balance(
        "shop-a", opened.return_id, Money("5.00", "EUR"), idempotency_key="back"
    )
    assert (back.balance_paid, back.balance_owed) == (Money("7.00", "EUR"), Money("5.00", "EUR"))
    assert len(result.refund_ids) == 1
    adapter.dispose(
        "shop-a",
        opened.return_id,
        opened.line_id("L1"),
        1,
        Disposition.RESTOCKED,
        idempotency_key="d1",
    )
    adapter.dispose(
        "shop-a",
        opened.return_id,
        opened.line_id("L1"),
        1,
        Disposition.PROCESSING_REQUIRED,
        idempotency_key="d2",
    )
    closed = adapter.get_return("shop-a", opened.return_id)
    assert closed.status is ShopifyReturnStatus.CLOSED
    adapter.reopen("shop-a", opened.return_id, idempotency_key="reopen")
    adapter.close("shop-a", opened.return_id, idempotency_key="close")
    requested = adapter.open_return(
        "shop-a",
        ORDER,
        [PlatformReturnLine("L2", 1, "DEFECTIVE", units=(0,))],
        requested=True,
        idempotency_key="request",
    )
    adapter.decline("shop-a", requested.return_id, reason="FINAL_SALE", idempotency_key="decline")
    again = adapter.open_return(
        "shop-a", ORDER, [PlatformReturnLine("L2", 1)], requested=True, idempotency_key="request-2"
    )
    adapter.decline("shop-a", again.return_id, reason="worn", idempotency_key="decline-2")
    third = adapter.open_return(
        "shop-a", ORDER, [PlatformReturnLine("L2", 1)], requested=True, idempotency_key="request-3"
    )
    adapter.approve("shop-a", third.return_id, idempotency_key="approve")
    adapter.cancel("shop-a", third.return_id, idempotency_key="cancel")
    operations = {request.operation for request in mock.requests}
    assert operations == set(SCHEMA["operations"]), set(SCHEMA["operations"]) - operations
    for request in mock.requests:
        assert request.version == "2025-07"
        assert request_problems(request) == [], request
    by_operation = {r.operation: r.variables for r in mock.requests}
    create = by_operation["ReturnflowReturnCreate"]["returnInput"]
    assert create["returnLineItems"][0] == {
        "fulfillmentLineItemId": "L1",
        "quantity": 2,
        "returnReason": "SIZE_TOO_SMALL",
        "restockingFee": {"percentage": 10.0},
    }
    # the units named are those of the fulfillment line item: Shopify takes their count
    assert create["returnLineItems"][1] == {
        "fulfillmentLineItemId": "L2",
        "quantity": 1,
        "returnReason": "UNKNOWN",
    }
    [request_items, *_] = [
        r.variables["input"]["returnLineItems"]
        for r in mock.requests
        if r.operation == "ReturnflowReturnRequest"
    ]
    assert request_items == [
        {"fulfillmentLineItemId": "L2", "quantity": 1, "returnReason": "DEFECTIVE"}
    ]
    assert create["exchangeLineItems"] == [{"variantId": "V-9", "quantity": 1}]
    assert create["returnShippingFee"] == {"amount": {"amount": "5.00", "currencyCode": "EUR"}}
    processed = by_operation["ReturnflowReturnProcess"]["input"]
    assert processed["refundShipping"] == {
        "shippingRefundAmount": {"amount": "3.00", "currencyCode": "EUR"}
    }
    assert processed["refundDuties"] == [{"dutyId": DUTY, "refundType": "PROPORTIONAL"}]
    # The transaction carries the whole refund: no lines, the shipping and the duty.
    assert processed["financialTransfer"] == {
        "issueRefund": {
            "orderTransactions": [
                {
                    "parentId": TRANSACTION,
                    "transactionAmount": {"amount": "6.00", "currencyCode": "EUR"},
                }
            ]
        }
    }
    declines = [
        r.variables["input"] for r in mock.requests if r.operation.endswith("Decline" + "Request")
    ]
    assert declines[0] == {"id": requested.return_id, "declineReason": "FINAL_SALE"}
    assert declines[1] == {"id": again.return_id, "declineReason": "OTHER", "declineNote": "worn"}
    assert by_operation["ReturnflowOrderCreateManualPayment"] == {
        "id": ORDER,
        "amount": {"amount": "12.00", "currencyCode": "EUR"},
    }
    given_back = by_operation["ReturnflowRefundCreate"]["input"]
    [transaction] = given_back["transactions"]
    payment = transaction.pop("parentId")
    assert payment != TRANSACTION  # the manual payment, not the order's own
    assert transaction == {
        "orderId": ORDER,
        "gateway": "manual",
        "kind": "REFUND",
        "amount": "5.00",
    }
    assert (given_back["orderId"], given_back["notify"]) == (ORDER, False)
    disposed = [r.variables for r in mock.requests if r.operation.endswith("Dispose")]
    assert disposed[0]["dispositionInputs"][0]["locationId"] == LOCATION
    assert "locationId" not in disposed[1]["dispositionInputs"][0]


def test_a_refund_goes_to_the_orders_sale_transaction() -> None:
    commerce = FakeCommercePlatform()
    commerce.add_order(make_order("shop-a", ORDER))
    adapter, mock = make(commerce)
    opened = adapter.open_return(
        "shop-a", ORDER, [PlatformReturnLine("L1", 1)], idempotency_key="o"
    )
    result = adapter.process(
        "shop-a",
        opened.return_id,
        [Quantity(opened.line_id("L1"), 1)],
        refund=Money("10.00", "EUR"),
        idempotency_key="p",
    )
    assert result.refunded == Money("10.00", "EUR")
    assert mock.platform.refunded("shop-a", opened.return_id) == Money("10.00", "EUR")
    sent = next(r for r in mock.requests if r.operation == "ReturnflowReturnProcess")
    assert sent.variables["input"]["financialTransfer"] == {
        "issueRefund": {
            "orderTransactions": [
                {
                    "parentId": TRANSACTION,
                    "transactionAmount": {"amount": "10.00", "currencyCode": "EUR"},
                }
            ]
        }
    }


# -- keys ---------------------------------------------------------------------------------------


def test_a_repeated_key_answers_the_first_result_without_a_request() -> None:
    commerce = FakeCommercePlatform()
    commerce.add_order(make_order("shop-a", ORDER))
    adapter, mock = make(commerce)
    lines = [PlatformReturnLine("L1", 1)]
    first = adapter.open_return("shop-a", ORDER, lines, idempotency_key="k")
    sent = len(mock.requests)
    assert adapter.open_return("shop-a", ORDER, lines, idempotency_key="k") == first
    assert len(mock.requests) == sent
    with pytest.raises(PortError, match="other arguments") as refused:
        adapter.open_return("shop-a", ORDER, [PlatformReturnLine("L1", 2)], idempotency_key="k")
    assert not refused.value.retryable
    assert len(mock.requests) == sent


def test_a_failed_call_is_not_remembered_and_is_sent_again() -> None:
    commerce = FakeCommercePlatform()
    commerce.add_order(make_order("shop-a", ORDER))
    adapter, mock = make(commerce)
    mock.fail(503)
    with pytest.raises(PortError) as failed:
        adapter.open_return("shop-a", ORDER, [PlatformReturnLine("L1", 1)], idempotency_key="k")
    assert failed.value.retryable
    opened = adapter.open_return(
        "shop-a", ORDER, [PlatformReturnLine("L1", 1)], idempotency_key="k"
    )
    assert opened.status is ShopifyReturnStatus.OPEN


def test_a_durable_ledger_answers_a_key_after_a_restart() -> None:
    commerce = FakeCommercePlatform()
    commerce.add_order(make_order("shop-a", ORDER))
    mock = ShopifyAdminMock(commerce, DOMAINS)
    ledger: dict[str, tuple[str, object]] = {}
    lines = [PlatformReturnLine("L1", 1)]

    def adapter() -> ShopifyPlatformReturns:
        client = httpx.Client(transport=mock.transport())
        return ShopifyPlatformReturns(SHOPS, client=client, ledger=ledger)

    first = adapter().open_return("shop-a", ORDER, lines, idempotency_key="k")
    assert adapter().open_return("shop-a", ORDER, lines, idempotency_key="k") == first
    assert [r.operation for r in mock.requests] == ["ReturnflowReturnCreate"]


# -- recorded answers, userErrors, throttling and failures -------------------------------------


def recorded(
    name: str, status: int = 200, headers: dict[str, str] | None = None
) -> ShopifyPlatformReturns:
    body = (DATA / name).read_bytes() if name else b""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers=headers or {})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    adapter = ShopifyPlatformReturns(SHOPS, client=client)
    adapter.seen = seen  # type: ignore[attr-defined]
    return adapter


def open_one(adapter: ShopifyPlatformReturns, key: str = "k") -> PlatformReturn:
    return adapter.open_return(
        "shop-a",
        "gid://shopify/Order/148977776",
        [PlatformReturnLine("gid://shopify/FulfillmentLineItem/4", 1)],
        exchange_lines=[
            PlatformExchangeLine(
                "X1", "gid://shopify/ProductVariant/43729076", 1, Money("24.99", "USD")
            )
        ],
        idempotency_key=key,
    )


def test_a_recorded_return_create_answer_is_read() -> None:
    adapter = recorded("return_create.json")
    opened = open_one(adapter)
    assert opened == PlatformReturn(
        return_id="gid://shopify/Return/945000954",
        order_id="gid://shopify/Order/148977776",
        status=ShopifyReturnStatus.OPEN,
        line_ids=(
            ("gid://shopify/FulfillmentLineItem/4", "gid://shopify/ReturnLineItem/677614678"),
        ),
        exchange_line_ids=(("X1", "gid://shopify/ExchangeLineItem/2"),),
        processed=(("gid://shopify/ReturnLineItem/677614678", 0),),
        removed=(("gid://shopify/ReturnLineItem/677614678", 0),),
        exchange_processed=(("gid://shopify/ExchangeLineItem/2", 0),),
    )
    (request,) = adapter.seen  # type: ignore[attr-defined]
    assert str(request.url) == "https://a.myshopify.com/admin/api/2025-07/graphql.json"
    assert request.headers["X-Shopify-Access-Token"] == "token-a"
    assert json.loads(request.content)["query"] == gql.CREATE


def test_a_user_error_is_a_refusal_naming_the_field_and_the_message() -> None:
    with pytest.raises(PortError) as refused:
        open_one(recorded("return_create_user_errors.json"))
    assert not refused.value.retryable
    assert "returnInput.returnLineItems.0.quantity: Quantity is not available for return." in str(
        refused.value
    )


def test_throttling_is_retryable_after_the_bucket_refills() -> None:
    with pytest.raises(PortError) as throttled:
        open_one(recorded("throttled.json"))
    assert throttled.value.retryable
    assert throttled.value.retry_after == 2.0
    with pytest.raises(PortError) as limited:
        open_one(recorded("", status=429, headers={"Retry-After": "2.5"}))
    assert limited.value.retryable
    assert limited.value.retry_after == 2.5
    restored = pickle.loads(pickle.dumps(limited.value))
    assert restored.retry_after == 2.5
    assert restored.retryable


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (502, True), (503, True), (401, False), (403, False)]
)
def test_http_failures(status: int, retryable: bool) -> None:
    with pytest.raises(PortError) as failed:
        open_one(recorded("", status=status))
    assert failed.value.retryable is retryable
    assert failed.value.retry_after is None


def test_a_dropped_connection_and_a_body_that_is_not_json_are_retryable() -> None:
    commerce = FakeCommercePlatform()
    adapter, mock = make(commerce)
    mock.drop()
    with pytest.raises(PortError, match="transport") as dropped:
        adapter.get_return("shop-a", "gid://shopify/Return/1")
    assert dropped.value.retryable
    with pytest.raises(PortError, match="not JSON") as garbled:
        recorded("", status=200).get_return("shop-a", "gid://shopify/Return/1")
    assert garbled.value.retryable


def test_the_mock_throttles_like_shopify_and_the_adapter_retries_after() -> None:
    commerce = FakeCommercePlatform()
    commerce.add_order(make_order("shop-a", ORDER))
    adapter, mock = make(commerce)
    mock.throttle(available=10, requested=60, restore_rate=50)
    with pytest.raises(PortError) as throttled:
        adapter.open_return("shop-a", ORDER, [PlatformReturnLine("L1", 1)], idempotency_key="k")
    assert throttled.value.retryable
    assert throttled.value.retry_after == 1.0
    adapter.open_return("shop-a", ORDER, [PlatformReturnLine("L1", 1)], idempotency_key="k")


def test_a_recorded_calculation_is_the_platforms_money() -> None:
    answers = [
        (DATA / "return_for_calculate.json").read_bytes(),
        (DATA / "return_calculate.json").read_bytes(),
    ]
    sent: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, content=answers[len(sent) - 1])

    adapter = ShopifyPlatformReturns(
        SHOPS, client=httpx.Client(transport=httpx.MockTransport(answer))
    )
    outcome = adapter.calculate("shop-a", "gid://shopify/Return/945000954")
    usd = partial(Money, currency="USD")
    assert outcome == FinancialOutcome(
        returned=usd("40.00"),
        fees=usd("9.00"),
        exchanged=usd("24.99"),
        refund=usd("6.01"),
        owed=usd("0.00"),
    )
    assert sent[1]["variables"] == {
        "input": {
            "orderId": "gid://shopify/Order/148977776",
            "returnLineItems": [
                {
                    "fulfillmentLineItemId": "gid://shopify/FulfillmentLineItem/4",
                    "quantity": 2,
                    "restockingFee": {"percentage": 10.0},
                }
            ],
            "exchangeLineItems": [
                {"variantId": "gid://shopify/ProductVariant/43729076", "quantity": 1}
            ],
            "returnShippingFee": {"amount": {"amount": "5.00", "currencyCode": "USD"}},
        }
    }
    assert (
        request_problems(Request("a", "ReturnflowReturnCalculate", sent[1]["variables"], "2025-07"))
        == []
    )  # type: ignore[arg-type]


def test_a_restocking_fee_goes_as_its_exact_percentage_never_through_a_float() -> None:
    """One euro of a seven-euro line is 14.28571428571428571428571429 per cent (28 digits);
    a float would send 14.285714285714286. The request's JSON holds the Decimal's digits,
    and the percentage Shopify answers back is read and sent again as the same digits."""
    commerce = FakeCommercePlatform()
    commerce.add_order(order("shop-a", ORDER, [order_line("L1", "SKU-1", "7.00")]))
    mock = ShopifyAdminMock(commerce, DOMAINS)
    sent: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return mock.handle(request)

    client = httpx.Client(transport=httpx.MockTransport(handle))
    adapter = ShopifyPlatformReturns(SHOPS, client=client, restock_location_id=LOCATION)
    with localcontext(MONEY_CONTEXT):
        exact = (Decimal("1.00") * 100 / Decimal("7.00")).normalize()
    assert Decimal(repr(float(exact))) != exact  # a float round trip changes it
    fee = Money("1.00", "EUR")
    opened = adapter.open_return(
        "shop-a", ORDER, [PlatformReturnLine("L1", 1, restocking_fee=fee)], idempotency_key="k"
    )
    created = json.loads(sent[-1], parse_float=Decimal)["variables"]
    item = created["returnInput"]["returnLineItems"][0]
    assert item["restockingFee"] == {"percentage": exact}
    assert f'"percentage":{exact}'.encode() in sent[-1]
    outcome = adapter.calculate("shop-a", opened.return_id)
    calculated = json.loads(sent[-1], parse_float=Decimal)["variables"]["input"]
    assert calculated["returnLineItems"][0]["restockingFee"] == {"percentage": exact}
    assert f'"percentage":{exact}'.encode() in sent[-1]
    assert outcome.fees == fee


# -- what the adapter refuses before sending anything ---------------------------------------------


# -- what the adapter refuses before sending anything ---------------------------------------------


def test_what_shopify_cannot_take_is_refused_before_a_request() -> None:
    commerce = FakeCommercePlatform()
    commerce.add_order(make_order("shop-a", ORDER))
    adapter, mock = make(commerce)
    with pytest.raises(PortError, match="no Shopify shop") as unknown:
        adapter.get_return("shop-z", "gid://shopify/Return/1")
    assert not unknown.value.retryable
    with pytest.raises(PortError, match="exchange_lines"):
        adapter.open_return(
            "shop-a",
            ORDER,
            [PlatformReturnLine("L1", 1)],
            requested=True,
            exchange_lines=[PlatformExchangeLine("X", "V-9", 1, Money("1.00", "EUR"))],
            idempotency_key="k",
        )
    with pytest.raises(PortError, match=r"not a share of 10\.00") as odd:
        adapter.open_return(
            "shop-a",
            ORDER,
            [PlatformReturnLine("L2", 1, restocking_fee=Money("10.01", "EUR"))],
            idempotency_key="k2",
        )
    assert not odd.value.retryable
    for units in ((0,), (0, 0), (0, 1, 2)):
        with pytest.raises(PortError, match=r"lines\[0\]\.units=.*: not 2 distinct") as unnamed:
            adapter.open_return(
                "shop-a", ORDER, [PlatformReturnLine("L1", 2, units=units)], idempotency_key="k4"
            )
        assert not unnamed.value.retryable
    opened = adapter.open_return(
        "shop-a", ORDER, [PlatformReturnLine("L1", 1)], idempotency_key="k3"
    )
    before = len(mock.requests)
    with pytest.raises(PortError, match="no successful SALE") as untransacted:
        adapter.process_variables(
            opened.return_id,
            [],
            [],
            Money("0", "EUR"),
            None,
            [DutyRefund(DUTY, Money("1", "EUR"))],
            [],
        )
    assert not untransacted.value.retryable
    unplaced = ShopifyPlatformReturns(SHOPS, client=httpx.Client(transport=mock.transport()))
    with pytest.raises(ConfigurationError, match="restock_location_id"):
        unplaced.dispose_variables(
            "gid://shopify/ReverseFulfillmentOrderLineItem/1", 1, Disposition.RESTOCKED
        )
    assert len(mock.requests) == before
    with pytest.raises(ConfigurationError, match="access token"):
        ShopifyPlatformReturns({"shop-a": ShopifyShop("a.myshopify.com", "")})


def test_restocked_units_go_to_their_lines_location_else_to_the_restock_location() -> None:
    line = "gid://shopify/ReverseFulfillmentOrderLineItem/1"
    placed = ShopifyPlatformReturns(SHOPS, client=httpx.Client(), restock_location_id=LOCATION)
    there = "gid://shopify/Location/77"
    [at_line] = placed.dispose_variables(line, 1, Disposition.RESTOCKED, there)["dispositionInputs"]
    [fallback] = placed.dispose_variables(line, 1, Disposition.RESTOCKED)["dispositionInputs"]
    assert (at_line["locationId"], fallback["locationId"]) == (there, LOCATION)
    unplaced = ShopifyPlatformReturns(SHOPS, client=httpx.Client())
    [given] = unplaced.dispose_variables(line, 2, Disposition.RESTOCKED, there)["dispositionInputs"]
    assert given == {
        "reverseFulfillmentOrderLineItemId": line,
        "quantity": 2,
        "dispositionType": "RESTOCKED",
        "locationId": there,
    }
    [kept] = unplaced.dispose_variables(line, 1, Disposition.NOT_RESTOCKED, there)[
        "dispositionInputs"
    ]
    assert "locationId" not in kept


def test_a_wrong_token_is_a_refusal() -> None:
    mock = ShopifyAdminMock(FakeCommercePlatform(), DOMAINS)
    shops = {"shop-a": ShopifyShop("a.myshopify.com", "stale")}
    adapter = ShopifyPlatformReturns(shops, client=httpx.Client(transport=mock.transport()))
    with pytest.raises(PortError, match="HTTP 401") as refused:
        adapter.get_return("shop-a", "gid://shopify/Return/1")
    assert not refused.value.retryable


# -- the lifecycle in native mode, through the adapter -------------------------------------------


def native(
    prices: dict[str, Decimal], order: OrderSnapshot | None = None, **policy: object
) -> tuple[Harness, ShopifyAdminMock]:
    ports = Harness().ports
    ports.commerce.add_order(order or make_order("shop-a", ORDER))
    mock = ShopifyAdminMock(ports.commerce, DOMAINS, variant_prices=prices)
    client = httpx.Client(transport=mock.transport())
    adapter = ShopifyPlatformReturns(SHOPS, client=client, restock_location_id=LOCATION)
    native_policy = ReturnPolicy(platform_mode="native", **policy)  # type: ignore[arg-type]
    return Harness(policy=native_policy, ports=ports, platform_returns=adapter), mock


def test_shipping_and_duties_given_back_go_with_the_processing_through_shopify() -> None:
    made, mock = native({}, charged_order(), refund_shipping="always", refund_duties="always")
    opened = made.service.request(
        ReturnRequest(shop="shop-a", order_id=ORDER, lines=[RequestLine("L1", 1)])
    )
    made.service.handle(
        WarehouseReceipt(
            shop="shop-a",
            return_id=opened.id,
            event_id="r1",
            lines=[ReceivedLine(line_id=opened.lines[0].id, quantity=1)],
        )
    )
    record = made.service.get("shop-a", opened.id)
    assert (record.status, record.review_reasons) == ("closed", ())
    processed = next(r for r in mock.requests if r.operation == "ReturnflowReturnProcess")
    assert request_problems(processed) == []
    given = processed.variables["input"]
    # One of three 10.00 units: a third of the 4.00 shipping (1.34), half the L1 duty.
    assert given["refundShipping"] == {
        "shippingRefundAmount": {"amount": "1.34", "currencyCode": "EUR"}
    }
    assert given["refundDuties"] == [{"dutyId": DUTY, "refundType": "PROPORTIONAL"}]
    transfer = given["financialTransfer"]["issueRefund"]["orderTransactions"]
    assert transfer == [
        {"parentId": TRANSACTION, "transactionAmount": {"amount": "12.84", "currencyCode": "EUR"}}
    ]
    assert mock.platform.given_back("shop-a", ORDER, DUTY) == Money("1.50", "EUR")
    return_id = record.refs.platform_return_id or ""
    assert mock.platform.refunded("shop-a", return_id) == Money("10.00", "EUR")


def test_an_even_exchange_runs_through_shopify_in_native_mode() -> None:
    made, mock = native({"V-9": Decimal("10.00")})
    swap = Exchange(variant_id="V-9", unit_price=Money("10.00", "EUR"))
    opened = made.service.request(
        ReturnRequest(shop="shop-a", order_id=ORDER, lines=[RequestLine("L1", 1, outcome=swap)])
    )
    record = made.service.get("shop-a", opened.id)
    return_id = record.refs.platform_return_id
    assert return_id is not None
    created = next(r for r in mock.requests if r.operation == "ReturnflowReturnCreate")
    assert created.variables["returnInput"]["exchangeLineItems"] == [
        {"variantId": "V-9", "quantity": 1}
    ]
    made.service.handle(
        WarehouseReceipt(
            shop="shop-a",
            return_id=opened.id,
            event_id="r1",
            lines=[ReceivedLine(line_id=opened.lines[0].id, quantity=1)],
        )
    )
    there = mock.platform.get_return("shop-a", return_id)
    assert there.status is ShopifyReturnStatus.CLOSED
    assert [units for _, units in there.exchange_processed] == [1]
    assert mock.platform.refunded("shop-a", return_id) == Money("0.00", "EUR")
    processed = next(r for r in mock.requests if r.operation == "ReturnflowReturnProcess")
    assert request_problems(processed) == []
    assert "financialTransfer" not in processed.variables["input"]


def test_a_price_shopify_disagrees_with_sends_the_return_to_review() -> None:
    made, mock = native({"V-9": Decimal("12.00")})  # Shopify prices the variant at 12.00
    swap = Exchange(variant_id="V-9", unit_price=Money("10.00", "EUR"))
    opened = made.service.request(
        ReturnRequest(shop="shop-a", order_id=ORDER, lines=[RequestLine("L1", 1, outcome=swap)])
    )
    made.service.handle(
        WarehouseReceipt(
            shop="shop-a",
            return_id=opened.id,
            event_id="r1",
            lines=[ReceivedLine(line_id=opened.lines[0].id, quantity=1)],
        )
    )
    record = made.service.get("shop-a", opened.id)
    assert "needs_review" in record.state
    assert not any(r.operation == "ReturnflowReturnProcess" for r in mock.requests)


def test_units_disposed_of_in_the_admin_are_read_and_not_disposed_of_again() -> None:
    # Two units processed through Shopify; a person disposes of one in the admin. The
    # adapter reads the dispositions (reverse fulfillment order line items), and returnflow
    # disposes of the one left only.
    made, mock = native({}, refund_trigger="on_handed_in")
    opened = made.service.request(
        ReturnRequest(shop="shop-a", order_id=ORDER, lines=[RequestLine("L1", 2)])
    )
    made.service.handle(
        CarrierUpdate(
            shop="shop-a", return_id=opened.id, event_id="s1", status=CarrierStatus.PICKED_UP
        )
    )
    return_id = made.service.get("shop-a", opened.id).refs.platform_return_id or ""
    line = mock.platform.get_return("shop-a", return_id).line_id("L1")
    mock.platform.dispose(
        "shop-a", return_id, line, 1, Disposition.NOT_RESTOCKED, idempotency_key="admin"
    )
    adapter = made.platform_returns
    assert adapter is not None
    assert dict(adapter.get_return("shop-a", return_id).disposed) == {line: 1}
    made.service.handle(
        WarehouseReceipt(
            shop="shop-a",
            return_id=opened.id,
            event_id="r1",
            lines=[ReceivedLine(line_id=opened.lines[0].id, quantity=2)],
        )
    )
    record = made.service.get("shop-a", opened.id)
    assert (record.status, record.review_reasons) == ("closed", ())
    assert mock.platform.dispositions("shop-a", return_id) == [
        (line, 1, Disposition.NOT_RESTOCKED),
        (line, 1, Disposition.RESTOCKED),
    ]
