"""Regressions found by driving the exits, the fact ordering and the instant exchange as a new
user would: each input once let goods or money out, or left a return stuck."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Completion,
    Exchange,
    InvalidAmount,
    InvalidTransition,
    Money,
    OutcomeKind,
    QcResult,
    ReceivedLine,
    Refund,
    RefundTrigger,
    ReleaseTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.testing import Harness, make_order

SHOP = "s"
P, D, X = CarrierStatus.PICKED_UP, CarrierStatus.DELIVERED, CarrierStatus.RETURN_TO_ORIGIN
INSTANT = ReturnPolicy(exchange_release=ReleaseTrigger.ON_HANDED_IN)
SWAP = Exchange(variant_id="v2", quantity=2)


def opened(
    policy: ReturnPolicy | None = None, outcome: Any = None, *, auto: bool = True
) -> tuple[Harness, str]:
    harness = Harness(policy=policy or ReturnPolicy(), auto_dispatch=auto)
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    line = RequestLine(order_line_id="L1", quantity=2, outcome=outcome or Refund())
    record = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=[line]))
    return harness, record.id


def scan(rid: str, status: CarrierStatus, event_id: str) -> CarrierUpdate:
    return CarrierUpdate(shop=SHOP, return_id=rid, event_id=event_id, status=status)


def receipt(rid: str, units: int, event_id: str = "r") -> WarehouseReceipt:
    lines = [ReceivedLine(line_id="L1", quantity=units)]
    return WarehouseReceipt(shop=SHOP, return_id=rid, event_id=event_id, lines=lines)


def items(harness: Harness) -> list[str]:
    return [line.status for line in harness.ports.commerce.exchange_lines(SHOP, "1001")]


def test_a_return_to_origin_after_delivery_does_not_cancel_what_reached_the_warehouse() -> None:
    harness, rid = opened()
    for fact in (scan(rid, P, "p"), scan(rid, D, "d"), scan(rid, X, "x")):
        harness.service.handle(fact)
    assert harness.service.get(SHOP, rid).status == "needs_review"
    assert harness.service.handle(receipt(rid, 2)).status == "applied"
    assert harness.service.get(SHOP, rid).state == ("closed", "no_exchange")
    assert [str(r.amount) for r in harness.ports.commerce.refunds] == ["20.00 EUR"]


def test_a_return_to_origin_after_an_early_refund_goes_to_a_person() -> None:
    harness, rid = opened(ReturnPolicy(refund_trigger=RefundTrigger.ON_HANDED_IN))
    harness.service.handle(scan(rid, P, "p"))
    harness.service.handle(scan(rid, X, "x"))
    record = harness.service.get(SHOP, rid)
    assert record.state == ("needs_review", "no_exchange")
    assert record.review_reasons == ("parcel returned to origin",)


def test_an_early_finished_then_a_short_receipt_goes_to_a_person_as_in_order() -> None:
    harness, rid = opened(ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED))
    for fact in (
        scan(rid, P, "p"),
        WarehouseFinished(shop=SHOP, return_id=rid, event_id="f"),
        receipt(rid, 1),
    ):
        harness.service.handle(fact)
    record = harness.service.get(SHOP, rid)
    assert record.status == "needs_review"
    assert "short receipt" in record.review_reasons[-1]


def test_cancelling_a_released_instant_exchange_captures_its_authorization() -> None:
    harness, rid = opened(INSTANT, SWAP)
    harness.service.handle(scan(rid, P, "p"))
    harness.service.flag(SHOP, rid, "look")
    cancelled = harness.service.cancel(SHOP, rid)
    assert cancelled.state == ("cancelled", "released")
    assert items(harness) == ["unfulfilled"]  # shipped already: the customer pays for it
    assert list(harness.ports.payments.authorizations(SHOP, rid).values()) == ["captured"]


def test_closing_a_released_instant_exchange_with_nothing_back_captures_it() -> None:
    harness, rid = opened(INSTANT, SWAP)
    harness.service.handle(scan(rid, P, "p"))
    harness.service.flag(SHOP, rid, "look")
    harness.service.close(SHOP, rid, unreceived="nothing", exchange="cancel")
    assert list(harness.ports.payments.authorizations(SHOP, rid).values()) == ["captured"]


def test_an_authorization_that_comes_after_the_units_is_voided() -> None:
    harness, rid = opened(INSTANT, SWAP, auto=False)
    harness.service.dispatch_pending()
    harness.service.handle(scan(rid, P, "p"))
    harness.service.handle(receipt(rid, 2))
    harness.service.dispatch_pending()
    harness.dispatch_due()
    assert harness.service.get(SHOP, rid).state == ("closed", "released")
    assert list(harness.ports.payments.authorizations(SHOP, rid).values()) == ["voided"]


def test_closing_with_a_release_and_refund_anyway_does_not_pay_twice() -> None:
    harness, rid = opened(outcome=SWAP)
    harness.service.flag(SHOP, rid, "look")
    harness.service.close(SHOP, rid, unreceived="refund", exchange="release")
    assert items(harness) == ["unfulfilled"]
    assert harness.ports.commerce.refunds == []  # the released exchange is what they get


@pytest.mark.parametrize(
    "amount", ["9" * 26, "1" + "0" * 26, Decimal("1E+40"), Decimal("-1E+20")], ids=str
)
def test_an_amount_out_of_range_is_refused_at_the_boundary(amount: str | Decimal) -> None:
    with pytest.raises(InvalidAmount, match="out of range") as raised:
        Money(amount, "EUR")
    assert raised.value.field == "amount"
    assert Money("999999999999999.99", "EUR").amount.adjusted() == 14


def test_a_capture_for_a_late_parcel_is_given_back_when_the_units_come_back() -> None:
    harness, rid = opened(
        ReturnPolicy(exchange_release=ReleaseTrigger.ON_HANDED_IN, instant_exchange_return_days=5),
        SWAP,
    )
    harness.service.handle(scan(rid, P, "p"))
    harness.clock.advance(days=6)
    assert harness.service.tick().captured == (rid,)
    harness.service.handle(receipt(rid, 2))
    assert harness.service.get(SHOP, rid).state == ("closed", "released")
    kinds = [payment.kind for payment in harness.ports.payments.payments]
    assert kinds == ["authorization", "capture", "refund"]
    assert harness.service.handle(receipt(rid, 1, "r2")).status == "ignored"  # once
    assert [p.kind for p in harness.ports.payments.payments].count("refund") == 1


def test_a_delivery_scan_before_the_authorization_is_answered_does_not_authorize_again() -> None:
    harness, rid = opened(INSTANT, SWAP, auto=False)
    harness.service.dispatch_pending()
    harness.service.handle(scan(rid, P, "p"))
    harness.service.handle(scan(rid, D, "d"))  # the authorization is still in the outbox
    harness.service.dispatch_pending()
    assert [p.kind for p in harness.ports.payments.payments] == ["authorization"]
    assert items(harness) == ["unfulfilled"]


def test_a_parked_scan_the_same_change_moves_past_is_not_left_parked() -> None:
    # the receipt passes the delivery scan parked in review, and a rule of that same change
    # sends the return to review again: the scan is of no use any more, not parked
    dearer = Exchange(variant_id="v2", quantity=2, unit_price=Money("15.00", "EUR"))
    harness, rid = opened(outcome=dearer, auto=False)
    harness.ports.payments.fail(times=None)  # the balance stays unpaid
    harness.service.dispatch_pending()
    harness.service.flag(SHOP, rid, "customer called")
    assert harness.service.handle(scan(rid, D, "d")).status == "parked"
    harness.service.handle(receipt(rid, 2))
    record = harness.service.get(SHOP, rid)
    assert record.status == "needs_review"
    assert record.parked == ()
    assert any(e.event == "ignored" and e.payload["id"] == "d" for e in record.history)


def test_a_timer_is_set_by_the_change_that_approves() -> None:
    # the expiry counts from the approval written in the same commit, not an older one
    harness, rid = opened(auto=False)
    record = harness.service.get(SHOP, rid)
    assert record.status == "approved"
    assert record.due_at == record.created_at + timedelta(days=ReturnPolicy().ship_within_days)


def test_a_short_receipt_named_again_names_only_what_is_still_missing() -> None:
    # Finished came between two receipts of L1 (L2 never comes): the shortfall it named
    # first is superseded by the one left when it applies again, as when both receipts
    # came first.
    harness = Harness(policy=ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED))
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    lines = [
        RequestLine(order_line_id="L1", quantity=2, outcome=Refund()),
        RequestLine(order_line_id="L2", quantity=1, outcome=Refund()),
    ]
    rid = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    finished = WarehouseFinished(shop=SHOP, return_id=rid, event_id="f")
    for fact in (scan(rid, P, "p"), receipt(rid, 1, "r1"), finished, receipt(rid, 1, "r2")):
        harness.service.handle(fact)
    record = harness.service.get(SHOP, rid)
    assert record.status == "needs_review"
    assert record.review_reasons == ("warehouse finished a short receipt: L2: 0/1",)


def test_a_fact_that_moves_a_return_sets_its_next_timer() -> None:
    # in review for no progress (no timer in review), then a part of the parcel comes: that
    # answers the review, and item_received has a stuck timer, set by the commit of the
    # receipt, so tick() finds the return in time
    harness, rid = opened()
    harness.service.handle(scan(rid, P, "p"))
    harness.clock.advance(days=31)
    assert harness.service.tick().stuck == (rid,)
    assert harness.service.get(SHOP, rid).due_at is None
    harness.service.handle(receipt(rid, 1))
    record = harness.service.get(SHOP, rid)
    assert record.status == "item_received"
    assert record.due_at == record.updated_at + timedelta(days=14)
    harness.clock.advance(days=15)
    assert harness.service.tick().stuck == (rid,)
    assert harness.service.get(SHOP, rid).status == "needs_review"


def test_units_received_do_not_take_a_return_away_from_the_person_it_was_sent_to() -> None:
    # a person flagged it (or a port call failed for good): the units coming back answer
    # neither, so the return stays in review with its units recorded, as when the receipt
    # came before the flag
    harness, rid = opened()
    harness.service.flag(SHOP, rid, "customer called")
    harness.service.handle(receipt(rid, 1))
    record = harness.service.get(SHOP, rid)
    assert record.status == "needs_review"
    assert record.lines[0].received == 1
    assert record.review_reasons == ("customer called",)
    assert [entry.event for entry in record.history[-2:]] == ["receive", "flag"]
    assert record.history[-1].payload == {"reason": "customer called", "kept": "units received"}


def test_a_finished_parked_before_the_receipt_that_completes_is_not_a_second_completion() -> None:
    # Finished first (parked), then the receipt completes the return with a credit still
    # pending: the parked Finished is of no more use, not a second completion that sends the
    # return to review for a QC failure it already settled
    cheaper = Money("2.00", "EUR")
    policy = ReturnPolicy(exchange_difference=OutcomeKind.STORE_CREDIT)
    harness = Harness(policy=policy, auto_dispatch=False)
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    lines = [
        RequestLine(
            order_line_id=line, quantity=1, outcome=Exchange(variant_id=v, unit_price=cheaper)
        )
        for line, v in (("L1", "x"), ("L2", "y"))
    ]
    rid = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    harness.service.dispatch_pending()
    finished = WarehouseFinished(shop=SHOP, return_id=rid, event_id="f")
    assert harness.service.handle(finished).status == "parked"
    received = [
        ReceivedLine(line_id="L1", quantity=1),
        ReceivedLine(line_id="L2", quantity=1, qc="fail"),
    ]
    harness.service.handle(WarehouseReceipt(shop=SHOP, return_id=rid, event_id="r", lines=received))
    for _ in range(3):
        harness.dispatch_due()
    record = harness.service.get(SHOP, rid)
    assert record.state == ("closed", "released")
    assert [str(c.amount) for c in harness.ports.commerce.credits] == ["8.00 EUR"]


@pytest.mark.parametrize("order", ["pickup first", "sent back first"])
def test_a_parcel_sent_back_implies_its_pickup(order: str) -> None:
    # a refund paid on hand-in is paid whichever scan comes first; the sent-back scan then
    # sends the return to a person (money went out)
    harness, rid = opened(ReturnPolicy(refund_trigger=RefundTrigger.ON_HANDED_IN))
    facts = [scan(rid, P, "p"), scan(rid, X, "x")]
    for fact in facts if order == "pickup first" else facts[::-1]:
        harness.service.handle(fact)
    record = harness.service.get(SHOP, rid)
    assert record.state == ("needs_review", "no_exchange")
    assert [str(r.amount) for r in harness.ports.commerce.refunds] == ["20.00 EUR"]


@pytest.mark.parametrize("order", ["pickup first", "sent back first"])
def test_an_instant_exchange_sent_back_before_its_pickup_waits_for_the_authorization(
    order: str,
) -> None:
    harness, rid = opened(INSTANT, SWAP)
    facts = [scan(rid, P, "p"), scan(rid, X, "x")]
    for fact in facts if order == "pickup first" else facts[::-1]:
        harness.service.handle(fact)
    record = harness.service.get(SHOP, rid)
    assert record.state == ("cancelled", "released")  # shipped, and paid for
    kinds = [p.kind for p in harness.ports.payments.payments]
    assert kinds == ["authorization", "capture"]


@pytest.mark.parametrize("asked", ["by the receipt", "by a pickup before the review"])
def test_an_authorization_answered_after_the_exchanged_units_failed_qc_ships_nothing(
    asked: str,
) -> None:
    # An instant exchange of two units of L1, a unit of L2 refunded. A person is looking at
    # the return when the parcel comes: the receipt is let in (the units are recorded) and
    # both exchanged units fail QC. The authorization asked for the exchange (by the
    # receipt's implied pickup, or by a pickup before the review and not answered yet) is
    # answered after that: the new item is not to ship on it, since its units failed
    # before the release was decided. Before, it was released and then captured.
    harness = Harness(policy=INSTANT, auto_dispatch=asked == "by the receipt")
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    lines = [
        RequestLine(order_line_id="L1", quantity=2, outcome=SWAP),
        RequestLine(order_line_id="L2", quantity=1),
    ]
    rid = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    harness.service.dispatch_pending()
    if asked != "by the receipt":
        harness.service.handle(scan(rid, P, "p"))  # the authorization is asked, not answered
    harness.service.flag(SHOP, rid, "customer called")
    failed = [ReceivedLine(line_id="L1", quantity=2, qc=QcResult.FAIL)]
    harness.service.handle(WarehouseReceipt(shop=SHOP, return_id=rid, event_id="r", lines=failed))
    harness.service.dispatch_pending()
    record = harness.service.get(SHOP, rid)
    assert record.state == ("needs_review", "on_hold")
    assert items(harness) == ["on_hold"]
    assert list(harness.ports.payments.authorizations(SHOP, rid).values()) == ["voided"]
    harness.service.handle(receipt_of(rid, "L2", "r2"))  # the last unit: completed
    harness.service.dispatch_pending()
    assert harness.service.get(SHOP, rid).state == ("closed", "exchange_cancelled")
    assert items(harness) == ["cancelled"]
    assert [p.kind for p in harness.ports.payments.payments] == ["authorization", "void"]
    assert [str(r.amount) for r in harness.ports.commerce.refunds] == ["10.00 EUR"]


def receipt_of(rid: str, line_id: str, event_id: str) -> WarehouseReceipt:
    lines = [ReceivedLine(line_id=line_id, quantity=1)]
    return WarehouseReceipt(shop=SHOP, return_id=rid, event_id=event_id, lines=lines)


def test_a_return_whose_units_were_paid_for_cannot_be_cancelled() -> None:
    harness, rid = opened(ReturnPolicy(refund_trigger=RefundTrigger.ON_HANDED_IN))
    harness.service.handle(scan(rid, P, "p"))
    harness.service.handle(scan(rid, X, "x"))  # to a person: money went out early
    before = harness.service.get(SHOP, rid)
    with pytest.raises(InvalidTransition, match="close it with a decision"):
        harness.service.cancel(SHOP, rid, actor="agent:ann")
    assert harness.service.get(SHOP, rid) == before


def test_a_return_whose_instant_exchange_shipped_is_closed_not_reset() -> None:
    # reset would carry accepted units whose new items already shipped into a return that
    # pays them out as an exchange for nothing, and leave the authorization open
    policy = ReturnPolicy(
        exchange_release=ReleaseTrigger.ON_HANDED_IN, completion=Completion.ON_WAREHOUSE_FINISHED
    )
    harness, rid = opened(policy, SWAP)
    harness.service.handle(scan(rid, P, "p"))
    harness.service.handle(receipt(rid, 1))
    harness.service.handle(WarehouseFinished(shop=SHOP, return_id=rid, event_id="f"))
    before = harness.service.get(SHOP, rid)
    assert before.state == ("needs_review", "released")
    with pytest.raises(InvalidTransition, match="the exchange shipped"):
        harness.service.reset(SHOP, rid, actor="agent:ann")
    assert harness.service.get(SHOP, rid) == before


@pytest.mark.parametrize("exit", ["sent back", "cancelled", "closed by hand"])
def test_a_paid_upsell_balance_stays_paid_once_its_instant_exchange_shipped(exit: str) -> None:
    dearer = Exchange(variant_id="x", unit_price=Money("30.00", "EUR"))
    harness = Harness(policy=INSTANT)
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    line = RequestLine(order_line_id="L1", quantity=1, outcome=dearer)
    rid = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=[line])).id
    harness.service.handle(scan(rid, P, "p"))  # x ships on the authorization of 10.00
    if exit == "sent back":
        harness.service.handle(scan(rid, X, "x"))
    elif exit == "cancelled":
        harness.service.flag(SHOP, rid, "parcel lost")
        harness.service.cancel(SHOP, rid, actor="agent:ann")
    else:
        harness.service.flag(SHOP, rid, "parcel lost")
        harness.service.close(SHOP, rid, unreceived="nothing", exchange="cancel", actor="agent:a")
    payments = [(p.kind, str(p.amount)) for p in harness.ports.payments.payments]
    # the customer keeps the 30.00 item and the original unit: 20.00 + 10.00 paid, none back
    assert payments == [
        ("charge", "20.00 EUR"),
        ("authorization", "10.00 EUR"),
        ("capture", "10.00 EUR"),
    ]


@pytest.mark.parametrize("order", ["pickup first", "receipt first"])
def test_a_released_instant_exchange_keeps_every_item_it_charges_for(order: str) -> None:
    harness = Harness(policy=INSTANT)
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    lines = [
        RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="x")),
        RequestLine(order_line_id="L2", quantity=1, outcome=Exchange(variant_id="y")),
    ]
    rid = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    received = [
        ReceivedLine(line_id="L1", quantity=1),
        ReceivedLine(line_id="L2", quantity=1, qc="fail"),
    ]
    facts = [
        scan(rid, P, "p"),
        WarehouseReceipt(shop=SHOP, return_id=rid, event_id="r", lines=received),
    ]
    for fact in facts if order == "pickup first" else facts[::-1]:
        harness.service.handle(fact)
    assert sorted(items(harness)) == ["unfulfilled", "unfulfilled"]  # both shipped
    # the capture pays for the item whose unit failed QC; L1's unit came back and pays for
    # its own
    kinds = [(p.kind, str(p.amount)) for p in harness.ports.payments.payments]
    assert kinds == [("authorization", "20.00 EUR"), ("capture", "10.00 EUR")]


def test_units_back_before_an_upsell_balance_is_charged_wait_for_the_charge() -> None:
    dearer = Exchange(variant_id="x", unit_price=Money("30.00", "EUR"))
    harness = Harness(auto_dispatch=False)
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    line = RequestLine(order_line_id="L1", quantity=1, outcome=dearer)
    rid = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=[line])).id
    assert harness.service.handle(receipt(rid, 1)).status == "parked"
    for _ in range(3):
        harness.dispatch_due()
    record = harness.service.get(SHOP, rid)
    assert record.state == ("closed", "released")
    assert items(harness) == ["unfulfilled"]
