"""Seed 004, Loop x Xoro: Loop returns synced into the ERP as RMAs.

* Three ways to import: by date range, by the Loop return id, and by the scheduler polling
  every N minutes; each import is an RMA with an ASN linked to it.
* The ASN closed (the warehouse's receipts, then ``WarehouseFinished``) with
  ``Completion.ON_WAREHOUSE_FINISHED``: fully received, the return is processed; not fully
  received, it is flagged (``needs_review``) for a person.
* A processed return's outcome is the ERP document seed 004 step 5 names: store credit (a
  gift card) is a credit memo, a refund a refunded credit memo, an exchange an exchange order,
  each a port call and a published event.

Each test checks the steps, not only the end state.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from returnflow import (
    TABLE,
    Completion,
    Exchange,
    ExternalLine,
    ExternalReturn,
    Money,
    Outcome,
    ReceivedLine,
    Refund,
    ReturnImporter,
    ReturnPolicy,
    ReturnRecord,
    StoreCredit,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.demo.scenarios import loop_xoro_import, loop_xoro_returns, order_1001
from returnflow.ports import LineQuantity
from returnflow.testing import FakeReturnSource, Harness, ManualClock

SHOP = "shop-1"
AT = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)
XORO = ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED)


def setup(*returns: ExternalReturn) -> tuple[Harness, FakeReturnSource, ReturnImporter]:
    harness = Harness(policy=XORO, clock=ManualClock(AT + timedelta(hours=2)))
    harness.ports.commerce.add_order(order_1001(SHOP))
    harness.ports.commerce.add_order(order_1001(SHOP, "1002"))
    source = FakeReturnSource("loop", returns)
    return harness, source, ReturnImporter(harness.service, source, shop=SHOP)


def loop_return(external_id: str, *lines: ExternalLine, minutes: int = 0) -> ExternalReturn:
    at = AT + timedelta(minutes=minutes)
    return ExternalReturn(
        source="loop",
        external_id=external_id,
        shop=SHOP,
        order_id="1001",
        lines=lines,
        created_at=at,
        updated_at=at,
    )


def receive(harness: Harness, return_id: str, *lines: tuple[str, int]) -> None:
    harness.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=return_id,
            event_id=f"{return_id}-receipt",
            lines=[ReceivedLine(line_id=line, quantity=units) for line, units in lines],
        )
    )


def close_asn(harness: Harness, return_id: str) -> None:
    harness.service.handle(
        WarehouseFinished(shop=SHOP, return_id=return_id, event_id=f"{return_id}-closed")
    )


def documents(record: ReturnRecord) -> list[str]:
    return [str(entry.payload["documents"]) for entry in record.history if entry.event == "settled"]


def assert_history_follows_table(record: ReturnRecord) -> None:
    current = TABLE.initial
    for entry in record.history:
        assert entry.source == current, entry
        if entry.event in TABLE.events:
            assert TABLE.target(entry.source, entry.event) == entry.target, entry
        else:
            assert entry.source == entry.target, entry
        current = entry.target
    assert current == record.state


# -- step 3: three ways to import ----------------------------------------------------------------


def test_seed004_by_date_range_by_rma_and_by_the_scheduler() -> None:
    refund = ExternalLine(order_line_id="L3", quantity=1)
    first, second, third = (
        loop_return("52393555", refund),
        loop_return("52393556", ExternalLine(order_line_id="L1", quantity=1), minutes=20),
        loop_return("52393557", ExternalLine(order_line_id="L2", quantity=1), minutes=40),
    )
    harness, source, importer = setup(first)

    # 1. manually by date range
    report = importer.import_range(AT - timedelta(days=1), AT + timedelta(minutes=10))
    assert report.imported == ("loop-52393555",)

    # 2. manually by RMA: the Loop return id from the return's admin URL
    source.add(second)
    assert importer.import_one("52393556").return_id == "loop-52393556"

    # 3. automatically: the scheduler polls every 15 minutes through service.tick
    harness.service.register_poller(importer)
    source.add(third)
    tick = harness.service.tick(AT + timedelta(hours=1))
    (polled,) = tick.imports
    assert polled.imported == ("loop-52393557",)
    assert harness.service.tick(AT + timedelta(hours=1, minutes=5)).imports == ()

    # each is an RMA with an ASN linked to it
    asns = {asn.return_id: asn for asn in harness.ports.warehouse.returns}
    for external in (first, second, third):
        record = harness.service.get(SHOP, external.return_id)
        assert record.state == ("approved", "no_exchange")
        assert record.refs.source_return_id == external.external_id
        assert asns[record.id].rma_id == record.refs.warehouse_rma_id
        assert asns[record.id].order_id == "1001"
        assert_history_follows_table(record)


# -- step 4: the ASN closed ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "document", "topic"),
    [
        (StoreCredit(), "credit_memo 23.80 EUR", "credits/create"),
        (Refund(), "refunded_credit_memo 23.80 EUR", "refunds/create"),
        (
            Exchange(variant_id="cap-red", quantity=2),
            "exchange_order 23.80 EUR",
            "exchanges/release",
        ),
    ],
    ids=["credit", "refund", "exchange"],
)
def test_seed004_an_asn_closed_fully_received_processes_the_return(
    outcome: Outcome, document: str, topic: str
) -> None:
    harness, _, importer = setup(
        loop_return("52393555", ExternalLine(order_line_id="L2", quantity=2, outcome=outcome))
    )
    (return_id,) = importer.import_range(AT, AT + timedelta(hours=1)).imported
    commerce, events = harness.ports.commerce, harness.ports.events

    receive(harness, return_id, ("L2", 2))
    # Received, but the ASN is still open: nothing is processed yet.
    received = harness.service.get(SHOP, return_id)
    assert received.status == "item_received"
    assert (commerce.refunds, commerce.credits) == ([], [])
    assert documents(received) == []

    close_asn(harness, return_id)

    record = harness.service.get(SHOP, return_id)
    assert record.status == "closed"
    assert documents(record) == [document]
    assert "returns/close" in events.topics_for(return_id)
    if isinstance(outcome, StoreCredit):  # a gift card: the credit memo
        [credit] = commerce.credits
        assert credit.amount == Money("23.80", "EUR")
        assert record.refs.credit_ids == (credit.credit_id,)
        assert commerce.refunds == []
    elif isinstance(outcome, Refund):  # the refunded credit memo
        [refund] = commerce.refunds
        assert (refund.amount, refund.lines) == (Money("23.80", "EUR"), (LineQuantity("L2", 2),))
        assert record.refs.refund_ids == (refund.refund_id,)
        assert commerce.credits == []
    else:  # the exchange order: the held items are released, picked, packed and shipped
        assert record.exchange_status == "released"
        [line] = commerce.exchange_lines(SHOP, "1001")
        assert (line.variant_id, line.quantity, line.status) == ("cap-red", 2, "unfulfilled")
        assert "hold-order" not in commerce.tags(SHOP, "1001")
        assert (commerce.refunds, commerce.credits) == ([], [])
    assert topic in events.topics_for(return_id)
    assert_history_follows_table(record)


def test_seed004_an_asn_closed_short_flags_the_return_for_a_person() -> None:
    harness, _, importer = setup(
        loop_return(
            "52393556",
            ExternalLine(order_line_id="L2", quantity=2, outcome=StoreCredit()),
            ExternalLine(order_line_id="L3", quantity=1, outcome=Refund()),
        )
    )
    (return_id,) = importer.import_range(AT, AT + timedelta(hours=1)).imported
    receive(harness, return_id, ("L2", 1), ("L3", 1))

    close_asn(harness, return_id)

    record = harness.service.get(SHOP, return_id)
    assert record.state == ("needs_review", "no_exchange")
    assert record.review_reasons == ("warehouse finished a short receipt: L2: 1/2",)
    assert (harness.ports.commerce.refunds, harness.ports.commerce.credits) == ([], [])
    assert documents(record) == []
    flagged = harness.ports.events.events[-1]
    assert (flagged.topic, flagged.payload["review_reason"]) == (
        "returns/update",
        "warehouse finished a short receipt: L2: 1/2",
    )
    # A second close of the ASN changes nothing; a person takes the action.
    close_asn(harness, return_id)  # same event id: a duplicate
    assert harness.service.get(SHOP, return_id).version == record.version
    closed = harness.service.close(SHOP, return_id, actor="agent:xoro", unreceived="nothing")
    assert closed.status == "closed"
    assert documents(closed) == ["refunded_credit_memo 100.00 EUR, credit_memo 11.90 EUR"]
    assert_history_follows_table(closed)


def test_seed004_the_demo_flow() -> None:
    harness, (full, short) = loop_xoro_import("demo-shop")

    assert (full, short) == ("loop-52393555", "loop-52393556")
    processed = harness.service.get("demo-shop", full)
    flagged = harness.service.get("demo-shop", short)
    assert processed.state == ("closed", "released")
    assert documents(processed) == [
        "refunded_credit_memo 100.00 EUR, credit_memo 23.80 EUR, exchange_order 25.00 EUR"
    ]
    assert flagged.state == ("needs_review", "no_exchange")
    assert [asn.return_id for asn in harness.ports.warehouse.returns] == [full, short]
    assert [external.return_id for external in loop_xoro_returns("demo-shop")] == [full, short]
    for record in (processed, flagged):
        assert_history_follows_table(record)
