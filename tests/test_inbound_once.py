"""An inbound fact is applied once: a new one is not looked up before it is decided (its
commit refuses a key already seen), and a repeat is a ``duplicate`` whatever its decision
would have done: written something, nothing, or raised."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.errors import ReturnflowError
from returnflow.ports.store import InboundKey, ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

SHOP = "once-shop"
ORDERED = datetime(2026, 1, 10, tzinfo=timezone.utc)


class Counting:
    """A store whose ``seen`` calls are counted."""

    def __init__(self, store: ReturnStore) -> None:
        self.store = store
        self.looked_up: list[InboundKey] = []

    def seen(self, key: InboundKey) -> bool:
        self.looked_up.append(key)
        return self.store.seen(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture(params=["memory", "sqlite"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Harness, Counting]]:
    store: ReturnStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "r.db")
    )
    counting = Counting(store)
    harness = Harness(store=counting)  # type: ignore[arg-type]
    price = Money("12.00", "EUR")
    line = OrderLine(id="L1", sku="MUG", variant_id="mug", quantity=2, unit_price=price)
    harness.ports.commerce.add_order(
        OrderSnapshot(
            id="O1",
            shop=SHOP,
            created_at=ORDERED,
            currency="EUR",
            fulfilled_at=ORDERED,
            lines=[line],
        )
    )
    yield harness, counting
    close = getattr(store, "close", None)
    if close is not None:
        close()


def opened(harness: Harness) -> str:
    request = ReturnRequest(shop=SHOP, order_id="O1", lines=[RequestLine("L1", 2)])
    rid = harness.service.request(request).id
    picked = CarrierUpdate(
        shop=SHOP, return_id=rid, event_id="scan", status=CarrierStatus.PICKED_UP
    )
    assert harness.service.handle(picked).status == "applied"
    return rid


def receipt(rid: str, event_id: str, quantity: int, line: str = "L1") -> WarehouseReceipt:
    lines = [ReceivedLine(line_id=line, quantity=quantity)]
    return WarehouseReceipt(shop=SHOP, return_id=rid, event_id=event_id, lines=lines)


def test_a_new_fact_is_not_looked_up_before_it_is_applied(
    harness: tuple[Harness, Counting],
) -> None:
    service, counting = harness[0].service, harness[1]
    rid = opened(harness[0])
    counting.looked_up.clear()
    assert service.handle(receipt(rid, "rcv-1", 1)).status == "applied"
    assert counting.looked_up == []


def test_a_repeat_its_decision_would_apply_again_is_a_duplicate(
    harness: tuple[Harness, Counting],
) -> None:
    service = harness[0].service
    rid = opened(harness[0])
    first = service.handle(receipt(rid, "rcv-1", 1))
    repeat = service.handle(receipt(rid, "rcv-1", 1))  # one more unit would be valid
    assert (repeat.status, repeat.reason) == ("duplicate", "warehouse:rcv-1")
    stored = service.get(SHOP, rid)
    assert stored.version == first.record.version
    assert stored.lines[0].received == 1


def test_a_repeat_its_decision_would_refuse_is_a_duplicate(
    harness: tuple[Harness, Counting],
) -> None:
    service = harness[0].service
    rid = opened(harness[0])
    service.handle(receipt(rid, "rcv-1", 1))
    with pytest.raises(ReturnflowError):  # a line the return does not have: refused
        service.handle(receipt(rid, "rcv-2", 1, line="L9"))
    before = service.get(SHOP, rid)
    repeat = service.handle(receipt(rid, "rcv-1", 1, line="L9"))  # the same id, now wrong
    assert repeat.status == "duplicate"
    assert service.get(SHOP, rid) == before


def test_a_repeat_its_decision_would_leave_alone_is_a_duplicate(
    harness: tuple[Harness, Counting],
) -> None:
    service = harness[0].service
    rid = opened(harness[0])
    picked = CarrierUpdate(
        shop=SHOP, return_id=rid, event_id="scan", status=CarrierStatus.PICKED_UP
    )
    before = service.get(SHOP, rid)
    assert service.handle(picked).status == "duplicate"
    assert service.get(SHOP, rid) == before
