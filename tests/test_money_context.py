"""Money does not depend on the caller's decimal context: a low precision or extra traps set
with ``decimal.localcontext`` neither round an amount nor raise a raw decimal exception."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from returnflow.domain.fees import Fixed, Percent, charged, tax_of
from returnflow.domain.money import Money
from returnflow.errors import InvalidAmount


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


@contextmanager
def hostile(prec: int, *traps: type[decimal.DecimalException]) -> Iterator[None]:
    with decimal.localcontext() as context:
        context.prec = prec
        context.rounding = decimal.ROUND_DOWN
        for trap in traps:
            context.traps[trap] = True
        yield


CONTEXTS = [
    pytest.param((3,), id="prec-3"),
    pytest.param((5,), id="prec-5"),
    pytest.param((28, decimal.Rounded, decimal.Inexact), id="traps-rounded-inexact"),
]


@pytest.mark.parametrize("setting", CONTEXTS)
def test_arithmetic_is_exact_whatever_the_callers_context(setting: tuple) -> None:
    with hostile(*setting):
        total = eur("1234.56") + eur("0.01")
        difference = eur("99999.99") - eur("0.01")
        tripled = eur("9999.99") * 3
        negated = -eur("1234.56")
        parts = eur("10000.00").split(3)
        shares = eur("1234.57").allocate([1, 2, 7])
        cents = eur("123456.78").minor_units
        rounded = Money.quantized("1234.565", "EUR")
    assert total == eur("1234.57")
    assert difference == eur("99999.98")
    assert tripled == eur("29999.97")
    assert negated == eur("-1234.56")
    assert parts == (eur("3333.34"), eur("3333.33"), eur("3333.33"))
    assert Money.sum(shares, "EUR") == eur("1234.57")
    assert cents == 12345678
    assert rounded == eur("1234.56")


@pytest.mark.parametrize("setting", CONTEXTS)
def test_fees_are_exact_whatever_the_callers_context(setting: tuple) -> None:
    with hostile(*setting):
        percent = Percent(Decimal("12.5")).of(eur("1234.56"))
        taxed = charged(Fixed(eur("1234.50"), tax=20), eur("0"), taxes_included=False)
        tax = tax_of(Fixed(eur("1234.50"), tax=20), eur("1481.40"))
    assert percent == eur("154.32")
    assert taxed == eur("1481.40")
    assert tax == eur("246.90")


@pytest.mark.parametrize("setting", CONTEXTS)
def test_bad_amounts_are_still_named_whatever_the_callers_context(setting: tuple) -> None:
    with hostile(*setting), pytest.raises(InvalidAmount) as raised:
        eur("1234.567")
    assert raised.value.field == "amount"
