"""Giving back the order's shipping and duties (issue 17): by the policy or a rule, each
unit's share allocated to the cent, never more than the order was charged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from returnflow import (
    ConfigurationError,
    CurrencyMismatch,
    Duty,
    Exchange,
    InvalidAmount,
    InvalidPayload,
    InvalidRequest,
    InvalidRule,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    Rule,
    StoreCredit,
    WarehouseReceipt,
)
from returnflow.domain.policy import RefundOriginal
from returnflow.domain.settlement import original_charges
from returnflow.testing import Harness
from returnflow.testing.strategies import money, orders

EUR = "EUR"
SHOP = "shop"
DAY = datetime(2026, 1, 10, tzinfo=timezone.utc)


def _order(order_id: str = "1001", **charges: object) -> OrderSnapshot:
    values: dict[str, object] = {
        "shipping_price": Money("9.99", EUR),
        "shipping_tax": Money("1.60", EUR),
        "duties": Money("12.00", EUR),
        "taxes_included": True,
    }
    values.update(charges)
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=DAY,
        fulfilled_at=DAY,
        currency=EUR,
        lines=[
            OrderLine(id="L1", sku="A", variant_id="a", quantity=2, unit_price=Money("30.00", EUR)),
            OrderLine(id="L2", sku="B", variant_id="b", quantity=1, unit_price=Money("17.00", EUR)),
        ],
        **values,  # type: ignore[arg-type]
    )


def _harness(order: OrderSnapshot | None = None, **policy: object) -> Harness:
    harness = Harness(policy=ReturnPolicy(**policy))  # type: ignore[arg-type]
    harness.ports.commerce.add_order(order or _order())
    return harness


def _return(harness: Harness, *lines: RequestLine) -> str:
    record = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines))
    harness.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id=f"wms-{record.id}",
            lines=[
                ReceivedLine(line_id=line.order_line_id, quantity=line.quantity) for line in lines
            ],
        )
    )
    return record.id


def test_every_unit_returned_in_two_returns_gives_back_exactly_what_was_charged() -> None:
    harness = _harness(refund_shipping="always", refund_duties="always")
    quote = harness.service.quote(
        ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 1)])
    )
    assert (quote.original_shipping, quote.duties) == (Money("3.89", EUR), Money("4.68", EUR))
    assert quote.refund == Money("38.57", EUR)  # 30.00 + 3.89 + 4.68
    _return(harness, RequestLine("L1", 1))
    _return(harness, RequestLine("L1", 1), RequestLine("L2", 1))
    refunds = [refund.amount for refund in harness.ports.commerce.refunds]
    paid = Money("77.00", EUR)
    assert Money.sum(refunds, EUR) == paid + Money("9.99", EUR) + Money("12.00", EUR)
    records = harness.service.list(SHOP)
    shipping = [
        share for record in records for line in record.lines for share in line.unit_shipping
    ]
    duties = [share for record in records for line in record.lines for share in line.unit_duties]
    assert Money.sum(shipping, EUR) == Money("9.99", EUR)
    assert Money.sum(duties, EUR) == Money("12.00", EUR)


def test_the_tax_part_of_the_shipping_given_back_is_in_the_refunds_tax() -> None:
    harness = _harness(refund_shipping="always")
    quote = harness.service.quote(
        ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L2", 1)])
    )
    # L2 is 17 of 77: 9.99 x 17/77 = 2.21 of shipping, 1.60 x 17/77 = 0.35 of its tax
    assert quote.original_shipping == Money("2.21", EUR)
    assert quote.refund_tax == Money("0.35", EUR)


def test_prices_without_tax_give_back_the_shipping_with_its_tax_added() -> None:
    order = _order(taxes_included=False)
    shares = original_charges(order)
    assert Money.sum(shares["shipping"], EUR) == Money("11.59", EUR)  # 9.99 + 1.60
    assert Money.sum(shares["shipping_tax"], EUR) == Money("1.60", EUR)


def test_only_the_merchants_fault_gives_back_shipping_under_merchants_fault() -> None:
    harness = _harness(refund_shipping=RefundOriginal.MERCHANTS_FAULT)
    service = harness.service

    def quote(reason: str) -> Money:
        request = ReturnRequest(
            shop=SHOP, order_id="1001", lines=[RequestLine("L2", 1, reason=reason)]
        )
        return service.quote(request).original_shipping

    assert quote("DEFECTIVE") == Money("2.21", EUR)
    assert quote("size-too-small") == Money("0.00", EUR)


def test_an_exchange_gives_back_no_shipping_and_store_credit_does() -> None:
    harness = _harness(refund_shipping="always")
    exchanged = harness.service.quote(
        ReturnRequest(
            shop=SHOP, order_id="1001", lines=[RequestLine("L2", 1, outcome=Exchange("b2"))]
        )
    )
    assert exchanged.original_shipping == Money("0.00", EUR)
    credited = harness.service.quote(
        ReturnRequest(
            shop=SHOP, order_id="1001", lines=[RequestLine("L2", 1, outcome=StoreCredit())]
        )
    )
    assert credited.store_credit == Money("19.21", EUR)


def test_a_rule_gives_back_shipping_where_the_policy_does_not() -> None:
    rule = Rule("late delivery", {"reason": ["arrived-late"]}, {"refund_shipping": True})
    from returnflow.domain.reasons import ReturnReasonDefinition, with_standard

    harness = _harness(
        rules=[rule],
        reasons=with_standard([ReturnReasonDefinition("arrived-late", "Arrived too late")]),
    )
    late = ReturnRequest(
        shop=SHOP, order_id="1001", lines=[RequestLine("L2", 1, reason="arrived-late")]
    )
    quote = harness.service.quote(late)
    assert (quote.original_shipping, quote.duties) == (Money("2.21", EUR), Money("0.00", EUR))
    assert quote.rules == ("rule 'late delivery' (L2): L2: reason arrived-late -> refund shipping",)
    record = harness.service.request(late)
    assert record.lines[0].unit_shipping == (Money("2.21", EUR),)


@pytest.mark.parametrize("shipping", ["0.01", "0.02", "9.99", "100.00"])
@pytest.mark.parametrize("quantities", [(1, 1), (3, 1), (7, 2)])
def test_shares_add_up_to_the_charge_to_the_cent(
    shipping: str, quantities: tuple[int, int]
) -> None:
    order = OrderSnapshot(
        id="1",
        shop=SHOP,
        created_at=DAY,
        currency=EUR,
        shipping_price=Money(shipping, EUR),
        lines=[
            OrderLine(
                id=f"L{index}",
                sku="S",
                variant_id="v",
                quantity=quantity,
                unit_price=Money(Decimal("3.33") * (index + 1), EUR),
            )
            for index, quantity in enumerate(quantities)
        ],
    )
    shares = original_charges(order)["shipping"]
    assert len(shares) == sum(quantities)
    assert Money.sum(shares, EUR) == Money(shipping, EUR)
    assert all(not share.is_negative for share in shares)


@pytest.mark.parametrize(
    ("build", "error", "field"),
    [
        (lambda: _order(shipping_price=Money("-1.00", EUR)), InvalidPayload, "shipping_price"),
        (lambda: _order(duties=Money("1.00", "USD")), CurrencyMismatch, "duties.currency"),
        (lambda: _order(shipping_tax=1.6), InvalidPayload, "shipping_tax"),
        (lambda: ReturnPolicy(refund_shipping="sometimes"), ConfigurationError, "refund_shipping"),
        (lambda: ReturnPolicy(refund_duties=True), ConfigurationError, "refund_duties"),
        (lambda: Rule("r", {}, {"refund_duties": "yes"}), InvalidRule, "then.refund_duties"),
    ],
)
def test_bad_charges_and_settings_are_refused_by_name(
    build: Callable[[], object], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as caught:
        build()
    assert caught.value.field == field  # type: ignore[attr-defined]


@given(data=st.data())
def test_any_orders_shares_add_up_to_its_shipping_and_duties(data: st.DataObject) -> None:
    order = data.draw(orders())
    shipping = data.draw(money(order.currency), label="shipping")
    duties = data.draw(money(order.currency), label="duties")
    charged = attrs.evolve(order, shipping_price=shipping, duties=duties)
    shares = original_charges(charged)
    units = sum(line.quantity for line in order.lines)
    for name, total in (("shipping", shipping), ("duties", duties)):
        assert len(shares[name]) == units
        assert Money.sum(shares[name], order.currency) == total
        assert all(not share.is_negative for share in shares[name])


# -- duties carried by the lines, with the platform's ids ------------------------------------


def _with_line_duties(**charges: object) -> OrderSnapshot:
    order = _order(**{"duties": None, **charges})
    first, second = order.lines
    duties = (Duty("gid://Duty/1", Money("5.01", EUR)), Duty("gid://Duty/2", Money("1.00", EUR)))
    return attrs.evolve(order, lines=(attrs.evolve(first, duties=duties), second))


def test_line_duties_are_the_orders_and_each_unit_carries_its_lines_by_id() -> None:
    order = _with_line_duties()
    assert order.total_duties == Money("6.01", EUR)
    assert order.charged_total == Money("77.00", EUR) + Money("9.99", EUR) + Money("6.01", EUR)
    assert [str(share) for share in original_charges(order)["duties"]] == [
        "3.01 EUR",
        "3.00 EUR",
        "0.00 EUR",
    ]
    harness = _harness(order, refund_duties="always")
    quote = harness.service.quote(
        ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 2)])
    )
    assert quote.duties == Money("6.01", EUR)
    _return(harness, RequestLine("L1", 1))
    [record] = harness.service.list(SHOP)
    assert record.lines[0].duty_shares == (
        ("gid://Duty/1", (Money("2.51", EUR),)),
        ("gid://Duty/2", (Money("0.50", EUR),)),
    )
    [refund] = harness.ports.commerce.refunds
    assert refund.amount == Money("33.01", EUR)


@pytest.mark.parametrize(
    ("build", "error", "field"),
    [
        (lambda: _with_line_duties(duties=Money("6.00", EUR)), InvalidPayload, "duties"),
        (
            lambda: OrderLine(
                id="L",
                sku="S",
                variant_id="v",
                quantity=1,
                unit_price=Money("1", EUR),
                duties=(Duty("d", Money("1", "USD")),),
            ),
            CurrencyMismatch,
            "duties[0].amount.currency",
        ),
        (
            lambda: OrderLine(
                id="L",
                sku="S",
                variant_id="v",
                quantity=1,
                unit_price=Money("1", EUR),
                duties=("d",),
            ),
            InvalidPayload,
            "duties[0]",
        ),
        (lambda: Duty("d", Money("-1", EUR)), InvalidAmount, "amount"),
        (lambda: Duty("", Money("1", EUR)), InvalidRequest, "id"),
        (
            lambda: attrs.evolve(
                _with_line_duties(),
                lines=tuple(
                    attrs.evolve(line, duties=(Duty("same", Money("1", EUR)),))
                    for line in _order().lines
                ),
            ),
            InvalidPayload,
            "lines.duties",
        ),
    ],
)
def test_bad_duties_name_the_field(
    build: Callable[[], object], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as raised:
        build()
    assert getattr(raised.value, "field", None) == field
