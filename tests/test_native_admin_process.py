"""Native mode: units a person processed in the platform's admin (Shopify's ``returnProcess``
from the admin, which refunds them too) are followed, not fought (issue 19). returnflow's
processing takes only the units still unprocessed there, takes the person's as processed
with the refund the platform moved for them (never refunded again), and is done without a
call when nothing is left; a retry after a lost answer is not mistaken for a person."""

from __future__ import annotations

from typing import Any

from _builders import (
    NATIVE,
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
from returnflow import ReturnPolicy
from returnflow.domain.policy import MoneyAuthority
from returnflow.ports.platform_returns import Quantity
from returnflow.testing import Harness


def caps_handed_in(made: Harness) -> tuple[str, str, str]:
    """Two caps (10.00 each) returned and handed in, refunded on receipt: the return's id,
    its platform return's id and the caps' return line id there."""
    return_id = request(made, caps())
    handed_in(made, return_id)
    there_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    return return_id, there_id, platform(made).get_return(SHOP, there_id).line_id("L2")


def by_a_person(made: Harness, there_id: str, line: str, units: int, refund: str) -> None:
    """A person processes ``units`` caps in the platform's admin, refunding ``refund``."""
    platform(made).process(
        SHOP, there_id, [Quantity(line, units)], refund=eur(refund), idempotency_key="admin"
    )


def mine(made: Harness) -> list[tuple[str, int, Any, str]]:
    """returnflow's processing calls: outcome, units, refund and the key's last part."""
    return [
        (c.outcome, sum(q.quantity for q in c.args["lines"]), c.args["refund"], c.idempotency_key)
        for c in platform(made).calls_to("process")
        if c.idempotency_key != "admin"
    ]


def noted(made: Harness, return_id: str, event: str) -> list[dict[str, Any]]:
    record = made.service.get(SHOP, return_id)
    return [dict(entry.payload) for entry in record.history if entry.event == event]


def confirmed(made: Harness, return_id: str) -> int:
    [units] = made.service.get(SHOP, return_id).platform_units
    return units.confirmed


def test_a_processing_retried_after_a_person_processed_a_unit_takes_only_the_other() -> None:
    # The processing of both caps fails once; meanwhile a person processes one cap in the
    # admin with its 10.00. The retry processes the other cap with its 10.00 (the whole
    # call would be refused as more units than are left, the return sent to review, and
    # sent again at every close), and the return closes.
    made = native_harness()
    return_id, there_id, line = caps_handed_in(made)
    there = platform(made)
    there.fail("process")
    receive(made, return_id, "r1", passed("L2", 2))
    by_a_person(made, there_id, line, 1, "10.00")
    made.dispatch_due()
    closed_without_review(made, return_id)
    [(failed, *_), (ok, units, refund, key)] = mine(made)
    assert (failed, ok, units, refund) == ("failed", "ok", 1, eur("10.00"))
    assert key.endswith("/process_platform_return/L2x1")
    assert there.refunded(SHOP, there_id) == eur("20.00")  # not 30.00
    assert confirmed(made, return_id) == 2
    assert noted(made, return_id, "platform_processed_there") == [
        {
            "key": key.removesuffix("/L2x1"),
            "lines": "L2x1",
            "sent": "L2x1",
            "refund": "10.00 EUR",
            "platform": "10.00 EUR",
            "returnflow": "10.00 EUR",
        }
    ]
    assert noted(made, return_id, "platform_money_differs") == []
    assert all(e.status == "done" for e in made.store.outbox(SHOP, return_id))


def test_a_processing_whose_units_a_person_processed_first_sends_only_the_rest() -> None:
    # No failure: the person processes one cap before the receipt comes; returnflow's first
    # attempt finds it processed there and sends the other.
    made = native_harness()
    return_id, there_id, line = caps_handed_in(made)
    by_a_person(made, there_id, line, 1, "10.00")
    receive(made, return_id, "r1", passed("L2", 2))
    assert [(units, refund) for _, units, refund, _ in mine(made)] == [(1, eur("10.00"))]
    assert platform(made).refunded(SHOP, there_id) == eur("20.00")
    assert confirmed(made, return_id) == 2


def test_a_processing_with_nothing_left_to_process_is_done_without_a_call() -> None:
    made = native_harness()
    return_id, there_id, line = caps_handed_in(made)
    there = platform(made)
    there.fail("process")
    receive(made, return_id, "r1", passed("L2", 2))
    by_a_person(made, there_id, line, 2, "20.00")
    made.dispatch_due()
    closed_without_review(made, return_id)
    # the first attempt failed; the retry finds both processed, sends the same call under
    # its key (it may have acted), is refused: a person processed them, nothing is sent
    assert [outcome for outcome, *_ in mine(made)] == ["failed", "failed"]
    assert there.refunded(SHOP, there_id) == eur("20.00")
    assert confirmed(made, return_id) == 2
    [decided] = noted(made, return_id, "platform_processed_there")
    assert (decided["lines"], decided["sent"], decided["platform"]) == ("L2x2", "", "20.00 EUR")
    assert made.service.get(SHOP, return_id).refs.refund_ids == ()


def test_a_person_processing_every_unit_before_the_first_attempt_moves_nothing_more() -> None:
    # Every unit shows processed: an attempt may have acted with its answer lost (a crash
    # before it was recorded), so the call goes under its key; the platform refuses it (no
    # attempt acted), and the units are the person's.
    made = native_harness()
    return_id, there_id, line = caps_handed_in(made)
    by_a_person(made, there_id, line, 2, "20.00")
    receive(made, return_id, "r1", passed("L2", 2))
    closed_without_review(made, return_id)
    assert [outcome for outcome, *_ in mine(made)] == ["failed"]
    assert platform(made).refunded(SHOP, there_id) == eur("20.00")
    assert confirmed(made, return_id) == 2


def test_a_person_refunding_less_sends_the_return_to_review_then_is_followed() -> None:
    # Under the default policy (platform_money="review") a person refunding 5.00 for a cap
    # returnflow values at 10.00 sends the return to a person first; once closed, the
    # person's 5.00 stands (not topped up) and the other cap gets its 10.00.
    made = native_harness(NATIVE)
    return_id, there_id, line = caps_handed_in(made)
    by_a_person(made, there_id, line, 1, "5.00")
    receive(made, return_id, "r1", passed("L2", 2))
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    assert "refund of 5.00 EUR" in record.review_reasons[0]
    assert "figure for them is 10.00 EUR" in record.review_reasons[0]
    assert mine(made) == []
    made.service.close(SHOP, return_id)
    made.dispatch_due()
    closed_without_review(made, return_id)
    assert [(units, refund) for _, units, refund, _ in mine(made)] == [(1, eur("10.00"))]
    assert platform(made).refunded(SHOP, there_id) == eur("15.00")
    assert noted(made, return_id, "platform_money_differs") == [
        {"platform": "5.00 EUR", "returnflow": "10.00 EUR", "processed_there": "L2x1"}
    ]


def test_a_person_refunding_less_is_followed_when_the_platform_money_wins() -> None:
    made = native_harness(
        ReturnPolicy(platform_mode="native", platform_money=MoneyAuthority.PLATFORM)
    )
    return_id, there_id, line = caps_handed_in(made)
    by_a_person(made, there_id, line, 1, "5.00")
    receive(made, return_id, "r1", passed("L2", 2))
    closed_without_review(made, return_id)
    assert [(units, refund) for _, units, refund, _ in mine(made)] == [(1, eur("10.00"))]
    assert platform(made).refunded(SHOP, there_id) == eur("15.00")
    [differs] = noted(made, return_id, "platform_money_differs")
    assert (differs["platform"], differs["returnflow"]) == ("5.00 EUR", "10.00 EUR")


def test_a_retry_after_a_lost_answer_is_not_taken_for_a_person() -> None:
    # The processing acts and its answer is lost: the retry finds both caps processed and
    # sends the same call under its key (answered as the first), noting no person's units.
    made = native_harness()
    return_id, there_id, _ = caps_handed_in(made)
    there = platform(made)
    there.lose_answers("process")
    receive(made, return_id, "r1", passed("L2", 2))
    made.dispatch_due()
    closed_without_review(made, return_id)
    assert [outcome for outcome, *_ in mine(made)] == ["ok", "replayed"]
    assert there.refunded(SHOP, there_id) == eur("20.00")
    assert noted(made, return_id, "platform_processed_there") == []


def test_every_unit_processed_there_for_less_is_noted_and_followed() -> None:
    made = native_harness(
        ReturnPolicy(platform_mode="native", platform_money=MoneyAuthority.RETURNFLOW)
    )
    return_id, there_id, line = caps_handed_in(made)
    by_a_person(made, there_id, line, 2, "15.00")
    receive(made, return_id, "r1", passed("L2", 2))
    closed_without_review(made, return_id)
    assert [outcome for outcome, *_ in mine(made)] == ["failed"]  # refused: a person's
    assert platform(made).refunded(SHOP, there_id) == eur("15.00")
    assert noted(made, return_id, "platform_money_differs") == [
        {"platform": "15.00 EUR", "returnflow": "20.00 EUR", "processed_there": "L2x2"}
    ]
