"""Money: exact Decimal amounts at the currency's exponent, allocations that add up."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from returnflow import (
    CurrencyMismatch,
    InvalidAmount,
    Money,
    OrderLine,
    OrderSnapshot,
    currency_exponent,
)
from returnflow.domain.money import money_from
from returnflow.domain.settlement import unit_amounts
from returnflow.errors import UnknownCurrency

CURRENCIES = ["EUR", "USD", "JPY", "KWD", "CLF"]


def _units(line: OrderLine) -> tuple[Money, ...]:
    order = OrderSnapshot(
        id="1",
        shop="s",
        created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        fulfilled_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        currency=line.unit_price.currency,
        lines=[line],
    )
    return unit_amounts(order)[line.id]


@st.composite
def money(draw: st.DrawFn, currency: str | None = None) -> Money:
    code = currency or draw(st.sampled_from(CURRENCIES))
    units = draw(st.integers(min_value=-(10**9), max_value=10**9))
    return Money.from_minor_units(units, code)


def test_amounts_are_held_at_the_currency_exponent() -> None:
    assert Money("12.5", "EUR").amount == Decimal("12.50")
    assert Money(1200, "JPY").amount == Decimal("1200")
    assert Money("1.005", "KWD").amount == Decimal("1.005")
    assert str(Money("-0.00", "EUR")) == "0.00 EUR"
    assert [currency_exponent(code) for code in CURRENCIES] == [2, 2, 0, 3, 4]


def test_quantized_rounds_half_even_and_explicitly() -> None:
    assert Money.quantized("2.345", "EUR") == Money("2.34", "EUR")
    assert Money.quantized("2.355", "EUR") == Money("2.36", "EUR")
    assert Money.quantized("0.5", "JPY") == Money("0", "JPY")
    assert Money.quantized("1.0005", "KWD") == Money("1.000", "KWD")


def test_a_line_with_a_discount_refunds_exactly_what_was_paid_unit_by_unit() -> None:
    line = OrderLine(
        id="L1",
        sku="S",
        variant_id="v",
        quantity=3,
        unit_price=Money("10.00", "EUR"),
        discount=Money("20.00", "EUR"),
    )
    assert line.paid_total == Money("10.00", "EUR")
    assert _units(line) == (
        Money("3.34", "EUR"),
        Money("3.33", "EUR"),
        Money("3.33", "EUR"),
    )


def test_zero_and_three_decimal_currencies_split_exactly() -> None:
    assert Money(1000, "JPY").split(3) == (
        Money(334, "JPY"),
        Money(333, "JPY"),
        Money(333, "JPY"),
    )
    assert Money("1.000", "KWD").split(3) == (
        Money("0.334", "KWD"),
        Money("0.333", "KWD"),
        Money("0.333", "KWD"),
    )


def test_currencies_never_mix() -> None:
    with pytest.raises(CurrencyMismatch):
        Money("1.00", "EUR") + Money("1.00", "USD")
    with pytest.raises(CurrencyMismatch):
        Money.sum([Money("1.00", "EUR")], "USD")


def test_multiplication_takes_whole_numbers_only() -> None:
    assert Money("2.50", "EUR") * 3 == Money("7.50", "EUR")
    with pytest.raises(InvalidAmount):
        Money("2.50", "EUR") * 1.5  # type: ignore[operator]


@given(money(), st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12))
def test_allocation_adds_up_and_is_fair(total: Money, weights: list[int]) -> None:
    if sum(weights) == 0:
        weights = [*weights[:-1], 1]
    parts = total.allocate(weights)
    assert Money.sum(parts, total.currency) == total
    assert all(part.currency == total.currency for part in parts)
    exact = [Decimal(total.minor_units) * w / sum(weights) for w in weights]
    assert all(abs(Decimal(p.minor_units) - e) < 1 for p, e in zip(parts, exact, strict=True))


@given(
    st.sampled_from(CURRENCIES),
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=0, max_value=10**7),
    st.data(),
)
def test_returning_every_unit_in_any_grouping_refunds_the_line_total(
    currency: str, quantity: int, price_units: int, data: st.DataObject
) -> None:
    price = Money.from_minor_units(price_units, currency)
    discount = Money.from_minor_units(
        data.draw(st.integers(min_value=0, max_value=price_units * quantity)), currency
    )
    line = OrderLine(
        id="L", sku="S", variant_id="v", quantity=quantity, unit_price=price, discount=discount
    )
    units = _units(line)
    cuts = sorted(
        data.draw(
            st.sets(
                st.integers(min_value=1, max_value=quantity - 1) if quantity > 1 else st.nothing()
            )
        )
    )
    bounds = [0, *cuts, quantity]
    refunds = [Money.sum(units[a:b], currency) for a, b in itertools.pairwise(bounds)]
    assert Money.sum(refunds, currency) == line.paid_total
    assert max(units).minor_units - min(units).minor_units <= 1


def test_an_amount_of_more_than_15_digits_before_the_point_is_refused_naming_it() -> None:
    largest = Decimal("999999999999999.99")  # 15 digits before the point
    assert Money(largest, "EUR").amount == largest
    assert Money.quantized(largest, "EUR").amount == largest
    for make in (Money, Money.quantized):
        with pytest.raises(InvalidAmount) as raised:
            make("1000000000000000", "EUR")  # 16 digits
        assert (raised.value.field, raised.value.value) == ("amount", "1000000000000000")
        assert raised.value.reason == "is out of range: at most 15 digits before the point"


@given(st.data())
def test_a_sum_or_difference_is_what_the_constructor_builds_of_it(data: st.DataObject) -> None:
    # sums and differences are built without the constructor's checks: the result must be
    # the same amount, exponent and sign as the constructor gives (no -0, no extra digits)
    code = data.draw(st.sampled_from(CURRENCIES))
    a, b = data.draw(money(code)), data.draw(money(code))
    for got, exact in ((a + b, a.amount + b.amount), (a - b, a.amount - b.amount)):
        built = Money(exact, code)
        assert (got, got.currency, type(got)) == (built, code, Money)
        assert got.amount.as_tuple() == built.amount.as_tuple()
    assert (a - a).amount.as_tuple() == Money(0, code).amount.as_tuple()


def test_a_sum_past_15_digits_before_the_point_is_refused_naming_it() -> None:
    largest = Money("999999999999999.99", "EUR")
    for make in (lambda: largest + Money("0.01", "EUR"), lambda: -largest - Money("0.01", "EUR")):
        with pytest.raises(InvalidAmount) as raised:
            make()
        assert raised.value.field == "amount"
        assert raised.value.reason == "is out of range: at most 15 digits before the point"


def test_comparisons_include_equality_and_repr_shows_the_amount() -> None:
    one, two = Money("1.00", "EUR"), Money("2.00", "EUR")
    assert one >= Money("1.00", "EUR")
    assert two >= one
    assert not one >= two
    assert one <= Money("1.00", "EUR")
    assert not two <= one
    assert not one < Money("1.00", "EUR")
    assert not one > Money("1.00", "EUR")
    assert repr(Money("12.50", "EUR")) == "Money('12.50', 'EUR')"
    assert str(Money(1200, "JPY")) == "1200 JPY"


def test_money_from_a_mapping_names_the_field_of_a_bad_amount_or_currency() -> None:
    assert money_from({"amount": "4.95", "currency": "EUR"}, "fee") == Money("4.95", "EUR")
    same = Money("1.00", "EUR")
    assert money_from(same, "fee") is same
    with pytest.raises(InvalidAmount) as raised:
        money_from({"amount": "4.955", "currency": "EUR"}, "fee")
    assert (raised.value.field, raised.value.value) == ("fee.amount", "4.955")
    assert raised.value.reason == "EUR has 2 decimals; quantize it first"
    with pytest.raises(UnknownCurrency) as unknown:
        money_from({"amount": "4.95", "currency": "EURO"}, "fee")
    assert (unknown.value.field, unknown.value.value) == ("fee.currency", "EURO")
    assert unknown.value.reason == "is not an ISO 4217 currency code"
    with pytest.raises(UnknownCurrency) as unnamed:
        money_from({"amount": "4.95", "currency": "EURO"}, "")
    assert unnamed.value.field == "currency"
    for value in ("4.95", {"amount": "4.95"}, {"amount": "1", "currency": "EUR", "x": 1}):
        with pytest.raises(InvalidAmount) as wrong:
            money_from(value, "fee")
        assert (wrong.value.field, wrong.value.value) == ("fee", value)
        assert wrong.value.reason == "must be Money or {'amount', 'currency'}"
    with pytest.raises(InvalidAmount) as nameless:
        money_from("4.95", "")
    assert nameless.value.field == "money"
