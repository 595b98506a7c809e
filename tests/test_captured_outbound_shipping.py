"""An instant exchange whose returned units fail QC: the capture of its authorization pays
for the new items first, then for their outbound shipping, and what the customer paid up
front pays the return shipping fee instead. The money is the same in both modes; in native
mode the platform return (which never carries the outbound shipping) agrees with it, so the
return closes without review."""

from __future__ import annotations

import pytest

from _builders import (
    SHOP,
    closed_without_review,
    eur,
    native_harness,
    passed,
    platform,
    receive,
    request,
    swap,
)
from returnflow import Exchange, FeePolicy, RequestLine, ReturnPolicy
from returnflow.domain.policy import ReleaseTrigger
from returnflow.domain.settlement import Fixed
from returnflow.testing import Harness

MODES = ["native", "tags"]


def _instant(mode: str, return_shipping: str, exchange_shipping: str) -> Harness:
    """A harness whose exchanges ship on an authorization once the parcel is handed in,
    with a return shipping fee and an outbound shipping for the new items."""
    fees = FeePolicy(
        return_shipping=Fixed(eur(return_shipping)),
        exchange_shipping=Fixed(eur(exchange_shipping)),
        waive_for_exchanges=False,
    )
    policy = ReturnPolicy(
        platform_mode=mode, fees=fees, exchange_release=ReleaseTrigger.ON_HANDED_IN
    )
    return native_harness(policy)


def _payments(made: Harness) -> list[tuple[str, str]]:
    return [
        (call.operation, str(call.args.get("amount", ""))) for call in made.ports.payments.calls
    ]


@pytest.mark.parametrize("mode", MODES)
def test_a_capture_pays_the_outbound_shipping_and_the_balance_up_front_the_return_fee(
    mode: str,
) -> None:
    # The T-shirt (25.00) for one at 20.00 shipped for 1.00, with a 7.00 return shipping
    # fee: the fees exceed the 5.00 difference, so 3.00 is paid up front. The receipt (QC
    # failed) waits for the authorization of 25.00; the new item shipped on it, so its
    # capture takes the item and its shipping (21.00), and the 7.00 fee is paid by the 3.00
    # and 4.00 more: 28.00 in all, the item, its shipping and the fee. The platform return
    # (the item paid by the capture) says 7.00 is owed; returnflow's figure once took the
    # outbound shipping off the balance (6.00), though the capture had paid it.
    made = _instant(mode, "7", "1")
    return_id = request(made, swap("20.00"))
    receive(made, return_id, "r1", passed("L1", qc="fail"))
    record = closed_without_review(made, return_id)
    assert _payments(made) == [
        ("charge", "3.00 EUR"),
        ("authorize", "25.00 EUR"),
        ("capture", "21.00 EUR"),
        ("charge", "4.00 EUR"),
    ]
    assert [line.status for line in record.exchange_lines] == ["released"]
    if mode == "native":
        [processed] = platform(made).calls_to("process")
        assert processed.args["refund"] == eur("0.00")


@pytest.mark.parametrize("mode", MODES)
def test_a_capture_that_paid_the_outbound_shipping_leaves_the_accepted_units_payout(
    mode: str,
) -> None:
    # Both caps (10.00 each) for one at 16.00 shipped for 4.00, with a 1.00 return shipping
    # fee: 1.00 is paid up front. One cap passes QC, the other fails: the capture takes the
    # new item and its shipping (20.00), the cap that passed is refunded less its share of
    # the fee (9.50), and of the 1.00 paid up front the failed cap's share (0.50) is kept and
    # the rest given back: 11.00 in all, the item, its shipping and the fee less one cap. The
    # platform (the item paid by the capture, no outbound shipping) refunds 10.00 less the
    # 1.00 fee it nets; returnflow's figure once took the 0.50 the balance kept for
    # outbound shipping (9.50).
    made = _instant(mode, "1", "4")
    line = RequestLine(
        order_line_id="L2",
        quantity=2,
        outcome=Exchange(variant_id="cap-x", unit_price=eur("16.00")),
    )
    return_id = request(made, line)
    receive(made, return_id, "r1", passed("L2", 1), passed("L2", 1, qc="fail"))
    closed_without_review(made, return_id)
    assert _payments(made) == [
        ("charge", "1.00 EUR"),
        ("authorize", "20.00 EUR"),
        ("capture", "20.00 EUR"),
        ("refund", "0.50 EUR"),
    ]
    if mode == "native":
        [processed] = platform(made).calls_to("process")
        assert processed.args["refund"] == eur("9.50")
    else:
        [refund] = made.ports.commerce.calls_to("refund")
        assert refund.args["amount"] == eur("9.50")


@pytest.mark.parametrize("mode", MODES)
def test_a_capture_pays_the_outbound_shipping_nothing_paid_up_front(mode: str) -> None:
    # The T-shirt (25.00) for one at 15.00 shipped for 1.00, with a 2.00 return shipping
    # fee: the difference covers the fees, nothing is paid up front. QC fails: the capture
    # takes the item and its shipping (16.00) and the fee is charged (2.00); the platform's
    # figure, the item paid apart, is the fee.
    made = _instant(mode, "2", "1")
    return_id = request(made, swap("15.00"))
    receive(made, return_id, "r1", passed("L1", qc="fail"))
    closed_without_review(made, return_id)
    assert _payments(made) == [
        ("authorize", "25.00 EUR"),
        ("capture", "16.00 EUR"),
        ("charge", "2.00 EUR"),
    ]


def test_the_platform_return_closes_with_nothing_owed() -> None:
    # As in the first test: the capture and the balance paid on the platform return cover
    # what it asks for the new item and the fee, so it holds nothing.
    made = _instant("native", "7", "1")
    return_id = request(made, swap("20.00"))
    receive(made, return_id, "r1", passed("L1", qc="fail"))
    record = closed_without_review(made, return_id)
    there = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert (there.status.value, there.balance_owed, there.exchange_on_hold) == (
        "CLOSED",
        None,
        False,
    )
