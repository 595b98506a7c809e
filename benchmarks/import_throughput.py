"""Returns per second imported from a return source, against plain ``service.request`` in the
same run.

Each measurement opens ``--records`` returns (default 1,000), one per order, on a new store:

* ``request``: ``service.request`` of the same return a customer would ask for here;
* ``import``: ``ReturnImporter.import_range`` over a fake source holding them, in pages of
  100 (list, check the id is new, validate against the order, commit, dispatch);
* ``import again``: the same range once more, every return found and left unchanged.

Both open an approved return with the same effects (the label is off for ``request``: an
imported return buys none), delivered at once to in-memory fakes (``+ dispatch``), or left in
the outbox. Rows on SQLite and in memory. Run: ``python benchmarks/import_throughput.py``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from returnflow import (
    ExternalLine,
    ExternalReturn,
    MemoryStore,
    Money,
    OrderLine,
    OrderSnapshot,
    RequestLine,
    ReturnImporter,
    ReturnPolicy,
    ReturnRequest,
)
from returnflow.ports.store import ReturnStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakeReturnSource, Harness

SHOP = "bench-shop"
AT = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)


def _harness(store: ReturnStore, count: int, *, dispatch: bool) -> Harness:
    harness = Harness(store=store, policy=ReturnPolicy(send_label=False), auto_dispatch=dispatch)
    for number in range(count):
        harness.ports.commerce.add_order(
            OrderSnapshot(
                id=f"O{number:06d}",
                shop=SHOP,
                created_at=AT - timedelta(days=3),
                fulfilled_at=AT - timedelta(days=3),
                currency="EUR",
                customer_email="customer@example.com",
                lines=[
                    OrderLine(
                        id="L1",
                        sku="TEE-M",
                        variant_id="tee-m",
                        quantity=2,
                        unit_price=Money("25.00", "EUR"),
                    )
                ],
            )
        )
    return harness


def _timed(run: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def _request_rate(store: ReturnStore, count: int, *, dispatch: bool) -> float:
    service = _harness(store, count, dispatch=dispatch).service
    requests = [
        ReturnRequest(shop=SHOP, order_id=f"O{n:06d}", lines=[RequestLine("L1", 1)])
        for n in range(count)
    ]
    return _timed(lambda: [service.request(request) for request in requests], count)


def _import_rates(store: ReturnStore, count: int, *, dispatch: bool) -> tuple[float, float]:
    harness = _harness(store, count, dispatch=dispatch)
    source = FakeReturnSource(
        "loop",
        [
            ExternalReturn(
                source="loop",
                external_id=str(50_000_000 + n),
                shop=SHOP,
                order_id=f"O{n:06d}",
                lines=[ExternalLine(order_line_id="L1", quantity=1)],
                created_at=AT + timedelta(seconds=n),
                updated_at=AT + timedelta(seconds=n),
            )
            for n in range(count)
        ],
    )
    importer = ReturnImporter(harness.service, source, shop=SHOP)
    until = AT + timedelta(seconds=count + 1)
    first = importer.import_range(AT, until)
    assert len(first.imported) == count, first
    started = time.perf_counter()
    again = importer.import_range(AT, until)
    again_rate = count / (time.perf_counter() - started)
    assert len(again.unchanged) == count, again
    return count / first.elapsed, again_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="returns per measurement")
    args = parser.parse_args()
    count = args.records
    directory = tempfile.mkdtemp(prefix="returnflow-import-bench-")
    files = iter(range(1_000_000))

    def sqlite() -> ReturnStore:
        return SqliteStore(os.path.join(directory, f"s{next(files)}.db"))

    rows: list[tuple[str, float, float, str]] = []
    for name, make in (("sqlite", sqlite), ("memory", MemoryStore)):
        for dispatch in (True, False):
            label = f"{name}{' + dispatch' if dispatch else ''}"
            request = _request_rate(make(), count, dispatch=dispatch)
            imported, again = _import_rates(make(), count, dispatch=dispatch)
            rows.append((f"request, {label}", request, request, "request"))
            rows.append((f"import, {label}", imported, request, "request"))
            rows.append((f"import again (unchanged), {label}", again, request, "request"))
    print(f"{'measurement':<44} {'returns/s':>10} {'ratio':>8}  against")
    for name, rate, base, against in rows:
        print(f"{name:<44} {rate:>10.0f} {rate / base:>8.2f}  {against}")


if __name__ == "__main__":
    main()
