"""Dispatch in runs: what one claim hands out is delivered in order, once, and no claim is
left behind; critical deliveries wait for the ones before them to be written unless told
to go together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from returnflow import Exchange, RequestLine, ReturnRequest
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
