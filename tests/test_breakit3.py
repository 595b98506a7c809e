"""Hostile values at the edges of the request, the order and the inbound facts: each is a
typed error naming the field and the value, raised before anything is stored."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import returnflow
from returnflow import (
    CarrierUpdate,
    Claim,
    ConfigurationError,
    ExternalLine,
    ExternalReturn,
    InvalidPayload,
    InvalidRequest,
    Money,
    OrderLine,
    OrderSnapshot,
    PortError,
    ReceivedLine,
    RequestLine,
    ReturnflowError,
    ReturnPolicy,
    ReturnReasonDefinition,
    ReturnRequest,
    UnreadableRecord,
    ValidationError,
    WarehouseReceipt,
    webhooks,
)
from returnflow.domain.order import Fulfillment
from returnflow.integrations.shopify import ShopifyPlatformReturns, ShopifyShop
from returnflow.ports.platform_returns import Quantity
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakeWarehouse, Harness, make_order

AT = datetime(2026, 1, 10, tzinfo=timezone.utc)


def _refused(error: type[ValidationError], field: str, build: Callable[[], object]) -> Any:
    with pytest.raises(error) as caught:
        build()
    assert caught.value.field == field
    return caught.value.value


def _request(**changes: Any) -> ReturnRequest:
    fields: dict[str, Any] = {
        "shop": "s",
        "order_id": "1001",
        "lines": [RequestLine(order_line_id="L1", quantity=1)],
    }
    return ReturnRequest(**{**fields, **changes})


def _line(**changes: Any) -> OrderLine:
    fields: dict[str, Any] = {
        "id": "L1",
        "sku": "S",
        "variant_id": "V",
        "quantity": 1,
        "unit_price": Money("10.00", "EUR"),
    }
    return OrderLine(**{**fields, **changes})


def _order(**changes: Any) -> OrderSnapshot:
    fields: dict[str, Any] = {
        "id": "1",
        "shop": "s",
        "created_at": AT,
        "currency": "EUR",
        "lines": [_line()],
        "fulfilled_at": AT,
    }
    return OrderSnapshot(**{**fields, **changes})


# -- lists given as something else: a typed error, not TypeError / AttributeError ------------


@pytest.mark.parametrize("value", [None, 5, "L1", b"L1"])
def test_request_lines_that_are_no_list_are_refused_by_name(value: object) -> None:
    assert _refused(InvalidRequest, "lines", lambda: _request(lines=value)) == value


def test_a_request_line_that_is_not_one_is_refused_by_its_index() -> None:
    line = RequestLine(order_line_id="L1", quantity=1)
    assert _refused(InvalidRequest, "lines[1]", lambda: _request(lines=[line, None])) is None


@pytest.mark.parametrize("field", ["platform_line_ids", "platform_exchange_line_ids"])
@pytest.mark.parametrize("value", [None, 7])
def test_platform_id_pairs_that_are_no_list_are_refused_by_name(field: str, value: object) -> None:
    request = {"platform_return_id": "gid://shopify/Return/1", field: value}
    assert _refused(InvalidRequest, field, lambda: _request(**request)) == value


@pytest.mark.parametrize("value", [None, 3])
def test_order_lines_that_are_no_list_are_refused_by_name(value: object) -> None:
    assert _refused(InvalidPayload, "lines", lambda: _order(lines=value)) == value


@pytest.mark.parametrize("value", [None, 3])
def test_fulfillments_that_are_no_list_are_refused_by_name(value: object) -> None:
    assert _refused(InvalidPayload, "fulfillments", lambda: _line(fulfillments=value)) == value


# -- text that code reads as text is never None ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "build"),
    [
        ("note", lambda: RequestLine(order_line_id="L1", quantity=1, note=None)),
        ("customer_note", lambda: _request(customer_note=None)),
        ("requested_by", lambda: _request(requested_by=None)),
        ("title", lambda: _line(title=None)),
        ("note", lambda: ReceivedLine(line_id="L1", quantity=1, note=None)),
    ],
)
def test_text_fields_refuse_none(field: str, build: Callable[[], object]) -> None:
    assert _refused(ValidationError, field, build) is None


def test_a_reason_that_needs_a_note_and_a_line_without_one_is_a_typed_error() -> None:
    """The check of a required note read ``line.note.strip()``: a ``None`` note was an
    AttributeError from deep in the request's checks; now the line refuses it."""
    harness = Harness(
        policy=ReturnPolicy(
            reasons=[ReturnReasonDefinition("broken", "Broken", note_required=True)]
        )
    )
    harness.ports.commerce.add_order(make_order("s", "1001"))
    with pytest.raises(ReturnflowError) as caught:
        harness.service.request(
            _request(
                lines=[RequestLine(order_line_id="L1", quantity=1, reason="broken", note=None)]
            )
        )
    assert (caught.value.field, caught.value.value) == ("note", None)  # type: ignore[attr-defined]
    assert harness.service.list("s") == []


# -- ids a store indexes are bounded -----------------------------------------------------------


def _noise(size: int) -> str:
    """Text that does not compress: what reaches an index at its full size."""
    generator = random.Random(size)
    return "".join(generator.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(size))


LONG = _noise(256)
WIDE = "\U0001f600" * 64  # 64 characters, 256 bytes in UTF-8


@pytest.mark.parametrize("text", [LONG, WIDE])
@pytest.mark.parametrize(
    ("error", "field", "build"),
    [
        (InvalidRequest, "shop", lambda text: _request(shop=text)),
        (InvalidRequest, "order_id", lambda text: _request(order_id=text)),
        (
            InvalidRequest,
            "order_line_id",
            lambda text: RequestLine(order_line_id=text, quantity=1),
        ),
        (InvalidRequest, "id", lambda text: _order(id=text)),
        (InvalidRequest, "id", lambda text: _line(id=text)),
        (InvalidRequest, "id", lambda text: Fulfillment(quantity=1, fulfilled_at=AT, id=text)),
        (
            InvalidPayload,
            "event_id",
            lambda text: CarrierUpdate(
                shop="s", return_id="R1", event_id=text, status="RETURN_PICKED_UP"
            ),
        ),
        (
            InvalidPayload,
            "source",
            lambda text: CarrierUpdate(
                shop="s", return_id="R1", event_id="e", status="RETURN_PICKED_UP", source=text
            ),
        ),
        (
            InvalidPayload,
            "return_id",
            lambda text: WarehouseReceipt(
                shop="s",
                return_id=text,
                event_id="e",
                lines=[ReceivedLine(line_id="L1", quantity=1)],
            ),
        ),
        (InvalidPayload, "line_id", lambda text: ReceivedLine(line_id=text, quantity=1)),
        (
            InvalidPayload,
            "order_id",
            lambda text: ExternalReturn(
                source="loop",
                external_id="1",
                shop="s",
                order_id=text,
                created_at=AT,
                updated_at=AT,
                lines=[ExternalLine(order_line_id="L1", quantity=1)],
            ),
        ),
    ],
)
def test_ids_longer_than_an_index_keeps_are_refused_by_name(
    text: str, error: type[ValidationError], field: str, build: Callable[[str], object]
) -> None:
    assert _refused(error, field, lambda: build(text)) == text


def test_an_id_of_the_most_bytes_is_taken() -> None:
    assert _request(shop=_noise(255)).shop == _noise(255)
    assert _request(order_id="\U0001f600" * 63 + "abc").order_id.endswith("abc")


def test_a_customer_email_longer_than_an_address_is_refused_by_name() -> None:
    email = _noise(250) + "@x.de"
    assert _refused(InvalidPayload, "customer_email", lambda: _order(customer_email=email)) == email
    assert _order(customer_email=_noise(249) + "@x.de").customer_email


def test_a_photo_longer_than_a_url_is_refused_by_its_index() -> None:
    photo = "https://photos.example/" + _noise(2048)
    assert _refused(
        InvalidRequest,
        "photos[1]",
        lambda: RequestLine(order_line_id="L1", quantity=1, photos=["https://p/1", photo]),
    )
    with pytest.raises(InvalidRequest) as caught:
        Claim(reason="lost_in_transit", note="never arrived", photos=[photo])
    assert caught.value.field == "photos[0]"


# -- the tax part of a price is no more than the price -----------------------------------------


def test_shipping_tax_included_in_a_smaller_shipping_price_is_refused() -> None:
    with pytest.raises(InvalidPayload) as caught:
        _order(
            taxes_included=True,
            shipping_price=Money("4.00", "EUR"),
            shipping_tax=Money("5.00", "EUR"),
        )
    assert (caught.value.field, caught.value.value) == ("shipping_tax", Money("5.00", "EUR"))
    with pytest.raises(InvalidPayload):
        _order(taxes_included=True, shipping_tax=Money("0.01", "EUR"))
    # Added on top (prices without tax), the tax may be more than the price.
    order = _order(shipping_price=Money("4.00", "EUR"), shipping_tax=Money("5.00", "EUR"))
    assert order.charged_total == Money("19.00", "EUR")


# -- the Shopify adapter reads ids and connections it was not given as such ------------------


def _shopify(answers: dict[str, object]) -> ShopifyPlatformReturns:
    """The adapter, over a transport that answers each operation (the query's name) with
    ``{"data": answers[name]}``."""

    def answer(request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)["query"]
        name = next(name for name in answers if f" {name}(" in query)
        return httpx.Response(200, content=json.dumps({"data": answers[name]}).encode())

    client = httpx.Client(transport=httpx.MockTransport(answer))
    return ShopifyPlatformReturns({"shop-a": ShopifyShop("a.myshopify.com", "t")}, client=client)


def _return_node(**changes: object) -> dict[str, object]:
    line = {
        "id": "gid://shopify/ReturnLineItem/1",
        "quantity": 1,
        "processedQuantity": 0,
        "unprocessedQuantity": 1,
        "fulfillmentLineItem": {"id": "gid://shopify/FulfillmentLineItem/1"},
    }
    node: dict[str, object] = {
        "id": "gid://shopify/Return/1",
        "status": "OPEN",
        "order": {"id": "gid://shopify/Order/1"},
        "returnLineItems": {"nodes": [line]},
    }
    return {**node, **changes}


def _port_error(operation: str, call: Callable[[], object]) -> PortError:
    with pytest.raises(PortError) as refused:
        call()
    assert (refused.value.operation, refused.value.retryable) == (operation, False)
    return refused.value


@pytest.mark.parametrize("value", [None, 7, [], ""])
def test_a_return_id_that_is_no_id_is_a_port_error(value: object) -> None:
    """Before: ``null`` became a PlatformReturn whose id was None; a list, a TypeError."""
    platform = _shopify({"ReturnflowReturn": {"return": _return_node(id=value)}})
    _port_error("get_return", lambda: platform.get_return("shop-a", "gid://shopify/Return/1"))


@pytest.mark.parametrize("value", [None, 12])
def test_a_fulfillment_line_id_that_is_no_id_is_a_port_error_not_its_text(value: object) -> None:
    """Before: ``str()`` of it, ``"None"``, was the order line a ``returns/update`` named."""
    line = {"id": "r1", "quantity": 1, "fulfillmentLineItem": {"id": value}}
    node = _return_node(returnLineItems={"nodes": [line]})
    platform = _shopify({"ReturnflowReturn": {"return": node}})
    _port_error("lines_now", lambda: platform.lines_now("shop-a", "gid://shopify/Return/1"))


@pytest.mark.parametrize(
    "node",
    [5, _return_node(returnLineItems={"nodes": 5}), _return_node(returnLineItems="x")],
)
def test_a_calculation_read_of_an_odd_shape_is_a_port_error(node: object) -> None:
    """Before: AttributeError, TypeError ('int' object is not iterable)."""
    platform = _shopify({"ReturnflowReturnForCalculate": {"return": node}})
    _port_error("calculate", lambda: platform.calculate("shop-a", "gid://shopify/Return/1"))


@pytest.mark.parametrize("refund", [{"id": None}, {}, {"id": ["r"]}])
def test_a_refund_that_is_no_id_after_processing_is_a_port_error(refund: object) -> None:
    """Before: a refund id of ``null`` went into the return's refund ids and the write-back
    failed joining them (TypeError out of ``service.handle``); a missing one, a KeyError."""
    order = {
        "id": "gid://shopify/Order/1",
        "transactions": [{"id": "t1", "kind": "SALE", "status": "SUCCESS"}],
    }
    before = _return_node(order=order, refunds={"nodes": []})
    after = _return_node(refunds={"nodes": [refund]})
    platform = _shopify(
        {
            "ReturnflowReturnForProcess": {"return": before},
            "ReturnflowReturnProcess": {"returnProcess": {"return": after, "userErrors": []}},
        }
    )
    _port_error(
        "process",
        lambda: platform.process(
            "shop-a",
            "gid://shopify/Return/1",
            [Quantity("gid://shopify/ReturnLineItem/1", 1)],
            refund=Money("10.00", "EUR"),
            idempotency_key="k1",
        ),
    )


def test_python_dash_m_returnflow_runs_the_command() -> None:
    """Before: ``No module named returnflow.__main__`` (exit 1) from a checkout on
    PYTHONPATH, where the ``returnflow`` script is not installed."""
    source = str(Path(returnflow.__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-m", "returnflow", "--version"],
        env={**os.environ, "PYTHONPATH": source},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.split()[0]) == (0, "returnflow"), done.stderr


# -- a stored return in a state the statechart does not have -----------------------------------


@pytest.mark.parametrize("field", ["status", "exchange_status"])
def test_a_stored_state_the_chart_does_not_have_is_an_unreadable_record(
    tmp_path: Path, field: str
) -> None:
    """Before: the record read, then its timeline and its next fact were a KeyError from
    the transition table."""
    path = str(tmp_path / "returns.db")
    harness = Harness(store=SqliteStore(path))
    harness.ports.commerce.add_order(make_order("s", "1001"))
    made = harness.service.request(_request())
    with sqlite3.connect(path) as connection:
        (body,) = connection.execute("SELECT body FROM returns").fetchone()
        connection.execute(
            "UPDATE returns SET body = ?", (json.dumps({**json.loads(body), field: "mislaid"}),)
        )
    connection.close()
    service = Harness(store=SqliteStore(path)).service
    fact = CarrierUpdate(shop="s", return_id=made.id, event_id="e1", status="RETURN_PICKED_UP")
    for call in (
        lambda: service.get("s", made.id),
        lambda: service.render_timeline("s", made.id),
        lambda: service.handle(fact),
    ):
        with pytest.raises(UnreadableRecord) as caught:
            call()
        assert field in str(caught.value)
        assert "mislaid" in str(caught.value)


# -- webhook signatures ------------------------------------------------------------------------


@pytest.mark.parametrize("header", [5, ["c2lnbmF0dXJl"], {"sig": 1}])
def test_a_signature_header_of_another_type_is_not_verified(header: object) -> None:
    """Before: a TypeError from base64 (a framework's list of the header's values)."""
    assert webhooks.verify(b"{}", header, "s3cret") is False  # type: ignore[arg-type]


def test_a_body_that_is_text_or_a_secret_of_another_type_is_refused_by_name() -> None:
    """Before: TypeError ('Strings must be encoded before hashing', 'expected bytes')."""
    signature = webhooks.sign(b"{}", "s3cret")
    with pytest.raises(InvalidPayload) as caught:
        webhooks.verify("{}", signature, "s3cret")  # type: ignore[arg-type]
    assert caught.value.field == "body"
    with pytest.raises(ConfigurationError) as refused:
        webhooks.sign(b"{}", 12345)  # type: ignore[arg-type]
    assert refused.value.field == "secret"
    assert "12345" not in str(refused.value)
    assert webhooks.verify(bytearray(b"{}"), signature, b"s3cret")


# -- the testing kit's scripts -----------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        lambda fake: fake.fail("cancel_return", times=1.5),
        lambda fake: fake.fail("cancel_return", times="2"),
        lambda fake: fake.fail("cancel_return", error="boom"),
        lambda fake: fake.lose_answers("cancel_return", times=2.0),
        lambda fake: fake.delay(0.01, times=2.5),
        lambda fake: fake.fail_rate("0.5", seed=1),
        lambda fake: fake.fail_rate(0.5, seed=None),
    ],
)
def test_a_script_the_fakes_cannot_play_is_refused_when_given(
    script: Callable[[FakeWarehouse], None],
) -> None:
    """Before: accepted (a fraction of a time; an error that is no exception, raised as a
    TypeError later, inside a delivery; failures drawn from the clock, not reproducible) or
    a TypeError comparing text with a number."""
    with pytest.raises(ValueError, match="must be"):
        script(FakeWarehouse())
