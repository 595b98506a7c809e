"""Native mode: the return shipping fee the platform return took at its opening stays
charged when QC removes the lines that were not exchanged (issue 19: a correct return
never reaches ``needs_review`` by a false difference with the platform's figure)."""

from __future__ import annotations

from _builders import (
    caps,
    closed_without_review,
    eur,
    native_harness,
    native_with,
    passed,
    platform,
    receive,
    request,
    swap,
    three_at_ten,
)
from returnflow import FeePolicy, RequestLine, ReturnPolicy


def test_an_exchange_left_alone_after_qc_keeps_the_fee_the_platform_return_bears() -> None:
    # Exchanges waive the fee (the default), but the caps' refund made the return bear it
    # when it was opened. Both caps fail QC and are removed from the platform return; only
    # the exchange is settled. The platform keeps the 5.00 fee (it has no call to take it
    # off): returnflow charges it too, and the figures agree.
    made = native_harness(
        ReturnPolicy(platform_mode="native", fees=FeePolicy(return_shipping=eur("5")))
    )
    return_id = request(made, swap("25.00"), caps())
    [opened] = platform(made).calls_to("open_return")
    assert opened.args["return_shipping_fee"] == eur("5.00")
    receive(made, return_id, "r1", passed("L1"), passed("L2", 2, qc="fail"))
    record = closed_without_review(made, return_id)
    assert [line.status for line in record.exchange_lines] == ["released"]
    assert made.ports.payments.calls_to("charge")[0].args["amount"] == eur("5.00")
    assert [call.args["amount"] for call in platform(made).calls_to("pay_balance")] == [eur("5.00")]


def test_a_second_return_of_a_line_is_valued_on_the_units_it_takes_on_both_sides() -> None:
    # 3 x 10.00 less 0.01 discount: the units are paid 10.00, 10.00, 9.99. The first return
    # takes units 0 and 1, the second unit 2: the platform values unit 2 too (9.99), not the
    # line's first unit (10.00), so the figures agree to the cent.
    made = native_with(three_at_ten())
    request(made, RequestLine(order_line_id="L3", quantity=2))
    second = request(made, RequestLine(order_line_id="L3", quantity=1))
    receive(made, second, "r1", passed("L3"))
    record = closed_without_review(made, second)
    assert [line.unit_amounts for line in record.lines] == [(eur("9.99"),)]
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("9.99")
