"""Tax-inclusive and tax-exclusive orders, and fees that carry tax.

An order says whether its prices include tax (``OrderSnapshot.taxes_included``, Shopify's
``taxesIncluded``). A line's ``tax`` is then the part of what it cost that is tax; otherwise
it is added to what it cost. Every settlement reports the tax part of its amounts, and a
fee's tax apart (a rate or an amount; included in the fee for a tax-inclusive order, added
to it otherwise). Worked examples in both modes, in JPY (0 decimals), EUR (2) and KWD (3),
with the arithmetic in the comments; properties over random orders in both modes.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from returnflow import (
    CurrencyMismatch,
    Exchange,
    ExchangeLine,
    InvalidAmount,
    InvalidPayload,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRecord,
    ReturnRequest,
    StoreCredit,
    WarehouseReceipt,
)
from returnflow.domain.settlement import (
    Document,
    FeePolicy,
    Fixed,
    Percent,
    settle,
    unit_amounts,
    unit_taxes,
)
from returnflow.errors import InvalidFee
from returnflow.testing import Harness

SHOP = "shop-t"
ORDER_ID = "4001"
ORDERED = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)


def order(
    *lines: OrderLine,
    currency: str = "EUR",
    included: bool,
    order_discount: Money | None = None,
) -> OrderSnapshot:
    return OrderSnapshot(
        id=ORDER_ID,
        shop=SHOP,
        created_at=ORDERED,
        fulfilled_at=ORDERED,
        currency=currency,
        lines=lines,
        order_discount=order_discount,
        taxes_included=included,
    )


def item(
    line_id: str, quantity: int, price: Money, tax: Money, discount: Money | None = None
) -> OrderLine:
    return OrderLine(
        id=line_id,
        sku=line_id,
        variant_id=f"v-{line_id}",
        quantity=quantity,
        unit_price=price,
        tax=tax,
        discount=discount,
    )


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def harness(snapshot: OrderSnapshot, fees: FeePolicy | None = None) -> Harness:
    made = Harness(policy=ReturnPolicy(fees=fees or FeePolicy()))
    made.ports.commerce.add_order(snapshot)
    return made


def ask(*lines: tuple[str, int]) -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP,
        order_id=ORDER_ID,
        lines=[RequestLine(order_line_id=line_id, quantity=units) for line_id, units in lines],
    )


def settled(record: ReturnRecord) -> dict[str, object]:
    (payload,) = [dict(entry.payload) for entry in record.history if entry.event == "settled"]
    return payload


def receive_all(made: Harness, record: ReturnRecord) -> ReturnRecord:
    lines = [ReceivedLine(line_id=line.id, quantity=line.quantity) for line in record.lines]
    event = WarehouseReceipt(shop=SHOP, return_id=record.id, event_id=f"w-{record.id}", lines=lines)
    return made.service.handle(event).record


# -- the example ---------------------------------------------------------------------------


def test_a_10_00_line_with_10_percent_vat_included_refunds_10_00_of_which_0_91_tax() -> None:
    vat = order(item("A", 1, eur("10.00"), eur("0.91")), included=True)
    made = harness(vat)

    record = receive_all(made, made.service.request(ask(("A", 1))))

    assert [refund.amount for refund in made.ports.commerce.refunds] == [eur("10.00")]
    assert settled(record) == {
        "refund": "10.00 EUR",
        "refund_tax": "0.91 EUR",
        "documents": "refunded_credit_memo 10.00 EUR",
    }
    assert vat.paid_total == eur("10.00")


def test_the_same_line_with_tax_added_refunds_10_91() -> None:
    # A platform whose prices exclude tax: 10.00 + 0.91 tax on top was paid.
    added = order(item("A", 1, eur("10.00"), eur("0.91")), included=False)
    made = harness(added)

    record = receive_all(made, made.service.request(ask(("A", 1))))

    assert [refund.amount for refund in made.ports.commerce.refunds] == [eur("10.91")]
    assert settled(record)["refund_tax"] == "0.91 EUR"
    assert added.paid_total == eur("10.91")


# -- worked examples in both modes, three currencies -----------------------------------------------


def test_yen_with_tax_included_and_an_order_discount() -> None:
    def jpy(amount: int) -> Money:
        return Money(amount, "JPY")

    # Japan's 10 % consumption tax, prices including it. A: 3 x 1100 = 3300, tax 300;
    # B: 1 x 550, tax 50. An order discount of 385 by net 3300 : 550: 330 and 55; the
    # platform's tax after the discount: A 270, B 45.
    snapshot = order(
        item("A", 3, jpy(1100), jpy(270)),
        item("B", 1, jpy(550), jpy(45)),
        currency="JPY",
        included=True,
        order_discount=jpy(385),
    )
    # A: 3300 - 330 = 2970 over 3 = 990 each, tax 270 = 90 each; B: 550 - 55 = 495, tax 45.
    assert unit_amounts(snapshot) == {"A": (jpy(990),) * 3, "B": (jpy(495),)}
    assert unit_taxes(snapshot) == {"A": (jpy(90),) * 3, "B": (jpy(45),)}
    assert snapshot.paid_total == jpy(3465)  # 3850 - 385: the tax is inside

    made = harness(snapshot)
    first = receive_all(made, made.service.request(ask(("A", 2))))
    second = receive_all(made, made.service.request(ask(("A", 1), ("B", 1))))

    assert [r.amount for r in made.ports.commerce.refunds] == [jpy(1980), jpy(1485)]
    assert (settled(first)["refund_tax"], settled(second)["refund_tax"]) == ("180 JPY", "135 JPY")
    assert jpy(1980) + jpy(1485) == snapshot.paid_total  # everything back, to the yen


def test_yen_with_tax_added() -> None:
    def jpy(amount: int) -> Money:
        return Money(amount, "JPY")

    # A: 3 x 1000 net, tax 300 on top, in three units: 1100 each, 100 of it tax.
    snapshot = order(item("A", 3, jpy(1000), jpy(300)), currency="JPY", included=False)
    made = harness(snapshot)

    record = receive_all(made, made.service.request(ask(("A", 3))))

    assert [r.amount for r in made.ports.commerce.refunds] == [jpy(3300)]
    assert settled(record)["refund_tax"] == "300 JPY"


def test_dinar_in_both_modes_with_remainders() -> None:
    def kwd(amount: str) -> Money:
        return Money(amount, "KWD")

    # Three units, 1.000 each, 5 % tax (0.150 for the line): included, the customer paid
    # 3.000 of which 0.150 tax, split 1.000 / 1.000 / 1.000 with tax 0.050 each.
    included = order(item("A", 3, kwd("1.000"), kwd("0.150")), currency="KWD", included=True)
    assert unit_amounts(included)["A"] == (kwd("1.000"),) * 3
    assert unit_taxes(included)["A"] == (kwd("0.050"),) * 3
    # Added, with 0.151 of tax (a platform rounding per line): 3.151 paid; the fils left
    # over go to the first unit in both splits: 1.051 / 1.050 / 1.050, tax 0.051 / 0.050 x 2.
    added = order(item("A", 3, kwd("1.000"), kwd("0.151")), currency="KWD", included=False)
    assert unit_amounts(added)["A"] == (kwd("1.051"), kwd("1.050"), kwd("1.050"))
    assert unit_taxes(added)["A"] == (kwd("0.051"), kwd("0.050"), kwd("0.050"))

    made = harness(added)
    first = receive_all(made, made.service.request(ask(("A", 1))))
    rest = receive_all(made, made.service.request(ask(("A", 2))))
    assert [r.amount for r in made.ports.commerce.refunds] == [kwd("1.051"), kwd("2.100")]
    assert (settled(first)["refund_tax"], settled(rest)["refund_tax"]) == (
        "0.051 KWD",
        "0.100 KWD",
    )


# -- fees that carry tax ---------------------------------------------------------------------------


def test_fees_include_their_tax_when_the_prices_do() -> None:
    # 20 % VAT included everywhere: a 30.00 coat (tax 5.00), a 10 % restocking fee taxed at
    # 20 % (3.00, of which 0.50 tax) and a 6.00 return shipping fee taxed at 20 % (1.00).
    fees = FeePolicy(restocking=Percent(10, tax=20), return_shipping=Fixed(eur("6.00"), tax=20))
    vat = order(item("A", 1, eur("30.00"), eur("5.00")), included=True)

    quote = harness(vat, fees).service.quote(ask(("A", 1)))

    assert (quote.restocking_fee, quote.restocking_fee_tax) == (eur("3.00"), eur("0.50"))
    assert (quote.return_shipping_fee, quote.return_shipping_fee_tax) == (
        eur("6.00"),
        eur("1.00"),
    )
    # 30.00 - 3.00 - 6.00 = 21.00 refunded, of which 5.00 - 0.50 - 1.00 = 3.50 tax.
    assert (quote.refund, quote.refund_tax) == (eur("21.00"), eur("3.50"))
    assert quote.tax == eur("5.00")


def test_fees_get_their_tax_added_when_the_prices_do() -> None:
    # The same coat, prices excluding tax: 25.00 + 5.00 tax = 30.00 paid. The restocking fee
    # is 10 % of 30.00 = 3.00, plus 20 % tax 0.60 = 3.60; shipping 6.00 + 1.20 = 7.20.
    fees = FeePolicy(restocking=Percent(10, tax=20), return_shipping=Fixed(eur("6.00"), tax=20))
    added = order(item("A", 1, eur("25.00"), eur("5.00")), included=False)

    quote = harness(added, fees).service.quote(ask(("A", 1)))

    assert (quote.restocking_fee, quote.restocking_fee_tax) == (eur("3.60"), eur("0.60"))
    assert (quote.return_shipping_fee, quote.return_shipping_fee_tax) == (
        eur("7.20"),
        eur("1.20"),
    )
    # 30.00 - 3.60 - 7.20 = 19.20, of which 5.00 - 0.60 - 1.20 = 3.20 tax.
    assert (quote.refund, quote.refund_tax) == (eur("19.20"), eur("3.20"))


def test_a_fee_may_carry_a_tax_amount_and_an_owed_fee_carries_its_tax_to_the_invoice() -> None:
    # Shipping 12.00 with 2.00 of tax in it; the 10.00 refund pays 10.00 of it, 2.00 owed.
    fees = FeePolicy(return_shipping=Fixed(eur("12.00"), tax=eur("2.00")))
    vat = order(item("A", 1, eur("10.00"), eur("0.00")), included=True)

    quote = harness(vat, fees).service.quote(ask(("A", 1)))

    assert (quote.return_shipping_fee, quote.return_shipping_fee_tax) == (
        eur("12.00"),
        eur("2.00"),
    )
    assert (quote.fees_owed, quote.balance_due) == (eur("2.00"), eur("2.00"))
    # The tax goes with the fee where it is paid: 10/12 of 2.00 = 1.67 from the refund
    # (a refund of 0.00 whose tax part is 0.00 - 1.67) and 0.33 on the invoice.
    assert quote.fees_owed_tax == eur("0.33")
    assert quote.refund_tax == eur("-1.67")
    assert quote.documents == ((Document.INVOICE, eur("2.00")),)


def test_the_rest_of_an_exchange_for_less_carries_its_share_of_the_tax() -> None:
    # A 20.00 shirt with 3.33 VAT included, exchanged for a 15.00 one: 5.00 back, carrying
    # 5/20 of 3.33 = 0.8325 -> 0.83 of tax; the exchanged units' tax is 3.33.
    vat = order(item("A", 1, eur("20.00"), eur("3.33")), included=True)
    made = harness(vat)
    cheaper = Exchange(variant_id="shirt-sale", unit_price=eur("15.00"))
    request = ReturnRequest(
        shop=SHOP,
        order_id=ORDER_ID,
        lines=[RequestLine(order_line_id="A", quantity=1, outcome=cheaper)],
    )

    quote = made.service.quote(request)

    assert (quote.refund, quote.refund_tax) == (eur("5.00"), eur("0.83"))
    assert quote.exchange_credit_tax == eur("3.33")


def test_store_credit_reports_its_tax_and_the_bonus_carries_none() -> None:
    vat = order(item("A", 2, eur("12.00"), eur("4.00")), included=True)
    made = harness(vat)
    request = ReturnRequest(
        shop=SHOP,
        order_id=ORDER_ID,
        lines=[RequestLine(order_line_id="A", quantity=2, outcome=StoreCredit(bonus=eur("5.00")))],
    )

    quote = made.service.quote(request)

    assert (quote.store_credit, quote.store_credit_tax, quote.bonus) == (
        eur("24.00"),
        eur("4.00"),
        eur("5.00"),
    )


# -- bad input -------------------------------------------------------------------------------------


def test_tax_above_what_a_tax_inclusive_line_cost_is_refused() -> None:
    with pytest.raises(InvalidPayload) as raised:
        order(item("A", 1, eur("10.00"), eur("10.01")), included=True)
    assert (raised.value.field, raised.value.value) == ("lines[0].tax", eur("10.01"))
    # The same tax added to the price is fine: 20.01 was paid.
    assert order(item("A", 1, eur("10.00"), eur("10.01")), included=False).paid_total == eur(
        "20.01"
    )


@pytest.mark.parametrize(
    ("make", "error", "field"),
    [
        (lambda: Percent(10, tax=101), InvalidFee, "tax"),
        (lambda: Fixed(eur("5.00"), tax=-1), InvalidFee, "tax"),
        (lambda: Fixed(eur("5.00"), tax=eur("-0.01")), InvalidFee, "tax"),
        (lambda: Fixed(eur("5.00"), tax=0.2), InvalidAmount, "tax"),
        (lambda: Fixed(eur("5.00"), tax="twenty"), InvalidAmount, "tax"),
    ],
    ids=["rate-above-100", "rate-negative", "amount-negative", "float", "text"],
)
def test_a_fee_tax_that_cannot_be_is_refused(
    make: object, error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as raised:
        make()  # type: ignore[operator]
    assert raised.value.field == field  # type: ignore[attr-defined]


def test_a_fee_tax_in_another_currency_is_refused_before_anything_is_stored() -> None:
    fees = FeePolicy(return_shipping=Fixed(eur("5.00"), tax=Money("1.00", "USD")))
    made = harness(order(item("A", 1, eur("10.00"), eur("0.91")), included=True), fees)
    for call in (made.service.quote, made.service.request):
        with pytest.raises(CurrencyMismatch) as raised:
            call(ask(("A", 1)))
        assert raised.value.field == "policy.fees.return_shipping.tax.currency"
    assert made.service.list(SHOP) == []


# -- properties ------------------------------------------------------------------------------------

CURRENCIES = ("EUR", "JPY", "KWD")


@st.composite
def taxed_orders(draw: st.DrawFn) -> OrderSnapshot:
    """1-4 lines of 1-5 units with tax, in either mode, with an optional order discount."""
    currency = draw(st.sampled_from(CURRENCIES))
    included = draw(st.booleans())

    def minor(units: int) -> Money:
        return Money.from_minor_units(units, currency)

    lines = []
    for index in range(draw(st.integers(1, 4))):
        quantity = draw(st.integers(1, 5))
        price = draw(st.integers(0, 50_000))
        tax = draw(st.integers(0, quantity * price // 5 if included else 9_000))
        lines.append(item(f"L{index}", quantity, minor(price), minor(tax)))
    net = sum(line.net_total.minor_units for line in lines)
    discount = draw(st.none() | st.integers(0, net // 10))
    return order(
        *lines,
        currency=currency,
        included=included,
        order_discount=None if discount is None else minor(discount),
    )


@settings(max_examples=80, deadline=None)
@given(snapshot=taxed_orders(), data=st.data())
def test_property_returning_everything_gives_back_what_was_paid_and_all_its_tax(
    snapshot: OrderSnapshot, data: st.DataObject
) -> None:
    made = harness(snapshot)
    currency = snapshot.currency
    left = {line.id: line.quantity for line in snapshot.lines}
    opened = []
    while any(left.values()):
        wanted = [
            (line_id, units)
            for line_id, free in left.items()
            if free and (units := data.draw(st.integers(0, free), label=line_id))
        ] or [next((line_id, free) for line_id, free in left.items() if free)]
        record = made.service.request(ask(*wanted))
        for line_id, units in wanted:
            left[line_id] -= units
        opened.append(record)
        receive_all(made, record)

    refunds = [refund.amount for refund in made.ports.commerce.refunds]
    assert Money.sum(refunds, currency) == snapshot.paid_total
    line_tax = Money.sum((line.tax for line in snapshot.lines if line.tax), currency)
    reported = Money.sum(
        (_tax_of(made.service.get(SHOP, record.id), currency) for record in opened), currency
    )
    assert reported == line_tax


def _tax_of(record: ReturnRecord, currency: str) -> Money:
    text = settled(record).get("refund_tax")
    return Money.zero(currency) if text is None else Money(str(text).split()[0], currency)


@settings(max_examples=150, deadline=None)
@given(snapshot=taxed_orders(), data=st.data())
def test_property_fee_taxes_go_where_the_fees_are_paid_to_the_minor_unit(
    snapshot: OrderSnapshot, data: st.DataObject
) -> None:
    currency = snapshot.currency

    def minor(limit: int) -> st.SearchStrategy[Money]:
        return st.integers(0, limit).map(lambda n: Money.from_minor_units(n, currency))

    rate = st.none() | st.integers(0, 30)
    fees = FeePolicy(
        restocking=data.draw(st.none() | st.builds(Percent, st.integers(0, 100), tax=rate)),
        return_shipping=data.draw(
            st.none() | st.builds(Fixed, minor(5_000), tax=rate | minor(500))
        ),
        fees_only_from_payout=data.draw(st.booleans()),
    )
    made = harness(snapshot, fees)
    record = made.service.request(ask(*((line.id, line.quantity) for line in snapshot.lines)))
    parts = [(line, line.quantity, 0) for line in record.lines]
    result = settle(currency, parts, fees=fees, taxes_included=snapshot.taxes_included)

    zero = Money.zero(currency)
    goods_tax = Money.sum((line.tax for line in snapshot.lines if line.tax), currency)
    assert result.tax == goods_tax
    # The goods' tax is refunded less the tax of the fees taken from the refund; what the
    # refund did not pay of the fees' tax is on the invoice or waived with the fee.
    fee_tax = result.restocking_fee_tax + result.return_shipping_fee_tax
    assert result.refund_tax + fee_tax == goods_tax + result.fees_owed_tax
    assert zero <= result.restocking_fee_tax <= result.restocking_fee
    assert zero <= result.return_shipping_fee_tax <= result.return_shipping_fee
    assert zero <= result.fees_owed_tax <= result.fees_owed


# -- settle() directly: the tax of every part ------------------------------------------------------


def stored(
    line_id: str, *amounts: str, taxes: tuple[str, ...] = (), outcome: object = None
) -> ReturnLine:
    return ReturnLine(
        id=line_id,
        order_line_id=f"O-{line_id}",
        sku=line_id,
        variant_id=f"v-{line_id}",
        quantity=len(amounts),
        outcome=outcome or Refund(),  # type: ignore[arg-type]
        reason=ReturnReason.UNWANTED,
        unit_amounts=tuple(eur(amount) for amount in amounts),
        units=tuple(range(len(amounts))),
        unit_taxes=tuple(eur(tax) for tax in taxes),
    )


def test_a_part_carries_the_tax_of_its_own_units() -> None:
    line = stored("1", "10.00", "10.00", taxes=("0.50", "0.10"))
    assert settle("EUR", [(line, 1, 1)], fees=FeePolicy()).refund_tax == eur("0.10")
    assert settle("EUR", [(line, 1, 0)], fees=FeePolicy()).lines[0].tax == eur("0.50")
    assert settle("EUR", [(line, 1, 1)], fees=FeePolicy()).lines[0].start == 1


def test_outbound_shipping_carries_its_tax_in_both_modes() -> None:
    fees = FeePolicy(exchange_shipping=Fixed(eur("5.00"), tax=20))
    line = stored("1", "20.00", taxes=("3.33",), outcome=Exchange(variant_id="new"))
    new = ExchangeLine(id="1-x", return_line_id="1", variant_id="new", quantity=1)
    included = settle("EUR", [(line, 1, 0)], fees=fees, exchange_lines=[new], taxes_included=True)
    assert (included.exchange_shipping, included.exchange_shipping_tax) == (
        eur("5.00"),
        eur("0.83"),
    )
    added = settle("EUR", [(line, 1, 0)], fees=fees, exchange_lines=[new])
    assert (added.exchange_shipping, added.exchange_shipping_tax) == (eur("6.00"), eur("1.00"))


def test_a_fee_waived_for_want_of_a_payout_takes_its_tax_with_it() -> None:
    fees = FeePolicy(
        restocking=Fixed(eur("2.40"), tax=20), waive_for_exchanges=False, fees_only_from_payout=True
    )
    line = stored("1", "20.00", taxes=("3.33",), outcome=Exchange(variant_id="new"))
    new = ExchangeLine(id="1-x", return_line_id="1", variant_id="new", quantity=1)
    result = settle("EUR", [(line, 1, 0)], fees=fees, exchange_lines=[new], taxes_included=True)
    assert (result.restocking_fee, result.restocking_fee_tax) == (eur("0.00"), eur("0.00"))
    assert result.fees_waived == eur("2.40")


def test_a_refund_that_pays_an_exchanges_shortfall_gives_up_its_tax_in_proportion() -> None:
    # B refunds 10.00 (1.67 tax); A's 20.00 goes to a 26.00 item: 6.00 short, paid from B's
    # refund: 4.00 is left, with 4/10 of 1.67 = 0.668 -> 0.67 of tax.
    a = stored("A", "20.00", taxes=("3.33",), outcome=Exchange(variant_id="new"))
    b = stored("B", "10.00", taxes=("1.67",))
    new = ExchangeLine(
        id="A-x", return_line_id="A", variant_id="new", quantity=1, unit_price=eur("26.00")
    )
    result = settle("EUR", [(a, 1, 0), (b, 1, 0)], fees=FeePolicy(), exchange_lines=[new])
    assert (result.refund, result.refund_tax, result.balance_due) == (
        eur("4.00"),
        eur("0.67"),
        eur("0.00"),
    )


def test_exchange_lines_of_other_parts_are_skipped_not_the_end() -> None:
    a = stored("A", "20.00", outcome=Exchange(variant_id="a2"))
    elsewhere = ExchangeLine(id="Z-x", return_line_id="Z", variant_id="z2", quantity=1)
    mine = ExchangeLine(
        id="A-x", return_line_id="A", variant_id="a2", quantity=1, unit_price=eur("25.00")
    )
    result = settle("EUR", [(a, 1, 0)], fees=FeePolicy(), exchange_lines=[elsewhere, mine])
    assert (result.exchange_total, result.balance_due) == (eur("25.00"), eur("5.00"))


def test_amounts_in_another_currency_name_the_field() -> None:
    with pytest.raises(CurrencyMismatch) as raised:
        settle("USD", [(stored("1", "10.00"), 1, 0)], fees=FeePolicy())
    assert (raised.value.field, raised.value.value, raised.value.reason) == (
        "currency",
        "EUR",
        "the return is in USD",
    )
    a = stored("A", "20.00", outcome=Exchange(variant_id="a2"))
    priced = ExchangeLine(
        id="A-x",
        return_line_id="A",
        variant_id="a2",
        quantity=1,
        unit_price=Money("25.00", "USD"),
    )
    with pytest.raises(CurrencyMismatch) as other:
        settle("EUR", [(a, 1, 0)], fees=FeePolicy(), exchange_lines=[priced])
    assert (other.value.field, other.value.value, other.value.reason) == (
        "exchange.unit_price.currency",
        "USD",
        "the return is in EUR",
    )


def test_a_settlement_without_the_mode_counts_prices_without_tax() -> None:
    fees = FeePolicy(return_shipping=Fixed(eur("5.00"), tax=20))
    assert settle("EUR", [(stored("1", "10.00"), 1, 0)], fees=fees).return_shipping_fee == eur(
        "6.00"
    )
