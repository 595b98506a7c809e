"""Requests racing for the same unit of an order, from threads or processes; the children of
tests/test_order_boundary.py (a module of its own, so spawned processes can import it)."""

from __future__ import annotations

import threading
import traceback
from datetime import datetime, timezone
from typing import Any

from returnflow import (
    InvalidQuantity,
    Keep,
    Money,
    OrderLine,
    OrderSnapshot,
    OutcomeKind,
    RequestLine,
    ReturnRequest,
)
from returnflow.ports.store import ReturnStore
from returnflow.stores import open_store
from returnflow.testing import Harness

SHOP = "race-shop"
ORDERED = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)


def one_mug(order_id: str) -> OrderSnapshot:
    """An order of one mug at 59.00 EUR, shipped the next day."""
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=ORDERED,
        currency="EUR",
        customer_email="ann@example.com",
        fulfilled_at=datetime(2026, 1, 11, tzinfo=timezone.utc),
        lines=[
            OrderLine(
                id="L1", sku="MUG", variant_id="mug", quantity=1, unit_price=Money("59.00", "EUR")
            )
        ],
    )


def keep_it(order_id: str) -> ReturnRequest:
    """Keep the mug and get store credit: no parcel, so the return closes at once."""
    return ReturnRequest(
        shop=SHOP,
        order_id=order_id,
        lines=[
            RequestLine(
                order_line_id="L1", quantity=1, outcome=Keep(settle=OutcomeKind.STORE_CREDIT)
            )
        ],
    )


def harness_on(store: ReturnStore, orders: list[str], prefix: str) -> Harness:
    from returnflow.testing import SequentialIds

    harness = Harness(store=store, ids=SequentialIds(prefix))
    for order_id in orders:
        harness.ports.commerce.add_order(one_mug(order_id))
    return harness


def race(harness: Harness, orders: list[str], wait: Any) -> list[tuple[str, str, str]]:
    """Request each order's mug after ``wait()`` (a barrier shared with the rival); per
    order: ``("accepted", return id, "")`` or ``("refused", field, message)``."""
    outcomes = []
    for order_id in orders:
        wait()
        try:
            record = harness.service.request(keep_it(order_id))
        except InvalidQuantity as error:
            outcomes.append(("refused", error.field, str(error)))
        else:
            outcomes.append(("accepted", record.id, ""))
    return outcomes


def child(
    target: str, orders: list[str], name: str, barrier: Any, results: Any, same_ids: bool = False
) -> None:
    """A spawned process: its own store on ``target`` (a file or a URL) and its own fakes;
    ``same_ids``: see :func:`in_threads`."""
    store = None
    try:
        store = open_store(target)
        harness = harness_on(store, orders, "R-" if same_ids else f"{name}-")
        outcomes = race(harness, orders, lambda: barrier.wait(timeout=60))
        credits = [str(credit.amount) for credit in harness.ports.commerce.credits]
        results.put((name, "ok", outcomes, credits))
    except BaseException:
        results.put((name, "error", traceback.format_exc(), []))
    finally:
        if store is not None:
            store.close()


def in_threads(
    stores: list[ReturnStore], orders: list[str], *, same_ids: bool = False
) -> list[tuple[Any, ...]]:
    """The same race between threads, each with its own store object and fakes;
    ``same_ids``: every racer numbers its returns alike (``R-1``, ``R-2``...), so the
    rivals also race for the id of the return they open."""
    barrier = threading.Barrier(len(stores))
    reports: list[tuple[Any, ...]] = []

    def work(store: ReturnStore, name: str) -> None:
        try:
            harness = harness_on(store, orders, "R-" if same_ids else f"{name}-")
            outcomes = race(harness, orders, lambda: barrier.wait(timeout=60))
            credits = [str(credit.amount) for credit in harness.ports.commerce.credits]
            reports.append((name, "ok", outcomes, credits))
        except BaseException:
            reports.append((name, "error", traceback.format_exc(), []))

    threads = [
        threading.Thread(target=work, args=(store, f"t{n}")) for n, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return reports
