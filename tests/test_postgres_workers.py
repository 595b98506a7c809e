"""Many processes on one PostgreSQL store: workers sharing one outbox, a worker killed with its
claims, and writers racing on the same returns through ``ReturnsService.handle``.

Fakes live in one process each, so every child reports what its ports did and the test
compares the reports with the database.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import postgres_support

if not postgres_support.required():
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")

import postgres_workers
from returnflow import RequestLine, ReturnRequest, ReturnsService
from returnflow.demo.scenarios import order_1001
from returnflow.ports.store import InboundKey
from returnflow.stores.postgres import PostgresStore
from returnflow.testing import FakePorts, Harness, ManualClock

SHOP = "pg-shop"


@pytest.fixture(scope="session")
def cluster() -> postgres_support.Cluster:
    return postgres_support.cluster_or_skip()


@pytest.fixture
def store(cluster: postgres_support.Cluster) -> Iterator[PostgresStore]:
    opened = PostgresStore(cluster.empty_database())
    try:
        yield opened
    finally:
        opened.close()


def open_returns(harness: Harness, count: int) -> list[str]:
    """``count`` returns of one cap each, on orders of their own."""
    ids = []
    for number in range(count):
        order_id = str(2000 + number)
        harness.ports.commerce.add_order(order_1001(SHOP, order_id))
        record = harness.service.request(
            ReturnRequest(
                shop=SHOP, order_id=order_id, lines=[RequestLine(order_line_id="L3", quantity=1)]
            )
        )
        ids.append(record.id)
    return ids


def run_children(target: Any, args_of: list[tuple[Any, ...]], timeout: float = 180) -> list[Any]:
    """Start one spawned process per argument tuple (each gets a shared barrier and a result
    queue appended); their reports, in the order they came."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(args_of))
    results = context.Queue()
    children = [
        context.Process(target=target, args=(*args, barrier, results), daemon=True)
        for args in args_of
    ]
    for child in children:
        child.start()
    reports = []
    try:
        for _ in children:
            reports.append(results.get(timeout=timeout))
    except queue_module.Empty:
        raise AssertionError(f"a child did not report; got {reports}") from None
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
                child.join(timeout=10)
    failures = [detail for _, status, detail in reports if status != "ok"]
    assert failures == [], "\n".join(str(detail) for detail in failures)
    return [detail for _, _, detail in reports]


def test_worker_processes_share_one_outbox_each_effect_once_in_order(
    store: PostgresStore,
) -> None:
    harness = Harness(store=store, auto_dispatch=False)
    ids = open_returns(harness, 50)
    stuck = ids[0]  # its first event is the oldest event of the whole outbox, never goes out
    outbox_before = {return_id: store.outbox(SHOP, return_id) for return_id in ids}
    effects = sum(len(entries) for entries in outbox_before.values())
    assert effects >= 300

    workers = [f"worker-{n}" for n in range(4)]
    reports = run_children(
        postgres_workers.dispatch, [(store.dsn, name, stuck) for name in workers]
    )

    logs = [report["log"] for report in reports]
    assert all(logs), "every worker process delivered some effects"
    delivered = Counter(key for log in logs for _, _, key in log)
    twice = {key: count for key, count in delivered.items() if count > 1}
    assert twice == {}, f"delivered more than once: {twice}"
    when = {key: moment for log in logs for moment, _, key in log}

    for return_id in ids:
        entries = store.outbox(SHOP, return_id)
        if return_id == stuck:
            # its port calls (planned before its events) went out; its first event failed
            # again and again while every other return went on, and what is behind it waits
            calls = [entry for entry in entries if entry.effect.kind != "publish"][:2]
            assert [(entry.effect.kind, entry.status) for entry in calls] == [
                ("create_label", "done"),
                ("create_warehouse_return", "done"),
            ]
            head, *rest = [entry for entry in entries if entry.status != "done"]
            assert (head.status, head.effect.kind) == ("pending", "publish")
            assert [entry.effect.key for entry in entries][:3] == [
                *(entry.effect.key for entry in calls),
                head.effect.key,
            ]
            assert head.attempts > 1
            assert head.last_error is not None
            assert "topic down" in head.last_error
            assert all(entry.attempts == 0 and entry.status == "pending" for entry in rest)
            assert not any(entry.effect.key in delivered for entry in (head, *rest))
            continue
        assert {entry.status for entry in entries} == {"done"}, return_id
        keys = [entry.effect.key for entry in entries]  # in commit order
        assert all(key in delivered for key in keys), return_id
        assert sorted(keys, key=when.__getitem__) == keys, f"{return_id} out of order"
    assert {entry.effect.return_id for entry in store.pending(limit=1000)} == {stuck}
    # the effects that delivering planned (a label's message) went out too
    assert len(delivered) > effects - len(outbox_before[stuck])


def test_a_killed_workers_claims_go_out_through_another_worker_after_the_lease(
    store: PostgresStore,
) -> None:
    harness = Harness(store=store, auto_dispatch=False)
    ids = open_returns(harness, 6)
    heads = sorted(store.outbox(SHOP, return_id)[0].effect.key for return_id in ids)

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    lease = 60.0
    started = datetime.now(timezone.utc)
    doomed = context.Process(
        target=postgres_workers.claim_and_hang, args=(store.dsn, lease, results), daemon=True
    )
    doomed.start()
    try:
        _name, status, claimed = results.get(timeout=60)
        assert status == "ok", claimed
        assert sorted(claimed) == heads
    finally:
        doomed.kill()  # SIGKILL: it never delivers nor releases what it claimed
        doomed.join(timeout=30)
    assert doomed.exitcode == -signal.SIGKILL

    clock = ManualClock(started + timedelta(seconds=lease / 2))
    ports = FakePorts()
    successor = ReturnsService(
        store=store,
        commerce=ports.commerce,
        warehouse=ports.warehouse,
        carrier=ports.carrier,
        payments=ports.payments,
        notifier=ports.notifier,
        events=ports.events,
        clock=clock,
        worker_id="successor",
    )
    # under the dead worker's live leases: nothing goes out, nothing behind the heads either
    assert successor.dispatch_pending(limit=1000).delivered == 0
    for return_id in ids:
        head = store.outbox(SHOP, return_id)[0]
        assert (head.claimed_by, head.attempts, head.status) == ("doomed", 0, "pending")

    clock.advance(seconds=lease)  # the leases are over
    report = successor.dispatch_pending(limit=1000)
    assert report.delivered > len(heads)
    assert list(store.pending()) == []
    sent = Counter(
        call.idempotency_key
        for fake in ports.all()
        for call in fake.calls
        if call.outcome == "ok" and call.idempotency_key is not None
    )
    assert all(sent[key] == 1 for key in heads)
    assert max(sent.values()) == 1
    for return_id in ids:
        entries = store.outbox(SHOP, return_id)
        assert entries[0].attempts == 1  # the dead worker's claim was no attempt
        assert {entry.status for entry in entries} == {"done"}


def test_processes_handling_the_same_events_lose_no_update_and_apply_each_once(
    store: PostgresStore,
) -> None:
    harness = Harness(store=store)  # effects delivered: the returns wait for the carrier
    ids = open_returns(harness, 3)
    base = {return_id: store.get(SHOP, return_id) for return_id in ids}
    assert {record.status for record in base.values()} == {"label_sent"}

    own, shared = 10, 10
    names = [f"writer-{n}" for n in range(4)]
    reports = run_children(
        postgres_workers.handle,
        [(store.dsn, name, SHOP, ids, own, shared, seed) for seed, name in enumerate(names)],
    )

    statuses: dict[str, list[str]] = {}
    for report in reports:
        for event_id, status in report.items():
            statuses.setdefault(event_id, []).append(status)
    taken = {
        event_id
        for event_id, seen in statuses.items()
        for status in seen
        if status in ("applied", "parked", "ignored")
    }
    for event_id, seen in statuses.items():
        if event_id.startswith("shared-"):
            assert len(seen) == len(names)
            # taken by one process at most; every other one saw a duplicate (or gave up)
            taken_once = seen.count("applied") + seen.count("parked") + seen.count("ignored")
            assert taken_once <= 1, (event_id, seen)
            assert set(seen) <= {"applied", "parked", "ignored", "duplicate", "conflict"}
        else:
            assert seen in (["applied"], ["ignored"], ["conflict"]), (event_id, seen)
    gave_up = [event_id for event_id, seen in statuses.items() if "conflict" in seen]
    assert len(gave_up) <= len(statuses) // 10, f"too many gave up: {gave_up}"

    for return_id in ids:
        final = store.get(SHOP, return_id)
        new = final.history[len(base[return_id].history) :]
        # every commit is in the history once: nothing lost, nothing doubled
        assert final.version == base[return_id].version + len(new)
        assert [entry.version for entry in new] == list(
            range(base[return_id].version + 1, final.version + 1)
        )
        events = [entry.payload.get("carrier_event", entry.payload.get("id")) for entry in new]
        assert len(events) == len(set(events)), Counter(events).most_common(3)
        mine = {event_id for event_id in taken if f"-{return_id}-" in event_id}
        assert set(events) == mine
        assert final.status == "delivered"
        for event_id in mine:
            assert store.seen(InboundKey(SHOP, "carrier", event_id))
