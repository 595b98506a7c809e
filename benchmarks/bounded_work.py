"""Work that must not grow with the store: a tick with nothing due, and one page of a listing.

For each store (memory, SQLite, PostgreSQL) the same operations run on a store holding ``--small``
returns (default 1,000) and one holding ``--records`` (default 100,000), all of them open
and waiting for their parcel, none due:

* ``tick``: ``service.tick()`` with nothing due (found through the due-time index);
* ``first page``: ``service.list(shop, limit=100)``;
* ``deep page``: ``service.list(shop, after=<the return at 90 %>, limit=100)``.

Ratio: the time per operation on the small store divided by the time on this one (1.00:
no slower; the goal is at least 0.90 at 100 times the returns). ``goal`` says whether it was
met. The big stores are filled in bulk: the memory store through ``commit`` of copies of one
template return; the SQLite file and the PostgreSQL database through the store's
``commit`` for the template, then its rows copied under new ids with plain SQL
(``executemany``, ``COPY``), which is what a commit per return would write, many times
faster.

Run: ``python benchmarks/bounded_work.py [--records 100000] [--small 1000]`` (PostgreSQL
rows need a server: ``--dsn`` an admin URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``, or, with none given, one is started on a
temporary directory as the test suite does; ``--no-postgres`` leaves them out).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs

from returnflow.demo.scenarios import order_1001
from returnflow.domain.model import RequestLine, ReturnRecord, ReturnRequest
from returnflow.ports.store import Commit, ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

SHOP = "bounded-shop"
PAGE = 100


def _template() -> ReturnRecord:
    """A return approved with its label sent, waiting for the parcel: due only when its ship
    window ends, weeks later."""
    harness = Harness()
    harness.ports.commerce.add_order(order_1001(SHOP, "T1"))
    record = harness.service.request(
        ReturnRequest(shop=SHOP, order_id="T1", lines=[RequestLine(order_line_id="L3", quantity=1)])
    )
    record = harness.store.get(SHOP, record.id)
    assert record.status == "label_sent", record.status
    assert record.due_at is not None
    return record


def _copy(template: ReturnRecord, n: int) -> ReturnRecord:
    return_id = f"B{n:07d}"
    return attrs.evolve(
        template,
        id=return_id,
        version=1,
        order_id=f"O{n:07d}",
        created_at=template.created_at + timedelta(microseconds=n),
        lines=tuple(
            attrs.evolve(line, id=f"{return_id}-{k}") for k, line in enumerate(template.lines)
        ),
    )


def _fill_memory(count: int, template: ReturnRecord) -> MemoryStore:
    store = MemoryStore()
    for n in range(count):
        store.commit(Commit(records=((_copy(template, n), 0),)))
    return store


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _copies(
    template: ReturnRecord, count: int, body_text: str, history: Sequence[tuple[Any, ...]]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """For copies 1 .. count - 1 of the template: (id, order_id, created_at, body) of each,
    and its history rows (the template's, under the copy's id)."""
    body = json.loads(body_text)
    returns, entries = [], []
    for n in range(1, count):
        copy = _copy(template, n)
        body.update(id=copy.id, order_id=copy.order_id, created_at=copy.created_at.isoformat())
        body["lines"] = [dict(line, id=f"{copy.id}-{k}") for k, line in enumerate(body["lines"])]
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        returns.append((copy.id, copy.order_id, copy.created_at, text))
        entries.extend((SHOP, copy.id, *entry) for entry in history)
    return returns, entries


def _fill_sqlite(path: str, count: int, template: ReturnRecord) -> SqliteStore:
    store = SqliteStore(path)
    store.commit(Commit(records=((_copy(template, 0), 0),)))
    store.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        (row,) = db.execute(
            "SELECT status, exchange_status, version, history_len, updated_at, body, due_at "
            "FROM returns"
        ).fetchall()
        history = db.execute("SELECT seq, version, at, event, actor, body FROM history").fetchall()
        copies, entries = _copies(template, count, row[5], history)
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO returns (shop, id, order_id, status, exchange_status, version, "
            "history_len, created_at, updated_at, body, due_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (SHOP, rid, order, *row[:4], _iso(created), row[4], body, row[6])
                for rid, order, created, body in copies
            ],
        )
        db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?)", entries)
        db.execute("COMMIT")
    return SqliteStore(path)


def _fill_postgres(dsn: str, count: int, template: ReturnRecord) -> ReturnStore:
    import psycopg

    from returnflow.stores.postgres import PostgresStore

    store = PostgresStore(dsn)
    store.commit(Commit(records=((_copy(template, 0), 0),)))
    store.close()
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT status, exchange_status, version, history_len, updated_at, body, due_at "
            "FROM returns"
        ).fetchone()
        assert row is not None
        history = db.execute("SELECT seq, version, at, event, actor, body FROM history").fetchall()
        copies, entries = _copies(template, count, row[5], history)
        with db.cursor().copy(
            "COPY returns (shop, id, order_id, status, exchange_status, version, history_len, "
            "created_at, updated_at, body, due_at) FROM STDIN"
        ) as copy:
            for rid, order, created, body in copies:
                copy.write_row((SHOP, rid, order, *row[:4], created, row[4], body, row[6]))
        with db.cursor().copy(
            "COPY history (shop, return_id, seq, version, at, event, actor, body) FROM STDIN"
        ) as copy:
            for entry in entries:
                copy.write_row(entry)
        db.execute("ANALYZE returns")
    return PostgresStore(dsn)


def _postgres(dsn: str | None) -> Iterator[str] | None:
    """New, empty databases on the server ``dsn`` names or (``None``) on a throwaway one
    started as the test suite starts it; ``None`` when there is none."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import postgres_support

    if dsn:
        server = postgres_support.external_cluster(dsn)
    else:
        try:
            server = postgres_support.cluster()
        except postgres_support.Unavailable as error:
            print(f"(no PostgreSQL server: {error}; postgres rows left out)", file=sys.stderr)
            return None

    def databases() -> Iterator[str]:
        while True:
            yield server.create_database()

    return databases()


def _operations(store: ReturnStore, count: int) -> dict[str, Callable[[], object]]:
    """The operations measured on ``store`` (holding ``count`` returns), checked once."""
    harness = Harness(store=store)
    service = harness.service
    now = harness.clock.now()
    report = service.tick(now)
    assert report.expired == report.stuck == report.release_checked == (), report
    deep = f"B{int((count - 1) * 0.9):07d}"
    first = service.list(SHOP, limit=PAGE)
    assert len(first) == min(PAGE, count)
    assert first[0].id == "B0000000"
    page = service.list(SHOP, after=deep, limit=PAGE)
    assert page[0].id == f"B{int((count - 1) * 0.9) + 1:07d}"
    return {
        "tick, nothing due": lambda: service.tick(now),
        f"first page of {PAGE}": lambda: service.list(SHOP, limit=PAGE),
        f"page of {PAGE} at 90 %": lambda: service.list(SHOP, after=deep, limit=PAGE),
    }


def _interleaved(
    small: Callable[[], object], large: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """The median time of each of two operations, run in turn (so that the machine's load
    weighs on both alike), in seconds."""
    times: tuple[list[float], list[float]] = ([], [])
    small()
    large()
    for _ in range(repeat):
        for run, into in ((small, times[0]), (large, times[1])):
            began = time.perf_counter()
            run()
            into.append(time.perf_counter() - began)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--dsn", help="an admin URL of a PostgreSQL server to create databases on")
    parser.add_argument("--no-postgres", action="store_true", help="memory and SQLite only")
    args = parser.parse_args(argv)
    databases = None if args.no_postgres else _postgres(args.dsn)
    small = max(2, min(args.small, args.records // 10))
    template = _template()
    results: list[tuple[str, int, str, float, float]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="returnflow-bounded-") as directory:
        for name in ("memory", "sqlite", "postgres"):
            if name == "postgres" and databases is None:
                continue
            stores: list[ReturnStore] = []
            for count in (small, args.records):
                began = time.perf_counter()
                if name == "memory":
                    stores.append(_fill_memory(count, template))
                elif name == "sqlite":
                    path = os.path.join(directory, f"{count}.db")
                    stores.append(_fill_sqlite(path, count, template))
                else:
                    assert databases is not None
                    stores.append(_fill_postgres(next(databases), count, template))
                notes.append(f"{name} {count}: filled in {time.perf_counter() - began:.1f} s")
            try:
                few, many = _operations(stores[0], small), _operations(stores[1], args.records)
                for operation in few:
                    base, seconds = _interleaved(few[operation], many[operation], args.repeat)
                    results.append((name, small, operation, base, base))
                    results.append((name, args.records, operation, seconds, base))
            finally:
                for store in stores:
                    close = getattr(store, "close", None)
                    if close is not None:
                        close()
    print(f"{'store':<8} {'returns':>8} {'operation':<22} {'per op':>11} {'ratio':>6} {'goal':>8}")
    for name, count, operation, seconds, base in results:
        ratio = base / seconds
        goal = "baseline" if count == small else ("met" if ratio >= 0.9 else "missed")
        print(
            f"{name:<8} {count:>8} {operation:<22} {seconds * 1e6:>9.1f}us {ratio:>5.2f}x {goal:>8}"
        )
    print(
        f"\nratio: time per operation with {small} returns / with this many (goal: at least "
        f"0.90); medians of {args.repeat} runs of each, the two stores in turn; "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}.\n" + "; ".join(notes)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
