"""Room a closed return takes on SQLite, before and after ``prune``.

``--records`` returns (default 1,000) each go the whole way through the service on one SQLite
file: requested, label bought, picked up and delivered, received, refunded,
closed, every effect delivered and every inbound event recorded. Then the file is measured
(pages in use, not the file size: SQLite reuses freed pages instead of giving them back),
pruned as ``returnflow prune --older-than 90d`` would prune it 91 days later, measured
again, and pruned once more with the inbox keys past their window too.

Ratio: bytes per return against the unpruned file. ``redelivery`` says whether a scan
redelivered after pruning was refused as a duplicate (it must be while its key is kept).

Run: ``python benchmarks/retention.py [--records 1000]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from contextlib import closing
from datetime import timedelta

from returnflow.demo.scenarios import order_1001
from returnflow.domain.inbound import CarrierStatus, CarrierUpdate, ReceivedLine, WarehouseReceipt
from returnflow.domain.model import ItemCondition, RequestLine, ReturnRequest
from returnflow.retention import INBOX_WINDOW, OUTBOX_WINDOW, prune
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

SHOP = "retention-shop"


def _live_bytes(path: str) -> tuple[int, int, int]:
    """Bytes of the pages in use, outbox rows, inbox keys."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        outbox = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        inbox = db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
    return (pages - free) * size, outbox, inbox


def _refused(harness: Harness, return_id: str) -> bool:
    """Whether the first scan of ``return_id``, sent again, is a duplicate."""
    again = CarrierUpdate(
        shop=SHOP, return_id=return_id, event_id=f"{return_id}-s1", status=CarrierStatus.PICKED_UP
    )
    return harness.service.handle(again).status == "duplicate"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="returnflow-retention-") as directory:
        path = os.path.join(directory, "returns.db")
        store = SqliteStore(path)
        try:
            harness = Harness(store=store)
            ids = []
            for n in range(args.records):
                order = f"O{n:06d}"
                harness.ports.commerce.add_order(order_1001(SHOP, order))
                record = harness.service.request(
                    ReturnRequest(
                        shop=SHOP,
                        order_id=order,
                        lines=[RequestLine(order_line_id="L3", quantity=1)],
                    )
                )
                for k, status in enumerate((CarrierStatus.PICKED_UP, CarrierStatus.DELIVERED)):
                    harness.service.handle(
                        CarrierUpdate(
                            shop=SHOP, return_id=record.id, event_id=f"{record.id}-s{k + 1}",
                            status=status,
                        )
                    )  # fmt: skip
                harness.service.handle(
                    WarehouseReceipt(
                        shop=SHOP,
                        return_id=record.id,
                        event_id=f"{record.id}-rcv",
                        lines=[
                            ReceivedLine(line_id="L3", quantity=1, condition=ItemCondition.GOOD)
                        ],
                    )
                )
                assert harness.store.get(SHOP, record.id).status == "closed"
                ids.append(record.id)
            rows = [("closed, as written", *_live_bytes(path), _refused(harness, ids[0]))]
            later = harness.clock.now() + OUTBOX_WINDOW + timedelta(days=1)
            pruned = prune(store, now=later)
            assert pruned.outbox > 0, pruned
            rows.append(
                (
                    f"pruned {OUTBOX_WINDOW.days} days on",
                    *_live_bytes(path),
                    _refused(harness, ids[0]),
                )
            )
            prune(store, now=later + INBOX_WINDOW)
            rows.append(("inbox keys past window", *_live_bytes(path), _refused(harness, ids[0])))
        finally:
            store.close()
    baseline = rows[0][1] / args.records
    print(
        f"{'state':<26} {'bytes/return':>12} {'outbox rows':>11} {'inbox keys':>10} "
        f"{'ratio':>6} {'redelivery':>10}"
    )
    for state, live, outbox, inbox, refused in rows:
        per_return = live / args.records
        print(
            f"{state:<26} {per_return:>12.0f} {outbox:>11} {inbox:>10} "
            f"{per_return / baseline:>5.2f}x {'refused' if refused else 'applied':>10}"
        )
    print(
        f"\n{args.records} closed returns on SQLite; bytes: pages in use / returns; ratio: "
        "against the file as written; redelivery: a scan sent again after pruning."
    )
    expected = ["refused", "refused", "applied"]
    return 0 if [refused for *_, refused in rows] == [e == "refused" for e in expected] else 1


if __name__ == "__main__":
    sys.exit(main())
