"""An answer from Shopify of an unexpected shape (errors that are not a list of objects,
``userErrors`` that are not objects, money that is not an object) is a ``PortError`` naming
the operation, never a raw ``AttributeError`` or ``TypeError`` from reading it, and the same
under ``python -O``, which drops ``assert`` statements."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from returnflow.errors import PortError
from returnflow.integrations.shopify import ShopifyPlatformReturns, ShopifyShop

SRC = Path(__file__).resolve().parent.parent / "src"


def _answering(body: object) -> ShopifyPlatformReturns:
    content = json.dumps(body).encode()
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=content))
    )
    return ShopifyPlatformReturns(
        {"shop-a": ShopifyShop("a.myshopify.com", "token-a")}, client=client
    )


def _read(body: object) -> PortError:
    with pytest.raises(PortError) as refused:
        _answering(body).get_return("shop-a", "gid://shopify/Return/1")
    assert refused.value.operation == "get_return"
    return refused.value


@pytest.mark.parametrize(
    "errors",
    [
        [{"message": "odd", "extensions": "not an object"}],
        5,
        "Internal error",
        {"message": "one error, not a list"},
    ],
)
def test_graphql_errors_of_an_unexpected_shape_are_a_port_error(errors: Any) -> None:
    refused = _read({"errors": errors})
    assert not refused.retryable
    assert "GraphQL errors" in str(refused)


@pytest.mark.parametrize(
    "user_errors",
    [["Quantity is not available"], {"field": "x", "message": "m"}, [{"field": "qty"}]],
)
def test_user_errors_of_an_unexpected_shape_are_a_refusal(user_errors: Any) -> None:
    adapter = _answering({"data": {"returnClose": {"userErrors": user_errors}}})
    with pytest.raises(PortError) as refused:
        adapter._mutate("shop-a", "close", "mutation", {}, "returnClose")
    assert not refused.value.retryable
    assert "userErrors" in str(refused.value)


@pytest.mark.parametrize("bag", [[1], "x", None, {"shopMoney": [1]}, {"shopMoney": None}])
def test_money_that_is_not_an_object_is_a_bad_answer_even_under_optimization(bag: Any) -> None:
    code = (
        "import json, sys\n"
        "from returnflow.errors import PortError\n"
        "from returnflow.integrations.shopify._answers import parse_money\n"
        "try:\n"
        "    parse_money(json.loads(sys.argv[1]), 'get_return')\n"
        "except PortError as error:\n"
        "    print('PortError', error.operation)\n"
    )
    for flags in ([], ["-O"]):
        ran = subprocess.run(
            [sys.executable, *flags, "-c", code, json.dumps(bag)],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(SRC)},
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "PortError get_return"


def _return_with(quantity: object, processed: object, unprocessed: object) -> dict[str, Any]:
    line = {
        "id": "gid://shopify/ReturnLineItem/1",
        "fulfillmentLineItem": {"id": "gid://shopify/FulfillmentLineItem/1"},
        "quantity": quantity,
        "processedQuantity": processed,
        "unprocessedQuantity": unprocessed,
    }
    return {
        "data": {
            "return": {
                "id": "gid://shopify/Return/1",
                "order": {"id": "gid://shopify/Order/1"},
                "status": "OPEN",
                "returnLineItems": {"nodes": [line]},
            }
        }
    }


@pytest.mark.parametrize(
    ("quantity", "processed", "unprocessed"),
    [
        (1, 2, 0),  # more units processed than the line holds: -1 removed
        (10**30, 10**30, 0),  # beyond any count that comes in
        (2.5, 2.5, 0),  # a fraction (read as a Decimal), once truncated to 2
        (True, True, False),  # flags, once read as 1 and 0
        (1, -1, 2),  # a negative count
    ],
)
def test_counts_of_units_out_of_bounds_are_a_bad_answer(
    quantity: object, processed: object, unprocessed: object
) -> None:
    refused = _read(_return_with(quantity, processed, unprocessed))
    assert not refused.retryable
    assert "unexpected answer for return" in str(refused)


def test_counts_within_bounds_are_read() -> None:
    read = _answering(_return_with(3, 1, 1)).get_return("shop-a", "gid://shopify/Return/1")
    assert read.processed == (("gid://shopify/ReturnLineItem/1", 1),)
    assert read.removed == (("gid://shopify/ReturnLineItem/1", 1),)
