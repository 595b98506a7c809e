"""Several worker processes on one database: events/s, latency, and the proof nothing was lost.

A stream of inbound events for ``--returns`` returns (default 10,000), each waiting for its
parcel: a carrier scan (delivered), then the warehouse receipt that completes it and pays the
refund. 5 % of the events are delivered twice, right after the first delivery (a webhook
retried), so two workers often race on one event and on one return. N worker processes
(1, 2, 4, 8) share the stream: each takes the next event, runs ``service.handle`` (with its
effects delivered right after the commit) and times it.

Each run starts from the same seeded database. After it, the final state of every return
(status, version, history, lines, outbox) must equal the one-worker run's, with every
inbound event recorded once and every effect delivered exactly once across all workers
(each port call's idempotency key is collected from every worker): zero lost updates, zero
double effects. Ratios are events/s against one worker on the same store, in the same run.

Run: ``python benchmarks/scale_out.py`` (PostgreSQL rows need a server: ``--dsn`` an admin
URL such as ``postgresql://postgres@127.0.0.1:5432/postgres``, or, with none given, one is
started on a temporary directory as the test suite does; SQLite rows always run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from returnflow.demo.scenarios import order_1001
from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    InboundEvent,
    ReceivedLine,
    WarehouseReceipt,
)
from returnflow.domain.model import (
    ItemCondition,
    RequestLine,
    ReturnReason,
    ReturnRecord,
    ReturnRequest,
)
from returnflow.ports.store import Commit, ReturnStore
from returnflow.serialization import unstructure
from returnflow.stores import open_store
from returnflow.testing import Harness

SHOP = "scale-shop"


# -- the data --------------------------------------------------------------------------------


def _template() -> ReturnRecord:
    """A return approved with its label sent, waiting for the parcel (a refund of one cap)."""
    harness = Harness()
    harness.ports.commerce.add_order(order_1001(SHOP, "T1"))
    record = harness.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="T1",
            lines=[
                RequestLine(
                    order_line_id="L3",
                    quantity=1,
                    reason=ReturnReason.SIZE_TOO_LARGE,
                    condition=ItemCondition.NEW,
                )
            ],
        )
    )
    record = harness.store.get(SHOP, record.id)
    assert record.status == "label_sent", record.status
    return record


def _return_ids(count: int) -> list[str]:
    return [f"S{index:06d}" for index in range(count)]


def _seed(store: ReturnStore, count: int) -> None:
    template = _template()
    for return_id in _return_ids(count):
        lines = tuple(
            attrs.evolve(line, id=f"{return_id}-{n}") for n, line in enumerate(template.lines, 1)
        )
        record = attrs.evolve(
            template, id=return_id, order_id=f"O{return_id}", lines=lines, version=1
        )
        store.commit(Commit(records=((record, 0),)))


def _events(count: int, duplicates: float) -> list[InboundEvent]:
    """Scans for every return, then receipts for every return (a worker handles a receipt only
    once its scan was handled); each event is repeated right after itself with probability
    ``duplicates`` (chosen by a hash, so every run sends the same stream)."""
    firsts: list[InboundEvent] = []
    for return_id in _return_ids(count):
        firsts.append(
            CarrierUpdate(
                shop=SHOP,
                return_id=return_id,
                event_id=f"{return_id}-scan",
                status=CarrierStatus.DELIVERED,
            )
        )
    for return_id in _return_ids(count):
        firsts.append(
            WarehouseReceipt(
                shop=SHOP,
                return_id=return_id,
                event_id=f"{return_id}-rcv",
                lines=[ReceivedLine(line_id="L3", quantity=1, condition=ItemCondition.GOOD)],
            )
        )
    stream: list[InboundEvent] = []
    for event in firsts:
        stream.append(event)
        digest = hashlib.sha256(event.event_id.encode()).digest()
        if int.from_bytes(digest[:4], "big") < duplicates * 2**32:
            stream.append(event)
    return stream


# -- one worker process ----------------------------------------------------------------------


def _worker(
    target: str,
    count: int,
    duplicates: float,
    cursor: Any,
    lock: Any,
    start: Any,
    scanned: Any,
    results: Any,
) -> None:
    try:
        position = {return_id: n for n, return_id in enumerate(_return_ids(count))}
        store = open_store(target)
        harness = Harness(store=store)
        for return_id in _return_ids(count):
            harness.ports.commerce.add_order(order_1001(SHOP, f"O{return_id}"))
        events = _events(count, duplicates)
        service = harness.service
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        start.wait()
        while True:
            with lock:
                index = cursor.value
                cursor.value += 1
            if index >= len(events):
                break
            event = events[index]
            # a receipt waits for its scan: a worker stalled on the lock can fall --returns behind
            while isinstance(event, WarehouseReceipt) and not scanned[position[event.return_id]]:
                time.sleep(0.0005)
            began = time.perf_counter()
            result = service.handle(event)
            latencies.append(time.perf_counter() - began)
            if isinstance(event, CarrierUpdate):
                scanned[position[event.return_id]] = 1
            statuses[result.status] = statuses.get(result.status, 0) + 1
        service.dispatch_pending(limit=1000)  # anything a racing worker left behind
        calls = [
            (fake.port, call.operation, call.idempotency_key)
            for fake in harness.ports.all()
            for call in fake.calls
            if call.idempotency_key is not None
        ]
        close = getattr(store, "close", None)
        if close is not None:
            close()
        results.put(("ok", latencies, statuses, calls))
    except BaseException:  # report it to the parent, which prints it
        results.put(("error", traceback.format_exc(), {}, []))


@attrs.frozen
class Run:
    workers: int
    seconds: float
    events: int
    latencies: tuple[float, ...]
    statuses: dict[str, int]
    calls: tuple[tuple[str, str, str], ...]
    state: str

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# Ids the fakes hand out (refund-3, gift-1, ...) count up in each worker process, so the same
# refund has another id when another worker paid it: they are masked before comparing.
_PORT_IDS = re.compile(r"\b(refund|gift|pay|hold|item|RMA)-\d+\b|\bTRK\d{6}\b")


def _final_state(target: str, count: int) -> str:
    """A digest of every return as stored, with its outbox (keys, status, attempts); ids
    that ports generated are masked."""
    store = open_store(target)
    try:
        digest = hashlib.sha256()
        for return_id in _return_ids(count):
            record = store.get(SHOP, return_id)
            outbox = [
                (entry.effect.key, entry.status, entry.attempts)
                for entry in store.outbox(SHOP, return_id)
            ]
            document = {"record": unstructure(record), "outbox": outbox}
            text = json.dumps(document, sort_keys=True, default=str)
            digest.update(_PORT_IDS.sub("<port id>", text).encode())
        return digest.hexdigest()
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


def _run(target: str, workers: int, count: int, duplicates: float) -> Run:
    context = multiprocessing.get_context("spawn")
    cursor = context.Value("q", 0, lock=False)
    lock = context.Lock()
    start = context.Barrier(workers + 1)
    scanned = context.Array("b", count, lock=False)  # a return's scan handled: 1
    results = context.Queue()
    processes = [
        context.Process(
            target=_worker,
            args=(target, count, duplicates, cursor, lock, start, scanned, results),
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    start.wait()
    began = time.perf_counter()
    outcomes = [results.get() for _ in processes]
    seconds = time.perf_counter() - began
    for process in processes:
        process.join()
    errors = [outcome[1] for outcome in outcomes if outcome[0] == "error"]
    if errors:
        raise SystemExit(f"a worker failed:\n{errors[0]}")
    latencies = tuple(value for outcome in outcomes for value in outcome[1])
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        for status, number in outcome[2].items():
            statuses[status] = statuses.get(status, 0) + number
    calls = tuple(call for outcome in outcomes for call in outcome[3])
    return Run(
        workers=workers,
        seconds=seconds,
        events=len(latencies),
        latencies=latencies,
        statuses=statuses,
        calls=calls,
        state=_final_state(target, count),
    )


# -- databases -------------------------------------------------------------------------------


def _sqlite_targets(directory: str) -> Iterator[str]:
    for number in range(1_000_000):
        yield os.path.join(directory, f"scale-{number}.db")


def _postgres_targets(dsn: str | None) -> tuple[Iterator[str], str] | None:
    """New, empty databases, one per run, on the server ``dsn`` names or (``None``) on a
    throwaway one started as the test suite starts it; ``None`` when there is none."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import postgres_support

    if dsn:
        server = postgres_support.external_cluster(dsn)
        where = "the server given"
    else:
        try:
            server = postgres_support.cluster()
        except postgres_support.Unavailable as error:
            print(f"(no PostgreSQL server: {error}; postgres rows left out)", file=sys.stderr)
            return None
        where = "a throwaway local server (fsync off)"

    def targets() -> Iterator[str]:
        while True:
            yield server.create_database()

    return targets(), where


# -- the table -------------------------------------------------------------------------------


def _measure(
    name: str,
    targets: Iterator[str],
    worker_counts: Sequence[int],
    count: int,
    duplicates: float,
    prepare: Callable[[str], None],
) -> list[tuple[str, Run, Run]]:
    rows: list[tuple[str, Run, Run]] = []
    baseline: Run | None = None
    for workers in worker_counts:
        target = next(targets)
        prepare(target)
        run = _run(target, workers, count, duplicates)
        baseline = baseline or run
        rows.append((name, run, baseline))
    return rows


def _check(run: Run, baseline: Run, expected_events: int) -> str:
    keys = [key for _, _, key in run.calls]
    doubles = len(keys) - len(set(keys))
    lost = "0" if run.state == baseline.state else "DIFFERS"
    same_calls = sorted(run.calls) == sorted(baseline.calls)
    events_ok = run.events == expected_events
    ok = doubles == 0 and lost == "0" and same_calls and events_ok
    return f"{lost:>7} {doubles:>7} {'yes' if ok else 'NO':>5}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=10_000)
    parser.add_argument("--records", type=int, help="the same as --returns")
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--dsn", help="an admin URL of a PostgreSQL server to create databases on")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite rows only")
    args = parser.parse_args(argv)
    count = args.records or args.returns
    worker_counts = [int(n) for n in args.workers.split(",")]
    expected = len(_events(count, args.duplicates))

    def prepare(target: str) -> None:
        store = open_store(target)
        try:
            _seed(store, count)
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                close()

    rows: list[tuple[str, Run, Run]] = []
    with tempfile.TemporaryDirectory(prefix="returnflow-scale-") as directory:
        rows += _measure(
            "sqlite",
            _sqlite_targets(directory),
            [n for n in worker_counts if n <= 4],
            count,
            args.duplicates,
            prepare,
        )
        postgres = None if args.no_postgres else _postgres_targets(args.dsn)
        if postgres is not None:
            targets, where = postgres
            rows += _measure("postgres", targets, worker_counts, count, args.duplicates, prepare)
    print(
        f"{'store':<9} {'workers':>7} {'events':>7} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ratio':>6} {'lost':>7} {'double':>7} {'same':>5}"
    )
    failed = 0
    for name, run, baseline in rows:
        verdict = _check(run, baseline, expected)
        failed += verdict.endswith("NO")
        print(
            f"{name:<9} {run.workers:>7} {run.events:>7} {run.rate:>9.0f} "
            f"{run.percentile(0.5) * 1000:>7.2f} {run.percentile(0.99) * 1000:>7.2f} "
            f"{run.rate / baseline.rate:>5.2f}x {verdict}"
        )
    if postgres is not None:
        print(f"PostgreSQL: {where}")
    print(
        f"\n{count} returns, {expected} events ({args.duplicates:.0%} delivered twice), "
        f"{os.cpu_count()} cores; ratio: events/s against 1 worker on the same store; "
        "lost: final state differs from the 1-worker run; double: an idempotency key sent "
        "to a port twice; same: both zero, same port calls, every event handled once."
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
