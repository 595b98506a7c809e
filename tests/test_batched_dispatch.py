"""Dispatch in runs: what one claim hands out is delivered in order, once, and no claim is
left behind; critical deliveries wait for the ones before them to be written unless told
to go together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Completion,
    Exchange,
    QcResult,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    StoreCredit,
    WarehouseReceipt,
)
from returnflow.demo.scenarios import order_1001
from returnflow.ports.events import DomainEvent
from returnflow.ports.store import ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness, make_order

SHOP = "my-shop"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReturnStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    opened = SqliteStore(tmp_path / "returns.db")
    yield opened
    opened.close()


def open_returns(harness: Harness, count: int) -> list[str]:
    ids = []
    for n in range(count):
        harness.ports.commerce.add_order(make_order(SHOP, f"O{n}"))
        request = ReturnRequest(shop=SHOP, order_id=f"O{n}", lines=[RequestLine("L1", 1)])
        ids.append(harness.service.request(request).id)
    return ids


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7])
def test_a_limited_dispatch_delivers_every_head_it_claimed(store: ReturnStore, limit: int) -> None:
    harness = Harness(store=store, auto_dispatch=False)
    ids = open_returns(harness, 4)
    report = harness.service.dispatch_pending(limit=limit)
    assert report.delivered == limit
    pending = [
        entry for rid in ids for entry in store.outbox(SHOP, rid) if entry.status == "pending"
    ]
    # nothing is left under this worker's lease: what it did not deliver, others may claim
    assert all(entry.claimed_by is None for entry in pending)
    while harness.service.dispatch_pending(limit=limit).delivered:
        pass
    for rid in ids:
        outbox = store.outbox(SHOP, rid)
        assert {entry.status for entry in outbox} == {"done"}
        assert all(entry.attempts == 1 for entry in outbox)
        assert store.get(SHOP, rid).state == ("label_sent", "no_exchange")


@pytest.mark.parametrize("alone", [True, False])
def test_an_exchange_goes_out_in_order_once_either_way(store: ReturnStore, alone: bool) -> None:
    harness = Harness(store=store)
    harness.service.dispatcher.critical_alone = alone
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    request = ReturnRequest(
        shop=SHOP,
        order_id="1001",
        lines=[RequestLine("L1", 1, outcome=Exchange(variant_id="v-large"))],
    )
    record = harness.service.request(request)
    outbox = store.outbox(SHOP, record.id)
    assert {entry.status for entry in outbox} == {"done"}
    assert all(entry.attempts == 1 for entry in outbox)
    stored = store.get(SHOP, record.id)
    assert record == stored  # what the service returned is what the deliveries wrote
    assert stored.refs.tracking_number is not None
    assert stored.refs.warehouse_rma_id is not None
    assert stored.refs.exchange_hold_id is not None
    kinds = [call.operation for call in harness.ports.commerce.calls]
    assert kinds.count("add_exchange_items") == 1


def test_a_failure_ends_the_run_and_what_follows_waits(store: ReturnStore) -> None:
    harness = Harness(store=store)
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    harness.ports.carrier.fail("create_label")
    request = ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 1)])
    record = harness.service.request(request)
    outbox = store.outbox(SHOP, record.id)
    label = next(entry for entry in outbox if entry.effect.kind == "create_label")
    behind = [entry for entry in outbox if entry.sequence > label.sequence]
    assert (label.status, label.attempts, label.claimed_by) == ("pending", 1, None)
    assert behind
    assert all((entry.status, entry.attempts) == ("pending", 0) for entry in behind)
    assert all(entry.status == "done" for entry in outbox if entry.sequence < label.sequence)


def test_a_refund_and_a_credit_confirmed_in_one_write_close_the_return(
    store: ReturnStore,
) -> None:
    # Delivered together (critical_alone=False), both payouts are confirmed in one write:
    # the second to be applied must not count the first as still pending.
    harness = Harness(store=store, policy=ReturnPolicy(completion=Completion.ON_RECEIPT))
    harness.service.dispatcher.critical_alone = False
    harness.ports.commerce.add_order(order_1001(SHOP, "1001"))
    request = ReturnRequest(
        shop=SHOP,
        order_id="1001",
        lines=[
            RequestLine("L2", 1, outcome=StoreCredit()),
            RequestLine("L3", 1, outcome=Refund()),
        ],
    )
    rid = harness.service.request(request).id
    for n, line in enumerate(["L2", "L3"]):
        harness.service.handle(
            WarehouseReceipt(
                shop=SHOP,
                return_id=rid,
                event_id=f"rcv-{n}",
                lines=(ReceivedLine(line_id=line, quantity=1, qc=QcResult.PASS),),
            )
        )
    outbox = store.outbox(SHOP, rid)
    assert {entry.status for entry in outbox} == {"done"}
    kinds = [entry.effect.kind for entry in outbox]
    assert "issue_refund" in kinds
    assert "issue_store_credit" in kinds
    assert store.get(SHOP, rid).status == "closed"


def test_a_fact_committed_while_another_worker_holds_the_run_goes_out_with_that_run(
    store: ReturnStore,
) -> None:
    """The fact's commit cannot claim what another worker's lease covers; that worker's last
    write claims it, and it is delivered in the same hand-over, not left for a later
    ``dispatch_pending``."""
    first, second = Harness(store=store), Harness(store=store)
    for harness in (first, second):
        harness.ports.commerce.add_order(make_order(SHOP, "O1"))
    request = ReturnRequest(shop=SHOP, order_id="O1", lines=[RequestLine("L1", 1)])
    rid = first.service.request(request).id
    events = first.ports.events
    publish = events.publish
    came: list[str] = []

    def publish_then_a_fact_elsewhere(event: DomainEvent, *, idempotency_key: str) -> None:
        publish(event, idempotency_key=idempotency_key)
        if not came and event.return_id == rid:
            came.append(event.topic)
            delivered = CarrierUpdate(
                shop=SHOP, return_id=rid, event_id="scan-2", status=CarrierStatus.DELIVERED
            )
            assert second.service.handle(delivered).status == "applied"

    events.publish = publish_then_a_fact_elsewhere  # type: ignore[method-assign]
    picked = CarrierUpdate(
        shop=SHOP, return_id=rid, event_id="scan-1", status=CarrierStatus.PICKED_UP
    )
    assert first.service.handle(picked).status == "applied"
    assert came  # the second fact came while the first worker held the return
    outbox = store.outbox(SHOP, rid)
    assert [entry.status for entry in outbox] == ["done"] * len(outbox)
    assert all(entry.claimed_by is None for entry in outbox)
    assert second.ports.events.topics_for(rid) == []  # delivered by the first worker, once
    published = [entry for entry in outbox if entry.effect.kind == "publish"]
    assert len(events.topics_for(rid)) == len(published)
    assert store.get(SHOP, rid).status == "delivered"
