"""A line's restocking fee and its tax follow its units in both modes: the fee of the whole
line is allocated over its units once, and each settled part pays its units' shares, so a
line settled over several receipts, in whatever grouping and order, pays the fee of the
whole line to the cent (a fixed fee once, not once per receipt)."""

from __future__ import annotations

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Money,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.domain.fees import Fee, FeePolicy, Fixed, Percent
from returnflow.domain.model import ReturnLine
from returnflow.domain.policy import RefundTrigger
from returnflow.domain.settlement import settle
from returnflow.testing import Harness
from test_settlement import ORDER_ID, got, item, make_order


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def three_caps() -> ReturnLine:
    """Three units paid 1.05 each: a 10 % fee on the whole line (0.315) rounds to 0.32."""
    return ReturnLine(
        id="R1",
        order_line_id="L1",
        sku="S",
        variant_id="v",
        quantity=3,
        outcome=Refund(),
        reason=ReturnReason.UNWANTED,
        unit_amounts=(eur("1.05"), eur("1.05"), eur("1.05")),
        units=(0, 1, 2),
    )


FEES: list[Fee] = [
    Percent(10),
    Percent(10, tax=20),
    Fixed(eur("1.00")),
    Fixed(eur("1.00"), tax=eur("0.20")),
]


@pytest.mark.parametrize("fee", FEES, ids=str)
@pytest.mark.parametrize("groups", [(1, 2), (2, 1), (1, 1, 1)], ids=str)
def test_parts_settled_apart_pay_the_whole_lines_fee_and_its_tax(
    fee: Fee, groups: tuple[int, ...]
) -> None:
    line, policy = three_caps(), FeePolicy(restocking=fee)
    whole = settle("EUR", [(line, 3, 0)], fees=policy)
    parts, start = [], 0
    for units in groups:
        parts.append(settle("EUR", [(line, units, start)], fees=policy))
        start += units
    assert Money.sum((p.restocking_fee for p in parts), "EUR") == whole.restocking_fee
    assert Money.sum((p.restocking_fee_tax for p in parts), "EUR") == whole.restocking_fee_tax
    assert Money.sum((p.refund for p in parts), "EUR") == whole.refund


def refunds(fee: Fee, receipts: tuple[int, ...]) -> list[Money]:
    """What a tags-mode return of three 1.05 units refunds, received in ``receipts``."""
    harness = Harness(
        policy=ReturnPolicy(
            platform_mode="tags",
            refund_trigger=RefundTrigger.ON_RECEIVED,
            fees=FeePolicy(restocking=fee),
        )
    )
    order = make_order(item("A", 3, eur("1.05")))
    harness.ports.commerce.add_order(order)
    record = harness.service.request(
        ReturnRequest(
            shop=order.shop,
            order_id=ORDER_ID,
            lines=(RequestLine(order_line_id="A", quantity=3, outcome=Refund()),),
        )
    )
    harness.service.handle(
        CarrierUpdate(
            shop=order.shop, return_id=record.id, event_id="s1", status=CarrierStatus.DELIVERED
        )
    )
    for index, units in enumerate(receipts):
        harness.service.handle(
            WarehouseReceipt(
                shop=order.shop,
                return_id=record.id,
                event_id=f"rcv-{index}",
                lines=(got("A", units),),
            )
        )
    return [refund.amount for refund in harness.ports.commerce.refunds]


@pytest.mark.parametrize("fee", [Percent(10), Fixed(eur("1.00"))], ids=str)
def test_a_line_received_over_several_receipts_pays_its_fee_once(fee: Fee) -> None:
    at_once = refunds(fee, (3,))
    for receipts in [(1, 2), (2, 1), (1, 1, 1)]:
        paid = refunds(fee, receipts)
        assert len(paid) == len(receipts)
        assert Money.sum(paid, "EUR") == Money.sum(at_once, "EUR"), receipts
