"""Decimal text is read in plain notation only (an optional sign, ASCII digits, an optional
point and digits), wherever it comes in: Money, a request or an import posted as JSON, a
policy's fee, a platform's answer, a stored row. ``Decimal`` alone would read ``1_000``,
digits of other scripts (``١٠``), spaces around and exponents (``1e3``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from returnflow import InvalidAmount, Money, PortError
from returnflow.domain.fees import Percent
from returnflow.integrations.shopify._answers import parse_money
from returnflow.serialization import (
    external_return_from_dict,
    request_from_dict,
    structure,
    unstructure,
)

NOT_PLAIN = [
    "1_000",
    "١٠",  # Arabic-Indic digits
    "１０",  # full-width digits
    "१०",  # Devanagari digits
    " 10",
    "10 ",
    "10\n",
    "1e3",
    "1E+2",
    "-1e-2",
    ".",
    "-.",
    "1.2.3",
    "..5",
    "+-1",
    "",
    "NaN",
    "Infinity",
]
PLAIN = [
    ("12.50", "12.50"),
    ("-1", "-1.00"),
    ("+1.5", "1.50"),
    ("007.10", "7.10"),
    ("0", "0.00"),
    (".5", "0.50"),
    ("-.5", "-0.50"),
    ("10.", "10.00"),
    ("+0.", "0.00"),
]


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_money_from_text_not_in_plain_notation_is_refused_naming_it(text: str) -> None:
    with pytest.raises(InvalidAmount) as refused:
        Money(text, "EUR")
    assert refused.value.field == "amount"
    assert refused.value.value == text
    assert "plain decimal notation" in refused.value.reason
    with pytest.raises(InvalidAmount):
        Money.quantized(text, "EUR")


@pytest.mark.parametrize(("text", "amount"), PLAIN)
def test_money_from_plain_text_is_read(text: str, amount: str) -> None:
    assert str(Money(text, "EUR").amount) == amount


def test_a_decimal_value_is_taken_as_it_is_and_written_back_in_plain_notation() -> None:
    assert Money(Decimal("1E+2"), "EUR") == Money("100", "EUR")
    fee = Percent(Decimal("1E+1"), tax=Decimal("1E-7"))
    written = unstructure(fee)
    assert written == {"value": "10", "tax": "0.0000001"}
    assert structure(written, Percent) == fee


@pytest.mark.parametrize("text", ["1_0", "١٠", "1e1"])
def test_every_way_in_refuses_what_money_refuses(text: str) -> None:
    with pytest.raises(InvalidAmount) as refused:
        Percent(text)
    assert (refused.value.field, refused.value.value) == ("percent", text)
    with pytest.raises(InvalidAmount) as refused:
        structure({"value": text}, Percent)
    assert refused.value.value == text
    exchange: dict[str, Any] = {
        "kind": "exchange",
        "variant_id": "v2",
        "unit_price": {"amount": text, "currency": "EUR"},
    }
    posted = {
        "shop": "s",
        "order_id": "1",
        "lines": [{"order_line_id": "L1", "quantity": 1, "outcome": exchange}],
    }
    with pytest.raises(InvalidAmount) as refused:
        request_from_dict(posted)
    assert refused.value.field == "lines[0].outcome.unit_price.amount"
    assert refused.value.value == text
    imported = {
        "source": "loop",
        "external_id": "X1",
        "shop": "s",
        "order_id": "1001",
        "created_at": "2026-01-15T12:00:00+00:00",
        "updated_at": "2026-01-15T12:00:00+00:00",
        "lines": [{"order_line_id": "L1", "quantity": 1, "outcome": exchange}],
    }
    with pytest.raises(InvalidAmount) as refused:
        external_return_from_dict(imported)
    assert refused.value.value == text
    with pytest.raises(PortError, match="unexpected answer for money"):
        parse_money({"shopMoney": {"amount": text, "currencyCode": "EUR"}}, "returnCalculate")
    assert parse_money({"amount": "10.00", "currencyCode": "EUR"}, "x") == Money("10", "EUR")
