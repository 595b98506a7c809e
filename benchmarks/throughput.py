"""Events per second through the service, against baselines measured in the same run.

Rows, each one chart event (``flag`` on a return in ``needs_review``, a self-transition that
carries a payload, records history and plans one domain event):

* ``engine``: the bare python-statemachine event on the same chart, machine reused (the
  ``chart`` engine); ``compiled``: the same event through the compiled chart the write path
  fires (table look-up and the chart's validators);
* ``sqlite3``: a bare ``sqlite3`` write of the same rows (return, history, outbox) in one
  transaction, WAL;
* ``service/memory`` and ``service/sqlite``: the service's command (validate, fire, commit
  with the version check), effects left in the outbox; ``+dispatch`` also delivers them;
* the service on each store with ``--records`` (default 1,000) stored returns, and with
  100 x that many stored while events go to the same number of open ones (the rest are
  history, as in a shop); a last row sends events to all of them at random (the store's
  cache of built records then rarely helps: a worst case, no target).

Targets (ratios in one run): service/memory >= 70 % of engine; service/sqlite >= 50 % of
service/memory; 100k stored >= 90 % of 1k. Run: ``python benchmarks/throughput.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable

import attrs

from returnflow import MemoryStore, ReturnPolicy
from returnflow.demo.scenarios import SHOP, clickpost_rto
from returnflow.domain.model import ReturnRecord
from returnflow.lifecycle.engine import fire_chart, fire_compiled
from returnflow.ports.store import Commit, ReturnStore
from returnflow.serialization import unstructure
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness


def _rate(run: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        run(index)
    return count / (time.perf_counter() - start)


def _template() -> ReturnRecord:
    """A return in needs_review (seed 002's RTO flow), as the service stored it."""
    harness, (return_id,) = clickpost_rto()
    return harness.store.get(SHOP, return_id)


def _seed(store: ReturnStore, template: ReturnRecord, count: int) -> list[str]:
    ids = [f"B{index:07d}" for index in range(count)]
    for return_id in ids:  # each on an order of its own: a unit is held by one return
        copy = attrs.evolve(template, id=return_id, order_id=f"O-{return_id}", version=1)
        store.commit(Commit(records=((copy, 0),)))
    return ids


def _service_rate(
    store: ReturnStore,
    ids: list[str],
    events: int,
    *,
    dispatch: bool = False,
    active: int | None = None,
) -> float:
    harness = Harness(store=store, policy=ReturnPolicy(), auto_dispatch=dispatch)
    service = harness.service
    rng = random.Random(3)
    targets = ids[-active:] if active else ids
    picks = [rng.choice(targets) for _ in range(events)]
    return _rate(lambda index: service.flag(SHOP, picks[index], f"check {index}"), events)


def _bare_sqlite_rate(template: ReturnRecord, events: int, directory: str) -> float:
    db = sqlite3.connect(os.path.join(directory, "bare.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE returns (shop, id, version, body, PRIMARY KEY (shop, id))")
    db.execute("CREATE TABLE history (shop, return_id, seq, body)")
    db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, key UNIQUE, body)")
    body = json.dumps(unstructure(attrs.evolve(template, history=())))
    entry = json.dumps(unstructure(template.history[-1]))
    db.execute("INSERT INTO returns VALUES (?, ?, 1, ?)", (SHOP, "R1", body))

    def write(index: int) -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("SELECT version FROM returns WHERE shop = ? AND id = ?", (SHOP, "R1"))
        db.execute(
            "UPDATE returns SET version = ?, body = ? WHERE shop = ? AND id = ?",
            (index + 2, body, SHOP, "R1"),
        )
        db.execute("INSERT INTO history VALUES (?, ?, ?, ?)", (SHOP, "R1", index, entry))
        db.execute("INSERT INTO outbox (key, body) VALUES (?, ?)", (f"k{index}", entry))
        db.execute("COMMIT")

    rate = _rate(write, events)
    db.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="stored returns, small run")
    parser.add_argument("--events", type=int, default=2000, help="events per measurement")
    parser.add_argument("--scale", type=int, default=100, help="the large run's multiple")
    args = parser.parse_args()
    template = _template()
    events = max(50, min(args.events, args.records * 20))
    directory = tempfile.mkdtemp(prefix="returnflow-bench-")

    state = ("needs_review", "no_exchange")
    engine = _rate(lambda _: fire_chart(state, "flag", reason="x"), events)
    compiled = _rate(lambda _: fire_compiled(state, "flag", reason="x"), events)
    bare = _bare_sqlite_rate(template, events, directory)
    big = args.records * args.scale
    rates: dict[str, dict[str, float]] = {}
    files = itertools.count()
    for name, make in (
        ("memory", MemoryStore),
        ("sqlite", lambda: SqliteStore(os.path.join(directory, f"s{next(files)}.db"))),
    ):
        small = make()
        small_ids = _seed(small, template, args.records)
        wired = make()
        wired_ids = _seed(wired, template, args.records)
        large = make()
        large_ids = _seed(large, template, big)
        rates[name] = {
            "small": _service_rate(small, small_ids, events),
            "dispatch": _service_rate(wired, wired_ids, events, dispatch=True),
            "large": _service_rate(large, large_ids, events, active=args.records),
            "random": _service_rate(large, large_ids, events),
        }

    memory, sqlite = rates["memory"]["small"], rates["sqlite"]["small"]
    rows = [
        ("engine: bare python-statemachine event", engine, engine, "engine"),
        ("compiled: the same event, compiled chart", compiled, engine, "engine"),
        ("sqlite3: bare write of the same rows", bare, bare, "sqlite3"),
        (f"service/memory, {args.records} stored", memory, engine, "engine"),
        ("service/memory + dispatch", rates["memory"]["dispatch"], engine, "engine"),
        (f"service/memory, {big} stored", rates["memory"]["large"], memory, "memory-small"),
        (f"  events to all {big}", rates["memory"]["random"], memory, "memory-small"),
        (f"service/sqlite, {args.records} stored", sqlite, memory, "service-memory"),
        ("service/sqlite + dispatch", rates["sqlite"]["dispatch"], memory, "service-memory"),
        (f"service/sqlite, {big} stored", rates["sqlite"]["large"], sqlite, "sqlite-small"),
        (f"  events to all {big}", rates["sqlite"]["random"], sqlite, "sqlite-small"),
    ]
    print(f"{'measurement':<44} {'events/s':>10} {'ratio':>8}  against")
    for name, rate, base, against in rows:
        print(f"{name:<44} {rate:>10.0f} {rate / base:>8.2f}  {against}")


if __name__ == "__main__":
    main()
