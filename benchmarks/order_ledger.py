"""What the order-level ledger of units costs a request, against the same request without it.

Rows, each ``ReturnsService.request`` of one unit on an order of its own, effects left in the
outbox (``auto_dispatch=False``), so the row is the request's own write:

* ``sqlite, no ledger``: the baseline, a SQLite store whose commit skips the ledger's rows
  (what the store did before the ledger; measured in the same run);
* ``sqlite, ledger``: the shipped store: the units are taken in the same commit, checked
  against what the order's other returns hold;
* ``memory, no ledger`` and ``memory, ledger``: the same on the in-memory store.

Rounds alternate between the two stores so that both see the same machine. The goal: the
ledger costs at most 10 % on SQLite. Run: ``python benchmarks/order_ledger.py``.
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


def _requests_per_second(store: ReturnStore, orders: int, round_no: int) -> float:
    harness = Harness(store=store, auto_dispatch=False)
    ids = [f"r{round_no}-{n}" for n in range(orders)]
    for order_id in ids:
        harness.ports.commerce.add_order(_order(order_id))
    requests = [
        ReturnRequest(shop=SHOP, order_id=order_id, lines=[RequestLine("L1", 1)])
        for order_id in ids
    ]
    gc.collect()
    start = time.perf_counter()
    for request in requests:
        harness.service.request(request)
    return orders / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
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
            for name, make in makers.items():
                store = make(round_no)
                rates[name].append(_requests_per_second(store, args.records, round_no))
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
    cost = 1 - medians["sqlite, ledger"] / medians["sqlite, no ledger"]
    print(
        f"\n{args.rounds} rounds of {args.records} requests, medians; the ledger costs "
        f"{cost:+.1%} of a request on SQLite (goal: at most 10 %)."
    )


if __name__ == "__main__":
    main()
