"""What capturing an instant exchange's authorization takes: what the goods shipped cost that
no returned unit paid for, never more than was authorized.

The authorization holds the exchanged units' worth. For a for-less exchange (both caps, 10.00
each, for one new cap at 15.00) a capture took all of it (20.00) when the units never came
back (the tick, a return to origin, a cancel) and left the exchange's outbound shipping
unpaid when they failed QC; the customer kept a 15.00 cap (and its shipping) without paying,
so that is what is owed (Loop's instant exchanges: the hold is for the new item's value,
the charge for the new product). Where some exchanged lines came back and the others never
did, the tick took the whole authorization as well, the items of the lines that came back
included. An even exchange and an upsell are captured as before: all that was authorized.
Both modes: returnflow and the platform agree, so a native return was never sent to a person
for it, and is not now."""

from __future__ import annotations

import pytest

from _builders import (
    SHOP,
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
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    FeePolicy,
    RequestLine,
    ReturnPolicy,
)
from returnflow.domain.model import QcResult
from returnflow.domain.policy import ReleaseTrigger
from returnflow.testing import Harness

MODES = ["tags", "native"]
ENDS = {
    "tick": (("in_transit", "released"), ()),
    "returned to origin": (("cancelled", "released"), ()),
    "cancelled": (("cancelled", "released"), ("parcel lost",)),
}
"""How each way of never coming back leaves the return: its state and review reasons."""


def caps_for(price: str | None) -> RequestLine:
    """Both caps (10.00 each) for one new cap priced ``price`` (``None``: their worth)."""
    new = Exchange(variant_id="cap-b", unit_price=eur(price) if price else None)
    return RequestLine(order_line_id="L2", quantity=2, outcome=new)


def instant(mode: str, shipping: str | None = None) -> Harness:
    """A harness whose exchanges are released when the parcel is handed in, the units due
    back within 5 days (``shipping``: the exchange's outbound shipping)."""
    fees = FeePolicy(exchange_shipping=eur(shipping) if shipping else None)
    policy = ReturnPolicy(
        platform_mode=mode,
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        instant_exchange_return_days=5,
        stuck_after={},
        fees=fees,
    )
    return native_harness(policy)


def payments(made: Harness) -> list[tuple[str, str]]:
    return [(p.kind, str(p.amount)) for p in made.ports.payments.payments]


def never_back(made: Harness, return_id: str, way: str) -> None:
    """The handed-in units never come back: the tick after the window, the parcel sent back
    to the customer, or an agent cancelling the return of a lost parcel."""
    if way == "tick":
        made.clock.advance(days=6)
        assert made.service.tick().captured == (return_id,)
    elif way == "returned to origin":
        scan = CarrierUpdate(
            shop=SHOP,
            return_id=return_id,
            event_id="rto",
            status=CarrierStatus.RETURN_TO_ORIGIN,
        )
        made.service.handle(scan)
    else:
        made.service.flag(SHOP, return_id, "parcel lost")
        made.service.cancel(SHOP, return_id, actor="agent:ann")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("way", ["tick", "returned to origin", "cancelled"])
@pytest.mark.parametrize(
    ("shipping", "owed"), [(None, "15.00"), ("3.00", "18.00")], ids=["", "shipping"]
)
def test_a_for_less_exchange_never_returned_is_captured_for_the_new_item(
    mode: str, way: str, shipping: str | None, owed: str
) -> None:
    # 20.00 authorized for the caps; they never come back: the customer keeps the new cap
    # (15.00) and its outbound shipping, which no payout pays. Before, 20.00 was taken.
    made = instant(mode, shipping)
    return_id = request(made, caps_for("15.00"))
    handed_in(made, return_id)
    never_back(made, return_id, way)
    assert payments(made) == [("authorization", "20.00 EUR"), ("capture", f"{owed} EUR")]
    assert made.ports.commerce.refunds == []
    record = made.service.get(SHOP, return_id)
    # nothing sent to a person but the lost parcel the agent flagged
    assert (record.state, record.review_reasons) == ENDS[way]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("shipping", "owed"), [(None, "15.00"), ("3.00", "18.00")], ids=["", "shipping"]
)
def test_a_for_less_exchange_failing_qc_is_captured_for_the_item_and_its_shipping(
    mode: str, shipping: str | None, owed: str
) -> None:
    # Both caps fail QC: the capture pays the new cap and the outbound shipping no settlement
    # takes (no exchanged unit is settled). Before, the shipping went unpaid (15.00).
    made = instant(mode, shipping)
    return_id = request(made, caps_for("15.00"))
    (cap,) = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(cap.id, 2, qc=QcResult.FAIL))
    closed_without_review(made, return_id)
    assert payments(made) == [("authorization", "20.00 EUR"), ("capture", f"{owed} EUR")]
    assert made.ports.commerce.refunds == []
    if mode == "native":
        there = made.service.get(SHOP, return_id).refs.platform_return_id or ""
        assert platform(made).refunded(SHOP, there) == eur("0.00")


@pytest.mark.parametrize("mode", MODES)
def test_two_for_less_lines_one_failing_the_other_back_captures_the_failed_line_item(
    mode: str,
) -> None:
    # The T-shirt (25.00) for one at 15.00 and both caps (20.00) for one at 15.00, 45.00
    # authorized. The T-shirt fails QC, the caps pass: the capture pays the new T-shirt
    # (15.00); the caps pay their new cap and the outbound shipping (3.00), the 2.00 left
    # refunded (tags mode) or on the platform (native mode).
    made = instant(mode, "3.00")
    return_id = request(made, swap("15.00"), caps_for("15.00"))
    tee, cap = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id, qc=QcResult.FAIL), passed(cap.id, 2))
    closed_without_review(made, return_id)
    assert payments(made) == [("authorization", "45.00 EUR"), ("capture", "15.00 EUR")]
    if mode == "tags":
        assert [str(r.amount) for r in made.ports.commerce.refunds] == ["2.00 EUR"]
    else:
        there = made.service.get(SHOP, return_id).refs.platform_return_id or ""
        assert platform(made).refunded(SHOP, there) == eur("2.00")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("caps_back", ["none", "one failing"])
def test_the_tick_captures_only_the_items_of_the_lines_not_back(mode: str, caps_back: str) -> None:
    # As above; the T-shirt comes back accepted, the caps do not (or one cap comes back
    # failing QC and the other does not): the tick captures the new cap (15.00) alone, the
    # T-shirt paying for its own new one. Before, all 45.00 was taken.
    made = instant(mode, "3.00")
    return_id = request(made, swap("15.00"), caps_for("15.00"))
    tee, cap = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    back = [passed(tee.id)]
    if caps_back == "one failing":
        back.append(passed(cap.id, qc=QcResult.FAIL))
    receive(made, return_id, "r1", *back)
    made.clock.advance(days=6)
    assert made.service.tick().captured == (return_id,)
    assert payments(made) == [("authorization", "45.00 EUR"), ("capture", "15.00 EUR")]
    assert made.service.get(SHOP, return_id).review_reasons == ()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("way", ["tick", "returned to origin"])
@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (
            None,
            [("charge", "3.00 EUR"), ("authorization", "20.00 EUR"), ("capture", "20.00 EUR")],
        ),
        (
            "30.00",
            [("charge", "13.00 EUR"), ("authorization", "20.00 EUR"), ("capture", "20.00 EUR")],
        ),
    ],
    ids=["even", "upsell"],
)
def test_even_and_upsell_exchanges_never_returned_are_captured_whole(
    mode: str, way: str, price: str | None, expected: list[tuple[str, str]]
) -> None:
    # An even exchange (its outbound shipping, 3.00, paid up front) and an upsell (its
    # difference and the shipping, 13.00, paid up front): the new cap costs at least what
    # was authorized, so all of it is taken, as before.
    made = instant(mode, "3.00")
    return_id = request(made, caps_for(price))
    handed_in(made, return_id)
    never_back(made, return_id, way)
    assert payments(made) == expected
