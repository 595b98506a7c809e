"""Native mode: a person processes units in the platform's admin (Shopify's ``returnProcess``
from the admin, which refunds them and sends ``refunds/create``), whichever comes first, the
webhook or returnflow's processing (issue 19: a change made there is followed, not fought).

* The refund arriving before returnflow asked for any processing is kept as a fact, not a
  reason to review: the processing follows the person when it comes (their units are not
  refunded again, their money is compared with returnflow's figure for them). A refund no
  unit processed there explains still goes to a person, when the processing comes.
* The units returnflow still sends are compared with the platform's figure for those units
  (``returnCalculate`` of the reduced set), not left unchecked.
* A processing a person left nothing of still gives back the order's shipping and duties
  returnflow's settlement gives back: a processing with no lines, under its own key.

Every case runs with the webhook before and after returnflow's processing: both end alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from _builders import (
    ORDER_ID,
    SHOP,
    caps,
    closed_without_review,
    eur,
    handed_in,
    passed,
    platform,
    receive,
    request,
    tee_and_caps,
)
from returnflow import PlatformReturnEvent, ReturnPolicy
from returnflow.domain.money import Money
from returnflow.domain.order import Duty
from returnflow.domain.policy import MoneyAuthority
from returnflow.ports.platform_returns import DutyRefund, FinancialOutcome, Quantity
from returnflow.testing import FakePorts, Harness
from returnflow.testing.platform_returns import FakePlatformReturns

ORDERS = pytest.mark.parametrize("early", [True, False], ids=["webhook-first", "webhook-last"])
DUTY = "gid://shopify/Duty/7"


class _ValuesCapsLower(FakePlatformReturns):
    """A platform whose figure for a processing call's units is 1.00 below returnflow's
    (its own pricing of the caps), that keeps the lines each calculation was asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calculated: list[tuple[Quantity, ...] | None] = []

    def calculate(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity] | None = None,
        *,
        exchange_lines: Sequence[Quantity] = (),
        shipping_fee: bool | Money = True,
    ) -> FinancialOutcome:
        self.calculated.append(None if lines is None else tuple(lines))
        outcome = super().calculate(
            shop, return_id, lines, exchange_lines=exchange_lines, shipping_fee=shipping_fee
        )
        less = eur("1.00")
        return attrs.evolve(outcome, returned=outcome.returned - less, refund=outcome.refund - less)


def harness(policy: ReturnPolicy, *, charges: bool = False, lower: bool = False) -> Harness:
    """Native mode under ``policy`` for the T-shirt and two caps (``charges``: with 9.00 of
    shipping and a 3.00 duty on the caps; ``lower``: the platform values the caps of a
    processing call 1.00 lower)."""
    placed = tee_and_caps()
    if charges:
        tee, capped = placed.lines
        placed = attrs.evolve(
            placed,
            shipping_price=eur("9.00"),
            lines=(tee, attrs.evolve(capped, duties=(Duty(DUTY, eur("3.00")),))),
        )
    ports = FakePorts()
    ports.commerce.add_order(placed)
    there = (_ValuesCapsLower if lower else FakePlatformReturns)(ports.commerce)
    return Harness(policy=policy, ports=ports, platform_returns=there)


def native(**policy: Any) -> ReturnPolicy:
    return ReturnPolicy(platform_mode="native", **policy)


def handed_in_caps(made: Harness) -> tuple[str, str, str]:
    """Two caps (10.00 each) handed in: the return's id, its platform return's id and the
    caps' return line id there."""
    return_id = request(made, caps())
    handed_in(made, return_id)
    there_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    return return_id, there_id, platform(made).get_return(SHOP, there_id).line_id("L2")


def refunds_create(made: Harness, return_id: str, refund_id: str, amount: str) -> str:
    """The platform's ``refunds/create`` webhook of ``refund_id``: the fact's status."""
    event = PlatformReturnEvent(
        shop=SHOP,
        return_id=return_id,
        event_id=f"w-{refund_id}",
        topic="refunds/create",  # type: ignore[arg-type]
        refund_id=refund_id,
        amount=eur(amount),
    )
    return made.service.handle(event).status


def by_a_person_then_received(
    made: Harness,
    units: int,
    refund: str,
    *,
    early: bool,
    webhook: bool = True,
    lose: bool = False,
) -> tuple[str, str, str]:
    """A person processes ``units`` caps in the platform's admin refunding ``refund``; its
    webhook (``webhook``) arrives before the warehouse's receipt of both caps (``early``)
    or after it (``lose``: the answer of returnflow's first processing call that acts is
    lost). The return's id, its platform return's id and the person's refund id."""
    return_id, there_id, line = handed_in_caps(made)
    done = platform(made).process(
        SHOP, there_id, [Quantity(line, units)], refund=eur(refund), idempotency_key="admin"
    )
    [refund_id] = done.refund_ids
    if webhook and early:
        assert refunds_create(made, return_id, refund_id, refund) == "applied"
        record = made.service.get(SHOP, return_id)  # kept: nothing to decide before processing
        assert (record.status, record.review_reasons) == ("in_transit", ())
    if lose:
        platform(made).lose_answers("process")
    receive(made, return_id, "r1", passed("L2", 2))
    if webhook and not early:
        assert refunds_create(made, return_id, refund_id, refund) == "applied"
    return return_id, there_id, refund_id


def mine(made: Harness) -> list[dict[str, Any]]:
    """returnflow's processing calls (not the person's)."""
    return [
        {
            "outcome": call.outcome,
            "units": sum(q.quantity for q in call.args["lines"]),
            "refund": call.args["refund"],
            "shipping": call.args["refund_shipping"],
            "duties": call.args["refund_duties"],
            "key": call.idempotency_key,
        }
        for call in platform(made).calls_to("process")
        if call.idempotency_key != "admin"
    ]


def sent(made: Harness) -> list[tuple[int, Money]]:
    return [(c["units"], c["refund"]) for c in mine(made) if c["outcome"] == "ok"]


def ended(made: Harness, return_id: str) -> tuple[Any, ...]:
    """What both orders of the facts must agree on."""
    record = made.service.get(SHOP, return_id)
    there = platform(made)
    there_id = record.refs.platform_return_id or ""
    return (
        record.status,
        record.review_reasons,
        sorted(record.refs.refund_ids),
        there.refunded(SHOP, there_id),
        sent(made),
    )


# -- (a) the person's refund arriving before the processing is followed, not reviewed --------


@ORDERS
def test_a_persons_refund_is_followed_whichever_comes_first(early: bool) -> None:
    made = harness(native())
    return_id, there_id, refund_id = by_a_person_then_received(made, 1, "10.00", early=early)
    record = closed_without_review(made, return_id)
    assert sent(made) == [(1, eur("10.00"))]  # the other cap only
    assert platform(made).refunded(SHOP, there_id) == eur("20.00")  # not 30.00
    assert refund_id in record.refs.refund_ids
    assert len(record.refs.refund_ids) == 2  # the person's and returnflow's, once each
    [units] = record.platform_units
    assert units.confirmed == 2


@pytest.mark.parametrize(
    ("policy", "units", "refund", "extra"),
    [
        (native(), 1, "10.00", {}),  # followed
        (native(), 1, "5.00", {}),  # to a person with both figures
        (native(platform_money=MoneyAuthority.PLATFORM), 1, "10.00", {"lower": True}),
        (native(refund_shipping="always", refund_duties="always"), 2, "20.00", {"charges": True}),
    ],
    ids=["followed", "less", "platform-wins", "charges"],
)
def test_both_orders_of_a_persons_refund_end_alike(
    policy: ReturnPolicy, units: int, refund: str, extra: dict[str, bool]
) -> None:
    runs = []
    for early in (True, False):
        made = harness(policy, **extra)
        return_id, _, _ = by_a_person_then_received(made, units, refund, early=early)
        runs.append(ended(made, return_id))
    assert runs[0] == runs[1]


@ORDERS
def test_a_person_refunding_less_goes_to_a_person_with_both_figures_in_either_order(
    early: bool,
) -> None:
    made = harness(native())
    return_id, there_id, _ = by_a_person_then_received(made, 1, "5.00", early=early)
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    [reason] = record.review_reasons
    assert "L2x1 processed in the platform's admin with a refund of 5.00 EUR" in reason
    assert "returnflow's figure for them is 10.00 EUR" in reason
    made.service.close(SHOP, return_id)
    made.dispatch_due()
    closed_without_review(made, return_id)
    assert sent(made) == [(1, eur("10.00"))]
    assert platform(made).refunded(SHOP, there_id) == eur("15.00")


def test_an_early_refund_no_unit_processed_there_explains_goes_to_a_person_at_processing() -> None:
    # A refund on the order that processed nothing of the return (a goodwill refund made in
    # the admin): nothing to follow, the money went out outside the settlement. It is kept
    # until the processing comes, which then asks a person first rather than paying twice.
    made = harness(native())
    return_id, there_id, _ = handed_in_caps(made)
    assert refunds_create(made, return_id, "gid://Refund/9", "10.00") == "applied"
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("in_transit", ())
    assert "gid://Refund/9" in record.refs.refund_ids
    receive(made, return_id, "r1", passed("L2", 2))
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    [reason] = record.review_reasons
    assert "gid://Refund/9 of 10.00 EUR" in reason
    assert "nothing was processed" in reason
    assert sent(made) == []
    # A person looked and closes it: returnflow's settlement goes out.
    made.service.close(SHOP, return_id)
    made.dispatch_due()
    closed_without_review(made, return_id)
    assert sent(made) == [(2, eur("20.00"))]
    assert platform(made).refunded(SHOP, there_id) == eur("20.00")


# -- (b) what is sent after a person's units is compared with the platform's figure for it --


@ORDERS
def test_the_units_left_are_compared_with_the_platforms_figure_for_them(early: bool) -> None:
    made = harness(native(), lower=True)
    return_id, _, _ = by_a_person_then_received(made, 1, "10.00", early=early)
    there = platform(made)
    assert isinstance(there, _ValuesCapsLower)
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    [reason] = record.review_reasons
    assert "the platform's refund 9.00 EUR differs from returnflow's settlement 10.00 EUR" in reason
    line = there.get_return(SHOP, record.refs.platform_return_id or "").line_id("L2")
    assert there.calculated[-1] == (Quantity(line, 1),)  # the cap left, not both
    assert sent(made) == []
    made.service.close(SHOP, return_id)  # a person looked: returnflow's figure goes out
    made.dispatch_due()
    closed_without_review(made, return_id)
    assert sent(made) == [(1, eur("10.00"))]


@ORDERS
def test_the_platforms_figure_for_the_units_left_is_sent_when_it_wins(early: bool) -> None:
    made = harness(native(platform_money=MoneyAuthority.PLATFORM), lower=True)
    return_id, there_id, _ = by_a_person_then_received(made, 1, "10.00", early=early)
    record = closed_without_review(made, return_id)
    assert sent(made) == [(1, eur("9.00"))]
    assert platform(made).refunded(SHOP, there_id) == eur("19.00")
    differs = [e.payload for e in record.history if e.event == "platform_money_differs"]
    assert differs == [{"platform": "9.00 EUR", "returnflow": "10.00 EUR"}]


def test_the_units_left_agreeing_with_the_platform_go_out_after_one_comparison() -> None:
    made = harness(native())
    return_id, _, _ = by_a_person_then_received(made, 1, "10.00", early=True)
    closed_without_review(made, return_id)
    assert sent(made) == [(1, eur("10.00"))]


def test_a_retry_of_the_units_left_after_a_lost_answer_sends_the_same_call() -> None:
    # The platform's figure wins (9.00 for the cap left); the call acts and its answer is
    # lost. The retry finds the cap processed (the platform's figure for it is gone) and
    # sends the same call under the same key, answered as the first.
    made = harness(native(platform_money=MoneyAuthority.PLATFORM), lower=True)
    return_id, there_id, _ = by_a_person_then_received(made, 1, "10.00", early=True, lose=True)
    made.dispatch_due()
    closed_without_review(made, return_id)
    calls = [(c["outcome"], c["units"], c["refund"]) for c in mine(made)]
    assert calls == [("ok", 1, eur("9.00")), ("replayed", 1, eur("9.00"))]
    assert len({c["key"] for c in mine(made)}) == 1
    assert platform(made).refunded(SHOP, there_id) == eur("19.00")


# -- (c) nothing left to process: the shipping and duties still go back ---------------------

GIVE_BACK = native(refund_shipping="always", refund_duties="always")


def charges_call(made: Harness) -> dict[str, Any]:
    [call] = [c for c in mine(made) if c["outcome"] in ("ok", "replayed") and c["units"] == 0]
    return call


@ORDERS
def test_a_processing_a_person_left_nothing_of_still_gives_back_shipping_and_duties(
    early: bool,
) -> None:
    made = harness(GIVE_BACK, charges=True)
    return_id, there_id, refund_id = by_a_person_then_received(made, 2, "20.00", early=early)
    record = closed_without_review(made, return_id)
    call = charges_call(made)
    assert (call["refund"], call["shipping"], call["duties"]) == (
        eur("0.00"),
        eur("4.00"),
        (DutyRefund(DUTY, eur("3.00")),),
    )
    assert call["key"].endswith("/process_platform_return/charges")
    there = platform(made)
    assert there.given_back(SHOP, ORDER_ID, "shipping") == eur("4.00")
    assert there.given_back(SHOP, ORDER_ID, DUTY) == eur("3.00")
    assert there.refunded(SHOP, there_id) == eur("20.00")  # the caps once, by the person
    assert len(record.refs.refund_ids) == 2  # the person's and the charges'
    assert refund_id in record.refs.refund_ids
    [event] = [e for e in made.ports.events.events if e.topic == "refunds/create"]
    assert event.payload["amount"] == "7.00 EUR"


def test_the_shipping_and_duties_after_a_persons_units_go_back_once_on_a_lost_answer() -> None:
    made = harness(GIVE_BACK, charges=True)
    return_id, _, _ = by_a_person_then_received(
        made, 2, "20.00", early=True, webhook=False, lose=True
    )
    made.dispatch_due()
    closed_without_review(made, return_id)
    charged = [(c["outcome"], c["shipping"]) for c in mine(made) if c["units"] == 0]
    assert charged == [("ok", eur("4.00")), ("replayed", eur("4.00"))]
    assert platform(made).given_back(SHOP, ORDER_ID, "shipping") == eur("4.00")


def test_nothing_left_and_nothing_to_give_back_is_still_done_without_a_call() -> None:
    made = harness(native(), charges=True)
    return_id, _, _ = by_a_person_then_received(made, 2, "20.00", early=True)
    closed_without_review(made, return_id)
    assert [c["outcome"] for c in mine(made)] == ["failed"]  # the whole call, refused
