"""What the order-level ledger of units costs a request, against the same request without it.

Rows, each ``ReturnsService.request`` of one unit on an order of its own, effects left in the
outbox (``auto_dispatch=False``), so the row is the request's own write:

* ``sqlite, no ledger``: the baseline, a SQLite store whose commit skips the ledger's rows
  (what the store did before the ledger; measured in the same run);
* ``sqlite, ledger``: the shipped store: the units are taken in the same commit, checked
  against what the order's other returns hold;
* ``memory, no ledger`` and ``memory, ledger``: the same on the in-memory store.

Each round opens the four stores and runs their requests in alternating chunks
(``--chunk`` requests on one store, then on the next), adding up each store's own time, so
that a store with the ledger and its baseline see the same moments of a shared machine;
each row is the median of the rounds. The goal: the ledger costs at most 10 % on SQLite.
Run: ``python benchmarks/order_ledger.py``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from returnflow import Money, OrderLine, OrderSnapshot, RequestLine, ReturnRequest
from returnflow.ports.store import Commit, ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

SHOP = "bench-shop"
ORDERED = datetime(2026, 1, 10, tzinfo=timezone.utc)


class SqliteWithoutLedger(SqliteStore):
    """The baseline: a SQLite store that writes no ledger rows."""

    @staticmethod
    def _write_units(db: object, commit: Commit) -> None:
        return None


class MemoryWithoutLedger(MemoryStore):
    """The baseline: an in-memory store that keeps no ledger."""

    def _ledger(self, commit: Commit) -> tuple[dict[object, str], list[object]]:  # type: ignore[override]
        return {}, []


def _order(order_id: str) -> OrderSnapshot:
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=ORDERED,
        currency="EUR",
        fulfilled_at=ORDERED,
        lines=[
            OrderLine(
                id="L1", sku="MUG", variant_id="mug", quantity=3, unit_price=Money("12.00", "EUR")
            )
        ],
    )


def _harness(store: ReturnStore, prefix: str, orders: int) -> tuple[Harness, list[ReturnRequest]]:
    harness = Harness(store=store, auto_dispatch=False)
    ids = [f"{prefix}-{n}" for n in range(orders)]
    for order_id in ids:
        harness.ports.commerce.add_order(_order(order_id))
    requests = [
        ReturnRequest(shop=SHOP, order_id=order_id, lines=[RequestLine("L1", 1)])
        for order_id in ids
    ]
    return harness, requests


def _round(
    stores: dict[str, ReturnStore], orders: int, chunk: int, round_no: int
) -> dict[str, float]:
    """Requests per second of each store in one round, the stores taking turns by chunks."""
    work = {
        name: _harness(store, f"r{round_no}-{index}", orders)
        for index, (name, store) in enumerate(stores.items())
    }
    spent = dict.fromkeys(stores, 0.0)
    gc.collect()
    for start in range(0, orders, chunk):
        for name, (harness, requests) in work.items():
            began = time.perf_counter()
            for request in requests[start : start + chunk]:
                harness.service.request(request)
            spent[name] += time.perf_counter() - began
    return {name: orders / seconds for name, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500, help="requests per store and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=25, help="requests per turn of a store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        makers: dict[str, Callable[[int], ReturnStore]] = {
            "sqlite, no ledger": lambda n: SqliteWithoutLedger(Path(folder) / f"base{n}.db"),
            "sqlite, ledger": lambda n: SqliteStore(Path(folder) / f"ledger{n}.db"),
            "memory, no ledger": lambda n: MemoryWithoutLedger(),
            "memory, ledger": lambda n: MemoryStore(),
        }
        rates: dict[str, list[float]] = {name: [] for name in makers}
        for round_no in range(args.rounds):
            stores = {name: make(round_no) for name, make in makers.items()}
            for name, rate in _round(stores, args.records, args.chunk, round_no).items():
                rates[name].append(rate)
            for store in stores.values():
                close = getattr(store, "close", None)
                if close is not None:
                    close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = {
        "sqlite, no ledger": "sqlite, no ledger",
        "sqlite, ledger": "sqlite, no ledger",
        "memory, no ledger": "memory, no ledger",
        "memory, ledger": "memory, no ledger",
    }
    short = {"sqlite, no ledger": "sqlite-without", "memory, no ledger": "memory-without"}
    print(f"{'measurement':<24} {'requests/s':>11} {'ratio':>7}  against")
    for name, rate in medians.items():
        base = baseline[name]
        print(f"{name:<24} {rate:>11.0f} {rate / medians[base]:>7.2f}  {short[base]}")
    paired = [  # each round's ledger store against the baseline it ran beside
        1 - ledger / base
        for ledger, base in zip(rates["sqlite, ledger"], rates["sqlite, no ledger"], strict=True)
    ]
    print(
        f"\n{args.rounds} rounds of {args.records} requests, medians; the ledger costs "
        f"{statistics.median(paired):+.1%} of a request on SQLite (rounds: "
        f"{min(paired):+.1%} to {max(paired):+.1%}; goal: at most 10 %)."
    )


if __name__ == "__main__":
    main()
