"""The application service: commit first, dispatch after, and every failure path.

Each test drives :class:`~returnflow.ReturnsService` through a
:class:`~returnflow.testing.Harness` (in-memory store, fakes of every port, a manual clock
and ids ``R0001``, ``R0002``, ...) and checks the stored return, its outbox and what the
fakes were asked to do.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest

from _builders import ORDERED, order, order_line  # ORDERED: the harness clock is 2026-01-15
from returnflow import (
    TABLE,
    CarrierStatus,
    CarrierUpdate,
    Completion,
    ConcurrencyConflict,
    DeclineReason,
    DispatchReport,
    Exchange,
    InvalidQuantity,
    InvalidTransition,
    Keep,
    MemoryStore,
    Money,
    OrderLine,
    OrderSnapshot,
    OutcomeKind,
    PortError,
    ReceivedLine,
    RequestLine,
    ReturnChart,
    ReturnNotFound,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
    StoreCredit,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity
from returnflow.ports.store import Commit, OutboxEntry
from returnflow.testing import FakePort, Harness

SHOP = "shop-a"
OTHER_SHOP = "shop-b"
ORDER_ID = "1001"


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def make_order(shop: str = SHOP, order_id: str = ORDER_ID) -> OrderSnapshot:
    """L1: a T-shirt 25.00; L2: 2 caps, 20.00 + 3.80 tax = 23.80 (11.90 each);
    L3: a jacket 120.00 - 20.00 discount = 100.00."""
    lines = [
        order_line("L1", "TEE-M", "25.00"),
        order_line("L2", "CAP", "10.00", 2, tax=eur("3.80")),
        order_line("L3", "JACKET-M", "120.00", discount=eur("20.00")),
    ]
    return order(shop, order_id, lines, email="ann@example.com")


def make_harness(
    *, policy: ReturnPolicy | None = None, auto_dispatch: bool = True, **harness: Any
) -> Harness:
    made = Harness(policy=policy or ReturnPolicy(), auto_dispatch=auto_dispatch, **harness)
    made.ports.commerce.add_order(make_order())
    return made


def line(order_line_id: str, quantity: int = 1, **fields: Any) -> RequestLine:
    return RequestLine(order_line_id=order_line_id, quantity=quantity, **fields)


def request(harness: Harness, *lines: RequestLine, shop: str = SHOP) -> ReturnRecord:
    return harness.service.request(ReturnRequest(shop=shop, order_id=ORDER_ID, lines=lines))


def receive(
    harness: Harness, record: ReturnRecord, *received: tuple[str, int], event_id: str = "wms-1"
) -> ReturnRecord:
    result = harness.service.handle(
        WarehouseReceipt(
            shop=record.shop,
            return_id=record.id,
            event_id=event_id,
            lines=[ReceivedLine(line_id=line_id, quantity=qty) for line_id, qty in received],
        )
    )
    assert result.status == "applied", result.reason
    return result.record


def outbox(harness: Harness, record: ReturnRecord) -> Sequence[OutboxEntry]:
    return harness.store.outbox(record.shop, record.id)


def entries_of(harness: Harness, record: ReturnRecord, kind: str) -> list[OutboxEntry]:
    return [entry for entry in outbox(harness, record) if entry.effect.kind == kind]


def keyed_calls(fake: FakePort) -> list[tuple[str, str | None, str]]:
    """``(operation, idempotency key, outcome)`` of every call that changes something."""
    return [
        (call.operation, call.idempotency_key, call.outcome)
        for call in fake.calls
        if call.idempotency_key is not None
    ]


def events_named(record: ReturnRecord, event: str) -> list[str]:
    return [entry.event for entry in record.history if entry.event == event]


class _Recording:
    """Wraps a port and logs ``(port, operation, idempotency key)`` of every changing call."""

    def __init__(self, port: str, target: object, log: list[tuple[str, str, str]]) -> None:
        self._port = port
        self._target = target
        self._log = log

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if "idempotency_key" in kwargs:
                self._log.append((self._port, name, kwargs["idempotency_key"]))
            return attribute(*args, **kwargs)

        return call


class _WarehouseDownFor:
    """A warehouse that refuses (retryably) to create the return expectation of one return."""

    def __init__(self, target: Any, return_id: str | None) -> None:
        self._target = target
        self.return_id = return_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def create_return(self, shop: str, order_id: str, return_id: str, *args: Any, **kw: Any) -> Any:
        if return_id == self.return_id:
            raise PortError("warehouse", "create_return", "unavailable")
        return self._target.create_return(shop, order_id, return_id, *args, **kw)


def record_port_calls(harness: Harness) -> list[tuple[str, str, str]]:
    """Route the service's ports through :class:`_Recording`; return the shared log."""
    log: list[tuple[str, str, str]] = []
    service = harness.service
    for port in ("commerce", "warehouse", "carrier", "payments", "notifier", "events"):
        setattr(service, port, _Recording(port, getattr(service, port), log))
    return log


# -- 1. commit first, dispatch after --------------------------------------------------------------


def test_effects_are_committed_first_and_dispatched_later_in_order() -> None:
    harness = make_harness(auto_dispatch=False)
    log = record_port_calls(harness)

    record = request(harness, line("L3"))

    assert record.state == ("approved", "no_exchange")
    entries = outbox(harness, record)
    assert [entry.effect.kind for entry in entries] == [
        "create_label",
        "create_warehouse_return",
        "publish",
        "notify",
        "publish",
        "notify",
    ]
    assert all(entry.status == "pending" and entry.attempts == 0 for entry in entries)
    assert log == []
    assert all(keyed_calls(fake) == [] for fake in harness.ports.all())

    report = harness.dispatch_due()

    # The six, then the two the label's result planned (delivered in the same call).
    assert report == DispatchReport(delivered=8, failed=0, given_up=0)
    delivered = outbox(harness, record)
    assert [entry.effect.key for entry in delivered[:6]] == [entry.effect.key for entry in entries]
    assert [key for _, _, key in log] == [entry.effect.key for entry in delivered]
    assert [(port, operation) for port, operation, _ in log] == [
        ("carrier", "create_label"),
        ("warehouse", "create_return"),
        ("events", "publish"),
        ("notifier", "notify"),
        ("events", "publish"),
        ("notifier", "notify"),
        ("notifier", "notify"),
        ("events", "publish"),
    ]
    assert all(entry.status == "done" and entry.attempts == 1 for entry in delivered)
    stored = harness.service.get(SHOP, record.id)
    assert stored.state == ("label_sent", "no_exchange")
    assert stored.refs.tracking_number == "TRK000001"
    assert harness.dispatch_due() == DispatchReport()


# -- 2. idempotency keys --------------------------------------------------------------------------


def test_idempotency_keys_are_unique_embed_the_return_and_reach_each_port_once() -> None:
    harness = make_harness()
    record = request(harness, line("L1", outcome=Exchange(variant_id="tee-l")), line("L3"))
    harness.service.handle(
        CarrierUpdate(
            shop=SHOP, return_id=record.id, event_id="scan-1", status=CarrierStatus.PICKED_UP
        )
    )
    closed = receive(harness, record, ("L1", 1), ("L3", 1))
    assert closed.state == ("closed", "released")

    keys = [entry.effect.key for entry in outbox(harness, record)]
    assert len(keys) == len(set(keys)) > 10
    assert all(key.startswith(f"{SHOP}/{record.id}/") for key in keys)
    assert all(entry.status == "done" for entry in outbox(harness, record))
    seen = [call for fake in harness.ports.all() for call in keyed_calls(fake)]
    assert Counter(key for _, key, _ in seen) == Counter(keys)  # each key exactly once
    assert {outcome for _, _, outcome in seen} == {"ok"}

    # A redelivery with the same key is answered from the first call and buys nothing.
    (label_entry,) = entries_of(harness, record, "create_label")
    again = harness.ports.carrier.create_label(
        SHOP, record.id, ORDER_ID, idempotency_key=label_entry.effect.key
    )
    assert again == label_entry.result
    assert len(harness.ports.carrier.labels) == 1
    assert harness.ports.carrier.calls[-1].outcome == "replayed"


# -- 3. transient failures ------------------------------------------------------------------------


def test_a_transient_port_failure_leaves_the_effect_pending_until_dispatch_pending() -> None:
    harness = make_harness()
    harness.ports.carrier.fail("create_label", times=1)

    record = request(harness, line("L3"))

    assert record.state == ("approved", "no_exchange")
    (label,) = entries_of(harness, record, "create_label")
    assert (label.status, label.attempts) == ("pending", 1)
    assert label.last_error == "PortError: carrier.create_label: injected failure"
    assert harness.ports.carrier.labels == []
    # The effects behind the label wait: the warehouse return, the messages and events.
    later = [entry for entry in outbox(harness, record) if entry.sequence > label.sequence]
    assert [(entry.status, entry.attempts) for entry in later] == [("pending", 0)] * 5

    report = harness.dispatch_due()

    # The label, the five behind it, and the two its result planned.
    assert report == DispatchReport(delivered=8)
    (label,) = entries_of(harness, record, "create_label")
    assert (label.status, label.attempts, label.last_error) == ("done", 2, None)
    stored = harness.service.get(SHOP, record.id)
    assert stored.state == ("label_sent", "no_exchange")
    assert stored.refs.tracking_number == harness.ports.carrier.labels[0].tracking_number
    assert [call.outcome for call in harness.ports.carrier.calls_to("create_label")] == [
        "failed",
        "ok",
    ]


def test_a_failing_effect_holds_back_the_later_effects_of_its_return() -> None:
    harness = make_harness()
    other = request(harness, line("L1"))  # an unrelated return, dispatched fully
    harness.ports.warehouse.fail("create_return", times=1)

    record = request(harness, line("L3"))

    (create,) = entries_of(harness, record, "create_warehouse_return")
    (label,) = entries_of(harness, record, "create_label")
    assert (create.status, create.attempts) == ("pending", 1)
    assert (label.status, label.attempts) == ("done", 1)  # planned before it
    later = [entry for entry in outbox(harness, record) if entry.sequence > create.sequence]
    assert [(entry.effect.port, entry.status, entry.attempts) for entry in later] == [
        ("events", "pending", 0),
        ("notifier", "pending", 0),
        ("events", "pending", 0),
        ("notifier", "pending", 0),
        ("notifier", "pending", 0),  # the label's message and event, planned by its answer
        ("events", "pending", 0),
    ]

    # The warehouse return and the six behind it.
    assert harness.dispatch_due() == DispatchReport(delivered=7)

    assert [call.operation for call in harness.ports.warehouse.calls] == [
        "create_return",
        "create_return",
        "create_return",
    ]
    label_calls = harness.ports.carrier.calls_to("create_label")
    assert [call.args["return_id"] for call in label_calls] == [other.id, record.id]
    assert harness.service.get(SHOP, record.id).refs.warehouse_rma_id == "RMA-2"


def test_dispatch_pending_keeps_a_blocked_return_in_order_and_serves_the_others() -> None:
    harness = make_harness(policy=ReturnPolicy(max_attempts=10), auto_dispatch=False)
    log = record_port_calls(harness)
    first = request(harness, line("L3"))
    second = request(harness, line("L1"))
    outage = _WarehouseDownFor(harness.service.warehouse, first.id)
    harness.service.warehouse = outage

    report = harness.dispatch_due()

    assert report.delivered == 1 + 6 + 2  # the first's label, the second's six and two more
    assert report.given_up == 0
    # the first's label, then its warehouse return failing and the six behind it waiting
    assert [entry.status for entry in outbox(harness, first)] == ["done"] + ["pending"] * 7
    assert [entry.attempts for entry in outbox(harness, first)][2:] == [0] * 6
    assert all(entry.status == "done" for entry in outbox(harness, second))
    assert harness.service.get(SHOP, second.id).state == ("label_sent", "no_exchange")
    assert harness.service.get(SHOP, first.id).state == ("label_sent", "no_exchange")
    assert [call.args["return_id"] for call in harness.ports.carrier.calls_to("create_label")] == [
        first.id,
        second.id,
    ]

    outage.return_id = None
    harness.dispatch_due()

    first_keys = [key for _, _, key in log if key.startswith(f"{SHOP}/{first.id}/")]
    assert first_keys == [entry.effect.key for entry in outbox(harness, first)]
    assert harness.service.get(SHOP, first.id).state == ("label_sent", "no_exchange")


def test_one_dispatch_pending_call_attempts_a_failing_effect_once() -> None:
    harness = make_harness(policy=ReturnPolicy(max_attempts=3), auto_dispatch=False)
    harness.ports.commerce.fail("refund", times=None)
    record = request(harness, line("L3", outcome=Keep()))  # plans a refund at once
    request(harness, line("L1"))  # another return whose effects are delivered meanwhile

    report = harness.dispatch_due()

    (refund,) = entries_of(harness, record, "issue_refund")
    assert (refund.status, refund.attempts) == ("pending", 1)
    assert (report.failed, report.given_up) == (1, 0)
    assert len(harness.ports.commerce.calls_to("refund")) == 1
    assert harness.service.get(SHOP, record.id).state == ("refunded", "no_exchange")


# -- 4. permanent failures ------------------------------------------------------------------------


def test_a_refund_that_keeps_failing_is_given_up_and_sent_to_review() -> None:
    harness = make_harness(policy=ReturnPolicy(max_attempts=3))
    harness.ports.commerce.fail("refund", times=None)
    record = request(harness, line("L3"))

    received = receive(harness, record, ("L3", 1))

    assert received.state == ("refunded", "no_exchange")
    (refund,) = entries_of(harness, record, "issue_refund")
    assert (refund.status, refund.attempts) == ("pending", 1)
    assert harness.dispatch_due() == DispatchReport(failed=1)
    # Giving up flags the return; what waited behind the refund (the restock, the receipt's
    # event and message) and the flag's event are delivered in the same call.
    assert harness.dispatch_due() == DispatchReport(delivered=4, given_up=1)

    (refund,) = entries_of(harness, record, "issue_refund")
    assert (refund.status, refund.attempts) == ("failed", 3)
    assert refund.last_error == "PortError: commerce.refund: injected failure"
    stored = harness.service.get(SHOP, record.id)
    assert stored.state == ("needs_review", "no_exchange")
    assert stored.review_reasons == (
        "issue_refund failed: PortError: commerce.refund: injected failure",
    )
    assert stored.history[-1].event == "flag"
    assert harness.ports.commerce.refunds == []
    outcomes = [call.outcome for call in harness.ports.commerce.calls_to("refund")]
    assert outcomes == ["failed"] * 3
    # Given up means given up: nothing retries it.
    harness.ports.commerce.heal()
    harness.dispatch_due()
    assert len(harness.ports.commerce.calls_to("refund")) == 3


def test_a_non_retryable_port_error_is_given_up_at_once() -> None:
    harness = make_harness(policy=ReturnPolicy(max_attempts=3))
    declined = PortError("commerce", "refund", "declined", retryable=False)
    harness.ports.commerce.fail("refund", error=declined)
    record = request(harness, line("L3"))

    receive(harness, record, ("L3", 1))

    (refund,) = entries_of(harness, record, "issue_refund")
    assert (refund.status, refund.attempts) == ("failed", 1)
    stored = harness.service.get(SHOP, record.id)
    assert stored.state == ("needs_review", "no_exchange")
    assert stored.review_reasons == ("issue_refund failed: PortError: commerce.refund: declined",)
    assert harness.ports.commerce.refunds == []
    assert len(harness.ports.commerce.calls_to("refund")) == 1


def test_closing_after_a_refund_was_given_up_refunds_the_units() -> None:
    harness = make_harness()
    declined = PortError("commerce", "refund", "declined", retryable=False)
    harness.ports.commerce.fail("refund", error=declined)
    record = request(harness, line("L3"))
    receive(harness, record, ("L3", 1))
    assert harness.service.get(SHOP, record.id).state == ("needs_review", "no_exchange")

    # ReturnLine: "settled counts units refunded, credited or exchanged"; none was, so
    # close() ("settle every accepted unit not yet settled") must refund it.
    harness.ports.commerce.heal()
    closed = harness.service.close(SHOP, record.id, actor="agent:maria")

    assert [refund.amount for refund in harness.ports.commerce.refunds] == [eur("100.00")]
    assert closed.state == ("closed", "no_exchange")


# -- 5. messages and events are not critical ------------------------------------------------------


@pytest.mark.parametrize("failing", [("notifier",), ("events",), ("notifier", "events")])
def test_a_failing_notifier_or_publisher_never_sends_the_return_to_review(
    failing: tuple[str, ...],
) -> None:
    harness = make_harness(policy=ReturnPolicy(max_attempts=1))
    for name in failing:
        getattr(harness.ports, name).fail(times=None)
    record = request(harness, line("L3"))
    assert record.state == ("label_sent", "no_exchange")

    closed = receive(harness, record, ("L3", 1))

    assert closed.state == ("closed", "no_exchange")
    assert closed.review_reasons == ()
    events = [entry.event for entry in closed.history]
    assert "flag" not in events
    assert "effect_failed" not in events
    assert [refund.amount for refund in harness.ports.commerce.refunds] == [eur("100.00")]
    kinds = {"notifier": "notify", "events": "publish"}
    given_up = {kinds[name] for name in failing}
    for entry in outbox(harness, record):
        expected = "failed" if entry.effect.kind in given_up else "done"
        assert entry.status == expected, entry
    assert harness.dispatch_due() == DispatchReport()


# -- 6. concurrency -------------------------------------------------------------------------------


def test_the_store_refuses_a_stale_version_and_writes_nothing() -> None:
    harness = make_harness()
    record = request(harness, line("L3"))
    stored = harness.store.get(SHOP, record.id)
    before = list(outbox(harness, record))
    effect = fx.Publish(
        key=f"{record.id}:99:0:publish",
        shop=SHOP,
        return_id=record.id,
        order_id=ORDER_ID,
        topic="returns/update",
    )
    stale = stored.version - 1
    newer = attrs.evolve(stored, version=stale + 1, status="closed")

    with pytest.raises(ConcurrencyConflict) as raised:
        harness.store.commit(Commit(records=((newer, stale),), effects=(effect,)))

    assert (raised.value.return_id, raised.value.expected, raised.value.actual) == (
        record.id,
        stale,
        stored.version,
    )
    assert harness.store.get(SHOP, record.id) is stored
    assert list(outbox(harness, record)) == before
    assert harness.store.pending() == []


class ConflictingStore(MemoryStore):
    """A memory store that refuses the next ``conflicts`` commits as if another writer won."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0
        self.refused = 0

    def commit(self, commit: Commit) -> None:
        if self.conflicts:
            self.conflicts -= 1
            self.refused += 1
            record, expected = commit.records[0]
            raise ConcurrencyConflict(record.id, expected, expected + 1)
        super().commit(commit)


def test_a_command_is_retried_on_a_conflict_and_applied_once() -> None:
    store = ConflictingStore()
    harness = make_harness(policy=ReturnPolicy(auto_approve=False), store=store)
    record = request(harness, line("L3"))
    assert record.state == ("pending_review", "no_exchange")
    store.conflicts = 1

    approved = harness.service.approve(SHOP, record.id, actor="agent:maria")

    assert store.refused == 1
    assert approved.state == ("label_sent", "no_exchange")
    assert events_named(approved, "approve") == ["approve"]
    assert [entry.version for entry in approved.history if entry.event == "approve"] == [2]
    assert len(entries_of(harness, record, "create_label")) == 1
    assert len(harness.ports.carrier.labels) == 1
    assert len(harness.ports.warehouse.returns) == 1
    assert harness.ports.events.topics_for(record.id).count("returns/approve") == 1


def test_an_inbound_event_is_retried_on_a_conflict_and_applied_once() -> None:
    store = ConflictingStore()
    harness = make_harness(store=store)
    record = request(harness, line("L3"))
    store.conflicts = 1
    scan = CarrierUpdate(
        shop=SHOP, return_id=record.id, event_id="scan-1", status=CarrierStatus.PICKED_UP
    )

    result = harness.service.handle(scan)

    assert store.refused == 1
    assert result.status == "applied"
    assert result.record.state == ("in_transit", "no_exchange")
    assert events_named(result.record, "hand_in") == ["hand_in"]
    assert harness.service.handle(scan).status == "duplicate"


# -- 7. cancel ------------------------------------------------------------------------------------


def test_cancel_before_shipping_undoes_label_warehouse_return_and_exchange() -> None:
    harness = make_harness()
    record = request(harness, line("L1", outcome=Exchange(variant_id="tee-l")))
    assert record.state == ("label_sent", "on_hold")
    commerce = harness.ports.commerce
    assert [item.status for item in commerce.exchange_lines(SHOP, ORDER_ID)] == ["on_hold"]

    cancelled = harness.service.cancel(SHOP, record.id)

    assert cancelled.state == ("cancelled", "exchange_cancelled")
    assert [label.status for label in harness.ports.carrier.labels] == ["void"]
    assert [rma.status for rma in harness.ports.warehouse.returns] == ["cancelled"]
    assert [item.status for item in commerce.exchange_lines(SHOP, ORDER_ID)] == ["cancelled"]
    assert "hold-order" not in commerce.tags(SHOP, ORDER_ID)
    assert [item.status for item in cancelled.exchange_lines] == ["cancelled"]
    assert harness.ports.events.topics_for(record.id)[-2:] == ["returns/cancel", "exchanges/cancel"]
    assert harness.ports.notifier.messages[-1].template == "return_cancelled"
    assert all(entry.status == "done" for entry in outbox(harness, record))


def test_cancel_after_the_parcel_is_in_transit_is_refused_and_changes_nothing() -> None:
    harness = make_harness()
    record = request(harness, line("L3"))
    harness.service.handle(
        CarrierUpdate(
            shop=SHOP, return_id=record.id, event_id="scan-1", status=CarrierStatus.PICKED_UP
        )
    )
    before = harness.service.get(SHOP, record.id)
    entries = list(outbox(harness, record))
    calls = [fake.calls for fake in harness.ports.all()]

    with pytest.raises(InvalidTransition) as raised:
        harness.service.cancel(SHOP, record.id)

    assert raised.value.state == ("in_transit", "no_exchange")
    assert raised.value.event == "cancel"
    assert raised.value.allowed == TABLE.allowed(("in_transit", "no_exchange"))
    assert harness.service.get(SHOP, record.id) is before
    assert list(outbox(harness, record)) == entries
    assert [fake.calls for fake in harness.ports.all()] == calls
    assert [label.status for label in harness.ports.carrier.labels] == ["active"]


def test_cancel_before_the_label_was_bought_still_voids_it() -> None:
    harness = make_harness(auto_dispatch=False)
    record = request(harness, line("L3"))

    harness.service.cancel(SHOP, record.id)
    harness.dispatch_due()
    harness.dispatch_due()

    assert harness.service.get(SHOP, record.id).state == ("cancelled", "no_exchange")
    assert [rma.status for rma in harness.ports.warehouse.returns] == ["cancelled"]
    assert [label.status for label in harness.ports.carrier.labels] == ["void"]


# -- 8. decline -----------------------------------------------------------------------------------


def test_an_agent_declines_a_return_under_review() -> None:
    harness = make_harness(policy=ReturnPolicy(auto_approve=False))
    record = request(harness, line("L3"))
    assert record.state == ("pending_review", "no_exchange")

    declined = harness.service.decline(
        SHOP, record.id, DeclineReason.OTHER, note="worn", actor="agent:maria"
    )

    assert declined.state == ("declined", "no_exchange")
    assert declined.decline_reason is DeclineReason.OTHER
    last = declined.history[-1]
    assert (last.event, last.actor, dict(last.payload)) == (
        "decline",
        "agent:maria",
        {"reason": "OTHER", "note": "worn"},
    )
    assert harness.ports.events.topics_for(record.id)[-1] == "returns/decline"
    assert harness.ports.events.events[-1].payload["reason"] == "OTHER"
    message = harness.ports.notifier.messages[-1]
    assert message.template == "return_declined"
    assert (message.context["reason"], message.context["note"]) == ("OTHER", "worn")
    assert harness.ports.carrier.labels == []
    assert harness.ports.warehouse.returns == []


# -- 9. close, reopen, close ----------------------------------------------------------------------


def test_close_settles_accepted_units_once_and_reopen_never_refunds_twice() -> None:
    harness = make_harness(policy=ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED))
    record = request(harness, line("L2", 2))
    receive(harness, record, ("L2", 1))  # one cap of two
    short = harness.service.handle(
        WarehouseFinished(shop=SHOP, return_id=record.id, event_id="wms-fin-1")
    )
    assert short.record.state == ("needs_review", "no_exchange")
    assert short.record.review_reasons == ("warehouse finished a short receipt: L2: 1/2",)

    closed = harness.service.close(SHOP, record.id, actor="agent:maria", unreceived="nothing")

    assert closed.state == ("closed", "no_exchange")
    refunds = harness.ports.commerce.refunds
    assert [(refund.amount, refund.lines) for refund in refunds] == [
        (eur("11.90"), (LineQuantity("L2", 1),))
    ]
    assert closed.lines[0].settled == 1
    assert closed.refs.refund_ids == (refunds[0].refund_id,)

    reopened = harness.service.reopen(SHOP, record.id, reason="customer called")

    assert reopened.state == ("needs_review", "no_exchange")
    assert reopened.review_reasons == ("customer called",)
    assert harness.ports.events.topics_for(record.id)[-1] == "returns/reopen"

    again = harness.service.close(SHOP, record.id, actor="agent:maria", unreceived="nothing")

    assert again.state == ("closed", "no_exchange")
    assert harness.ports.commerce.refunds == refunds
    assert len(entries_of(harness, record, "issue_refund")) == 1
    assert events_named(again, "close") == ["close", "close"]


# -- 10, 11. outcomes -----------------------------------------------------------------------------


def test_keep_refunds_without_label_warehouse_or_receipt_and_closes() -> None:
    harness = make_harness()

    record = request(harness, line("L3", outcome=Keep()))

    assert record.state == ("closed", "no_exchange")
    assert [entry.event for entry in record.history] == [
        "requested",
        "check",
        "auto_approve",
        "settled",
        "refund",
        "refund_issued",
        "close",
    ]
    assert [refund.amount for refund in harness.ports.commerce.refunds] == [eur("100.00")]
    assert harness.ports.commerce.credits == []
    assert harness.ports.carrier.calls == []
    assert harness.ports.warehouse.calls == []
    assert harness.ports.commerce.restocks == []


def test_keep_settled_as_store_credit_issues_credit() -> None:
    harness = make_harness()

    record = request(harness, line("L2", 2, outcome=Keep(settle=OutcomeKind.STORE_CREDIT)))

    assert record.state == ("closed", "no_exchange")
    assert [credit.amount for credit in harness.ports.commerce.credits] == [eur("23.80")]
    assert record.refs.credit_ids == ("gift-1",)
    assert harness.ports.commerce.refunds == []
    assert harness.ports.carrier.calls == []
    assert harness.ports.warehouse.calls == []
    assert "receive" not in [entry.event for entry in record.history]


def test_store_credit_is_the_paid_amount_plus_the_bonus() -> None:
    harness = make_harness()
    record = request(harness, line("L2", 2, outcome=StoreCredit(bonus=eur("5.00"))))

    closed = receive(harness, record, ("L2", 2))

    assert closed.state == ("closed", "no_exchange")
    (credit,) = harness.ports.commerce.credits
    assert credit.amount == eur("28.80")  # 23.80 paid + 5.00 bonus
    assert harness.ports.commerce.refunds == []
    assert closed.refs.credit_ids == (credit.credit_id,)


# -- 12. money to the cent ------------------------------------------------------------------------


def test_refunds_of_one_line_over_three_returns_add_up_to_the_cent() -> None:
    harness = Harness()
    harness.ports.commerce.add_order(
        OrderSnapshot(
            id=ORDER_ID,
            shop=SHOP,
            created_at=ORDERED,
            fulfilled_at=ORDERED,
            currency="EUR",
            lines=[
                OrderLine(
                    id="L1",
                    sku="SOCKS",
                    variant_id="socks",
                    quantity=3,
                    unit_price=eur("10.00"),
                    discount=eur("20.00"),  # 3 x 10.00 - 20.00 = 10.00 paid
                )
            ],
        )
    )

    for number in (1, 2, 3):
        record = request(harness, line("L1"))
        closed = receive(harness, record, ("L1", 1), event_id=f"wms-{number}")
        assert closed.state == ("closed", "no_exchange")

    amounts = [refund.amount for refund in harness.ports.commerce.refunds]
    assert amounts == [eur("3.34"), eur("3.33"), eur("3.33")]
    assert Money.sum(amounts, "EUR") == eur("10.00")
    with pytest.raises(InvalidQuantity) as raised:
        request(harness, line("L1"))
    assert raised.value.field == "lines[0].quantity"
    assert len(harness.service.list(SHOP)) == 3


# -- 13. tenancy ----------------------------------------------------------------------------------


def test_a_shop_never_sees_another_shops_returns() -> None:
    harness = make_harness()
    harness.ports.commerce.add_order(make_order(OTHER_SHOP))
    mine = request(harness, line("L1"))
    theirs = request(harness, line("L1"), shop=OTHER_SHOP)  # the same order id and line

    assert [record.id for record in harness.service.list(SHOP)] == [mine.id]
    assert [record.id for record in harness.service.list(OTHER_SHOP)] == [theirs.id]
    assert harness.service.list(OTHER_SHOP, order_id=ORDER_ID) == [theirs]
    assert harness.service.list("shop-c") == []
    for command in (
        lambda: harness.service.get(OTHER_SHOP, mine.id),
        lambda: harness.service.timeline(OTHER_SHOP, mine.id),
        lambda: harness.service.cancel(OTHER_SHOP, mine.id),
        lambda: harness.service.handle(
            CarrierUpdate(shop=OTHER_SHOP, return_id=mine.id, event_id="x", status="DELIVERED")
        ),
    ):
        with pytest.raises(ReturnNotFound) as raised:
            command()
        assert (raised.value.shop, raised.value.return_id) == (OTHER_SHOP, mine.id)
    assert harness.service.get(SHOP, mine.id).state == ("label_sent", "no_exchange")


def test_each_shop_has_its_own_return_id_space() -> None:
    harness = make_harness(ids=lambda: "RET-1")
    harness.ports.commerce.add_order(make_order(OTHER_SHOP))

    mine = request(harness, line("L1"))
    theirs = request(harness, line("L1"), shop=OTHER_SHOP)

    assert (mine.id, theirs.id) == ("RET-1", "RET-1")
    assert harness.service.get(SHOP, "RET-1").shop == SHOP
    assert harness.service.get(OTHER_SHOP, "RET-1").shop == OTHER_SHOP
    assert theirs.state == ("label_sent", "no_exchange")
    assert [label.shop for label in harness.ports.carrier.labels] == [SHOP, OTHER_SHOP]


# -- 14. reads never build a machine --------------------------------------------------------------


def test_allowed_events_come_from_the_table_without_building_a_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the chart engine, so that writes build machines and the counter can be seen to work
    harness = make_harness(policy=ReturnPolicy(auto_approve=False), engine="chart")
    review = request(harness, line("L1"))  # builds this thread's machine if there is none
    built: list[ReturnChart] = []
    original = ReturnChart.__init__

    def counting(self: ReturnChart, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ReturnChart, "__init__", counting)

    # The counter works: a thread of its own builds a machine for its first command.
    results: list[ReturnRecord] = []
    worker = threading.Thread(
        target=lambda: results.append(harness.service.approve(SHOP, review.id))
    )
    worker.start()
    worker.join()
    assert len(built) == 1
    assert [record.state for record in results] == [("label_sent", "no_exchange")]

    exchange = request(harness, line("L2", outcome=Exchange(variant_id="cap-red")))
    harness.service.approve(SHOP, exchange.id)
    keep = request(harness, line("L3", outcome=Keep()))
    harness.service.approve(SHOP, keep.id)
    built.clear()

    reads: list[Callable[[], object]] = []
    for record in harness.service.list(SHOP):
        assert harness.service.allowed_events(record) == TABLE.allowed(record.state)
        reads.append(lambda record=record: harness.service.timeline(SHOP, record.id))
        reads.append(lambda record=record: harness.service.render_timeline(SHOP, record.id))
    for read in reads:
        read()

    states = {record.state for record in harness.service.list(SHOP)}
    assert states == {
        ("label_sent", "no_exchange"),
        ("label_sent", "on_hold"),
        ("closed", "no_exchange"),
    }
    assert built == []


# -- 15. timeline ---------------------------------------------------------------------------------


def test_the_timeline_has_every_history_entry_and_effect_in_version_order() -> None:
    harness = make_harness()
    record = request(harness, line("L1", outcome=Exchange(variant_id="tee-l")))
    receive(harness, record, ("L1", 1))
    stored = harness.service.get(SHOP, record.id)

    timeline = harness.service.timeline(SHOP, record.id)

    events = [entry for entry in timeline if entry.kind == "event"]
    effects = [entry for entry in timeline if entry.kind == "effect"]
    assert len(events) + len(effects) == len(timeline)
    assert [entry.text.split()[0] for entry in events] == [item.event for item in stored.history]
    assert [entry.version for entry in events] == [item.version for item in stored.history]
    assert [entry.at for entry in events] == [item.at for item in stored.history]
    entries = outbox(harness, record)
    assert len(effects) == len(entries)
    assert [entry.text for entry in effects] == [
        f"{fx.describe(entry.effect)}: done" for entry in entries
    ]
    versions = [entry.version for entry in timeline]
    assert versions == sorted(versions)
    assert versions[0] == 1
    assert versions[-1] == stored.version

    rendered = harness.service.render_timeline(SHOP, record.id).splitlines()
    assert rendered[0].startswith("return R0001 (order 1001): closed / released, Shopify CLOSED")
    assert rendered[0].endswith(f"version {stored.version}")
    assert len(rendered) == 1 + len(timeline)
    assert sum(text.startswith("  * ") for text in rendered) == len(events)
    assert sum(text.startswith("     -> ") for text in rendered) == len(effects)


# -- 16. inbound facts the state has no use for ---------------------------------------------------


def test_an_inbound_fact_the_state_cannot_use_is_ignored_recorded_and_seen() -> None:
    harness = make_harness()
    record = request(harness, line("L3", outcome=Keep()))
    assert record.state == ("closed", "no_exchange")
    scan = CarrierUpdate(
        shop=SHOP, return_id=record.id, event_id="scan-9", status=CarrierStatus.DELIVERED
    )
    entries = list(outbox(harness, record))

    result = harness.service.handle(scan)

    assert result.status == "ignored"
    assert result.reason == "delivered while closed"
    assert result.record.state == ("closed", "no_exchange")
    assert result.record.version == record.version + 1
    last = result.record.history[-1]
    assert (last.event, last.source, last.target, last.actor) == (
        "ignored",
        ("closed", "no_exchange"),
        ("closed", "no_exchange"),
        "carrier",
    )
    assert dict(last.payload) == {
        "fact": "CarrierUpdate",
        "id": "scan-9",
        "why": "delivered while closed",
    }
    assert len(result.record.history) == len(record.history) + 1
    assert list(outbox(harness, record)) == entries

    repeat = harness.service.handle(scan)

    assert repeat.status == "duplicate"
    assert repeat.reason == "carrier:scan-9"
    assert repeat.record == result.record
