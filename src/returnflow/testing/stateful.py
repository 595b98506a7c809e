"""A Hypothesis state machine that proves a returnflow set-up keeps every returns invariant.

Plug in your store and your port adapters (or keep the fakes), run the model in your CI, and
Hypothesis drives many returns through random commands (request, approve, decline, cancel,
flag, close, reopen, reset, expire), carrier scans, warehouse receipts with QC and
dispositions, "Finished", timers, redelivered and reordered webhooks, port failures,
crashes between a port call and the outbox write, and concurrent writers: one that commits
between another's read of a return and its write, and one whose request for units of an
order commits between another request's check of the order's free units and its commit.
Most requests go to orders that have returns already (some orders ship per line, in parts),
so an order gets several returns and its units run out; one request in six is a claim
(not in native mode)
(:func:`~returnflow.testing.strategies.claim_requests`: units lost or damaged on the way,
refunded, credited or replaced, nothing shipped back), racing the returns for the same
units. After every step it checks:

* versions only increase; history is append-only and a path through the chart
  (every entry's ``source -> target`` is what ``TABLE`` says its event does, or a note that
  changes nothing), ending in the return's state; every state is declared in ``TABLE``;
  a terminal state is never left, ``closed`` only by ``reopen``;
* a command refused with a typed error (``InvalidTransition``, ``InvalidPayload``, ...) and a
  duplicate inbound event change nothing;
* no effect runs twice for one idempotency key; no order is refunded more than was paid,
  nor a unit more often than it was bought; what the platform paid out agrees with what
  the outbox says was paid;
* an exchange is released only after its trigger (completion for ``ON_CLOSE``, a hand-in,
  delivery or receipt for ``ON_HANDED_IN``) and never for a returned unit that failed QC
  before the release was decided;
* a closed return whose payouts are confirmed has settled every accepted unit (every unit of
  a returnless or claimed line) exactly once;
* no fact is lost or applied late: a parked fact is one the return cannot use yet (the commit
  that made it usable applied it), and a return that ended keeps none;
* over all returns of an order (the order-level ledger), per order line: no unit is held by
  two returns that hold units (not in ``ENDED_UNSETTLED``); every unit held or settled
  shipped (``OrderSnapshot.shipped_units``), so units held and settled together are at most
  the units fulfilled; no unit is settled by two returns (a line settles the first
  ``settled`` of its ``units``; a reset return and the one it was reset into count as one);
  each unit is valued at what the order paid for it; and what the platform refunded and
  credited on the order, less store-credit bonuses (paid on top), is at most what was paid
  for the units settled;
* of two requests racing for units of one order, each unit goes to one return: the one
  that commits second is checked again against what is left and refused with
  ``InvalidQuantity``, or takes units that are still free; nothing else changes.

* in native mode (``platform_mode="native"``, seed 003), where a person also changes
  platform returns in the platform's admin (takes units out, attaches labels) and their
  webhooks come (late, twice), the platform's own returns agree
  with returnflow: each refunded what returnflow noted its processing refunded, processed
  no more units than returnflow asked and settled, disposed no more than was received and
  accepted, ran no call twice for one key; over an order, the platform returns refunded no
  more than was paid for the units settled.

At the end of each example the ports are healed (when the system can heal them) and the
outbox drained: nothing may stay pending, and every invariant is checked once more.

Running it on the fakes, on your store, or with your adapters::

    from returnflow.testing import Harness
    from returnflow.testing.stateful import KitSystem, returns_state_machine
    from returnflow.testing.strategies import policies

    TestOnTheFakes = returns_state_machine().TestCase
    TestOnMyStore = returns_state_machine(lambda: Harness(store=MyStore.empty())).TestCase
    TestMyConfiguration = returns_state_machine(policy=policies("EUR"), currency="EUR").TestCase
    TestNativeReturns = returns_state_machine(platform_mode="native").TestCase
    TestMyAdapters = returns_state_machine(
        lambda: KitSystem(store=MyStore.empty(), commerce=MyShopify(sandbox), ...,
                          add_order=sandbox.create_order, observer=MySandboxObserver(sandbox)),
    ).TestCase

``make_system`` is called once per example and must return an empty store. Invariants that
need to see what the ports did (idempotency, payouts, exchange items) use
:class:`PortObserver`; :class:`FakePortsObserver` reads the fakes, and a system without an
observer skips them. Size the run with Hypothesis settings (``max_examples``,
``stateful_step_count``).
"""

from __future__ import annotations

import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from returnflow.decisions import facts
from returnflow.decisions.change import Change
from returnflow.decisions.warehouse import units_to_come
from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    Disposition,
    InboundEvent,
    PlatformLine,
    PlatformReturnEvent,
    ReceivedLine,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.ledger import ENDED_UNSETTLED, UnitKey, claimed_units, held_units
from returnflow.domain.model import (
    DeclineReason,
    Exchange,
    ItemCondition,
    Keep,
    OrderSnapshot,
    QcResult,
    Refund,
    ReturnRecord,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import PlatformMode, RefundTrigger, ReleaseTrigger, ReturnPolicy
from returnflow.domain.settlement import unit_amounts
from returnflow.errors import InvalidPayload, InvalidQuantity, InvalidTransition, PortError
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.table import TABLE
from returnflow.ports.carrier import Carrier
from returnflow.ports.commerce import CommercePlatform, LineQuantity
from returnflow.ports.events import EventPublisher
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import Payments
from returnflow.ports.platform_returns import PlatformReturns, Quantity
from returnflow.ports.store import (
    Commit,
    InboundKey,
    OutboxEntry,
    Pruned,
    ReturnStore,
    count_customer_returns,
)
from returnflow.ports.warehouse import Warehouse
from returnflow.service import ReturnsService
from returnflow.testing import reordering
from returnflow.testing.fakes import FakeCommercePlatform, FakePorts
from returnflow.testing.harness import Harness, ManualClock, SequentialIds
from returnflow.testing.platform_returns import FakePlatformReturns
from returnflow.testing.reordering import schedules
from returnflow.testing.strategies import (
    claim_requests,
    inbound_streams,
    invalid_return_requests,
    orders,
    return_requests,
)

__all__ = [
    "FakePortsObserver",
    "KitSystem",
    "ObservedExchangeItem",
    "ObservedPayout",
    "PortObserver",
    "SimulatedCrash",
    "returns_state_machine",
]


# -- what the model drives and what it watches ------------------------------------------------


@attrs.frozen
class ObservedPayout:
    """A refund or store credit the platform made."""

    amount: Money
    lines: tuple[LineQuantity, ...] = ()


@attrs.frozen
class ObservedExchangeItem:
    """An exchange item on an order: ``released`` once the platform will ship it."""

    item_id: str
    hold_id: str
    exchange_line_id: str
    released: bool


class PortObserver(Protocol):
    """What the model needs to see of the ports' side (a sandbox's API, a test double's log).

    :class:`FakePortsObserver` implements it for :class:`~returnflow.testing.FakePorts`.
    """

    def executions(self) -> Mapping[str, int]:
        """How many times each idempotency key was *executed* (a replay does not count)."""
        ...

    def refunds(self, shop: str, order_id: str) -> Sequence[ObservedPayout]:
        """Refunds the platform made on the order."""
        ...

    def credits(self, shop: str, order_id: str) -> Sequence[ObservedPayout]:
        """Store credit the platform issued for the order."""
        ...

    def exchange_items(self, shop: str, order_id: str) -> Sequence[ObservedExchangeItem]:
        """Exchange items added to the order."""
        ...


class FakePortsObserver:
    """:class:`PortObserver` over the fakes: their recorded calls and their state."""

    def __init__(self, ports: FakePorts) -> None:
        self.ports = ports

    def executions(self) -> Mapping[str, int]:
        return Counter(
            call.idempotency_key
            for fake in self.ports.all()
            for call in fake.calls
            if call.outcome == "ok" and call.idempotency_key is not None
        )

    def refunds(self, shop: str, order_id: str) -> Sequence[ObservedPayout]:
        return [
            ObservedPayout(refund.amount, refund.lines)
            for refund in self.ports.commerce.refunds
            if (refund.shop, refund.order_id) == (shop, order_id)
        ]

    def credits(self, shop: str, order_id: str) -> Sequence[ObservedPayout]:
        return [
            ObservedPayout(credit.amount)
            for credit in self.ports.commerce.credits
            if (credit.shop, credit.order_id) == (shop, order_id)
        ]

    def exchange_items(self, shop: str, order_id: str) -> Sequence[ObservedExchangeItem]:
        try:
            lines = self.ports.commerce.exchange_lines(shop, order_id)
        except KeyError:
            return []
        return [
            ObservedExchangeItem(
                line.item_id, line.hold_id, line.exchange_line_id, line.status == "unfulfilled"
            )
            for line in lines
        ]


@attrs.define(kw_only=True)
class KitSystem:
    """A returnflow set-up for the model: the store and ports a service is built from, how to
    make an order exist on the platform, and optional hooks.

    ``observer`` lets the model check what the ports did; ``inject_faults(rate, seed)`` and
    ``heal()`` turn port failures on and off; ``ignore_next_release()`` makes the platform
    accept one release without honouring it; ``close()`` runs after each example.
    ``platform_returns`` is the platform's returns port, for a policy in native mode (a
    system of fakes without one gets a
    :class:`~returnflow.testing.platform_returns.FakePlatformReturns` on its commerce fake).
    :meth:`from_harness` fills all of them from a :class:`~returnflow.testing.Harness`.
    """

    store: ReturnStore
    commerce: CommercePlatform
    warehouse: Warehouse
    carrier: Carrier
    payments: Payments
    notifier: Notifier
    events: EventPublisher
    add_order: Callable[[OrderSnapshot], None]
    policy: ReturnPolicy = attrs.field(factory=ReturnPolicy)
    clock: ManualClock = attrs.field(factory=ManualClock)
    observer: PortObserver | None = None
    inject_faults: Callable[[float, int], None] | None = None
    heal: Callable[[], None] | None = None
    ignore_next_release: Callable[[], None] | None = None
    close: Callable[[], None] | None = None
    platform_returns: PlatformReturns | None = None

    @classmethod
    def from_harness(cls, harness: Harness) -> KitSystem:
        """The harness's store, fakes, policy and clock, observed through the fakes."""
        ports = harness.ports
        closer = getattr(harness.store, "close", None)

        def ignore_next_release() -> None:
            ports.commerce.ignore_releases(1)

        return cls(
            store=harness.store,
            commerce=ports.commerce,
            warehouse=ports.warehouse,
            carrier=ports.carrier,
            payments=ports.payments,
            notifier=ports.notifier,
            events=ports.events,
            add_order=ports.commerce.add_order,
            policy=harness.policy,
            clock=harness.clock,
            observer=FakePortsObserver(ports),
            inject_faults=ports.fail_all_rate,
            heal=ports.heal_all,
            ignore_next_release=ignore_next_release,
            close=closer if callable(closer) else None,
            platform_returns=harness.platform_returns,
        )


class SimulatedCrash(Exception):
    """The model's "the process died here": a port acted and the outbox did not record it.

    Raised by the model's store wrapper instead of writing a successful delivery; the effect
    stays pending under its lease and is delivered again, with the same idempotency key,
    once the lease ran out.
    """


def _effect_kinds() -> tuple[str, ...]:
    kinds: set[str] = set()
    todo: list[type[fx.Effect]] = [fx.Effect]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.kind != fx.Effect.kind:
            kinds.add(cls.kind)
    return tuple(sorted(kinds))


EFFECT_KINDS = _effect_kinds()


class _KitStore:
    """The system's store, with three hooks the model arms: a crash right after a port acted
    (before the outbox records it), a concurrent writer that commits between a read of a
    return and the write that follows it, and one that opens a return of an order between
    another request's check of the order's units and the commit that takes them."""

    def __init__(self, inner: ReturnStore, *, crash_rate: float = 0.0, seed: int = 0) -> None:
        self.inner = inner
        self.crash_rate = crash_rate
        self.rng = random.Random(seed)
        self.crash_kinds: set[str] = set()
        self.kinds: dict[str, str] = {}
        self.crashed: set[str] = set()
        self.racer: tuple[str, Callable[[], None]] | None = None
        # (order id, writer): runs once, just before the next commit that opens a return of
        # that order, so that both requests were checked against the same free units
        self.order_racer: tuple[str, Callable[[], None]] | None = None
        # every record version committed, in commit order, for the model to mark when
        # things first happened (a step may commit several versions, or crash after one)
        self.committed: list[ReturnRecord] = []

    def _crashes(self, key: str) -> bool:
        """Whether to die before recording the delivery of ``key`` (once per effect)."""
        if key in self.crashed:
            return False
        kind = self.kinds.get(key)
        if kind is not None and kind in self.crash_kinds:
            self.crash_kinds.discard(kind)
        elif not (self.crash_rate and self.rng.random() < self.crash_rate):
            return False
        self.crashed.add(key)
        return True

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        record = self.inner.get(shop, return_id)
        if self.racer is not None and self.racer[0] == return_id:
            run = self.racer[1]
            self.racer = None
            run()
        return record

    def list(
        self,
        shop: str,
        *,
        order_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[ReturnRecord]:
        return self.inner.list(shop, order_id=order_id, after=after, limit=limit)

    def count_customer_returns(self, shop: str, customer_email: str, *, since: datetime) -> int:
        return count_customer_returns(self.inner, shop, customer_email, since=since)

    def prune(self, *, older_than: datetime, inbox_older_than: datetime) -> Pruned:
        return self.inner.prune(older_than=older_than, inbox_older_than=inbox_older_than)

    def list_due(self, now: datetime, *, limit: int = 1000) -> Sequence[ReturnRecord]:
        return self.inner.list_due(now, limit=limit)

    def list_in(
        self,
        shop: str | None,
        statuses: Sequence[str],
        *,
        exchange_status: str | None = None,
        limit: int = 1000,
    ) -> Sequence[ReturnRecord]:
        return self.inner.list_in(shop, statuses, exchange_status=exchange_status, limit=limit)

    def commit(self, commit: Commit) -> Sequence[OutboxEntry]:
        if self.order_racer is not None and any(
            expected == 0 and record.order_id == self.order_racer[0]
            for record, expected in commit.records
        ):
            run = self.order_racer[1]
            self.order_racer = None
            run()
        if any(attempt.ok and self._crashes(attempt.key) for attempt in commit.attempts):
            raise SimulatedCrash(f"crashed before recording {commit.attempts[0].key}")
        claimed = self.inner.commit(commit)
        self.committed.extend(record for record, _ in commit.records)
        for effect in commit.effects:
            self.kinds[effect.key] = effect.kind
        return claimed

    def seen(self, key: InboundKey) -> bool:
        return self.inner.seen(key)

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        return self.inner.outbox(shop, return_id)

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        return self.inner.pending(limit)

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        worker: str,
        limit: int = 100,
        shop: str | None = None,
        return_id: str | None = None,
        run: int = 1,
    ) -> Sequence[OutboxEntry]:
        claimed = self.inner.claim(
            now=now,
            lease_until=lease_until,
            worker=worker,
            limit=limit,
            shop=shop,
            return_id=return_id,
            run=run,
        )
        for entry in claimed:
            self.kinds[entry.effect.key] = entry.effect.kind
        return claimed

    def record_attempt(
        self,
        key: str,
        *,
        ok: bool,
        at: datetime,
        result: object = None,
        error: str | None = None,
        give_up: bool = False,
        retry_at: datetime | None = None,
    ) -> OutboxEntry:
        if ok and self._crashes(key):
            raise SimulatedCrash(f"crashed before recording {key}")
        return self.inner.record_attempt(
            key, ok=ok, at=at, result=result, error=error, give_up=give_up, retry_at=retry_at
        )

    def read_cursor(self, name: str) -> str | None:
        return self.inner.read_cursor(name)

    def write_cursor(self, name: str, value: str, *, expected: str | None) -> None:
        self.inner.write_cursor(name, value, expected=expected)


def _as_store(store: _KitStore) -> ReturnStore:
    """The kit's store where a :class:`ReturnStore` is wanted (and proof, to the type
    checker, that it still is one when the port grows)."""
    return store


# -- the checks -------------------------------------------------------------------------------


def _describe(record: ReturnRecord) -> str:
    return f"return {record.id} ({'/'.join(record.state)}, v{record.version})"


def _same_entries(new: Sequence[Any], old: Sequence[Any]) -> bool:
    """Whether ``old`` is a prefix of ``new``, entries and payloads equal."""
    return len(new) >= len(old) and all(
        a == b and dict(a.payload) == dict(b.payload) for a, b in zip(new, old, strict=False)
    )


def _check_record(record: ReturnRecord, previous: ReturnRecord | None) -> None:
    """Versions, history and states of one return, alone and against its last snapshot."""
    what = _describe(record)
    assert TABLE.is_valid(record.state), f"{what}: state not declared in TABLE"
    history = record.history
    assert history, f"{what}: no history"
    first = history[0].source
    assert first == TABLE.initial or record.parent_id is not None, (
        f"{what}: history starts at {first}, not at {TABLE.initial}"
    )
    state = first
    version = 0
    for index, entry in enumerate(history):
        where = f"{what}: history[{index}] {entry.event} {entry.source} -> {entry.target}"
        assert TABLE.is_valid(entry.source), f"{where}: source not in TABLE"
        assert TABLE.is_valid(entry.target), f"{where}: target not in TABLE"
        assert entry.source == state, f"{where}: starts from {state}: history is not a path"
        if entry.event in TABLE.event_region:
            assert TABLE.target(entry.source, entry.event) == entry.target, (
                f"{where}: TABLE says {TABLE.target(entry.source, entry.event)}"
            )
        else:
            assert entry.source == entry.target, f"{where}: a note changed the state"
        if entry.source[0] in TABLE.terminal_states:
            assert entry.target[0] == entry.source[0], f"{where}: left a terminal state"
        if entry.source[0] == "closed" and entry.target[0] != "closed":
            assert entry.event == "reopen", f"{where}: closed left other than by reopen"
        assert version <= entry.version <= record.version, (
            f"{where}: version {entry.version} after {version}, record at {record.version}"
        )
        version = entry.version
        state = entry.target
    assert state == record.state, f"{what}: history ends in {state}"
    for line in record.lines:
        assert 0 <= line.accepted + line.rejected == line.received <= line.quantity, (
            f"{what}: line {line.id} received {line.received} = {line.accepted} accepted + "
            f"{line.rejected} rejected of {line.quantity}"
        )
        assert 0 <= line.settled <= line.quantity, f"{what}: line {line.id} settled {line.settled}"
    if previous is None:
        return
    assert record.version >= previous.version, f"{what}: version went down from {previous.version}"
    assert _same_entries(record.history, previous.history), (
        f"{what}: history is not append-only (was {len(previous.history)} entries at "
        f"v{previous.version})"
    )
    if record.version == previous.version:
        assert record == previous, f"{what}: changed without a new version"
    if previous.status in TABLE.terminal_states:
        assert record.status == previous.status, (
            f"{what}: left the terminal state {previous.status}"
        )


def _due(line: Any) -> int:
    """Units a line settles: every unit of a returnless line (kept, or claimed: nothing
    comes back), else those accepted."""
    return int(line.quantity if isinstance(line.outcome, Keep) or line.claimed else line.accepted)


def _check_parked(record: ReturnRecord, policy: ReturnPolicy) -> None:
    """No fact lost, none applied too late: a parked fact is one the return cannot use yet
    (it would have been applied by the commit that made it usable), and a return that ended
    keeps none."""
    what = _describe(record)
    if record.status in ("closed", "cancelled", "expired", "declined", "reset"):
        assert not record.parked, f"{what}: ended with parked facts {record.parked}"
    change = Change(record, now=record.updated_at, actor="kit", base=record.version)
    for parked in record.parked:
        event = facts.parked_event(change, parked)
        assert facts.waits(change, event, policy), (
            f"{what}: {parked.kind} {parked.event_id} is parked but the return can use it"
        )


def _check_settled(
    record: ReturnRecord, outbox: Sequence[OutboxEntry], policy: ReturnPolicy
) -> None:
    """A closed return with its payouts confirmed settled every due unit exactly once."""
    if record.status != "closed":
        return
    payouts = (fx.IssueRefund, fx.IssueStoreCredit)
    if any(isinstance(e.effect, payouts) and e.status == "pending" for e in outbox):
        return
    early = policy.refund_trigger in (RefundTrigger.ON_HANDED_IN, RefundTrigger.ON_DELIVERED)
    for line in record.lines:
        due = _due(line)
        where = (
            f"{_describe(record)}: line {line.id} ({type(line.outcome).__name__}) settled "
            f"{line.settled} of {due} due"
        )
        if early and isinstance(line.outcome, (Refund, StoreCredit)):
            # Paid at the scan, before QC: a rejected unit may have been paid already.
            assert due <= line.settled <= line.quantity, where
        else:
            assert line.settled == due, where


def _lineage(records: Mapping[str, ReturnRecord]) -> dict[str, str]:
    """Each return's first ancestor: a return reset into a new one and the new one settle
    the units they share once between them (the new one carries what was settled)."""
    roots: dict[str, str] = {}
    for rid, record in records.items():
        root, seen = record, {rid}
        while root.parent_id is not None and root.parent_id in records:
            root = records[root.parent_id]
            if root.id in seen:
                break
            seen.add(root.id)
        roots[rid] = root.id
    return roots


def _check_order_units(
    order: OrderSnapshot, records: Sequence[ReturnRecord], roots: Mapping[str, str]
) -> tuple[dict[UnitKey, Money], Money]:
    """The order-level ledger over all returns of ``order``: no unit is held by two returns
    that still hold units (not in ``ENDED_UNSETTLED``), every unit held or settled shipped,
    held and settled units together are at most the shipped units of each line, and no unit
    is settled by two returns (a line settles the first ``settled`` of its ``units``, as
    ``settle_parts`` pays them; a reset return and the return it was reset into count as
    one). Returns the paid amount of each settled unit and the store-credit bonuses due on
    top of it (one per order line and chain of resets with a unit settled)."""
    amounts = unit_amounts(order)
    shipped = {line.id: order.shipped_units(line) for line in order.lines}
    holders: dict[UnitKey, str] = {}
    settlers: dict[UnitKey, tuple[str, str]] = {}
    values: dict[UnitKey, Money] = {}
    bonuses: dict[tuple[str, str], Money] = {}
    for record in records:
        what = _describe(record)
        holds = record.status not in ENDED_UNSETTLED
        root = roots.get(record.id, record.id)
        for line in record.lines:
            where = f"{what}: line {line.id} (order line {line.order_line_id})"
            ships = shipped.get(line.order_line_id)
            assert ships is not None, f"{where}: order {order.id} has no such line"
            assert len(line.units) == line.quantity == len(line.unit_amounts), (
                f"{where}: {line.quantity} units, {len(line.units)} unit indices, "
                f"{len(line.unit_amounts)} unit amounts"
            )
            assert len(set(line.units)) == len(line.units), f"{where}: units {line.units}"
            outcome = line.outcome
            if isinstance(outcome, StoreCredit) and outcome.bonus and line.settled:
                bonuses[(root, line.order_line_id)] = outcome.bonus
            for index, unit in enumerate(line.units):
                key = (line.order_line_id, unit)
                assert unit in ships, (
                    f"{where}: unit {unit} never shipped ({len(ships)} of the line's units did)"
                )
                assert line.unit_amounts[index] == amounts[line.order_line_id][unit], (
                    f"{where}: unit {unit} valued {line.unit_amounts[index]}, the order paid "
                    f"{amounts[line.order_line_id][unit]}"
                )
                if holds:
                    holder = holders.setdefault(key, record.id)
                    assert holder == record.id, (
                        f"order {order.id}: unit {unit} of line {line.order_line_id} is held by "
                        f"two returns, {holder} and {record.id}"
                    )
                if index < line.settled:
                    first = settlers.setdefault(key, (root, record.id))
                    assert first[0] == root, (
                        f"order {order.id}: unit {unit} of line {line.order_line_id} is settled "
                        f"by two returns, {first[1]} and {record.id}"
                    )
                    values[key] = line.unit_amounts[index]
    for order_line in order.lines:
        held = {unit for line_id, unit in holders if line_id == order_line.id}
        settled = {unit for line_id, unit in settlers if line_id == order_line.id}
        assert len(held | settled) <= len(shipped[order_line.id]), (
            f"order {order.id}: line {order_line.id} has {len(held | settled)} units held or "
            f"settled, {len(shipped[order_line.id])} shipped"
        )
    return values, Money.sum(bonuses.values(), order.currency)


def _release_evidence(record: ReturnRecord, trigger: ReleaseTrigger) -> bool:
    """Whether ``record``'s history shows the trigger of an exchange release."""
    implied = any(entry.event == "stage_implied" for entry in record.history)
    events = {entry.event for entry in record.history if entry.event in TABLE.event_region}
    if record.completed_at is not None or events & {"close", "refund"}:
        return True
    if trigger is ReleaseTrigger.ON_CLOSE:
        return False
    # a receipt or a parcel sent back implies the hand-in (recorded as stage_implied)
    scanned = events & {"hand_in", "deliver", "receive"}
    return bool(scanned) or implied or record.parent_id is not None


# -- the machine ------------------------------------------------------------------------------


@attrs.frozen
class _Config:
    make_system: Callable[[], Harness | KitSystem]
    policy: ReturnPolicy | st.SearchStrategy[ReturnPolicy] | None
    fault_rate: float
    crash_rate: float
    races: bool
    shop: str
    currency: str | None
    max_returns: int
    max_lines: int
    max_order_age_days: int
    engine: str = "compiled"
    critical_alone: bool = True
    platform_mode: PlatformMode | None = None


_SCANS = st.sampled_from(
    [
        CarrierStatus.PICKED_UP,
        CarrierStatus.PICKED_UP,
        CarrierStatus.DELIVERED,
        CarrierStatus.DELIVERED,
        CarrierStatus.RETURN_TO_ORIGIN,
    ]
)
_COMMAND_ERRORS: tuple[type[Exception], ...] = (InvalidTransition, InvalidPayload)


def _has_returns(machine: Any) -> bool:
    return bool(machine.records)


class ReturnsModel(RuleBasedStateMachine):
    """The model; build a configured subclass with :func:`returns_state_machine`."""

    config: _Config

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, ReturnRecord] = {}
        self.orders: dict[str, OrderSnapshot] = {}
        self.handled: list[InboundEvent] = []
        self.handled_ids: set[str] = set()
        self.snapshots: list[ReturnRecord] = []
        self.moment = 0
        self.released_at: dict[str, int] = {}
        self.rejected_at: dict[tuple[str, str], int] = {}
        self.platform_checked: set[str] = set()
        self.counter = 0
        self.faults = False
        self.platform: PlatformReturns | None = None
        self.taken_out: set[str] = set()
        """The platform returns a person took units out of in the platform's admin."""

    # -- set-up and tear-down ------------------------------------------------------------------

    @initialize(data=st.data())
    def start(self, data: st.DataObject) -> None:
        config = self.config
        made = config.make_system()
        system = KitSystem.from_harness(made) if isinstance(made, Harness) else made
        if isinstance(config.policy, ReturnPolicy):
            policy = config.policy
        elif config.policy is not None:
            policy = data.draw(config.policy, label="policy")
        else:
            policy = system.policy
        if config.platform_mode is not None:
            policy = attrs.evolve(policy, platform_mode=config.platform_mode)
        native = policy.platform_mode is PlatformMode.NATIVE
        if native and system.platform_returns is None:
            if not isinstance(system.commerce, FakeCommercePlatform):
                raise ValueError("native mode on a system of its own needs its platform_returns")
            system.platform_returns = FakePlatformReturns(system.commerce)
        self.system = system
        self.policy = policy
        self.platform = system.platform_returns if native else None
        self.clock = system.clock
        self.raw = system.store
        self.store = _KitStore(
            system.store,
            crash_rate=config.crash_rate,
            seed=data.draw(st.integers(0, 2**16), label="crash seed") if config.crash_rate else 0,
        )
        ids = SequentialIds("R")
        parts: dict[str, Any] = {
            "store": _as_store(self.store),
            "commerce": system.commerce,
            "warehouse": system.warehouse,
            "carrier": system.carrier,
            "payments": system.payments,
            "notifier": system.notifier,
            "events": system.events,
            "policy": policy,
            "clock": self.clock,
            "ids": ids,
            "jitter_seed": 0,
            "engine": config.engine,
            "platform_returns": self.platform,
        }
        self.service = ReturnsService(**parts, worker_id="kit")
        self.racer = ReturnsService(**parts, worker_id="kit-racer", auto_dispatch=False)
        for service in (self.service, self.racer):
            service.dispatcher.critical_alone = config.critical_alone
        if config.fault_rate and system.inject_faults is not None:
            seed = data.draw(st.integers(0, 2**16), label="fault seed")
            system.inject_faults(config.fault_rate, seed)
            if isinstance(self.platform, FakePlatformReturns):
                self.platform.fail_rate(config.fault_rate, seed=seed)
            self.faults = True
        for _ in range(data.draw(st.integers(1, 3), label="returns to start with")):
            self.request_return(data)

    def teardown(self) -> None:
        """Heal the ports, drain the outbox, check once more, close the system. After a
        failed step (Hypothesis tears down inside ``finally``) only close, so that the
        failure reported is the step's own."""
        system = getattr(self, "system", None)
        if system is None:
            return
        try:
            if sys.exc_info()[1] is not None:
                return
            self.store.crash_kinds.clear()
            self.store.crash_rate = 0.0
            self.store.racer = None
            if system.heal is not None:
                system.heal()
                if isinstance(self.platform, FakePlatformReturns):
                    self.platform.heal()
                self.faults = False
            rounds = 0
            while self.raw.pending(1) and rounds < 60:
                self._dispatch_due()
                rounds += 1
            if not self.faults:
                stuck = [entry.effect.key for entry in self.raw.pending(10)]
                assert not stuck, f"effects still pending after draining the outbox: {stuck}"
            self.every_invariant_holds()
        finally:
            if system.close is not None:
                system.close()

    # -- helpers -------------------------------------------------------------------------------

    @property
    def shop(self) -> str:
        return self.config.shop

    def _next(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _pick(self, data: st.DataObject) -> ReturnRecord:
        """A return, four times in five one that is still open when there is one."""
        done = (*TABLE.terminal_states, "closed")
        live = sorted(rid for rid, record in self.records.items() if record.status not in done)
        everyone = sorted(self.records)
        among = everyone
        if live and data.draw(st.integers(0, 4), label="open") > 0:
            among = live
        rid = data.draw(st.sampled_from(among), label="return")
        return self.raw.get(self.shop, rid)

    def _claimed(self, order_id: str) -> dict[str, int]:
        """Per order line, the units the order's returns hold (the ledger's rule: a return
        that ended unsettled still holds the units it paid for)."""
        claimed: dict[str, int] = {}
        for record in self.raw.list(self.shop, order_id=order_id):
            for line_id, _ in held_units(record):
                claimed[line_id] = claimed.get(line_id, 0) + 1
        return claimed

    def _restart(self) -> None:
        """After a simulated crash: the worker comes back once its lease ran out and delivers
        what is due (the effect it died on again, with the same key)."""
        for _ in range(1000):
            self.clock.advance(seconds=self.service.lease.total_seconds() + 1)
            try:
                self.service.dispatch_pending()
            except SimulatedCrash:
                continue
            return
        raise AssertionError("the worker crashed 1000 times in a row")

    def _dispatch_due(self) -> None:
        self.clock.advance(seconds=self.policy.retry_cap_seconds * 1.25 + 1)
        self.service.dispatch_pending()

    def _unchanged(self, before: ReturnRecord, what: str) -> None:
        after = self.raw.get(self.shop, before.id)
        changed = f"{what} was refused, yet {_describe(before)} changed to {_describe(after)}"
        assert after == before, changed
        assert _same_entries(after.history, before.history), changed

    def _command(
        self,
        record: ReturnRecord,
        what: str,
        call: Callable[[], object],
        accepted: tuple[type[Exception], ...] = _COMMAND_ERRORS,
    ) -> None:
        """Run a command; a typed refusal must leave the return and the outbox as they were."""
        outbox = len(self.raw.outbox(self.shop, record.id))
        count = len(self.raw.list(self.shop))
        try:
            result = call()
        except accepted:
            self._unchanged(record, what)
            assert len(self.raw.outbox(self.shop, record.id)) == outbox, f"{what}: effects planned"
            assert len(self.raw.list(self.shop)) == count, f"{what}: a return was created"
            return
        except SimulatedCrash:
            self._restart()
            return
        for item in result if isinstance(result, tuple) else (result,):
            if isinstance(item, ReturnRecord):
                self.snapshots.append(item)

    def _handle(self, event: InboundEvent, *, may_be_invalid: bool = False) -> None:
        before = self.raw.get(self.shop, event.return_id)
        key = InboundKey(event.shop, event.source, event.event_id)
        repeat = event.event_id in self.handled_ids
        try:
            result = self.service.handle(event)
        except InvalidPayload:
            assert may_be_invalid, f"{event} refused"
            assert not repeat, f"{event} refused when delivered again"
            self._unchanged(before, f"{type(event).__name__} {event.event_id}")
            assert not self.raw.seen(key), f"refused {event.event_id} marked as processed"
            return
        except SimulatedCrash:
            self._record_handled(event)
            self._restart()
            return
        if repeat:
            assert result.status == "duplicate", f"{event.event_id} again: {result.status}"
            self._unchanged(before, f"duplicate {event.event_id}")
        else:
            handled = ("applied", "parked", "ignored")
            assert result.status in handled, (event.event_id, result.status)
            assert self.raw.seen(key), f"{event.event_id} not marked as processed"
        self._record_handled(event)
        self.snapshots.append(result.record)

    def _record_handled(self, event: InboundEvent) -> None:
        if event.event_id not in self.handled_ids:
            self.handled_ids.add(event.event_id)
            self.handled.append(event)

    # -- requests ------------------------------------------------------------------------------

    def _left(self, order: OrderSnapshot) -> dict[str, int]:
        """Per order line, the units that shipped and no return holds."""
        claimed = self._claimed(order.id)
        return {
            line.id: len(order.shipped_units(line)) - claimed.get(line.id, 0)
            for line in order.lines
        }

    def _order_to_return(self, data: st.DataObject) -> OrderSnapshot:
        """Three times in four an order with returns and units left to return, if there is
        one (so that orders get several returns, and their units run out); else a new one."""
        with_units = [
            oid for oid in sorted(self.orders) if any(self._left(self.orders[oid]).values())
        ]
        if with_units and data.draw(st.integers(0, 3), label="order with returns") > 0:
            return self.orders[data.draw(st.sampled_from(with_units), label="order")]
        order = data.draw(
            orders(
                self.shop,
                self.config.currency,
                self.config.max_lines,
                now=self.clock.now(),
                order_id=self._next("O"),
                max_quantity=3,
                max_age_days=self.config.max_order_age_days,
            ),
            label="order",
        )
        self.system.add_order(order)
        self.orders[order.id] = order
        return order

    def _draw_request(
        self, data: st.DataObject, order: OrderSnapshot, claimed: Mapping[str, int], label: str
    ) -> ReturnRequest:
        """A request for ``order``: a return, or one time in six a claim (units lost or
        damaged on the way: nothing ships back, settled at approval; in native mode it opens
        no platform return and is refunded on the order, beside the order's platform
        returns)."""
        apps = self.policy.exchange_apps
        if data.draw(st.integers(0, 5), label=f"{label} is a claim") == 0:
            return data.draw(claim_requests(order, claimed, exchange_apps=apps), label=label)
        return data.draw(return_requests(order, claimed, exchange_apps=apps), label=label)

    def _request(self, order: OrderSnapshot, data: st.DataObject) -> None:
        claimed = self._claimed(order.id)
        if not any(units > 0 for units in self._left(order).values()):
            return  # every unit that shipped is held already; the others are not returnable
        request = self._draw_request(data, order, claimed, "request")
        before = len(self.raw.list(self.shop, order_id=order.id))
        failure: PortError | None = None
        try:
            self.snapshots.append(self.service.request(request))
        except PortError as error:
            failure = error
        except SimulatedCrash:
            self._restart()
            return
        if failure is not None:
            assert self.faults, f"request failed: {failure}"
            assert failure.retryable, f"request failed for good: {failure}"
            after = len(self.raw.list(self.shop, order_id=order.id))
            assert after == before, "a failed request stored a return"

    @precondition(lambda self: len(self.records) < self.config.max_returns)
    @rule(data=st.data())
    def request_return(self, data: st.DataObject) -> None:
        """A customer asks to return units of an order with returns already (mostly), or of
        a new one."""
        self._request(self._order_to_return(data), data)

    @precondition(
        lambda self: self.config.races and len(self.records) + 2 <= self.config.max_returns
    )
    @rule(data=st.data())
    def racing_requests(self, data: st.DataObject) -> None:
        """Two writers open returns of one order at once: another worker's request (mostly
        for the same lines) commits between this request's check of the free units and its
        commit. Each unit goes to one return; the request that lost a unit is checked again
        and refused with ``InvalidQuantity``, or takes units that are still free; nothing
        else changes."""
        order = self._order_to_return(data)
        claimed = self._claimed(order.id)
        left = self._left(order)
        if not any(units > 0 for units in left.values()):
            return
        mine = self._draw_request(data, order, claimed, "request")
        rival_claimed = dict(claimed)
        if data.draw(st.integers(0, 3), label="same lines") > 0:
            wanted = {line.order_line_id for line in mine.lines}
            for line in order.lines:  # the rival asks for units of the same lines only
                if line.id not in wanted:
                    rival_claimed[line.id] = claimed.get(line.id, 0) + left[line.id]
        theirs = self._draw_request(data, order, rival_claimed, "rival request")
        before = {record.id: record for record in self.raw.list(self.shop, order_id=order.id)}
        rival: list[ReturnRecord] = []
        raced: list[bool] = []
        failures: list[PortError] = []

        def race() -> None:
            raced.append(True)
            try:
                rival.append(self.racer.request(theirs))
            except PortError as error:
                failures.append(error)

        refused: InvalidQuantity | None = None
        accepted: ReturnRecord | None = None
        crashed = False
        self.store.order_racer = (order.id, race)
        try:
            accepted = self.service.request(mine)
        except InvalidQuantity as error:
            refused = error
        except PortError as error:
            failures.append(error)
        except SimulatedCrash:
            crashed = True
        finally:
            self.store.order_racer = None
        for failure in failures:
            assert self.faults, f"a racing request failed: {failure}"
            assert failure.retryable, f"a racing request failed for good: {failure}"
        if crashed:
            self._restart()
        self.snapshots.extend(rival)
        if accepted is not None:
            self.snapshots.append(accepted)
        after = {record.id: record for record in self.raw.list(self.shop, order_id=order.id)}
        new = {rid: record for rid, record in after.items() if rid not in before}
        if refused is not None:
            assert raced, f"a request valid for the order was refused: {refused}"
            assert set(new) == {record.id for record in rival}, (
                f"a request refused for want of units ({refused}) stored {sorted(new)}"
            )
            held = claimed_units(after.values())
            shipped = {line.id: len(order.shipped_units(line)) for line in order.lines}
            assert any(
                line.quantity > shipped[line.order_line_id] - len(held.get(line.order_line_id, ()))
                for line in mine.lines
            ), f"refused ({refused}) though every line of the request still had its units free"
        if not crashed:
            for rid, record in before.items():  # the order's other returns are untouched
                assert after[rid] == record, (
                    f"racing requests of order {order.id} changed {_describe(record)} "
                    f"to {_describe(after[rid])}"
                )
        theirs_ids = {record.id for record in rival}
        mine_ids = sorted(set(new) - theirs_ids)  # stored even when a crash hid the result
        assert len(mine_ids) <= 1, f"racing requests of order {order.id} stored {sorted(new)}"
        for rid in theirs_ids:
            for mine_id in mine_ids:
                both = held_units(after[rid]) & held_units(after[mine_id])
                assert not both, (
                    f"order {order.id}: racing requests both took units {sorted(both)}: "
                    f"{rid} and {mine_id}"
                )

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def request_with_a_defect(self, data: st.DataObject) -> None:
        order = self.orders[data.draw(st.sampled_from(sorted(self.orders)), label="order")]
        case = data.draw(
            invalid_return_requests(
                order,
                self._claimed(order.id),
                exchange_apps=self.policy.exchange_apps,
                claims=True,
            ),
            label="defect",
        )
        before = list(self.raw.list(self.shop))
        failure: PortError | None = None
        try:
            self.service.request(case.build())
        except case.error:
            pass
        except PortError as error:
            failure = error
        else:
            raise AssertionError(f"a request with the defect {case.defect!r} was accepted")
        if failure is not None:
            assert self.faults, f"{case.defect}: {failure}"
            assert failure.retryable, f"{case.defect}: {failure}"
        assert list(self.raw.list(self.shop)) == before, f"{case.defect}: something was stored"

    # -- commands ------------------------------------------------------------------------------

    def _run_command(self, record: ReturnRecord, action: str, reason: DeclineReason) -> None:
        shop, rid, service = self.shop, record.id, self.service
        calls: dict[str, Callable[[], object]] = {
            "approve": lambda: service.approve(shop, rid),
            "close": lambda: service.close(shop, rid),
            "reopen": lambda: service.reopen(shop, rid, reason="customer wrote again"),
            "reset": lambda: service.reset(shop, rid),
            "decline": lambda: service.decline(shop, rid, reason, note="agent"),
            "cancel": lambda: service.cancel(shop, rid),
            "flag": lambda: service.flag(shop, rid, "an agent looks"),
            "expire": lambda: service.expire(shop, rid),
            "issue_label": lambda: service.issue_label(shop, rid),
        }
        self._command(record, action, calls[action])

    @precondition(_has_returns)
    @rule(data=st.data(), action=st.sampled_from(["approve", "close", "reopen", "reset"]))
    def agent_resolves(self, data: st.DataObject, action: str) -> None:
        """An agent approves, closes, reopens or resets (partial receipt) a return."""
        self._run_command(self._pick(data), action, DeclineReason.OTHER)

    @precondition(_has_returns)
    @rule(
        data=st.data(),
        action=st.sampled_from(["decline", "cancel", "flag", "expire", "issue_label"]),
        reason=st.sampled_from(list(DeclineReason)),
    )
    def interruption(self, data: st.DataObject, action: str, reason: DeclineReason) -> None:
        """A decline, a cancel, a flag for review, an expiry or a new label."""
        self._run_command(self._pick(data), action, reason)

    # -- inbound facts -------------------------------------------------------------------------

    @precondition(_has_returns)
    @rule(data=st.data(), status=_SCANS)
    def carrier_scan(self, data: st.DataObject, status: CarrierStatus) -> None:
        record = self._pick(data)
        event = CarrierUpdate(
            shop=self.shop, return_id=record.id, event_id=self._next("scan-"), status=status
        )
        self._handle(event)

    @precondition(_has_returns)
    @rule(data=st.data())
    def warehouse_receipt(self, data: st.DataObject) -> None:
        record = self._pick(data)
        to_come = {line.id: units_to_come(record, line) for line in record.lines}
        open_lines = [line for line in record.lines if to_come[line.id] > 0]
        too_many = not open_lines or data.draw(st.integers(0, 9), label="too many") == 0
        candidates = open_lines or list(record.lines)
        chosen = data.draw(
            st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique_by=id),
            label="lines",
        )
        lines = []
        for index, line in enumerate(chosen):
            if too_many and index == 0:
                quantity = to_come[line.id] + 1
            else:
                quantity = data.draw(st.integers(1, max(to_come[line.id], 1)), label="units")
            passed = data.draw(st.integers(0, 2), label="qc") > 0
            lines.append(
                ReceivedLine(
                    line_id=data.draw(st.sampled_from([line.id, line.order_line_id])),
                    quantity=quantity,
                    qc=QcResult.PASS if passed else QcResult.FAIL,
                    condition=data.draw(st.none() | st.sampled_from(list(ItemCondition))),
                    disposition=data.draw(st.none() | st.sampled_from(list(Disposition))),
                )
            )
        event = WarehouseReceipt(
            shop=self.shop, return_id=record.id, event_id=self._next("rcv-"), lines=lines
        )
        self._handle(event, may_be_invalid=too_many)

    @precondition(_has_returns)
    @rule(data=st.data())
    def warehouse_finished(self, data: st.DataObject) -> None:
        record = self._pick(data)
        self._handle(
            WarehouseFinished(shop=self.shop, return_id=record.id, event_id=self._next("fin-"))
        )

    @precondition(_has_returns)
    @rule(data=st.data(), steps=st.integers(1, 4))
    def advance(self, data: st.DataObject, steps: int) -> None:
        """What usually happens next to a return, ``steps`` times: an approval, a carrier
        scan, a receipt of every outstanding unit (QC drawn), "Finished", a close."""
        rid = self._pick(data).id
        for _ in range(steps):
            self._advance_once(self.raw.get(self.shop, rid), data)

    def _advance_once(self, record: ReturnRecord, data: st.DataObject) -> None:
        status, rid = record.status, record.id
        if status in ("pending_review", "needs_review"):
            action = "approve" if status == "pending_review" else "close"
            self._run_command(record, action, DeclineReason.OTHER)
            return
        if status in ("approved", "label_sent", "in_transit"):
            picked = status != "in_transit" and data.draw(st.booleans(), label="scan first")
            scan = CarrierStatus.PICKED_UP if picked else CarrierStatus.DELIVERED
            self._handle(
                CarrierUpdate(
                    shop=self.shop, return_id=rid, event_id=self._next("scan-"), status=scan
                )
            )
            return
        # units in a receipt still parked (waiting for a payment) are at the warehouse
        to_come = {line.id: units_to_come(record, line) for line in record.lines}
        outstanding = [line for line in record.lines if to_come[line.id] > 0]
        if outstanding and status not in ("closed", *TABLE.terminal_states):
            lines = [
                ReceivedLine(
                    line_id=line.id,
                    quantity=to_come[line.id],
                    qc=QcResult.PASS
                    if data.draw(st.integers(0, 3), label=f"{line.id} qc") > 0
                    else QcResult.FAIL,
                )
                for line in outstanding
            ]
            self._handle(
                WarehouseReceipt(
                    shop=self.shop, return_id=rid, event_id=self._next("rcv-"), lines=lines
                )
            )
            return
        self._handle(WarehouseFinished(shop=self.shop, return_id=rid, event_id=self._next("fin-")))

    @precondition(lambda self: bool(self.handled))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """A webhook delivered again: a duplicate that changes nothing."""
        self._handle(data.draw(st.sampled_from(self.handled), label="event"))

    @precondition(_has_returns)
    @rule(data=st.data())
    def inbound_stream(self, data: st.DataObject) -> None:
        """A return's carrier and warehouse facts, with repeats, reorderings and late facts."""
        record = self._pick(data)
        stream = data.draw(
            inbound_streams(
                record, event_prefix=self._next(f"{record.id}-s"), return_to_origin=True
            ),
            label="stream",
        )
        for event in stream:
            self._handle(event)

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def facts_in_any_order_end_alike(self, data: st.DataObject) -> None:
        """Two fresh twin worlds (this example's policy and clock, fakes that never fail)
        open the same return; one is told its carrier and warehouse facts in the order they
        happen, the other in a drawn order with redeliveries. They end alike
        (:mod:`returnflow.testing.reordering`): the fact-order property, for any policy."""
        order = self.orders[data.draw(st.sampled_from(sorted(self.orders)), label="order")]
        request = data.draw(
            return_requests(order, {}, exchange_apps=self.policy.exchange_apps),
            label="twin request",
        )

        def twin() -> tuple[Harness, ReturnRecord]:
            harness = Harness(policy=self.policy, clock=ManualClock(self.clock.now()))
            harness.ports.commerce.add_order(order)
            return harness, harness.service.request(request)

        (in_order, record), (permuted, _) = twin(), twin()
        stream = data.draw(
            inbound_streams(
                record, late=False, duplicates=False, reorder=False, return_to_origin=True
            ),
            label="stream in order",
        )
        if any(
            isinstance(fact, CarrierUpdate) and fact.status is CarrierStatus.RETURN_TO_ORIGIN
            for fact in stream
        ):  # a parcel sent back to the customer is never also delivered or received
            stream = [
                fact
                for fact in stream
                if isinstance(fact, CarrierUpdate) and fact.status is not CarrierStatus.DELIVERED
            ]
        (schedule,) = [data.draw(schedules((len(stream),)), label="schedule")]
        for fact in stream:
            in_order.service.handle(fact)
        seen: set[int] = set()
        for _, index in schedule:
            status = permuted.service.handle(stream[index]).status
            assert (status == "duplicate") == (index in seen), (
                f"{stream[index].event_id} delivered {'again' if index in seen else 'first'}: "
                f"{status}"
            )
            seen.add(index)
        found = reordering.differences(
            reordering.outcome(in_order, self.shop, [record.id]),
            reordering.outcome(permuted, self.shop, [record.id]),
        )
        order_of = " -> ".join(stream[index].event_id for _, index in schedule)
        assert not found, f"{order_of} ends apart from the in-order run: {found}"

    # -- a person in the platform's admin (native mode) ----------------------------------------

    def _on_platform(self, data: st.DataObject) -> tuple[ReturnRecord, str] | None:
        """A return with a platform return on the fake platform, and that return's id."""
        if not isinstance(self.platform, FakePlatformReturns):
            return None
        opened = sorted(rid for rid, r in self.records.items() if r.refs.platform_return_id)
        if not opened:
            return None
        record = self.raw.get(self.shop, data.draw(st.sampled_from(opened), label="return"))
        there_id = record.refs.platform_return_id
        return (record, there_id) if there_id is not None else None

    def _platform_lines(self, record: ReturnRecord, there_id: str) -> list[PlatformLine]:
        """Every order line's units on the fake's platform return now (removed ones not)."""
        assert isinstance(self.platform, FakePlatformReturns)
        there = self.platform.get_return(self.shop, there_id)
        removed = dict(there.removed)
        opened: Counter[str] = Counter()
        for units in record.platform_units:
            opened[units.order_line_id] += units.quantity
        for order_line, line_id in there.line_ids:
            opened[order_line] -= removed.get(line_id, 0)
        return [PlatformLine(order_line_id=k, quantity=max(n, 0)) for k, n in opened.items()]

    @precondition(lambda self: self.platform is not None and bool(self.records))
    @rule(data=st.data(), action=st.sampled_from(["take_out", "echo", "label"]))
    def person_in_the_platforms_admin(self, data: st.DataObject, action: str) -> None:
        """Native mode: a person takes a unit out of a platform return (then its
        ``returns/update`` comes), an update says what returnflow knows already, or a label
        is attached there (``reverse_deliveries/attach_deliverable``)."""
        found = self._on_platform(data)
        if found is None:
            return
        record, there_id = found
        assert isinstance(self.platform, FakePlatformReturns)
        if action == "label":
            event: InboundEvent = PlatformReturnEvent(
                shop=self.shop,
                return_id=record.id,
                event_id=self._next("deliverable-"),
                topic="reverse_deliveries/attach_deliverable",
                tracking_number=self._next("1Z"),
            )
            self._handle(event)
            return
        if action == "take_out":
            there = self.platform.get_return(self.shop, there_id)
            processed, removed = dict(there.processed), dict(there.removed)
            opened = {u.order_line_id: u.quantity for u in record.platform_units}
            left = [
                line_id
                for order_line, line_id in there.line_ids
                if opened.get(order_line, 0) - processed.get(line_id, 0) - removed.get(line_id, 0)
            ]
            if not left:
                return
            line_id = data.draw(st.sampled_from(left), label="platform line")
            try:
                self.platform.remove_lines(
                    self.shop,
                    there_id,
                    [Quantity(line_id, 1)],
                    idempotency_key=self._next("admin-"),
                )
            except PortError:
                return  # closed or cancelled there: the admin refuses too
            self.taken_out.add(there_id)
        event = PlatformReturnEvent(
            shop=self.shop,
            return_id=record.id,
            event_id=self._next("update-"),
            topic="returns/update",
            lines=self._platform_lines(record, there_id),
            occurred_at=self.clock.now(),
        )
        self._handle(event)

    # -- time, delivery, failures, concurrency -------------------------------------------------

    @rule(days=st.sampled_from([0, 0, 1, 8, 31]))
    def time_passes(self, days: int) -> None:
        """The clock moves (past any retry backoff), the timers run, due effects go out."""
        self.clock.advance(days=days)
        try:
            report = self.service.tick()
            self._dispatch_due()
        except SimulatedCrash:
            self._restart()
            return
        assert not report.errors or self.faults, f"timers failed: {report.errors}"

    @precondition(lambda self: self.system.ignore_next_release is not None)
    @rule()
    def platform_ignores_the_next_release(self) -> None:
        assert self.system.ignore_next_release is not None
        self.system.ignore_next_release()

    @precondition(lambda self: self.config.crash_rate > 0)
    @rule(kind=st.sampled_from(EFFECT_KINDS))
    def crash_after_the_next(self, kind: str) -> None:
        """The next delivery of a ``kind`` effect dies after the port acted."""
        self.store.crash_kinds.add(kind)

    @precondition(lambda self: self.config.races and bool(self.records))
    @rule(data=st.data(), racer=_SCANS, main=_SCANS | st.none())
    def concurrent_writers(
        self, data: st.DataObject, racer: CarrierStatus, main: CarrierStatus | None
    ) -> None:
        """Another worker commits a carrier scan between this worker's read and its write."""
        record = self._pick(data)
        first = CarrierUpdate(
            shop=self.shop, return_id=record.id, event_id=self._next("race-"), status=racer
        )

        def race() -> None:
            result = self.racer.handle(first)
            self._record_handled(first)
            self.snapshots.append(result.record)

        second: InboundEvent = (
            WarehouseFinished(shop=self.shop, return_id=record.id, event_id=self._next("fin-"))
            if main is None
            else CarrierUpdate(
                shop=self.shop, return_id=record.id, event_id=self._next("scan-"), status=main
            )
        )
        self.store.racer = (record.id, race)
        self._handle(second)
        self.store.racer = None

    # -- invariants ----------------------------------------------------------------------------

    def _mark(self, record: ReturnRecord) -> None:
        """When the exchange was first seen released, and each exchanged line rejected."""
        self.moment += 1
        if record.exchange_status == "released":
            self.released_at.setdefault(record.id, self.moment)
        for line in record.lines:
            if isinstance(line.outcome, Exchange) and line.rejected:
                self.rejected_at.setdefault((record.id, line.id), self.moment)

    def _released_before_rejection(self, record: ReturnRecord, line_id: str) -> bool:
        rejected = self.rejected_at.get((record.id, line_id))
        released = self.released_at.get(record.id)
        if rejected is None:
            return True
        if released is None or released > rejected:
            return False
        if released < rejected:
            return True
        # In the same commit (a receipt that implied the pickup of an instant exchange):
        # the history says which came first.
        events = [entry.event for entry in record.history]
        return "release_exchange" in events and events.index("release_exchange") < (
            len(events) - 1 - events[::-1].index("receive")
        )

    @invariant()
    def every_invariant_holds(self) -> None:
        records = {record.id: record for record in self.raw.list(self.shop)}
        missing = set(self.records) - set(records)
        assert not missing, f"returns disappeared: {sorted(missing)}"
        for committed in self.store.committed:
            self._mark(committed)
        self.store.committed.clear()
        for snapshot in self.snapshots:
            current = records[snapshot.id]
            assert current.version >= snapshot.version, (
                f"{_describe(current)}: a writer saw v{snapshot.version}"
            )
            assert _same_entries(current.history, snapshot.history), (
                f"{_describe(current)}: lost history a writer committed at v{snapshot.version} "
                "(a lost update)"
            )
            self._mark(snapshot)
        outboxes = {rid: self.raw.outbox(self.shop, rid) for rid in records}
        for rid, record in records.items():
            _check_record(record, self.records.get(rid))
            self._mark(record)
            self._check_exchange(record)
            _check_settled(record, outboxes[rid], self.policy)
            _check_parked(record, self.policy)
        self._check_payouts(records, outboxes)
        self._check_orders(records)
        self._check_platform(records)
        self.native_holds(records, outboxes)
        self.records = records
        self.snapshots = []

    def _check_exchange(self, record: ReturnRecord) -> None:
        what = _describe(record)
        if record.exchange_status == "released":
            assert _release_evidence(record, self.policy.exchange_release), (
                f"{what}: exchange released before its trigger "
                f"({self.policy.exchange_release.value})"
            )
        for item in record.exchange_lines:
            if item.status != "released":
                continue
            assert self._released_before_rejection(record, item.return_line_id), (
                f"{what}: exchange line {item.id} released after its item failed QC"
            )

    def _check_payouts(
        self, records: Mapping[str, ReturnRecord], outboxes: Mapping[str, Sequence[OutboxEntry]]
    ) -> None:
        observer = self.system.observer
        if observer is not None:
            executed = {key: n for key, n in observer.executions().items() if n > 1}
            assert not executed, f"effects executed more than once: {executed}"
        by_order: dict[str, list[OutboxEntry]] = {}
        for rid, record in records.items():
            by_order.setdefault(record.order_id, []).extend(outboxes[rid])
        for order_id, entries in by_order.items():
            order = self.orders.get(order_id)
            if order is None:
                continue
            currency = order.currency
            for kind in (fx.IssueRefund, fx.IssueStoreCredit):
                mine = _payouts(entries, kind)
                done = Money.sum((e.amount for status, e in mine if status == "done"), currency)
                pending = Money.sum(
                    (e.amount for status, e in mine if status == "pending"), currency
                )
                what = f"order {order_id} ({order.paid_total} paid): {kind.kind}"
                if kind is fx.IssueRefund:
                    assert done + pending <= order.paid_total, (
                        f"{what}: {done} done and {pending} pending"
                    )
                    _check_units(order, [e.lines for status, e in mine if status != "failed"])
                if observer is None:
                    continue
                observed = (
                    observer.refunds(self.shop, order_id)
                    if kind is fx.IssueRefund
                    else observer.credits(self.shop, order_id)
                )
                paid = Money.sum((payout.amount for payout in observed), currency)
                assert done <= paid <= done + pending, (
                    f"{what}: the platform paid {paid}, the outbox says {done} done "
                    f"and {pending} pending"
                )
                if kind is fx.IssueRefund:
                    assert paid <= order.paid_total, f"{what}: the platform refunded {paid}"
                    _check_units(order, [payout.lines for payout in observed])

    def _check_orders(self, records: Mapping[str, ReturnRecord]) -> None:
        """The order-level ledger over all returns of each order (:func:`_check_order_units`)
        and, seen from the platform, refunds and store credit (less the bonuses, which are on
        top) of at most what was paid for the units settled."""
        roots = _lineage(records)
        by_order: dict[str, list[ReturnRecord]] = {}
        for record in records.values():
            by_order.setdefault(record.order_id, []).append(record)
        observer = self.system.observer
        for order_id, returns in sorted(by_order.items()):
            order = self.orders.get(order_id)
            if order is None:
                continue
            values, bonus = _check_order_units(order, returns, roots)
            if observer is None:
                continue
            currency = order.currency
            settled = Money.sum(values.values(), currency)
            refunded = Money.sum(
                (p.amount for p in observer.refunds(self.shop, order_id)), currency
            )
            credited = Money.sum(
                (p.amount for p in observer.credits(self.shop, order_id)), currency
            )
            assert refunded + credited <= settled + bonus, (
                f"order {order_id}: the platform refunded {refunded} and credited {credited} "
                f"({bonus} of bonuses on top), {settled} was paid for the {len(values)} units "
                "settled"
            )

    def _check_platform(self, records: Mapping[str, ReturnRecord]) -> None:
        observer = self.system.observer
        if observer is None:
            return
        owners: dict[str, ReturnRecord] = {}
        for record in records.values():
            for line in record.exchange_lines:
                if line.platform_item_id is not None and (
                    record.status != "reset" or line.platform_item_id not in owners
                ):
                    owners[line.platform_item_id] = record
                owners.setdefault(f"line:{line.id}", record)
        for order_id in sorted({record.order_id for record in records.values()}):
            for item in observer.exchange_items(self.shop, order_id):
                if not item.released or item.item_id in self.platform_checked:
                    continue
                owner = owners.get(item.item_id) or owners.get(f"line:{item.exchange_line_id}")
                if owner is None:
                    continue
                self.platform_checked.add(item.item_id)
                what = f"{_describe(owner)}: the platform released exchange item {item.item_id}"
                assert owner.exchange_status == "released", f"{what}; the return did not"
                assert _release_evidence(owner, self.policy.exchange_release), (
                    f"{what} before its trigger ({self.policy.exchange_release.value})"
                )
                for line in owner.exchange_lines:
                    if line.platform_item_id == item.item_id or line.id == item.exchange_line_id:
                        assert self._released_before_rejection(owner, line.return_line_id), (
                            f"{what} after it failed QC"
                        )

    def _check_reconciled(self, record: ReturnRecord) -> None:
        """A correct return never goes to a person because the platform's money differs
        from returnflow's. Some differences are real, and the model knows them: the return's
        difference is then allowed (:meth:`_real_difference`)."""
        for index, reason in _differences(record):
            real = self._real_difference(record, index)
            assert real, f"{_describe(record)}: a correct return went to review: {reason}"

    def _real_difference(self, record: ReturnRecord, index: int) -> str | None:
        """Why a difference found at history entry ``index`` is one the platform really
        shows (``None``: none, the return was correct)."""
        before = record.history[:index]
        events = {entry.event for entry in before}
        there = record.refs.platform_return_id
        if there in self.taken_out or events & {"platform_updated", "followed_platform"}:
            # a person took units out of the platform return that returnflow settles
            return "changed in the platform's admin"
        found = _figures(record.history[index].payload.get("reason", ""))
        if found is None:
            return None
        what, platform, ours = found
        settled = [e.payload for e in before if e.event == "settled"]
        last = settled[-1] if settled else {}
        currency = ours.currency
        waived = _money(last.get("fees_waived"), currency)
        zero = Money.zero(currency)
        carried = self._fees_carried(there, settled, currency) if there else None
        if waived != zero and any(
            (what == "owed" and platform - ours == fee)
            or (what == "refund" and ours - platform == fee)
            for fee in (waived, carried)
            if fee is not None and zero < fee <= waived
        ):
            # fees_only_from_payout waived a fee the platform return carries from its opening
            # (Shopify has no call to take a fee off a return): the platform asks for exactly it,
            # all of it, or the part of it the return carries (opened with what its units
            # would pay, the fee waived again when units it counted on were taken out)
            return "a fee waived that the platform return carries"
        # what the units pay toward the exchange's items (its shipping is not the platform's):
        # the balance the customer pays (due now, or paid on the platform before) pays first
        paid = Money.sum(
            (
                _money(e.payload.get("amount"), currency)
                for e in before
                if e.event == "platform_balance_paid"
            ),
            currency,
        )
        balance = _money(last.get("balance_due"), currency) + paid
        shipping = _money(last.get("exchange_shipping"), currency)
        # returnflow's figure counts the shipping the units paid (not the balance)
        toward = _money(last.get("exchange_total"), currency) + shipping - balance
        toward = toward - max(shipping - balance, zero)
        if (
            record.exchange_lines
            and "platform_return_processed" in events
            and what == "refund"
            and toward > zero
            and platform - ours == toward
        ):
            # units processed before the exchange items they pay for (a refund per receipt,
            # the items held for a balance): the platform refunds them in full in their call,
            # exactly what they pay toward the exchange
            return "an exchange processed apart from the units paying for it"
        return None

    def _fees_carried(
        self, there: str, settled: Sequence[Mapping[str, Any]], currency: str
    ) -> Money | None:
        """The fees the platform return ``there`` carries for its units not taken out, less
        those returnflow's settlements (``settled``) charged: what of a waived fee the
        platform still asks for (``None``: not a fake platform)."""
        if not isinstance(self.platform, FakePlatformReturns):
            return None
        fees = self.platform.calculate(self.shop, there).fees
        charged = Money.sum(
            (
                _money(entry.get(name), currency)
                for entry in settled
                for name in ("restocking_fee", "return_shipping_fee")
            ),
            currency,
        )
        return fees - charged

    def native_holds(
        self, records: Mapping[str, ReturnRecord], outboxes: Mapping[str, Sequence[OutboxEntry]]
    ) -> None:
        """Native mode, on a :class:`~returnflow.testing.platform_returns.FakePlatformReturns`:
        no platform call ran twice for one key; each platform return refunded what returnflow
        recorded its processing refunded (exactly, once no processing is pending); per order
        line it processed no more units than returnflow asked, confirmed what returnflow
        recorded confirmed, never more than the return settled, and disposed no more units
        than the return received and accepted (restocked no more than it restocked); over an
        order, the platform's refunds with the rest are at most what was paid for the units
        settled."""
        platform = self.platform
        if not isinstance(platform, FakePlatformReturns):
            return
        keys = Counter(
            call.idempotency_key
            for call in platform.calls
            if call.outcome == "ok" and call.idempotency_key is not None
        )
        twice = {key: n for key, n in keys.items() if n > 1}
        assert not twice, f"platform return calls executed more than once: {twice}"
        refunded_by_order: dict[str, Money] = {}
        for rid, record in sorted(records.items()):
            there_id = record.refs.platform_return_id
            if there_id is None:
                continue
            what = f"{_describe(record)} on platform return {there_id}"
            there = platform.get_return(self.shop, there_id)
            refunded = platform.refunded(self.shop, there_id)
            currency = refunded.currency
            refunded_by_order[record.order_id] = (
                refunded_by_order.get(record.order_id, Money.zero(currency)) + refunded
            )
            noted = Money.sum(
                (
                    _money(entry.payload["amount"], currency)
                    for entry in record.history
                    if entry.event == "platform_return_processed"
                ),
                currency,
            )
            pending = any(
                isinstance(entry.effect, fx.ProcessPlatformReturn) and entry.status == "pending"
                for entry in outboxes[rid]
            )
            assert noted <= refunded, f"{what}: refunded {refunded}, returnflow noted {noted}"
            assert pending or refunded == noted, (
                f"{what}: refunded {refunded}, returnflow's processing noted {noted}"
            )
            line_of = {line_id: order_line for order_line, line_id in there.line_ids}
            processed: Counter[str] = Counter()
            for line_id, units in there.processed:
                processed[line_of[line_id]] += units
            disposed: Counter[str] = Counter()
            restocked: Counter[str] = Counter()
            for line_id, units, disposition in platform.dispositions(self.shop, there_id):
                disposed[line_of[line_id]] += units
                if disposition is Disposition.RESTOCKED:
                    restocked[line_of[line_id]] += units
            asked = {units.order_line_id: units for units in record.platform_units}
            for order_line in sorted(set(processed) | set(disposed)):
                lines = [line for line in record.lines if line.order_line_id == order_line]
                where = f"{what}: order line {order_line}"
                mine = asked.get(order_line)
                assert mine is not None, f"{where}: processed or disposed, never asked"
                assert processed[order_line] <= mine.processed, (
                    f"{where}: {processed[order_line]} processed, {mine.processed} asked"
                )
                assert pending or processed[order_line] == mine.confirmed, (
                    f"{where}: {processed[order_line]} processed, {mine.confirmed} confirmed"
                )
                settled = sum(line.settled for line in lines)
                assert processed[order_line] <= settled, (
                    f"{where}: {processed[order_line]} processed, {settled} settled"
                )
                accepted = sum(line.accepted for line in lines)
                assert disposed[order_line] <= accepted <= sum(line.received for line in lines), (
                    f"{where}: {disposed[order_line]} disposed, {accepted} accepted"
                )
                kept = sum(line.restocked for line in lines)
                assert restocked[order_line] <= kept, (
                    f"{where}: {restocked[order_line]} restocked there, {kept} here"
                )
        for record in records.values():
            self._check_reconciled(record)
        roots = _lineage(records)
        observer = self.system.observer
        for order_id, refunded in sorted(refunded_by_order.items()):
            order = self.orders.get(order_id)
            if order is None:
                continue
            returns = [record for record in records.values() if record.order_id == order_id]
            values, bonus = _check_order_units(order, returns, roots)
            paid = Money.sum(values.values(), order.currency)
            others = Money.zero(order.currency)
            if observer is not None:
                others = Money.sum(
                    (p.amount for p in observer.refunds(self.shop, order_id)), order.currency
                ) + Money.sum(
                    (p.amount for p in observer.credits(self.shop, order_id)), order.currency
                )
            assert refunded + others <= paid + bonus, (
                f"order {order_id}: platform returns refunded {refunded}, {others} refunded or "
                f"credited besides ({bonus} of bonuses on top), {paid} was paid for the "
                f"{len(values)} units settled"
            )


def _differences(record: ReturnRecord) -> list[tuple[int, str]]:
    """``(index in the history, reason)`` of each time a difference between returnflow's
    money and the platform's sent the return to a person."""
    found = []
    for index, entry in enumerate(record.history):
        reason = str(entry.payload.get("reason", ""))
        if entry.event in ("flag", "reopen") and _DIFFERS in reason:
            found.append((index, reason))
    return found


_DIFFERS = "differs from returnflow's settlement"
_FIGURES = re.compile(
    r"the platform's (refund|owed) (\S+ [A-Z]{3}) differs from returnflow's "
    r"settlement (\S+ [A-Z]{3})"
)


def _figures(reason: object) -> tuple[str, Money, Money] | None:
    """``(refund or owed, the platform's figure, returnflow's)`` a difference's reason names."""
    found = _FIGURES.search(str(reason))
    if found is None:
        return None
    ours = _money(found.group(3), found.group(3).split(" ")[1])
    return found.group(1), _money(found.group(2), ours.currency), ours


def _money(text: object, currency: str) -> Money:
    """A note's amount (``"12.50 EUR"``); ``"None"`` (nothing refunded) is zero."""
    amount, _, written = str(text).partition(" ")
    if amount == "None" or not written:
        return Money.zero(currency)
    return Money(amount, written)


def _payouts(
    entries: Sequence[OutboxEntry], kind: type[fx.IssueRefund] | type[fx.IssueStoreCredit]
) -> list[tuple[str, fx.IssueRefund | fx.IssueStoreCredit]]:
    """``(status, effect)`` of the outbox entries of one kind of payout."""
    found: list[tuple[str, fx.IssueRefund | fx.IssueStoreCredit]] = []
    for entry in entries:
        effect = entry.effect
        if isinstance(effect, kind):
            found.append((entry.status, effect))
    return found


def _check_units(order: OrderSnapshot, refunds: Sequence[Sequence[LineQuantity]]) -> None:
    units: Counter[str] = Counter()
    for lines in refunds:
        for line in lines:
            units[line.order_line_id] += line.quantity
    for order_line in order.lines:
        assert units[order_line.id] <= order_line.quantity, (
            f"order {order.id}: {units[order_line.id]} units of line {order_line.id} refunded, "
            f"{order_line.quantity} bought"
        )


def returns_state_machine(
    make_system: Callable[[], Harness | KitSystem] | None = None,
    *,
    policy: ReturnPolicy | st.SearchStrategy[ReturnPolicy] | None = None,
    fault_rate: float = 0.0,
    crash_rate: float = 0.1,
    races: bool = True,
    shop: str = "kit-shop",
    currency: str | None = None,
    max_returns: int = 6,
    max_lines: int = 3,
    max_order_age_days: int = 20,
    engine: str = "compiled",
    critical_alone: bool = True,
    platform_mode: str | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine class (run it with its ``TestCase`` or ``run_state_machine_as_test``).

    ``make_system`` builds a fresh set-up per example: a :class:`~returnflow.testing.Harness`
    (default: ``Harness()``, the fakes on a memory store) or a :class:`KitSystem`. ``policy``
    is a policy, a strategy drawing one per example (see
    :func:`~returnflow.testing.strategies.policies`), or ``None`` for the system's.

    ``fault_rate`` makes that fraction of port calls fail (through ``inject_faults``);
    ``crash_rate`` is the fraction of successful deliveries after which the process dies
    before the outbox records them (then the model also kills it on purpose after chosen
    kinds of effects; ``0`` turns crashes off); ``races`` lets a second worker commit
    between a read and a write, and race requests for the same units of an order. Orders
    are in ``currency`` (``None``: any; give the currency of a policy's fixed fees), at most
    ``max_lines`` lines each, placed up to ``max_order_age_days`` before the model's clock
    (so that most are inside a 30-day window), and at most ``max_returns`` returns are
    opened per example. ``engine``: the chart engine the model's services fire events with
    (``"compiled"`` or ``"chart"``, see :mod:`returnflow.lifecycle.engine`);
    ``critical_alone``: their dispatchers' rule for critical deliveries
    (:attr:`~returnflow.dispatch.Dispatcher.critical_alone`). ``platform_mode``: run every
    policy in that mode (``"native"``: the platform's own returns, seed 003, on the system's
    ``platform_returns``; ``None``: the policy's own mode); in native mode the model also
    checks the platform returns against returnflow (:meth:`ReturnsModel.native_holds`).
    """
    for name, rate in (("fault_rate", fault_rate), ("crash_rate", crash_rate)):
        if not 0 <= rate < 1:
            raise ValueError(f"{name} must be in [0, 1), not {rate!r}")
    mode = None if platform_mode is None else PlatformMode(platform_mode)
    config = _Config(
        make_system=make_system or Harness,
        policy=policy,
        fault_rate=fault_rate,
        crash_rate=crash_rate,
        races=races,
        shop=shop,
        currency=currency,
        max_returns=max_returns,
        max_lines=max_lines,
        max_order_age_days=max_order_age_days,
        engine=engine,
        critical_alone=critical_alone,
        platform_mode=mode,
    )

    class ReturnsStateMachine(ReturnsModel):
        pass

    ReturnsStateMachine.config = config
    return ReturnsStateMachine
