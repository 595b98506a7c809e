"""Every path that takes, settles or frees units of an order, through the service, on each
store the project ships (memory, SQLite, PostgreSQL): after every step the store's own ledger
rows (``store.units``) are exactly the units its returns hold by the ledger's rule
(:func:`~returnflow.domain.ledger.held_units`), no unit is held twice, and what the next
request may take follows from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import pytest

import postgres_support
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Completion,
    DeclineReason,
    Fulfillment,
    InvalidQuantity,
    Keep,
    Money,
    NotFulfilled,
    OrderLine,
    OrderSnapshot,
    OutcomeKind,
    QcResult,
    ReceivedLine,
    RefundTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    WarehouseReceipt,
    WindowStart,
)
from returnflow.domain.ledger import UnitKey, held_units
from returnflow.ports.store import ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness, ManualClock, SequentialIds

SHOP = "shop-l"
DAY0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class LedgerStore(ReturnStore, Protocol):
    def units(self, shop: str, order_id: str) -> dict[UnitKey, str]: ...


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "returns.db")
        yield sqlite
        sqlite.close()
        return
    pytest.importorskip("psycopg")
    from returnflow.stores.postgres import PostgresStore

    cluster = postgres_support.cluster_or_skip()
    with cluster.database() as dsn:
        postgres = PostgresStore(dsn)
        yield postgres
        postgres.close()


def order(order_id: str, quantity: int = 2, **line: Any) -> OrderSnapshot:
    fields: dict[str, Any] = {"fulfillments": (Fulfillment(quantity, DAY0),), **line}
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=DAY0,
        currency="EUR",
        lines=[
            OrderLine(
                id="L1",
                sku="TEE",
                variant_id="tee",
                quantity=quantity,
                unit_price=Money("20.00", "EUR"),
                **fields,
            )
        ],
    )


def ask(order_id: str, quantity: int = 1, **line: Any) -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP,
        order_id=order_id,
        lines=[RequestLine(order_line_id="L1", quantity=quantity, **line)],
    )


class World:
    """Harnesses with different policies on one store and one clock."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.clock = ManualClock(DAY0 + timedelta(days=1))
        self.harnesses: list[Harness] = []

    def harness(self, prefix: str, **policy: Any) -> Harness:
        harness = Harness(
            store=self.store,
            policy=ReturnPolicy(**policy),
            clock=self.clock,
            ids=SequentialIds(prefix),
        )
        self.harnesses.append(harness)
        return harness

    def add(self, snapshot: OrderSnapshot) -> None:
        for harness in self.harnesses:
            harness.ports.commerce.add_order(snapshot)

    def check(self, order_id: str) -> dict[int, str]:
        """The ledger rows agree with the returns' held units; unit -> holder of line L1."""
        expected: dict[UnitKey, str] = {}
        for record in self.store.list(SHOP, order_id=order_id):
            for unit in held_units(record):
                assert unit not in expected, f"{unit} held by {expected[unit]} and {record.id}"
                expected[unit] = record.id
        rows = self.store.units(SHOP, order_id)
        assert rows == expected
        return {unit: holder for (line, unit), holder in rows.items() if line == "L1"}


def test_every_path_that_takes_settles_or_frees_units_keeps_the_ledger(
    store: LedgerStore,
) -> None:
    world = World(store)
    plain = world.harness("P", review_reasons=frozenset({ReturnReason.DEFECTIVE}))
    finished = world.harness("F", completion=Completion.ON_WAREHOUSE_FINISHED)
    early = world.harness("E", refund_trigger=RefundTrigger.ON_HANDED_IN)
    service = plain.service
    for n in range(7):
        world.add(order(f"O{n}"))

    # cancelled, declined, expired (by hand and by the timer): the units come back free
    first = service.request(ask("O0"))
    assert world.check("O0") == {first.lines[0].units[0]: first.id}
    service.cancel(SHOP, first.id)
    assert world.check("O0") == {}
    review = service.request(ask("O0", 2, reason=ReturnReason.DEFECTIVE))
    assert review.status == "pending_review"
    assert world.check("O0") == {0: review.id, 1: review.id}
    service.decline(SHOP, review.id, DeclineReason.OTHER)
    assert world.check("O0") == {}
    lapsed = service.request(ask("O0", 2))
    service.expire(SHOP, lapsed.id)
    assert world.check("O0") == {}
    timed = service.request(ask("O0", 2))
    world.clock.advance(days=31)
    service.tick()
    assert service.get(SHOP, timed.id).status == "expired"
    assert world.check("O0") == {}
    world.clock.advance(days=-31)

    # keep the item: settled at once, taken for good
    kept = service.request(ask("O1", 1, outcome=Keep(settle=OutcomeKind.STORE_CREDIT)))
    assert kept.status == "closed"
    assert world.check("O1") == {kept.lines[0].units[0]: kept.id}
    with pytest.raises(InvalidQuantity, match="only 1 of 2 left"):
        service.request(ask("O1", 2))

    # an import takes its units; cancelled at the source, it frees them
    imported = service.import_return(
        ask("O2", 2), return_id="loop-9", source="loop", external_id="9"
    )
    assert world.check("O2") == {0: imported.id, 1: imported.id}
    with pytest.raises(InvalidQuantity):
        service.request(ask("O2"))
    service.cancel(SHOP, imported.id, actor="loop")
    assert world.check("O2") == {}

    # a reset hands the accepted unit to its new return in the same commit, frees the other
    parent = finished.service.request(ask("O3", 2))
    line_id = parent.lines[0].id
    finished.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=parent.id,
            event_id="w-3",
            lines=[ReceivedLine(line_id=line_id, quantity=1)],
        )
    )
    _, child = finished.service.reset(SHOP, parent.id)
    assert world.check("O3") == {child.lines[0].units[0]: child.id}
    again = service.request(ask("O3"))
    assert world.check("O3") == {
        child.lines[0].units[0]: child.id,
        again.lines[0].units[0]: again.id,
    }

    # refunded early on the carrier's scan, then QC rejects one and the return is reset:
    # both units were paid for, so neither is free again
    paid = early.service.request(ask("O4", 2))
    early.service.handle(
        CarrierUpdate(shop=SHOP, return_id=paid.id, event_id="c-4", status=CarrierStatus.PICKED_UP)
    )
    early.dispatch_due()
    for event_id, qc in (("w-4a", QcResult.PASS), ("w-4b", QcResult.FAIL)):
        early.service.handle(
            WarehouseReceipt(
                shop=SHOP,
                return_id=paid.id,
                event_id=event_id,
                lines=[ReceivedLine(line_id=paid.lines[0].id, quantity=1, qc=qc)],
            )
        )
    _, heir = early.service.reset(SHOP, paid.id)
    holders = world.check("O4")
    assert sorted(holders) == [0, 1]
    assert set(holders.values()) == {paid.id, heir.id}
    with pytest.raises(InvalidQuantity, match="only 0 of 2 left"):
        service.request(ask("O4"))

    # refunded early, then the parcel goes back to the customer and an agent looks: the
    # paid units stay taken whatever the agent does next
    back = early.service.request(ask("O5", 2))
    early.service.handle(
        CarrierUpdate(shop=SHOP, return_id=back.id, event_id="c-5", status=CarrierStatus.PICKED_UP)
    )
    early.dispatch_due()
    early.service.handle(
        CarrierUpdate(
            shop=SHOP, return_id=back.id, event_id="c-5b", status=CarrierStatus.RETURN_TO_ORIGIN
        )
    )
    assert world.check("O5") == {0: back.id, 1: back.id}
    with pytest.raises(InvalidQuantity):
        service.request(ask("O5"))

    # a line shipped on two days: the window counts from the shipment of the units returned
    later = world.harness("W", window_starts=WindowStart.FULFILLMENT, window_days=30)
    split = order(
        "O6",
        3,
        fulfillments=(Fulfillment(2, DAY0), Fulfillment(1, DAY0 + timedelta(days=20))),
    )
    world.add(split)
    world.clock.advance(days=35)  # day 36: the first shipment's window ended on day 30
    newest = later.service.request(ask("O6"))
    assert (newest.status, newest.lines[0].units) == ("label_sent", (2,))
    older = later.service.request(ask("O6"))
    assert older.status == "declined"
    assert older.lines[0].units in {(0,), (1,)}
    assert world.check("O6") == {2: newest.id}


def test_a_line_whose_fulfillment_is_unknown_is_not_returnable_on_any_store(
    store: LedgerStore,
) -> None:
    world = World(store)
    harness = world.harness("U", window_starts=WindowStart.FULFILLMENT)
    unknown = OrderSnapshot(
        id="O-unknown",
        shop=SHOP,
        created_at=DAY0,
        currency="EUR",
        lines=[
            OrderLine(
                id="L1", sku="TEE", variant_id="tee", quantity=2, unit_price=Money("20.00", "EUR")
            )
        ],
    )
    world.add(unknown)
    for outcome in (None, Keep()):
        extra = {} if outcome is None else {"outcome": outcome}
        with pytest.raises(NotFulfilled) as raised:
            harness.service.request(ask("O-unknown", 1, **extra))
        assert raised.value.field == "lines[0].quantity"
        assert "on line L1 (2 not fulfilled)" in str(raised.value)
    assert store.list(SHOP, order_id="O-unknown") == []
    assert world.check("O-unknown") == {}
