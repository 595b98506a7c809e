"""Builders and fixtures several test modules share, so that each is written once.

* Orders and harnesses: :func:`order_line`, :func:`order`, :func:`harness_with`.
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

from returnflow import _bodies
from returnflow.domain.model import ReturnRecord
from returnflow.domain.money import Money
from returnflow.domain.order import OrderLine, OrderSnapshot
from returnflow.serialization import converter
from returnflow.testing import Harness

__all__ = [
    "FAST",
    "ORDERED",
    "STORED",
    "harness_with",
    "insert_stored_postgres",
    "insert_stored_sqlite",
    "order",
    "order_line",
    "pg_dsn",
    "plain_body",
    "plain_text",
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
    shop: str, order_id: str, lines: Iterable[OrderLine], email: str = "ana@example.com"
) -> OrderSnapshot:
    """The order of ``lines`` in EUR by the customer of ``email``, placed and fulfilled at
    :data:`ORDERED`."""
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=ORDERED,
        fulfilled_at=ORDERED,
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
