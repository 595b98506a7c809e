"""The dispatcher on its own: a worker's relay with no service, and its table of handlers.

:class:`~returnflow.dispatch.Dispatcher` needs a store and the ports, nothing of the service:
a worker process (or a task queue's task) builds one and delivers what any service committed.
Each effect type is one entry of its handler table; ``handlers=`` adds or replaces entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    ReceivedLine,
    RequestLine,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow._delivery import WriteFirst
from returnflow.demo.scenarios import SHOP, order_1001
from returnflow.dispatch import HANDLERS, Dispatcher, DispatchReport, Handler
from returnflow.domain.model import ReturnRecord
from returnflow.errors import PortError
from returnflow.lifecycle import effects as fx
from returnflow.testing import Harness


def _committed() -> tuple[Harness, str]:
    """A service that commits and never delivers (a web process), one return requested."""
    harness = Harness(auto_dispatch=False)
    harness.ports.commerce.add_order(order_1001(SHOP))
    request = ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 1)])
    return harness, harness.service.request(request).id


def _worker(
    harness: Harness,
    *,
    handlers: Mapping[type[fx.Effect], Handler] | None = None,
    lease: timedelta = timedelta(minutes=5),
) -> Dispatcher:
    """A worker's own dispatcher on the same store and ports: not the service's."""
    ports = harness.ports
    return Dispatcher(
        store=harness.store,
        commerce=ports.commerce,
        warehouse=ports.warehouse,
        carrier=ports.carrier,
        payments=ports.payments,
        notifier=ports.notifier,
        events=ports.events,
        policy=harness.policy,
        clock=harness.clock,
        worker_id="worker-2",
        jitter_seed=7,
        handlers=handlers,
        lease=lease,
    )


def test_a_dispatcher_alone_delivers_what_a_service_committed() -> None:
    harness, return_id = _committed()
    pending = harness.store.pending()
    assert [entry.effect.kind for entry in pending] == [
        "create_label",
        "create_warehouse_return",
        "publish",
        "notify",
        "publish",
        "notify",
    ]
    assert harness.ports.carrier.labels == []  # the service delivered nothing
    worker = _worker(harness)
    assert worker is not harness.service.dispatcher

    report = worker.dispatch_pending()

    # the label's answer plans its message and event: delivered in the same call
    assert report == DispatchReport(delivered=8)
    assert [entry.effect.kind for entry in harness.store.outbox(SHOP, return_id)][6:] == [
        "notify",
        "publish",
    ]
    assert harness.store.pending() == []
    record = harness.store.get(SHOP, return_id)
    assert record.status == "label_sent"
    (label,) = harness.ports.carrier.labels
    assert record.refs.tracking_number == label.tracking_number
    (call,) = harness.ports.carrier.calls_to("create_label")
    label_effect = next(e.effect for e in pending if isinstance(e.effect, fx.CreateLabel))
    assert call.idempotency_key == label_effect.key
    assert worker.dispatch_pending() == DispatchReport()  # nothing twice


def test_a_commit_plans_its_port_calls_before_its_messages_and_events() -> None:
    harness, return_id = _committed()
    topics = [
        entry.effect.topic
        for entry in harness.store.outbox(SHOP, return_id)
        if isinstance(entry.effect, fx.Publish)
    ]
    assert topics == ["returns/request", "returns/approve"]  # each group as planned
    # the label heads the return: a claim hands it out with nothing before it to write
    assert harness.store.pending()[0].effect.kind == "create_label"
    effects = [entry.effect for entry in harness.store.outbox(SHOP, return_id)]
    told = [effect for effect in effects if effect.port in fx.MESSAGE_PORTS]
    calls = [effect for effect in effects if effect.port not in fx.MESSAGE_PORTS]
    assert fx.in_delivery_order([*told, *calls]) == [*calls, *told]
    assert fx.in_delivery_order(told[::-1]) == told[::-1]
    assert fx.in_delivery_order([]) == []


def test_a_receipt_refunds_before_it_restocks() -> None:
    harness = Harness()
    harness.ports.commerce.add_order(order_1001(SHOP))
    request = ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 1)])
    return_id = harness.service.request(request).id
    harness.service.handle(
        CarrierUpdate(
            shop=SHOP, return_id=return_id, event_id="scan", status=CarrierStatus.DELIVERED
        )
    )
    harness.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=return_id,
            event_id="rcv",
            lines=[
                ReceivedLine(line_id=harness.store.get(SHOP, return_id).lines[0].id, quantity=1)
            ],
        )
    )
    kinds = [
        entry.effect.kind
        for entry in harness.store.outbox(SHOP, return_id)
        if entry.effect.port not in fx.MESSAGE_PORTS
    ]
    assert kinds[-2:] == ["issue_refund", "restock"], kinds
    assert harness.store.get(SHOP, return_id).status == "closed"


def test_a_new_effect_kind_is_one_entry_of_the_handler_table() -> None:
    harness, return_id = _committed()
    seen: list[tuple[str, str]] = []

    def log_message(d: Dispatcher, effect: fx.Notify, record: ReturnRecord) -> object:
        seen.append((effect.template, record.id))
        return None

    worker = _worker(harness, handlers={fx.Notify: log_message})
    assert worker.handlers[fx.Notify] is log_message
    assert HANDLERS[fx.Notify] is not log_message  # the module's table is left as it is
    worker.dispatch_pending()
    assert seen
    assert all(rid == return_id for _, rid in seen)
    assert harness.ports.notifier.messages == []  # the replaced handler never ran
    assert harness.store.pending() == []


def test_a_handler_that_fails_is_retried_after_the_back_off() -> None:
    harness, return_id = _committed()
    harness.ports.carrier.fail("create_label")
    worker = _worker(harness)
    report = worker.dispatch_pending()
    assert report.failed == 1
    assert report.given_up == 0
    (entry,) = [e for e in harness.store.outbox(SHOP, return_id) if e.effect.kind == "create_label"]
    assert (entry.status, entry.attempts) == ("pending", 1)
    assert entry.last_error is not None
    assert "injected failure" in entry.last_error
    assert entry.next_attempt_at is not None
    assert entry.next_attempt_at > harness.clock()
    assert worker.dispatch_pending().delivered == 0  # not due yet
    harness.clock.advance(seconds=harness.policy.retry_cap_seconds * 1.25 + 1)
    assert worker.dispatch_pending().delivered >= 1
    assert harness.store.get(SHOP, return_id).status == "label_sent"
    assert len(harness.ports.carrier.labels) == 1


def test_an_effect_no_handler_takes_is_given_up_naming_its_kind() -> None:
    harness, return_id = _committed()
    worker = _worker(harness)
    del worker.handlers[fx.Publish]
    report = worker.dispatch_pending()
    assert report.given_up >= 1
    given_up = [e for e in harness.store.outbox(SHOP, return_id) if e.status == "failed"]
    assert given_up
    assert all(isinstance(e.effect, fx.Publish) for e in given_up)
    assert all("no port handles this effect" in (e.last_error or "") for e in given_up)
    # a lost domain event does not need a person: the return goes on
    assert harness.store.get(SHOP, return_id).status == "label_sent"


def test_a_critical_handler_given_up_sends_the_return_to_a_person() -> None:
    harness, return_id = _committed()
    refused = PortError("carrier", "create_label", "account suspended", retryable=False)
    harness.ports.carrier.fail("create_label", error=refused)
    report = _worker(harness).dispatch_pending()
    assert report.given_up == 1
    record = harness.store.get(SHOP, return_id)
    assert record.status == "needs_review"
    assert any("account suspended" in reason for reason in record.review_reasons)


@pytest.mark.parametrize("lease", [timedelta(seconds=30), timedelta(minutes=5)])
def test_a_claim_held_by_one_worker_is_not_delivered_by_another(lease: timedelta) -> None:
    harness, return_id = _committed()
    first, second = _worker(harness, lease=lease), _worker(harness, lease=lease)
    second.worker_id = "worker-3"
    now = harness.clock()
    claimed = harness.store.claim(now=now, lease_until=now + lease, worker=first.worker_id)
    assert claimed
    assert second.dispatch_pending() == DispatchReport()
    assert harness.ports.carrier.labels == []
    harness.clock.advance(seconds=lease.total_seconds() + 1)  # the first worker died
    assert second.dispatch_pending().delivered >= len(claimed)
    assert harness.store.get(SHOP, return_id).status == "label_sent"


def test_a_handler_that_asks_to_write_first_is_called_again_on_the_return_as_written() -> None:
    # A handler that decides what it sends from figures a retry could not get again writes
    # its decision on the return before the call: the dispatcher writes it, then calls the
    # handler again with the return as written, in the same attempt.
    harness, return_id = _committed()
    seen: list[tuple[str, ...]] = []

    def decide_then_send(d: Dispatcher, effect: fx.Notify, record: ReturnRecord) -> object:
        decided = tuple(e.payload["key"] for e in record.history if e.event == "decided")
        seen.append(decided)
        if effect.key not in decided:
            raise WriteFirst(lambda change: change.note("decided", {"key": effect.key}))
        return None

    worker = _worker(harness, handlers={fx.Notify: decide_then_send})
    report = worker.dispatch_pending()
    assert (report.failed, report.given_up) == (0, 0)
    outbox = harness.store.outbox(SHOP, return_id)
    keys = [e.effect.key for e in outbox if e.effect.kind == "notify"]
    record = harness.store.get(SHOP, return_id)
    assert [e.payload["key"] for e in record.history if e.event == "decided"] == keys
    assert all(e.attempts == 1 for e in outbox)
    assert len(seen) == 2 * len(keys)


def test_a_handler_may_write_two_decisions_before_its_call_but_not_a_third() -> None:
    # A processing a person began in the platform's admin decides the person's units, then
    # the platform's figure for the units left: both written in the same attempt. A
    # handler that keeps asking fails the attempt (retried), never loops.
    harness, return_id = _committed()

    def decide(steps: int) -> Handler:
        def handler(d: Dispatcher, effect: fx.Notify, record: ReturnRecord) -> object:
            done = [e for e in record.history if e.payload.get("key") == effect.key]
            if len(done) < steps:
                raise WriteFirst(lambda change: change.note("decided", {"key": effect.key}))
            return None

        return handler

    report = _worker(harness, handlers={fx.Notify: decide(2)}).dispatch_pending()
    assert (report.failed, report.given_up) == (0, 0)
    assert all(e.status == "done" for e in harness.store.outbox(SHOP, return_id))
    again, other = _committed()
    report = _worker(again, handlers={fx.Notify: decide(3)}).dispatch_pending()
    assert report.failed >= 1
    notified = [e for e in again.store.outbox(SHOP, other) if e.effect.kind == "notify"]
    assert notified
    assert all(e.status == "pending" for e in notified)
