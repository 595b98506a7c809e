"""An instant exchange whose exchanged line comes back in part: the capture of the
authorization takes what the new items cost less what the accepted units of the same line
pay for them.

Two T-shirts (25.00 each) for two others at the same price, released on an authorization
of 50.00; one comes back accepted, the other never (or fails QC). The settlement pays one
new T-shirt with the unit back (exchange credit 25.00 for an exchange total of 25.00), and
the capture took both new T-shirts (50.00) all the same: the customer paid 75.00 for 50.00
of goods (tags mode), or the platform's figure (a refund of 25.00) sent a correct return to
a person (native mode). With a unit failing QC the capture took 50.00 and the unit back was
refunded (25.00): the right money in two moves where one does.

A priced new item (two caps at 10.00 for one at 15.00, or for one at 30.00, its 10.00
difference paid up front) was captured whole and its shortfall charged again by the
settlement of the cap back (5.00 or 10.00 twice). A settlement prices such an item whole
against the units back, so it is the capture that pays it and the cap back is paid out,
as when QC fails. Both modes agree and a native return is not sent to a person."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from _builders import (
    SHOP,
    eur,
    handed_in,
    order_line,
    passed,
    platform,
    receive,
    request,
    tee_and_caps,
)
from returnflow import CarrierStatus, CarrierUpdate, Exchange, RequestLine, ReturnPolicy
from returnflow.domain.model import QcResult, ReturnRecord
from returnflow.domain.money import Money
from returnflow.domain.policy import ReleaseTrigger
from returnflow.testing import Harness

MODES = ["tags", "native"]


def instant(mode: str, *lines: tuple[str, str, int], **more: Any) -> Harness:
    """A harness whose exchanges are released when the parcel is handed in (the units due
    back within 5 days), its platform knowing the order of ``lines`` (id, price, quantity);
    ``more``: other fields of its policy."""
    policy = ReturnPolicy(
        platform_mode=mode,
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        instant_exchange_return_days=5,
        stuck_after={},
        **more,
    )
    made = Harness(policy=policy)
    ordered = [
        order_line(line_id, f"SKU-{line_id}", price, units) for line_id, price, units in lines
    ]
    made.ports.commerce.add_order(attrs.evolve(tee_and_caps(), lines=ordered))
    return made


def exchanged(line_id: str, units: int, price: str | None = None, new: int = 1) -> RequestLine:
    """``units`` of ``line_id`` for ``new`` new items priced ``price`` (``None``: even)."""
    outcome = Exchange(variant_id="new", quantity=new, unit_price=eur(price) if price else None)
    return RequestLine(order_line_id=line_id, quantity=units, outcome=outcome)


def payments(made: Harness) -> list[tuple[str, str]]:
    return [(p.kind, str(p.amount)) for p in made.ports.payments.payments]


def refunded(made: Harness, record: ReturnRecord) -> str:
    """What the customer was refunded: on the platform return (native) or the order (tags)."""
    if made.platform_returns is not None:
        return str(platform(made).refunded(SHOP, record.refs.platform_return_id or ""))
    return str(Money.sum((r.amount for r in made.ports.commerce.refunds), "EUR"))


def settled(record: ReturnRecord) -> list[dict[str, str]]:
    """The settlements' exchange credit, exchange total, refund and balance due."""
    kept = ("exchange_credit", "exchange_total", "refund", "balance_due", "balance_refund")
    return [
        {key: str(value) for key, value in entry.payload.items() if key in kept}
        for entry in record.history
        if entry.event == "settled"
    ]


def closed(made: Harness, return_id: str) -> ReturnRecord:
    """The return, closed with no reason to review it (the figures agreed)."""
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("closed", ())
    return record


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("unreceived", ["nothing", "refund", "store_credit"])
def test_an_agent_closing_a_half_returned_even_line_captures_the_item_not_paid(
    mode: str, unreceived: str
) -> None:
    # One T-shirt back accepted, the other never: the agent closes, releasing the exchange
    # (shipped already). The unit back pays one new T-shirt; the capture takes the other.
    made = instant(mode, ("L1", "25", 2))
    return_id = request(made, exchanged("L1", 2, new=2))
    (tee,) = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id))
    made.service.close(SHOP, return_id, unreceived=unreceived, exchange="release")
    record = closed(made, return_id)
    assert payments(made) == [("authorization", "50.00 EUR"), ("capture", "25.00 EUR")]
    assert settled(record) == [{"exchange_credit": "25.00 EUR", "exchange_total": "25.00 EUR"}]
    assert refunded(made, record) == "0.00 EUR"


@pytest.mark.parametrize("mode", MODES)
def test_a_half_failed_even_line_captures_the_failed_units_item_and_refunds_nothing(
    mode: str,
) -> None:
    # One T-shirt passes QC, the other fails: the return completes with the receipt. The
    # unit that passed pays its new T-shirt, the capture the other. Before: 50.00 captured
    # and 25.00 refunded.
    made = instant(mode, ("L1", "25", 2))
    return_id = request(made, exchanged("L1", 2, new=2))
    (tee,) = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id), passed(tee.id, qc=QcResult.FAIL))
    record = closed(made, return_id)
    assert payments(made) == [("authorization", "50.00 EUR"), ("capture", "25.00 EUR")]
    assert settled(record) == [{"exchange_credit": "25.00 EUR", "exchange_total": "25.00 EUR"}]
    assert refunded(made, record) == "0.00 EUR"


@pytest.mark.parametrize("mode", MODES)
def test_a_line_partly_passed_partly_failed_partly_never_back(mode: str) -> None:
    # Three T-shirts for three others: one passes, one fails QC, one never comes. The
    # capture takes the two new T-shirts no unit back paid for (50.00 of 75.00).
    made = instant(mode, ("L1", "25", 3))
    return_id = request(made, exchanged("L1", 3, new=3))
    (tee,) = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id), passed(tee.id, qc=QcResult.FAIL))
    made.service.close(SHOP, return_id, unreceived="nothing", exchange="release")
    record = closed(made, return_id)
    assert payments(made) == [("authorization", "75.00 EUR"), ("capture", "50.00 EUR")]
    assert settled(record) == [{"exchange_credit": "25.00 EUR", "exchange_total": "25.00 EUR"}]
    assert refunded(made, record) == "0.00 EUR"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("then", ["closed", "the other comes"])
def test_the_tick_captures_only_what_the_unit_back_does_not_pay(mode: str, then: str) -> None:
    # One T-shirt back and accepted, the other not within the window: the tick captures
    # the new T-shirt the unit back does not pay (25.00, not 50.00). An agent then closes
    # (the unit back pays the other), or the late unit comes (the capture is given back).
    made = instant(mode, ("L1", "25", 2))
    return_id = request(made, exchanged("L1", 2, new=2))
    (tee,) = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id))
    made.clock.advance(days=6)
    assert made.service.tick().captured == (return_id,)
    assert payments(made) == [("authorization", "50.00 EUR"), ("capture", "25.00 EUR")]
    if then == "closed":
        made.service.close(SHOP, return_id, unreceived="nothing", exchange="release")
        credit, back = "25.00 EUR", []
    else:
        receive(made, return_id, "r2", passed(tee.id))
        credit, back = "50.00 EUR", [("refund", "25.00 EUR")]
    record = closed(made, return_id)
    assert payments(made) == [("authorization", "50.00 EUR"), ("capture", "25.00 EUR"), *back]
    assert settled(record) == [{"exchange_credit": credit, "exchange_total": credit}]
    assert refunded(made, record) == "0.00 EUR"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("other", ["never", "failing", "tick"])
@pytest.mark.parametrize(
    ("price", "paid"),
    [
        ("15.00", [("authorization", "20.00 EUR"), ("capture", "15.00 EUR")]),
        (
            "30.00",
            [("charge", "10.00 EUR"), ("authorization", "20.00 EUR"), ("capture", "20.00 EUR")],
        ),
    ],
    ids=["for-less", "upsell"],
)
def test_a_priced_item_of_a_half_returned_line_is_captured_and_the_unit_back_paid_out(
    mode: str, other: str, price: str, paid: list[tuple[str, str]]
) -> None:
    # Both caps (10.00 each) for one new cap at 15.00 (or at 30.00, its difference paid up
    # front); one cap back accepted, the other never (closed by an agent, or by the tick and
    # then an agent) or failing QC. The capture pays the new cap and the cap back is
    # refunded (10.00): the customer pays 5.00 (or 20.00 with what was paid up front) for
    # a cap kept. Before, a cap never back had the settlement charge the new cap's
    # shortfall (5.00 or 10.00) on top of the capture.
    made = instant(mode, ("L2", "10", 2))
    return_id = request(made, exchanged("L2", 2, price))
    (cap,) = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    back = [passed(cap.id)] + ([passed(cap.id, qc=QcResult.FAIL)] if other == "failing" else [])
    receive(made, return_id, "r1", *back)
    if other == "tick":
        made.clock.advance(days=6)
        assert made.service.tick().captured == (return_id,)
    if other != "failing":
        made.service.close(SHOP, return_id, unreceived="nothing", exchange="release")
    record = closed(made, return_id)
    assert payments(made) == paid
    assert settled(record) == [{"refund": "10.00 EUR", "exchange_credit": "10.00 EUR"}]
    assert refunded(made, record) == "10.00 EUR"


@pytest.mark.parametrize("mode", MODES)
def test_what_the_capture_paid_of_an_even_line_is_not_counted_for_another_lines_upsell(
    mode: str,
) -> None:
    # Two T-shirts (25.00 each) for two others, and both caps (10.00 each) for a hat at
    # 60.00, its difference (40.00) paid up front: 70.00 authorized. One T-shirt comes back
    # accepted, the other never; both caps fail QC. The capture is owed the other new
    # T-shirt (25.00) and the hat (60.00), 85.00, and takes the 70.00 authorized: 45.00 of
    # it pays for the hat, which with the 40.00 paid up front leaves 25.00 to give back.
    # Counting all 70.00 for the hat gave back 40.00: 15.00 short (tags mode), and the
    # platform's 15.00 owed sent the return to a person (native mode).
    made = instant(mode, ("L1", "25", 2), ("L2", "10", 2))
    return_id = request(made, exchanged("L1", 2, new=2), exchanged("L2", 2, "60.00"))
    tee, cap = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id), passed(cap.id, 2, qc=QcResult.FAIL))
    made.service.close(SHOP, return_id, unreceived="nothing", exchange="release")
    record = closed(made, return_id)
    assert payments(made) == [
        ("charge", "40.00 EUR"),
        ("authorization", "70.00 EUR"),
        ("capture", "70.00 EUR"),
        ("refund", "25.00 EUR"),
    ]
    assert settled(record) == [
        {
            "exchange_credit": "25.00 EUR",
            "exchange_total": "25.00 EUR",
            "balance_refund": "25.00 EUR",
        }
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("second", ["failed", "never"])
def test_units_back_after_a_capture_for_the_parcel_returned_to_origin_are_paid_out(
    mode: str, second: str
) -> None:
    # The carrier reports the parcel delivered, then returned to the sender, after the new
    # T-shirts shipped: both are captured (50.00). Then one T-shirt reaches the warehouse
    # after all and passes QC (the other fails, or never comes and an agent closes). The
    # capture paid both new T-shirts already: the unit back is refunded (25.00), not spent
    # on a T-shirt paid for. Before: nothing back, the customer paying 75.00 for 50.00 of
    # goods (tags), or the platform's refund of 25.00 sending the return to a person
    # (native).
    made = instant(mode, ("L1", "25", 2))
    return_id = request(made, exchanged("L1", 2, new=2))
    (tee,) = made.service.get(SHOP, return_id).lines
    for event_id, status in (
        ("s1", CarrierStatus.DELIVERED),
        ("rto", CarrierStatus.RETURN_TO_ORIGIN),
    ):
        made.service.handle(
            CarrierUpdate(shop=SHOP, return_id=return_id, event_id=event_id, status=status)
        )
        made.dispatch_due()
    back = [passed(tee.id)] + ([passed(tee.id, qc=QcResult.FAIL)] if second == "failed" else [])
    receive(made, return_id, "r1", *back)
    made.dispatch_due()
    if second == "never":
        made.service.close(SHOP, return_id, unreceived="nothing", exchange="release")
        made.dispatch_due()
    record = closed(made, return_id)
    assert payments(made) == [("authorization", "50.00 EUR"), ("capture", "50.00 EUR")]
    assert refunded(made, record) == "25.00 EUR"


# Returns an instant exchange's capture for the parcel returned to origin keeps: the
# order's lines (id, price, units), the return's lines (its first line's unit comes back
# accepted, receipt "r1"; its second's, or the first's other unit, fails QC, "r2"), and
# what is authorized, captured and refunded. The capture pays every new item; the unit back
# is paid out, its new item being paid already.
CAPTURED_KINDS: dict[str, tuple[list[tuple[str, str, int]], list[RequestLine], list[str]]] = {
    # a T-shirt (25.00) and a cap (10.00), each for another at the same price
    "two even lines": (
        [("L1", "25", 1), ("L2", "10", 1)],
        [exchanged("L1", 1), exchanged("L2", 1)],
        ["35.00 EUR", "35.00 EUR", "25.00 EUR"],
    ),
    # the T-shirt for one at 20.00, the cap for one at 12.00 (32.00 of new items)
    "two priced lines": (
        [("L1", "25", 1), ("L2", "10", 1)],
        [exchanged("L1", 1, "20.00"), exchanged("L2", 1, "12.00")],
        ["35.00 EUR", "32.00 EUR", "25.00 EUR"],
    ),
    # two T-shirts for two others
    "one line": (
        [("L1", "25", 2)],
        [exchanged("L1", 2, new=2)],
        ["50.00 EUR", "50.00 EUR", "25.00 EUR"],
    ),
}


def back_to_origin(mode: str, kind: str, facts: str, *, review: bool) -> Harness:
    """A return of ``kind`` (:data:`CAPTURED_KINDS`) delivered to the carrier, then the
    parcel returned to origin and the two receipts in the order ``facts`` names ("rto" the
    return to origin, "r1" and "r2" the receipts). ``review``: the return waits for a
    person's approval, every fact parked until it is approved, and applied in the change
    that approves it; else each fact is applied and its effects delivered in turn."""
    ordered, lines, _ = CAPTURED_KINDS[kind]
    made = instant(mode, *ordered, **({"auto_approve_limit": eur("10.00")} if review else {}))
    return_id = request(made, *lines)
    first, *other = made.service.get(SHOP, return_id).lines
    second = other[0] if other else first

    def carrier(event_id: str, status: CarrierStatus) -> None:
        made.service.handle(
            CarrierUpdate(shop=SHOP, return_id=return_id, event_id=event_id, status=status)
        )

    steps = {
        "s1": lambda: carrier("s1", CarrierStatus.DELIVERED),
        "rto": lambda: carrier("rto", CarrierStatus.RETURN_TO_ORIGIN),
        "r1": lambda: receive(made, return_id, "r1", passed(first.id)),
        "r2": lambda: receive(made, return_id, "r2", passed(second.id, qc=QcResult.FAIL)),
    }
    for step in ["s1", *facts.split(", ")]:
        steps[step]()
        if not review:
            made.dispatch_due()
    if review:
        assert made.service.get(SHOP, return_id).status == "pending_review"
        made.service.approve(SHOP, return_id)
        made.dispatch_due()
    return made


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(CAPTURED_KINDS))
@pytest.mark.parametrize("facts", ["rto, r1, r2", "r1, r2, rto", "r1, rto, r2"])
def test_units_back_in_the_change_that_captures_for_the_return_to_origin_are_paid_out(
    mode: str, kind: str, facts: str
) -> None:
    # Every fact comes while the return waits for a person's approval: delivered, returned
    # to origin, one unit passing QC and another failing, in any order. Approved, the
    # payment is authorized, the new items ship, and one change captures them for the
    # return to origin and completes with the receipts: the capture pays every new item,
    # the unit back is paid out. Native mode's figure for the processing counted the unit
    # back as paying its line's new item, the capture paying only the other's (0.00
    # against 25.00), and sent the return to a person.
    made = back_to_origin(mode, kind, facts, review=True)
    record = closed(made, "R0001")
    authorized, captured, back = CAPTURED_KINDS[kind][2]
    assert payments(made) == [("authorization", authorized), ("capture", captured)]
    assert refunded(made, record) == back


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(CAPTURED_KINDS))
def test_units_back_after_the_capture_for_the_return_to_origin_are_paid_out_in_any_change(
    mode: str, kind: str
) -> None:
    # The same facts, each applied and its effects delivered before the next comes: the
    # capture and its payment on the platform return are done long before the receipts,
    # and the figure for the processing counts the items the capture paid all the same.
    made = back_to_origin(mode, kind, "rto, r1, r2", review=False)
    record = closed(made, "R0001")
    authorized, captured, back = CAPTURED_KINDS[kind][2]
    assert payments(made) == [("authorization", authorized), ("capture", captured)]
    assert refunded(made, record) == back
