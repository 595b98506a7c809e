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
from returnflow.domain.settlement import unit_amounts

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
