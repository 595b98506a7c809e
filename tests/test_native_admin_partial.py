"""Native mode: a call whose units or amount a person already dealt with in part in the
platform's admin takes only what is left (issue 19: a change made there is followed, not
fought). Units disposed of there are not disposed of again, and a disposal with nothing
left to dispose of is done without a call; a balance partly given back there is given back
only for the rest, once, a retry sending what the first attempt decided."""

from __future__ import annotations

from typing import Any

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
)
from returnflow import Exchange, RequestLine, ReturnPolicy
from returnflow.domain.inbound import Disposition
from returnflow.domain.policy import RefundTrigger
from returnflow.ports.platform_returns import ShopifyReturnStatus
from returnflow.testing import Harness

DECOUPLED = ReturnPolicy(platform_mode="native", refund_trigger=RefundTrigger.ON_HANDED_IN)
"""Refunded (processed) on hand-in, disposed of on receipt: a person can dispose of the
processed units in the platform's admin before the warehouse's receipt comes."""


def processed_caps(made: Harness) -> tuple[str, str, str]:
    """Two caps returned and processed on hand-in: the return's id, its platform return's
    id and the caps' return line id there."""
    return_id = request(made, caps())
    handed_in(made, return_id)
    there_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    return return_id, there_id, platform(made).get_return(SHOP, there_id).line_id("L2")


def noted(made: Harness, return_id: str, event: str) -> list[dict[str, Any]]:
    record = made.service.get(SHOP, return_id)
    return [dict(entry.payload) for entry in record.history if entry.event == event]


# -- disposals -----------------------------------------------------------------------------------


def test_units_a_person_disposed_of_in_the_admin_are_not_disposed_of_again() -> None:
    # Both caps are processed on hand-in; a person says one was not restocked in the
    # platform's admin. Both pass QC at the warehouse: returnflow disposes of the one left
    # (restocked), not of both (the platform refuses a second disposition of a unit), and
    # notes the person's.
    made = native_harness(DECOUPLED)
    return_id, there_id, line = processed_caps(made)
    there = platform(made)
    there.dispose(SHOP, there_id, line, 1, Disposition.NOT_RESTOCKED, idempotency_key="admin")
    assert dict(there.get_return(SHOP, there_id).disposed) == {line: 1}
    receive(made, return_id, "r1", passed("L2", 2))
    closed_without_review(made, return_id)
    assert there.dispositions(SHOP, there_id) == [
        (line, 1, Disposition.NOT_RESTOCKED),
        (line, 1, Disposition.RESTOCKED),
    ]
    [mine] = [c for c in there.calls_to("dispose") if c.idempotency_key != "admin"]
    assert (mine.outcome, mine.args["quantity"]) == ("ok", 1)
    assert str(mine.idempotency_key).endswith("/0x1")
    assert noted(made, return_id, "platform_disposed_there") == [
        {"lines": "L2: 1 RESTOCKED", "sent": "L2: 1 RESTOCKED", "platform": "L2: 1 NOT_RESTOCKED"}
    ]


def test_a_disposal_with_nothing_left_to_dispose_of_is_done_without_a_call() -> None:
    made = native_harness(DECOUPLED)
    return_id, there_id, line = processed_caps(made)
    there = platform(made)
    there.dispose(SHOP, there_id, line, 2, Disposition.RESTOCKED, idempotency_key="admin")
    receive(made, return_id, "r1", passed("L2", disposition="NOT_RESTOCKED"), passed("L2"))
    closed_without_review(made, return_id)
    assert [c.idempotency_key for c in there.calls_to("dispose")] == ["admin"]
    assert all(e.status == "done" for e in made.store.outbox(SHOP, return_id))
    assert noted(made, return_id, "platform_disposed_there") == [
        {
            "lines": "L2: 1 RESTOCKED, L2: 1 NOT_RESTOCKED",
            "sent": "",
            "platform": "L2: 2 RESTOCKED",
        }
    ]


def test_a_disposal_retried_after_a_person_disposed_of_a_unit_takes_only_what_is_left() -> None:
    # The disposal of both caps (one restocked, one not) fails once; meanwhile a person
    # restocks one in the admin. The retry finds one unit left to dispose of: the first
    # item (restocked) is there already, and the second goes as it was (same key).
    made = native_harness(DECOUPLED)
    return_id, there_id, line = processed_caps(made)
    there = platform(made)
    there.fail("dispose")
    receive(made, return_id, "r1", passed("L2"), passed("L2", disposition="NOT_RESTOCKED"))
    there.dispose(SHOP, there_id, line, 1, Disposition.RESTOCKED, idempotency_key="admin")
    made.dispatch_due()
    closed_without_review(made, return_id)
    assert there.dispositions(SHOP, there_id) == [
        (line, 1, Disposition.RESTOCKED),
        (line, 1, Disposition.NOT_RESTOCKED),
    ]
    mine = [c for c in there.calls_to("dispose") if c.idempotency_key != "admin"]
    assert [(c.outcome, c.args["disposition"]) for c in mine] == [
        ("failed", Disposition.RESTOCKED),
        ("ok", Disposition.NOT_RESTOCKED),
    ]
    assert str(mine[1].idempotency_key).endswith("/1")
    assert noted(made, return_id, "platform_disposed_there") == [
        {"lines": "L2: 1 RESTOCKED", "sent": "L2: 1 NOT_RESTOCKED", "platform": "L2: 1 RESTOCKED"}
    ]


def test_a_person_s_disposal_counts_against_the_item_of_its_kind() -> None:
    # One cap passes QC (restocked), one fails it (not restocked); a person already said in
    # the admin that one was not restocked. The person's unit is the failed one: returnflow
    # restocks the other, so the platform ends with one of each, not two not restocked.
    made = native_harness(DECOUPLED)
    return_id, there_id, line = processed_caps(made)
    there = platform(made)
    there.dispose(SHOP, there_id, line, 1, Disposition.NOT_RESTOCKED, idempotency_key="admin")
    receive(made, return_id, "r1", passed("L2"), passed("L2", disposition="NOT_RESTOCKED"))
    closed_without_review(made, return_id)
    assert sorted(there.get_return(SHOP, there_id).disposed_as(line).items()) == [
        (Disposition.NOT_RESTOCKED, 1),
        (Disposition.RESTOCKED, 1),
    ]
    [mine] = [c for c in there.calls_to("dispose") if c.idempotency_key != "admin"]
    assert (mine.args["quantity"], mine.args["disposition"]) == (1, Disposition.RESTOCKED)
    assert noted(made, return_id, "platform_disposed_there") == [
        {
            "lines": "L2: 1 NOT_RESTOCKED",
            "sent": "L2: 1 RESTOCKED",
            "platform": "L2: 1 NOT_RESTOCKED",
        }
    ]


def test_a_person_s_restock_counts_against_the_restocked_item() -> None:
    # The mirror: the person restocked one; returnflow's failed unit still goes as not
    # restocked, under the key of its item.
    made = native_harness(DECOUPLED)
    return_id, there_id, line = processed_caps(made)
    there = platform(made)
    there.dispose(SHOP, there_id, line, 1, Disposition.RESTOCKED, idempotency_key="admin")
    receive(made, return_id, "r1", passed("L2", disposition="NOT_RESTOCKED"), passed("L2"))
    closed_without_review(made, return_id)
    assert there.dispositions(SHOP, there_id) == [
        (line, 1, Disposition.RESTOCKED),
        (line, 1, Disposition.NOT_RESTOCKED),
    ]
    [mine] = [c for c in there.calls_to("dispose") if c.idempotency_key != "admin"]
    assert mine.args["disposition"] is Disposition.NOT_RESTOCKED


def test_a_disposal_retried_after_it_acted_disposes_of_no_unit_more() -> None:
    # Both caps are processed on hand-in, one comes back: its disposal acts and its answer
    # is lost. The other processed unit is still undisposed there, and is not the retry's:
    # the retry finds its own unit disposed of and sends nothing.
    made = native_harness(DECOUPLED)
    return_id, there_id, line = processed_caps(made)
    there = platform(made)
    there.lose_answers("dispose")
    receive(made, return_id, "r1", passed("L2"))
    made.dispatch_due()
    assert there.dispositions(SHOP, there_id) == [(line, 1, Disposition.RESTOCKED)]
    assert [c.outcome for c in there.calls_to("dispose")] == ["ok"]
    [entry] = [
        e for e in made.store.outbox(SHOP, return_id) if e.effect.kind == "dispose_platform_units"
    ]
    assert (entry.status, entry.attempts) == ("done", 2)  # the lost answer, then the retry
    assert made.service.get(SHOP, return_id).review_reasons == ()


# -- a balance given back ------------------------------------------------------------------------


def upsell() -> RequestLine:
    """The 25.00 T-shirt for another size at 40.00: the customer pays 15.00, recorded as
    paid on the platform return."""
    return RequestLine(
        order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l", unit_price=eur("40"))
    )


def paid_balance(made: Harness) -> tuple[str, str]:
    return_id = request(made, upsell())
    there_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    assert platform(made).get_return(SHOP, there_id).balance_paid == eur("15.00")
    return return_id, there_id


def test_a_balance_partly_given_back_in_the_admin_is_given_back_only_for_the_rest() -> None:
    # A person gives back 5.00 of the 15.00 paid in the platform's admin; the return is then
    # cancelled and returnflow gives back the balance: 10.00 there (15.00 would be refused
    # as more than is paid, and would give the 5.00 back twice).
    made = native_harness()
    return_id, there_id = paid_balance(made)
    there = platform(made)
    there.refund_balance(SHOP, there_id, eur("5.00"), idempotency_key="admin")
    made.service.cancel(SHOP, return_id)
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("cancelled", ())
    mine = [c for c in there.calls_to("refund_balance") if c.idempotency_key != "admin"]
    assert [(c.outcome, c.args["amount"]) for c in mine] == [("ok", eur("10.00"))]
    now = there.get_return(SHOP, there_id)
    assert (now.status, now.balance_paid) == (ShopifyReturnStatus.CANCELED, None)
    [refunded] = noted(made, return_id, "platform_balance_refunded")
    assert (refunded["amount"], refunded["there"]) == ("10.00 EUR", "5.00 EUR")


def test_a_partial_refund_retried_after_its_answer_was_lost_is_not_given_twice() -> None:
    # As above, and the 10.00 is given back there but its answer lost: the retry finds the
    # balance given back and gives nothing more (not another 10.00 less the 5.00).
    made = native_harness()
    return_id, there_id = paid_balance(made)
    there = platform(made)
    there.refund_balance(SHOP, there_id, eur("5.00"), idempotency_key="admin")
    there.lose_answers("refund_balance")
    made.service.cancel(SHOP, return_id)
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("cancelled", ())
    mine = [c for c in there.calls_to("refund_balance") if c.idempotency_key != "admin"]
    assert [c.args["amount"] for c in mine] == [eur("10.00")]
    assert there.get_return(SHOP, there_id).balance_paid is None
    [entry] = [
        e for e in made.store.outbox(SHOP, return_id) if e.effect.kind == "refund_platform_balance"
    ]
    assert (entry.status, entry.attempts) == ("done", 2)  # the lost answer, then the retry
    [decided] = noted(made, return_id, "platform_balance_refund_decided")
    assert (decided["amount"], decided["there"]) == ("10.00 EUR", "5.00 EUR")


def test_a_partial_refund_failing_is_retried_with_the_amount_it_decided() -> None:
    # The refund of the 10.00 left fails once: the retry sends the 10.00 decided again,
    # under the same key.
    made = native_harness()
    return_id, there_id = paid_balance(made)
    there = platform(made)
    there.refund_balance(SHOP, there_id, eur("5.00"), idempotency_key="admin")
    there.fail("refund_balance")
    made.service.cancel(SHOP, return_id)
    made.dispatch_due()
    mine = [c for c in there.calls_to("refund_balance") if c.idempotency_key != "admin"]
    assert [(c.outcome, c.args["amount"]) for c in mine] == [
        ("failed", eur("10.00")),
        ("ok", eur("10.00")),
    ]
    assert len({c.idempotency_key for c in mine}) == 1
