"""Facts in any order: a line's rounding cents may land on another of its payouts.

A line of 3 units paid 7.30 (2.50 each less 0.20 of discount) pays its units 2.44, 2.43 and
2.43. A warehouse receipt names a count of units, not which ones, so the receipt settled
first takes the unit with the extra cent: receipts of 1 and 2 units credit 2.44 + 4.86 in
one order and 2.43 + 4.87 in the other. No per-receipt rule avoids it (4 units paid 10.01,
received 2 and 2, cannot credit each receipt the same whichever comes first), so the fact
order property compares such payouts by number, by what they pay for and by total to the
cent (:func:`returnflow.testing.reordering.differences`). Anything more is still a
difference.
"""

from __future__ import annotations

from collections import Counter

import pytest

from returnflow import CarrierStatus, ReturnPolicy, StoreCredit, WarehouseReceipt
from returnflow.domain.policy import RefundTrigger
from returnflow.testing import reordering
from returnflow.testing.harness import Harness
from test_settlement import (
    SHOP,
    credited,
    eur,
    got,
    item,
    line,
    make_harness,
    make_order,
    request,
    scan,
)


def _credited_in(mode: str, first: int, second: int) -> tuple[Harness, str]:
    harness = make_harness(
        make_order(item("A", 3, eur("2.50"), discount=eur("0.20"))),
        ReturnPolicy(platform_mode=mode, refund_trigger=RefundTrigger.ON_RECEIVED),
    )
    record = request(harness, line("A", 3, StoreCredit()))
    scan(harness, record.id, "s1", CarrierStatus.DELIVERED)
    receipts = {
        "rcv-one": WarehouseReceipt(
            event_id="rcv-one", shop=SHOP, return_id=record.id, lines=(got("A", 1),)
        ),
        "rcv-two": WarehouseReceipt(
            event_id="rcv-two", shop=SHOP, return_id=record.id, lines=(got("A", 2),)
        ),
    }
    names = ["rcv-one", "rcv-two"]
    for index in (first, second):
        harness.service.handle(receipts[names[index]])
    return harness, record.id


@pytest.mark.parametrize("mode", ["native", "tags"])
def test_receipts_in_either_order_credit_the_line_in_full(mode: str) -> None:
    (one_first, rid), (two_first, _) = _credited_in(mode, 0, 1), _credited_in(mode, 1, 0)
    assert sorted(map(str, credited(one_first))) == ["2.44 EUR", "4.86 EUR"]
    assert sorted(map(str, credited(two_first))) == ["2.43 EUR", "4.87 EUR"]
    assert sum(m.amount for m in credited(two_first)) == eur("7.30").amount
    found = reordering.differences(
        reordering.outcome(one_first, SHOP, [rid]),
        reordering.outcome(two_first, SHOP, [rid]),
    )
    assert found == {}


def _credits(*amounts: str) -> Counter[tuple[str, str]]:
    return Counter(("O1", f"{amount} EUR") for amount in amounts)


@pytest.mark.parametrize(
    ("theirs", "alike"),
    [
        (("4.87", "2.43"), True),  # a cent moved between the line's payouts
        (("4.88", "2.42"), False),  # two cents for a payout naming no lines
        (("4.87", "2.44"), False),  # a cent more in all
        (("7.30",), False),  # one payout where there were two
        (("2.44", "4.86", "0.00"), False),
    ],
)
def test_only_a_rounding_cent_may_move_between_payouts(
    theirs: tuple[str, ...], alike: bool
) -> None:
    found = reordering.differences(
        {"effects": {"credits": _credits("4.86", "2.44")}},
        {"effects": {"credits": _credits(*theirs)}},
    )
    assert (found == {}) is alike


def test_refunds_may_move_a_cent_per_line_they_pay_and_no_more() -> None:
    from returnflow.ports.commerce import LineQuantity

    both = (LineQuantity("a", 1), LineQuantity("b", 1))
    alone = (LineQuantity("a", 2),)

    def refunds(*rows: tuple[str, tuple[LineQuantity, ...]]) -> dict[str, object]:
        return {"refunds": Counter(("O1", f"{amount} EUR", lines) for amount, lines in rows)}

    ours = refunds(("5.00", both), ("5.01", both))
    assert reordering.differences(ours, refunds(("4.98", both), ("5.03", both))) == {}
    assert reordering.differences(ours, refunds(("4.97", both), ("5.04", both))) != {}
    # the same amounts for other lines are other payouts
    assert reordering.differences(ours, refunds(("5.00", both), ("5.01", alone))) != {}
    # a payout in another currency is not the same payout
    assert reordering.differences({"credit_ids": ["1.00 EUR"]}, {"credit_ids": ["1.00 USD"]}) != {}
