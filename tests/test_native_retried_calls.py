"""Native mode: a platform call retried is the call its first attempt sent, under the same
key, and a retry stops when nothing is left to do (issue 19): a processing whose refund the
platform's money moved, a balance paid, units a person took out in the platform's admin,
and effects of a return that ended before its platform return opened."""

from __future__ import annotations

from typing import Any

import attrs
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
    tee_and_caps,
    three_at_ten,
)
from returnflow import Exchange, RequestLine, ReturnPolicy
from returnflow.domain.policy import MoneyAuthority, RefundTrigger, ReleaseTrigger
from returnflow.errors import PortError
from returnflow.ports.platform_returns import FinancialOutcome, ProcessResult, Quantity
from returnflow.testing import FakePorts, Harness
from returnflow.testing.fakes import FakePort
from returnflow.testing.platform_returns import FakePlatformReturns


def same_call_per_key(port: FakePort, operation: str) -> None:
    """Every call of ``operation`` under a key sent what the first one under it sent."""
    sent: dict[str | None, object] = {}
    for call in port.calls_to(operation):
        assert sent.setdefault(call.idempotency_key, call.args) == call.args


class KeepsMoreLosesAnswers(FakePlatformReturns):
    """A platform whose figure keeps 1.00 more than returnflow's, and that processes a call
    and then times out while ``lose`` says so: the units are processed, the answer lost."""

    lose = False
    always = False
    """Every answer is lost while ``lose`` says so, not only each key's first."""

    def calculate(self, shop: str, return_id: str, lines: Any = None, **kw: Any) -> Any:
        outcome: FinancialOutcome = super().calculate(shop, return_id, lines, **kw)
        more = eur("1.00")
        return attrs.evolve(outcome, fees=outcome.fees + more, refund=outcome.refund - more)

    def process(self, shop: str, return_id: str, lines: Any, **kwargs: Any) -> ProcessResult:
        first = kwargs["idempotency_key"] not in {c.idempotency_key for c in self.calls}
        result = super().process(shop, return_id, lines, **kwargs)
        if (first or self.always) and self.lose:
            raise PortError("platform_returns", "process", "timed out", retryable=True)
        return result


def test_a_processing_whose_refund_the_platform_moved_is_sent_again_as_it_was() -> None:
    # Three units at 10.00, 10.00 and 9.99, refunded per receipt; the platform keeps 1.00
    # more of each call and its money wins. The second call (two units, 18.99 by the
    # platform) is processed and its answer lost: the retry must send 18.99 again under its
    # key, not returnflow's 19.99 (the platform's figure for the units is gone once they
    # are processed).
    ports = FakePorts()
    ports.commerce.add_order(attrs.evolve(tee_and_caps(), lines=[three_at_ten()]))
    policy = ReturnPolicy(
        platform_mode="native",
        refund_trigger=RefundTrigger.ON_RECEIVED,
        platform_money=MoneyAuthority.PLATFORM,
    )
    there = KeepsMoreLosesAnswers(ports.commerce)
    made = Harness(policy=policy, ports=ports, platform_returns=there)
    return_id = request(made, RequestLine(order_line_id="L3", quantity=3))
    receive(made, return_id, "r1", passed("L3"))
    there.lose = True
    receive(made, return_id, "r2", passed("L3", 2))
    there.lose = False
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("closed", ())
    calls = there.calls_to("process")
    assert [(c.outcome, str(c.args["refund"].amount)) for c in calls] == [
        ("ok", "9.00"),
        ("ok", "18.99"),
        ("replayed", "18.99"),
    ]
    same_call_per_key(there, "process")


def test_a_processing_given_up_and_closed_by_a_person_sends_what_it_decided() -> None:
    # As above, but every answer of the processing is lost until it is given up and the
    # return goes to a person, who closes it: the processing delivered again sends the
    # platform's 18.99 it decided (and that moved), not returnflow's figure.
    ports = FakePorts()
    ports.commerce.add_order(attrs.evolve(tee_and_caps(), lines=[three_at_ten()]))
    policy = ReturnPolicy(
        platform_mode="native",
        refund_trigger=RefundTrigger.ON_RECEIVED,
        platform_money=MoneyAuthority.PLATFORM,
        max_attempts=2,
    )
    there = KeepsMoreLosesAnswers(ports.commerce)
    made = Harness(policy=policy, ports=ports, platform_returns=there)
    return_id = request(made, RequestLine(order_line_id="L3", quantity=3))
    receive(made, return_id, "r1", passed("L3"))
    there.lose, there.always = True, True
    receive(made, return_id, "r2", passed("L3", 2))
    made.dispatch_due()
    assert made.service.get(SHOP, return_id).status == "needs_review"
    there.lose = False
    made.service.close(SHOP, return_id)
    made.dispatch_due()
    closed_without_review(made, return_id)
    calls = there.calls_to("process")
    assert {str(c.args["refund"].amount) for c in calls[1:]} == {"18.99"}
    same_call_per_key(there, "process")


@pytest.mark.parametrize("answers_lost", [False, True], ids=["answered", "answers-lost"])
@pytest.mark.parametrize(
    ("refund_trigger", "first"),
    [(RefundTrigger.ON_HANDED_IN, "scan"), (RefundTrigger.ON_RECEIVED, "cap")],
    ids=["item-alone", "item-with-the-cap"],
)
def test_a_processing_of_items_shipped_ahead_notes_the_figure_its_first_attempt_compared(
    refund_trigger: RefundTrigger, first: str, answers_lost: bool
) -> None:
    # An instant exchange of the T-shirt (25.00, even) released when handed in, and a cap
    # (10.00) refunded. The new item is processed ahead of the T-shirt paying for it, in a
    # call of its own (the scan) or with the cap (its receipt implies the hand-in): the
    # platform asks 25.00 for it there, which the T-shirt's call pays. When that call acts
    # and its answer is lost, the retry finds the item processed and the platform's figure
    # for it 0.00: the figure noted must be the one compared before the call, or the
    # T-shirt's call is refunded in full by the platform (25.00 against returnflow's 0.00).
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        refund_trigger=refund_trigger,
    )
    made = native_harness(policy)
    there = platform(made)
    if answers_lost:
        there.lose_answers("process", times=None)  # every processing acts, its answer lost
    return_id = request(made, swap("25.00"), caps(1))
    tee, cap = made.service.get(SHOP, return_id).lines
    if first == "scan":
        handed_in(made, return_id)
    else:
        receive(made, return_id, "r1", passed(cap.id))
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.exchange_status) == (
        ("in_transit" if first == "scan" else "item_received"),
        "released",
    )
    receive(made, return_id, "r2", passed(tee.id), *([passed(cap.id)] if first == "scan" else []))
    while made.dispatch_due().failed:  # the retries, until every answer came
        pass
    record = closed_without_review(made, return_id)
    nets = [
        entry.payload.get("platform_net")
        for entry in record.history
        if entry.event == "platform_return_processed"
    ]
    assert "-25.00 EUR" in nets
    assert there.refunded(SHOP, record.refs.platform_return_id or "") == eur("10.00")
    outcomes = [call.outcome for call in there.calls_to("process")]
    assert outcomes.count("ok") == 3 if first == "scan" else 2
    assert outcomes.count("replayed") == (outcomes.count("ok") if answers_lost else 0)
    same_call_per_key(there, "process")


class OwesMoreLosesPayments(FakePlatformReturns):
    """A platform that prices the new items 10.00 higher than returnflow (it says 10.00
    more is owed)."""

    def open_return(self, shop: str, order_id: str, lines: Any, **kwargs: Any) -> Any:
        more = eur("10.00")
        kwargs["exchange_lines"] = [
            attrs.evolve(x, unit_price=x.unit_price + more) for x in kwargs["exchange_lines"]
        ]
        return super().open_return(shop, order_id, lines, **kwargs)


def test_a_balance_payment_retried_after_its_answer_was_lost_pays_once() -> None:
    # An upsell: the customer pays 15.00, and the platform (25.00 owed by its figure) is
    # told. The payment is recorded there and its answer lost: 10.00 is still owed, and the
    # retry must send the 15.00 again under its key (the platform answers it), not pay
    # another 10.00.
    ports = FakePorts()
    ports.commerce.add_order(tee_and_caps())
    there = OwesMoreLosesPayments(ports.commerce)
    there.lose_answers("pay_balance", times=None)
    made = Harness(policy=ReturnPolicy(platform_mode="native"), ports=ports, platform_returns=there)
    upsell = RequestLine(
        order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l", unit_price=eur("40"))
    )
    return_id = request(made, upsell)
    made.dispatch_due()
    calls = there.calls_to("pay_balance")
    assert [(c.outcome, c.args["amount"]) for c in calls] == [
        ("ok", eur("15.00")),
        ("replayed", eur("15.00")),
    ]
    record = made.service.get(SHOP, return_id)
    now = there.get_return(SHOP, record.refs.platform_return_id or "")
    assert (now.balance_paid, now.balance_owed) == (eur("15.00"), eur("10.00"))
    same_call_per_key(there, "pay_balance")


def test_units_a_person_took_out_in_the_admin_are_not_removed_again() -> None:
    # The T-shirt fails QC: at completion its unit is to come out of the platform return.
    # The removal fails once; meanwhile a person takes the unit out in the platform's
    # admin. The retry finds nothing of it left: the removal is done (the admin is
    # followed), not given up with the return sent to a person.
    made = native_harness()
    there = platform(made)
    return_id = request(made, RequestLine(order_line_id="L1", quantity=1), caps())
    there.fail("remove_lines")
    receive(made, return_id, "r1", passed("L1", qc="fail"), passed("L2", 2))
    record = made.service.get(SHOP, return_id)
    platform_id = record.refs.platform_return_id or ""
    line = there.get_return(SHOP, platform_id).line_id("L1")
    there.remove_lines(SHOP, platform_id, [Quantity(line, 1)], idempotency_key="admin")
    made.dispatch_due()
    record = closed_without_review(made, return_id)
    assert [c.outcome for c in there.calls_to("remove_lines")] == ["failed", "ok"]
    assert dict(there.get_return(SHOP, platform_id).removed)[line] == 1


def test_a_removal_retried_after_it_acted_takes_out_no_unit_that_is_to_be_processed() -> None:
    # Three units of L3: one passes QC, two fail. At completion the two come out and the
    # one is processed. The removal acts and its answer is lost: one unit is left there,
    # the one to process; the retry takes nothing more out.
    ports = FakePorts()
    ports.commerce.add_order(attrs.evolve(tee_and_caps(), lines=[three_at_ten()]))
    there = FakePlatformReturns(ports.commerce)
    there.lose_answers("remove_lines", times=None)
    made = Harness(policy=ReturnPolicy(platform_mode="native"), ports=ports, platform_returns=there)
    return_id = request(made, RequestLine(order_line_id="L3", quantity=3))
    receive(made, return_id, "r1", passed("L3"), passed("L3", 2, qc="fail"))
    made.dispatch_due()
    closed_without_review(made, return_id)
    record = made.service.get(SHOP, return_id)
    now = there.get_return(SHOP, record.refs.platform_return_id or "")
    line = now.line_id("L3")
    assert (dict(now.removed)[line], dict(now.processed)[line]) == (2, 1)
    assert [c.outcome for c in there.calls_to("remove_lines")] == ["ok"]


def test_a_return_cancelled_before_its_platform_return_opened_opens_none() -> None:
    # The return is cancelled before its opening was delivered: the platform return is not
    # opened (it would only be cancelled), and the cancel has nothing to cancel.
    made = native_harness(auto_dispatch=False)
    there = platform(made)
    return_id = request(made, caps())
    made.service.cancel(SHOP, return_id)
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.refs.platform_return_id) == ("cancelled", None)
    assert there.calls == []
    assert all(e.status == "done" for e in made.store.outbox(SHOP, return_id))
    assert any(e.event == "platform_return_not_opened" for e in record.history)


def test_an_opening_refused_after_its_return_was_cancelled_stops_and_so_does_the_cancel() -> None:
    # The opening fails, the return is cancelled, and the platform then refuses the opening
    # (the units are on another return by now): nothing was opened under its key, so
    # neither the opening nor the cancel is tried again until given up.
    made = native_harness()
    there = platform(made)
    there.fail("open_return")
    return_id = request(made, caps())
    made.service.cancel(SHOP, return_id)
    refused = PortError("platform_returns", "open_return", "0 unit(s) left", retryable=False)
    there.fail("open_return", error=refused)
    for _ in range(3):
        made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("cancelled", ())
    assert [c.outcome for c in there.calls_to("open_return")] == ["failed", "failed"]
    assert there.calls_to("cancel") == []
    assert all(e.status == "done" for e in made.store.outbox(SHOP, return_id))
    assert not any(e.event == "effect_failed" for e in record.history)


def test_an_opening_retried_after_its_return_was_cancelled_is_cancelled_right_away() -> None:
    # The opening's first attempt may have opened the platform return (its answer lost):
    # it is asked again under its key once the return is cancelled, and what opened is
    # cancelled.
    made = native_harness()
    there = platform(made)
    there.fail("open_return")
    return_id = request(made, caps())
    made.service.cancel(SHOP, return_id)
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    now = there.get_return(SHOP, record.refs.platform_return_id or "")
    assert now.status.value == "CANCELED"


def test_an_approval_of_a_return_cancelled_since_is_not_sent() -> None:
    # A return in review has its platform return opened as requested; it is approved and
    # then cancelled before the approval was delivered: the platform return is cancelled
    # as requested, never approved first.
    made = native_harness(ReturnPolicy(platform_mode="native", auto_approve=False))
    there = platform(made)
    return_id = request(made, caps())
    there.fail("approve", times=None)
    made.service.approve(SHOP, return_id)
    made.dispatch_due()
    made.service.cancel(SHOP, return_id)
    there.heal()
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    now = there.get_return(SHOP, record.refs.platform_return_id or "")
    assert (record.status, now.status.value) == ("cancelled", "CANCELED")
    assert [c.outcome for c in there.calls_to("approve")] == ["failed", "failed"]
