"""Whole returns per second, on each store and chart engine, beside a raw sqlite3 floor.

A whole return: a refund of one unit is requested (auto-approved; the label and the warehouse
return are dispatched), the carrier picks it up and delivers it, the warehouse receives it
(the refund is dispatched and the return closes): four commands or facts, every effect
delivered through the fakes.

Rows (medians of ``--rounds`` rounds, the stores and engines alternating within a round so
that each sees the same machine):

* ``memory`` and ``sqlite``, each with the compiled chart (the default) and with
  ``engine="chart"`` (python-statemachine fires every event); PostgreSQL rows with
  ``--dsn`` (an admin URL of a server to create a database on);
* ``..., native``: the compiled chart in native mode (seed 003), the platform's own return
  opened, processed (its money reconciled first), disposed and closed through the fake
  ``PlatformReturns``, against the same store in the default mode;
* ``sqlite, compiled, critical together``: the dispatcher delivering a return's effects of
  ports the return depends on together, written in one write
  (``dispatcher.critical_alone = False``); by default each such delivery waits until those
  before it are written;
* ``sqlite3 floor``: the durable minimum for the same lifecycle with the bare ``sqlite3``
  module, WAL: one transaction per command or fact writing the return, its history and its
  effects, and one per batch marking the effects done; the record bodies are those of the
  real run (the same JSON sizes);
* ``sqlite3 replay of the store's statements``: the statements (with their parameters) one
  real SQLite lifecycle issued, recorded once and replayed with the bare ``sqlite3`` module
  on a file with the store's own schema and pragmas (its rows, indexes, reads and
  transactions): what the SQLite store's writes cost without any Python of returnflow's,
  the most the store can reach as it writes today.

Ratios: each engine against the chart engine on the same store, and SQLite against the floor.
A footer gives the write transactions and statements one SQLite lifecycle makes, both ways
(counted with ``sqlite3``'s trace callback; ``tests/test_counts.py`` asserts them, and
PostgreSQL's). Run: ``python benchmarks/lifecycle.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.ports.store import ReturnStore
from returnflow.serialization import unstructure
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

SHOP = "bench-shop"
ORDERED = datetime(2026, 1, 10, tzinfo=timezone.utc)
ENGINES = ("compiled", "chart")


def _order(order_id: str) -> OrderSnapshot:
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


def _lifecycle(harness: Harness, order_id: str) -> str:
    """One whole return; its id."""
    service = harness.service
    request = ReturnRequest(shop=SHOP, order_id=order_id, lines=[RequestLine("L1", 1)])
    rid = service.request(request).id
    for status in (CarrierStatus.PICKED_UP, CarrierStatus.DELIVERED):
        service.handle(
            CarrierUpdate(shop=SHOP, return_id=rid, event_id=f"{rid}-{status.name}", status=status)
        )
    received = [ReceivedLine(line_id="L1", quantity=1)]
    service.handle(
        WarehouseReceipt(shop=SHOP, return_id=rid, event_id=f"{rid}-rcv", lines=received)
    )
    return rid


def _rate(
    store: ReturnStore,
    engine: str,
    count: int,
    tag: str,
    *,
    together: bool = False,
    mode: str = "tags",
) -> float:
    harness = Harness(store=store, engine=engine, policy=ReturnPolicy(platform_mode=mode))
    harness.service.dispatcher.critical_alone = not together
    ids = [f"{tag}-{n}" for n in range(count)]
    for order_id in ids:
        harness.ports.commerce.add_order(_order(order_id))
    gc.collect()
    start = time.perf_counter()
    for order_id in ids:
        _lifecycle(harness, order_id)
    elapsed = time.perf_counter() - start
    last = harness.service.list(SHOP)[-1] if count else None
    if last is not None and last.status != "closed":
        raise SystemExit(f"a lifecycle ended in {last.status}, not closed")
    return count / elapsed


def _template() -> tuple[list[str], list[list[str]], list[list[str]]]:
    """The record bodies after each of the four steps of one real lifecycle, its history
    entries and its effects, as JSON: what the floor writes."""
    harness = Harness()
    harness.ports.commerce.add_order(_order("template"))
    rid = _lifecycle(harness, "template")
    record = harness.service.get(SHOP, rid)
    outbox = harness.store.outbox(SHOP, rid)
    body = json.dumps(unstructure(record), sort_keys=True)
    entries = [json.dumps(unstructure(entry), sort_keys=True) for entry in record.history]
    effects = [json.dumps(unstructure(entry.effect), sort_keys=True) for entry in outbox]
    step = max(1, len(entries) // 4)
    history = [entries[i * step : (i + 1) * step] for i in range(3)] + [entries[3 * step :]]
    per = max(1, len(effects) // 4)
    planned = [effects[i * per : (i + 1) * per] for i in range(3)] + [effects[3 * per :]]
    return [body] * 4, history, planned


def _floor(path: Path, count: int) -> float:
    bodies, history, planned = _template()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE returns (id TEXT PRIMARY KEY, version INT, body TEXT)")
    db.execute("CREATE TABLE history (id TEXT, version INT, body TEXT)")
    db.execute("CREATE TABLE outbox (key TEXT PRIMARY KEY, id TEXT, status TEXT, body TEXT)")
    start = time.perf_counter()
    for n in range(count):
        rid = f"R{n}"
        for step in range(4):
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO returns VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE "
                "SET version = excluded.version, body = excluded.body WHERE version = ?",
                (rid, step + 1, bodies[step], step),
            )
            db.executemany(
                "INSERT INTO history VALUES (?, ?, ?)",
                [(rid, step + 1, entry) for entry in history[step]],
            )
            keys = [f"{rid}/{step}/{i}" for i in range(len(planned[step]))]
            db.executemany(
                "INSERT INTO outbox VALUES (?, ?, 'pending', ?)",
                [(key, rid, effect) for key, effect in zip(keys, planned[step], strict=True)],
            )
            db.execute("COMMIT")
            if keys:  # delivered: marked done in one write for the batch
                db.execute("BEGIN IMMEDIATE")
                done = [(key,) for key in keys]
                db.executemany("UPDATE outbox SET status = 'done' WHERE key = ?", done)
                db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return count / elapsed


class _Recording(sqlite3.Connection):
    """A connection that records the statements it runs, with their parameters."""

    recorded: list[tuple[str, str, Any]] | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if _Recording.recorded is not None:
            _Recording.recorded.append(("one", sql, parameters))
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        rows = list(parameters)
        if _Recording.recorded is not None:
            _Recording.recorded.append(("many", sql, rows))
        return super().executemany(sql, rows)


def _swap(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in names.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {key: _swap(item, names) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_swap(item, names) for item in value)
    return value


def _replay(folder: Path, count: int) -> float:
    """Whole returns/s of a bare ``sqlite3`` replay of one real lifecycle's statements."""
    connect = sqlite3.connect
    sqlite3.connect = lambda *args, **kwargs: connect(*args, factory=_Recording, **kwargs)  # type: ignore[assignment]
    try:
        store = SqliteStore(folder / "recorded.db")
        harness = Harness(store=store)
        for order_id in ("warm", "order-to-replay"):
            harness.ports.commerce.add_order(_order(order_id))
        _lifecycle(harness, "warm")
        _Recording.recorded = recorded = []
        return_id = _lifecycle(harness, "order-to-replay")
        _Recording.recorded = None
        store.close()
    finally:
        sqlite3.connect = connect
    path = folder / "replayed.db"
    SqliteStore(path).close()  # the store's schema
    db = connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        db.execute(f"PRAGMA {pragma}")
    runs = [
        _swap(recorded, {return_id: f"Q{n:07d}", "order-to-replay": f"replayed-{n}"})
        for n in range(count)
    ]
    start = time.perf_counter()
    for run in runs:
        for how, sql, parameters in run:
            if how == "one":
                db.execute(sql, parameters).fetchall()
            else:
                db.executemany(sql, parameters)
    elapsed = time.perf_counter() - start
    db.close()
    return count / elapsed


def _counts(path: Path, *, together: bool = False) -> tuple[int, int]:
    """Write transactions (``BEGIN IMMEDIATE``) and statements of one SQLite lifecycle, after
    a warm-up one."""
    store = SqliteStore(path)
    harness = Harness(store=store)
    harness.service.dispatcher.critical_alone = not together
    for order_id in ("warm", "counted"):
        harness.ports.commerce.add_order(_order(order_id))
    _lifecycle(harness, "warm")
    statements: list[str] = []
    connection = store._connection()  # the benchmark's thread's connection
    connection.set_trace_callback(statements.append)
    _lifecycle(harness, "counted")
    connection.set_trace_callback(None)
    store.close()
    writes = sum(1 for s in statements if s.strip().upper().startswith("BEGIN IMMEDIATE"))
    return writes, len(statements)


def _postgres(dsn: str) -> Callable[[int], ReturnStore] | None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    try:
        import postgres_support
        from returnflow.stores.postgres import PostgresStore
    except ImportError as error:
        print(f"(PostgreSQL rows left out: {error})", file=sys.stderr)
        return None
    server = postgres_support.external_cluster(dsn)

    def make(_: int) -> ReturnStore:
        return PostgresStore(server.create_database())

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="whole returns per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dsn", help="an admin URL of a PostgreSQL server (PostgreSQL rows)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = iter(range(1_000_000))
        makers: dict[str, Callable[[int], ReturnStore]] = {
            "memory": lambda _: MemoryStore(),
            "sqlite": lambda _: SqliteStore(Path(folder) / f"s{next(files)}.db"),
        }
        if args.dsn:
            postgres = _postgres(args.dsn)
            if postgres is not None:
                makers["postgres"] = postgres
        rates: dict[tuple[str, str], list[float]] = {}
        floor: list[float] = []
        replay: list[float] = []
        for round_no in range(args.rounds):
            for name, make in makers.items():
                for engine in (*ENGINES, "native"):
                    store = make(round_no)
                    tag = f"{round_no}-{name}-{engine}"
                    if engine == "native":  # the compiled chart, in native mode
                        rate = _rate(store, "compiled", args.records, tag, mode="native")
                    else:
                        rate = _rate(store, engine, args.records, tag)
                    rates.setdefault((name, engine), []).append(rate)
                    close: Any = getattr(store, "close", None)
                    if close is not None:
                        close()
            together = SqliteStore(Path(folder) / f"t{round_no}.db")
            rate = _rate(together, "compiled", args.records, f"{round_no}-t", together=True)
            rates.setdefault(("sqlite", "together"), []).append(rate)
            together.close()
            floor.append(_floor(Path(folder) / f"floor{round_no}.db", args.records))
            replayed = Path(folder) / f"replay{round_no}"
            replayed.mkdir()
            replay.append(_replay(replayed, args.records))
        transactions, statements = _counts(Path(folder) / "counted.db")
        grouped = _counts(Path(folder) / "grouped.db", together=True)
    medians = {key: statistics.median(values) for key, values in rates.items()}
    bare = statistics.median(floor)
    print(f"{'measurement':<36} {'returns/s':>10} {'ratio':>7}  against")
    print(f"{'sqlite3 floor (durable minimum)':<36} {bare:>10.0f} {1.0:>7.2f}  floor")
    replayed = statistics.median(replay)
    label = "sqlite3 replay of the store's SQL"
    print(f"{label:<36} {replayed:>10.0f} {replayed / bare:>7.2f}  floor")
    for (name, engine), rate in medians.items():
        if engine == "native":
            tags = medians[(name, "compiled")]
            print(f"{f'{name}, native':<36} {rate:>10.0f} {rate / tags:>7.2f}  {name}-compiled")
            continue
        if engine == "together":
            continue
        chart = medians[(name, "chart")]
        print(f"{f'{name}, {engine}':<36} {rate:>10.0f} {rate / chart:>7.2f}  {name}-chart")
    sqlite = medians[("sqlite", "compiled")]
    print(f"{'sqlite, compiled':<36} {sqlite:>10.0f} {sqlite / bare:>7.2f}  floor")
    grouped_rate = medians[("sqlite", "together")]
    label = "sqlite, compiled, critical together"
    print(f"{label:<36} {grouped_rate:>10.0f} {grouped_rate / bare:>7.2f}  floor")
    print(
        f"\n{args.rounds} rounds of {args.records} whole returns, medians. One SQLite "
        f"lifecycle: {transactions} write transactions, {statements} statements "
        f"({grouped[0]} and {grouped[1]} with critical deliveries together)."
    )


if __name__ == "__main__":
    main()
