"""Quantities and tracking numbers that come in are bounded where they enter: a platform
fact's line (``returns/update``), a label attached on the platform
(``reverse_deliveries/attach_deliverable``), a carrier's label, a warehouse receipt, an
imported return, an order and a request. An out-of-range one is refused with a typed error
naming the field and the value, and nothing is stored (it would otherwise reach a person as
"99999999999999999997 added")."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest

import test_platform_changes as platform_changes
from returnflow import (
    InvalidPayload,
    InvalidQuantity,
    Money,
    ReceivedLine,
    RequestLine,
    WarehouseReceipt,
)
from returnflow.domain._fields import MAX_QUANTITY, MAX_TRACKING, MAX_URL
from returnflow.domain.external import ExternalReturn
from returnflow.domain.inbound import PlatformReturnEvent
from returnflow.domain.model import ExternalRefs, ReturnRequest
from returnflow.domain.order import OrderLine
from returnflow.ports.carrier import Label
from returnflow.ports.store import Commit
from returnflow.serialization import external_return_from_dict, request_from_dict, structure
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakeCarrier, FakePorts, Harness
from returnflow.testing.contract import make_record, next_version

HUGE = 99999999999999999997
LONG = "1Z" + "9" * MAX_TRACKING
URL = "https://labels.example/"
LONG_URL = URL + "x" * MAX_URL


def _refused(error: pytest.ExceptionInfo[Any], field: str, value: object) -> None:
    assert error.value.field == field
    assert error.value.value == value
    assert field in str(error.value)


def test_a_platform_update_with_a_line_beyond_the_bound_is_refused_and_stores_nothing() -> None:
    made = platform_changes.harness()
    opened = platform_changes.request(made, RequestLine("L2", 2))
    before = made.service.get(platform_changes.SHOP, opened.id)
    data = {
        "shop": platform_changes.SHOP,
        "return_id": opened.id,
        "event_id": "u1",
        "topic": "returns/update",
        "lines": [{"order_line_id": "L2", "quantity": HUGE}],
    }
    with pytest.raises(InvalidPayload) as refused:
        made.service.handle(structure(data, PlatformReturnEvent))
    _refused(refused, "lines[0].quantity", HUGE)
    assert f"at most {MAX_QUANTITY}" in str(refused.value)
    assert made.service.get(platform_changes.SHOP, opened.id) == before
    assert platform_changes.update(made, opened.id, "u2", L2=MAX_QUANTITY) != ""  # the bound


def test_a_label_attached_with_a_tracking_number_beyond_the_bound_is_refused() -> None:
    made = platform_changes.harness(platform_changes.NO_LABEL)
    opened = platform_changes.request(made, RequestLine("L2", 1))
    before = made.service.get(platform_changes.SHOP, opened.id)
    with pytest.raises(InvalidPayload) as refused:
        platform_changes.attached(made, opened.id, "d1", LONG)
    _refused(refused, "tracking_number", LONG)
    assert made.service.get(platform_changes.SHOP, opened.id) == before
    platform_changes.attached(made, opened.id, "d2", LONG[:MAX_TRACKING])
    assert (
        made.service.get(platform_changes.SHOP, opened.id).refs.tracking_number
        == (LONG[:MAX_TRACKING])
    )


def _attach(made: Harness, return_id: str, event_id: str, label_url: object) -> str:
    """A label attached on the platform, as its webhook's data: only a URL."""
    data = {
        "shop": platform_changes.SHOP,
        "return_id": return_id,
        "event_id": event_id,
        "topic": "reverse_deliveries/attach_deliverable",
        "label_url": label_url,
    }
    return made.service.handle(structure(data, PlatformReturnEvent)).status


@pytest.mark.parametrize(
    "label_url", [LONG_URL, 12345, b"https://labels.example/1.pdf", ["https://x"], "", " "]
)
def test_a_label_attached_with_a_url_beyond_the_bound_or_not_text_is_refused(
    label_url: object,
) -> None:
    made = platform_changes.harness(platform_changes.NO_LABEL)
    opened = platform_changes.request(made, RequestLine("L2", 1))
    before = made.service.get(platform_changes.SHOP, opened.id)
    with pytest.raises(InvalidPayload) as refused:
        _attach(made, opened.id, "d1", label_url)
    _refused(refused, "label_url", label_url)
    assert len(str(refused.value)) < 400  # the value abridged
    assert made.service.get(platform_changes.SHOP, opened.id) == before
    bound = LONG_URL[:MAX_URL]
    _attach(made, opened.id, "d2", bound)
    assert made.service.get(platform_changes.SHOP, opened.id).refs.label_url == bound


class _BadLabels(FakeCarrier):
    """A carrier whose labels carry the tracking number or URL given instead of their own."""

    def __init__(self, **given: object) -> None:
        super().__init__()
        self.given = given

    def create_label(self, *args: Any, **kwargs: Any) -> Label:
        return attrs.evolve(super().create_label(*args, **kwargs), **self.given)


def _label_refused(carrier: FakeCarrier, field: str) -> None:
    """A return whose carrier gives a label with a bad ``field``: its create_label effect
    fails with InvalidPayload naming the field, and nothing of the label is written."""
    made = Harness(ports=FakePorts(carrier=carrier))
    made.ports.commerce.add_order(
        platform_changes.harness().ports.commerce.get_order(
            platform_changes.SHOP, platform_changes.ORDER_ID
        )
    )
    opened = made.service.request(
        ReturnRequest(
            shop=platform_changes.SHOP,
            order_id=platform_changes.ORDER_ID,
            lines=[RequestLine("L2", 1)],
        )
    )
    made.service.dispatch_pending()
    record = made.service.get(platform_changes.SHOP, opened.id)
    assert (record.refs.tracking_number, record.refs.label_url) == (None, None)
    written = [entry.payload for entry in record.history]
    assert not [payload for payload in written if {"tracking", "label_url"} & set(payload)]
    (label,) = [
        entry
        for entry in made.store.outbox(platform_changes.SHOP, opened.id)
        if entry.effect.kind == "create_label"
    ]
    assert label.status != "done"
    assert label.last_error is not None
    assert "InvalidPayload" in label.last_error
    assert field in label.last_error


@pytest.mark.parametrize("url", [LONG_URL, 12345, None])
def test_a_carriers_label_url_beyond_the_bound_or_not_text_is_refused_and_not_written(
    url: object,
) -> None:
    _label_refused(_BadLabels(label_url=url), "label_url")


@pytest.mark.parametrize("url", [LONG_URL, 12345, "", " ", "https://qr.example/\x00"])
def test_a_carriers_drop_off_qr_code_url_beyond_the_bound_or_not_text_is_refused(
    url: object,
) -> None:
    """The drop-off QR code comes with the label, as its URL does: the same bound (it would
    otherwise be kept in the label message's context, however long)."""
    _label_refused(_BadLabels(qr_code_url=url), "qr_code_url")


def test_a_carriers_tracking_number_beyond_the_bound_is_refused_and_not_written() -> None:
    _label_refused(_BadLabels(tracking_number=LONG), "tracking_number")


def test_a_warehouse_receipt_beyond_the_bound_is_refused() -> None:
    with pytest.raises(InvalidPayload) as refused:
        ReceivedLine(line_id="L1", quantity=HUGE)
    _refused(refused, "quantity", HUGE)
    data = {
        "shop": "s",
        "return_id": "R1",
        "event_id": "w1",
        "lines": [{"line_id": "L1", "quantity": HUGE}],
    }
    with pytest.raises(InvalidPayload) as refused:
        structure(data, WarehouseReceipt)
    _refused(refused, "lines[0].quantity", HUGE)
    assert ReceivedLine(line_id="L1", quantity=MAX_QUANTITY).quantity == MAX_QUANTITY


def test_an_imported_line_beyond_the_bound_is_refused() -> None:
    data = {
        "source": "loop",
        "external_id": "X1",
        "shop": "s",
        "order_id": "1001",
        "status": "open",
        "created_at": "2026-01-15T12:00:00+00:00",
        "updated_at": "2026-01-15T12:00:00+00:00",
        "lines": [{"order_line_id": "L1", "quantity": HUGE}],
    }
    with pytest.raises(InvalidPayload) as refused:
        external_return_from_dict(data)
    _refused(refused, "lines[0].quantity", HUGE)
    data["lines"] = [{"order_line_id": "L1", "quantity": MAX_QUANTITY}]
    assert isinstance(external_return_from_dict(data), ExternalReturn)


@pytest.mark.parametrize("quantity", [HUGE, MAX_QUANTITY + 1])
def test_an_order_line_and_a_request_beyond_the_bound_are_refused(quantity: int) -> None:
    with pytest.raises(InvalidQuantity) as refused:
        OrderLine(id="L1", sku="S", variant_id="v", quantity=quantity, unit_price=Money("1", "EUR"))
    _refused(refused, "quantity", quantity)
    data = {"shop": "s", "order_id": "1", "lines": [{"order_line_id": "L1", "quantity": quantity}]}
    with pytest.raises(InvalidQuantity) as refused:
        request_from_dict(data)
    _refused(refused, "lines[0].quantity", quantity)


@pytest.mark.parametrize("url", [LONG_URL, 12345, "", " ", "https://x/\x00"])
@pytest.mark.parametrize("field", ["label_url", "qr_code_url", "refs.label_url"])
def test_a_label_url_that_is_no_url_is_refused_by_the_model_itself(url: object, field: str) -> None:
    # Not only where it enters: a Label or ExternalRefs made anywhere holds a URL or nothing.
    def make() -> object:
        if field == "refs.label_url":
            return ExternalRefs(label_url=url)  # type: ignore[arg-type]
        return Label(**{"tracking_number": "1Z1", "label_url": URL, field: url})

    with pytest.raises(InvalidPayload) as refused:
        make()
    _refused(refused, field.removeprefix("refs."), url)
    assert len(str(refused.value)) < 400  # the value abridged
    assert ExternalRefs(label_url=LONG_URL[:MAX_URL]).label_url == LONG_URL[:MAX_URL]


def test_a_label_whose_tracking_number_is_no_tracking_number_is_refused() -> None:
    with pytest.raises(InvalidPayload) as refused:
        Label(tracking_number=LONG, label_url=URL)
    _refused(refused, "tracking_number", LONG)


def test_a_stored_return_with_a_label_url_from_before_the_bound_still_reads_and_changes(
    tmp_path: Path,
) -> None:
    # A URL longer than the bound, written before there was one, is read back as it was:
    # refusing it would make the return unreadable, and a change to it impossible.
    path = tmp_path / "returns.db"
    store = SqliteStore(path)
    record = attrs.evolve(make_record("shop-a", "R1"), refs=ExternalRefs(label_url=URL))
    store.commit(Commit(records=((record, 0),)))
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        body = json.loads(raw.execute("SELECT body FROM returns").fetchone()[0])
        body["refs"]["label_url"] = LONG_URL
        raw.execute("UPDATE returns SET body = ?", (json.dumps(body),))
    store = SqliteStore(path)
    try:
        old = store.get("shop-a", "R1")
        assert old.refs.label_url == LONG_URL
        changed = next_version(old, refs=attrs.evolve(old.refs, refund_ids=("rf-1",)))
        store.commit(Commit(records=((changed, old.version),)))
    finally:
        store.close()
    store = SqliteStore(path)
    try:
        again = store.get("shop-a", "R1")
        assert (again.refs.label_url, again.refs.refund_ids) == (LONG_URL, ("rf-1",))
    finally:
        store.close()
