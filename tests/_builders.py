"""Builders and fixtures several test modules share, so that each is written once.

* Orders and harnesses: :func:`order_line`, :func:`order`, :func:`harness_with`.
* Native mode's return of a T-shirt and two caps: :func:`tee_and_caps` (the order),
  :func:`native_harness`, :func:`native_with` (one line instead, as :func:`three_at_ten`),
  :func:`platform`, the lines :func:`swap`, :func:`caps` and
  :func:`passed`, the calls :func:`request`, :func:`handed_in` and :func:`receive`, the check
  :func:`closed_without_review`.
* Stored rows: :data:`STORED` (a return's rows as the SQLite store wrote them before the
  fast way), written into a SQLite file or a PostgreSQL database as they were
  (:func:`insert_stored_sqlite`, :func:`insert_stored_postgres`); :func:`plain_text` and
  :func:`plain_body`, the text the stores wrote before the fast way.
* Fixtures (made available to every test module by ``conftest.py``): ``way``, each test run
  the fast way (orjson) and the plain way; ``pg_dsn``, a migrated PostgreSQL database of
  the test's own.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseReceipt,
    _bodies,
)
from returnflow.domain.model import ReturnRecord
from returnflow.domain.money import Money
from returnflow.domain.order import Fulfillment, OrderLine, OrderSnapshot
from returnflow.serialization import converter
from returnflow.testing import Harness
from returnflow.testing.platform_returns import FakePlatformReturns

__all__ = [
    "FAST",
    "NATIVE",
    "ORDERED",
    "ORDER_ID",
    "PLACED",
    "SHOP",
    "STORED",
    "caps",
    "closed_without_review",
    "eur",
    "handed_in",
    "harness_with",
    "insert_stored_postgres",
    "insert_stored_sqlite",
    "native_harness",
    "native_with",
    "order",
    "order_line",
    "passed",
    "pg_dsn",
    "plain_body",
    "plain_text",
    "platform",
    "receive",
    "request",
    "swap",
    "tee_and_caps",
    "three_at_ten",
    "way",
]

# -- orders and harnesses -------------------------------------------------------------------

ORDERED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)
"""When the orders :func:`order` builds were placed and fulfilled."""


def order_line(line_id: str, sku: str, price: str, quantity: int = 1, **more: Any) -> OrderLine:
    """An order line in EUR whose variant id is its SKU in lower case; ``more``: other
    fields (``tags``, ``collections``)."""
    return OrderLine(
        id=line_id,
        sku=sku,
        variant_id=sku.lower(),
        quantity=quantity,
        unit_price=Money(price, "EUR"),
        **more,
    )


def order(
    shop: str,
    order_id: str,
    lines: Iterable[OrderLine],
    email: str = "ana@example.com",
    *,
    at: datetime = ORDERED,
) -> OrderSnapshot:
    """The order of ``lines`` in EUR by the customer of ``email``, placed and fulfilled
    ``at`` (:data:`ORDERED`)."""
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=at,
        fulfilled_at=at,
        currency="EUR",
        customer_email=email,
        lines=list(lines),
    )


def harness_with(
    shop: str, order_ids: Iterable[str], lines: Iterable[OrderLine], **harness: Any
) -> Harness:
    """A :class:`Harness` (``harness``: its fields) whose platform knows an order of ``lines``
    under each of ``order_ids``."""
    made = Harness(**harness)
    lines = tuple(lines)
    for order_id in order_ids:
        made.ports.commerce.add_order(order(shop, order_id, lines))
    return made


# -- native mode: a T-shirt and two caps, returned through the platform's returns ----------

SHOP = "shop-1"
ORDER_ID = "1001"
PLACED = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
"""When :func:`tee_and_caps` was placed and fulfilled."""
NATIVE = ReturnPolicy(platform_mode="native")


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def tee_and_caps() -> OrderSnapshot:
    """Order :data:`ORDER_ID` of :data:`SHOP`: a T-shirt (``L1``, 25.00) and two caps
    (``L2``, 10.00 each), placed at :data:`PLACED`."""
    lines = [order_line("L1", "TEE-M", "25"), order_line("L2", "CAP", "10", 2)]
    return order(SHOP, ORDER_ID, lines, "customer@example.com", at=PLACED)


def native_harness(policy: ReturnPolicy = NATIVE, **harness: Any) -> Harness:
    """A :class:`Harness` under ``policy`` (native mode unless it says; ``harness``: its
    other fields) whose platform knows :func:`tee_and_caps`."""
    made = Harness(policy=policy, **harness)
    made.ports.commerce.add_order(tee_and_caps())
    return made


def three_at_ten(*fulfillments: Fulfillment) -> OrderLine:
    """Line ``L3``: 3 x 10.00 less a 0.01 discount, units paid 10.00, 10.00 and 9.99,
    shipped as ``fulfillments`` say (none: with the order)."""
    return OrderLine(
        id="L3",
        sku="S",
        variant_id="s",
        quantity=3,
        unit_price=eur("10"),
        discount=eur("0.01"),
        fulfillments=fulfillments,
    )


def native_with(ordered: OrderLine, **policy: Any) -> Harness:
    """A native-mode :class:`Harness` (``policy``: the policy's other fields) whose platform
    knows :func:`tee_and_caps` with the one line ``ordered`` instead of its own."""
    made = Harness(policy=ReturnPolicy(platform_mode="native", **policy))
    made.ports.commerce.add_order(attrs.evolve(tee_and_caps(), lines=[ordered]))
    return made


def platform(made: Harness) -> FakePlatformReturns:
    """The harness's platform returns (native mode has them)."""
    assert made.platform_returns is not None
    return made.platform_returns


def swap(price: str, quantity: int = 1) -> RequestLine:
    """The T-shirt for another size priced ``price``."""
    return RequestLine(
        order_line_id="L1",
        quantity=1,
        outcome=Exchange(variant_id="tee-l", unit_price=eur(price), quantity=quantity),
    )


def caps(units: int = 2) -> RequestLine:
    """``units`` caps, refunded."""
    return RequestLine(order_line_id="L2", quantity=units)


def request(made: Harness, *lines: RequestLine) -> str:
    """The id of the return of ``lines`` of :func:`tee_and_caps`, requested."""
    record = made.service.request(ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=lines))
    return record.id


def receive(made: Harness, return_id: str, event_id: str, *lines: ReceivedLine) -> None:
    """The warehouse's receipt ``event_id`` of ``lines``."""
    made.service.handle(
        WarehouseReceipt(shop=SHOP, return_id=return_id, event_id=event_id, lines=lines)
    )


def handed_in(made: Harness, return_id: str, event_id: str = "s1") -> None:
    """The carrier's scan ``event_id``: the parcel picked up (handed in)."""
    made.service.handle(
        CarrierUpdate(
            shop=SHOP, return_id=return_id, event_id=event_id, status=CarrierStatus.PICKED_UP
        )
    )


def closed_without_review(made: Harness, return_id: str) -> ReturnRecord:
    """The return, checked closed with no reason to review it (the figures agreed)."""
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("closed", ())
    return record


def passed(line_id: str, quantity: int = 1, **extra: object) -> ReceivedLine:
    """``quantity`` units of ``line_id`` received (passed QC unless ``extra`` says)."""
    return ReceivedLine(line_id=line_id, quantity=quantity, **extra)  # type: ignore[arg-type]


# -- stored rows ----------------------------------------------------------------------------

STORED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "stored_return_before_fast_bodies.json").read_text()
)
"""A return's ``returns`` row and its three ``history`` rows as the SQLite store wrote them
before the fast way: text outside ASCII, DEL, floats and a number beyond 64 bits in a
payload."""


def _insert(raw: Any, table: str, row: dict[str, Any], mark: str) -> None:
    marks = ", ".join(mark for _ in row)
    raw.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))


def insert_stored_sqlite(path: Path, body: str | None = None) -> None:
    """Write :data:`STORED`'s rows as they are into the SQLite store's file at ``path``
    (``body``: the return row's body instead of its own)."""
    row = dict(STORED["returns"][0])
    row["body"] = row["body"] if body is None else body
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        _insert(raw, "returns", row, "?")
        for entry in STORED["history"]:
            _insert(raw, "history", entry, "?")


def insert_stored_postgres(dsn: str, body: str | None = None) -> None:
    """Write :data:`STORED`'s rows into the PostgreSQL store's database ``dsn`` (its times
    as timestamps; ``body``: the return row's body instead of its own)."""
    import psycopg

    row = dict(STORED["returns"][0])
    row["body"] = row["body"] if body is None else body
    for name in ("created_at", "updated_at", "due_at"):
        row[name] = None if row[name] is None else datetime.fromisoformat(row[name])
    with psycopg.connect(dsn, autocommit=True) as raw:
        _insert(raw, "returns", row, "%s")
        for stored in STORED["history"]:
            _insert(raw, "history", dict(stored, at=datetime.fromisoformat(stored["at"])), "%s")


def plain_text(data: Any) -> str:
    """``data`` as the stores wrote JSON before the fast way."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def plain_body(record: ReturnRecord) -> str:
    """A return's body as the stores wrote it before the fast way."""
    data = converter.unstructure(attrs.evolve(record, history=()))
    del data["history"]
    return plain_text(data)


# -- fixtures -------------------------------------------------------------------------------

FAST = pytest.param(
    True,
    id="fast",
    marks=pytest.mark.skipif(
        not _bodies.fast_available(), reason="orjson (the fast extra) is not installed"
    ),
)


@pytest.fixture(params=[FAST, pytest.param(False, id="plain")])
def way(request: pytest.FixtureRequest) -> Iterator[bool]:
    """The test runs the fast way (``True``) and the plain way (``False``)."""
    previous = _bodies.use_fast(request.param)
    try:
        yield request.param
    finally:
        _bodies.use_fast(previous)


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A PostgreSQL database of the test's own (it may change its schema and settings),
    migrated; skipped without a server or the postgres extra."""
    import postgres_support

    if not postgres_support.required():
        pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    from returnflow.stores.postgres import PostgresStore

    with postgres_support.cluster_or_skip().database() as url:
        PostgresStore(url).close()
        yield url
