"""What routing a return to several locations costs, against the same return to one.

Rows, each a whole return of two lines (request, auto-approval, label and warehouse
expectations dispatched, receipts, the warehouse's Finished, refund, close) on a SQLite
store, effects dispatched as they are committed:

* ``default location``: the baseline, measured in the same run: no resolver, the warehouse
  called as before destinations (one expectation, one receipt, one Finished);
* ``one named location``: every line to one location (``StaticDestination("berlin")``);
* ``two locations``: a resolver sends each line to its own location: two expectations (two
  write-backs), a receipt and a Finished per location.

``commits`` is the store's commits per return, counted; a second location adds its
expectation's write-back and its own receipt and Finished, nothing else. Rounds alternate
between the rows so that each sees the same machine. Run: ``python benchmarks/destinations.py``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from returnflow import (
    Completion,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    StaticDestination,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.model import ReturnLine
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

SHOP = "bench-shop"
ORDERED = datetime(2026, 1, 10, tzinfo=timezone.utc)


class PerLine:
    """Each order line to a location of its own."""

    def locations(self, shop: str) -> Collection[str]:
        return ("loc-L1", "loc-L2")

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        return f"loc-{line.order_line_id}"


class CountingStore(SqliteStore):
    commits = 0

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        CountingStore.commits += 1
        return super().commit(*args, **kwargs)


def _order(order_id: str) -> OrderSnapshot:
    lines = [
        OrderLine(
            id=line_id,
            sku=f"SKU-{line_id}",
            variant_id=line_id.lower(),
            quantity=1,
            unit_price=Money("12.00", "EUR"),
        )
        for line_id in ("L1", "L2")
    ]
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=ORDERED,
        currency="EUR",
        fulfilled_at=ORDERED,
        lines=lines,
    )


def _whole_returns(path: Path, resolver: Any, returns: int, round_no: int) -> tuple[float, float]:
    store = CountingStore(path)
    policy = ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED)
    harness = Harness(policy=policy, store=store, destinations=resolver)
    service = harness.service
    try:
        for n in range(returns):
            harness.ports.commerce.add_order(_order(f"r{round_no}-{n}"))
        gc.collect()
        before = CountingStore.commits
        start = time.perf_counter()
        for n in range(returns):
            record = service.request(
                ReturnRequest(
                    shop=SHOP,
                    order_id=f"r{round_no}-{n}",
                    lines=[RequestLine("L1", 1), RequestLine("L2", 1)],
                )
            )
            wheres: dict[str | None, list[str]] = {}
            for line in record.lines:
                wheres.setdefault(line.location_id, []).append(line.order_line_id)
            for index, (where, line_ids) in enumerate(wheres.items()):
                event = f"{record.id}-{index}"
                received = [ReceivedLine(line_id=line_id, quantity=1) for line_id in line_ids]
                service.handle(
                    WarehouseReceipt(
                        shop=SHOP,
                        return_id=record.id,
                        event_id=f"in-{event}",
                        lines=received,
                        location_id=where,
                    )
                )
                service.handle(
                    WarehouseFinished(
                        shop=SHOP, return_id=record.id, event_id=f"fin-{event}", location_id=where
                    )
                )
            assert service.get(SHOP, record.id).status == "closed"
        elapsed = time.perf_counter() - start
        return returns / elapsed, (CountingStore.commits - before) / returns
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200, help="whole returns per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows: dict[str, Any] = {
        "default location": None,
        "one named location": StaticDestination("berlin"),
        "two locations": PerLine(),
    }
    rates: dict[str, list[float]] = {name: [] for name in rows}
    commits: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_no in range(args.rounds):
            for index, (name, resolver) in enumerate(rows.items()):
                path = Path(folder) / f"{round_no}-{index}.db"
                rate, per_return = _whole_returns(path, resolver, args.records, round_no)
                rates[name].append(rate)
                commits[name] = per_return
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{'measurement':<20} {'returns/s':>10} {'commits':>8} {'ratio':>7}  against")
    base = medians["default location"]
    for name, rate in medians.items():
        print(f"{name:<20} {rate:>10.0f} {commits[name]:>8.1f} {rate / base:>7.2f}  default")
    print(
        f"\n{args.rounds} rounds of {args.records} whole returns of two lines on SQLite, "
        "medians; commits per return are counted, not timed."
    )


if __name__ == "__main__":
    main()
