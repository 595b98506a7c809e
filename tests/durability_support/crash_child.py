"""A child process for the SIGKILL test: it runs a command and dies at a chosen point.

``python -m durability_support.crash_child DB LEDGER SCENARIO`` builds a service on the
SQLite file ``DB`` with ports writing to ``LEDGER`` (see :mod:`.ledger`), prints the return id,
arms the ledger's kill switch and runs the scenario's command, which never returns: the
process is killed by ``SIGKILL`` inside a port call.

Scenarios are ``"<command>:<when>:<operation>"``:

* ``request``: open an exchange of order 1001's T-shirt (the crash comes in its dispatch);
* ``receipt``: open a refund of the jacket, report it picked up, then (armed) receive it;

``when`` is where the process dies:

* ``before`` / ``after``: the ledger's ``kill_at`` at the port ``operation`` (``*``: any),
  before its line is written or right after;
* ``recorded``: the store dies right after it recorded a successful attempt of the effect
  kind ``operation`` (the port acted, the outbox says done), before the service wrote the
  port's answer into the return;
* ``given_up``: the ledger refuses ``operation`` for good, and the store dies right after it
  recorded that the effect was given up, before the service sent the return to review
  (``operation`` names both the port operation and the effect kind: ``create_label``).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

from durability_support.ledger import Ledger, ledger_ports
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    ReturnsService,
    WarehouseReceipt,
)
from returnflow.demo.scenarios import order_1001
from returnflow.ports.store import Commit, OutboxEntry
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import ManualClock, SequentialIds

SHOP = "crash-shop"
ORDER_ID = "1001"
POLICY = ReturnPolicy()


class KillingStore(SqliteStore):
    """A SQLite store that kills its process right after recording an attempt of one kind
    of effect with one outcome (``"done"`` or ``"failed"``), once armed."""

    kill_after: tuple[str, str] | None = None  # (effect kind, status)

    def record_attempt(self, key: str, *, ok: bool, at: datetime, **rest: object) -> OutboxEntry:
        entry = super().record_attempt(key, ok=ok, at=at, **rest)  # type: ignore[arg-type]
        if self.kill_after == (entry.effect.kind, entry.status):
            os.kill(os.getpid(), signal.SIGKILL)
        return entry

    def commit(self, commit: Commit) -> None:
        # An attempt may be recorded in the same commit as the return it changes.
        super().commit(commit)
        for attempt in commit.attempts:
            status = "done" if attempt.ok else ("failed" if attempt.give_up else "pending")
            if self.kill_after == (attempt.key.rsplit("/", 1)[-1], status):
                os.kill(os.getpid(), signal.SIGKILL)


def build(
    db: str, ledger: Ledger, clock: ManualClock, worker: str, store: SqliteStore | None = None
) -> ReturnsService:
    """The service both processes build: same store file, same durable ports."""
    return ReturnsService(
        store=store or SqliteStore(db),
        **ledger_ports(ledger, [order_1001(SHOP, ORDER_ID)]),
        policy=POLICY,
        clock=clock,
        ids=SequentialIds(),
        worker_id=worker,
    )


def main(db: str, ledger_path: str, scenario: str) -> None:
    command, when, operation = scenario.split(":")
    ledger = Ledger(ledger_path)
    store = KillingStore(db)
    service = build(db, ledger, ManualClock(), "child", store)

    def arm() -> None:
        if when in ("before", "after"):
            ledger.kill_at = (when, operation)
        elif when == "recorded":
            store.kill_after = (operation, "done")
        elif when == "given_up":
            ledger.refuse = operation
            store.kill_after = (operation, "failed")
        else:
            raise SystemExit(f"unknown crash point {when!r}")

    if command == "request":
        request = ReturnRequest(
            shop=SHOP,
            order_id=ORDER_ID,
            lines=[
                RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l"))
            ],
        )
        return_id = "R0001"  # SequentialIds: the first id
        print(return_id, flush=True)
        arm()
        service.request(request)
    elif command == "receipt":
        request = ReturnRequest(
            shop=SHOP,
            order_id=ORDER_ID,
            lines=[RequestLine(order_line_id="L3", quantity=1, outcome=Refund())],
        )
        record = service.request(request)
        service.handle(
            CarrierUpdate(
                shop=SHOP, return_id=record.id, event_id="scan-1", status=CarrierStatus.PICKED_UP
            )
        )
        print(record.id, flush=True)
        arm()
        service.handle(
            WarehouseReceipt(
                shop=SHOP,
                return_id=record.id,
                event_id="rcv-1",
                lines=[ReceivedLine(line_id="L3", quantity=1)],
            )
        )
    else:
        raise SystemExit(f"unknown command {command!r}")
    raise SystemExit("the kill switch never fired")


if __name__ == "__main__":
    main(*sys.argv[1:])
