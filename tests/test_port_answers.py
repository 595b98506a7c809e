"""A port's answer whose ids are no ids (``None``, a number, a text for a list) is refused
by name where it comes in: nothing of it is stored and no raw error reaches the caller; the
delivery fails like any other, and a person looks once it is given up."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from returnflow import (
    Exchange,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.testing import FakeCommercePlatform, FakePayments, FakePorts, Harness, make_order
from returnflow.testing.platform_returns import FakePlatformReturns

SHOP = "my-shop"


def _receive(made: Harness, return_id: str) -> None:
    lines = [ReceivedLine(line_id="L1", quantity=1)]
    made.service.handle(WarehouseReceipt(shop=SHOP, return_id=return_id, event_id="w", lines=lines))
    made.dispatch_due()


def _request(made: Harness) -> str:
    made.ports.commerce.add_order(make_order(SHOP, "1001"))
    lines = [RequestLine(order_line_id="L1", quantity=1)]
    return made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id


class RefundIdIs(FakeCommercePlatform):
    answer: Any = None

    def refund(self, *args: Any, **kwargs: Any) -> Any:
        return attrs.evolve(super().refund(*args, **kwargs), refund_id=self.answer)


@pytest.mark.parametrize("answer", [None, 7, "", "x" * 300])
def test_a_refund_answered_without_an_id_is_not_stored_and_goes_to_a_person(answer: Any) -> None:
    commerce = RefundIdIs()
    commerce.answer = answer
    made = Harness(policy=ReturnPolicy(max_attempts=2), ports=FakePorts(commerce=commerce))
    return_id = _request(made)
    _receive(made, return_id)
    record = made.service.get(SHOP, return_id)
    assert record.refs.refund_ids == ()
    assert record.status == "needs_review"
    assert any("refund_id=" in reason for reason in record.review_reasons)


class PaymentIdIs(FakePayments):
    def charge(self, *args: Any, **kwargs: Any) -> Any:
        return attrs.evolve(super().charge(*args, **kwargs), payment_id=None)


def test_a_payment_answered_without_an_id_is_not_stored_and_goes_to_a_person() -> None:
    # An upsell: the difference is charged up front, and the processor answers no id.
    made = Harness(policy=ReturnPolicy(max_attempts=2), ports=FakePorts(payments=PaymentIdIs()))
    made.ports.commerce.add_order(make_order(SHOP, "1001"))
    price = make_order(SHOP, "1001").lines[0].unit_price
    upsell = Exchange(variant_id="bigger", unit_price=price + price)
    lines = [RequestLine(order_line_id="L1", quantity=1, outcome=upsell)]
    return_id = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert record.balance_paid is None
    assert record.status == "needs_review"
    assert any("payment_id=None" in reason for reason in record.review_reasons)


class ProcessesWithoutIds(FakePlatformReturns):
    def process(self, *args: Any, **kwargs: Any) -> Any:
        result = super().process(*args, **kwargs)
        return attrs.evolve(result, refund_ids=(None,))


class OpensWithNumbers(FakePlatformReturns):
    def open_return(self, *args: Any, **kwargs: Any) -> Any:
        opened = super().open_return(*args, **kwargs)
        return attrs.evolve(opened, line_ids=tuple((line, 5) for line, _ in opened.line_ids))


@pytest.mark.parametrize(
    ("platform", "field"),
    [(ProcessesWithoutIds, "refund_ids[0]"), (OpensWithNumbers, "line_ids[0][1]")],
)
def test_a_platform_answer_with_no_ids_is_refused_by_name(platform: Any, field: str) -> None:
    ports = FakePorts()
    there = platform(ports.commerce)
    policy = ReturnPolicy(platform_mode="native", max_attempts=2)
    made = Harness(policy=policy, ports=ports, platform_returns=there)
    return_id = _request(made)
    made.dispatch_due()
    _receive(made, return_id)
    record = made.service.get(SHOP, return_id)
    assert None not in record.refs.refund_ids
    assert all(isinstance(pair[1], str) for pair in record.refs.platform_line_ids)
    assert record.status == "needs_review"
    assert any(f"{field}=" in reason for reason in record.review_reasons), record.review_reasons
