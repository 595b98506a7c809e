"""A kept (returnless) line paid on receipt goes with the first receipt that pays returned
units, whatever order the receipts come in.

A kept line is paid with the first early payout (so that a fee is taken from the whole
payout). Paid as well by a receipt whose units all failed QC, it went out apart from the
units of a later receipt, or with them when that receipt came first: the return shipping
fee was taken from the store credit or from the refund, and one refund became two,
depending on the order of the receipts alone."""

from __future__ import annotations

import pytest

from _builders import SHOP, closed_without_review, eur, order, order_line, platform, receive
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    FeePolicy,
    Keep,
    Money,
    OutcomeKind,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
)
from returnflow.domain.model import QcResult
from returnflow.domain.policy import RefundTrigger
from returnflow.testing import Harness

ORDERS = [("good first", ("good", "failed")), ("failed first", ("failed", "good"))]


def paid_out(
    mode: str, receipts: tuple[str, ...], *, fee: str | None, kept: OutcomeKind
) -> tuple[list[Money], list[Money], int]:
    """The refunds, the store credits and the number of refund ids of a return of one
    unit of L1 (1.04) and both of L3 (0.93 each), with L2 (3 x 9.13) kept, when its
    receipts come in the order ``receipts`` names: ``good`` (L1 passes, a unit of L3
    fails) and ``failed`` (the other unit of L3 fails)."""
    fees = FeePolicy(return_shipping=eur(fee) if fee else None)
    policy = ReturnPolicy(platform_mode=mode, refund_trigger=RefundTrigger.ON_RECEIVED, fees=fees)
    made = Harness(policy=policy)
    lines = [order_line("L1", "A", "1.04"), order_line("L2", "B", "9.13", 3)]
    made.ports.commerce.add_order(order(SHOP, "1001", [*lines, order_line("L3", "C", "0.93", 2)]))
    wanted = [
        RequestLine(order_line_id="L1", quantity=1),
        RequestLine(order_line_id="L2", quantity=3, outcome=Keep(settle=kept)),
        RequestLine(order_line_id="L3", quantity=2),
    ]
    return_id = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=wanted)).id
    made.service.handle(
        CarrierUpdate(shop=SHOP, return_id=return_id, event_id="d", status=CarrierStatus.DELIVERED)
    )
    failed = ReceivedLine(line_id="L3", quantity=1, qc=QcResult.FAIL)
    facts = {"good": [ReceivedLine(line_id="L1", quantity=1), failed], "failed": [failed]}
    for name in receipts:
        receive(made, return_id, name, *facts[name])
    record = closed_without_review(made, return_id)
    refunds = [r.amount for r in made.ports.commerce.refunds]
    if mode == "native":
        there = record.refs.platform_return_id or ""
        refunds = [platform(made).refunded(SHOP, there)]
    credits = [credit.amount for credit in made.ports.commerce.credits]
    return refunds, credits, len(record.refs.refund_ids)


@pytest.mark.parametrize("mode", ["tags", "native"])
@pytest.mark.parametrize(
    ("fee", "kept"),
    [("13.45", OutcomeKind.STORE_CREDIT), (None, OutcomeKind.REFUND)],
    ids=["fee-from-credit-or-refund", "one-refund-or-two"],
)
def test_a_kept_line_is_paid_alike_whichever_receipt_comes_first(
    mode: str, fee: str | None, kept: OutcomeKind
) -> None:
    outcomes = {name: paid_out(mode, receipts, fee=fee, kept=kept) for name, receipts in ORDERS}
    assert outcomes["good first"] == outcomes["failed first"]
