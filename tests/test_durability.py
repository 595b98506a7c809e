"""Durability: duplicate storms, SIGKILL crashes, two processes on one return, flaky ports.

* Duplicate storm: a valid inbound event stream for a few returns, delivered once in order on
  one world and as thousands of duplicates and reorderings of the same events on another,
  ends in the same state with the same side effects, each effect delivered exactly once.
  A fully random storm (first deliveries out of order too) never crashes, reports every
  repeat as a duplicate and never delivers an effect twice.
* SIGKILL: a child process dies right after a commit (before any port call) or after a
  port acted and before the outbox recorded it; another process finishes the work from the
  SQLite file, and a durable ledger port shows each effect happened exactly once. An
  effect's answer (or its giving up) is recorded in the same commit as the return it
  changes, so dying right after that commit loses nothing either.
* Two processes hammer one return in one SQLite file: no update is lost.
* Every port fails 30 % of calls: every return still ends closed, cancelled, declined or in
  review, nothing stays pending, and nothing is delivered twice.

Everything is seeded; the child processes live in ``tests/durability_support``.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from returnflow import (
    TABLE,
    CarrierStatus,
    CarrierUpdate,
    Completion,
    DeclineReason,
    Disposition,
    Exchange,
    HandleResult,
    ItemCondition,
    MemoryStore,
    Money,
    PortError,
    QcResult,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
    ReturnsService,
    StoreCredit,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.demo.scenarios import order_1001
from returnflow.ports.store import InboundKey, ReturnStore
from returnflow.serialization import unstructure
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakePorts, Harness, ManualClock, SequentialIds

TESTS = Path(__file__).resolve().parent
SHOP = "durable-shop"

InboundEvent = CarrierUpdate | WarehouseReceipt | WarehouseFinished


# -- a world: one store, one set of fakes, a service per completion policy -----------------


@attrs.define
class World:
    """Two services (one per completion policy) over one store and one set of fakes, with
    one clock and one id sequence, so returns of both kinds live side by side."""

    store: ReturnStore
    ports: FakePorts = attrs.field(factory=FakePorts)
    clock: ManualClock = attrs.field(factory=ManualClock)
    ids: SequentialIds = attrs.field(factory=SequentialIds)
    services: dict[Completion, ReturnsService] = attrs.field(factory=dict)
    completion_of: dict[str, Completion] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        for completion in Completion:
            self.services[completion] = ReturnsService(
                store=self.store,
                commerce=self.ports.commerce,
                warehouse=self.ports.warehouse,
                carrier=self.ports.carrier,
                payments=self.ports.payments,
                notifier=self.ports.notifier,
                events=self.ports.events,
                policy=ReturnPolicy(completion=completion),
                clock=self.clock,
                ids=self.ids,
            )

    def open(self, completion: Completion, order_id: str, lines: Sequence[RequestLine]) -> str:
        self.ports.commerce.add_order(order_1001(SHOP, order_id))
        record = self.services[completion].request(
            ReturnRequest(shop=SHOP, order_id=order_id, lines=lines)
        )
        self.completion_of[record.id] = completion
        return record.id

    def handle(self, event: InboundEvent) -> HandleResult:
        return self.services[self.completion_of[event.return_id]].handle(event)


@attrs.frozen
class Plan:
    """One return of the storm: its policy, what is asked, and its inbound events (built
    from the return id) in their clean order."""

    completion: Completion
    lines: tuple[RequestLine, ...]
    events: Callable[[str], list[InboundEvent]]
    final: tuple[str, str]


def _pickup(rid: str) -> CarrierUpdate:
    return CarrierUpdate(
        shop=SHOP, return_id=rid, event_id=f"{rid}-scan-1", status=CarrierStatus.PICKED_UP
    )


def _delivered(rid: str) -> CarrierUpdate:
    return CarrierUpdate(
        shop=SHOP, return_id=rid, event_id=f"{rid}-scan-2", status=CarrierStatus.DELIVERED
    )


def _receipt(rid: str, n: int, *lines: ReceivedLine) -> WarehouseReceipt:
    return WarehouseReceipt(shop=SHOP, return_id=rid, event_id=f"{rid}-rcv-{n}", lines=lines)


def _finished(rid: str) -> WarehouseFinished:
    return WarehouseFinished(shop=SHOP, return_id=rid, event_id=f"{rid}-fin")


def _ok(line: str, quantity: int = 1, **extra: Any) -> ReceivedLine:
    return ReceivedLine(line_id=line, quantity=quantity, qc=QcResult.PASS, **extra)


def _bad(line: str, quantity: int = 1) -> ReceivedLine:
    return ReceivedLine(line_id=line, quantity=quantity, qc=QcResult.FAIL, note="worn")


PLANS: tuple[Plan, ...] = (
    # On receipt: a refund, received in one go.
    Plan(
        Completion.ON_RECEIPT,
        (RequestLine(order_line_id="L3", quantity=1, outcome=Refund()),),
        lambda r: [
            _pickup(r),
            _delivered(r),
            _receipt(r, 1, _ok("L3", condition=ItemCondition.GOOD)),
        ],
        ("closed", "no_exchange"),
    ),
    # On receipt: an even exchange, released when received.
    Plan(
        Completion.ON_RECEIPT,
        (RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l")),),
        lambda r: [_pickup(r), _delivered(r), _receipt(r, 1, _ok("L1"))],
        ("closed", "released"),
    ),
    # On receipt: store credit and a refund, one receipt per unit, one cap fails QC.
    Plan(
        Completion.ON_RECEIPT,
        (
            RequestLine(order_line_id="L2", quantity=2, outcome=StoreCredit()),
            RequestLine(order_line_id="L3", quantity=1, outcome=Refund()),
        ),
        lambda r: [
            _pickup(r),
            _delivered(r),
            _receipt(r, 1, _ok("L2")),
            _receipt(r, 2, _bad("L2")),
            _receipt(r, 3, _ok("L3")),
        ],
        ("closed", "no_exchange"),
    ),
    # Warehouse "Finished": an exchange for less (5.00 refunded), released on finish.
    Plan(
        Completion.ON_WAREHOUSE_FINISHED,
        (
            RequestLine(
                order_line_id="L1",
                quantity=1,
                outcome=Exchange(variant_id="tee-s", unit_price=Money("20.00", "EUR")),
            ),
        ),
        lambda r: [_pickup(r), _delivered(r), _receipt(r, 1, _ok("L1")), _finished(r)],
        ("closed", "released"),
    ),
    # Warehouse "Finished": two lines, per-line receipts with QC, one unit not restocked.
    Plan(
        Completion.ON_WAREHOUSE_FINISHED,
        (
            RequestLine(order_line_id="L2", quantity=2, outcome=Refund()),
            RequestLine(order_line_id="L3", quantity=1, outcome=Refund()),
        ),
        lambda r: [
            _pickup(r),
            _delivered(r),
            _receipt(r, 1, _ok("L2"), _bad("L2")),
            _receipt(r, 2, _ok("L3", disposition=Disposition.NOT_RESTOCKED)),
            _finished(r),
        ],
        ("closed", "no_exchange"),
    ),
    # Warehouse "Finished": the exchanged item fails QC, the exchange is cancelled.
    Plan(
        Completion.ON_WAREHOUSE_FINISHED,
        (RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-xl")),),
        lambda r: [_pickup(r), _delivered(r), _receipt(r, 1, _bad("L1")), _finished(r)],
        ("closed", "exchange_cancelled"),
    ),
)


def open_plans(world: World) -> dict[str, list[InboundEvent]]:
    """Open one return per plan (each on its own order); its events by return id."""
    streams: dict[str, list[InboundEvent]] = {}
    for index, plan in enumerate(PLANS, start=1):
        rid = world.open(plan.completion, f"O{index}", plan.lines)
        streams[rid] = plan.events(rid)
    return streams


def ordered_storm(
    streams: dict[str, list[InboundEvent]], total: int, rng: random.Random
) -> list[InboundEvent]:
    """``total`` deliveries: each event's first delivery keeps its return's clean order
    (returns interleaved at random); the rest are the same event objects again, sprayed
    anywhere after that event's first delivery."""
    queues = {rid: list(events) for rid, events in streams.items()}
    firsts: list[InboundEvent] = []
    while any(queues.values()):
        weights = [(rid, len(queue)) for rid, queue in queues.items() if queue]
        rid = rng.choices([w[0] for w in weights], [w[1] for w in weights])[0]
        firsts.append(queues[rid].pop(0))
    after: list[list[InboundEvent]] = [[] for _ in firsts]
    for _ in range(total - len(firsts)):
        first = rng.randrange(len(firsts))
        after[rng.randrange(first, len(firsts))].append(firsts[first])
    stream: list[InboundEvent] = []
    for event, repeats in zip(firsts, after, strict=True):
        rng.shuffle(repeats)
        stream += [event, *repeats]
    return stream


def random_storm(
    streams: dict[str, list[InboundEvent]], total: int, rng: random.Random
) -> list[InboundEvent]:
    """``total`` deliveries of the same events in any order at all."""
    events = [event for stream in streams.values() for event in stream]
    deliveries = events + [rng.choice(events) for _ in range(total - len(events))]
    rng.shuffle(deliveries)
    return deliveries


# -- comparing worlds ------------------------------------------------------------------------

# Ids the fakes hand out count across returns, so they depend on how returns interleave.
_FOREIGN_ID = re.compile(r"\b(TRK\d+|RMA-\d+|hold-\d+|item-\d+|refund-\d+|gift-\d+|pay-\d+)\b")


def canonical(value: Any) -> str:
    """``value`` as JSON with the fakes' ids renamed in order of first appearance."""
    text = json.dumps(unstructure(value), sort_keys=True, default=str)
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"<id{len(names)}>")

    return _FOREIGN_ID.sub(rename, text)


def record_view(record: ReturnRecord) -> str:
    return canonical(record)


def side_effects(world: World, rid: str) -> dict[str, Any]:
    """What the fakes hold for one return (each return has its own order)."""
    commerce, order_id = world.ports.commerce, world.store.get(SHOP, rid).order_id
    mine = [m for m in world.ports.notifier.messages if m.context.get("return_id") == rid]
    return {
        "refunds": sorted(
            (str(r.amount), canonical(r.lines)) for r in commerce.refunds if r.order_id == order_id
        ),
        "credits": sorted(str(c.amount) for c in commerce.credits if c.order_id == order_id),
        "restocks": sorted(canonical(r.lines) for r in commerce.restocks if r.order_id == order_id),
        "exchange_lines": sorted(
            (line.exchange_line_id, line.variant_id, line.quantity, line.status)
            for line in commerce.exchange_lines(SHOP, order_id)
        ),
        "tags": sorted(commerce.tags(SHOP, order_id)),
        "warehouse": sorted(
            (canonical(w.lines), w.reason, w.action, w.status)
            for w in world.ports.warehouse.returns
            if w.return_id == rid
        ),
        "labels": sorted(
            label.status for label in world.ports.carrier.labels if label.return_id == rid
        ),
        "payments": sorted(
            (str(p.amount), p.kind) for p in world.ports.payments.payments if p.return_id == rid
        ),
        "messages": [m.template for m in mine],
        "topics": world.ports.events.topics_for(rid),
    }


def replays(ports: FakePorts) -> list[str | None]:
    """Keys a fake was called with again after it had carried them out: an effect delivered
    twice, which the fake's idempotency hid from the world but not from us."""
    return [
        call.idempotency_key
        for fake in ports.all()
        for call in fake.calls
        if call.outcome == "replayed"
    ]


def ok_calls(ports: FakePorts) -> Counter[str]:
    """How many times each idempotency key was carried out (outcome ``ok``) by any fake."""
    return Counter(
        call.idempotency_key
        for fake in ports.all()
        for call in fake.calls
        if call.idempotency_key is not None and call.outcome == "ok"
    )


def outbox_by_status(store: ReturnStore, rids: Sequence[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"pending": set(), "done": set(), "failed": set()}
    for rid in rids:
        for entry in store.outbox(SHOP, rid):
            found[entry.status].add(entry.effect.key)
    return found


def assert_delivered_exactly_once(world: World, rids: Sequence[str]) -> None:
    """Every effect done was carried out once at its port, none twice, none given up, none
    pending, and no port call was made for an effect the outbox does not hold."""
    outbox = outbox_by_status(world.store, rids)
    counts = ok_calls(world.ports)
    twice = {key: count for key, count in counts.items() if count > 1}
    assert not twice, twice
    assert replays(world.ports) == []
    assert outbox["pending"] == set()
    assert list(world.store.pending()) == []
    assert outbox["failed"] == set()
    assert set(counts) == outbox["done"]


# -- 1. duplicate storm ----------------------------------------------------------------------


def clean_run(
    critical_alone: bool = True,
) -> tuple[World, dict[str, list[InboundEvent]], dict[str, str]]:
    world = World(store=MemoryStore())
    for service in world.services.values():
        service.dispatcher.critical_alone = critical_alone
    streams = open_plans(world)
    statuses: dict[str, str] = {}
    for events in streams.values():
        for event in events:
            statuses[event.event_id] = world.handle(event).status
    return world, streams, statuses


@pytest.mark.parametrize("critical_alone", [True, False])
def test_the_clean_stream_closes_every_return_as_planned(critical_alone: bool) -> None:
    world, streams, statuses = clean_run(critical_alone)
    assert set(statuses.values()) == {"applied"}
    for plan, rid in zip(PLANS, streams, strict=True):
        assert world.store.get(SHOP, rid).state == plan.final, world.services[
            plan.completion
        ].render_timeline(SHOP, rid)
    assert_delivered_exactly_once(world, list(streams))


@pytest.mark.parametrize(
    ("store_kind", "total", "seed"),
    [("memory", 3000, 11), ("memory", 3000, 12), ("sqlite", 3000, 13)],
)
def test_duplicate_storm_ends_where_the_clean_stream_ends(
    store_kind: str, total: int, seed: int, sqlite: Callable[[], SqliteStore]
) -> None:
    clean, streams, clean_status = clean_run()

    store: ReturnStore = MemoryStore() if store_kind == "memory" else sqlite()
    world = World(store=store)
    assert list(open_plans(world)) == list(streams)  # the same return ids, so the same events
    storm = ordered_storm(streams, total, random.Random(seed))
    assert len(storm) == total
    first_seen: set[tuple[str, str]] = set()
    for event in storm:
        result = world.handle(event)
        identity = (event.source, event.event_id)
        if identity in first_seen:
            assert result.status == "duplicate", (event, result.reason)
        else:
            first_seen.add(identity)
            assert result.status == clean_status[event.event_id], (event, result.reason)

    for rid in streams:
        assert record_view(world.store.get(SHOP, rid)) == record_view(clean.store.get(SHOP, rid))
        assert side_effects(world, rid) == side_effects(clean, rid), rid
        assert [e.effect.key for e in world.store.outbox(SHOP, rid)] == [
            e.effect.key for e in clean.store.outbox(SHOP, rid)
        ]
    assert_delivered_exactly_once(world, list(streams))
    assert ok_calls(world.ports) == ok_calls(clean.ports)
    for events in streams.values():
        for event in events:
            assert world.store.seen(InboundKey(SHOP, event.source, event.event_id))


@pytest.mark.parametrize("seed", range(8))
def test_random_storm_never_crashes_nor_delivers_twice(seed: int) -> None:
    world = World(store=MemoryStore())
    streams = open_plans(world)
    rng = random.Random(1000 + seed)
    first: dict[tuple[str, str], str] = {}
    order: dict[str, int] = {}  # event id -> rank of its first delivery
    for event in random_storm(streams, 600, rng):
        if rng.random() < 0.05:
            world.clock.advance(hours=1)
        result = world.handle(event)
        identity = (event.source, event.event_id)
        if identity in first:
            assert result.status == "duplicate", (event, result.reason)
        else:
            first[identity] = result.status
            order[event.event_id] = len(order)
            assert result.status in ("applied", "parked", "ignored"), (event, result)
    assert len(first) == sum(len(events) for events in streams.values())
    for plan, (rid, events) in zip(PLANS, streams.items(), strict=True):
        record = world.store.get(SHOP, rid)
        assert TABLE.is_valid(record.state), record.state
        assert record.status in TABLE.lifecycle_states
        assert record.exchange_status in TABLE.exchange_states
        if plan.completion is Completion.ON_RECEIPT:
            # Every unit arrives in the end, whatever the order: completed as planned.
            assert record.state == plan.final, world.services[plan.completion].render_timeline(
                SHOP, rid
            )
        elif record.state != plan.final:
            # The warehouse said "Finished" before the last receipt: that was ignored (or
            # sent the return to review) and the return waits for a person or a new
            # "Finished". Nothing else keeps it open.
            finished = next(e for e in events if isinstance(e, WarehouseFinished))
            receipts = [e for e in events if isinstance(e, WarehouseReceipt)]
            assert order[finished.event_id] < max(order[r.event_id] for r in receipts)
            assert record.status in ("item_received", "needs_review"), record.state
    counts = ok_calls(world.ports)
    assert max(counts.values()) == 1
    assert replays(world.ports) == []
    outbox = outbox_by_status(world.store, list(streams))
    assert outbox["pending"] == set()
    assert set(counts) == outbox["done"]


# -- 2. SIGKILL mid-dispatch -----------------------------------------------------------------

needs_sigkill = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="the platform has no SIGKILL"
)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Callable[[], SqliteStore]]:
    """Open ``returns.db`` in the test's directory (again, for another connection); every
    store opened is closed at the end."""
    opened: list[SqliteStore] = []

    def open_store() -> SqliteStore:
        opened.append(SqliteStore(tmp_path / "returns.db"))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def child_env() -> dict[str, str]:
    """The environment of a child process: ``tests`` importable, for durability_support."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH")) if p)
    return env


def run_crash_child(db: str, ledger_path: str, scenario: str) -> tuple[str, int]:
    """Run the crash child to its SIGKILL; the id of the return it worked on, its pid."""
    child = subprocess.Popen(
        [sys.executable, "-m", "durability_support.crash_child", db, ledger_path, scenario],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, (child.returncode, err)
    return out.split()[-1], child.pid


@needs_sigkill
@pytest.mark.parametrize(
    ("scenario", "intended"),
    [
        # (a) the commit is in, the process dies at its first port call, before it acts
        ("request:before:*", ("label_sent", "on_hold")),
        ("receipt:before:*", ("closed", "no_exchange")),
        # (b) the port acted (its ledger line is on disk), the outbox never heard of it
        ("request:after:create_label", ("label_sent", "on_hold")),
        ("receipt:after:refund", ("closed", "no_exchange")),
    ],
)
def test_sigkill_between_commit_and_port_loses_and_repeats_nothing(
    scenario: str,
    intended: tuple[str, str],
    tmp_path: Path,
    sqlite: Callable[[], SqliteStore],
) -> None:
    from durability_support.crash_child import SHOP as CRASH_SHOP
    from durability_support.crash_child import build
    from durability_support.ledger import Ledger

    db, ledger_path = str(tmp_path / "returns.db"), str(tmp_path / "ledger.jsonl")
    rid, pid = run_crash_child(db, ledger_path, scenario)
    _, when, operation = scenario.split(":")
    ledger = Ledger(ledger_path)
    before = ledger.entries()
    assert {entry["pid"] for entry in before} <= {pid}  # empty if it died at the first call

    # The child died holding the claim of exactly one effect, attempted zero times.
    store = sqlite()
    [crashed] = [e for e in store.outbox(CRASH_SHOP, rid) if e.claimed_by == "child"]
    assert (crashed.status, crashed.attempts) == ("pending", 0)
    if when == "before":
        assert crashed.effect.key not in ledger.idempotency_keys()
    else:
        assert (before[-1]["key"], before[-1]["operation"]) == (crashed.effect.key, operation)

    # While the dead worker's lease runs, another worker leaves that return alone.
    early = build(db, ledger, ManualClock(), "early", sqlite())
    assert early.dispatch_pending().delivered == 0
    [still] = [e for e in store.outbox(CRASH_SHOP, rid) if e.effect.key == crashed.effect.key]
    assert (still.status, still.attempts, still.claimed_by) == ("pending", 0, "child")

    # After the lease, a new process finishes the work.
    clock = ManualClock()
    clock.advance(minutes=30)
    recovery = build(db, ledger, clock, "recovery", sqlite())
    for _ in range(20):
        if not recovery.dispatch_pending().delivered:
            break
    assert list(store.pending()) == []

    entries = ledger.entries()
    assert entries[: len(before)] == before  # nothing the child did was redone or undone
    assert {entry["pid"] for entry in entries[len(before) :]} <= {os.getpid()}
    keys = Counter(entry["key"] for entry in entries)
    assert max(keys.values()) == 1, keys
    outbox = store.outbox(CRASH_SHOP, rid)
    assert {e.status for e in outbox} == {"done"}
    assert set(keys) == {e.effect.key for e in outbox}
    record = store.get(CRASH_SHOP, rid)
    assert record.state == intended
    by_operation = {entry["operation"]: entry for entry in entries}
    label = by_operation["create_label"]["result"]["data"]
    assert record.refs.tracking_number == label["tracking_number"]
    if "refund" in by_operation:
        assert record.refs.refund_ids == (by_operation["refund"]["result"]["data"]["refund_id"],)


@needs_sigkill
@pytest.mark.parametrize(
    ("scenario", "intended"),
    [
        pytest.param(
            "request:recorded:create_label",
            ("label_sent", "on_hold"),
        ),
        pytest.param(
            "receipt:recorded:issue_refund",
            ("closed", "no_exchange"),
        ),
        pytest.param(
            "request:given_up:create_label",
            ("needs_review", "on_hold"),
        ),
        # A result that changes nothing in the return is not lost by such a crash.
        ("request:recorded:publish", ("label_sent", "on_hold")),
    ],
)
def test_sigkill_after_the_outbox_recorded_the_attempt(
    scenario: str,
    intended: tuple[str, str],
    tmp_path: Path,
    sqlite: Callable[[], SqliteStore],
) -> None:
    from durability_support.crash_child import SHOP as CRASH_SHOP
    from durability_support.crash_child import build
    from durability_support.ledger import Ledger

    db, ledger_path = str(tmp_path / "returns.db"), str(tmp_path / "ledger.jsonl")
    rid, _ = run_crash_child(db, ledger_path, scenario)
    ledger = Ledger(ledger_path)

    clock = ManualClock()
    clock.advance(minutes=30)
    store = sqlite()
    recovery = build(db, ledger, clock, "recovery", store)
    for _ in range(20):
        if not recovery.dispatch_pending().delivered:
            break
    assert list(store.pending()) == []
    keys = Counter(ledger.idempotency_keys())
    assert max(keys.values()) == 1, keys
    assert set(keys) <= {e.effect.key for e in store.outbox(CRASH_SHOP, rid)}
    record = store.get(CRASH_SHOP, rid)
    assert record.state == intended, recovery.render_timeline(CRASH_SHOP, rid)
    labels = [e for e in ledger.entries() if e["operation"] == "create_label"]
    if labels:
        assert record.refs.tracking_number == labels[0]["result"]["data"]["tracking_number"]


# -- 3. two processes, one return ------------------------------------------------------------


def test_two_processes_hammering_one_return_lose_no_update(
    tmp_path: Path, sqlite: Callable[[], SqliteStore]
) -> None:
    from durability_support.hammer import SHOP as HAMMER_SHOP

    flags, events, shared = 80, 40, 40
    db, go = tmp_path / "returns.db", tmp_path / "go"
    store = sqlite()
    harness = Harness(store=store)
    harness.ports.commerce.add_order(order_1001(HAMMER_SHOP, "1001"))
    opened = harness.service.request(
        ReturnRequest(
            shop=HAMMER_SHOP, order_id="1001", lines=[RequestLine(order_line_id="L3", quantity=1)]
        )
    )
    base = harness.service.flag(HAMMER_SHOP, opened.id, "opened for the hammer")
    assert base.state == ("needs_review", "no_exchange")
    assert list(store.pending()) == []

    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "durability_support.hammer",
                str(db),
                base.id,
                name,
                str(go),
                str(seed),
                str(flags),
                str(events),
                str(shared),
            ],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, seed in (("alpha", 1), ("beta", 2))
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.{name}").exists() for name in ("alpha", "beta")):
            crashed = [child for child in children if child.poll() is not None]
            assert not crashed, [child.communicate() for child in crashed]
            assert time.monotonic() < deadline, "the children never got ready"
            time.sleep(0.01)
        go.touch()  # both start together
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]

    # Each shared event was taken by exactly one process; the other saw a duplicate.
    for i in range(shared):
        statuses = [report["events"].get(f"shared-scan-{i}") for report in reports]
        # a scan in needs_review waits (parked) for the return to be approved
        assert statuses.count("parked") <= 1, (i, statuses)  # None: it gave up conflicting
        if None not in statuses:
            assert sorted(statuses) == ["duplicate", "parked"], (i, statuses)
    flagged = [reason for report in reports for reason in report["flags"]]
    taken = [
        event_id
        for report in reports
        for event_id, status in report["events"].items()
        if status != "duplicate"
    ]
    failed = [name for report in reports for name in report["failed"]]
    # Each process's own commands succeeded or gave up conflicting; each shared event was
    # taken once, or given up by a process (perhaps the one the other beat to it).
    own_taken = [event_id for event_id in taken if not event_id.startswith("shared-")]
    own_failed = [name for name in failed if not name.startswith("shared-")]
    assert len(flagged) + len(own_taken) + len(own_failed) == 2 * (flags + events)
    shared_taken = [event_id for event_id in taken if event_id.startswith("shared-")]
    assert len(shared_taken) == len(set(shared_taken))
    shared_failed = {name for name in failed if name.startswith("shared-")}
    assert set(shared_taken) | shared_failed == {f"shared-scan-{i}" for i in range(shared)}

    # No lost update: one version and one history entry per success, every reason kept.
    final = store.get(HAMMER_SHOP, base.id)
    contention = [(r["refused_commits"], r["started"], r["finished"]) for r in reports]
    assert final.version == base.version + len(flagged) + len(taken), contention
    assert len(final.history) == len(base.history) + len(flagged) + len(taken)
    assert Counter(final.review_reasons) == Counter([*base.review_reasons, *flagged])
    assert final.state == ("needs_review", "no_exchange")
    assert [entry.version for entry in final.history] == sorted(
        entry.version for entry in final.history
    )
    new_entries = final.history[len(base.history) :]
    assert sorted(entry.version for entry in new_entries) == list(
        range(base.version + 1, final.version + 1)
    )
    for event_id in taken:
        assert store.seen(InboundKey(HAMMER_SHOP, "carrier", event_id))

    # Every "returns/update" the flags planned was published once, by one process or the other.
    delivered = Counter(key for report in reports for key in report["delivered"])
    assert max(delivered.values()) == 1
    outbox = store.outbox(HAMMER_SHOP, base.id)
    assert list(store.pending()) == []
    new_keys = {e.effect.key for e in outbox if e.effect.version > base.version}
    assert {e.status for e in outbox} == {"done"}
    assert set(delivered) == new_keys
    assert len(new_keys) == len(flagged)


# -- 4. every port fails 30 % of its calls ---------------------------------------------------

FLAKY = ReturnPolicy(max_attempts=4)
LONG_AGO = datetime(2025, 10, 1, tzinfo=timezone.utc)  # the window's 30 days are over
FLOWS = ("refund", "exchange", "upsell", "credit", "qc_fail", "cancel", "decline", "review")
# Where each flow may end: done, or with a person once an effect it needs was given up.
# A cancel refused because the return already went to review leaves it there.
ENDS: dict[str, set[str]] = {
    "refund": {"closed", "needs_review"},
    "exchange": {"closed", "needs_review"},
    "upsell": {"closed", "needs_review"},
    "credit": {"closed", "needs_review"},
    "qc_fail": {"closed", "needs_review"},
    "cancel": {"cancelled", "needs_review"},
    "decline": {"declined"},
    "review": {"closed", "needs_review"},
}
Step = Callable[[ReturnsService, str], object]


def _event(make: Callable[[str], InboundEvent]) -> Step:
    return lambda service, rid: service.handle(make(rid))


def _cancel(service: ReturnsService, rid: str) -> object:
    if service.get(SHOP, rid).status == "needs_review":
        return None  # a person has it; a customer cannot cancel it any more
    return service.cancel(SHOP, rid)


def flaky_flow(kind: str) -> tuple[list[RequestLine], list[Step]]:
    """What a flow asks for and the steps that follow, in order."""
    refund = [RequestLine(order_line_id="L3", quantity=1, outcome=Refund())]
    tee = [RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l"))]
    if kind == "refund":
        return refund, [
            _event(_pickup),
            _event(_delivered),
            _event(lambda r: _receipt(r, 1, _ok("L3"))),
        ]
    if kind == "exchange":
        return tee, [_event(_pickup), _event(lambda r: _receipt(r, 1, _ok("L1")))]
    if kind == "upsell":
        upsell = Exchange(variant_id="tee-l", unit_price=Money("35.00", "EUR"))
        return [RequestLine(order_line_id="L1", quantity=1, outcome=upsell)], [
            _event(_pickup),
            _event(lambda r: _receipt(r, 1, _ok("L1"))),
        ]
    if kind == "credit":
        credit = StoreCredit(bonus=Money("5.00", "EUR"))
        return [RequestLine(order_line_id="L2", quantity=2, outcome=credit)], [
            _event(_pickup),
            _event(lambda r: _receipt(r, 1, _ok("L2"))),
            _event(lambda r: _receipt(r, 2, _bad("L2"))),
        ]
    if kind == "qc_fail":
        return tee, [_event(lambda r: _receipt(r, 1, _bad("L1")))]
    if kind == "cancel":
        return refund, [_cancel]
    if kind == "decline":
        return refund, []
    assert kind == "review"
    used = [RequestLine(order_line_id="L3", quantity=1, condition=ItemCondition.USED)]
    return used, [
        lambda service, rid: service.approve(SHOP, rid),
        _event(_pickup),
        _event(lambda r: _receipt(r, 1, _ok("L3"))),
    ]


def request_through_flaky_platform(service: ReturnsService, request: ReturnRequest) -> str:
    """Open a return, asking again while reading the order fails (nothing is stored then)."""
    for _ in range(50):
        try:
            return service.request(request).id
        except PortError as error:
            if not error.retryable:
                raise
    raise AssertionError("the order could not be read 50 times in a row")


@pytest.mark.parametrize(
    ("store_kind", "returns", "seed"),
    [("memory", 40, 7), ("memory", 40, 8), ("memory", 40, 21), ("sqlite", 40, 9)],
)
def test_ports_failing_30_percent_end_every_return_cleanly(
    store_kind: str, returns: int, seed: int, sqlite: Callable[[], SqliteStore]
) -> None:
    store: ReturnStore = MemoryStore() if store_kind == "memory" else sqlite()
    harness = Harness(store=store, policy=FLAKY)
    service, commerce = harness.service, harness.ports.commerce
    harness.ports.fail_all_rate(0.3, seed=seed)
    rng = random.Random(seed)

    kinds: dict[str, str] = {}
    todo: dict[str, list[Step]] = {}
    for index in range(returns):
        kind = FLOWS[index % len(FLOWS)]
        order = order_1001(SHOP, f"O{index}")
        if kind == "decline":
            order = attrs.evolve(order, created_at=LONG_AGO, fulfilled_at=LONG_AGO)
        commerce.add_order(order)
        lines, steps = flaky_flow(kind)
        rid = request_through_flaky_platform(
            service, ReturnRequest(shop=SHOP, order_id=order.id, lines=lines)
        )
        kinds[rid], todo[rid] = kind, steps
    while any(todo.values()):
        rid = rng.choice(sorted(rid for rid, steps in todo.items() if steps))
        todo[rid].pop(0)(service, rid)
        if rng.random() < 0.25:
            harness.dispatch_due()
    for _ in range(100):
        if not store.pending():
            break
        harness.dispatch_due()
    assert list(store.pending()) == []

    # Every return where its flow may end; nothing pending; nothing done twice.
    ends = {rid: store.get(SHOP, rid) for rid in kinds}
    for rid, record in ends.items():
        assert record.status in ENDS[kinds[rid]], service.render_timeline(SHOP, rid)
        if record.status == "needs_review":
            assert record.review_reasons
    counts = ok_calls(harness.ports)
    assert max(counts.values()) == 1
    assert replays(harness.ports) == []
    outbox = outbox_by_status(store, list(kinds))
    assert outbox["pending"] == set()
    assert set(counts) == outbox["done"]  # given-up effects never got through
    assert {e.effect.key for rid in kinds for e in store.outbox(SHOP, rid)} == set().union(
        *outbox.values()
    )

    # What the ports hold agrees with how each return ended.
    for rid, record in ends.items():
        kind, order_id = kinds[rid], record.order_id
        refunded = sum(r.amount.amount for r in commerce.refunds if r.order_id == order_id)
        credited = sum(c.amount.amount for c in commerce.credits if c.order_id == order_id)
        worth = sum(
            (a.amount for line in record.lines for a in line.unit_amounts[: line.accepted]), 0
        )
        if record.status == "closed":
            assert all(line.settled == line.accepted for line in record.lines), record.lines
            if kind in ("refund", "review"):
                assert refunded == worth
            if kind == "credit":
                assert credited == worth + 5
        if record.state == ("closed", "released"):
            assert "hold-order" not in commerce.tags(SHOP, order_id)
            assert [x.status for x in commerce.exchange_lines(SHOP, order_id)] == ["unfulfilled"]
        if kind == "upsell" and record.status == "closed":
            charged = [
                (p.kind, p.amount) for p in harness.ports.payments.payments if p.return_id == rid
            ]
            assert charged == [("charge", Money("10.00", "EUR"))]
        if kind == "decline":
            assert record.decline_reason is DeclineReason.RETURN_PERIOD_ENDED
    # The failures were real: calls failed, effects were retried and some given up.
    failed_calls = [c for fake in harness.ports.all() for c in fake.calls if c.outcome == "failed"]
    retried = [e for rid in kinds for e in store.outbox(SHOP, rid) if e.attempts > 1]
    assert failed_calls
    assert retried
    assert outbox["failed"]
