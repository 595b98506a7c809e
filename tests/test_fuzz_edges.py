"""Hostile values at every JSON entry point and at the store: only a ``ReturnflowError``
ever escapes, and a refusal leaves the stored rows as they were.

Documents start valid (a return request, carrier and warehouse facts, an external return,
an order) and get one field replaced by a hostile value, removed, or an unknown field added;
the values are what breaks lower layers: huge and odd numbers, floats, NaN, text with NUL or
lone surrogates, naive, out-of-range and malformed times, nested junk.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from returnflow import (
    CarrierUpdate,
    ExternalReturn,
    Money,
    OrderSnapshot,
    ReturnflowError,
    ReturnPolicy,
    ReturnRequest,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.demo.scenarios import SHOP, order_1001
from returnflow.ports.store import Commit, InboundKey
from returnflow.serialization import structure, unstructure
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness
from returnflow.testing.contract import make_record
from returnflow.webhooks import sign, verify

# -- hostile values -----------------------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(codec=None, categories=None),  # every code point, surrogates too
    max_size=12,
)
_SPECIAL_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "x\udfffy",
        "1e27",
        "-1e999999999",
        "NaN",
        "Infinity",
        "sNaN",
        "0.001",
        "1" * 40,
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "Z",
        "EUR",
        "XXX",
        "refund",
        "exchange",
        "DELIVERED",
    ]
)
_NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 2**63, -(2**63) - 1]),
    st.builds(pow, st.just(10), st.just(5000)),  # more digits than int() prints
    st.floats(allow_nan=True, allow_infinity=True),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXT, _SPECIAL_TEXT)
HOSTILE = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)),
    max_leaves=6,
)

# -- valid documents, then one field made hostile -----------------------------------------------

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def _documents() -> dict[str, tuple[type[Any], dict[str, Any]]]:
    return {
        "request": (
            ReturnRequest,
            {
                "shop": SHOP,
                "order_id": "1001",
                "customer_note": "too small",
                "lines": [
                    {
                        "order_line_id": "L1",
                        "quantity": 1,
                        "reason": "SIZE_TOO_SMALL",
                        "outcome": {"kind": "exchange", "variant_id": "tee-l"},
                    },
                    {"order_line_id": "L2", "quantity": 2, "outcome": "store_credit"},
                ],
            },
        ),
        "carrier": (
            CarrierUpdate,
            {
                "shop": SHOP,
                "return_id": "R0001",
                "event_id": "scan-1",
                "status": "DELIVERED",
                "occurred_at": "2026-01-16T08:00:00Z",
            },
        ),
        "receipt": (
            WarehouseReceipt,
            {
                "shop": SHOP,
                "return_id": "R0001",
                "event_id": "wms-1",
                "lines": [{"line_id": "L1", "quantity": 1, "qc": "PASS", "note": "ok"}],
            },
        ),
        "finished": (
            WarehouseFinished,
            {"shop": SHOP, "return_id": "R0001", "event_id": "wms-2"},
        ),
        "external": (
            ExternalReturn,
            {
                "source": "loop",
                "external_id": "52393555",
                "shop": SHOP,
                "order_id": "1001",
                "created_at": "2026-01-12T09:00:00Z",
                "updated_at": "2026-01-12T09:05:00+00:00",
                "lines": [{"order_line_id": "L1", "quantity": 1, "outcome": "refund"}],
            },
        ),
        "order": (OrderSnapshot, unstructure(order_1001())),
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a document (dict keys and list indexes)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


@st.composite
def hostile_documents(draw: st.DrawFn) -> tuple[str, type[Any], Any]:
    name = draw(st.sampled_from(sorted(_documents())))
    cls, document = _documents()[name]
    document = copy.deepcopy(document)
    how = draw(st.sampled_from(["replace", "replace", "replace", "drop", "extra", "whole"]))
    if how == "whole":
        return name, cls, draw(HOSTILE)
    path = draw(st.sampled_from(list(_paths(document))))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if how == "replace":
        parent[path[-1]] = draw(HOSTILE)
    elif how == "drop":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(_TEXT)] = draw(HOSTILE)
    return name, cls, document


# -- the stored rows ----------------------------------------------------------------------------


def rows(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as the file holds them."""
    with contextlib.closing(sqlite3.connect(path)) as raw:
        tables = [
            name
            for (name,) in raw.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {table: sorted(raw.execute(f"SELECT * FROM {table}").fetchall()) for table in tables}


@pytest.fixture(scope="module")
def service_on_sqlite() -> Iterator[tuple[Harness, str]]:
    """A service on a SQLite file with one return (R0001) of order 1001 in it."""
    path = os.path.join(tempfile.mkdtemp(), "returns.db")
    store = SqliteStore(path)
    made = Harness(policy=ReturnPolicy(), store=store)
    made.ports.commerce.add_order(order_1001())
    cls, document = _documents()["request"]
    made.service.request(structure(document, cls))
    yield made, path
    store.close()


# -- the properties -----------------------------------------------------------------------------


@settings(max_examples=300)
@given(hostile_documents())
def test_json_entry_points_raise_nothing_but_returnflow_errors(
    case: tuple[str, type[Any], Any],
) -> None:
    _name, cls, document = case
    with contextlib.suppress(ReturnflowError):
        structure(document, cls)


@settings(max_examples=60)
@given(hostile_documents())
def test_hostile_facts_and_requests_change_nothing_when_refused(
    service_on_sqlite: tuple[Harness, str], case: tuple[str, type[Any], Any]
) -> None:
    made, path = service_on_sqlite
    name, cls, document = case
    if name in ("external", "order"):
        return  # these enter through the importer and the platform port (tested apart)
    before = rows(path)
    try:
        value = structure(document, cls)
        if isinstance(value, ReturnRequest):
            made.service.request(value)
        else:
            made.service.handle(value)
    except ReturnflowError:
        assert rows(path) == before
        return


@settings(max_examples=150)
@given(amount=_SCALARS, currency=_SCALARS)
def test_money_from_anything_is_money_or_a_returnflow_error(amount: Any, currency: Any) -> None:
    try:
        money = Money(amount, currency)
    except ReturnflowError:
        return
    assert Money(str(money.amount), money.currency) == money


@settings(max_examples=150)
@given(
    body=st.binary(max_size=64),
    signature=st.one_of(st.none(), _TEXT, _SPECIAL_TEXT, st.binary(max_size=48)),
    secret=st.one_of(st.text(max_size=8), st.binary(max_size=8)),
)
def test_webhook_signatures_answer_true_or_false(body: bytes, signature: Any, secret: Any) -> None:
    with contextlib.suppress(ReturnflowError):
        assert verify(body, signature, secret) in (True, False)
    if secret:  # an empty secret verifies nothing
        assert verify(body, sign(body, secret), secret) is True


_TEXT_FIELDS = ("customer_note", "customer_email", "id", "shop", "order_id")


@settings(max_examples=60)
@given(
    field=st.sampled_from(_TEXT_FIELDS),
    value=st.one_of(_TEXT, _SPECIAL_TEXT),
    event_id=st.one_of(_TEXT, _SPECIAL_TEXT),
)
def test_the_store_keeps_a_record_whole_or_refuses_it_and_keeps_nothing(
    field: str, value: str, event_id: str
) -> None:
    path = os.path.join(tempfile.mkdtemp(), "returns.db")
    store = SqliteStore(path)
    try:
        store.commit(Commit(records=((make_record("shop-a", "R-base"), 0),)))
        before = rows(path)
        record = attrs.evolve(
            make_record("shop-a", "R1", created_at=T0 + timedelta(hours=1)), **{field: value}
        )
        commit = Commit(records=((record, 0),), inbound=InboundKey("shop-a", "src", event_id))
        try:
            store.commit(commit)
        except ReturnflowError:
            assert rows(path) == before
            return
        assert store.get(record.shop, record.id) == record
        fresh = SqliteStore(path)
        try:
            assert fresh.get(record.shop, record.id) == record
            assert fresh.seen(InboundKey("shop-a", "src", event_id))
        finally:
            fresh.close()
    finally:
        store.close()


@settings(max_examples=40)
@given(hostile_documents())
def test_an_import_of_hostile_source_data_reports_it_and_keeps_the_rest(
    service_on_sqlite: tuple[Harness, str], case: tuple[str, type[Any], Any]
) -> None:
    """A source's payload (good or not) goes through the importer: bad data is a failure
    named in the report, never an exception, and only a good return is written."""
    from returnflow import ReturnImporter
    from returnflow.testing import FakeReturnSource

    made, path = service_on_sqlite
    _name, _cls, document = case
    source = FakeReturnSource("loop")
    payload = document if isinstance(document, dict) else {"payload": document}
    source.add_payload(SHOP, "666", payload, updated_at=T0)
    importer = ReturnImporter(made.service, source, shop=SHOP)
    before = rows(path)
    report = importer.import_range(T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert report.count == 1
    if report.failed:
        assert isinstance(report.failed[0].error, ReturnflowError)
        assert rows(path) == before
