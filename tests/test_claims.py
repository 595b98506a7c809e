"""Claims (issue 17): a refund or a replacement for units lost or damaged on the way to the
customer, with no return shipment; approved by the shop's rules, settled through the same
ledger of units and the same exchange machinery as any return."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from returnflow import (
    Claim,
    ClaimReason,
    Exchange,
    FeePolicy,
    InvalidQuantity,
    InvalidRequest,
    InvalidRule,
    Money,
    OrderLine,
    OrderSnapshot,
    Percent,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    Rule,
    StoreCredit,
    ValidationError,
    When,
    replacement,
)
from returnflow.demo.claims import claims
from returnflow.domain.order import Fulfillment
from returnflow.serialization import structure, unstructure
from returnflow.testing import Harness
from returnflow.testing.strategies import claim_requests, invalid_return_requests, orders

EUR = "EUR"
SHOP = "claims-shop"
SHIPPED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)

REVIEW_OVER_100 = Rule(
    "claims-over-100",
    when=When(claim=True, return_value_at_least=Money("100.01", EUR)),
    then={"review": "a claim over 100.00 is checked by a person"},
)
APPROVE_SMALL = Rule(
    "small-claims",
    when=When(claim=True, return_value_at_most=Money("100.00", EUR)),
    then={"approve": True},
)


def _order(order_id: str = "1001", *, delivered: bool = False) -> OrderSnapshot:
    shipped = [Fulfillment(2, SHIPPED, SHIPPED if delivered else None)]
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=SHIPPED,
        fulfilled_at=SHIPPED,
        currency=EUR,
        customer_email="ana@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku="MUG",
                variant_id="mug-blue",
                quantity=2,
                unit_price=Money("18.00", EUR),
                fulfillments=shipped,
            ),
            OrderLine(
                id="L2",
                sku="LAMP",
                variant_id="lamp-brass",
                quantity=1,
                unit_price=Money("140.00", EUR),
                fulfillments=[Fulfillment(1, SHIPPED)],
            ),
        ],
    )


def _harness(*orders: OrderSnapshot) -> Harness:
    policy = ReturnPolicy(rules=(REVIEW_OVER_100,))
    harness = Harness(policy=policy)
    for order in orders or (_order(),):
        harness.ports.commerce.add_order(order)
    return harness


def _claim(
    *lines: RequestLine,
    reason: ClaimReason | str = ClaimReason.LOST_IN_TRANSIT,
    note: str = "The carrier confirms the parcel lost",
    order_id: str = "1001",
) -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP, order_id=order_id, lines=lines, claim=Claim(reason, note, photos=("img-1",))
    )


def test_a_lost_parcel_is_refunded_without_a_label_a_warehouse_return_or_transit() -> None:
    harness = _harness()
    service = harness.service
    request = _claim(RequestLine("L1", 2, Refund()))
    quote = service.quote(request)
    assert quote.refund == Money("36.00", EUR)
    assert quote.return_shipping_fee == Money("0.00", EUR)

    record = service.request(request)

    assert record.status == "closed"
    assert record.claim == Claim(
        ClaimReason.LOST_IN_TRANSIT, "The carrier confirms the parcel lost", ("img-1",)
    )
    assert [line.claimed for line in record.lines] == [True]
    assert [str(refund.amount) for refund in harness.ports.commerce.refunds] == ["36.00 EUR"]
    assert harness.ports.carrier.calls == []
    assert harness.ports.warehouse.calls == []
    requested = next(entry for entry in record.history if entry.event == "requested")
    assert requested.payload["claim"] == "lost_in_transit"
    assert requested.payload["evidence"] == "The carrier confirms the parcel lost"
    assert "label_sent" not in {entry.target[0] for entry in record.history}
    assert "in_transit" not in {entry.target[0] for entry in record.history}


def test_a_damaged_unit_is_replaced_by_the_same_variant_at_no_charge_released_at_once() -> None:
    harness = _harness(_order(delivered=True))
    service = harness.service
    order = harness.ports.commerce.get_order(SHOP, "1001")
    request = _claim(
        RequestLine("L1", 1, replacement(order, "L1")),
        reason="damaged_in_transit",
        note="Arrived in pieces; photo attached",
    )
    quote = service.quote(request)
    assert quote.refund == Money("0.00", EUR)
    assert quote.balance_due == Money("0.00", EUR)

    record = service.request(request)

    assert record.exchange_status == "released"
    assert record.status == "closed"
    [item] = harness.ports.commerce.exchange_lines(SHOP, "1001")
    assert (item.variant_id, item.quantity, item.status) == ("mug-blue", 1, "unfulfilled")
    assert harness.ports.commerce.refunds == []
    assert harness.ports.payments.calls == []
    assert harness.ports.warehouse.calls == []


def test_a_claimed_unit_cannot_be_returned_and_a_returned_unit_cannot_be_claimed() -> None:
    harness = _harness(_order("1001"), _order("1002"))
    service = harness.service
    service.request(_claim(RequestLine("L2", 1, StoreCredit()), order_id="1001"))
    with pytest.raises(InvalidQuantity) as error:
        service.request(ReturnRequest(SHOP, "1001", [RequestLine("L2", 1)]))
    assert error.value.field == "lines[0].quantity"
    assert len(list(service.list(SHOP, order_id="1001"))) == 1

    service.request(ReturnRequest(SHOP, "1002", [RequestLine("L1", 2)]))
    with pytest.raises(InvalidQuantity) as error:
        service.request(_claim(RequestLine("L1", 1), order_id="1002"))
    assert error.value.field == "lines[0].quantity"
    assert len(list(service.list(SHOP, order_id="1002"))) == 1
    # what is left stays claimable: one unit claimed, the other returned
    harness.ports.commerce.add_order(_order("1003"))
    service.request(_claim(RequestLine("L1", 1), order_id="1003"))
    service.request(ReturnRequest(SHOP, "1003", [RequestLine("L1", 1)]))
    with pytest.raises(InvalidQuantity):
        service.request(_claim(RequestLine("L1", 1), order_id="1003"))


def test_a_claim_above_the_auto_approve_value_goes_to_review_then_settles_on_approval() -> None:
    harness = _harness()
    service = harness.service
    request = _claim(RequestLine("L2", 1, Refund()))
    assert "claims-over-100" in " ".join(service.quote(request).rules)

    record = service.request(request)

    assert record.status == "pending_review"
    assert record.review_reasons == (
        "rule 'claims-over-100': a claim over 100.00 is checked by a person",
    )
    assert harness.ports.commerce.refunds == []
    record = service.approve(SHOP, record.id)
    assert record.status == "closed"
    assert [str(refund.amount) for refund in harness.ports.commerce.refunds] == ["140.00 EUR"]
    # a plain return of the same value is no claim: the rule does not fire
    harness.ports.commerce.add_order(_order("1002"))
    plain = service.request(ReturnRequest(SHOP, "1002", [RequestLine("L2", 1)]))
    assert plain.status != "pending_review"


def test_a_rule_may_name_the_claim_reasons_it_holds_for() -> None:
    rule = Rule("lost", when={"claim": ["lost_in_transit"]}, then={"review": "check"})
    assert rule.when.claim == frozenset({ClaimReason.LOST_IN_TRANSIT})
    with pytest.raises(InvalidRule) as error:
        Rule("bad", when={"claim": ["stolen"]}, then={"review": "check"})
    assert (error.value.rule, error.value.field, error.value.value) == (
        "bad",
        "when.claim",
        "stolen",
    )


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Claim("stolen", "note"), "reason"),
        (lambda: Claim(ClaimReason.LOST_IN_TRANSIT, "  "), "note"),
        (lambda: Claim(ClaimReason.LOST_IN_TRANSIT, "n", photos="img"), "photos"),
        (lambda: Claim(ClaimReason.LOST_IN_TRANSIT, "n", photos=[""]), "photos[0]"),
        (lambda: ReturnRequest(SHOP, "1001", [RequestLine("L1", 1)], claim="lost"), "claim"),
    ],
)
def test_a_bad_claim_is_a_typed_error_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        build()  # type: ignore[operator]
    assert error.value.field == field


@pytest.mark.parametrize(
    ("outcome", "field"),
    [
        (Exchange("mug-red"), "lines[0].outcome.variant_id"),
        (Exchange("mug-blue", quantity=2), "lines[0].outcome.quantity"),
        (Exchange("mug-blue", unit_price=Money("1.00", EUR)), "lines[0].outcome.unit_price"),
    ],
)
def test_a_replacement_is_the_same_variant_and_quantity_at_no_charge(
    outcome: Exchange, field: str
) -> None:
    harness = _harness()
    with pytest.raises(InvalidRequest) as error:
        harness.service.request(_claim(RequestLine("L1", 1, outcome)))
    assert error.value.field == field
    assert list(harness.service.list(SHOP)) == []
    assert harness.ports.commerce.exchange_lines(SHOP, "1001") == []


def test_a_replacement_of_a_line_not_on_the_order_names_it() -> None:
    with pytest.raises(InvalidRequest) as error:
        replacement(_order(), "L9")
    assert (error.value.field, error.value.value) == ("order_line_id", "L9")


def test_a_claim_travels_as_plain_data_and_is_stored_with_the_return() -> None:
    request = _claim(RequestLine("L1", 1, StoreCredit()))
    data = unstructure(request)
    assert data["claim"] == {
        "reason": "lost_in_transit",
        "note": "The carrier confirms the parcel lost",
        "photos": ["img-1"],
    }
    assert structure(data, ReturnRequest) == request
    data["claim"]["reason"] = "stolen"
    with pytest.raises(InvalidRequest) as error:
        structure(data, ReturnRequest)
    assert error.value.field == "claim.reason"
    del data["claim"]["note"]
    data["claim"]["reason"] = "lost_in_transit"
    with pytest.raises(ValidationError) as missing:
        structure(data, ReturnRequest)
    assert missing.value.field == "claim.note"
    harness = _harness()
    record = harness.service.request(request)
    assert harness.service.get(SHOP, record.id).claim == request.claim


def test_units_never_shipped_cannot_be_claimed_and_nothing_is_stored() -> None:
    unshipped = OrderSnapshot(
        id="1009",
        shop=SHOP,
        created_at=SHIPPED,
        currency=EUR,
        lines=[
            OrderLine(
                id="L1",
                sku="MUG",
                variant_id="mug-blue",
                quantity=1,
                unit_price=Money("18.00", EUR),
            )
        ],
    )
    harness = _harness(unshipped)
    with pytest.raises(InvalidQuantity) as error:
        harness.service.request(_claim(RequestLine("L1", 1), order_id="1009"))
    assert error.value.field == "lines[0].quantity"
    assert list(harness.service.list(SHOP)) == []
    assert harness.ports.commerce.refunds == []


def test_the_demo_flow_refunds_replaces_and_reviews() -> None:
    harness, shown = claims("demo-claims")
    records = [harness.service.get("demo-claims", str(return_id)) for return_id in shown]
    assert [record.state for record in records] == [
        ("closed", "no_exchange"),
        ("closed", "released"),
        ("closed", "no_exchange"),
    ]
    assert [record.claim.reason for record in records if record.claim] == [
        ClaimReason.LOST_IN_TRANSIT,
        ClaimReason.DAMAGED_IN_TRANSIT,
        ClaimReason.LOST_IN_TRANSIT,
    ]
    assert any(entry.event == "route_to_review" for entry in records[2].history)
    assert [str(refund.amount) for refund in harness.ports.commerce.refunds] == [
        "18.00 EUR",
        "140.00 EUR",
    ]
    assert harness.ports.carrier.calls == []
    assert harness.ports.warehouse.calls == []


def test_a_claim_pays_no_restocking_return_shipping_or_exchange_shipping() -> None:
    fees = FeePolicy(
        restocking=Percent(10),
        return_shipping=Money("5.00", EUR),
        exchange_shipping=Money("4.00", EUR),
    )
    harness = Harness(policy=ReturnPolicy(fees=fees))
    order = _order()
    harness.ports.commerce.add_order(order)
    refund = harness.service.quote(_claim(RequestLine("L1", 2, Refund())))
    assert (refund.refund, refund.restocking_fee, refund.return_shipping_fee) == (
        Money("36.00", EUR),
        Money("0.00", EUR),
        Money("0.00", EUR),
    )
    swap = harness.service.quote(_claim(RequestLine("L1", 1, replacement(order, "L1"))))
    assert (swap.exchange_shipping, swap.balance_due) == (Money("0.00", EUR), Money("0.00", EUR))
    # the same exchange asked as a return pays the new item's shipping
    plain = ReturnRequest(SHOP, "1001", [RequestLine("L1", 1, replacement(order, "L1"))])
    assert harness.service.quote(plain).exchange_shipping == Money("4.00", EUR)


def test_a_claim_is_read_back_from_sqlite_the_fast_way_and_the_plain_way(tmp_path: Any) -> None:
    from returnflow import _bodies
    from returnflow.stores.sqlite import SqliteStore

    harness = Harness(policy=ReturnPolicy(), store=SqliteStore(str(tmp_path / "r.db")))
    order = _order()
    harness.ports.commerce.add_order(order)
    request = _claim(RequestLine("L1", 1, replacement(order, "L1")), reason="wrong_item")
    record = harness.service.request(request)
    for fast in (True, False):
        previous = _bodies.use_fast(fast)
        try:
            stored = harness.store.get(SHOP, record.id)
        finally:
            _bodies.use_fast(previous)
        assert stored.claim == request.claim
        assert [line.claimed for line in stored.lines] == [True]


# -- the testing kit draws claims -----------------------------------------------------------------


@settings(deadline=None)
@given(data=st.data())
def test_a_claim_the_kit_draws_is_stored_and_ships_nothing_back(data: st.DataObject) -> None:
    order = data.draw(orders(shop=SHOP, currency=EUR), label="order")
    harness = Harness()
    harness.ports.commerce.add_order(order)
    request = data.draw(claim_requests(order), label="claim")
    quoted = harness.service.quote(request)
    record = harness.service.request(request)
    assert record.claim == request.claim
    assert all(line.claimed for line in record.lines)
    assert record.return_shipping_fee in (None, Money("0.00", EUR))
    assert quoted.fees == Money("0.00", EUR)  # the loss is not the customer's
    assert harness.ports.carrier.calls == []
    assert harness.ports.warehouse.calls == []
    reached = {entry.target[0] for entry in record.history}
    assert not reached & {"label_sent", "in_transit", "received"}
    if record.status == "closed":  # approved: every unit settled at once
        assert all(line.settled == line.quantity for line in record.lines)
    # its units are taken: asked again, a line wanting more than the units left is refused
    shipped = {line.id: len(order.shipped_units(line)) for line in order.lines}
    short = any(2 * line.quantity > shipped[line.order_line_id] for line in request.lines)
    if record.status != "declined" and short:
        with pytest.raises(InvalidQuantity):
            harness.service.request(request)


@settings(deadline=None)
@given(data=st.data())
def test_a_claim_defect_the_kit_draws_is_refused_and_stores_nothing(data: st.DataObject) -> None:
    order = data.draw(orders(shop=SHOP, currency=EUR, blockers=False), label="order")
    harness = Harness()
    harness.ports.commerce.add_order(order)
    case = data.draw(invalid_return_requests(order), label="defect")
    with pytest.raises(case.error) as refused:
        harness.service.request(case.build())
    if case.defect == "claim_replacing_another_variant":
        assert refused.value.field.endswith(".outcome.variant_id"), refused.value
    if case.defect == "claim_without_evidence":
        assert refused.value.field == "note"
    assert harness.service.list(SHOP) == []
