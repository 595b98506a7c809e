"""The order is the boundary: a unit is returned once, only if it shipped, whatever runs at the
same time; and every amount a request carries is checked in one place."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

import order_race
import postgres_support
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    DeclineReason,
    Exchange,
    Fulfillment,
    InvalidAmount,
    InvalidQuantity,
    Keep,
    Money,
    NotFulfilled,
    NotReturnable,
    OrderLine,
    OrderSnapshot,
    OutcomeKind,
    ReceivedLine,
    RefundTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    StoreCredit,
    UnitsTaken,
    WarehouseReceipt,
    WindowStart,
)
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness, ManualClock, SequentialIds

SHOP = "shop-a"
DAY0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def order(
    order_id: str = "O-1",
    quantity: int = 10,
    *,
    fulfillments: tuple[Fulfillment, ...] = (),
    fulfilled_at: datetime | None = None,
    gift_card: bool = False,
) -> OrderSnapshot:
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=DAY0,
        currency="EUR",
        customer_email="ann@example.com",
        fulfilled_at=fulfilled_at,
        lines=[
            OrderLine(
                id="L1",
                sku="SOCK",
                variant_id="sock",
                quantity=quantity,
                unit_price=eur("15.00"),
                fulfillments=fulfillments,
                gift_card=gift_card,
            )
        ],
    )


def ask(quantity: int, outcome: Any = None, order_id: str = "O-1") -> ReturnRequest:
    line = RequestLine(order_line_id="L1", quantity=quantity)
    if outcome is not None:
        line = RequestLine(order_line_id="L1", quantity=quantity, outcome=outcome)
    return ReturnRequest(shop=SHOP, order_id=order_id, lines=[line])


def harness_with(snapshot: OrderSnapshot, policy: ReturnPolicy | None = None, **kw: Any) -> Harness:
    harness = Harness(
        policy=policy or ReturnPolicy(), clock=ManualClock(DAY0 + timedelta(days=5)), **kw
    )
    harness.ports.commerce.add_order(snapshot)
    return harness


def dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


# -- 1. two requests at once ------------------------------------------------------------------


def _judge(reports: list[tuple[Any, ...]], orders: list[str]) -> None:
    errors = [detail for _, status, detail, _ in reports if status != "ok"]
    assert errors == [], "\n".join(errors)
    for index, order_id in enumerate(orders):
        outcomes = [report[2][index] for report in reports]
        accepted = [o for o in outcomes if o[0] == "accepted"]
        refused = [o for o in outcomes if o[0] == "refused"]
        assert len(accepted) == 1, (order_id, outcomes)
        assert len(refused) == len(reports) - 1, (order_id, outcomes)
        for _, field, message in refused:
            assert field == "lines[0].quantity"
            assert "only 0 of 1 left to return on line L1" in message
    credits = [amount for report in reports for amount in report[3]]
    assert credits == ["59.00 EUR"] * len(orders)  # one gift card per mug, never two


def test_two_services_on_one_sqlite_file_in_threads_accept_one_request_per_unit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "returns.db"
    _race_in_threads([SqliteStore(path), SqliteStore(path)], [f"T{n}" for n in range(30)])


def _race_in_threads(stores: list[Any], orders: list[str], *, same_ids: bool = False) -> None:
    """Race ``stores`` (closed after) for each order's unit, in threads: one return each."""
    try:
        _judge(order_race.in_threads(stores, orders, same_ids=same_ids), orders)
        for order_id in orders:
            held = list(stores[0].list(order_race.SHOP, order_id=order_id))
            assert len(held) == 1
    finally:
        for store in stores:
            store.close()


def test_two_services_on_one_memory_store_in_threads_accept_one_request_per_unit() -> None:
    store = MemoryStore()
    orders = [f"M{n}" for n in range(30)]
    _judge(order_race.in_threads([store, store], orders), orders)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_loser_of_a_race_for_the_same_id_and_units_is_refused_as_a_later_request_is(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two services that number their returns alike open one at once for the same unit: both
    pick the same id, so the loser's commit clashes on the id before the ledger says
    anything. It is decided again on what is stored now, and refused with the
    ``InvalidQuantity`` a request made after the winner's gets, never a bare conflict."""
    if kind == "sqlite":
        path = tmp_path / "returns.db"
        stores: list[Any] = [SqliteStore(path), SqliteStore(path)]
    else:
        pytest.importorskip("psycopg")
        from returnflow.stores.postgres import PostgresStore

        dsn = request.getfixturevalue("cluster").empty_database()
        stores = [PostgresStore(dsn), PostgresStore(dsn)]
    _race_in_threads(stores, [f"S{n}" for n in range(20)], same_ids=True)


def test_the_loser_of_a_race_for_the_same_id_on_one_memory_store_is_refused_by_name() -> None:
    store = MemoryStore()
    orders = [f"N{n}" for n in range(20)]
    _judge(order_race.in_threads([store, store], orders, same_ids=True), orders)


def _in_processes(
    target: str, orders: list[str], count: int = 2, *, same_ids: bool = False
) -> list[tuple[Any, ...]]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results = context.Queue()
    children = [
        context.Process(
            target=order_race.child,
            args=(target, orders, f"p{n}", barrier, results, same_ids),
            daemon=True,
        )
        for n in range(count)
    ]
    for process in children:
        process.start()
    reports = []
    try:
        for _ in children:
            reports.append(results.get(timeout=180))
    except queue_module.Empty:
        raise AssertionError(f"a racing process did not report; got {reports}") from None
    finally:
        for process in children:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    reports.sort()
    return reports


def test_two_processes_on_one_sqlite_file_accept_one_request_per_unit(tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    SqliteStore(path).close()  # created before the race, as a deployment does
    orders = [f"P{n}" for n in range(30)]
    _judge(_in_processes(str(path), orders), orders)


@pytest.fixture(scope="module")
def cluster() -> postgres_support.Cluster:
    return postgres_support.cluster_or_skip()


@pytest.mark.parametrize("same_ids", [False, True], ids=["own-ids", "same-ids"])
def test_two_processes_on_postgres_accept_one_request_per_unit(
    cluster: postgres_support.Cluster, same_ids: bool
) -> None:
    """``same-ids``: both number their returns alike, so they also race for the id; the
    loser is still refused by name (``InvalidQuantity``), never with a bare conflict."""
    pytest.importorskip("psycopg")
    from returnflow.stores.postgres import PostgresStore

    dsn = cluster.empty_database()
    PostgresStore(dsn).close()
    orders = [f"G{n}" for n in range(30)]
    _judge(_in_processes(dsn, orders, same_ids=same_ids), orders)


def test_a_request_that_lost_the_race_for_one_unit_takes_another_that_is_free() -> None:
    store = MemoryStore()
    harness = harness_with(order(quantity=2, fulfilled_at=DAY0), store=store)
    rival = harness_with(order(quantity=2, fulfilled_at=DAY0), store=store, ids=SequentialIds("X"))
    real_commit = store.commit
    raced = []

    def commit_after_the_rival(commit: Any) -> None:
        if not raced:  # the rival takes unit 0 between our check and our commit
            raced.append(True)
            store.commit = real_commit  # type: ignore[method-assign]
            rival.service.request(ask(1))
        real_commit(commit)

    store.commit = commit_after_the_rival  # type: ignore[method-assign]
    record = harness.service.request(ask(1))
    held = sorted(unit for r in store.list(SHOP, order_id="O-1") for unit in r.lines[0].units)
    assert held == [0, 1]
    assert record.lines[0].units == (1,)
    with pytest.raises(InvalidQuantity, match="only 0 of 2 left"):
        harness.service.request(ask(1))


def test_the_store_refuses_a_unit_taken_even_when_the_service_is_bypassed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    harness = harness_with(order(quantity=1, fulfilled_at=DAY0), store=store)
    first = harness.service.request(ask(1))
    copy = attrs.evolve(first, id="R-copy", version=1, history=first.history[:1])
    from returnflow.ports.store import Commit

    with pytest.raises(UnitsTaken) as raised:
        store.commit(Commit(records=((copy, 0),)))
    assert raised.value.held_by == first.id
    assert raised.value.units == (("L1", 0),)
    store.close()


# -- 2. goods that never shipped --------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome",
    [None, Keep(), Keep(settle=OutcomeKind.STORE_CREDIT), StoreCredit(), Exchange("sock-l")],
    ids=["refund", "keep", "keep-credit", "credit", "exchange"],
)
def test_an_order_never_fulfilled_returns_nothing_and_stores_nothing(
    tmp_path: Path, outcome: Any
) -> None:
    path = tmp_path / "returns.db"
    store = SqliteStore(path)
    harness = harness_with(order(quantity=10), store=store)
    before = dump(path)
    for quantity in (10, 2, 1):
        with pytest.raises(NotFulfilled) as raised:
            harness.service.request(ask(quantity, outcome))
        assert raised.value.field == "lines[0].quantity"
        assert "only 0 of 10 left to return on line L1 (10 not fulfilled)" in str(raised.value)
    with pytest.raises(NotFulfilled):
        harness.service.quote(ask(2, outcome))
    with pytest.raises(NotFulfilled):
        harness.service.validate_request(ask(2, outcome))
    assert dump(path) == before
    assert harness.ports.commerce.refunds == []
    assert harness.ports.commerce.credits == []
    store.close()


def test_a_partly_fulfilled_order_returns_only_what_shipped() -> None:
    shipped = (Fulfillment(4, DAY0 + timedelta(days=1)),)
    harness = harness_with(order(quantity=10, fulfillments=shipped))
    with pytest.raises(NotFulfilled, match=r"only 4 of 10 left .* \(6 not fulfilled\)"):
        harness.service.request(ask(5))
    first = harness.service.request(ask(3, Keep()))
    assert first.status == "closed"
    assert harness.ports.commerce.refunds[0].amount == eur("45.00")
    second = harness.service.request(ask(1))
    assert second.lines[0].units == (3,)
    with pytest.raises(NotFulfilled, match="only 0 of 10 left"):
        harness.service.request(ask(1, Keep()))


def test_units_shipped_later_become_returnable_when_the_platform_reports_them() -> None:
    harness = harness_with(order(quantity=3, fulfillments=(Fulfillment(1, DAY0),)))
    harness.service.request(ask(1))
    with pytest.raises(NotFulfilled):
        harness.service.request(ask(1))
    later = order(quantity=3, fulfillments=(Fulfillment(1, DAY0), Fulfillment(2, DAY0)))
    harness.ports.commerce.add_order(later)
    assert harness.service.request(ask(2)).lines[0].units == (1, 2)


def test_the_window_counts_from_the_fulfillment_of_the_units_returned() -> None:
    shipments = (
        Fulfillment(6, DAY0 + timedelta(days=1)),
        Fulfillment(4, DAY0 + timedelta(days=20)),
    )
    policy = ReturnPolicy(window_days=30, window_starts=WindowStart.FULFILLMENT)
    harness = harness_with(order(quantity=10, fulfillments=shipments), policy)
    harness.clock.advance(days=35)  # day 40: the first shipment's window ended on day 31
    newer = harness.service.request(ask(4))
    assert newer.status != "declined"
    assert newer.lines[0].units == (6, 7, 8, 9)  # the newest shipment's units
    older = harness.service.request(ask(1))
    assert older.status == "declined"
    assert older.decline_reason is DeclineReason.RETURN_PERIOD_ENDED
    # a declined return holds nothing: the same unit is asked for, and declined, again
    assert harness.service.request(ask(1)).status == "declined"


def test_a_window_from_delivery_counts_per_unit_and_falls_back_to_its_fulfillment() -> None:
    shipments = (
        Fulfillment(1, DAY0, delivered_at=DAY0 + timedelta(days=10)),
        Fulfillment(1, DAY0 + timedelta(days=2)),
    )
    policy = ReturnPolicy(window_days=30, window_starts=WindowStart.DELIVERY)
    harness = harness_with(order(quantity=2, fulfillments=shipments), policy)
    harness.clock.advance(days=31)  # day 36: the delivered unit is in (day 40), the other out
    first = harness.service.request(ask(1))
    assert (first.status, first.lines[0].units) == ("label_sent", (0,))  # delivered day 10
    second = harness.service.request(ask(1))
    assert (second.status, second.lines[0].units) == ("declined", (1,))  # shipped day 2


def test_an_order_without_a_fulfillment_date_is_never_dated_by_its_creation() -> None:
    policy = ReturnPolicy(window_starts=WindowStart.FULFILLMENT)
    harness = harness_with(order(quantity=10), policy)
    with pytest.raises(NotFulfilled):
        harness.service.request(ask(10))


def test_a_gift_card_line_is_not_returnable() -> None:
    harness = harness_with(order(quantity=1, fulfilled_at=DAY0, gift_card=True))
    with pytest.raises(NotReturnable) as raised:
        harness.service.request(ask(1, Keep()))
    assert (raised.value.field, raised.value.value) == ("lines[0].order_line_id", "L1")
    assert harness.service.list(SHOP) == []


def test_an_early_refund_on_a_carrier_scan_pays_only_units_that_shipped() -> None:
    shipped = (Fulfillment(2, DAY0),)
    policy = ReturnPolicy(refund_trigger=RefundTrigger.ON_HANDED_IN)
    harness = harness_with(order(quantity=5, fulfillments=shipped), policy)
    with pytest.raises(NotFulfilled):
        harness.service.request(ask(3))
    record = harness.service.request(ask(2))
    harness.service.handle(
        CarrierUpdate(shop=SHOP, return_id=record.id, event_id="c1", status=CarrierStatus.PICKED_UP)
    )
    assert [refund.amount for refund in harness.ports.commerce.refunds] == [eur("30.00")]


# -- units come back free, or pass to a reset's new return ------------------------------------


def test_units_come_back_free_when_a_return_ends_unsettled() -> None:
    harness = harness_with(order(quantity=1, fulfilled_at=DAY0))
    service = harness.service
    first = service.request(ask(1))
    with pytest.raises(InvalidQuantity):
        service.request(ask(1))
    service.cancel(SHOP, first.id)
    second = service.request(ask(1))
    service.expire(SHOP, second.id)
    third = service.request(ask(1))
    assert third.lines[0].units == (0,)


def test_a_reset_hands_the_accepted_units_to_its_new_return_and_frees_the_rest() -> None:
    from returnflow import Completion

    harness = harness_with(
        order(quantity=2, fulfilled_at=DAY0),
        ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED),
    )
    service = harness.service
    record = service.request(ask(2))
    service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="w1",
            lines=[ReceivedLine(line_id=record.lines[0].id, quantity=1)],
        )
    )
    _, child = service.reset(SHOP, record.id)
    assert child.lines[0].units == (0,)
    free = service.request(ask(1))
    assert free.lines[0].units == (1,)
    with pytest.raises(InvalidQuantity, match="only 0 of 2 left"):
        service.request(ask(1))


def test_an_imported_return_takes_its_units_too() -> None:
    harness = harness_with(order(quantity=1, fulfilled_at=DAY0))
    harness.service.import_return(ask(1), return_id="loop-1", source="loop", external_id="1")
    with pytest.raises(InvalidQuantity):
        harness.service.request(ask(1))
    unshipped = harness_with(order(quantity=1))
    with pytest.raises(NotFulfilled):
        unshipped.service.import_return(ask(1), return_id="loop-1", source="loop", external_id="1")


# -- 3, 4. every amount checked at the boundary ----------------------------------------------


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (eur("-5.00"), "must not be negative"),
        (12.5, "not a bare number"),
        (12, "not a bare number"),
        (Decimal("12.50"), "not a bare number"),
        ("12.50", "not a bare number"),
    ],
)
def test_an_exchange_price_that_is_not_money_or_negative_names_its_field(
    price: Any, reason: str
) -> None:
    with pytest.raises(InvalidAmount, match=reason) as raised:
        ReturnRequest(
            shop=SHOP,
            order_id="O-1",
            lines=[
                RequestLine(order_line_id="L1", quantity=1),
                RequestLine(
                    order_line_id="L2",
                    quantity=1,
                    outcome=Exchange(variant_id="x", unit_price=price),
                ),
            ],
        )
    assert raised.value.field == "lines[1].outcome.unit_price"
    assert raised.value.value == price


def test_a_negative_exchange_price_never_reaches_a_quote_or_the_store() -> None:
    harness = harness_with(order(quantity=1, fulfilled_at=DAY0))
    request = ask(1)
    negative = Exchange(variant_id="x", unit_price=eur("-5.00"))
    with pytest.raises(InvalidAmount, match="must not be negative"):  # evolve checks again
        attrs.evolve(request, lines=[attrs.evolve(request.lines[0], outcome=negative)])
    assert harness.service.list(SHOP) == []
    good = ask(1, Exchange(variant_id="x", unit_price=eur("0.00")))  # a free replacement
    assert harness.service.quote(good).refund == eur("15.00")


def test_an_amount_in_another_currency_names_its_field() -> None:
    harness = harness_with(order(quantity=1, fulfilled_at=DAY0))
    from returnflow import CurrencyMismatch

    with pytest.raises(CurrencyMismatch) as raised:
        harness.service.request(ask(1, StoreCredit(bonus=Money("5.00", "USD"))))
    assert raised.value.field == "lines[0].outcome.bonus.currency"
    with pytest.raises(CurrencyMismatch) as raised:
        harness.service.request(ask(1, Exchange("x", unit_price=Money("5.00", "USD"))))
    assert raised.value.field == "lines[0].outcome.unit_price.currency"
    assert harness.service.list(SHOP) == []


def test_a_unit_held_by_a_return_that_cannot_be_read_is_refused_by_name(tmp_path: Path) -> None:
    """The listing skips a damaged row, so the service's check sees the unit free; the
    store's ledger refuses the commit, and the request is checked again counting the unit
    the store named: ``InvalidQuantity``, not a conflict that reads as "try again"."""
    path = tmp_path / "returns.db"
    store = SqliteStore(path)
    harness = harness_with(order(quantity=1, fulfilled_at=DAY0), store=store)
    held = harness.service.request(ask(1))
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE returns SET body = '{damaged' WHERE id = ?", (held.id,))
    raw.close()
    store.close()
    reopened = SqliteStore(path)
    again = harness_with(
        order(quantity=1, fulfilled_at=DAY0), store=reopened, ids=SequentialIds("X")
    )
    assert again.service.list(SHOP) == []  # the damaged return is skipped
    before = dump(path)
    with pytest.raises(InvalidQuantity) as raised:
        again.service.request(ask(1, Keep()))
    assert raised.value.field == "lines[0].quantity"
    assert "only 0 of 1 left to return on line L1" in str(raised.value)
    assert dump(path) == before
    assert again.ports.commerce.refunds == []
    reopened.close()
