"""A child process for the two-process test: it hammers one return in a shared SQLite file.

``python -m durability_support.hammer DB RETURN_ID NAME GO_FILE SEED FLAGS EVENTS SHARED``
creates ``GO_FILE.NAME`` once it is ready, waits for ``GO_FILE`` to exist (so that both
processes start together),
then, in an order drawn from ``SEED``, flags the return ``FLAGS`` times with reasons of its
own, sends ``EVENTS`` carrier updates with ids of its own and ``SHARED`` carrier updates with
ids the other process sends too. Commands and events go through the service, which retries
on :class:`~returnflow.errors.ConcurrencyConflict` itself; a command that still conflicts
is reported as failed. It prints one JSON line: what succeeded, the status of each event,
the effect keys its fake ports carried out, and how many commits the store refused.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any

from returnflow import CarrierStatus, CarrierUpdate, ConcurrencyConflict, ReturnsService
from returnflow.ports.store import Commit
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakePorts

SHOP = "hammer-shop"


class CountingStore(SqliteStore):
    """A SQLite store that counts the commits it refused for a version conflict."""

    refused = 0

    def commit(self, commit: Commit) -> None:
        try:
            super().commit(commit)
        except ConcurrencyConflict:
            self.refused += 1
            raise


def main(
    db: str, return_id: str, name: str, go: str, seed: str, flags: str, events: str, shared: str
) -> None:
    store = CountingStore(db)
    ports = FakePorts()
    service = ReturnsService(
        store=store,
        commerce=ports.commerce,
        warehouse=ports.warehouse,
        carrier=ports.carrier,
        payments=ports.payments,
        notifier=ports.notifier,
        events=ports.events,
        worker_id=name,
    )
    ops: list[tuple[str, str]] = [("flag", f"{name}-reason-{i}") for i in range(int(flags))]
    ops += [("event", f"{name}-scan-{i}") for i in range(int(events))]
    ops += [("event", f"shared-scan-{i}") for i in range(int(shared))]
    random.Random(int(seed)).shuffle(ops)

    with open(f"{go}.{name}", "w"):
        pass  # ready
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.001)

    report: dict[str, Any] = {"flags": [], "failed": [], "events": {}, "started": time.time()}
    for kind, name_or_id in ops:
        try:
            if kind == "flag":
                service.flag(SHOP, return_id, name_or_id, actor=name)
                report["flags"].append(name_or_id)
            else:
                number = int(name_or_id.rsplit("-", 1)[1])  # the same event in both processes
                status = CarrierStatus.PICKED_UP if number % 2 else CarrierStatus.DELIVERED
                result = service.handle(
                    CarrierUpdate(
                        shop=SHOP, return_id=return_id, event_id=name_or_id, status=status
                    )
                )
                report["events"][name_or_id] = result.status
        except ConcurrencyConflict:
            report["failed"].append(name_or_id)
    report["finished"] = time.time()
    report["refused_commits"] = store.refused
    report["delivered"] = [
        call.idempotency_key
        for fake in ports.all()
        for call in fake.calls
        if call.outcome == "ok" and call.idempotency_key is not None
    ]
    store.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
