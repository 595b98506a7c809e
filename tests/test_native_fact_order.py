"""Native mode: the same facts in another order end the same, on both sides (issue 19).

Each test is one kind of difference the native model found between two orders of the same
facts: returnflow's money and items, and the platform return's, must not depend on which
fact came first."""

from __future__ import annotations

from typing import Any

import pytest

from _builders import (
    SHOP,
    eur,
    handed_in,
    native_harness,
    passed,
    platform,
    receive,
    request,
    swap,
)
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    FeePolicy,
    Money,
    RequestLine,
    ReturnPolicy,
)
from returnflow.domain.policy import RefundTrigger, ReleaseTrigger
from returnflow.testing import Harness


def _sent_back(made: Harness, return_id: str) -> None:
    made.service.handle(
        CarrierUpdate(
            shop=SHOP,
            return_id=return_id,
            event_id="s2",
            status=CarrierStatus.RETURN_TO_ORIGIN,
        )
    )


def _end(made: Harness, return_id: str) -> tuple[Any, ...]:
    """What each side ends with: the return's status and items, the payments, and the
    platform return's exchange fulfillments (held or not), refund and balance."""
    record = made.service.get(SHOP, return_id)
    there = record.refs.platform_return_id or ""
    view = platform(made).get_return(SHOP, there)
    return (
        record.status,
        record.review_reasons,
        [line.status for line in record.exchange_lines],
        [(call.operation, call.args.get("amount")) for call in made.ports.payments.calls],
        sorted(platform(made).fulfillments(SHOP, there).values()),
        platform(made).refunded(SHOP, there),
        view.balance_owed,
    )


@pytest.mark.parametrize("price", ["25.00", "30.00"], ids=["even", "upsell"])
def test_an_instant_exchange_sent_back_before_any_scan_ships_what_the_customer_pays(
    price: str,
) -> None:
    # An instant exchange of the T-shirt (25.00), released when handed in. The parcel goes
    # back to the sender: the authorization (25.00) is captured and the return cancelled;
    # the customer pays for the new item, which ships. When the return to origin comes
    # with no scan before it, it implies the hand-in: one change authorizes, releases and
    # cancels. The platform return was processed only while the return had not ended, so
    # the released item was never processed there (never shipped) while the customer paid
    # for it, and returnflow kept the exchange line pending.
    policy = ReturnPolicy(platform_mode="native", exchange_release=ReleaseTrigger.ON_HANDED_IN)
    ends = []
    for scanned_first in (True, False):
        made = native_harness(policy)
        return_id = request(made, swap(price))
        if scanned_first:
            handed_in(made, return_id)
        _sent_back(made, return_id)
        end = _end(made, return_id)
        status, reasons, lines, payments, fulfillments, refunded, owed = end
        assert (status, reasons, lines) == ("cancelled", (), ["released"])
        assert payments[-2:] == [("authorize", eur("25.00")), ("capture", eur("25.00"))]
        assert fulfillments == [False]  # the new item ships, not held
        assert (refunded, owed) == (eur("0.00"), None)
        ends.append(end)
    assert ends[0] == ends[1]


def _refunded(made: Harness, return_id: str) -> Money:
    """What the customer was refunded: on the platform return (native) or the order (tags)."""
    record = made.service.get(SHOP, return_id)
    if made.platform_returns is not None:
        return platform(made).refunded(SHOP, record.refs.platform_return_id or "")
    calls = made.ports.commerce.calls
    return Money.sum((c.args["amount"] for c in calls if c.operation == "refund"), "EUR")


@pytest.mark.parametrize("mode", ["native", "tags"])
@pytest.mark.parametrize(
    "trigger", [RefundTrigger.ON_CLOSE, RefundTrigger.ON_RECEIVED], ids=["at-close", "early"]
)
def test_an_instant_upsell_whose_exchanged_line_half_failed_takes_the_rest_from_the_payout(
    mode: str, trigger: RefundTrigger
) -> None:
    # Both caps (2 x 10.00) exchanged for one item at 30.00, released on an authorization of
    # the caps' worth (20.00); the T-shirt (25.00) refunded. One cap fails QC, the other
    # passes: the authorization is captured (20.00) and the new item's other 10.00 comes
    # out of the payout of the units accepted (T-shirt and cap, 35.00): 25.00 refunded.
    # The caps' line, one unit accepted, counted as come back, so the item was taken as
    # paid by the units and 35.00 refunded: 10.00 under-charged (native mode: the
    # platform's 25.00 against it, a review).
    policy = ReturnPolicy(
        platform_mode=mode, exchange_release=ReleaseTrigger.ON_HANDED_IN, refund_trigger=trigger
    )
    made = native_harness(policy)
    upsell = Exchange(variant_id="hat", unit_price=eur("30.00"), quantity=1)
    caps_for_one = RequestLine(order_line_id="L2", quantity=2, outcome=upsell)
    return_id = request(made, caps_for_one, RequestLine(order_line_id="L1", quantity=1))
    handed_in(made, return_id)
    record = made.service.get(SHOP, return_id)
    by_order_line = {line.order_line_id: line.id for line in record.lines}
    tee, cap = by_order_line["L1"], by_order_line["L2"]
    receive(made, return_id, "r1", passed(tee), passed(cap, qc="fail"), passed(cap))
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("closed", ())
    payments = [(call.operation, call.args.get("amount")) for call in made.ports.payments.calls]
    assert payments == [("authorize", eur("20.00")), ("capture", eur("20.00"))]
    assert _refunded(made, return_id) == eur("25.00")


@pytest.mark.parametrize(
    "order",
    [("tee", "failed", "passed"), ("failed", "tee", "passed"), ("failed", "passed", "tee")],
    ids=["tee-first", "tee-between", "tee-last"],
)
def test_a_captured_authorization_pays_the_items_shipped_ahead_whatever_the_receipt_order(
    order: tuple[str, str, str],
) -> None:
    # Both caps (2 x 10.00) exchanged evenly for two others, shipped on an authorization of
    # their worth (20.00); the T-shirt (25.00) refunded when received. One cap fails QC:
    # the cap that passed pays for one new cap (its worth) and the capture for the other
    # (10.00), and the T-shirt is refunded in full (25.00), whatever order the three
    # receipts come in. The T-shirt processed on its own before the caps, the caps' last
    # call once took the 20.00 the platform asked for the new caps ahead from the passed
    # cap's worth as if the units paid for both (the platform's 0.00 against returnflow's
    # 10.00: a review); and the capture took both new caps (20.00) while the passed cap
    # was refunded (10.00): the right money in two moves where one does.
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        refund_trigger=RefundTrigger.ON_RECEIVED,
    )
    made = native_harness(policy)
    even = RequestLine(order_line_id="L2", quantity=2, outcome=Exchange(variant_id="cap-red"))
    return_id = request(made, even, RequestLine(order_line_id="L1", quantity=1))
    handed_in(made, return_id)
    record = made.service.get(SHOP, return_id)
    by_order_line = {line.order_line_id: line.id for line in record.lines}
    tee, cap = by_order_line["L1"], by_order_line["L2"]
    receipts = {"tee": passed(tee), "failed": passed(cap, qc="fail"), "passed": passed(cap)}
    for number, name in enumerate(order):
        receive(made, return_id, f"r{number}", receipts[name])
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("closed", ())
    payments = [(call.operation, call.args.get("amount")) for call in made.ports.payments.calls]
    assert payments == [("authorize", eur("20.00")), ("capture", eur("10.00"))]
    assert _refunded(made, return_id) == eur("25.00")
    there = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert there.balance_owed is None
    assert sorted(platform(made).fulfillments(SHOP, there.return_id).values()) == [False]


@pytest.mark.parametrize("shipping", [None, "4.00"], ids=["no-shipping", "outbound-shipping"])
@pytest.mark.parametrize("exchanged_first", [True, False], ids=["exchanged-first", "last"])
def test_an_upsell_released_at_close_with_a_unit_refunded_in_the_same_call(
    exchanged_first: bool, shipping: str | None
) -> None:
    # The T-shirt (25.00) exchanged for one at 30.00, released at close; both caps refunded
    # when received. The T-shirt's receipt first, then one cap's, then the other's: the
    # last receipt completes the return, charges the 5.00 the T-shirt leaves of the new
    # one and processes the last cap with the T-shirt and the new item, which the platform
    # nets against all of that call's units (5.00 for it). Returnflow expected the cap's
    # 10.00 for the call, as though the 5.00 were not charged in it: a review. The same
    # money whichever comes last: both caps refunded, the balance charged (with the new
    # item's outbound shipping, which no platform return carries).
    fees = FeePolicy(exchange_shipping=eur(shipping) if shipping else None)
    policy = ReturnPolicy(
        platform_mode="native", refund_trigger=RefundTrigger.ON_RECEIVED, fees=fees
    )
    made = native_harness(policy)
    return_id = request(made, swap("30.00"), RequestLine(order_line_id="L2", quantity=2))
    record = made.service.get(SHOP, return_id)
    by_order_line = {line.order_line_id: line.id for line in record.lines}
    tee, cap = by_order_line["L1"], by_order_line["L2"]
    receipts = [passed(tee), passed(cap), passed(cap)]
    for number, line in enumerate(receipts if exchanged_first else receipts[::-1]):
        receive(made, return_id, f"r{number}", line)
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("closed", ())
    payments = [(call.operation, call.args.get("amount")) for call in made.ports.payments.calls]
    assert payments == [("charge", eur("5.00") + eur(shipping or "0.00"))]
    assert _refunded(made, return_id) == eur("20.00")
    assert [line.status for line in record.exchange_lines] == ["released"]


@pytest.mark.parametrize("mode", ["native", "tags"])
@pytest.mark.parametrize("received_first", [False, True], ids=["scanned-first", "received-first"])
def test_an_instant_upsell_paid_up_front_released_by_the_receipt_that_refunds_the_other_line(
    mode: str, received_first: bool
) -> None:
    # The T-shirt (25.00) refunded when received; a cap (10.00) exchanged for a hat at
    # 40.00, shipped when the parcel is handed in. The return's worth (35.00) leaves 5.00
    # of the hat, paid up front, and the cap's worth is authorized. The T-shirt's receipt
    # comes before any scan: it implies the hand-in, so the hat is released in the change
    # that refunds the T-shirt, and one call processes both. The platform's figure for the
    # T-shirt leaves the hat out (it waits for the cap's call): 25.00. Returnflow took the
    # 5.00 paid up front from that call as if the T-shirt paid for the hat (20.00): a
    # review, and the cap's later call (the platform's 10.00 against 0.00) another. The
    # same money whichever fact comes first: 25.00 refunded, the 5.00 charged, and once
    # the cap comes back the authorization voided and the hat's other 25.00 charged.
    policy = ReturnPolicy(
        platform_mode=mode,
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        refund_trigger=RefundTrigger.ON_RECEIVED,
    )
    made = native_harness(policy)
    hat = Exchange(variant_id="hat", unit_price=eur("40.00"), quantity=1)
    cap_for_hat = RequestLine(order_line_id="L2", quantity=1, outcome=hat)
    return_id = request(made, RequestLine(order_line_id="L1", quantity=1), cap_for_hat)
    record = made.service.get(SHOP, return_id)
    tee, cap = record.lines
    delivered = CarrierUpdate(
        shop=SHOP, return_id=return_id, event_id="s1", status=CarrierStatus.DELIVERED
    )
    if received_first:
        receive(made, return_id, "r1", passed(tee.id))
        made.service.handle(delivered)
    else:
        made.service.handle(delivered)
        receive(made, return_id, "r1", passed(tee.id))
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("item_received", ())
    assert [line.status for line in record.exchange_lines] == ["released"]
    payments = [(call.operation, call.args.get("amount")) for call in made.ports.payments.calls]
    assert payments == [("charge", eur("5.00")), ("authorize", eur("10.00"))]
    assert _refunded(made, return_id) == eur("25.00")
    receive(made, return_id, "r2", passed(cap.id))
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("closed", ())
    payments = [(call.operation, call.args.get("amount")) for call in made.ports.payments.calls]
    assert payments[2:] == [("void", None), ("charge", eur("25.00"))]
    assert _refunded(made, return_id) == eur("25.00")
