"""Native mode: the platform return carries the fees returnflow's settlements charge (a
return method's own fee, a reset return's own), and a platform call retried after its
answer was lost is the same call under the same key (issue 19: found by the native model)."""

from __future__ import annotations

from _builders import (
    ORDER_ID,
    SHOP,
    caps,
    closed_without_review,
    eur,
    native_harness,
    passed,
    platform,
    receive,
    request,
    swap,
    tee_and_caps,
)
from returnflow import FeePolicy, RequestLine, ReturnPolicy, ReturnRequest
from returnflow.testing import FakePorts, Harness
from returnflow.testing.platform_returns import FakePlatformReturns


def test_a_reset_that_charges_the_return_shipping_fee_puts_it_on_its_platform_return() -> None:
    # Caps and the T-shirt, a 3.00 return shipping fee; only the T-shirt came back when the
    # return is reset. The first return settled nothing, so its platform return (cancelled)
    # never took the fee: the new return settles the T-shirt as it is made and charges the
    # fee (a 22.00 refund). Its platform return must carry the fee too, else the platform
    # suggests 25.00 and a correct return goes to review.
    made = native_harness(
        ReturnPolicy(platform_mode="native", fees=FeePolicy(return_shipping=eur("3")))
    )
    return_id = request(made, caps(), RequestLine(order_line_id="L1", quantity=1))
    receive(made, return_id, "r1", passed("L1"))
    _, new = made.service.reset(SHOP, return_id)
    closed_without_review(made, new.id)
    first, opened = platform(made).calls_to("open_return")
    assert first.args["return_shipping_fee"] == eur("3.00")
    assert opened.args["return_shipping_fee"] == eur("3.00")
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("22.00")


def test_the_platform_return_carries_the_return_methods_own_shipping_fee() -> None:
    # A 3.00 return shipping fee, 1.00 for a drop-off: the caps dropped off are settled with
    # the 1.00 fee (19.00 back). The platform return must carry the fee the settlement
    # charges, the method's, not the policy's 3.00 (the platform would suggest 17.00).
    fees = FeePolicy(return_shipping=eur("3"), method_fees={"drop_off": eur("1")})
    policy = ReturnPolicy(platform_mode="native", return_methods=("mail", "drop_off"), fees=fees)
    made = native_harness(policy)
    wanted = ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=[caps()], method="drop_off")
    return_id = made.service.request(wanted).id
    receive(made, return_id, "r1", passed("L2", 2))
    closed_without_review(made, return_id)
    [opened] = platform(made).calls_to("open_return")
    assert opened.args["return_shipping_fee"] == eur("1.00")
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("19.00")


def test_a_removal_retried_after_its_answer_was_lost_reuses_no_key_for_another_call() -> None:
    # The T-shirt fails QC and its exchange is cancelled: its unit and its exchange item come
    # out of the platform return. Each answer is lost once; the retry finds the unit, then
    # the item, out already and makes no call for it again (never a call of other arguments
    # under a key used).
    ports = FakePorts()
    there = FakePlatformReturns(ports.commerce)
    there.lose_answers("remove_lines", times=None)  # each removal acts, its answer is lost
    made = Harness(policy=ReturnPolicy(platform_mode="native"), ports=ports, platform_returns=there)
    made.ports.commerce.add_order(tee_and_caps())
    return_id = request(made, swap("20.00"), caps())
    receive(made, return_id, "r1", passed("L1", qc="fail"), passed("L2", 2))
    for _ in range(4):
        made.dispatch_due()
    closed_without_review(made, return_id)
    calls = there.calls_to("remove_lines")
    assert [call.outcome for call in calls] == ["ok", "ok"]
    args: dict[str | None, object] = {}
    for call in calls:
        assert args.setdefault(call.idempotency_key, call.args) == call.args
    record = made.service.get(SHOP, return_id)
    now = there.get_return(SHOP, record.refs.platform_return_id or "")
    assert dict(now.removed)[now.line_id("L1")] == 1
    assert dict(now.exchange_removed) == {record.exchange_lines[0].platform_item_id: 1}
