"""Every amount that comes in is checked in one place (``check_amount``): a request's exchange
price and store-credit bonus, an imported return's, the order the platform reports, and the
fixed amounts of the policy against each order. No float or bare number, no negative amount,
the order's currency; the error names the field's path and the value, and nothing is stored
(the SQLite file is compared as a dump) or asked of a port."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from returnflow import (
    ConfigurationError,
    CurrencyMismatch,
    Exchange,
    ExternalLine,
    ExternalReturn,
    InvalidAmount,
    Money,
    OrderLine,
    OrderSnapshot,
    Refund,
    RequestLine,
    ReturnImporter,
    ReturnPolicy,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.settlement import FeePolicy, Fixed, Percent
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakeReturnSource, Harness, ManualClock

SHOP = "shop-a"
DAY0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
NOT_MONEY: list[Any] = [12.5, 12, Decimal("12.50"), "12.50", True]
BAD = [*NOT_MONEY, Money("-5.00", "EUR")]


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def order(order_id: str = "O-1", **line: Any) -> OrderSnapshot:
    fields: dict[str, Any] = {"unit_price": eur("10.00"), **line}
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=DAY0,
        fulfilled_at=DAY0,
        currency="EUR",
        lines=[
            OrderLine(id="L1", sku="A", variant_id="a", quantity=2, **fields),
            OrderLine(id="L2", sku="B", variant_id="b", quantity=2, unit_price=eur("5.00")),
        ],
    )


def dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Iterator[Callable[..., tuple[Harness, Path]]]:
    """A harness with ``policy`` on a SQLite file that holds one open return of the order
    already (stored under the default policy, to see it is left alone);
    with the file's path."""
    stores: list[SqliteStore] = []

    def make(policy: ReturnPolicy | None = None) -> tuple[Harness, Path]:
        path = tmp_path / f"returns-{len(stores)}.db"
        store = SqliteStore(path)
        stores.append(store)
        first = Harness(store=store, clock=ManualClock(DAY0 + timedelta(days=2)))
        first.ports.commerce.add_order(order())
        first.service.request(
            ReturnRequest(
                shop=SHOP, order_id="O-1", lines=[RequestLine(order_line_id="L2", quantity=1)]
            )
        )
        harness = Harness(
            policy=policy or ReturnPolicy(),
            store=store,
            clock=ManualClock(DAY0 + timedelta(days=2)),
        )
        harness.ports.commerce.add_order(order())
        return harness, path

    yield make
    for store in stores:
        store.close()


def calls(harness: Harness) -> list[int]:
    return [len(fake.calls) for fake in harness.ports.all()]


# -- a request ----------------------------------------------------------------------------------


def exchange_at(price: Any) -> Exchange:
    return Exchange(variant_id="a-2", unit_price=price)


def credit_with(bonus: Any) -> StoreCredit:
    return StoreCredit(bonus=bonus)


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize(
    ("outcome", "name"),
    [(exchange_at, "unit_price"), (credit_with, "bonus")],
    ids=["price", "bonus"],
)
def test_a_request_amount_that_is_not_money_or_is_negative_names_its_path(
    outcome: Callable[[Any], Any], name: str, value: Any
) -> None:
    with pytest.raises(InvalidAmount) as raised:
        ReturnRequest(
            shop=SHOP,
            order_id="O-1",
            lines=[
                RequestLine(order_line_id="L2", quantity=1),
                RequestLine(order_line_id="L1", quantity=1, outcome=outcome(value)),
            ],
        )
    assert (raised.value.field, raised.value.value) == (f"lines[1].outcome.{name}", value)


@pytest.mark.parametrize(
    ("outcome", "name"),
    [(exchange_at, "unit_price"), (credit_with, "bonus")],
    ids=["price", "bonus"],
)
def test_a_request_amount_in_another_currency_stores_nothing_and_calls_no_port(
    on_sqlite: Callable[..., tuple[Harness, Path]], outcome: Callable[[Any], Any], name: str
) -> None:
    harness, path = on_sqlite()
    before, called = dump(path), calls(harness)
    request = ReturnRequest(
        shop=SHOP,
        order_id="O-1",
        lines=[RequestLine(order_line_id="L1", quantity=1, outcome=outcome(Money("5", "USD")))],
    )
    for call in (harness.service.request, harness.service.quote, harness.service.validate_request):
        with pytest.raises(CurrencyMismatch) as raised:
            call(request)
        assert (raised.value.field, raised.value.value) == (
            f"lines[0].outcome.{name}.currency",
            "USD",
        )
    assert dump(path) == before
    reads = 3  # the order, read once per call; nothing else was asked of any port
    assert calls(harness) == [called[0] + reads, *called[1:]]


def test_zero_is_an_amount_a_request_may_carry() -> None:
    harness = Harness(clock=ManualClock(DAY0 + timedelta(days=2)))
    harness.ports.commerce.add_order(order())
    free = harness.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="O-1",
            lines=[
                RequestLine(order_line_id="L1", quantity=1, outcome=exchange_at(eur("0.00"))),
                RequestLine(order_line_id="L2", quantity=1, outcome=credit_with(eur("0.00"))),
            ],
        )
    )
    assert free.status == "label_sent"


# -- an imported return ---------------------------------------------------------------------------


def loop(outcome: Any, external_id: str = "7") -> ExternalReturn:
    return ExternalReturn(
        source="loop",
        external_id=external_id,
        shop=SHOP,
        order_id="O-1",
        lines=[
            ExternalLine(order_line_id="L2", quantity=1),
            ExternalLine(order_line_id="L1", quantity=1, outcome=outcome),
        ],
        created_at=DAY0,
        updated_at=DAY0,
    )


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize(
    ("outcome", "name"),
    [(exchange_at, "unit_price"), (credit_with, "bonus")],
    ids=["price", "bonus"],
)
def test_an_imported_amount_that_is_not_money_or_is_negative_names_its_path(
    outcome: Callable[[Any], Any], name: str, value: Any
) -> None:
    with pytest.raises(InvalidAmount) as raised:
        loop(outcome(value))
    assert (raised.value.field, raised.value.value) == (f"lines[1].outcome.{name}", value)


@pytest.mark.parametrize(
    ("outcome", "name"),
    [(exchange_at, "unit_price"), (credit_with, "bonus")],
    ids=["price", "bonus"],
)
def test_an_imported_amount_in_another_currency_is_reported_and_stores_nothing(
    on_sqlite: Callable[..., tuple[Harness, Path]], outcome: Callable[[Any], Any], name: str
) -> None:
    harness, path = on_sqlite()
    source = FakeReturnSource(returns=[loop(outcome(Money("5", "USD")))])
    importer = ReturnImporter(harness.service, source, shop=SHOP)
    before, called = dump(path), calls(harness)
    with pytest.raises(CurrencyMismatch) as raised:
        importer.import_one("7")
    assert raised.value.field == f"lines[1].outcome.{name}.currency"
    report = importer.import_range(DAY0 - timedelta(days=1), DAY0 + timedelta(days=1))
    assert [type(failure.error) for failure in report.failed] == [CurrencyMismatch]
    assert dump(path) == before
    assert calls(harness)[1:] == called[1:]  # no warehouse return, label or hold


# -- the order the platform reports ---------------------------------------------------------------


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize("name", ["unit_price", "discount", "tax"])
def test_an_order_line_amount_that_is_not_money_or_is_negative_names_its_field(
    name: str, value: Any
) -> None:
    with pytest.raises(InvalidAmount) as raised:
        OrderLine(
            id="L1", sku="A", variant_id="a", quantity=1, **{"unit_price": eur("1"), name: value}
        )
    assert (raised.value.field, raised.value.value) == (name, value)


def test_an_order_amount_in_another_currency_names_its_path() -> None:
    usd = Money("1.00", "USD")
    with pytest.raises(CurrencyMismatch) as raised:
        OrderLine(id="L1", sku="A", variant_id="a", quantity=1, unit_price=eur("2"), discount=usd)
    assert (raised.value.field, raised.value.value) == ("discount.currency", "USD")
    lines = [OrderLine(id="L1", sku="A", variant_id="a", quantity=1, unit_price=eur("2"))]
    with pytest.raises(CurrencyMismatch) as raised:
        OrderSnapshot(
            id="O", shop=SHOP, created_at=DAY0, currency="USD", lines=lines, fulfilled_at=DAY0
        )
    assert (raised.value.field, raised.value.value) == ("lines[0].unit_price.currency", "EUR")
    for value, error in [
        (1.0, InvalidAmount),
        (eur("-0.01"), InvalidAmount),
        (usd, CurrencyMismatch),
    ]:
        with pytest.raises(error) as refused:
            OrderSnapshot(
                id="O",
                shop=SHOP,
                created_at=DAY0,
                currency="EUR",
                lines=lines,
                order_discount=value,
            )
        assert refused.value.field.startswith("order_discount")  # type: ignore[attr-defined]


def test_an_order_may_carry_zero_amounts() -> None:
    free = OrderLine(
        id="L1",
        sku="A",
        variant_id="a",
        quantity=1,
        unit_price=eur("0.00"),
        discount=eur("0.00"),
        tax=eur("0.00"),
    )
    snapshot = OrderSnapshot(
        id="O",
        shop=SHOP,
        created_at=DAY0,
        currency="EUR",
        lines=[free],
        order_discount=eur("0.00"),
    )
    assert snapshot.paid_total == eur("0.00")


# -- the policy's amounts -------------------------------------------------------------------------


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_an_approval_limit_that_is_not_money_or_is_negative_is_a_configuration_error(
    value: Any,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ReturnPolicy(auto_approve_limit=value)
    assert (raised.value.field, raised.value.value) == ("auto_approve_limit", value)


USD = Money("5.00", "USD")


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (ReturnPolicy(auto_approve_limit=USD), "policy.auto_approve_limit.currency"),
        (
            ReturnPolicy(fees=FeePolicy(return_shipping=USD)),
            "policy.fees.return_shipping.amount.currency",
        ),
        (
            ReturnPolicy(fees=FeePolicy(restocking=Fixed(USD))),
            "policy.fees.restocking.amount.currency",
        ),
        (
            ReturnPolicy(fees=FeePolicy(exchange_shipping=Fixed(eur("1.00"), tax=USD))),
            "policy.fees.exchange_shipping.tax.currency",
        ),
    ],
    ids=["limit", "shipping", "restocking", "exchange-shipping-tax"],
)
def test_a_policy_amount_in_another_currency_than_the_order_refuses_before_a_label_is_bought(
    on_sqlite: Callable[..., tuple[Harness, Path]], policy: ReturnPolicy, field: str
) -> None:
    """Before, a fee in another currency was found only when charged: the label was bought,
    the goods came back, and the receipt failed with the return stuck."""
    harness, path = on_sqlite(policy)
    before, called = dump(path), calls(harness)
    request = ReturnRequest(
        shop=SHOP, order_id="O-1", lines=[RequestLine(order_line_id="L1", quantity=1)]
    )
    for call in (harness.service.request, harness.service.quote):
        with pytest.raises(CurrencyMismatch) as raised:
            call(request)
        assert (raised.value.field, raised.value.value) == (field, "USD")
    with pytest.raises(CurrencyMismatch):
        harness.service.import_return(request, return_id="loop-1", source="loop", external_id="1")
    assert dump(path) == before
    assert calls(harness)[1:] == called[1:]


def test_policy_amounts_in_the_order_currency_and_zero_are_fine() -> None:
    policy = ReturnPolicy(
        auto_approve_limit=eur("0.00"),
        fees=FeePolicy(return_shipping=eur("0.00"), restocking=Percent(0)),
    )
    harness = Harness(policy=policy, clock=ManualClock(DAY0 + timedelta(days=2)))
    harness.ports.commerce.add_order(order())
    record = harness.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="O-1",
            lines=[RequestLine(order_line_id="L1", quantity=1, outcome=Refund())],
        )
    )
    assert record.status == "pending_review"  # worth more than a limit of zero


# -- the same amounts as plain data (a portal's JSON, a source adapter's mapping) ----------------


@pytest.mark.parametrize(
    ("outcome", "field", "value"),
    [
        (
            {"kind": "store_credit", "bonus": {"amount": "-5.00", "currency": "EUR"}},
            "lines[1].outcome.bonus",
            Money("-5.00", "EUR"),
        ),
        (
            {"kind": "exchange", "variant_id": "x", "unit_price": 12.5},
            "lines[1].outcome.unit_price",
            12.5,
        ),
        (
            {
                "kind": "exchange",
                "variant_id": "x",
                "unit_price": {"amount": 12.5, "currency": "EUR"},
            },
            "lines[1].outcome.unit_price.amount",
            12.5,
        ),
    ],
    ids=["negative-bonus", "bare-price", "float-price"],
)
def test_amounts_given_as_plain_data_name_the_same_paths(
    outcome: dict[str, Any], field: str, value: Any
) -> None:
    from returnflow.serialization import external_return_from_dict, request_from_dict

    lines = [{"order_line_id": "L2", "quantity": 1}, {"order_line_id": "L1", "quantity": 1}]
    lines[1]["outcome"] = outcome
    request = {"shop": SHOP, "order_id": "O-1", "lines": lines}
    external = {
        **request,
        "source": "loop",
        "external_id": "7",
        "created_at": "2026-03-01T09:00:00+00:00",
        "updated_at": "2026-03-01T09:00:00+00:00",
    }
    for parse, data in ((request_from_dict, request), (external_return_from_dict, external)):
        with pytest.raises(InvalidAmount) as raised:
            parse(data)  # type: ignore[operator]
        assert (raised.value.field, raised.value.value) == (field, value)
