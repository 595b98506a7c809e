"""Importing returns from a return source: what an import creates, what it still refuses,
idempotency, updates at the source, bad data, failing sources, and polling from a durable
mark driven by ``service.tick`` (restarts, crashes, two pollers on one database)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from returnflow import (
    ConfigurationError,
    Exchange,
    ExternalLine,
    ExternalReturn,
    ImportProgress,
    InvalidPayload,
    InvalidQuantity,
    Money,
    OrderLine,
    OrderSnapshot,
    PortError,
    ReceivedLine,
    RequestLine,
    ReturnImporter,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    SourceStatus,
    StoreCredit,
    UnknownExternalReturn,
    UnknownOrder,
    UnknownOrderLine,
    ValidationError,
    WarehouseReceipt,
)
from returnflow.ports.store import ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakeReturnSource, Harness, ManualClock

SHOP = "shop-a"
T0 = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)  # the harness clock
EMAIL = "customer@example.com"


def order(order_id: str, *, quantity: int = 3, final_sale: bool = False) -> OrderSnapshot:
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=datetime(2026, 1, 5, tzinfo=timezone.utc),
        fulfilled_at=datetime(2026, 1, 5, tzinfo=timezone.utc),
        currency="EUR",
        customer_email=EMAIL,
        lines=[
            OrderLine(
                id="L1",
                sku="TEE-M",
                variant_id="tee-m",
                quantity=quantity,
                unit_price=Money("25.00", "EUR"),
                final_sale=final_sale,
            ),
            OrderLine(
                id="L2",
                sku="CAP",
                variant_id="cap",
                quantity=2,
                unit_price=Money("10.00", "EUR"),
            ),
        ],
    )


def loop(
    external_id: str,
    minutes: float = 0,
    *,
    order_id: str = "1001",
    lines: tuple[ExternalLine, ...] | None = None,
    **changes: Any,
) -> ExternalReturn:
    at = T0 + timedelta(minutes=minutes)
    return ExternalReturn(
        source="loop",
        external_id=external_id,
        shop=SHOP,
        order_id=order_id,
        lines=lines or (ExternalLine(order_line_id="L1", quantity=1, reason="SIZE_TOO_SMALL"),),
        created_at=at,
        updated_at=at,
        **changes,
    )


@attrs.define
class Setup:
    harness: Harness
    source: FakeReturnSource
    importer: ReturnImporter

    @property
    def service(self) -> Any:
        return self.harness.service

    def calls(self) -> list[tuple[str, str, Any, str | None, str]]:
        """Every call to the service's ports (not the source's)."""
        return [
            (fake.port, call.operation, call.args, call.idempotency_key, call.outcome)
            for fake in self.harness.ports.all()
            for call in fake.calls
        ]


def make(
    *,
    store: ReturnStore | None = None,
    policy: ReturnPolicy | None = None,
    orders: int = 1,
    source: FakeReturnSource | None = None,
    clock: ManualClock | None = None,
    **importer: Any,
) -> Setup:
    harness = Harness(
        policy=policy or ReturnPolicy(),
        store=store or MemoryStore(),
        clock=clock or ManualClock(),
    )
    for number in range(orders):
        harness.ports.commerce.add_order(order(str(1001 + number)))
    source = source or FakeReturnSource()
    return Setup(harness, source, ReturnImporter(harness.service, source, shop=SHOP, **importer))


WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=1))


def snapshot(store: ReturnStore, setup: Setup) -> tuple[Any, ...]:
    records = list(store.list(SHOP))
    return (
        records,
        [[entry.payload for entry in record.history] for record in records],
        [list(store.outbox(SHOP, record.id)) for record in records],
        store.read_cursor(setup.importer.cursor_name),
    )


# -- what an import creates ---------------------------------------------------------------------


def test_an_import_is_an_approved_rma_with_its_asn_and_no_label() -> None:
    setup = make()
    setup.source.add(
        loop(
            "52393555",
            lines=(
                ExternalLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l")),
                ExternalLine(order_line_id="L2", quantity=2, outcome=StoreCredit()),
            ),
            customer_note="too small",
        )
    )

    result = setup.importer.import_one("52393555")

    assert (result.outcome, result.return_id) == ("imported", "loop-52393555")
    record = setup.service.get(SHOP, "loop-52393555")
    assert record.state == ("approved", "on_hold")
    assert (record.refs.source, record.refs.source_return_id) == ("loop", "52393555")
    assert record.customer_note == "too small"
    [asn] = setup.harness.ports.warehouse.returns
    assert asn.rma_id == record.refs.warehouse_rma_id  # the ASN is linked to the RMA
    assert (asn.return_id, asn.order_id, asn.status) == ("loop-52393555", "1001", "expected")
    assert [(line.order_line_id, line.quantity) for line in asn.lines] == [("L1", 1), ("L2", 2)]
    assert setup.harness.ports.carrier.labels == []  # the source gave the customer a label
    imported = [entry for entry in record.history if entry.event == "imported"]
    assert [(entry.actor, entry.payload["external_id"]) for entry in imported] == [
        ("loop", "52393555")
    ]
    assert imported[0].payload["source_updated_at"] == T0.isoformat()
    topics = setup.harness.ports.events.topics_for(record.id)
    assert topics == ["returns/request", "returns/approve", "exchanges/hold"]
    request_event = setup.harness.ports.events.events[0]
    assert (request_event.payload["source"], request_event.payload["external_id"]) == (
        "loop",
        "52393555",
    )
    assert [m.template for m in setup.harness.ports.notifier.messages] == [
        "return_requested",
        "return_approved",
    ]
    assert [line.reason for line in record.lines] == [ReturnReason.UNKNOWN] * 2


@pytest.mark.parametrize(
    ("policy", "final_sale", "local"),
    [
        (ReturnPolicy(window_days=0), False, "declined"),
        (ReturnPolicy(), True, "declined"),
        (ReturnPolicy(auto_approve=False), False, "pending_review"),
        (ReturnPolicy(auto_approve_limit=Money("1.00", "EUR")), False, "pending_review"),
        (
            ReturnPolicy(review_reasons=frozenset({ReturnReason.SIZE_TOO_SMALL})),
            False,
            "pending_review",
        ),
    ],
    ids=["window-ended", "final-sale", "no-auto-approval", "value-limit", "review-reason"],
)
def test_the_source_decided_so_local_approval_rules_do_not_apply(
    policy: ReturnPolicy, final_sale: bool, local: str
) -> None:
    setup = make(policy=policy)
    setup.harness.ports.commerce.add_order(order("1009", final_sale=final_sale))
    setup.harness.ports.commerce.add_order(order("1010", final_sale=final_sale))
    setup.source.add(loop("1", order_id="1009"))

    setup.importer.import_one("1")

    assert setup.service.get(SHOP, "loop-1").status == "approved"
    # the same return asked for here is not approved under that policy
    asked_here = setup.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="1010",
            lines=[RequestLine("L1", 1, reason=ReturnReason.SIZE_TOO_SMALL)],
        )
    )
    assert asked_here.status == local


@pytest.mark.parametrize(
    ("external", "error", "field", "value"),
    [
        (loop("1", order_id="9999"), UnknownOrder, "order_id", "9999"),
        (
            loop("1", lines=(ExternalLine(order_line_id="L7", quantity=1),)),
            UnknownOrderLine,
            "lines[0].order_line_id",
            "L7",
        ),
        (
            loop("1", lines=(ExternalLine(order_line_id="L1", quantity=4),)),
            InvalidQuantity,
            "lines[0].quantity",
            4,
        ),
    ],
    ids=["unknown-order", "unknown-line", "too-many-units"],
)
def test_what_is_still_checked_is_refused_and_nothing_is_stored(
    external: ExternalReturn, error: type[ValidationError], field: str, value: object
) -> None:
    setup = make()
    setup.source.add(external)

    with pytest.raises(error) as refused:
        setup.importer.import_one("1")

    assert (refused.value.field, refused.value.value) == (field, value)
    assert setup.service.list(SHOP) == []
    assert setup.harness.store.pending() == []
    assert [op for _, op, *_ in setup.calls()] == ["get_order"]


def test_units_already_returned_here_cannot_be_imported_again() -> None:
    setup = make()
    setup.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 3)]))
    setup.source.add(loop("1"))

    with pytest.raises(InvalidQuantity, match="only 0 of 3 left"):
        setup.importer.import_one("1")
    assert [record.id for record in setup.service.list(SHOP)] == ["R0001"]


def test_an_external_return_for_another_shop_or_source_is_refused() -> None:
    setup = make()
    with pytest.raises(InvalidPayload) as refused:
        setup.importer.import_external(attrs.evolve(loop("1"), shop="shop-b"))
    assert (refused.value.field, refused.value.value) == ("shop", "shop-b")
    with pytest.raises(InvalidPayload) as refused:
        setup.importer.import_external(attrs.evolve(loop("1"), source="narvar"))
    assert (refused.value.field, refused.value.value) == ("source", "narvar")
    with pytest.raises(InvalidPayload, match="must be an ExternalReturn"):
        setup.importer.import_external({"external_id": "1"})  # type: ignore[arg-type]
    assert setup.service.list(SHOP) == []


def test_a_local_return_holding_the_id_is_not_taken_for_the_import() -> None:
    harness = Harness(ids=lambda: "loop-1")  # type: ignore[arg-type]
    harness.ports.commerce.add_order(order("1001"))
    source = FakeReturnSource(
        returns=[loop("1", lines=(ExternalLine(order_line_id="L2", quantity=1),))]
    )
    harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 1)]))
    importer = ReturnImporter(harness.service, source, shop=SHOP)

    with pytest.raises(InvalidPayload, match="was not imported from 'loop'") as refused:
        importer.import_one("1")
    assert refused.value.field == "external_id"


# -- idempotency --------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReturnStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    made = SqliteStore(tmp_path / "returns.db")
    yield made
    made.close()


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    connection = sqlite3.connect(path)
    try:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("returns", "history", "outbox", "inbox", "cursors")
        }
    finally:
        connection.close()


def test_importing_the_same_return_twice_changes_nothing(store: ReturnStore) -> None:
    setup = make(store=store)
    setup.source.add(
        loop("1", lines=(ExternalLine(order_line_id="L1", quantity=1, outcome=Exchange("tee-l")),))
    )
    first = setup.importer.import_range(*WINDOW)
    assert first.imported == ("loop-1",)
    before = snapshot(store, setup)
    calls = setup.calls()
    rows = _rows(Path(store.path)) if isinstance(store, SqliteStore) else None

    again = setup.importer.import_range(*WINDOW)
    one = setup.importer.import_one("1")

    assert (again.imported, again.unchanged, one.outcome) == ((), ("loop-1",), "unchanged")
    assert snapshot(store, setup) == before
    assert setup.calls() == calls  # not even the order was read again
    if isinstance(store, SqliteStore):
        assert _rows(Path(store.path)) == rows


def test_a_second_process_importing_the_same_return_finds_it(tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    source = FakeReturnSource(returns=[loop("1"), loop("2", 1)])
    first = make(store=SqliteStore(path), source=source)
    first.importer.import_range(*WINDOW)
    rows = _rows(path)
    second = make(store=SqliteStore(path), source=source)  # another process: its own ports

    report = second.importer.import_range(*WINDOW)

    assert (report.imported, report.unchanged) == ((), ("loop-1", "loop-2"))
    assert second.calls() == []
    assert _rows(path) == rows


def test_an_import_racing_another_importer_finds_the_winners_return() -> None:
    setup = make()
    setup.source.add(loop("1"))
    rival = ReturnImporter(setup.service, setup.source, shop=SHOP)
    real = setup.service.import_return

    def racing(*args: Any, **kwargs: Any) -> Any:
        setup.service.import_return = real  # the rival gets in first, between read and write
        rival.import_one("1")
        return real(*args, **kwargs)

    setup.service.import_return = racing
    result = setup.importer.import_one("1")

    assert result.outcome == "unchanged"
    assert [record.id for record in setup.service.list(SHOP)] == ["loop-1"]
    assert len(setup.harness.ports.warehouse.returns) == 1


def test_import_return_refuses_an_id_already_stored() -> None:
    setup = make()
    setup.source.add(loop("1"))
    setup.importer.import_one("1")
    stored = setup.service.get(SHOP, "loop-1")
    with pytest.raises(Exception, match="expected version 0") as refused:
        setup.service.import_return(
            loop("1").request(), return_id="loop-1", source="loop", external_id="1"
        )
    assert type(refused.value).__name__ == "ConcurrencyConflict"
    assert setup.service.get(SHOP, "loop-1") is stored


# -- updates at the source ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state", "event"),
    [(SourceStatus.CANCELLED, "cancelled", "cancel"), (SourceStatus.EXPIRED, "expired", "expire")],
)
def test_a_return_cancelled_at_the_source_is_cancelled_here(
    status: SourceStatus, state: str, event: str
) -> None:
    setup = make()
    setup.source.add(
        loop("1", lines=(ExternalLine(order_line_id="L1", quantity=1, outcome=Exchange("tee-l")),))
    )
    setup.importer.import_range(*WINDOW)
    setup.source.update(SHOP, "1", at=T0 + timedelta(hours=2), status=status)

    report = setup.importer.import_range(*WINDOW)

    assert report.cancelled == ("loop-1",)
    record = setup.service.get(SHOP, "loop-1")
    assert record.state == (state, "exchange_cancelled")
    assert [entry.actor for entry in record.history if entry.event == event] == ["loop"]
    [asn] = setup.harness.ports.warehouse.returns
    assert asn.status == "cancelled"  # the warehouse no longer expects it
    assert [line.status for line in setup.harness.ports.commerce.exchange_lines(SHOP, "1001")] == [
        "cancelled"
    ]
    assert setup.harness.ports.events.topics_for("loop-1") == [
        "returns/request",
        "returns/approve",
        "exchanges/hold",
        "returns/cancel",
        "exchanges/cancel",
    ]
    version = record.version
    assert setup.importer.import_range(*WINDOW).unchanged == ("loop-1",)
    assert setup.service.get(SHOP, "loop-1").version == version


def test_a_cancel_at_the_source_after_the_items_arrived_records_nothing() -> None:
    setup = make()
    setup.source.add(loop("1", lines=(ExternalLine(order_line_id="L1", quantity=2),)))
    setup.importer.import_one("1")
    setup.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id="loop-1",
            event_id="asn-1",
            lines=[ReceivedLine(line_id="L1", quantity=1)],
        )
    )
    before = setup.service.get(SHOP, "loop-1")
    setup.source.update(SHOP, "1", at=T0 + timedelta(hours=1), status="cancelled")

    assert setup.importer.import_one("1").outcome == "unchanged"
    assert setup.service.get(SHOP, "loop-1") is before


def test_other_changes_at_the_source_record_nothing_new() -> None:
    setup = make()
    setup.source.add(loop("1"))
    setup.importer.import_one("1")
    before = setup.service.get(SHOP, "loop-1")
    setup.source.update(
        SHOP,
        "1",
        at=T0 + timedelta(hours=1),
        lines=(ExternalLine(order_line_id="L2", quantity=2),),
        status="closed",
    )

    assert setup.importer.import_one("1").outcome == "unchanged"
    assert setup.service.get(SHOP, "loop-1") is before


@pytest.mark.parametrize("status", ["cancelled", "closed", "expired"])
def test_a_return_never_open_here_and_not_open_there_is_skipped(status: str) -> None:
    setup = make()
    setup.source.add(loop("1", status=status))

    report = setup.importer.import_range(*WINDOW)

    assert report.skipped == ("1",)
    assert report.ok
    assert setup.service.list(SHOP) == []
    assert setup.calls() == []


# -- a range: bad data, failing sources, progress -------------------------------------------------


def test_bad_returns_are_reported_with_their_typed_errors_and_the_rest_imported() -> None:
    setup = make(orders=3)
    setup.source.add(loop("1", 0, order_id="1001"))
    setup.source.add(loop("2", 1, order_id="4040"))  # the platform has no such order
    setup.source.add(
        loop("3", 2, order_id="1002", lines=(ExternalLine(order_line_id="L1", quantity=5),))
    )
    setup.source.add_payload(
        SHOP, "4", {"source": "loop", "external_id": "4"}, updated_at=T0 + timedelta(minutes=3)
    )
    setup.source.add(loop("5", 4, order_id="1003"))

    report = setup.importer.import_range(*WINDOW)

    assert report.imported == ("loop-1", "loop-5")
    assert not report.ok
    failures = {failure.external_id: failure for failure in report.failed}
    assert sorted(failures) == ["2", "3", "4"]
    assert isinstance(failures["2"].error, UnknownOrder)
    assert (failures["2"].error.field, failures["2"].error.value) == ("order_id", "4040")
    assert isinstance(failures["3"].error, InvalidQuantity)
    assert failures["3"].error.field == "lines[0].quantity"
    assert isinstance(failures["4"].error, InvalidPayload)
    assert not any(failure.retryable for failure in report.failed)
    assert report.complete_until == WINDOW[1]  # refused for their data: the mark passes them
    assert [record.id for record in setup.service.list(SHOP)] == ["loop-1", "loop-5"]
    problems = report.problems()
    assert len(problems) == 3
    assert any("2: UnknownOrder: order_id='4040'" in line for line in problems)


def test_a_source_failing_mid_range_is_reported_and_a_rerun_imports_the_rest() -> None:
    setup = make(orders=6, page_size=2)
    for number in range(6):
        setup.source.add(loop(str(number), number, order_id=str(1001 + number)))
    real = setup.source.list_returns
    pages = 0

    def failing_third_page(*args: Any, **kwargs: Any) -> Any:
        nonlocal pages
        pages += 1
        if pages == 3:
            raise PortError("source", "list_returns", "503 Service Unavailable")
        return real(*args, **kwargs)

    setup.source.list_returns = failing_third_page  # type: ignore[method-assign]
    report = setup.importer.import_range(*WINDOW)

    assert report.imported == ("loop-0", "loop-1", "loop-2", "loop-3")
    assert report.source_error is not None
    assert "503" in str(report.source_error)
    assert report.complete_until == T0 + timedelta(minutes=3)  # the last return read
    assert "were not read" in report.problems()[-1]

    rerun = setup.importer.import_range(*WINDOW)
    assert rerun.ok
    assert rerun.imported == ("loop-4", "loop-5")
    assert len(setup.harness.ports.warehouse.returns) == 6


def test_progress_is_reported_after_every_return() -> None:
    setup = make(orders=5, page_size=2)
    for number in range(5):
        setup.source.add(loop(str(number), number, order_id=str(1001 + number)))
    setup.source.add(loop("9", 9, status="cancelled"))
    seen: list[ImportProgress] = []

    report = setup.importer.import_range(*WINDOW, progress=seen.append)

    assert [progress.count for progress in seen] == [1, 2, 3, 4, 5, 6]
    assert (seen[-1].imported, seen[-1].skipped, seen[-1].errors) == (5, 1, 0)
    assert all(progress.rate >= 0 and progress.elapsed >= 0 for progress in seen)
    assert report.count == 6
    assert report.rate >= 0


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        (T0.replace(tzinfo=None), T0 + timedelta(days=1), "since"),
        (T0, (T0 + timedelta(days=1)).replace(tzinfo=None), "until"),
        (T0, T0, "until"),
        (T0 + timedelta(days=1), T0, "until"),
    ],
)
def test_a_bad_range_is_refused_and_nothing_is_read(
    since: datetime, until: datetime, field: str
) -> None:
    setup = make()
    with pytest.raises(InvalidPayload) as refused:
        setup.importer.import_range(since, until)
    assert refused.value.field == field
    assert setup.source.calls == []


def test_import_one_of_an_unknown_id_names_it() -> None:
    setup = make()
    with pytest.raises(UnknownExternalReturn) as refused:
        setup.importer.import_one("52393555")
    assert (refused.value.field, refused.value.value) == ("external_id", "52393555")
    assert "source 'loop' has no such return in shop 'shop-a'" in str(refused.value)
    with pytest.raises(InvalidPayload):
        setup.importer.import_one("  ")


def test_import_one_passes_on_a_failing_source_and_bad_data() -> None:
    setup = make()
    setup.source.add_payload(SHOP, "1", {"source": "loop"}, updated_at=T0)
    with pytest.raises(ValidationError):
        setup.importer.import_one("1")
    setup.source.fail("get_return")
    with pytest.raises(PortError):
        setup.importer.import_one("1")
    assert setup.service.list(SHOP) == []


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"every": timedelta(0)}, "every"),
        ({"overlap": timedelta(minutes=-1)}, "overlap"),
        ({"page_size": 0}, "page_size"),
        ({"start": datetime(2026, 1, 1)}, "start"),
        ({"shop": " "}, "shop"),
    ],
)
def test_an_importer_set_up_wrongly_is_refused(settings: dict[str, Any], field: str) -> None:
    harness = Harness()
    with pytest.raises(ConfigurationError) as refused:
        ReturnImporter(harness.service, FakeReturnSource(), **{"shop": SHOP, **settings})
    assert refused.value.field == field


# -- polling ------------------------------------------------------------------------------------


def poller(**settings: Any) -> Setup:
    clock = ManualClock(T0)
    setup = make(clock=clock, orders=10, **settings)
    setup.service.register_poller(setup.importer)
    return setup


def test_tick_polls_when_the_interval_has_elapsed_and_remembers_the_mark() -> None:
    setup = poller(every=timedelta(minutes=15), overlap=timedelta(minutes=5))
    setup.source.add(loop("1", -3))

    first = setup.service.tick(T0)
    assert [report.imported for report in first.imports] == [("loop-1",)]
    assert first.imports[0].since == T0 - timedelta(minutes=20)  # every + overlap, at first
    assert first.imports[0].advanced is True
    assert setup.importer.mark() == T0

    setup.source.add(loop("2", 2, order_id="1002"))
    assert setup.service.tick(T0 + timedelta(minutes=10)).imports == ()  # not due yet
    assert setup.service.get(SHOP, "loop-1")
    later = setup.service.tick(T0 + timedelta(minutes=15))
    (report,) = later.imports
    assert report.since == T0 - timedelta(minutes=5)  # the mark, less the overlap
    assert report.until == T0 + timedelta(minutes=15)
    # loop-1 (3 minutes before the mark) is in the overlap: read again, found, nothing done
    assert (report.imported, report.unchanged) == (("loop-2",), ("loop-1",))
    assert setup.importer.mark() == T0 + timedelta(minutes=15)


def test_a_return_made_visible_late_at_the_marks_instant_is_read_again() -> None:
    setup = poller(every=timedelta(minutes=15), overlap=timedelta(minutes=10))
    setup.service.tick(T0)
    # Stamped at (or just before) the mark by the source's clock, listed only afterwards.
    setup.source.add(loop("1", 0, order_id="1001"))
    setup.source.add(loop("2", -7, order_id="1002"))

    (report,) = setup.service.tick(T0 + timedelta(minutes=15)).imports

    assert report.imported == ("loop-2", "loop-1")


def test_a_failing_return_shows_in_the_tick_report() -> None:
    setup = poller()
    setup.source.add(loop("1", -1, order_id="4040"))

    tick = setup.service.tick(T0)

    (report,) = tick.imports
    assert [failure.external_id for failure in report.failed] == ["1"]
    (error,) = tick.errors
    assert error.startswith("import loop/shop-a: 1: UnknownOrder: order_id='4040': ")
    assert setup.importer.mark() == T0  # refused for its data: not tried again by polls


def test_a_return_that_may_pass_holds_the_mark_and_the_next_poll_imports_it() -> None:
    setup = poller()
    setup.source.add(loop("1", -3, order_id="1001"))
    setup.source.add(loop("2", -2, order_id="1002"))
    setup.harness.ports.commerce.fail("get_order", times=1)  # the platform hiccups on "1"

    (first,) = setup.service.tick(T0).imports
    assert first.imported == ("loop-2",)
    assert [f.retryable for f in first.failed] == [True]
    assert setup.importer.mark() == T0 - timedelta(minutes=3)

    (second,) = setup.service.tick(T0 + timedelta(minutes=15)).imports
    assert (second.imported, second.unchanged) == (("loop-1",), ("loop-2",))
    assert setup.importer.mark() == T0 + timedelta(minutes=15)


def test_a_restart_after_the_source_failed_mid_range_neither_skips_nor_duplicates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "returns.db"
    source = FakeReturnSource(
        returns=[loop(str(n), n - 10, order_id=str(1001 + n)) for n in range(7)]
    )
    first = poller(store=SqliteStore(path), source=source, page_size=3)
    real = source.list_returns
    calls = 0

    def dies_on_the_second_page(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise PortError("source", "list_returns", "connection reset")
        return real(*args, **kwargs)

    source.list_returns = dies_on_the_second_page  # type: ignore[method-assign]
    (report,) = first.service.tick(T0).imports
    assert report.imported == ("loop-0", "loop-1", "loop-2")
    assert first.importer.mark() == T0 - timedelta(minutes=8)  # the last return read
    source.list_returns = real  # type: ignore[method-assign]

    # The process restarts: a new service and importer on the same file.
    restarted = poller(store=SqliteStore(path), source=source, page_size=3)
    assert restarted.service.tick(T0 + timedelta(minutes=5)).imports == ()  # not due yet
    (again,) = restarted.service.tick(T0 + timedelta(minutes=15)).imports

    assert again.imported == ("loop-3", "loop-4", "loop-5", "loop-6")
    assert "loop-2" in again.unchanged  # read again from the mark: found, not duplicated
    created = first.harness.ports.warehouse.returns + restarted.harness.ports.warehouse.returns
    assert sorted(asn.return_id for asn in created) == [f"loop-{n}" for n in range(7)]
    assert len(restarted.service.list(SHOP)) == 7


def test_a_crash_mid_poll_leaves_the_mark_and_the_next_poll_reads_it_all() -> None:
    setup = poller(page_size=2)
    for n in range(4):
        setup.source.add(loop(str(n), n - 10, order_id=str(1001 + n)))
    setup.service.tick(T0)
    mark = setup.importer.mark()
    for n in range(4, 8):
        setup.source.add(loop(str(n), n, order_id=str(1001 + n)))
    real = setup.source.list_returns

    def killed(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("page") is not None:
            raise KeyboardInterrupt  # the process dies between two pages
        return real(*args, **kwargs)

    setup.source.list_returns = killed  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        setup.service.tick(T0 + timedelta(minutes=15))
    assert setup.importer.mark() == mark
    setup.source.list_returns = real  # type: ignore[method-assign]

    assert setup.service.tick(T0 + timedelta(minutes=20)).imports == ()  # claimed at +15
    (report,) = setup.service.tick(T0 + timedelta(minutes=30)).imports
    assert report.since == T0 - timedelta(minutes=10)  # from the mark the crash left
    assert report.unchanged == tuple(f"loop-{n}" for n in range(4))
    assert report.imported == tuple(f"loop-{n}" for n in range(4, 8))
    assert len(setup.harness.ports.warehouse.returns) == 8
    assert setup.importer.mark() == T0 + timedelta(minutes=30)


class RacingStore(MemoryStore):
    """Runs ``racer`` once, right after the next read of a cursor."""

    racer: Callable[[], object] | None = None

    def read_cursor(self, name: str) -> str | None:
        value = super().read_cursor(name)
        if self.racer is not None:
            run, self.racer = self.racer, None
            run()
        return value


def test_of_two_pollers_reading_the_mark_at_once_only_one_imports() -> None:
    store = RacingStore()
    source = FakeReturnSource(returns=[loop("1", -3)])
    a = poller(store=store, source=source)
    b = poller(store=store, source=source)
    b_reports: list[Any] = []
    store.racer = lambda: b_reports.append(b.importer.poll(T0))

    assert a.importer.poll(T0) is None  # b claimed the interval between a's read and write

    assert [report.advanced for report in b_reports] == [True]
    assert b_reports[0].imported == ("loop-1",)
    assert a.calls() == []
    assert a.importer.mark() == T0


def test_a_poller_overtaken_during_its_run_does_not_advance_the_mark() -> None:
    store = MemoryStore()
    source = FakeReturnSource(returns=[loop("1", -3)])
    a = poller(store=store, source=source)
    b = poller(store=store, source=source)
    a.importer.poll(T0)
    source.add(loop("2", 20, order_id="1002"))
    real = source.list_returns
    b_reports: list[Any] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        # a is so slow that its interval passes: b polls (and advances) meanwhile
        source.list_returns = real  # type: ignore[method-assign]
        b_reports.append(b.importer.poll(T0 + timedelta(minutes=31)))
        return real(*args, **kwargs)

    source.list_returns = slow  # type: ignore[method-assign]
    report = a.importer.poll(T0 + timedelta(minutes=15))

    assert report is not None
    assert report.advanced is False
    assert [r.advanced for r in b_reports] == [True]
    assert a.importer.mark() == T0 + timedelta(minutes=31)  # b's, not moved back by a
    assert [record.id for record in a.service.list(SHOP)] == ["loop-1", "loop-2"]


def test_two_pollers_on_one_database_in_threads_advance_once(tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    SqliteStore(path).close()
    source = FakeReturnSource(
        returns=[loop(str(n), n - 10, order_id=str(1001 + n)) for n in range(5)]
    )
    pollers = [poller(store=SqliteStore(path), source=source) for _ in range(2)]
    barrier = threading.Barrier(2)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run(setup: Setup) -> None:
        try:
            barrier.wait(timeout=30)
            reports.append(setup.importer.poll(T0))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(setup,)) for setup in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    ran = [report for report in reports if report is not None]
    assert [report.advanced for report in ran] == [True]
    assert ran[0].imported == tuple(f"loop-{n}" for n in range(5))
    assert len(pollers[0].service.list(SHOP)) == 5
    created = [asn.return_id for setup in pollers for asn in setup.harness.ports.warehouse.returns]
    assert sorted(created) == [f"loop-{n}" for n in range(5)]


def test_a_corrupt_cursor_is_a_configuration_error_in_the_tick_report() -> None:
    setup = poller()
    setup.harness.store.write_cursor(setup.importer.cursor_name, "not json", expected=None)
    setup.source.add(loop("1", -1))

    tick = setup.service.tick(T0)

    assert tick.imports == ()
    assert len(tick.errors) == 1
    assert tick.errors[0].startswith("poll: ConfigurationError: cursor='not json'")
    assert setup.service.list(SHOP) == []
    with pytest.raises(ConfigurationError) as refused:
        setup.importer.mark()
    assert refused.value.field == "cursor"


def test_the_first_poll_starts_where_it_is_told() -> None:
    setup = poller(start=T0 - timedelta(days=3))
    setup.source.add(loop("1", -2 * 24 * 60))
    (report,) = setup.service.tick(T0).imports
    assert report.since == T0 - timedelta(days=3)
    assert report.imported == ("loop-1",)
    assert poller(start=T0 + timedelta(hours=1)).importer.poll(T0) is None  # nothing to read


def test_an_imported_return_expires_under_the_policy_and_never_buys_a_label() -> None:
    setup = poller(policy=ReturnPolicy(ship_within_days=30))
    setup.source.add(loop("1", -1))
    setup.source.add(loop("2", -1, order_id="1002"))
    setup.service.tick(T0)
    setup.service.flag(SHOP, "loop-2", "parcel lost, customer asked")

    setup.harness.clock.advance(days=20)
    setup.service.approve(SHOP, "loop-2")  # a person approves it again: still no label
    tick = setup.service.tick(T0 + timedelta(days=40))

    assert tick.expired == ("loop-1",)  # 40 days after its import; loop-2 20 days after
    assert setup.service.get(SHOP, "loop-1").status == "expired"
    assert setup.harness.ports.warehouse.returns[0].status == "cancelled"
    assert setup.service.get(SHOP, "loop-2").status == "approved"
    assert setup.harness.ports.carrier.labels == []
