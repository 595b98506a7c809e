"""Text that comes in is what every store gives back: free text (a line's note, a customer's
note, a claim's evidence, a warehouse's note, a product's title) is bounded where it enters,
and text of a subclass of ``str`` is refused there, both with a typed error naming the field
and the value (abridged in the message), nothing stored."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest

from returnflow import (
    Claim,
    InvalidPayload,
    InvalidRequest,
    Money,
    ReceivedLine,
    RequestLine,
    ValidationError,
)
from returnflow.domain._fields import MAX_TEXT
from returnflow.domain.external import ExternalLine, ExternalReturn
from returnflow.domain.model import ReturnRequest
from returnflow.domain.order import OrderLine
from returnflow.serialization import request_from_dict
from returnflow.testing import Harness
from returnflow.testing.contract import make_record

NOW = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)


def _external(**given: Any) -> ExternalReturn:
    line = given.pop("line", {})
    return ExternalReturn(
        source="loop",
        external_id="X1",
        shop="s",
        order_id="1001",
        created_at=NOW,
        updated_at=NOW,
        lines=[ExternalLine(order_line_id="L1", quantity=1, **line)],
        **given,
    )


FREE_TEXT: dict[str, tuple[str, type[ValidationError], Callable[[object], object]]] = {
    "request-line-note": ("note", InvalidRequest, lambda t: RequestLine("L1", 1, note=t)),
    "customer-note": (
        "customer_note",
        InvalidRequest,
        lambda t: ReturnRequest(
            shop="s", order_id="1", lines=[RequestLine("L1", 1)], customer_note=t
        ),
    ),
    "requested-by": (
        "requested_by",
        InvalidRequest,
        lambda t: ReturnRequest(
            shop="s", order_id="1", lines=[RequestLine("L1", 1)], requested_by=t
        ),
    ),
    "claim-note": ("note", InvalidRequest, lambda t: Claim(reason="wrong_item", note=t)),
    "received-note": (
        "note",
        InvalidPayload,
        lambda t: ReceivedLine(line_id="L1", quantity=1, note=t),
    ),
    "imported-line-note": ("note", InvalidPayload, lambda t: _external(line={"note": t})),
    "imported-customer-note": (
        "customer_note",
        InvalidPayload,
        lambda t: _external(customer_note=t),
    ),
    "product-title": (
        "title",
        InvalidPayload,
        lambda t: OrderLine(
            id="L1", sku="S", variant_id="v", quantity=1, unit_price=Money("1", "EUR"), title=t
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(FREE_TEXT))
def test_free_text_beyond_the_bound_is_refused_naming_the_field(case: str) -> None:
    field, error, build = FREE_TEXT[case]
    long = "x" * (MAX_TEXT + 1)
    with pytest.raises(error) as refused:
        build(long)
    assert (refused.value.field, refused.value.value) == (field, long)
    assert f"at most {MAX_TEXT} characters" in str(refused.value)
    assert len(str(refused.value)) < 400  # the value abridged
    build("x" * MAX_TEXT)  # the bound itself is taken


def test_a_request_with_a_note_beyond_the_bound_stores_nothing() -> None:
    made = Harness()
    data = {
        "shop": "s",
        "order_id": "1",
        "lines": [{"order_line_id": "L1", "quantity": 1, "note": "x" * (MAX_TEXT + 1)}],
    }
    with pytest.raises(InvalidRequest) as refused:
        made.service.request(request_from_dict(data))
    assert refused.value.field == "lines[0].note"
    assert list(made.store.list("s")) == []


class ShopId(str):
    """A host's own id type."""


class Shop(str, enum.Enum):
    A = "shop-a"


@pytest.mark.parametrize("shop", [ShopId("shop-a"), Shop.A], ids=["subclass", "str-enum"])
def test_text_of_a_str_subclass_is_refused_where_it_enters(shop: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        ReturnRequest(shop=shop, order_id="1", lines=[RequestLine("L1", 1)])
    assert refused.value.field == "shop"
    assert f"not {type(shop).__name__}" in str(refused.value)
    with pytest.raises(InvalidRequest) as refused:
        RequestLine("L1", 1, note=ShopId("a note"))
    assert refused.value.field == "note"
    with pytest.raises(InvalidPayload) as refused:
        ReceivedLine(line_id=ShopId("L1"), quantity=1)
    assert refused.value.field == "line_id"
    assert (
        type(ReturnRequest(shop="shop-a", order_id="1", lines=[RequestLine("L1", 1)]).shop) is str
    )


@pytest.mark.parametrize("field", ["shop", "id", "order_id"])
def test_a_record_keyed_by_a_str_subclass_is_refused_before_any_store_keeps_it(
    field: str,
) -> None:
    # A store kept the committed object (the subclass) and read back a str after a restart:
    # one return, two types of id.
    record = make_record("shop-a", "R1")
    with pytest.raises(InvalidRequest) as refused:
        attrs.evolve(record, **{field: ShopId(getattr(record, field))})
    assert refused.value.field == field
    with pytest.raises(InvalidRequest):
        make_record(Shop.A, "R1")
