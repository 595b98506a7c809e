"""Counted, not guessed: the write transactions and statements one whole return makes.

A whole return (as in ``benchmarks/lifecycle.py``): a refund of one unit is requested and
auto-approved (the label and the warehouse return are dispatched), the carrier picks it up
and delivers it, the warehouse receives it (the refund is dispatched, the return closes).
Counts are deterministic, so they are asserted; what they cost in time is measured by the
benchmark, never here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

SHOP = "count-shop"
ORDERED = datetime(2026, 1, 10, tzinfo=timezone.utc)


def order(order_id: str) -> OrderSnapshot:
    price = Money("12.00", "EUR")
    line = OrderLine(id="L1", sku="MUG", variant_id="mug", quantity=1, unit_price=price)
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=ORDERED,
        currency="EUR",
        fulfilled_at=ORDERED,
        lines=[line],
    )


def whole_return(harness: Harness, order_id: str) -> str:
    """Request, pick-up, delivery and receipt of one return, every effect delivered."""
    service = harness.service
    request = ReturnRequest(shop=SHOP, order_id=order_id, lines=[RequestLine("L1", 1)])
    rid = service.request(request).id
    for status in (CarrierStatus.PICKED_UP, CarrierStatus.DELIVERED):
        event = CarrierUpdate(
            shop=SHOP, return_id=rid, event_id=f"{rid}-{status.name}", status=status
        )
        service.handle(event)
    received = [ReceivedLine(line_id="L1", quantity=1)]
    service.handle(
        WarehouseReceipt(shop=SHOP, return_id=rid, event_id=f"{rid}-rcv", lines=received)
    )
    return rid


@pytest.fixture
def sqlite_harness(tmp_path: Path) -> Iterator[Harness]:
    store = SqliteStore(tmp_path / "returns.db")
    harness = Harness(store=store)
    for order_id in ("warm", "counted"):
        harness.ports.commerce.add_order(order(order_id))
    whole_return(harness, "warm")  # the connection opened, the schema read
    yield harness
    store.close()


def counted_sqlite(harness: Harness) -> tuple[str, list[str]]:
    """The counted return's id and every statement it sent to SQLite."""
    store = harness.store
    assert isinstance(store, SqliteStore)
    statements: list[str] = []
    connection = store._connection()  # this thread's connection: the one the service uses
    connection.set_trace_callback(statements.append)
    try:
        rid = whole_return(harness, "counted")
    finally:
        connection.set_trace_callback(None)
    return rid, statements


def writes(statements: list[str]) -> int:
    return sum(1 for s in statements if s.lstrip().upper().startswith("BEGIN IMMEDIATE"))


def assert_whole_and_once(harness: Harness, rid: str) -> None:
    """The return closed, every effect done, each port called once per key."""
    record = harness.store.get(SHOP, rid)
    assert record.state == ("closed", "no_exchange")
    outbox = harness.store.outbox(SHOP, rid)
    assert len(outbox) == 12
    assert {entry.status for entry in outbox} == {"done"}
    assert all(entry.attempts == 1 for entry in outbox)
    published = [entry for entry in outbox if entry.effect.kind == "publish"]
    assert len(harness.ports.events.topics_for(rid)) == len(published) == 8


def test_a_whole_return_makes_at_most_10_sqlite_write_transactions(
    sqlite_harness: Harness,
) -> None:
    # 4 commands or facts, each claiming what it planned: a commit plans its port calls
    # before its messages and events, so its claim hands out the label or the refund first
    # and it is delivered with nothing before it left to write (a process killed inside that
    # call leaves everything before it recorded and only that effect claimed, which the
    # durability tests require); 2 writes of an answer that changes the return and plans
    # more (the label, the refund), each claiming what comes next; and a write per step of
    # what was delivered last (the request's carries the warehouse return's answer).
    rid, statements = counted_sqlite(sqlite_harness)
    assert_whole_and_once(sqlite_harness, rid)
    assert writes(statements) <= 10, statements
    # 67 statements: each commit writes its return's row without reading it first (the
    # store holds the version it expects), and its new history entries, its effects and its
    # attempts a statement each; a claim of one return reads its pending effects whole in
    # one statement, its head and the run behind it; a commit claiming its own return reads
    # the effects pending before its own, and a head among its own is leased by their
    # INSERT (4 such here); the order's returns are listed in one statement, no read
    # transaction, when the store built every one of them (none here). 71 when each such
    # head was leased by an UPDATE after it, 79 when the run was a read of its own and the
    # listing a transaction, 103 before that.
    assert len(statements) == 67, statements


def test_delivering_critical_effects_together_makes_at_most_10_write_transactions(
    sqlite_harness: Harness,
) -> None:
    sqlite_harness.service.dispatcher.critical_alone = False
    rid, statements = counted_sqlite(sqlite_harness)
    assert_whole_and_once(sqlite_harness, rid)
    assert writes(statements) <= 10, statements
    assert len(statements) == 63, statements  # 69 before heads were leased by their INSERT


# -- PostgreSQL: statements the server executes, read from libpq's trace ------------------------


@pytest.fixture
def postgres_harness(tmp_path: Path) -> Iterator[tuple[Harness, Path]]:
    import postgres_support
    from returnflow.stores.postgres import PostgresStore

    store = PostgresStore(postgres_support.cluster_or_skip().empty_database())
    harness = Harness(store=store)
    for order_id in ("warm", "counted"):
        harness.ports.commerce.add_order(order(order_id))
    whole_return(harness, "warm")
    yield harness, tmp_path / "libpq.trace"
    store.close()


def counted_postgres(harness: Harness, trace: Path) -> tuple[str, int]:
    """The counted return's id and the statements the server executed for it (``Execute``
    messages of the extended protocol and ``Query`` messages of the simple one, ``BEGIN``
    and ``COMMIT`` included), from the trace of every connection the store used."""
    from psycopg import pq

    from returnflow.stores.postgres import PostgresStore

    store = harness.store
    assert isinstance(store, PostgresStore)
    borrow = store._pool.connection
    traced: list[Any] = []

    @contextlib.contextmanager
    def tracing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with borrow(*args, **kwargs) as connection:
            if connection not in traced:
                connection.pgconn.trace(out.fileno())
                connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
                traced.append(connection)
            yield connection

    with trace.open("w") as out:
        store._pool.connection = tracing  # type: ignore[method-assign]
        try:
            rid = whole_return(harness, "counted")
        finally:
            del store._pool.connection
            for connection in traced:
                connection.pgconn.untrace()
    sent = [line.split("\t") for line in trace.read_text().splitlines()]
    return rid, sum(1 for parts in sent if parts[0] == "F" and parts[2] in ("Execute", "Query"))


def test_a_whole_return_makes_at_most_36_postgres_statements(
    postgres_harness: tuple[Harness, Path],
) -> None:
    harness, trace = postgres_harness
    rid, statements = counted_postgres(harness, trace)
    assert_whole_and_once(harness, rid)
    # 4 reads of the return (the request's: the order's returns); the 4 commands or facts
    # and the 3 writes of an answer (the label's, the refund's, and the warehouse return's
    # with the events delivered after it), each BEGIN, one statement writing the returns,
    # history, inbox, outbox, units and attempts rows, the claim, COMMIT; 3 writes of
    # deliveries alone, one statement each with no transaction around it; and the outbox the
    # refund's answer reads. An inbound fact is not looked up before it is decided: its
    # commit refuses a key already seen.
    assert statements <= 36


def test_critical_effects_together_make_at_most_33_postgres_statements(
    postgres_harness: tuple[Harness, Path],
) -> None:
    harness, trace = postgres_harness
    harness.service.dispatcher.critical_alone = False
    rid, statements = counted_postgres(harness, trace)
    assert_whole_and_once(harness, rid)
    assert statements <= 33
