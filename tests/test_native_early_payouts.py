"""Native mode: units paid before completion (a refund trigger) and the platform's figure.

A fact that implies an earlier stage (a receipt with no scan before it implies the hand-in)
runs that stage's payouts and releases in the same change as its own, so one processing
of the platform return carries what a scan would have split into two; the money is the
same either way, and the platform's figure agrees with it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from _builders import (
    SHOP,
    caps,
    closed_without_review,
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
    Exchange,
    FeePolicy,
    Keep,
    Money,
    OutcomeKind,
    RequestLine,
    ReturnPolicy,
    StoreCredit,
)
from returnflow.domain.policy import Completion, RefundTrigger, ReleaseTrigger
from returnflow.domain.settlement import Percent


@pytest.mark.parametrize("scanned_first", [False, True], ids=["receipt-alone", "scan-then-receipt"])
def test_a_kept_line_pays_the_return_shipping_fee_with_the_units_refunded_early(
    scanned_first: bool,
) -> None:
    # One cap (10.00) sent back for a refund, the T-shirt (25.00) kept for a refund; a 12.00
    # return shipping fee taken only from the payout (fees_only_from_payout), refunded when
    # handed in. The return's payout (35.00) covers the fee: 23.00 is refunded, as the
    # platform return (opened with the 12.00 fee) suggests. Paying the cap alone first
    # waived 2.00 of the fee its 10.00 did not cover, and the kept T-shirt was refunded in
    # full at completion: 25.00, and a receipt implying the hand-in processed both at once,
    # against the platform's 23.00.
    fees = FeePolicy(return_shipping=eur("12.00"), fees_only_from_payout=True)
    policy = ReturnPolicy(
        platform_mode="native", fees=fees, refund_trigger=RefundTrigger.ON_HANDED_IN
    )
    made = native_harness(policy)
    kept = RequestLine(order_line_id="L1", quantity=1, outcome=Keep(settle=OutcomeKind.REFUND))
    return_id = request(made, kept, caps(1))
    [opened] = platform(made).calls_to("open_return")
    assert opened.args["return_shipping_fee"] == eur("12.00")
    if scanned_first:
        handed_in(made, return_id)
    record = made.service.get(SHOP, return_id)
    cap = next(line for line in record.lines if line.order_line_id == "L2")
    receive(made, return_id, "r1", passed(cap.id))
    closed_without_review(made, return_id)
    there = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    assert platform(made).refunded(SHOP, there) == eur("23.00")


@pytest.mark.parametrize(
    ("price", "paid_out", "charged"),
    [("25.00", "10.00", []), ("20.00", "15.00", []), ("30.00", "10.00", [eur("5.00")])],
    ids=["even", "for-less", "upsell"],
)
def test_an_instant_exchange_released_by_the_receipt_that_refunds_other_units(
    price: str, paid_out: str, charged: list[Money]
) -> None:
    # An instant exchange of the T-shirt (25.00) released when handed in, and a cap (10.00)
    # refunded when received. The cap's receipt comes first, with no scan: it implies the
    # hand-in, so the new item is released in the change that refunds the cap, and one call
    # processes both. The platform nets the item against the cap (it suggests 0.00), which
    # never pays for it: the T-shirt coming later does (or the authorization). Compared
    # without the item, both say 10.00; the T-shirt's own call then pays what the item
    # leaves of it, as when a scan released the item first.
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        refund_trigger=RefundTrigger.ON_RECEIVED,
    )
    made = native_harness(policy)
    return_id = request(made, swap(price), caps(1))
    record = made.service.get(SHOP, return_id)
    tee, cap = record.lines
    receive(made, return_id, "r1", passed(cap.id))
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.exchange_status) == ("item_received", "released")
    [first] = platform(made).calls_to("process")
    assert (first.args["refund"], len(first.args["exchange_lines"])) == (eur("10.00"), 1)
    receive(made, return_id, "r2", passed(tee.id))
    closed_without_review(made, return_id)
    there = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    assert platform(made).refunded(SHOP, there) == eur(paid_out)
    payments = made.ports.payments
    assert [call.operation for call in payments.calls][:2] == ["authorize", "void"]
    assert [call.args["amount"] for call in payments.calls_to("charge")] == charged


@pytest.mark.parametrize(
    ("price", "credited", "charged"),
    [("15.00", "18.00", ["5.00"]), ("12.50", "18.00", []), ("10.00", "18.00", [])],
    ids=["upsell", "even", "for-less"],
)
def test_completion_in_the_change_that_pays_the_last_units_early(
    price: str, credited: str, charged: list[str]
) -> None:
    # The T-shirt (25.00) for two others at ``price`` each, the caps for store credit less a
    # 10 % restocking fee, paid when received; completion on receipt. The last receipt
    # (the T-shirt and a cap) pays the cap early and completes: one processing carries the
    # cap, the T-shirt and the new items. The platform nets what the items ask against the
    # cap (4.00 against returnflow's 9.00 for the upsell, whose 5.00 is charged apart) and
    # sent the return to a person; compared apart from the cap, both agree.
    fees = FeePolicy(restocking=Percent(Decimal("10")))
    policy = ReturnPolicy(
        platform_mode="native",
        fees=fees,
        refund_trigger=RefundTrigger.ON_RECEIVED,
        completion=Completion.ON_RECEIPT,
    )
    made = native_harness(policy)
    tee = RequestLine(
        order_line_id="L1",
        quantity=1,
        outcome=Exchange(variant_id="tee-l", unit_price=eur(price), quantity=2),
    )
    caps_credited = RequestLine(order_line_id="L2", quantity=2, outcome=StoreCredit())
    return_id = request(made, tee, caps_credited)
    shirt, cap = made.service.get(SHOP, return_id).lines
    receive(made, return_id, "r1", passed(cap.id))
    receive(made, return_id, "r2", passed(shirt.id), passed(cap.id))
    closed_without_review(made, return_id)
    credits = Money.sum((c.amount for c in made.ports.commerce.credits), "EUR")
    assert credits == eur(credited)
    assert [str(p.amount.amount) for p in made.ports.payments.payments] == charged
