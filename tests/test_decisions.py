"""The decisions (:mod:`returnflow.decisions`) as pure functions: no store, no port, no service.

Every test builds an order and a return as plain data (through
:func:`~returnflow.decisions.request.open_return`, or by ``attrs.evolve`` of a record into a
state, or by applying earlier decisions in sequence), applies one decision to a
:class:`~returnflow.decisions.change.Change` and checks the state, the record fields and the
planned effects exactly. An outbox, when a decision reads one, is a tuple of
:class:`~returnflow.ports.store.OutboxEntry` built by hand.

The order: a T-shirt line (2 x 40.00), a cap (25.00 + 5.00 tax = 30.00) and final-sale socks
(5.00). The flows follow the seeds: 000 SmartPack (exchange held with ``hold-order``,
"Finished" completes, partial receipt reset, release not honoured), 001 helpdesk statuses,
002 Clickpost QC and return to origin, 003 Loop exchanges with an upsell payment and refund
triggers, 004 Loop returns imported.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import socket
import sqlite3
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest

from returnflow import decisions
from returnflow.decisions import (
    cancellation,
    carrier,
    completion,
    exchange,
    facts,
    results,
    review,
    timers,
    warehouse,
)
from returnflow.decisions import request as requests
from returnflow.decisions import reset as resets
from returnflow.decisions.change import Change
from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    Disposition,
    ReceivedLine,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.ledger import claimed_units
from returnflow.domain.model import (
    DeclineReason,
    Exchange,
    ExternalRefs,
    ItemCondition,
    Keep,
    OrderLine,
    OrderSnapshot,
    QcResult,
    RequestLine,
    ReturnReason,
    ReturnRecord,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import (
    Completion,
    RefundTrigger,
    ReleaseTrigger,
    ReturnPolicy,
    ReturnToOrigin,
)
from returnflow.domain.settlement import FeePolicy, Percent
from returnflow.errors import InvalidPayload, InvalidQuantity, InvalidTransition
from returnflow.lifecycle import effects as fx
from returnflow.ports.carrier import Label
from returnflow.ports.commerce import (
    CreditReceipt,
    ExchangeHold,
    ExchangeItem,
    HoldStatus,
    LineQuantity,
    RefundReceipt,
)
from returnflow.ports.payments import PaymentReceipt
from returnflow.ports.store import OutboxEntry
from returnflow.ports.warehouse import WarehouseReturn

SHOP = "shop-d"
ORDER_ID = "5001"
EMAIL = "eve@example.com"
T0 = datetime(2026, 2, 1, 10, 0, tzinfo=timezone.utc)


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


ORDER = OrderSnapshot(
    id=ORDER_ID,
    shop=SHOP,
    created_at=T0 - timedelta(days=5),
    currency="EUR",
    customer_email=EMAIL,
    fulfilled_at=T0 - timedelta(days=4),  # shipped in one go: every unit is returnable
    lines=(
        OrderLine(id="L1", sku="TEE", variant_id="v-tee", quantity=2, unit_price=eur("40.00")),
        OrderLine(
            id="L2",
            sku="CAP",
            variant_id="v-cap",
            quantity=1,
            unit_price=eur("25.00"),
            tax=eur("5.00"),
        ),
        OrderLine(
            id="L3",
            sku="SOCK",
            variant_id="v-sock",
            quantity=1,
            unit_price=eur("5.00"),
            final_sale=True,
        ),
    ),
)

HELPDESK = ReturnPolicy()  # seed 001: completes on receipt, refunds on close
SMARTPACK = ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED)  # seed 000
INSTANT = ReturnPolicy(
    completion=Completion.ON_WAREHOUSE_FINISHED, exchange_release=ReleaseTrigger.ON_HANDED_IN
)
FEES = ReturnPolicy(fees=FeePolicy(restocking=Percent(10), return_shipping=eur("4.95")))

_E = TypeVar("_E", bound=fx.Effect)


# -- building returns and changes as plain data ---------------------------------------------


def request(*lines: RequestLine) -> ReturnRequest:
    return ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=lines)


def opened(
    *lines: RequestLine,
    policy: ReturnPolicy = HELPDESK,
    return_id: str = "r1",
    now: datetime = T0,
) -> Change:
    """The first change of a new return: checked, built, opened and assessed."""
    asked = request(*lines)
    requests.check(ORDER, asked, {}, policy)
    built, exchange_lines = requests.build_lines(ORDER, asked, {}, return_id)
    change, value = requests.open_return(
        ORDER, asked, built, exchange_lines, return_id, now=now, actor="customer"
    )
    requests.requested(change, ORDER, asked, policy, value=value)
    return change


def then(
    previous: Change | ReturnRecord,
    *,
    outbox: tuple[OutboxEntry, ...] = (),
    now: datetime | None = None,
    actor: str = "system",
) -> Change:
    """The next change of the same return, on the record ``previous`` committed."""
    if isinstance(previous, Change):
        record = previous.finished()
        at = previous.now + timedelta(hours=1)
    else:
        record, at = previous, previous.updated_at + timedelta(hours=1)
    return Change(record, now=now or at, actor=actor, base=record.version, outbox=outbox)


def queued(*effects: fx.Effect, status: str = "pending", first: int = 1) -> tuple[OutboxEntry, ...]:
    return tuple(
        OutboxEntry(effect=effect, sequence=first + index, status=status)
        for index, effect in enumerate(effects)
    )


def moved(change: Change, status: str, exchange_status: str | None = None, **fields: Any) -> Change:
    """The change's return put in a state (and with fields) directly, as a new change."""
    record = attrs.evolve(
        change.finished(),
        status=status,
        exchange_status=exchange_status or change.record.exchange_status,
        **fields,
    )
    return then(record)


def kinds(change: Change) -> list[str]:
    return [effect.kind for effect in change.effects]


def work(change: Change) -> list[str]:
    """The kinds of the planned effects that are not messages (publish, notify)."""
    return [e.kind for e in change.effects if not isinstance(e, (fx.Publish, fx.Notify))]


def only(change: Change, effect_type: type[_E]) -> _E:
    found = [effect for effect in change.effects if isinstance(effect, effect_type)]
    assert len(found) == 1, kinds(change)
    return found[0]


def events(change: Change) -> list[str]:
    return [entry.event for entry in change.history]


def topics(change: Change) -> list[str]:
    return [effect.topic for effect in change.effects if isinstance(effect, fx.Publish)]


def templates(change: Change) -> list[str]:
    return [effect.template for effect in change.effects if isinstance(effect, fx.Notify)]


def scan(status: CarrierStatus, event_id: str = "scan-1") -> CarrierUpdate:
    return CarrierUpdate(shop=SHOP, return_id="r1", event_id=event_id, status=status)


def receipt(*lines: ReceivedLine, event_id: str = "wh-1") -> WarehouseReceipt:
    return WarehouseReceipt(shop=SHOP, return_id="r1", event_id=event_id, lines=lines)


def finished(event_id: str = "fin-1") -> WarehouseFinished:
    return WarehouseFinished(shop=SHOP, return_id="r1", event_id=event_id)


def answered(previous: Change, effect: fx.Effect, result: object) -> Change:
    """The change a port's ``result`` for ``effect`` makes on the return (a new change)."""
    change = then(previous)
    results.apply_result(change, effect, result)
    return change


def shipped_exchange(policy: ReturnPolicy = SMARTPACK) -> Change:
    """Seed 000 up to the warehouse: one T-shirt exchanged for size L, held, label sent."""
    change = opened(RequestLine("L1", 1, outcome=Exchange("v-tee-L", sku="TEE-L")), policy=policy)
    first = change
    change = answered(change, only(first, fx.CreateWarehouseReturn), WarehouseReturn("RMA-1"))
    change = answered(change, only(first, fx.CreateLabel), Label("TRK-1", "https://l/1"))
    return answered(change, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1",)))


def instant_released() -> Change:
    """An instant exchange handed in, its payment authorized, so released."""
    handed_in = applied(shipped_exchange(INSTANT), INSTANT, scan(CarrierStatus.PICKED_UP))
    authorize = only(handed_in, fx.AuthorizePayment)
    return answered(handed_in, authorize, PaymentReceipt("AUTH-1", authorize.amount))


def labelled_refund(policy: ReturnPolicy = HELPDESK, quantity: int = 2) -> Change:
    """A refund of the T-shirts, approved, its warehouse return and label answered."""
    change = opened(RequestLine("L1", quantity), policy=policy)
    first = change
    change = answered(change, only(first, fx.CreateWarehouseReturn), WarehouseReturn("RMA-1"))
    return answered(change, only(first, fx.CreateLabel), Label("TRK-1", "https://l/1"))


def applied(previous: Change, policy: ReturnPolicy, fact: Any, **kw: Any) -> Change:
    """The change an inbound fact makes (asserting it applied)."""
    change = then(previous, **kw)
    handlers: dict[type, Any] = {
        CarrierUpdate: carrier.carrier_update,
        WarehouseReceipt: warehouse.receipt,
        WarehouseFinished: warehouse.finished,
    }
    assert handlers[type(fact)](change, fact, policy) == ""
    return change


# -- change ----------------------------------------------------------------------------------


def test_change_keys_effects_by_shop_return_version_and_position() -> None:
    change = then(opened(RequestLine("L1", 1)))
    assert (change.base, change.version) == (1, 2)
    first = change.effect(fx.CreateLabel)
    second = change.effect(fx.VoidLabel)
    assert first.key == "shop-d/r1/2/0/create_label"
    assert second.key == "shop-d/r1/2/1/void_label"
    assert (first.order_id, first.version) == (ORDER_ID, 2)


def test_change_refuses_an_event_the_chart_does_not_allow_and_writes_nothing() -> None:
    change = then(opened(RequestLine("L1", 1)))
    with pytest.raises(InvalidTransition) as raised:
        change.fire("close_nothing")
    assert raised.value.state == ("approved", "no_exchange")
    with pytest.raises(InvalidTransition) as raised:
        change.fire("reopen")
    assert raised.value.allowed == (
        "cancel",
        "close",
        "deliver",
        "expire",
        "flag",
        "hand_in",
        "hold_exchange",
        "receive",
        "refund",
        "require_payment",
        "return_to_origin",
        "send_label",
    )
    assert not change.changed
    assert change.record.state == ("approved", "no_exchange")


def test_change_finished_bumps_the_version_and_appends_its_history() -> None:
    first = opened(RequestLine("L1", 1))
    record = first.finished()
    assert (record.version, record.updated_at) == (1, T0)
    assert [entry.event for entry in record.history] == ["requested", "check", "auto_approve"]
    assert {entry.version for entry in record.history} == {1}
    flagged = then(first)
    review.flag(flagged, "looks odd")
    again = flagged.finished()
    assert again.version == 2
    assert [entry.event for entry in again.history][-2:] == ["auto_approve", "flag"]
    assert again.history[-1].at == T0 + timedelta(hours=1)


def test_change_sends_no_message_to_a_customer_without_email() -> None:
    record = attrs.evolve(opened(RequestLine("L1", 1)).finished(), customer_email=None)
    change = then(record)
    change.notify("return_closed")
    assert change.effects == []


# -- request ---------------------------------------------------------------------------------


def test_request_auto_approved_plans_warehouse_return_label_and_exchange_hold() -> None:
    change = opened(
        RequestLine("L1", 1, outcome=Exchange("v-tee-L", sku="TEE-L")), policy=SMARTPACK
    )
    assert change.record.state == ("approved", "on_hold")
    assert (change.base, change.version) == (0, 1)
    assert kinds(change) == [
        "publish",
        "notify",
        "create_label",
        "create_warehouse_return",
        "hold_exchange",
        "publish",
        "notify",
    ]
    assert [effect.key for effect in change.effects] == [
        f"shop-d/r1/1/{index}/{kind}" for index, kind in enumerate(kinds(change))
    ]
    created = only(change, fx.CreateWarehouseReturn)
    assert created.lines == (LineQuantity("L1", 1),)
    assert (created.reason, created.action) == ("returnflow", "returnflow")
    hold = only(change, fx.HoldExchange)
    assert hold.items == (ExchangeItem("r1-1-x", "v-tee-L", 1, "TEE-L"),)
    assert hold.hold_tag == "hold-order"
    assert topics(change) == ["returns/request", "returns/approve"]
    assert templates(change) == ["return_requested", "return_approved"]
    assert events(change) == ["requested", "check", "auto_approve", "hold_exchange"]
    assert change.history[0].payload == {"lines": "L1x1", "value": "40.00 EUR"}
    (line,) = change.record.lines
    assert (line.id, line.unit_amounts, line.units) == ("r1-1", (eur("40.00"),), (0,))
    (item,) = change.record.exchange_lines
    assert (item.id, item.return_line_id, item.status) == ("r1-1-x", "r1-1", "pending")


def test_request_publish_payload_is_the_state_at_the_moment() -> None:
    change = opened(RequestLine("L1", 2))
    request_event, approve_event = [e for e in change.effects if isinstance(e, fx.Publish)]
    assert request_event.payload["status"] == "requested"
    assert request_event.payload["shopify_status"] == "REQUESTED"
    assert approve_event.payload["status"] == "approved"
    assert approve_event.payload["shopify_status"] == "OPEN"
    assert approve_event.payload["version"] == 1


def test_build_lines_take_only_units_no_open_return_holds() -> None:
    asked = request(RequestLine("L1", 1))
    claimed = {"L1": {0}}
    requests.check(ORDER, asked, claimed, HELPDESK)
    lines, exchange_lines = requests.build_lines(ORDER, asked, claimed, "r2")
    assert [(line.id, line.units, line.unit_amounts) for line in lines] == [
        ("r2-1", (1,), (eur("40.00"),))
    ]
    assert exchange_lines == []
    with pytest.raises(InvalidQuantity) as raised:
        requests.check(ORDER, request(RequestLine("L1", 2)), claimed, HELPDESK)
    assert (raised.value.field, raised.value.value) == ("lines[0].quantity", 2)


def test_claimed_units_leave_out_returns_that_ended_unsettled() -> None:
    open_one = opened(RequestLine("L1", 1)).finished()
    other = attrs.evolve(
        opened(RequestLine("L1", 1), return_id="r2").finished(),
        lines=(attrs.evolve(open_one.lines[0], id="r2-1", units=(1,)),),
    )
    declined = attrs.evolve(other, status="declined")
    reset = attrs.evolve(other, status="reset")
    closed = attrs.evolve(other, status="closed")
    assert claimed_units([open_one, declined, reset]) == {"L1": {0}}
    assert claimed_units([open_one, closed]) == {"L1": {0, 1}}


def test_request_routed_to_review_keeps_its_reasons_and_plans_nothing_for_the_parcel() -> None:
    policy = ReturnPolicy(review_reasons=frozenset({ReturnReason.DEFECTIVE}))
    change = opened(RequestLine("L1", 1, reason=ReturnReason.DEFECTIVE), policy=policy)
    assert change.record.state == ("pending_review", "no_exchange")
    assert change.record.review_reasons == ("line L1 reason DEFECTIVE",)
    assert kinds(change) == ["publish", "notify", "publish"]
    assert topics(change) == ["returns/request", "returns/update"]
    update = change.effects[-1]
    assert isinstance(update, fx.Publish)
    assert update.payload["review_reasons"] == ["line L1 reason DEFECTIVE"]
    assert events(change)[-1] == "route_to_review"


def test_approving_a_reviewed_request_clears_the_reasons_and_plans_the_approval() -> None:
    policy = ReturnPolicy(auto_approve_limit=eur("50.00"))
    change = opened(RequestLine("L1", 2), policy=policy)
    assert change.record.review_reasons == ("value 80.00 EUR above auto-approval limit 50.00 EUR",)
    approved = then(change, actor="agent")
    requests.approve(approved, policy)
    assert approved.record.state == ("approved", "no_exchange")
    assert approved.record.review_reasons == ()
    assert work(approved) == ["create_label", "create_warehouse_return"]
    assert [entry.actor for entry in approved.history] == ["agent"]


def test_approving_after_a_flag_keeps_the_label_and_the_warehouse_return() -> None:
    flagged = then(labelled_refund(), actor="agent")
    review.flag(flagged, "address changed")
    approved = then(flagged, actor="agent")
    requests.approve(approved, HELPDESK)
    assert approved.record.state == ("approved", "no_exchange")
    assert approved.record.refs.tracking_number == "TRK-1"
    assert work(approved) == []  # a new label is the agent's call: issue_label


def test_approving_again_before_the_label_came_back_plans_no_second_one() -> None:
    first = opened(RequestLine("L1", 2), policy=HELPDESK)
    flagged = then(first, actor="agent")
    review.flag(flagged, "address changed")
    approved = then(flagged, actor="agent", outbox=queued(*first.effects))
    requests.approve(approved, HELPDESK)
    assert work(approved) == []
    blind = then(flagged, actor="agent")  # without the outbox, both would be planned again
    requests.approve(blind, HELPDESK)
    assert work(blind) == ["create_label", "create_warehouse_return"]


def test_request_outside_the_window_is_declined_with_the_reason() -> None:
    # the window (30 days by default) counts from the fulfillment of the units returned
    assert ORDER.fulfilled_at is not None
    inside = opened(RequestLine("L1", 1), now=ORDER.fulfilled_at + timedelta(days=30))
    assert inside.record.state != ("declined", "no_exchange")
    change = opened(RequestLine("L1", 1), now=ORDER.fulfilled_at + timedelta(days=30, seconds=1))
    assert change.record.state == ("declined", "no_exchange")
    assert change.record.decline_reason is DeclineReason.RETURN_PERIOD_ENDED
    assert work(change) == []
    assert topics(change) == ["returns/request", "returns/decline"]
    declined = change.effects[-1]
    assert isinstance(declined, fx.Notify)
    assert declined.template == "return_declined"
    assert declined.context["note"] == "window of 30 days ended 2026-02-27"  # fulfilled 01-28


def test_request_for_a_final_sale_line_is_declined() -> None:
    change = opened(RequestLine("L3", 1))
    assert change.record.state == ("declined", "no_exchange")
    assert change.record.decline_reason is DeclineReason.FINAL_SALE
    assert change.history[-1].payload == {"reason": "FINAL_SALE", "note": "final-sale lines: L3"}


def test_imported_return_is_approved_as_it_stands_without_a_label() -> None:
    asked = request(RequestLine("L3", 1))  # final sale: the policy would decline it
    lines, exchange_lines = requests.build_lines(ORDER, asked, {}, "loop-9")
    change, value = requests.open_return(
        ORDER,
        asked,
        lines,
        exchange_lines,
        "loop-9",
        now=T0,
        actor="loop",
        refs=ExternalRefs(source="loop", source_return_id="LOOP-9"),
        imported={"source": "loop", "external_id": "LOOP-9"},
    )
    assert value == eur("5.00")
    requests.imported(change, HELPDESK, source="loop", external_id="LOOP-9")
    assert change.record.state == ("approved", "no_exchange")
    assert work(change) == ["create_warehouse_return"]
    assert events(change) == ["imported", "requested", "check", "auto_approve"]
    assert change.history[0].payload == {"source": "loop", "external_id": "LOOP-9"}
    assert change.history[2].payload == {"decision": "approve", "decided_by": "loop"}
    first = change.effects[0]
    assert isinstance(first, fx.Publish)
    assert (first.payload["source"], first.payload["external_id"]) == ("loop", "LOOP-9")


def test_upsell_exchange_waits_for_the_exact_balance() -> None:
    change = opened(RequestLine("L1", 1, outcome=Exchange("v-tee-XL", unit_price=eur("55.00"))))
    assert change.record.state == ("approved", "awaiting_payment")
    assert work(change) == [
        "create_label",
        "create_warehouse_return",
        "hold_exchange",
        "charge_balance",
    ]
    assert only(change, fx.ChargeBalance).amount == eur("15.00")
    assert change.history[-1].payload == {"balance_due": "15.00 EUR"}


def test_quote_is_what_every_unit_accepted_would_settle_to() -> None:
    asked = request(
        RequestLine("L1", 1, outcome=Exchange("v-tee-XL", unit_price=eur("55.00"))),
        RequestLine("L2", 1),
    )
    lines, exchange_lines = requests.build_lines(ORDER, asked, {}, "q")
    quote = requests.quote(ORDER, lines, exchange_lines, FEES)
    # cap 30.00 - 10 % restocking 3.00 - shipping 4.95 = 22.05; the tee is exchanged (waived)
    # for 15.00 more, taken from that refund (one return either pays out or charges): 7.05
    assert quote.refund == eur("7.05")
    assert quote.balance_due == eur("0.00")
    assert quote.restocking_fee == eur("3.00")


def test_returnless_keep_completes_at_once_with_a_refund() -> None:
    change = opened(RequestLine("L2", 1, outcome=Keep()))
    assert change.record.state == ("refunded", "no_exchange")
    assert change.record.completed_at == T0
    assert work(change) == ["issue_refund"]
    refund = only(change, fx.IssueRefund)
    assert refund.amount == eur("30.00")
    assert refund.lines == (LineQuantity("L2", 1),)
    assert refund.covers == (("r1-1", 1),)
    assert change.record.lines[0].settled == 1
    assert events(change)[-2:] == ["settled", "refund"]


def test_issue_label_buys_another_label_only_before_the_parcel_moves() -> None:
    change = then(labelled_refund())
    requests.issue_label(change)
    assert kinds(change) == ["create_label"]
    assert events(change) == ["label_requested"]
    assert change.record.state == ("label_sent", "no_exchange")
    moving = applied(labelled_refund(), HELPDESK, scan(CarrierStatus.PICKED_UP))
    late = then(moving)
    with pytest.raises(InvalidTransition) as raised:
        requests.issue_label(late)
    assert (raised.value.state, raised.value.event) == (("in_transit", "no_exchange"), "send_label")
    assert not late.changed


# -- carrier ---------------------------------------------------------------------------------


def test_carrier_pick_up_puts_the_parcel_in_transit() -> None:
    change = applied(labelled_refund(), HELPDESK, scan(CarrierStatus.PICKED_UP))
    assert change.record.state == ("in_transit", "no_exchange")
    assert topics(change) == ["carrier/picked_up"]
    assert work(change) == []
    assert change.history[0].payload == {"carrier_event": "scan-1"}


def test_a_parcel_in_transit_sent_back_cancels_the_return_by_default() -> None:
    picked = applied(labelled_refund(), HELPDESK, scan(CarrierStatus.PICKED_UP))
    rto = applied(picked, HELPDESK, scan(CarrierStatus.RETURN_TO_ORIGIN, "scan-2"))
    assert rto.record.state == ("cancelled", "no_exchange")
    assert work(rto) == ["void_label", "cancel_warehouse_return"]  # and no refund
    assert topics(rto) == ["carrier/rto", "returns/cancel"]
    assert templates(rto) == ["return_to_origin"]


def test_a_return_to_origin_after_delivery_goes_to_a_person() -> None:
    delivered = applied(labelled_refund(), HELPDESK, scan(CarrierStatus.DELIVERED))
    assert delivered.record.state == ("delivered", "no_exchange")
    assert topics(delivered) == ["returns/update"]
    rto = applied(delivered, HELPDESK, scan(CarrierStatus.RETURN_TO_ORIGIN, "scan-2"))
    assert rto.record.state == ("needs_review", "no_exchange")  # it reached the warehouse
    assert work(rto) == []


def test_a_return_to_origin_goes_to_a_person_when_the_policy_says_review() -> None:
    review_rto = ReturnPolicy(on_return_to_origin=ReturnToOrigin.REVIEW)
    delivered = applied(labelled_refund(), review_rto, scan(CarrierStatus.DELIVERED))
    rto = applied(delivered, review_rto, scan(CarrierStatus.RETURN_TO_ORIGIN, "scan-2"))
    assert rto.record.state == ("needs_review", "no_exchange")
    assert rto.record.review_reasons == ("parcel returned to origin",)
    assert topics(rto) == ["carrier/rto"]
    assert work(rto) == []


def test_a_return_to_origin_after_an_instant_release_captures_the_authorization() -> None:
    rto = applied(instant_released(), INSTANT, scan(CarrierStatus.RETURN_TO_ORIGIN, "scan-9"))
    assert rto.record.state == ("cancelled", "released")
    capture = only(rto, fx.CapturePayment)
    assert capture.amount == eur("40.00")  # the T-shirt paid 40.00 in this order
    assert rto.record.authorization_settled is True


def test_carrier_scan_not_allowed_now_is_ignored_with_the_reason() -> None:
    closed = moved(labelled_refund(), "closed")
    for status, why in (
        (CarrierStatus.PICKED_UP, "picked up while closed"),
        (CarrierStatus.DELIVERED, "delivered while closed"),
        (CarrierStatus.RETURN_TO_ORIGIN, "return to origin while closed"),
    ):
        change = then(closed)
        assert carrier.carrier_update(change, scan(status, "late"), HELPDESK) == why
        assert change.record.state == ("closed", "no_exchange")
        assert change.effects == []
        (entry,) = change.history
        assert entry.event == "ignored"
        assert entry.payload == {"fact": "CarrierUpdate", "id": "late", "why": why}
        assert entry.source == entry.target == ("closed", "no_exchange")


def test_instant_exchange_is_released_once_the_payment_is_authorized() -> None:
    change = applied(shipped_exchange(INSTANT), INSTANT, scan(CarrierStatus.PICKED_UP))
    assert change.record.state == ("in_transit", "on_hold")  # not before the fallback
    authorize = only(change, fx.AuthorizePayment)
    assert (authorize.amount, authorize.hold_tag) == (eur("40.00"), "hold-order")
    assert events(change) == ["hand_in", "instant_exchange_authorizing"]
    released = answered(change, authorize, PaymentReceipt("AUTH-1", authorize.amount))
    assert released.record.state == ("in_transit", "released")
    assert released.record.refs.payment_authorization_id == "AUTH-1"
    release = only(released, fx.ReleaseExchange)
    assert (release.hold_tag, release.attempt) == ("hold-order", 1)
    assert events(released)[-1] == "release_exchange"


def test_exchange_released_on_close_is_not_released_on_hand_in() -> None:
    change = applied(shipped_exchange(SMARTPACK), SMARTPACK, scan(CarrierStatus.PICKED_UP))
    assert change.record.state == ("in_transit", "on_hold")
    assert work(change) == []


def test_refund_trigger_on_delivered_pays_every_unit_at_delivery_not_at_pick_up() -> None:
    policy = ReturnPolicy(refund_trigger=RefundTrigger.ON_DELIVERED)
    picked = applied(labelled_refund(policy), policy, scan(CarrierStatus.PICKED_UP))
    assert work(picked) == []
    delivered = applied(picked, policy, scan(CarrierStatus.DELIVERED, "scan-2"))
    assert delivered.record.state == ("delivered", "no_exchange")
    refund = only(delivered, fx.IssueRefund)
    assert refund.amount == eur("80.00")
    assert refund.covers == (("r1-1", 2),)
    assert delivered.record.lines[0].settled == 2
    assert delivered.record.completed_at is None
    assert events(delivered) == ["deliver", "refund_trigger", "settled"]
    assert delivered.history[1].payload == {"trigger": "delivered"}


def test_refund_trigger_on_handed_in_pays_at_pick_up_but_never_for_an_exchange() -> None:
    policy = ReturnPolicy(refund_trigger=RefundTrigger.ON_HANDED_IN)
    refunded = applied(labelled_refund(policy), policy, scan(CarrierStatus.PICKED_UP))
    assert only(refunded, fx.IssueRefund).amount == eur("80.00")
    exchanged = applied(shipped_exchange(policy), policy, scan(CarrierStatus.PICKED_UP))
    assert work(exchanged) == []
    assert exchanged.record.lines[0].settled == 0


# -- warehouse -------------------------------------------------------------------------------


def test_receipt_with_qc_pass_and_fail_counts_units_restocks_and_completes() -> None:
    in_transit = applied(labelled_refund(), HELPDESK, scan(CarrierStatus.PICKED_UP))
    change = applied(
        in_transit,
        HELPDESK,
        receipt(
            ReceivedLine(line_id="L1", quantity=1),
            ReceivedLine(
                line_id="r1-1",
                quantity=1,
                qc=QcResult.FAIL,
                condition=ItemCondition.DAMAGED,
                note="torn seam",
            ),
        ),
    )
    (line,) = change.record.lines
    assert (line.received, line.accepted, line.rejected, line.restocked, line.settled) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert line.condition is ItemCondition.DAMAGED
    assert line.qc_notes == ("torn seam",)
    assert work(change) == ["issue_refund", "restock"]
    assert only(change, fx.Restock).lines == (LineQuantity("L1", 1),)
    refund = only(change, fx.IssueRefund)
    assert (refund.amount, refund.covers) == (eur("40.00"), (("r1-1", 1),))
    assert change.record.state == ("refunded", "no_exchange")
    assert change.record.completed_at == change.now
    assert change.history[0].payload == {"received": "L1: 1 pass, 1 fail"}
    assert templates(change) == ["item_received"]


def test_receipt_dispositions_decide_restock_and_missing_counts_as_rejected() -> None:
    change = applied(
        labelled_refund(SMARTPACK),
        SMARTPACK,
        receipt(
            ReceivedLine(line_id="L1", quantity=1, disposition=Disposition.NOT_RESTOCKED),
            ReceivedLine(line_id="L1", quantity=1, disposition=Disposition.MISSING),
        ),
    )
    (line,) = change.record.lines
    assert (line.received, line.accepted, line.rejected, line.restocked) == (2, 1, 1, 0)
    assert work(change) == []  # nothing restocked; SmartPack waits for Finished
    assert change.record.state == ("item_received", "no_exchange")


def test_receipt_of_more_units_than_expected_is_refused_and_changes_nothing() -> None:
    change = then(labelled_refund())
    before = change.record
    with pytest.raises(InvalidPayload) as raised:
        warehouse.receipt(change, receipt(ReceivedLine(line_id="L1", quantity=3)), HELPDESK)
    assert (raised.value.field, raised.value.value) == ("lines[0].quantity", 3)
    assert raised.value.reason == "line r1-1 expects 2 more unit(s)"
    assert change.record is before
    assert not change.changed


def test_receipt_over_quantity_in_two_parts_names_the_lines_first_part() -> None:
    change = then(labelled_refund())
    parts = receipt(ReceivedLine(line_id="L1", quantity=1), ReceivedLine(line_id="L1", quantity=2))
    with pytest.raises(InvalidPayload) as raised:
        warehouse.receipt(change, parts, HELPDESK)
    assert (raised.value.field, raised.value.value) == ("lines[0].quantity", 1)
    assert raised.value.reason == "line r1-1 expects 2 more unit(s)"
    assert not change.changed


def test_receipt_naming_a_line_the_return_lacks_is_refused() -> None:
    change = then(labelled_refund())
    with pytest.raises(InvalidPayload) as raised:
        warehouse.receipt(
            change,
            receipt(ReceivedLine(line_id="L1", quantity=1), ReceivedLine(line_id="L2", quantity=1)),
            HELPDESK,
        )
    assert (raised.value.field, raised.value.value) == ("lines[1].line_id", "L2")
    assert not change.changed


def test_receipt_after_the_return_moved_on_is_ignored() -> None:
    change = then(moved(labelled_refund(), "cancelled"))
    why = warehouse.receipt(change, receipt(ReceivedLine(line_id="L1", quantity=1)), HELPDESK)
    assert why == "receipt while cancelled"
    assert events(change) == ["ignored"]
    assert change.record.lines[0].received == 0


def test_receipt_on_received_trigger_pays_only_accepted_units_before_completion() -> None:
    policy = ReturnPolicy(refund_trigger=RefundTrigger.ON_RECEIVED)
    change = applied(
        labelled_refund(policy), policy, receipt(ReceivedLine(line_id="L1", quantity=1))
    )
    assert change.record.state == ("item_received", "no_exchange")
    assert only(change, fx.IssueRefund).amount == eur("40.00")
    assert change.record.lines[0].settled == 1
    assert change.record.completed_at is None


def test_warehouse_finished_completes_and_releases_the_exchange() -> None:
    received = applied(
        applied(shipped_exchange(), SMARTPACK, scan(CarrierStatus.PICKED_UP)),
        SMARTPACK,
        receipt(ReceivedLine(line_id="L1", quantity=1)),
    )
    assert received.record.state == ("item_received", "on_hold")
    assert work(received) == ["restock"]
    change = applied(received, SMARTPACK, finished())
    assert change.record.state == ("closed", "released")
    assert kinds(change) == ["release_exchange", "publish", "notify"]
    assert only(change, fx.ReleaseExchange).hold_tag == "hold-order"
    assert events(change) == ["settled", "release_exchange", "close"]
    assert change.history[1].payload == {"why": "return completed"}
    assert change.record.lines[0].settled == 1
    assert change.record.completed_at == change.now
    assert topics(change) == ["returns/close"]


def test_warehouse_finished_on_a_short_receipt_flags_once() -> None:
    received = applied(
        labelled_refund(SMARTPACK), SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=1))
    )
    change = applied(received, SMARTPACK, finished())
    assert change.record.state == ("needs_review", "no_exchange")
    assert change.record.review_reasons == ("warehouse finished a short receipt: L1: 1/2",)
    assert work(change) == []
    again = then(change)
    why = warehouse.finished(again, finished("fin-2"), SMARTPACK)
    assert why == "short receipt (L1: 1/2) already in review"
    assert events(again) == ["ignored"]


def test_warehouse_finished_before_anything_was_received_is_ignored() -> None:
    change = then(labelled_refund(SMARTPACK))
    why = warehouse.finished(change, finished(), SMARTPACK)
    assert why == "warehouse finished while label_sent"
    assert change.record.state == ("label_sent", "no_exchange")
    assert change.effects == []


# -- facts: parked until the return can use them --------------------------------------------

IN_REVIEW = ReturnPolicy(auto_approve_limit=eur("50.00"))  # two T-shirts (80.00) wait for a person


def history(change: Change) -> list[tuple[str, dict[str, Any]]]:
    return [(entry.event, dict(entry.payload)) for entry in change.history]


def test_a_scan_before_approval_is_parked_and_applied_by_the_approval() -> None:
    """Seed 001: the carrier picks the parcel up while an agent still reviews the return."""
    waiting = then(opened(RequestLine("L1", 2), policy=IN_REVIEW))
    assert facts.receive(waiting, scan(CarrierStatus.PICKED_UP), IN_REVIEW) == (
        "parked",
        "picked_up while pending_review",
    )
    assert waiting.record.state == ("pending_review", "no_exchange")
    (parked,) = waiting.record.parked
    assert (parked.kind, parked.status, parked.event_id) == (
        "carrier",
        CarrierStatus.PICKED_UP.value,
        "scan-1",
    )
    assert history(waiting) == [
        ("parked", {"fact": "picked_up", "id": "scan-1", "why": "picked_up while pending_review"})
    ]
    assert waiting.effects == []
    approved = then(waiting, actor="agent")
    requests.approve(approved, IN_REVIEW)
    facts.drain(approved, IN_REVIEW)
    assert approved.record.state == ("in_transit", "no_exchange")
    assert approved.record.parked == ()
    assert events(approved) == ["approve", "hand_in", "unparked"]
    assert approved.history[-1].payload == {"fact": "picked_up", "id": "scan-1"}
    assert work(approved) == ["create_label", "create_warehouse_return"]


def test_finished_before_the_receipt_waits_and_completes_with_it() -> None:
    """Seed 000: SmartPack's Finished comes before its receipt; the return closes once both
    are in, in one change."""
    labelled = then(labelled_refund(SMARTPACK))
    assert facts.receive(labelled, finished(), SMARTPACK) == (
        "parked",
        "finished while label_sent",
    )
    assert labelled.record.state == ("label_sent", "no_exchange")
    assert [parked.kind for parked in labelled.record.parked] == ["finished"]
    received = then(labelled)
    assert facts.receive(received, receipt(ReceivedLine(line_id="L1", quantity=2)), SMARTPACK) == (
        "applied",
        "",
    )
    assert received.record.state == ("refunded", "no_exchange")
    assert received.record.parked == ()
    assert events(received) == ["receive", "settled", "refund", "unparked"]
    assert work(received) == ["restock", "issue_refund"]
    assert only(received, fx.IssueRefund).amount == eur("80.00")


def test_finished_on_a_short_receipt_flags_and_waits_for_the_rest() -> None:
    """Seed 000, partial receipt: Finished on a short receipt sends the return to a person
    and stays parked; the missing unit's receipt then completes it."""
    short = applied(
        labelled_refund(SMARTPACK), SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=1))
    )
    change = then(short)
    assert facts.receive(change, finished(), SMARTPACK) == (
        "applied",
        "finished while item_received",
    )
    assert change.record.state == ("needs_review", "no_exchange")
    assert change.record.review_reasons == ("warehouse finished a short receipt: L1: 1/2",)
    assert [parked.kind for parked in change.record.parked] == ["finished"]
    rest = then(change)
    fact = receipt(ReceivedLine(line_id="L1", quantity=1), event_id="wh-2")
    assert facts.receive(rest, fact, SMARTPACK) == ("applied", "")
    assert rest.record.state == ("refunded", "no_exchange")
    assert rest.record.parked == ()
    assert work(rest) == ["restock", "issue_refund"]


def test_a_receipt_for_more_units_than_are_to_come_is_refused_even_when_it_would_wait() -> None:
    """Before approval, as after it: more units than the return expects is bad data, refused
    now with the field; units in a receipt parked already are no longer to come."""
    waiting = then(opened(RequestLine("L1", 2), policy=IN_REVIEW))
    with pytest.raises(InvalidPayload) as raised:
        facts.receive(waiting, receipt(ReceivedLine(line_id="L1", quantity=3)), IN_REVIEW)
    assert (raised.value.field, raised.value.value) == ("lines[0].quantity", 3)
    assert waiting.record.parked == ()
    first = receipt(ReceivedLine(line_id="L1", quantity=2))
    assert facts.receive(waiting, first, IN_REVIEW) == ("parked", "receipt while pending_review")
    assert warehouse.units_to_come(waiting.record, waiting.record.lines[0]) == 0
    again = receipt(ReceivedLine(line_id="L1", quantity=1), event_id="wh-2")
    with pytest.raises(InvalidPayload, match="expects 0 more unit"):
        facts.receive(waiting, again, IN_REVIEW)
    assert [fact.event_id for fact in waiting.record.parked] == ["wh-1"]


def test_a_parked_receipt_that_turns_out_wrong_is_dropped_with_the_reason() -> None:
    """A receipt parked before approval whose units came otherwise meanwhile: the approval
    still goes through; the receipt is dropped and the history says why."""
    waiting = then(opened(RequestLine("L1", 2), policy=IN_REVIEW))
    fact = receipt(ReceivedLine(line_id="L1", quantity=2))
    assert facts.receive(waiting, fact, IN_REVIEW) == ("parked", "receipt while pending_review")
    approved = then(waiting, actor="agent")
    line = approved.record.lines[0]
    approved.update(lines=(attrs.evolve(line, received=1, rejected=1),))  # one came otherwise
    requests.approve(approved, IN_REVIEW)
    facts.drain(approved, IN_REVIEW)
    assert approved.record.state == ("approved", "no_exchange")
    assert approved.record.parked == ()
    assert approved.record.lines[0].received == 1
    assert history(approved)[-1] == (
        "ignored",
        {
            "fact": "WarehouseReceipt",
            "id": "wh-1",
            "why": "parked receipt while pending_review, then refused: lines[0].quantity=2: "
            "line r1-1 expects 1 more unit(s)",
        },
    )


def test_a_receipt_naming_a_line_the_return_lacks_is_refused_even_when_it_would_wait() -> None:
    waiting = then(opened(RequestLine("L1", 2), policy=IN_REVIEW))
    with pytest.raises(InvalidPayload) as raised:
        facts.receive(waiting, receipt(ReceivedLine(line_id="L9", quantity=1)), IN_REVIEW)
    assert (raised.value.field, raised.value.value) == ("lines[0].line_id", "L9")
    assert not waiting.changed
    assert waiting.record.parked == ()


def test_a_fact_the_return_never_uses_is_ignored_not_parked() -> None:
    """A pickup scan after delivery (a stage the parcel passed), Finished on a cancelled
    return: recorded as ignored with why, nothing parked, nothing planned."""
    delivered = then(applied(labelled_refund(), HELPDESK, scan(CarrierStatus.DELIVERED)))
    late = scan(CarrierStatus.PICKED_UP, "scan-0")
    assert facts.receive(delivered, late, HELPDESK) == ("ignored", "picked up while delivered")
    cancelled = then(moved(labelled_refund(), "cancelled"))
    assert facts.receive(cancelled, finished(), HELPDESK) == (
        "ignored",
        "warehouse finished while cancelled",
    )
    for change in (delivered, cancelled):
        assert change.record.parked == ()
        assert events(change) == ["ignored"]
        assert change.effects == []


def test_a_parked_fact_stands_for_the_fact_that_came() -> None:
    waiting = then(opened(RequestLine("L1", 2), policy=IN_REVIEW))
    fact = receipt(
        ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL, condition=ItemCondition.DAMAGED)
    )
    facts.receive(waiting, fact, IN_REVIEW)
    (parked,) = waiting.record.parked
    assert facts.parked_event(waiting, parked) == fact
    scans = (CarrierStatus.PICKED_UP, CarrierStatus.DELIVERED, CarrierStatus.RETURN_TO_ORIGIN)
    assert [facts.kind_of(scan(status)) for status in scans] == [
        "picked_up",
        "delivered",
        "returned_to_origin",
    ]
    assert (facts.kind_of(fact), facts.kind_of(finished())) == ("receipt", "finished")


# -- completion ------------------------------------------------------------------------------


def test_completion_keeps_restocking_and_shipping_fees_from_the_refund() -> None:
    change = applied(labelled_refund(FEES), FEES, receipt(ReceivedLine(line_id="L1", quantity=2)))
    refund = only(change, fx.IssueRefund)
    # 80.00 - 10 % restocking (8.00) - return shipping 4.95 = 67.05
    assert refund.amount == eur("67.05")
    assert (refund.restocking, refund.shipping) == (eur("8.00"), eur("4.95"))
    assert change.record.restocking_fees == eur("8.00")
    assert change.record.return_shipping_fee == eur("4.95")
    assert change.history[-2].payload == {
        "refund": "67.05 EUR",
        "restocking_fee": "8.00 EUR",
        "return_shipping_fee": "4.95 EUR",
        "documents": "refunded_credit_memo 67.05 EUR",
    }


def test_a_payout_given_up_is_reopened_under_its_own_key_by_the_next_completion() -> None:
    paid = applied(labelled_refund(FEES), FEES, receipt(ReceivedLine(line_id="L1", quantity=2)))
    refund = only(paid, fx.IssueRefund)
    given_up = then(paid)
    results.escalate(given_up, refund, "timeout")
    assert given_up.record.payouts_given_up == (refund.key,)
    assert given_up.record.lines[0].settled == 2  # the units stay settled: it may have paid
    assert given_up.record.restocking_fees is not None
    closed = then(given_up, actor="agent")
    completion.close_by_hand(closed, FEES)
    assert closed.reopened == [refund.key]
    assert work(closed) == []  # nothing planned under a new key
    assert closed.record.payouts_given_up == ()
    assert closed.record.state == ("refunded", "no_exchange")  # closes when it is confirmed
    confirmed = then(closed, outbox=queued(refund))
    results.apply_result(confirmed, refund, RefundReceipt("RF-1", refund.amount))
    assert confirmed.record.state == ("closed", "no_exchange")


def test_refund_and_store_credit_close_only_once_both_are_confirmed() -> None:
    received = applied(
        opened(RequestLine("L1", 1), RequestLine("L2", 1, outcome=StoreCredit())),
        HELPDESK,
        receipt(ReceivedLine(line_id="L1", quantity=1), ReceivedLine(line_id="L2", quantity=1)),
    )
    assert work(received) == ["issue_refund", "issue_store_credit", "restock"]
    refund, credit = only(received, fx.IssueRefund), only(received, fx.IssueStoreCredit)
    assert (refund.amount, credit.amount) == (eur("40.00"), eur("30.00"))
    assert received.record.state == ("refunded", "no_exchange")

    both_pending = then(received, outbox=queued(refund, credit))
    results.apply_result(both_pending, refund, RefundReceipt("RF-1", eur("40.00")))
    assert both_pending.record.state == ("refunded", "no_exchange")
    assert both_pending.record.refs.refund_ids == ("RF-1",)

    credit_done = then(received, outbox=(*queued(refund), *queued(credit, status="done", first=2)))
    results.apply_result(credit_done, refund, RefundReceipt("RF-1", eur("40.00")))
    assert credit_done.record.state == ("closed", "no_exchange")
    assert topics(credit_done) == ["refunds/create", "returns/close"]


def test_close_if_settled_waits_for_another_pending_payout_and_for_completion() -> None:
    paid = applied(labelled_refund(), HELPDESK, receipt(ReceivedLine(line_id="L1", quantity=2)))
    refund = only(paid, fx.IssueRefund)
    other = attrs.evolve(refund, key="shop-d/r1/9/0/issue_store_credit")
    waiting = then(paid, outbox=queued(refund, other))
    completion.close_if_settled(waiting, delivered=refund.key)
    assert not waiting.changed
    closing = then(paid, outbox=queued(refund))
    completion.close_if_settled(closing, delivered=refund.key)
    assert closing.record.state == ("closed", "no_exchange")
    assert closing.record.review_reasons == ()
    not_completed = then(moved(paid, "refunded", completed_at=None), outbox=queued(refund))
    completion.close_if_settled(not_completed, delivered=refund.key)
    assert not not_completed.changed


def test_completion_after_an_early_refund_and_a_qc_fail_goes_to_a_person() -> None:
    policy = ReturnPolicy(refund_trigger=RefundTrigger.ON_HANDED_IN)
    picked = applied(labelled_refund(policy), policy, scan(CarrierStatus.PICKED_UP))
    change = applied(
        picked,
        policy,
        receipt(
            ReceivedLine(line_id="L1", quantity=1),
            ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL),
        ),
    )
    assert change.record.state == ("needs_review", "no_exchange")
    assert change.record.review_reasons == ("paid before QC rejected units: L1 (1)",)
    assert work(change) == ["restock"]
    assert change.record.completed_at is None


def test_close_by_hand_from_review_settles_what_is_left() -> None:
    received = applied(
        labelled_refund(SMARTPACK), SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=1))
    )
    flagged = applied(received, SMARTPACK, finished())  # short: needs_review
    change = then(flagged, actor="agent")
    completion.close_by_hand(change, SMARTPACK, unreceived="nothing")
    assert change.record.state == ("refunded", "no_exchange")
    assert only(change, fx.IssueRefund).amount == eur("40.00")
    assert change.record.lines[0].settled == 1
    refused = moved(opened(RequestLine("L1", 1)), "in_transit")
    with pytest.raises(InvalidTransition):
        completion.close_by_hand(refused, SMARTPACK)


def test_completion_cancels_an_exchange_whose_item_failed_qc() -> None:
    change = applied(
        shipped_exchange(HELPDESK),
        HELPDESK,
        receipt(ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL)),
    )
    assert change.record.state == ("closed", "exchange_cancelled")
    assert work(change) == ["cancel_exchange"]
    assert only(change, fx.CancelExchange).exchange_line_ids == ("r1-1-x",)
    assert events(change) == ["receive", "cancel_exchange", "close"]
    assert change.record.lines[0].settled == 0


def test_qc_fail_after_an_instant_release_captures_the_authorization() -> None:
    received = applied(
        instant_released(),
        INSTANT,
        receipt(ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL)),
    )
    change = applied(received, INSTANT, finished())
    assert change.record.state == ("closed", "released")
    assert only(change, fx.CapturePayment).amount == eur("40.00")
    assert change.record.authorization_settled is True


def test_qc_fail_after_a_release_without_an_authorization_goes_to_a_person() -> None:
    released = then(moved(shipped_exchange(), "in_transit", "released"))
    received = applied(
        released, SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL))
    )
    change = applied(received, SMARTPACK, finished())
    assert change.record.state == ("needs_review", "released")
    assert change.record.review_reasons == (
        "QC failed on an exchanged item after the exchange was released",
    )
    assert work(change) == []


# -- exchange --------------------------------------------------------------------------------


def test_upsell_paid_holds_the_exchange_but_does_not_release_it() -> None:
    first = opened(RequestLine("L1", 1, outcome=Exchange("v-tee-XL", unit_price=eur("55.00"))))
    held = answered(first, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1",)))
    charged = answered(held, only(first, fx.ChargeBalance), PaymentReceipt("PAY-1", eur("15.00")))
    assert charged.record.state == ("approved", "on_hold")
    assert charged.record.balance_paid == eur("15.00")
    assert events(charged) == ["balance_charged", "pay_balance"]
    assert topics(charged) == ["payments/charge"]
    picked = applied(charged, HELPDESK, scan(CarrierStatus.PICKED_UP))
    assert picked.record.state == ("in_transit", "on_hold")
    done = applied(picked, HELPDESK, receipt(ReceivedLine(line_id="L1", quantity=1)))
    assert done.record.state == ("closed", "released")
    assert work(done) == ["release_exchange", "restock"]  # the balance paid for the new item
    assert done.record.balance_settled is True


def test_unpaid_upsell_at_completion_goes_to_a_person_then_pays_the_item_back() -> None:
    first = opened(RequestLine("L1", 1, outcome=Exchange("v-tee-XL", unit_price=eur("55.00"))))
    received = applied(first, HELPDESK, receipt(ReceivedLine(line_id="L1", quantity=1)))
    assert received.record.state == ("needs_review", "awaiting_payment")
    assert received.record.review_reasons == ("the exchange balance is not paid",)
    closing = then(received, actor="agent")
    completion.close_by_hand(closing, HELPDESK)
    assert closing.record.state == ("refunded", "exchange_cancelled")
    assert work(closing) == ["cancel_exchange", "issue_refund"]
    assert only(closing, fx.CancelExchange).exchange_line_ids == ("r1-1-x",)
    assert only(closing, fx.IssueRefund).amount == eur("40.00")


def test_exchange_for_less_refunds_the_difference_and_releases_the_item() -> None:
    """Seed 003, exchange + refund: a 40.00 T-shirt for a 30.00 one; the 10.00 left is
    refunded when the return completes, and the held item is released."""
    change = opened(
        RequestLine("L1", 1, outcome=Exchange("v-tee-S", sku="TEE-S", unit_price=eur("30.00")))
    )
    first = change
    change = answered(change, only(first, fx.CreateWarehouseReturn), WarehouseReturn("RMA-1"))
    change = answered(change, only(first, fx.CreateLabel), Label("TRK-1", "https://l/1"))
    change = answered(change, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1",)))
    change = applied(change, HELPDESK, scan(CarrierStatus.PICKED_UP))
    done = applied(change, HELPDESK, receipt(ReceivedLine(line_id="L1", quantity=1)))
    assert done.record.state == ("refunded", "released")
    assert work(done) == ["issue_refund", "release_exchange", "restock"]
    refund = only(done, fx.IssueRefund)
    assert (refund.amount, refund.covers) == (eur("10.00"), (("r1-1", 1),))
    assert done.history[1].payload["exchange_total"] == "30.00 EUR"


def test_hold_plans_nothing_without_pending_exchange_lines() -> None:
    change = then(opened(RequestLine("L1", 1)))
    exchange.hold(change, HELPDESK)
    exchange.cancel(change, why="nothing to cancel")
    exchange.release_if_instant(change, INSTANT)
    assert not change.changed
    assert change.record.state == ("approved", "no_exchange")


def test_release_and_cancel_plan_their_effects_and_move_the_exchange() -> None:
    held = shipped_exchange()
    refused = then(held)
    with pytest.raises(InvalidPayload, match="covering it"):
        exchange.release(refused, SMARTPACK, why="nothing to go on")
    released = then(held)
    exchange.release(released, SMARTPACK, why="agent", decided_by="agent:bo")
    assert released.record.state == ("label_sent", "released")
    assert kinds(released) == ["release_exchange"]
    assert released.history[-1].payload == {"why": "agent", "decided_by": "agent:bo"}
    cancelled = then(held)
    exchange.cancel(cancelled, why="changed mind")
    assert cancelled.record.state == ("label_sent", "exchange_cancelled")
    assert only(cancelled, fx.CancelExchange).exchange_line_ids == ("r1-1-x",)
    assert cancelled.history[-1].payload == {"why": "changed mind"}


def test_with_status_and_carried_pick_exchange_lines() -> None:
    record = shipped_exchange().finished()
    (line,) = record.exchange_lines
    assert (line.status, line.platform_item_id) == ("held", "P-1")
    assert exchange.with_status(record, None, "released", only="pending") == (line,)
    assert exchange.with_status(record, {"r1-1-x"}, "cancelled")[0].status == "cancelled"
    whole = attrs.evolve(record.lines[0], received=1, accepted=1)
    assert exchange.carried(record, [whole]) == [line]
    assert exchange.carried(record, record.lines) == []  # nothing of it came back
    failed = attrs.evolve(record.lines[0], rejected=1)
    assert exchange.carried(record, [failed]) == []


# -- cancellation ----------------------------------------------------------------------------


def test_cancel_voids_a_label_and_a_warehouse_return_still_in_the_outbox() -> None:
    first = opened(RequestLine("L1", 2))
    change = then(first, outbox=queued(*first.effects), actor="customer")
    cancellation.cancel(change, HELPDESK)
    assert change.record.state == ("cancelled", "no_exchange")
    assert kinds(change) == ["void_label", "cancel_warehouse_return", "publish", "notify"]
    void = change.effects[0]
    assert void.key == "shop-d/r1/2/0/void_label"
    label = only(first, fx.CreateLabel)
    assert (label.version, void.version) == (1, 2)  # planned after the label it voids
    assert topics(change) == ["returns/cancel"]
    assert templates(change) == ["return_cancelled"]


def test_cancel_with_nothing_planned_undoes_nothing() -> None:
    policy = ReturnPolicy(auto_approve=False)
    pending = opened(RequestLine("L1", 1), policy=policy)
    change = then(pending, outbox=queued(*pending.effects))
    cancellation.cancel(change, policy)
    assert change.record.state == ("cancelled", "no_exchange")
    assert work(change) == []


def test_cancel_winds_down_a_held_exchange_and_refunds_a_paid_balance() -> None:
    first = opened(RequestLine("L1", 1, outcome=Exchange("v-tee-XL", unit_price=eur("55.00"))))
    change = answered(first, only(first, fx.CreateWarehouseReturn), WarehouseReturn("RMA-1"))
    change = answered(change, only(first, fx.CreateLabel), Label("TRK-1", "https://l/1"))
    change = answered(change, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1",)))
    change = answered(change, only(first, fx.ChargeBalance), PaymentReceipt("PAY-1", eur("15.00")))
    cancelled = then(change)
    cancellation.cancel(cancelled, HELPDESK)
    assert cancelled.record.state == ("cancelled", "exchange_cancelled")
    assert work(cancelled) == [
        "void_label",
        "cancel_warehouse_return",
        "cancel_exchange",
        "refund_balance",
    ]
    assert only(cancelled, fx.RefundBalance).amount == eur("15.00")
    assert cancelled.record.balance_settled is True
    assert events(cancelled) == ["cancel", "cancel_exchange"]


def test_cancel_after_the_parcel_moved_is_refused() -> None:
    change = then(applied(labelled_refund(), HELPDESK, scan(CarrierStatus.PICKED_UP)))
    with pytest.raises(InvalidTransition) as raised:
        cancellation.cancel(change, HELPDESK)
    assert raised.value.event == "cancel"
    assert not change.changed


# -- review ----------------------------------------------------------------------------------


def test_flag_keeps_every_reason() -> None:
    change = then(labelled_refund())
    review.flag(change, "customer called")
    review.flag(change, "address changed")
    assert change.record.state == ("needs_review", "no_exchange")
    assert change.record.review_reasons == ("customer called", "address changed")
    assert topics(change) == ["returns/update", "returns/update"]
    with pytest.raises(InvalidPayload) as raised:
        review.flag(then(labelled_refund()), "")
    assert raised.value.field == "reason"


def test_reopen_a_closed_return_clears_its_completion() -> None:
    closed = moved(labelled_refund(), "closed", completed_at=T0)
    change = then(closed)
    review.reopen(change, "")
    assert change.record.state == ("needs_review", "no_exchange")
    assert change.record.review_reasons == ("reopened",)
    assert change.record.completed_at is None
    assert topics(change) == ["returns/reopen"]
    with_reason = then(closed)
    review.reopen(with_reason, "customer disputes refund")
    assert with_reason.record.review_reasons == ("customer disputes refund",)
    assert with_reason.history[0].payload == {"reason": "customer disputes refund"}


# -- reset -----------------------------------------------------------------------------------


def partial_receipt() -> Change:
    """Seed 000: two T-shirts refunded and a cap exchanged; one T-shirt came back."""
    first = opened(
        RequestLine("L1", 2), RequestLine("L2", 1, outcome=Exchange("v-cap-blue")), policy=SMARTPACK
    )
    change = answered(first, only(first, fx.CreateWarehouseReturn), WarehouseReturn("RMA-1"))
    change = answered(change, only(first, fx.CreateLabel), Label("TRK-1", "https://l/1"))
    change = answered(change, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1",)))
    return applied(change, SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=1)))


def test_reset_closes_the_return_and_opens_one_with_only_the_accepted_units() -> None:
    received = partial_receipt()
    assert received.record.state == ("item_received", "on_hold")
    parent = then(received, actor="agent")
    child = resets.reset(parent, SMARTPACK, "r2")

    assert parent.record.state == ("reset", "exchange_cancelled")
    assert parent.record.child_id == "r2"
    assert kinds(parent) == ["cancel_warehouse_return", "cancel_exchange", "publish"]
    assert only(parent, fx.CancelExchange).exchange_line_ids == ("r1-2-x",)
    assert events(parent) == ["reset_return", "cancel_exchange"]
    assert parent.history[1].payload == {"transferred_to": "r2", "cancelled": "r1-2-x"}

    assert (child.base, child.version, child.actor) == (0, 1, "agent")
    record = child.record
    assert (record.id, record.parent_id, record.state) == (
        "r2",
        "r1",
        ("item_received", "no_exchange"),
    )
    (line,) = record.lines
    assert (line.id, line.order_line_id, line.quantity) == ("r2-1", "L1", 1)
    assert (line.received, line.accepted, line.rejected, line.restocked, line.settled) == (
        1,
        1,
        0,
        1,
        0,
    )
    assert (line.unit_amounts, line.units) == ((eur("40.00"),), (0,))
    assert record.exchange_lines == ()
    assert record.refs == ExternalRefs(tracking_number="TRK-1")
    assert kinds(child) == ["create_warehouse_return", "publish"]
    created = only(child, fx.CreateWarehouseReturn)
    assert created.key == "shop-d/r2/1/0/create_warehouse_return"
    assert created.lines == (LineQuantity("L1", 1),)
    assert events(child) == ["created_by_reset"]


def test_reset_cancels_a_warehouse_return_only_planned_so_far() -> None:
    first = opened(RequestLine("L1", 2), policy=SMARTPACK)
    received = applied(first, SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=1)))
    without_outbox = then(received)
    resets.reset(without_outbox, SMARTPACK, "r2")
    assert work(without_outbox) == []
    with_outbox = then(received, outbox=queued(*first.effects))
    resets.reset(with_outbox, SMARTPACK, "r2")
    assert work(with_outbox) == ["cancel_warehouse_return"]
    assert with_outbox.record.state == ("reset", "no_exchange")


def test_reset_carries_a_clean_exchange_line_to_the_new_return() -> None:
    first = opened(
        RequestLine("L1", 2, outcome=Exchange("v-tee-L", quantity=2)),
        RequestLine("L2", 1),
        policy=SMARTPACK,
    )
    held = answered(first, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1",)))
    received = applied(held, SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=2)))
    parent = then(received)
    child = resets.reset(parent, SMARTPACK, "r2")
    assert parent.record.state == ("reset", "exchange_cancelled")
    assert work(parent) == []  # the exchange line moved, nothing cancelled on the platform
    assert parent.history[-1].payload == {"transferred_to": "r2", "cancelled": "none"}
    assert child.record.state == ("item_received", "on_hold")
    (item,) = child.record.exchange_lines
    assert (item.id, item.return_line_id, item.status) == ("r2-1-x", "r2-1", "held")
    assert (item.quantity, item.origin_id) == (2, "r1-1-x")
    assert child.record.refs.exchange_hold_id == "H-1"
    assert child.record.refs.warehouse_rma_id is None


def test_reset_cancels_an_exchange_whose_line_came_back_only_in_part() -> None:
    first = opened(RequestLine("L1", 2, outcome=Exchange("v-tee-L", quantity=2)), policy=SMARTPACK)
    held = answered(first, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1",)))
    received = applied(held, SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=1)))
    parent = then(received)
    child = resets.reset(parent, SMARTPACK, "r2")
    # two new items for one unit back would leak one: the exchange is cancelled
    assert work(parent) == ["cancel_exchange"]
    assert only(parent, fx.CancelExchange).exchange_line_ids == ("r1-1-x",)
    assert child.record.exchange_lines == ()
    assert child.record.lines[0].quantity == 1


def test_reset_with_nothing_accepted_is_refused_and_changes_nothing() -> None:
    received = applied(
        labelled_refund(SMARTPACK),
        SMARTPACK,
        receipt(ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL)),
    )
    change = then(received)
    with pytest.raises(InvalidPayload) as raised:
        resets.reset(change, SMARTPACK, "r2")
    assert (raised.value.field, raised.value.value) == ("lines", ["r1-1"])
    assert not change.changed
    assert change.record.state == ("item_received", "no_exchange")
    early = then(labelled_refund(SMARTPACK))
    with pytest.raises(InvalidTransition) as refused:
        resets.check(early)
    assert refused.value.event == "reset_return"


# -- timers ----------------------------------------------------------------------------------


def test_expiry_is_due_only_after_ship_within_days_from_the_last_approval() -> None:
    record = labelled_refund().finished()
    assert timers.approved_at(record) == T0
    deadline = T0 + timedelta(days=30)
    assert not timers.expiry_due(record, HELPDESK, deadline)
    assert timers.expiry_due(record, HELPDESK, deadline + timedelta(seconds=1))
    assert timers.expiry_due(record, ReturnPolicy(ship_within_days=7), T0 + timedelta(days=8))
    pending = opened(RequestLine("L1", 1), policy=ReturnPolicy(auto_approve=False)).finished()
    assert timers.approved_at(pending) is None
    assert not timers.expiry_due(pending, HELPDESK, T0 + timedelta(days=90))


def test_approved_at_is_the_last_approval() -> None:
    flagged = then(opened(RequestLine("L1", 1)))
    review.flag(flagged, "check address")
    approved = then(flagged)
    requests.approve(approved, HELPDESK)
    assert timers.approved_at(approved.finished()) == T0 + timedelta(hours=2)


def test_expire_winds_down_what_the_approval_set_in_motion() -> None:
    first = opened(RequestLine("L1", 2))
    change = then(first, outbox=queued(*first.effects), now=T0 + timedelta(days=31))
    timers.expire(change, HELPDESK)
    assert change.record.state == ("expired", "no_exchange")
    assert kinds(change) == ["void_label", "cancel_warehouse_return", "publish", "notify"]
    cancel = change.effects[2]
    assert isinstance(cancel, fx.Publish)
    assert (cancel.topic, cancel.payload["reason"]) == ("returns/cancel", "expired")
    assert templates(change) == ["return_expired"]
    assert change.history[0].payload == {"ship_within_days": 30}


def test_expire_gives_back_a_paid_balance() -> None:
    first = opened(RequestLine("L1", 1, outcome=Exchange("v-tee-XL", unit_price=eur("55.00"))))
    charged = answered(first, only(first, fx.ChargeBalance), PaymentReceipt("PAY-1", eur("15.00")))
    change = then(charged, outbox=queued(*first.effects))
    timers.expire(change, HELPDESK)
    assert change.record.state == ("expired", "exchange_cancelled")
    assert only(change, fx.RefundBalance).amount == eur("15.00")
    assert change.record.balance_settled is True


def released() -> Change:
    """Seed 000: the exchange released at completion (Finished), the return closed."""
    received = applied(
        shipped_exchange(), SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=1))
    )
    return applied(received, SMARTPACK, finished())


def releases(count: int, status: str = "done") -> tuple[OutboxEntry, ...]:
    release = only(released(), fx.ReleaseExchange)
    return queued(*(attrs.evolve(release, attempt=n + 1) for n in range(count)), status=status)


def test_release_check_is_due_once_every_release_was_answered() -> None:
    record = released().finished()
    assert record.state == ("closed", "released")
    assert timers.release_check_due(record, releases(1))
    assert timers.release_check_due(record, releases(1, status="failed"))
    assert not timers.release_check_due(record, releases(1, status="pending"))
    assert not timers.release_check_due(record, ())
    confirmed = attrs.evolve(record, release_confirmed=True)
    assert not timers.release_check_due(confirmed, releases(1))
    no_hold = attrs.evolve(record, refs=attrs.evolve(record.refs, exchange_hold_id=None))
    assert not timers.release_check_due(no_hold, releases(1))


def test_check_release_confirms_a_release_the_platform_honoured() -> None:
    change = then(released(), outbox=releases(1))
    timers.check_release(change, SMARTPACK, HoldStatus.RELEASED)
    assert change.record.release_confirmed is True
    assert change.effects == []
    assert change.history[0].payload == {"hold": "released"}


def test_check_release_releases_again_with_the_attempt_number() -> None:
    change = then(released(), outbox=releases(1))
    timers.check_release(change, SMARTPACK, HoldStatus.HELD)
    again = only(change, fx.ReleaseExchange)
    assert (again.attempt, again.hold_tag) == (2, "hold-order")
    assert change.record.release_confirmed is False
    assert change.history[0].payload == {"hold": "still held", "attempt": 2}
    third = then(released(), outbox=releases(2))
    timers.check_release(third, SMARTPACK, HoldStatus.HELD)
    assert only(third, fx.ReleaseExchange).attempt == 3


def test_check_release_sends_an_instant_exchange_to_a_person_after_release_tries() -> None:
    in_transit = instant_released()
    outbox = queued(
        *(attrs.evolve(only(in_transit, fx.ReleaseExchange), attempt=n + 1) for n in range(3)),
        status="done",
    )
    change = then(in_transit, outbox=outbox)
    timers.check_release(change, INSTANT, HoldStatus.HELD)
    assert timers.RELEASE_TRIES == 3
    assert change.record.state == ("needs_review", "released")
    assert change.record.review_reasons == (
        "the platform kept the exchange on hold after 3 releases",
    )
    assert change.record.release_confirmed is True
    assert work(change) == []


def test_check_release_on_a_closed_return_reopens_it_for_a_person_after_release_tries() -> None:
    change = then(released(), outbox=releases(3))
    timers.check_release(change, SMARTPACK, HoldStatus.HELD)
    assert change.record.state == ("needs_review", "released")
    assert change.record.review_reasons == (
        "the platform kept the exchange on hold after 3 releases",
    )
    assert work(change) == []
    assert change.record.release_confirmed is True


# -- results ---------------------------------------------------------------------------------


def test_label_result_sends_the_label_to_the_customer() -> None:
    first = opened(RequestLine("L1", 2))
    change = answered(first, only(first, fx.CreateLabel), Label("TRK-1", "https://l/1"))
    assert change.record.state == ("label_sent", "no_exchange")
    assert (change.record.refs.tracking_number, change.record.refs.label_url) == (
        "TRK-1",
        "https://l/1",
    )
    assert kinds(change) == ["notify", "publish"]
    notify = only(change, fx.Notify)
    assert notify.template == "label_sent"
    assert notify.context == {
        "return_id": "r1",
        "order_id": ORDER_ID,
        "tracking_number": "TRK-1",
        "label_url": "https://l/1",
    }


def test_label_result_after_the_parcel_moved_only_records_the_new_label() -> None:
    in_transit = applied(labelled_refund(), HELPDESK, scan(CarrierStatus.PICKED_UP))
    label = fx.CreateLabel(key="k", shop=SHOP, return_id="r1", order_id=ORDER_ID, version=3)
    change = answered(in_transit, label, Label("TRK-2", "https://l/2"))
    assert change.record.state == ("in_transit", "no_exchange")
    assert change.record.refs.tracking_number == "TRK-2"
    assert events(change) == ["label_created"]
    assert change.effects == []


def test_warehouse_and_hold_results_record_their_ids() -> None:
    first = opened(
        RequestLine("L1", 1, outcome=Exchange("v-tee-L")),
        RequestLine("L2", 1, outcome=Exchange("v-cap-blue")),
    )
    rma = answered(first, only(first, fx.CreateWarehouseReturn), WarehouseReturn("RMA-1"))
    assert rma.record.refs.warehouse_rma_id == "RMA-1"
    assert events(rma) == ["warehouse_return_created"]
    held = answered(rma, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1", "P-2")))
    assert held.record.refs.exchange_hold_id == "H-1"
    assert [(x.id, x.status, x.platform_item_id) for x in held.record.exchange_lines] == [
        ("r1-1-x", "held", "P-1"),
        ("r1-2-x", "held", "P-2"),
    ]
    assert topics(held) == ["exchanges/hold"]
    assert held.history[0].payload == {"hold": "H-1", "tag": "hold-order"}


def test_release_and_cancel_results_mark_the_exchange_lines() -> None:
    done = released()
    release = only(done, fx.ReleaseExchange)
    change = answered(done, release, None)
    assert [x.status for x in change.record.exchange_lines] == ["released"]
    assert topics(change) == ["exchanges/release"]
    assert templates(change) == ["exchange_released"]
    retry = answered(done, attrs.evolve(release, attempt=2), None)
    assert [x.status for x in retry.record.exchange_lines] == ["released"]
    assert retry.effects == []  # a retry is not news
    cancelled = answered(
        shipped_exchange(),
        fx.CancelExchange(
            key="k", shop=SHOP, return_id="r1", order_id=ORDER_ID, exchange_line_ids=("r1-1-x",)
        ),
        None,
    )
    assert [x.status for x in cancelled.record.exchange_lines] == ["cancelled"]
    assert topics(cancelled) == ["exchanges/cancel"]


def test_refund_result_closes_a_completed_return() -> None:
    paid = applied(labelled_refund(), HELPDESK, receipt(ReceivedLine(line_id="L1", quantity=2)))
    refund = only(paid, fx.IssueRefund)
    change = then(paid, outbox=queued(refund))
    results.apply_result(change, refund, RefundReceipt("RF-1", eur("80.00")))
    assert change.record.state == ("closed", "no_exchange")
    assert change.record.refs.refund_ids == ("RF-1",)
    assert events(change) == ["refund_issued", "close"]
    assert topics(change) == ["refunds/create", "returns/close"]
    assert templates(change) == ["refund_issued", "return_closed"]


def test_an_early_refund_result_does_not_close_the_return() -> None:
    policy = ReturnPolicy(refund_trigger=RefundTrigger.ON_HANDED_IN)
    picked = applied(labelled_refund(policy), policy, scan(CarrierStatus.PICKED_UP))
    refund = only(picked, fx.IssueRefund)
    change = then(picked, outbox=queued(refund))
    results.apply_result(change, refund, RefundReceipt("RF-1", eur("80.00")))
    assert change.record.state == ("in_transit", "no_exchange")
    assert change.record.refs.refund_ids == ("RF-1",)


def test_store_credit_result_records_the_credit_and_closes() -> None:
    paid = applied(
        opened(RequestLine("L2", 1, outcome=StoreCredit(bonus=eur("5.00")))),
        HELPDESK,
        receipt(ReceivedLine(line_id="L2", quantity=1)),
    )
    credit = only(paid, fx.IssueStoreCredit)
    assert credit.amount == eur("35.00")  # 30.00 and a 5.00 bonus
    assert paid.record.state == ("item_received", "no_exchange")  # no refund fired
    change = then(paid, outbox=queued(credit))
    results.apply_result(change, credit, CreditReceipt("GC-1", eur("35.00")))
    assert change.record.refs.credit_ids == ("GC-1",)
    assert change.record.state == ("closed", "no_exchange")


def test_escalating_a_payout_flags_and_a_close_reopens_it_instead_of_paying_again() -> None:
    paid = applied(labelled_refund(), HELPDESK, receipt(ReceivedLine(line_id="L1", quantity=2)))
    refund = only(paid, fx.IssueRefund)
    change = then(paid)
    results.escalate(change, refund, "card expired")
    assert change.record.state == ("needs_review", "no_exchange")
    assert change.record.review_reasons == ("issue_refund failed: card expired",)
    assert change.record.lines[0].settled == 2
    again = then(change, actor="agent")
    completion.close_by_hand(again, HELPDESK)
    assert [e for e in again.effects if isinstance(e, fx.IssueRefund)] == []
    assert again.reopened == [refund.key]
    assert again.record.lines[0].settled == 2


def test_escalating_on_a_closed_return_reopens_and_on_a_cancelled_one_only_notes() -> None:
    done = released()
    release = only(done, fx.ReleaseExchange)
    reopened = then(done)
    results.escalate(reopened, release, "timeout")
    assert reopened.record.state == ("needs_review", "released")
    assert reopened.record.review_reasons == ("release_exchange failed: timeout",)
    assert reopened.record.completed_at is None  # as review.reopen leaves it
    assert topics(reopened) == ["returns/reopen"]
    cancelled = then(moved(labelled_refund(), "cancelled"))
    void = fx.VoidLabel(key="k", shop=SHOP, return_id="r1", order_id=ORDER_ID)
    results.escalate(cancelled, void, "gone")
    assert cancelled.record.state == ("cancelled", "no_exchange")
    assert events(cancelled) == ["effect_failed"]
    assert cancelled.history[0].payload == {"effect": "void_label", "error": "gone"}


def test_results_of_effects_without_write_back_change_nothing() -> None:
    paid = applied(labelled_refund(), HELPDESK, receipt(ReceivedLine(line_id="L1", quantity=2)))
    change = then(paid)
    results.apply_result(change, only(paid, fx.Restock), None)
    assert not change.changed
    assert fx.Restock not in results.NEEDS_WRITE_BACK
    assert sorted(t.kind for t in results.NEEDS_OUTBOX) == [
        "issue_refund",
        "issue_store_credit",
        "process_platform_return",  # native mode's refund: it closes the return too
    ]


# -- no I/O ----------------------------------------------------------------------------------


def lifecycle() -> tuple[ReturnRecord, ...]:
    """Seed 000 end to end on decisions alone: request, results, hand-in, partial receipt,
    reset, the new return finished (its exchange released), the release confirmed."""
    first = opened(
        RequestLine("L1", 2, outcome=Exchange("v-tee-L", quantity=2)),
        RequestLine("L2", 1),
        policy=SMARTPACK,
    )
    change = answered(first, only(first, fx.CreateWarehouseReturn), WarehouseReturn("RMA-1"))
    change = answered(change, only(first, fx.CreateLabel), Label("TRK-1", "https://l/1"))
    change = answered(change, only(first, fx.HoldExchange), ExchangeHold("H-1", ("P-1",)))
    change = applied(change, SMARTPACK, scan(CarrierStatus.PICKED_UP))
    change = applied(change, SMARTPACK, receipt(ReceivedLine(line_id="L1", quantity=2)))
    parent = then(change, outbox=queued(*first.effects, status="done"))
    child = resets.reset(parent, SMARTPACK, "r2")
    child = answered(child, only(child, fx.CreateWarehouseReturn), WarehouseReturn("RMA-2"))
    ended = applied(child, SMARTPACK, finished())
    release = only(ended, fx.ReleaseExchange)
    checked = then(ended, outbox=queued(release, status="done"))
    assert timers.release_check_due(ended.finished(), checked.outbox)
    timers.check_release(checked, SMARTPACK, HoldStatus.RELEASED)
    return parent.finished(), checked.finished()


def test_a_lifecycle_of_decisions_ends_as_seed_000_says() -> None:
    parent, child = lifecycle()
    assert parent.state == ("reset", "exchange_cancelled")
    assert child.state == ("closed", "released")
    assert child.release_confirmed is True
    assert child.lines[0].settled == 2


class _Forbidden(Exception):
    pass


def _forbidden(*_: object, **__: object) -> Any:
    raise _Forbidden("a decision did I/O")


class _ClockMeta(type):
    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, _REAL_DATETIME)


_REAL_DATETIME = dt.datetime
_DECISIONS = Path(decisions.__file__).parent


class _NoClock(dt.datetime, metaclass=_ClockMeta):
    now = classmethod(_forbidden)
    utcnow = classmethod(_forbidden)
    today = classmethod(_forbidden)


@pytest.fixture
def no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "socket", _forbidden)
    monkeypatch.setattr(socket, "create_connection", _forbidden)
    monkeypatch.setattr(sqlite3, "connect", _forbidden)
    monkeypatch.setattr(time, "sleep", _forbidden)
    monkeypatch.setattr(uuid, "uuid4", _forbidden)
    monkeypatch.setattr(dt, "datetime", _NoClock)
    _decision_modules()  # every decision module loaded, so that all are patched below
    for name, module in list(sys.modules.items()):
        if name.startswith("returnflow") and getattr(module, "datetime", None) is _REAL_DATETIME:
            monkeypatch.setattr(module, "datetime", _NoClock)


def _decision_modules() -> list[Any]:
    names = [path.stem for path in _DECISIONS.glob("*.py") if path.stem != "__init__"]
    return [importlib.import_module(f"returnflow.decisions.{name}") for name in names]


@pytest.mark.usefixtures("no_io")
def test_decisions_do_no_io() -> None:
    for forbidden in (
        lambda: dt.datetime.now(timezone.utc),
        lambda: time.sleep(0),
        lambda: sqlite3.connect(":memory:"),
        lambda: socket.create_connection(("localhost", 80)),
    ):
        with pytest.raises(_Forbidden):
            forbidden()
    parent, child = lifecycle()
    assert parent.state == ("reset", "exchange_cancelled")
    assert child.state == ("closed", "released")
    # facts parked and drained, through the same rules
    test_a_scan_before_approval_is_parked_and_applied_by_the_approval()
    test_finished_on_a_short_receipt_flags_and_waits_for_the_rest()


def test_decisions_import_no_store_service_or_io_module() -> None:
    allowed = ("returnflow.decisions", "returnflow.domain", "returnflow.lifecycle")
    data_only = {
        "returnflow.ports.store": {"OutboxEntry"},
        "returnflow.ports.commerce": {"LineQuantity", "ExchangeItem", "HoldStatus"},
        "returnflow.ports.platform_returns": {
            "DutyRefund",
            "PlatformExchangeLine",
            "PlatformReturnLine",
        },
        "returnflow.errors": {"InvalidPayload", "InvalidTransition", "ReturnflowError"},
    }
    stdlib = {"__future__", "collections.abc", "datetime", "typing", "attrs", "statemachine"}
    for path in sorted(_DECISIONS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [(node.module or "", {alias.name for alias in node.names})]
            else:
                continue
            for module, names in modules:
                top = module.split(".")[0]
                if module in data_only:
                    assert names is not None, (path.name, module)
                    assert names <= data_only[module], (path.name, names)
                    continue
                assert module.startswith(allowed) or module in stdlib or top in stdlib, (
                    path.name,
                    module,
                )
