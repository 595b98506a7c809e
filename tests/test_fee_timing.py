"""When fees are taken: the return shipping fee follows the units that bear it, each payout
paying its own units' shares, whatever settles later, so the money does not depend on when
the refund is paid (on the hand-in, on receipt, or at completion), in either mode; and a
native settlement never charges a fee the platform return was opened without."""

from __future__ import annotations

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
from returnflow import Exchange, FeePolicy, Money, RequestLine, ReturnPolicy
from returnflow.domain.policy import RefundTrigger
from returnflow.domain.settlement import Percent
from returnflow.testing import Harness

MODES = ["native", "tags"]
TIMINGS = {
    "at-close": RefundTrigger.ON_CLOSE,
    "on-receipt": RefundTrigger.ON_RECEIVED,
    "on-hand-in": RefundTrigger.ON_HANDED_IN,
}


def refunded(made: Harness, return_id: str) -> Money:
    """What the customer got back: on the platform return (native) or by the order's
    refunds (tags)."""
    record = made.service.get(SHOP, return_id)
    if record.refs.platform_return_id is not None:
        return platform(made).refunded(SHOP, record.refs.platform_return_id)
    calls = made.ports.commerce.calls_to("refund")
    return Money.sum((call.args["amount"] for call in calls), "EUR")


def charged(made: Harness) -> list[Money]:
    return [call.args["amount"] for call in made.ports.payments.calls_to("charge")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("timing", list(TIMINGS))
def test_an_even_exchange_beside_refunded_units_pays_the_same_whenever_the_refund_is_paid(
    mode: str, timing: str
) -> None:
    # The T-shirt (25.00) for another at 25.00 and the two caps (20.00) refunded, a 5.00
    # return shipping fee taken only from the payout. The caps' refund bears it: 15.00,
    # whether it is paid at hand-in, on receipt or at completion. Paid early, the fee was
    # left to completion, where the even exchange pays nothing out: it was waived (20.00).
    fees = FeePolicy(return_shipping=eur("5.00"), fees_only_from_payout=True)
    policy = ReturnPolicy(platform_mode=mode, fees=fees, refund_trigger=TIMINGS[timing])
    made = native_harness(policy)
    return_id = request(made, swap("25.00"), caps())
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L1"), passed("L2", 2))
    record = closed_without_review(made, return_id)
    assert (refunded(made, return_id), charged(made)) == (eur("15.00"), [])
    assert record.return_shipping_fee == eur("5.00")
    assert [line.status for line in record.exchange_lines] == ["released"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("timing", list(TIMINGS))
def test_refunded_units_paid_before_the_exchange_fails_qc_pay_the_return_shipping_fee(
    mode: str, timing: str
) -> None:
    # The same return, the fee charged to the customer when the payout does not cover it.
    # The caps come first and pass; the T-shirt comes in a later receipt and fails QC, so
    # the exchange is cancelled and settles nothing. Paid before, the caps' refund had left
    # the fee to that exchange: it was never charged (20.00 refunded).
    fees = FeePolicy(return_shipping=eur("5.00"))
    policy = ReturnPolicy(platform_mode=mode, fees=fees, refund_trigger=TIMINGS[timing])
    made = native_harness(policy)
    return_id = request(made, swap("25.00"), caps())
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L2", 2))
    receive(made, return_id, "r2", passed("L1", qc="fail"))
    record = closed_without_review(made, return_id)
    assert (refunded(made, return_id), charged(made)) == (eur("15.00"), [])
    assert record.return_shipping_fee == eur("5.00")
    assert [line.status for line in record.exchange_lines] == ["cancelled"]


RESTOCKING = FeePolicy(
    restocking=Percent(10), waive_for_exchanges=False, fees_only_from_payout=True
)
SHIPPING = FeePolicy(
    return_shipping=eur("5.00"), waive_for_exchanges=False, fees_only_from_payout=True
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fees", [RESTOCKING, SHIPPING], ids=["restocking", "shipping"])
def test_a_fee_left_off_when_the_return_opened_is_not_charged_when_the_exchange_fails_qc(
    mode: str, fees: FeePolicy
) -> None:
    # Both caps (10.00 each) for two others, an even exchange; a 10 % restocking fee (or a
    # 5.00 return shipping fee) that applies to exchanges, taken only from the payout.
    # Nothing is to be paid out: the fee is waived when the return opens (native: the
    # platform return is opened without it). One cap fails QC, so the exchange is
    # cancelled and the other cap's 10.00 is refunded, in full: the platform has no call to
    # add the fee, and tags mode keeps the same money. Returnflow took the fee from that
    # refund (the cap's 1.00 share, or the 5.00), and the figures differed.
    made = native_harness(ReturnPolicy(platform_mode=mode, fees=fees))
    both = RequestLine(
        order_line_id="L2", quantity=2, outcome=Exchange(variant_id="cap-x", quantity=2)
    )
    return_id = request(made, both)
    if mode == "native":
        [opened] = platform(made).calls_to("open_return")
        assert [line.restocking_fee for line in opened.args["lines"]] == [None]
        assert opened.args["return_shipping_fee"] is None
    receive(made, return_id, "r1", passed("L2"), passed("L2", qc="fail"))
    record = closed_without_review(made, return_id)
    assert (refunded(made, return_id), charged(made)) == (eur("10.00"), [])
    assert (record.restocking_fees, record.return_shipping_fee) == (None, None)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("timing", list(TIMINGS))
def test_an_upsell_beside_a_refunded_cap_takes_what_the_whole_return_bears_of_the_fee(
    mode: str, timing: str
) -> None:
    # The T-shirt (25.00) for one at 30.00 and a cap (10.00) refunded, an 8.00 return
    # shipping fee taken only from the payout. The whole return's payout is the cap's
    # 10.00, less the 5.00 the upsell is short: it bears 5.00 of the fee, and the other
    # 3.00 are waived when the return opens. Nothing is owed net, whenever the cap is paid
    # (paid early: 5.00 back, then the 5.00 short charged). Paid early, the cap's refund
    # bore the whole fee, and the customer was 3.00 short.
    fees = FeePolicy(return_shipping=eur("8.00"), fees_only_from_payout=True)
    policy = ReturnPolicy(platform_mode=mode, fees=fees, refund_trigger=TIMINGS[timing])
    made = native_harness(policy)
    return_id = request(made, swap("30.00"), caps(1))
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L2"))
    receive(made, return_id, "r2", passed("L1"))
    record = closed_without_review(made, return_id)
    back = refunded(made, return_id) + Money.sum(
        (call.args["amount"] for call in made.ports.payments.calls_to("refund")), "EUR"
    )
    assert back - Money.sum(charged(made), "EUR") == eur("0.00")
    assert record.return_shipping_fee == eur("5.00")


@pytest.mark.parametrize("mode", MODES)
def test_the_part_of_a_fee_the_payout_bore_when_the_return_opened_follows_the_units(
    mode: str,
) -> None:
    # Both caps (10.00 each) for two others at 9.50: the 1.00 difference bears half of the
    # 2.00 restocking fee (10 %, applying to exchanges, only from the payout); the other
    # 1.00 is left off (native: the platform return's cap line carries 1.00). One cap
    # fails QC and the exchange is cancelled: the other cap is refunded 10.00 less its
    # share of the 1.00 charged, 0.50, on both sides.
    made = native_harness(ReturnPolicy(platform_mode=mode, fees=RESTOCKING))
    both = RequestLine(
        order_line_id="L2",
        quantity=2,
        outcome=Exchange(variant_id="cap-x", quantity=2, unit_price=eur("9.50")),
    )
    return_id = request(made, both)
    if mode == "native":
        [opened] = platform(made).calls_to("open_return")
        assert [line.restocking_fee for line in opened.args["lines"]] == [eur("1.00")]
    receive(made, return_id, "r1", passed("L2"), passed("L2", qc="fail"))
    record = closed_without_review(made, return_id)
    assert (refunded(made, return_id), charged(made)) == (eur("9.50"), [])
    assert record.restocking_fees == eur("0.50")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("timing", list(TIMINGS))
@pytest.mark.parametrize("price", ["20.00", "25.00", "30.00"])
def test_a_fee_a_payout_was_too_small_for_is_charged_when_the_exchange_then_fails_qc(
    mode: str, timing: str, price: str
) -> None:
    # The T-shirt (25.00) for one at ``price`` and a cap (10.00) refunded, a 15.00 return
    # shipping fee. The cap's 10.00 does not cover it: paid early, the cap is refunded in
    # full and the fee left to the exchange's settlement. The T-shirt fails QC, the exchange
    # is cancelled and settles no unit: the fee is charged then, so the customer is 5.00
    # short whenever the cap is paid. Paid early, the fee was never charged (10.00 back).
    fees = FeePolicy(return_shipping=eur("15.00"))
    policy = ReturnPolicy(platform_mode=mode, fees=fees, refund_trigger=TIMINGS[timing])
    made = native_harness(policy)
    return_id = request(made, swap(price), caps(1))
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L2"))
    receive(made, return_id, "r2", passed("L1", qc="fail"))
    record = closed_without_review(made, return_id)
    back = refunded(made, return_id) + Money.sum(
        (call.args["amount"] for call in made.ports.payments.calls_to("refund")), "EUR"
    )
    assert back - Money.sum(charged(made), "EUR") == eur("-5.00")
    assert record.return_shipping_fee == eur("15.00")
    assert [line.status for line in record.exchange_lines] == ["cancelled"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("timing", list(TIMINGS))
def test_a_fee_left_to_an_exchange_that_fails_qc_is_judged_by_the_lines_paid_before(
    mode: str, timing: str
) -> None:
    # The T-shirt (25.00) refunded and both caps for two others, a 30.00 return shipping
    # fee (exchanges waive fees). Paid early, the T-shirt's 25.00 is too small for it and it
    # is left to the exchange; one cap fails QC, the exchange is cancelled and the other
    # cap paid 10.00 at completion, with the fee: 5.00 back, whenever the T-shirt is paid.
    # In tags mode completion judged the fee by the cap alone, an exchanged line whose
    # fees are waived: the fee was never charged (35.00 back).
    fees = FeePolicy(return_shipping=eur("30.00"))
    policy = ReturnPolicy(platform_mode=mode, fees=fees, refund_trigger=TIMINGS[timing])
    made = native_harness(policy)
    both = RequestLine(
        order_line_id="L2", quantity=2, outcome=Exchange(variant_id="cap-x", quantity=2)
    )
    return_id = request(made, RequestLine(order_line_id="L1", quantity=1), both)
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L1"))
    receive(made, return_id, "r2", passed("L2"), passed("L2", qc="fail"))
    record = closed_without_review(made, return_id)
    back = refunded(made, return_id) + Money.sum(
        (call.args["amount"] for call in made.ports.payments.calls_to("refund")), "EUR"
    )
    assert back - Money.sum(charged(made), "EUR") == eur("5.00")
    assert record.return_shipping_fee == eur("30.00")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("price", ["20.00", "25.00", "30.00"])
def test_a_payout_too_small_for_the_fee_pays_the_same_whenever_it_is_paid_under_payout_only(
    mode: str, price: str
) -> None:
    # The T-shirt (25.00) for one at ``price`` and a cap (10.00) refunded, a 15.00 return
    # shipping fee taken only from the payout; the T-shirt fails QC after the cap came. The
    # cap bears the fee alone (exchanges waive it), at most its own 10.00, whenever it is
    # paid: nothing back. For the upsell the 5.00 the exchange is short comes first from
    # the whole return's payout, so the return opens without 10.00 of the fee, and the
    # cap bears 5.00 (5.00 back net, the prepaid 5.00 given back with the exchange).
    # Paid early, the cap was refunded in full (the fee left to the exchange, then waived
    # with it): 10.00 back, and 0.00 at completion.
    fees = FeePolicy(return_shipping=eur("15.00"), fees_only_from_payout=True)
    seen = set()
    for timing in TIMINGS.values():
        made = native_harness(ReturnPolicy(platform_mode=mode, fees=fees, refund_trigger=timing))
        return_id = request(made, swap(price), caps(1))
        handed_in(made, return_id)
        receive(made, return_id, "r1", passed("L2"))
        receive(made, return_id, "r2", passed("L1", qc="fail"))
        record = closed_without_review(made, return_id)
        back = refunded(made, return_id) + Money.sum(
            (call.args["amount"] for call in made.ports.payments.calls_to("refund")), "EUR"
        )
        seen.add((back - Money.sum(charged(made), "EUR"), record.return_shipping_fee))
    upsell = price == "30.00"
    assert seen == {(eur("5.00"), eur("5.00")) if upsell else (eur("0.00"), eur("10.00"))}
