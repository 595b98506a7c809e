"""Settlement: what returned units are worth, the fees kept, and what each outcome pays.

Worked examples with the cents checked by hand (the arithmetic is in the comments), run
against :func:`~returnflow.domain.settlement.unit_amounts` and
:func:`~returnflow.domain.settlement.settle` directly and through the service with the fakes:

* per-unit paid amounts with line and order-level discounts and tax, largest remainder,
  in 2-, 0- and 3-decimal currencies;
* fees (seed 003): restocking (percent or fixed, per line, one lump sum), a return shipping
  fee once per return, waived for exchanges and merchant faults, never below zero;
* outcomes as ERP documents (seed 004): refunded credit memo, credit memo, exchange order;
* native exchanges (seed 003): even, for less (refund or store credit), upsell (a balance
  charged through Payments; paying it does not release the exchange);
* :meth:`~returnflow.ReturnsService.quote`, the refund triggers, restocking by disposition,
  exchange eligibility and bad input;
* properties over random orders (EUR / JPY / KWD): nothing paid out beyond what was paid,
  everything returned refunds the order to the minor unit, no currency mixing, no unit
  refunded twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Completion,
    CurrencyMismatch,
    Exchange,
    ExchangeLine,
    ExchangeNotOffered,
    HandleResult,
    InvalidAmount,
    InvalidPayload,
    InvalidQuantity,
    InvalidTransition,
    Keep,
    Money,
    OrderLine,
    OrderSnapshot,
    Outcome,
    OutcomeKind,
    QcResult,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRecord,
    ReturnRequest,
    StoreCredit,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.inbound import Disposition  # not re-exported by ``returnflow``
from returnflow.domain.policy import RefundTrigger  # not re-exported by ``returnflow``
from returnflow.domain.settlement import (
    Document,
    FeePolicy,
    Fixed,
    Percent,
    Settlement,
    settle,
    unit_amounts,
)
from returnflow.errors import InvalidFee  # not re-exported by ``returnflow``
from returnflow.ports import LineQuantity
from returnflow.testing import Harness

SHOP = "shop-s"
ORDER_ID = "2001"
ORDERED = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)  # the harness clock: 2026-01-15


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def make_order(
    *lines: OrderLine,
    currency: str = "EUR",
    order_discount: Money | None = None,
    created_by_app: str | None = None,
) -> OrderSnapshot:
    return OrderSnapshot(
        id=ORDER_ID,
        shop=SHOP,
        created_at=ORDERED,
        fulfilled_at=ORDERED,
        currency=currency,
        lines=lines,
        order_discount=order_discount,
        customer_email="eve@example.com",
        created_by_app=created_by_app,
    )


def item(
    line_id: str,
    quantity: int,
    unit_price: Money,
    *,
    discount: Money | None = None,
    tax: Money | None = None,
) -> OrderLine:
    return OrderLine(
        id=line_id,
        sku=f"SKU-{line_id}",
        variant_id=f"v-{line_id}",
        quantity=quantity,
        unit_price=unit_price,
        discount=discount,
        tax=tax,
    )


def shop_order() -> OrderSnapshot:
    """A: a T-shirt 25.00; B: a coat 100.00; C: 2 caps 2 x 20.00 = 40.00 (20.00 each)."""
    return make_order(
        item("A", 1, eur("25.00")),
        item("B", 1, eur("100.00")),
        item("C", 2, eur("20.00")),
    )


def make_harness(order: OrderSnapshot, policy: ReturnPolicy | None = None) -> Harness:
    harness = Harness(policy=policy or ReturnPolicy())
    harness.ports.commerce.add_order(order)
    return harness


def line(
    order_line_id: str,
    quantity: int = 1,
    outcome: Outcome | None = None,
    reason: ReturnReason = ReturnReason.UNKNOWN,
) -> RequestLine:
    return RequestLine(
        order_line_id=order_line_id,
        quantity=quantity,
        outcome=outcome or Refund(),
        reason=reason,
    )


def ask(*lines: RequestLine) -> ReturnRequest:
    return ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=lines)


def request(harness: Harness, *lines: RequestLine) -> ReturnRecord:
    return harness.service.request(ask(*lines))


def receive(harness: Harness, return_id: str, event_id: str, *lines: ReceivedLine) -> HandleResult:
    return harness.service.handle(
        WarehouseReceipt(shop=SHOP, return_id=return_id, event_id=event_id, lines=lines)
    )


def got(
    line_id: str,
    quantity: int = 1,
    *,
    qc: QcResult = QcResult.PASS,
    disposition: Disposition | None = None,
) -> ReceivedLine:
    return ReceivedLine(line_id=line_id, quantity=quantity, qc=qc, disposition=disposition)


def scan(harness: Harness, return_id: str, event_id: str, status: CarrierStatus) -> HandleResult:
    return harness.service.handle(
        CarrierUpdate(shop=SHOP, return_id=return_id, event_id=event_id, status=status)
    )


def finish(harness: Harness, return_id: str, event_id: str) -> HandleResult:
    return harness.service.handle(
        WarehouseFinished(shop=SHOP, return_id=return_id, event_id=event_id)
    )


def refunded(harness: Harness) -> list[Money]:
    return [refund.amount for refund in harness.ports.commerce.refunds]


def credited(harness: Harness) -> list[Money]:
    return [credit.amount for credit in harness.ports.commerce.credits]


def settled_payloads(record: ReturnRecord) -> list[dict[str, object]]:
    return [dict(entry.payload) for entry in record.history if entry.event == "settled"]


def return_line(
    line_id: str,
    *amounts: Money,
    outcome: Outcome | None = None,
    reason: ReturnReason = ReturnReason.UNKNOWN,
) -> ReturnLine:
    """A stored return line of ``len(amounts)`` units worth ``amounts``, for :func:`settle`."""
    return ReturnLine(
        id=line_id,
        order_line_id=f"O-{line_id}",
        sku=f"SKU-{line_id}",
        variant_id=f"v-{line_id}",
        quantity=len(amounts),
        outcome=outcome or Refund(),
        reason=reason,
        unit_amounts=amounts,
        units=tuple(range(len(amounts))),
    )


def whole(*lines: ReturnLine) -> list[tuple[ReturnLine, int, int]]:
    return [(part, part.quantity, 0) for part in lines]


# -- 1. per-unit amounts with line and order discounts ------------------------------------------


def discounted_order() -> OrderSnapshot:
    """A: 3 x 20.00 = 60.00; B: 1 x 40.00; an order discount of 10.00."""
    return make_order(
        item("A", 3, eur("20.00")),
        item("B", 1, eur("40.00")),
        order_discount=eur("10.00"),
    )


def test_an_order_discount_is_shared_by_net_totals_then_split_per_unit() -> None:
    order = discounted_order()

    units = unit_amounts(order)

    # Nets 60.00 : 40.00 -> shares of 10.00: 6.00 and 4.00.
    # A: 60.00 - 6.00 = 54.00 over 3 units = 18.00 each; B: 40.00 - 4.00 = 36.00.
    assert units == {"A": (eur("18.00"),) * 3, "B": (eur("36.00"),)}
    assert order.paid_total == eur("90.00")  # 100.00 - 10.00
    assert Money.sum((a for amounts in units.values() for a in amounts), "EUR") == eur("90.00")


def test_three_returns_of_one_unit_refund_18_each_and_a_fourth_is_refused() -> None:
    harness = make_harness(discounted_order())

    for number in (1, 2, 3):
        record = request(harness, line("A"))
        assert record.lines[0].unit_amounts == (eur("18.00"),)
        closed = receive(harness, record.id, f"wms-{number}", got("A")).record
        assert closed.state == ("closed", "no_exchange")

    assert refunded(harness) == [eur("18.00")] * 3
    assert [refund.lines for refund in harness.ports.commerce.refunds] == [
        (LineQuantity("A", 1),)
    ] * 3
    before = harness.service.list(SHOP)
    with pytest.raises(InvalidQuantity) as raised:
        request(harness, line("A"))
    assert raised.value.field == "lines[0].quantity"
    assert harness.service.list(SHOP) == before


def test_remainders_of_an_order_discount_add_up_to_the_paid_total() -> None:
    order = make_order(
        item("X", 1, eur("10.00")),
        item("Y", 1, eur("10.00")),
        item("Z", 1, eur("10.00")),
        order_discount=eur("10.00"),
    )
    # 1000 cents over equal weights: 333.33 each, floors 999, the 1 left goes to the first
    # line -> shares 3.34 / 3.33 / 3.33 -> paid 6.66 / 6.67 / 6.67 = 20.00.
    assert unit_amounts(order) == {
        "X": (eur("6.66"),),
        "Y": (eur("6.67"),),
        "Z": (eur("6.67"),),
    }
    harness = make_harness(order)

    for number, line_id in enumerate(("Z", "X", "Y"), start=1):  # any order
        record = request(harness, line(line_id))
        receive(harness, record.id, f"wms-{number}", got(line_id))

    assert refunded(harness) == [eur("6.67"), eur("6.66"), eur("6.67")]
    assert Money.sum(refunded(harness), "EUR") == order.paid_total == eur("20.00")


# -- 2. zero- and three-decimal currencies ------------------------------------------------------


def test_yen_order_with_line_and_order_discounts_is_exact_to_the_yen() -> None:
    def jpy(amount: int) -> Money:
        return Money(amount, "JPY")

    order = make_order(
        item("A", 3, jpy(1000), discount=jpy(100)),  # net 2900
        item("B", 1, jpy(500), tax=jpy(35)),  # net 500
        currency="JPY",
        order_discount=jpy(1000),
    )
    # Shares of 1000 by 2900 : 500: 852.94 / 147.06 -> floors 852 + 147 = 999, the last yen
    # to A (.94) -> 853 / 147. A: 2900 - 853 = 2047 over 3 -> 683 / 682 / 682;
    # B: 500 - 147 + 35 = 388. Paid: 2900 + 535 - 1000 = 2435 = 2047 + 388.
    assert unit_amounts(order) == {"A": (jpy(683), jpy(682), jpy(682)), "B": (jpy(388),)}
    harness = make_harness(order)

    first = request(harness, line("A"))
    receive(harness, first.id, "wms-1", got("A"))
    second = request(harness, line("A", 2), line("B"))
    receive(harness, second.id, "wms-2", got("A", 2), got("B"))

    assert refunded(harness) == [jpy(683), jpy(1752)]  # 682 + 682 + 388 = 1752
    assert Money.sum(refunded(harness), "JPY") == order.paid_total == jpy(2435)


def test_dinar_order_with_line_and_order_discounts_is_exact_to_the_fils() -> None:
    def kwd(amount: str) -> Money:
        return Money(amount, "KWD")

    order = make_order(
        item("A", 2, kwd("1.250"), discount=kwd("0.100"), tax=kwd("0.120")),  # net 2.400
        item("B", 1, kwd("3.000")),
        currency="KWD",
        order_discount=kwd("0.500"),
    )
    # 500 fils by 2400 : 3000: 222.22 / 277.78 -> floors 222 + 277 = 499, the last fils to
    # B (.78) -> 222 / 278. A: 2.400 - 0.222 + 0.120 = 2.298 over 2 -> 1.149 each;
    # B: 3.000 - 0.278 = 2.722. Paid: 2.400 + 0.120 + 3.000 - 0.500 = 5.020.
    assert unit_amounts(order) == {"A": (kwd("1.149"), kwd("1.149")), "B": (kwd("2.722"),)}
    harness = make_harness(order)

    record = request(harness, line("A", 2), line("B"))
    receive(harness, record.id, "wms-1", got("A", 2), got("B"))

    assert refunded(harness) == [kwd("5.020")]
    assert order.paid_total == kwd("5.020")


# -- 3. fees ------------------------------------------------------------------------------------


def test_a_15_percent_restocking_fee_keeps_15_of_100_through_the_service() -> None:
    harness = make_harness(shop_order(), ReturnPolicy(fees=FeePolicy(restocking=Percent(15))))

    record = request(harness, line("B"))
    closed = receive(harness, record.id, "wms-1", got("B")).record

    assert closed.state == ("closed", "no_exchange")
    assert refunded(harness) == [eur("85.00")]  # 100.00 - 15 % = 100.00 - 15.00
    assert closed.restocking_fees == eur("15.00")
    assert closed.return_shipping_fee is None
    assert settled_payloads(closed) == [
        {
            "refund": "85.00 EUR",
            "restocking_fee": "15.00 EUR",
            "documents": "refunded_credit_memo 85.00 EUR",
        }
    ]


def test_percent_fees_round_half_even_and_fixed_fees_are_taken_as_they_are() -> None:
    # 15 % of 11.90 = 1.785 -> 1.78 (half even); 11.90 - 1.78 = 10.12.
    percent = settle(
        "EUR",
        whole(return_line("1", eur("11.90"))),
        fees=FeePolicy(restocking=Percent(15)),
    )
    assert (percent.restocking_fee, percent.refund) == (eur("1.78"), eur("10.12"))

    # Fixed 7.50 on 25.00 -> 17.50.
    fixed = settle(
        "EUR",
        whole(return_line("1", eur("25.00"))),
        fees=FeePolicy(restocking=Fixed(eur("7.50"))),
    )
    assert (fixed.restocking_fee, fixed.refund) == (eur("7.50"), eur("17.50"))
    assert fixed.lines[0].value == eur("25.00")
    assert fixed.lines[0].amount == eur("17.50")


def test_fixed_restocking_fee_through_the_service() -> None:
    policy = ReturnPolicy(fees=FeePolicy(restocking=Fixed(eur("7.50"))))
    harness = make_harness(shop_order(), policy)

    record = request(harness, line("A"))
    closed = receive(harness, record.id, "wms-1", got("A")).record

    assert refunded(harness) == [eur("17.50")]  # 25.00 - 7.50
    assert closed.restocking_fees == eur("7.50")


def test_the_return_shipping_fee_is_charged_once_per_return_across_reopen_and_close() -> None:
    policy = ReturnPolicy(
        fees=FeePolicy(return_shipping=eur("5.00")),
        completion=Completion.ON_WAREHOUSE_FINISHED,
    )
    harness = make_harness(shop_order(), policy)
    record = request(harness, line("C", 2))
    receive(harness, record.id, "wms-1", got("C"))
    assert finish(harness, record.id, "fin-1").record.status == "needs_review"  # 1 of 2

    first = harness.service.close(SHOP, record.id, unreceived="nothing")

    # Each cap bears 2.50 of the fee: the one received pays its share (20.00 - 2.50); the
    # one not received is not paid, and its share is owed, charged as the return closes.
    assert first.state == ("closed", "no_exchange")
    assert refunded(harness) == [eur("17.50")]
    charges = harness.ports.payments.calls_to("charge")
    assert [call.args["amount"] for call in charges] == [eur("2.50")]
    assert first.return_shipping_fee == eur("5.00")

    harness.service.reopen(SHOP, record.id, reason="second cap arrived")
    receive(harness, record.id, "wms-2", got("C"))
    second = finish(harness, record.id, "fin-2").record

    assert second.state == ("closed", "no_exchange")
    assert refunded(harness) == [eur("17.50"), eur("20.00")]  # its share was charged
    assert len(harness.ports.payments.calls_to("charge")) == 1
    assert second.return_shipping_fee == eur("5.00")
    assert [payload.get("return_shipping_fee") for payload in settled_payloads(second)] == [
        "5.00 EUR",
        None,
    ]


def test_fees_are_waived_for_an_exchange_line_and_a_defective_line() -> None:
    fees = FeePolicy(restocking=Percent(15), return_shipping=eur("5.00"))
    defective = return_line("1", eur("40.00"), reason=ReturnReason.DEFECTIVE)
    exchanged = return_line("2", eur("25.00"), outcome=Exchange(variant_id="v-new"))
    even = ExchangeLine(id="2-x", return_line_id="2", variant_id="v-new", quantity=1)

    waived = settle("EUR", whole(defective, exchanged), fees=fees, exchange_lines=[even])

    assert waived.restocking_fee == eur("0.00")
    assert waived.return_shipping_fee == eur("0.00")  # every line waived: no shipping fee
    assert waived.refund == eur("40.00")
    assert (waived.exchange_credit, waived.exchange_total) == (eur("25.00"), eur("25.00"))

    # A line the customer simply did not want pays both fees; the defective one still none.
    unwanted = return_line("3", eur("100.00"), reason=ReturnReason.UNWANTED)
    mixed = settle("EUR", whole(defective, unwanted), fees=fees)
    assert [part.restocking_fee for part in mixed.lines] == [eur("0.00"), eur("15.00")]
    # 40.00 + 100.00 - 15.00 restocking - 5.00 shipping = 120.00
    assert (mixed.return_shipping_fee, mixed.refund) == (eur("5.00"), eur("120.00"))


def test_exchange_fees_apply_when_the_policy_does_not_waive_them() -> None:
    fees = FeePolicy(restocking=Percent(10), waive_for_exchanges=False)
    exchanged = return_line("1", eur("25.00"), outcome=Exchange(variant_id="v-new"))
    priced = ExchangeLine(
        id="1-x", return_line_id="1", variant_id="v-new", quantity=1, unit_price=eur("20.00")
    )

    result = settle("EUR", whole(exchanged), fees=fees, exchange_lines=[priced])

    # 25.00 of credit for a 20.00 item: 5.00 back, less the 2.50 fee taken from it: 2.50.
    assert (result.restocking_fee, result.exchange_credit) == (eur("2.50"), eur("25.00"))
    assert (result.refund, result.balance_due) == (eur("2.50"), eur("0.00"))


def test_a_fee_larger_than_the_refund_is_taken_from_it_and_the_rest_is_owed() -> None:
    fees = FeePolicy(restocking=Fixed(eur("30.00")), return_shipping=eur("5.00"))

    result = settle("EUR", whole(return_line("1", eur("25.00"))), fees=fees)

    # A restocking fee is never more than the line: min(30.00, 25.00) = 25.00, from the
    # refund; the shipping fee finds nothing left of it, so the customer owes all 5.00.
    assert result.restocking_fee == eur("25.00")
    assert result.return_shipping_fee == eur("5.00")
    assert (result.fees_owed, result.balance_due) == (eur("5.00"), eur("5.00"))
    assert result.refund == eur("0.00")
    assert result.documents == ((Document.INVOICE, eur("5.00")),)

    harness = make_harness(shop_order(), ReturnPolicy(fees=fees))
    record = request(harness, line("A"))
    closed = receive(harness, record.id, "wms-1", got("A")).record
    assert closed.state == ("closed", "no_exchange")
    assert harness.ports.commerce.calls_to("refund") == []
    assert (closed.restocking_fees, closed.return_shipping_fee) == (eur("25.00"), eur("5.00"))
    assert [(p.kind, p.amount) for p in harness.ports.payments.payments] == [
        ("charge", eur("5.00"))
    ]
    assert (closed.balance_paid, closed.balance_charged) == (None, eur("5.00"))


def test_fees_only_from_payout_waives_what_the_payout_does_not_cover() -> None:
    fees = FeePolicy(
        restocking=Fixed(eur("30.00")), return_shipping=eur("5.00"), fees_only_from_payout=True
    )

    result = settle("EUR", whole(return_line("1", eur("25.00"))), fees=fees)

    # 25.00 restocking from the refund; the shipping fee is waived, not kept.
    assert (result.restocking_fee, result.return_shipping_fee) == (eur("25.00"), eur("0.00"))
    assert (result.fees_waived, result.balance_due) == (eur("5.00"), eur("0.00"))
    assert result.documents == ()

    harness = make_harness(shop_order(), ReturnPolicy(fees=fees))
    record = request(harness, line("A"))
    closed = receive(harness, record.id, "wms-1", got("A")).record
    assert closed.state == ("closed", "no_exchange")
    assert harness.ports.commerce.calls_to("refund") == []
    assert harness.ports.payments.calls == []
    assert (closed.restocking_fees, closed.return_shipping_fee) == (eur("25.00"), None)


def test_a_shipping_fee_larger_than_the_refund_takes_what_is_there_and_the_rest_is_owed() -> None:
    result = settle(
        "EUR", whole(return_line("1", eur("25.00"))), fees=FeePolicy(return_shipping=eur("30.00"))
    )
    assert (result.return_shipping_fee, result.refund) == (eur("30.00"), eur("0.00"))
    assert (result.shipping_from_refund, result.shipping_owed) == (eur("25.00"), eur("5.00"))
    assert result.balance_due == eur("5.00")

    waived = settle(
        "EUR",
        whole(return_line("1", eur("25.00"))),
        fees=FeePolicy(return_shipping=eur("30.00"), fees_only_from_payout=True),
    )
    assert (waived.return_shipping_fee, waived.refund) == (eur("25.00"), eur("0.00"))
    assert (waived.fees_waived, waived.balance_due) == (eur("5.00"), eur("0.00"))


def test_two_restocking_fees_are_one_lump_sum() -> None:
    fees = FeePolicy(restocking=Percent(15))

    result = settle(
        "EUR", whole(return_line("1", eur("25.00")), return_line("2", eur("100.00"))), fees=fees
    )

    # 15 % of 25.00 = 3.75, of 100.00 = 15.00: one fee of 18.75; 125.00 - 18.75 = 106.25.
    assert [part.restocking_fee for part in result.lines] == [eur("3.75"), eur("15.00")]
    assert result.restocking_fee == eur("18.75")
    assert result.fees == eur("18.75")
    assert result.refund == eur("106.25")
    assert result.as_dict() == {"refund": "106.25 EUR", "restocking_fee": "18.75 EUR"}


def test_store_credit_pays_the_shipping_fee_when_there_is_no_refund() -> None:
    fees = FeePolicy(return_shipping=eur("5.00"))
    credit_line = return_line("1", eur("25.00"), outcome=StoreCredit())

    only_credit = settle("EUR", whole(credit_line), fees=fees)

    assert (only_credit.refund, only_credit.store_credit) == (eur("0.00"), eur("20.00"))
    assert only_credit.return_shipping_fee == eur("5.00")
    assert only_credit.documents == ((Document.CREDIT_MEMO, eur("20.00")),)

    # Each unit bears its share of the fee, in proportion to its worth: 5.00 x 3 / 28 =
    # 0.54 from the refund, 4.46 from the credit (2.46 and 20.54), so the kind that bears
    # the fee is the same whichever unit is paid first.
    small_refund = return_line("2", eur("3.00"))
    both = settle("EUR", whole(small_refund, credit_line), fees=fees)
    assert (both.refund, both.store_credit) == (eur("2.46"), eur("20.54"))
    assert both.return_shipping_fee == eur("5.00")


# -- 4. outcomes and their documents ------------------------------------------------------------


def test_store_credit_with_a_bonus_issues_amount_plus_bonus() -> None:
    harness = make_harness(shop_order())
    wanted = ask(line("A", outcome=StoreCredit(bonus=eur("5.00"))))

    quote = harness.service.quote(wanted)
    assert (quote.store_credit, quote.bonus, quote.refund) == (
        eur("25.00"),
        eur("5.00"),
        eur("0.00"),
    )
    assert quote.documents == ((Document.CREDIT_MEMO, eur("30.00")),)

    record = harness.service.request(wanted)
    closed = receive(harness, record.id, "wms-1", got("A")).record

    assert credited(harness) == [eur("30.00")]  # 25.00 paid + 5.00 bonus
    assert refunded(harness) == []
    assert closed.refs.credit_ids == ("gift-1",)


def test_keep_refunds_and_credits_without_a_receipt() -> None:
    harness = make_harness(shop_order())

    record = request(
        harness, line("A", outcome=Keep()), line("B", outcome=Keep(OutcomeKind.STORE_CREDIT))
    )

    assert record.state == ("closed", "no_exchange")
    assert refunded(harness) == [eur("25.00")]
    assert credited(harness) == [eur("100.00")]
    assert harness.ports.warehouse.calls == []
    assert harness.ports.carrier.calls == []
    assert harness.ports.commerce.restocks == []
    assert settled_payloads(record)[0]["documents"] == (
        "refunded_credit_memo 25.00 EUR, credit_memo 100.00 EUR"
    )


def test_refund_credit_and_exchange_in_one_return_become_three_documents() -> None:
    harness = make_harness(shop_order())
    wanted = ask(
        line("A"),
        line("B", outcome=StoreCredit()),
        line("C", outcome=Exchange(variant_id="cap-blue", unit_price=eur("15.00"))),
    )

    quote = harness.service.quote(wanted)

    # Refund 25.00 + the rest of the exchange (20.00 - 15.00 = 5.00) = 30.00;
    # credit 100.00; the exchange order is the new cap, 15.00.
    assert quote.documents == (
        (Document.REFUNDED_CREDIT_MEMO, eur("30.00")),
        (Document.CREDIT_MEMO, eur("100.00")),
        (Document.EXCHANGE_ORDER, eur("15.00")),
    )
    assert (quote.exchange_credit, quote.exchange_total) == (eur("20.00"), eur("15.00"))
    assert quote.balance_due == eur("0.00")

    record = harness.service.request(wanted)
    closed = receive(harness, record.id, "wms-1", got("A"), got("B"), got("C")).record

    assert closed.state == ("closed", "released")
    assert refunded(harness) == [eur("30.00")]
    assert credited(harness) == [eur("100.00")]
    assert harness.ports.commerce.refunds[0].lines == (LineQuantity("A", 1),)
    assert settled_payloads(closed)[0]["documents"] == (
        "refunded_credit_memo 30.00 EUR, credit_memo 100.00 EUR, exchange_order 15.00 EUR"
    )


# -- 5. native exchanges through the service ----------------------------------------------------


def test_an_even_exchange_refunds_nothing_and_charges_nothing() -> None:
    harness = make_harness(shop_order())

    record = request(harness, line("A", outcome=Exchange(variant_id="tee-l")))
    assert record.exchange_status == "on_hold"
    closed = receive(harness, record.id, "wms-1", got("A")).record

    assert closed.state == ("closed", "released")
    assert refunded(harness) == []
    assert credited(harness) == []
    assert harness.ports.payments.calls == []
    assert settled_payloads(closed)[0] == {
        "exchange_credit": "25.00 EUR",
        "exchange_total": "25.00 EUR",
        "documents": "exchange_order 25.00 EUR",
    }


@pytest.mark.parametrize(
    ("difference", "refunds", "credits"),
    [
        (OutcomeKind.REFUND, [eur("5.00")], []),
        (OutcomeKind.STORE_CREDIT, [], [eur("5.00")]),
    ],
)
def test_an_exchange_for_less_pays_the_rest_at_completion(
    difference: OutcomeKind, refunds: list[Money], credits: list[Money]
) -> None:
    harness = make_harness(shop_order(), ReturnPolicy(exchange_difference=difference))

    # 25.00 returned for a 20.00 item: 5.00 back, and only once the return completes.
    record = request(harness, line("A", outcome=Exchange(variant_id="v", unit_price=eur("20.00"))))
    scan(harness, record.id, "c-1", CarrierStatus.PICKED_UP)
    scan(harness, record.id, "c-2", CarrierStatus.DELIVERED)
    assert (refunded(harness), credited(harness)) == ([], [])

    closed = receive(harness, record.id, "wms-1", got("A")).record

    assert closed.state == ("closed", "released")
    assert (refunded(harness), credited(harness)) == (refunds, credits)
    assert harness.ports.payments.calls == []


def upsell() -> RequestLine:
    """The 25.00 T-shirt for a 35.00 item: 10.00 owed by the customer."""
    return line("A", outcome=Exchange(variant_id="jacket", unit_price=eur("35.00")))


def test_an_upsell_is_charged_and_stays_on_hold_until_the_return_completes() -> None:
    harness = make_harness(shop_order())
    harness.ports.payments.fail("charge", times=1)  # the first try fails (retryable)

    record = request(harness, upsell())

    assert record.exchange_status == "awaiting_payment"
    assert record.balance_paid is None
    assert harness.ports.payments.payments == []

    harness.dispatch_due()
    paid = harness.service.get(SHOP, record.id)

    (payment,) = harness.ports.payments.payments
    assert (payment.amount, payment.kind, payment.return_id) == (eur("10.00"), "charge", record.id)
    assert paid.balance_paid == eur("10.00")
    # Paid, but not released (seed 003): the item stays on hold, the tag stays on the order.
    assert paid.state == ("label_sent", "on_hold")
    assert harness.ports.commerce.tags(SHOP, ORDER_ID) == {"hold-order"}
    assert [x.status for x in harness.ports.commerce.exchange_lines(SHOP, ORDER_ID)] == ["on_hold"]

    scan(harness, record.id, "c-1", CarrierStatus.PICKED_UP)
    assert harness.service.get(SHOP, record.id).exchange_status == "on_hold"

    closed = receive(harness, record.id, "wms-1", got("A")).record

    assert closed.state == ("closed", "released")
    assert harness.ports.commerce.tags(SHOP, ORDER_ID) == set()
    assert refunded(harness) == []  # 25.00 + 10.00 paid = 35.00: nothing left over
    assert len(harness.ports.payments.payments) == 1
    assert settled_payloads(closed)[0] == {
        "exchange_credit": "25.00 EUR",
        "exchange_total": "35.00 EUR",
        "documents": "exchange_order 35.00 EUR",
    }


def test_an_upsell_whose_charge_fails_for_good_needs_review_and_cannot_complete() -> None:
    harness = make_harness(shop_order())
    harness.ports.payments.fail("charge", times=None)
    record = request(harness, upsell())

    harness.dispatch_due()  # attempt 2
    harness.dispatch_due()  # attempt 3: given up
    given_up = harness.service.get(SHOP, record.id)

    assert given_up.state == ("needs_review", "awaiting_payment")
    assert given_up.review_reasons[0].startswith("charge_balance failed")

    received = receive(harness, record.id, "wms-1", got("A")).record

    assert received.state == ("needs_review", "awaiting_payment")
    assert received.review_reasons[-1] == "the exchange balance is not paid"
    assert "exchange balance is not paid" in received.review_reasons[-1]
    assert refunded(harness) == []
    assert harness.ports.payments.payments == []
    assert harness.ports.commerce.tags(SHOP, ORDER_ID) == {"hold-order"}  # not released

    # An agent closing it cancels the unpaid exchange: the returned T-shirt is worth 25.00,
    # paid out as for an exchange for nothing; the new item is neither shipped nor held.
    closed = harness.service.close(SHOP, record.id)

    assert closed.state == ("closed", "exchange_cancelled")
    assert refunded(harness) == [eur("25.00")]
    assert harness.ports.payments.payments == []
    assert harness.ports.commerce.tags(SHOP, ORDER_ID) == set()
    assert [x.status for x in harness.ports.commerce.exchange_lines(SHOP, ORDER_ID)] == [
        "cancelled"
    ]


def balance_refunds(harness: Harness) -> list[Money]:
    return [p.amount for p in harness.ports.payments.payments if p.kind == "refund"]


def test_regression_a_paid_upsell_balance_is_returned_when_qc_cancels_the_exchange() -> None:
    harness = make_harness(shop_order())
    record = request(harness, upsell())
    assert harness.service.get(SHOP, record.id).balance_paid == eur("10.00")

    done = receive(harness, record.id, "wms-1", got("A", qc=QcResult.FAIL)).record

    assert done.state == ("closed", "exchange_cancelled")
    # The customer paid 10.00 for an item they will not get: it goes back the way it came.
    assert refunded(harness) == []
    assert balance_refunds(harness) == [eur("10.00")]


def test_regression_a_paid_upsell_balance_is_returned_when_the_return_is_cancelled() -> None:
    harness = make_harness(shop_order())
    record = request(harness, upsell())

    cancelled = harness.service.cancel(SHOP, record.id)

    assert cancelled.state == ("cancelled", "exchange_cancelled")
    assert refunded(harness) == []
    assert balance_refunds(harness) == [eur("10.00")]


def test_regression_a_partly_cancelled_upsell_refunds_its_balance_within_the_order() -> None:
    order = make_order(item("A", 2, eur("25.00")), item("B", 1, eur("10.00")))  # paid 60.00
    harness = make_harness(order)
    first = request(harness, line("B"))
    receive(harness, first.id, "wms-1", got("B"))
    assert refunded(harness) == [eur("10.00")]  # 50.00 left refundable on the order
    # Both T-shirts (50.00) for one coat at 80.00: 30.00 charged through Payments.
    coat = Exchange(variant_id="coat", unit_price=eur("80.00"))
    second = request(harness, line("A", 2, outcome=coat))
    assert harness.service.get(SHOP, second.id).balance_paid == eur("30.00")

    done = receive(harness, second.id, "wms-2", got("A"), got("A", qc=QcResult.FAIL)).record

    # QC cancels the coat: 25.00 for the accepted T-shirt + the 30.00 paid come back, but
    # the service asks the platform to refund all 55.00 on an order with 50.00 left.
    failed = [c for c in harness.ports.commerce.calls_to("refund") if c.outcome == "failed"]
    assert failed == []
    assert done.state == ("closed", "exchange_cancelled")
    assert refunded(harness) == [eur("10.00"), eur("25.00")]
    assert balance_refunds(harness) == [eur("30.00")]


# -- 6. quote -----------------------------------------------------------------------------------


def test_quote_equals_the_settlement_once_every_unit_is_accepted_and_changes_nothing() -> None:
    policy = ReturnPolicy(
        fees=FeePolicy(restocking=Percent(10), return_shipping=eur("4.00")),
    )
    harness = make_harness(shop_order(), policy)
    wanted = ask(
        line("A"),
        line("B", outcome=StoreCredit(bonus=eur("5.00"))),
        line("C", 2, outcome=Exchange(variant_id="cap-red", quantity=2, unit_price=eur("15.00"))),
    )

    quote = harness.service.quote(wanted)

    # A: 25.00 - 2.50 (10 %) = 22.50 refund; B: 100.00 - 10.00 = 90.00 credit + 5.00 bonus;
    # C (exchange, fee waived): 40.00 credit for 2 x 15.00 = 30.00 -> 10.00 more refund.
    # Shipping 4.00 over A and B by their worth (25.00 and 100.00): 0.80 from A's refund,
    # 3.20 from B's credit: 22.50 - 0.80 + 10.00 = 31.70 and 90.00 - 3.20 = 86.80.
    assert (quote.refund, quote.store_credit, quote.bonus) == (
        eur("31.70"),
        eur("86.80"),
        eur("5.00"),
    )
    assert (quote.restocking_fee, quote.return_shipping_fee) == (eur("12.50"), eur("4.00"))
    assert (quote.exchange_credit, quote.exchange_total) == (eur("40.00"), eur("30.00"))
    assert quote.documents == (
        (Document.REFUNDED_CREDIT_MEMO, eur("31.70")),
        (Document.CREDIT_MEMO, eur("91.80")),
        (Document.EXCHANGE_ORDER, eur("30.00")),
    )
    # Nothing stored, nothing changed at any port, no id taken.
    assert harness.service.list(SHOP) == []
    assert [call.operation for call in harness.ports.commerce.calls] == ["get_order"]
    for fake in harness.ports.all():
        assert [call for call in fake.calls if call.idempotency_key is not None] == []

    record = harness.service.request(wanted)
    assert record.id == "R0001"
    closed = receive(harness, record.id, "wms-1", got("A"), got("B"), got("C", 2)).record

    assert closed.state == ("closed", "released")
    (payload,) = settled_payloads(closed)
    documents = payload.pop("documents")
    assert payload == quote.as_dict()
    assert documents == ", ".join(f"{kind.value} {amount}" for kind, amount in quote.documents)
    assert refunded(harness) == [quote.refund]
    assert credited(harness) == [quote.store_credit + quote.bonus]
    assert closed.restocking_fees == quote.restocking_fee
    assert closed.return_shipping_fee == quote.return_shipping_fee


def test_quote_of_an_upsell_shows_the_balance_due() -> None:
    harness = make_harness(shop_order())

    quote = harness.service.quote(ask(upsell()))

    assert quote.balance_due == eur("10.00")  # 35.00 - 25.00
    assert quote.refund == eur("0.00")
    assert harness.ports.payments.calls == []
    assert harness.service.list(SHOP) == []


# -- 7. refund triggers, and restocking apart from refunding ------------------------------------


def trigger_harness(trigger: RefundTrigger) -> Harness:
    return make_harness(shop_order(), ReturnPolicy(refund_trigger=trigger))


def test_on_handed_in_refunds_at_the_first_scan_and_a_later_qc_fail_needs_review() -> None:
    harness = trigger_harness(RefundTrigger.ON_HANDED_IN)
    record = request(harness, line("C", 2))

    picked = scan(harness, record.id, "c-1", CarrierStatus.PICKED_UP).record

    assert picked.state == ("in_transit", "no_exchange")
    assert refunded(harness) == [eur("40.00")]  # both caps, before any receipt
    assert harness.ports.commerce.restocks == []  # restock waits for the warehouse
    assert picked.lines[0].settled == 2
    assert picked.lines[0].received == 0

    scan(harness, record.id, "c-2", CarrierStatus.DELIVERED)
    assert refunded(harness) == [eur("40.00")]  # not twice

    checked = receive(harness, record.id, "wms-1", got("C"), got("C", qc=QcResult.FAIL)).record

    assert checked.state == ("needs_review", "no_exchange")
    assert checked.review_reasons == ("paid before QC rejected units: C (1)",)
    assert refunded(harness) == [eur("40.00")]
    assert [r.lines for r in harness.ports.commerce.restocks] == [(LineQuantity("C", 1),)]


def test_on_delivered_refunds_when_the_parcel_is_delivered() -> None:
    harness = trigger_harness(RefundTrigger.ON_DELIVERED)
    record = request(harness, line("A"))

    scan(harness, record.id, "c-1", CarrierStatus.PICKED_UP)
    assert refunded(harness) == []

    delivered = scan(harness, record.id, "c-2", CarrierStatus.DELIVERED).record

    assert delivered.state == ("delivered", "no_exchange")
    assert refunded(harness) == [eur("25.00")]

    closed = receive(harness, record.id, "wms-1", got("A")).record
    assert closed.state == ("closed", "no_exchange")
    assert refunded(harness) == [eur("25.00")]


def test_on_received_refunds_what_the_first_receipt_accepted() -> None:
    harness = trigger_harness(RefundTrigger.ON_RECEIVED)
    record = request(harness, line("C", 2), line("A"))
    scan(harness, record.id, "c-1", CarrierStatus.PICKED_UP)
    scan(harness, record.id, "c-2", CarrierStatus.DELIVERED)
    assert refunded(harness) == []

    receive(harness, record.id, "wms-1", got("C"))

    assert refunded(harness) == [eur("20.00")]
    assert harness.ports.commerce.refunds[0].lines == (LineQuantity("C", 1),)


def test_regression_on_received_refunds_once_per_receipt() -> None:
    harness = trigger_harness(RefundTrigger.ON_RECEIVED)
    record = request(harness, line("C", 2), line("A"))

    first = receive(harness, record.id, "wms-1", got("C")).record
    assert first.status == "item_received"  # 2 of 3 units still to come

    second = receive(harness, record.id, "wms-2", got("C"), got("A"))

    assert second.status == "applied"
    assert refunded(harness) == [eur("20.00"), eur("45.00")]  # 20.00; then 20.00 + 25.00
    assert second.record.state == ("closed", "no_exchange")


def test_on_close_is_the_default_and_refunds_at_completion() -> None:
    harness = make_harness(shop_order())
    assert harness.service.policy.refund_trigger is RefundTrigger.ON_CLOSE
    record = request(harness, line("C", 2))
    scan(harness, record.id, "c-1", CarrierStatus.PICKED_UP)
    scan(harness, record.id, "c-2", CarrierStatus.DELIVERED)

    partly = receive(harness, record.id, "wms-1", got("C")).record
    assert partly.state == ("item_received", "no_exchange")
    assert refunded(harness) == []

    closed = receive(harness, record.id, "wms-2", got("C")).record
    assert closed.state == ("closed", "no_exchange")
    assert refunded(harness) == [eur("40.00")]


def test_only_accepted_restocked_units_are_restocked_and_missing_ones_are_not_refunded() -> None:
    order = make_order(item("S", 5, eur("10.00")))
    harness = make_harness(order)
    record = request(harness, line("S", 5))

    closed = receive(
        harness,
        record.id,
        "wms-1",
        got("S", disposition=Disposition.RESTOCKED),
        got("S", disposition=Disposition.NOT_RESTOCKED),
        got("S", disposition=Disposition.PROCESSING_REQUIRED),
        got("S", disposition=Disposition.MISSING),
        got("S", qc=QcResult.FAIL, disposition=Disposition.RESTOCKED),
    ).record

    (stored,) = closed.lines
    assert (stored.received, stored.accepted, stored.rejected) == (5, 3, 2)
    assert stored.restocked == 1
    assert [r.lines for r in harness.ports.commerce.restocks] == [(LineQuantity("S", 1),)]
    # 3 accepted units of 10.00 are refunded; the missing and the failed unit are not.
    assert refunded(harness) == [eur("30.00")]
    assert harness.ports.commerce.refunds[0].lines == (LineQuantity("S", 3),)


def give_up_refunds_then_close(harness: Harness, record: ReturnRecord) -> ReturnRecord:
    """Receive the return with refunds failing for good, then heal and let an agent close."""
    harness.ports.commerce.fail("refund", times=None)
    receive(
        harness, record.id, "wms-1", *(got(stored.id, stored.quantity) for stored in record.lines)
    )
    harness.dispatch_due()  # attempt 2
    harness.dispatch_due()  # attempt 3: given up, sent to review
    flagged = harness.service.get(SHOP, record.id)
    assert flagged.status == "needs_review"
    assert flagged.review_reasons[-1].startswith("issue_refund failed")
    harness.ports.commerce.heal()
    return harness.service.close(SHOP, record.id)


def test_regression_fees_of_a_refund_given_up_are_charged_once_when_it_is_paid() -> None:
    fees = FeePolicy(restocking=Percent(10), return_shipping=eur("5.00"))
    harness = make_harness(shop_order(), ReturnPolicy(fees=fees))
    record = request(harness, line("B"))

    closed = give_up_refunds_then_close(harness, record)

    # 100.00 - 10.00 restocking - 5.00 shipping = 85.00, the same as without the failure.
    assert closed.state == ("closed", "no_exchange")
    assert refunded(harness) == [eur("85.00")]
    assert (closed.restocking_fees, closed.return_shipping_fee) == (eur("10.00"), eur("5.00"))


def test_regression_the_rest_of_an_exchange_for_less_is_refunded_after_a_given_up_refund() -> None:
    harness = make_harness(shop_order())
    record = request(harness, line("A", outcome=Exchange(variant_id="v", unit_price=eur("20.00"))))

    closed = give_up_refunds_then_close(harness, record)

    assert closed.state == ("closed", "released")
    assert refunded(harness) == [eur("5.00")]  # 25.00 returned - 20.00 new item


# -- 8. exchange eligibility --------------------------------------------------------------------


def test_refund_and_store_credit_are_accepted_where_an_exchange_is_not_offered() -> None:
    order = make_order(
        item("A", 1, eur("25.00")), item("B", 1, eur("100.00")), created_by_app="pos-app-x"
    )
    harness = make_harness(order)

    with pytest.raises(ExchangeNotOffered):
        request(harness, line("A", outcome=Exchange(variant_id="tee-l")))
    assert harness.service.list(SHOP) == []

    record = request(harness, line("A"), line("B", outcome=StoreCredit()))
    closed = receive(harness, record.id, "wms-1", got("A"), got("B")).record

    assert closed.state == ("closed", "no_exchange")
    assert (refunded(harness), credited(harness)) == ([eur("25.00")], [eur("100.00")])


# -- 9. bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Percent(150),
        lambda: Percent(-1),
        lambda: Fixed(Money("-1.00", "EUR")),
        lambda: Fixed("5.00"),
        lambda: FeePolicy(restocking="15%"),
        lambda: FeePolicy(return_shipping=Money("-5.00", "EUR")),
    ],
    ids=["percent-150", "percent-negative", "fixed-negative", "fixed-str", "policy", "shipping"],
)
def test_a_fee_that_cannot_be_charged_is_refused(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidFee):
        make()


def test_a_float_percentage_is_refused_as_an_amount() -> None:
    with pytest.raises(InvalidAmount):
        Percent(0.5)
    assert Percent("0.5").of(eur("100.00")) == eur("0.50")  # a string or Decimal is fine


def test_a_fixed_fee_in_another_currency_is_refused_when_charged() -> None:
    fees = FeePolicy(restocking=Fixed(Money("5.00", "USD")))
    with pytest.raises(CurrencyMismatch):
        settle("EUR", whole(return_line("1", eur("25.00"))), fees=fees)


def test_an_exchange_priced_in_another_currency_is_refused_and_nothing_is_stored() -> None:
    harness = make_harness(shop_order())
    request(harness, line("B"))  # an open return, to see that it is left alone
    before = harness.service.list(SHOP)
    calls = [len(fake.calls) for fake in harness.ports.all()]
    priced = Exchange(variant_id="tee-l", unit_price=Money("20.00", "USD"))

    with pytest.raises(CurrencyMismatch) as raised:
        request(harness, line("A", outcome=priced))

    assert raised.value.field == "lines[0].outcome.unit_price.currency"
    with pytest.raises(CurrencyMismatch):
        harness.service.quote(ask(line("A", outcome=priced)))
    assert harness.service.list(SHOP) == before
    # Only the two reads of the order: nothing was asked of any port.
    assert [len(fake.calls) for fake in harness.ports.all()] == [calls[0] + 2, *calls[1:]]


def test_a_bonus_in_another_currency_is_refused_and_nothing_is_stored() -> None:
    harness = make_harness(shop_order())
    with pytest.raises(CurrencyMismatch) as raised:
        request(harness, line("A", outcome=StoreCredit(bonus=Money("5.00", "USD"))))
    assert raised.value.field == "lines[0].outcome.bonus.currency"
    assert harness.service.list(SHOP) == []


def test_a_negative_bonus_is_refused_by_the_request_that_carries_it() -> None:
    with pytest.raises(InvalidAmount) as raised:
        ask(line("A"), line("B", outcome=StoreCredit(bonus=Money("-1.00", "EUR"))))
    assert (raised.value.field, raised.value.value) == (
        "lines[1].outcome.bonus",
        Money("-1.00", "EUR"),
    )


def test_an_order_discount_above_the_net_total_is_refused() -> None:
    with pytest.raises(InvalidPayload) as raised:
        make_order(item("A", 2, eur("10.00")), order_discount=eur("20.01"))
    assert raised.value.field == "order_discount"
    with pytest.raises(InvalidAmount) as negative:
        make_order(item("A", 2, eur("10.00")), order_discount=eur("-0.01"))
    assert (negative.value.field, negative.value.reason) == (
        "order_discount",
        "must not be negative",
    )
    # The whole net total is fine: everything free.
    free = make_order(item("A", 2, eur("10.00")), order_discount=eur("20.00"))
    assert unit_amounts(free) == {"A": (eur("0.00"), eur("0.00"))}


# -- properties ---------------------------------------------------------------------------------

CURRENCIES = ("EUR", "JPY", "KWD")


@st.composite
def orders(draw: st.DrawFn) -> OrderSnapshot:
    """1-5 lines of 1-5 units, prices in minor units, line discounts up to the line's price,
    optional tax and an optional order discount up to the total net."""
    currency = draw(st.sampled_from(CURRENCIES))

    def minor(units: int) -> Money:
        return Money.from_minor_units(units, currency)

    lines: list[OrderLine] = []
    for index in range(draw(st.integers(1, 5))):
        quantity = draw(st.integers(1, 5))
        price = draw(st.integers(0, 50_000))
        discount = draw(st.none() | st.integers(0, quantity * price))
        tax = draw(st.none() | st.integers(0, 5_000))
        lines.append(
            item(
                f"L{index + 1}",
                quantity,
                minor(price),
                discount=None if discount is None else minor(discount),
                tax=None if tax is None else minor(tax),
            )
        )
    net = sum(line.net_total.minor_units for line in lines)
    order_discount = draw(st.none() | st.integers(0, net))
    return make_order(
        *lines,
        currency=currency,
        order_discount=None if order_discount is None else minor(order_discount),
    )


def fee_policies(currency: str) -> st.SearchStrategy[FeePolicy]:
    def fixed(limit: int) -> st.SearchStrategy[Fixed]:
        return st.integers(0, limit).map(lambda n: Fixed(Money.from_minor_units(n, currency)))

    restocking = st.none() | st.integers(0, 100).map(Percent) | fixed(20_000)
    return st.builds(
        FeePolicy,
        restocking=restocking,
        return_shipping=st.none() | fixed(3_000),
        waive_for_exchanges=st.booleans(),
        exchange_shipping=st.none() | fixed(2_000),
        fees_only_from_payout=st.booleans(),
    )


def outcomes(currency: str, *, priced: bool = True) -> st.SearchStrategy[Outcome]:
    """Any outcome; exchanges priced (for less or upsell) only when ``priced``."""

    def money(limit: int) -> st.SearchStrategy[Money]:
        return st.integers(0, limit).map(lambda n: Money.from_minor_units(n, currency))

    return st.one_of(
        st.just(Refund()),
        st.builds(StoreCredit, bonus=st.none() | money(1_000)),
        st.builds(
            Exchange,
            variant_id=st.just("v-new"),
            quantity=st.integers(1, 3),
            unit_price=st.none() | money(60_000) if priced else st.none(),
        ),
        st.sampled_from([Keep(), Keep(OutcomeKind.STORE_CREDIT)]),
    )


REASONS = st.sampled_from([ReturnReason.UNWANTED, ReturnReason.DEFECTIVE, ReturnReason.COLOR])


def returnable(harness: Harness, order: OrderSnapshot) -> dict[str, int]:
    """Units of each order line no return holds yet."""
    left = {order_line.id: order_line.quantity for order_line in order.lines}
    for record in harness.service.list(SHOP):
        for stored in record.lines:
            left[stored.order_line_id] -= stored.quantity
    return left


def new_items_worth(record: ReturnRecord) -> Money:
    """What the new items the customer gets cost: a priced one its price, an even one the
    worth of the units it replaces."""
    worth = Money.zero(record.currency)
    for new in record.exchange_lines:
        if new.status == "cancelled":
            continue
        if new.unit_price is not None:
            worth = worth + new.unit_price * new.quantity
        else:
            (returned,) = [stored for stored in record.lines if stored.id == new.return_line_id]
            worth = worth + Money.sum(returned.unit_amounts, record.currency)
    return worth


@settings(max_examples=60, deadline=None)
@given(order=orders(), data=st.data())
def test_property_every_cent_of_a_return_is_paid_out_charged_or_kept_as_a_fee(
    order: OrderSnapshot, data: st.DataObject
) -> None:
    """Even, for-less and upsell exchanges, every fee and outbound shipping, partial QC:
    what the accepted units are worth plus what the customer paid through Payments equals
    what was paid out (less bonuses), the new items and their shipping, and the fees kept.
    No payment is negative or refused, and no refund of a balance exceeds what was paid."""
    fees = data.draw(fee_policies(order.currency), label="fees")
    difference = data.draw(st.sampled_from([OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT]))
    trigger = data.draw(st.sampled_from(list(RefundTrigger)), label="refund trigger")
    policy = ReturnPolicy(fees=fees, exchange_difference=difference, refund_trigger=trigger)
    harness = make_harness(order, policy)
    currency = order.currency
    for _ in range(data.draw(st.integers(1, 3), label="returns")):
        left = returnable(harness, order)
        wanted = [
            line(line_id, quantity, data.draw(outcomes(currency)), data.draw(REASONS))
            for line_id, units in left.items()
            if (quantity := data.draw(st.integers(0, units), label=f"{line_id} units"))
        ]
        if wanted:
            request(harness, *wanted)
    records = list(harness.service.list(SHOP))
    for record in data.draw(st.permutations(records), label="receipt order"):
        if any(stored.requires_receipt for stored in record.lines):
            scan(harness, record.id, f"c1-{record.id}", CarrierStatus.PICKED_UP)
            scan(harness, record.id, f"c2-{record.id}", CarrierStatus.DELIVERED)
        received = [
            got(
                stored.id,
                stored.quantity,
                qc=data.draw(st.sampled_from([QcResult.PASS, QcResult.PASS, QcResult.FAIL])),
            )
            for stored in record.lines
            if stored.requires_receipt
        ]
        if received:
            result = receive(harness, record.id, f"wms-{record.id}", *received)
            assert result.status == "applied"
        if harness.service.get(SHOP, record.id).status == "needs_review":
            # paid early for units QC then rejected: a person closes it
            harness.service.close(SHOP, record.id, unreceived="nothing", exchange="cancel")

    records = list(harness.service.list(SHOP))
    lines = [stored for record in records for stored in record.lines]
    assert all(record.status == "closed" for record in records)
    zero = Money.zero(currency)
    assert [c for fake in harness.ports.all() for c in fake.calls if c.outcome == "failed"] == []
    payments = harness.ports.payments.payments
    assert all(payment.amount > zero for payment in payments)
    charged = Money.sum((p.amount for p in payments if p.kind == "charge"), currency)
    given_back = Money.sum((p.amount for p in payments if p.kind == "refund"), currency)
    assert zero <= given_back <= charged
    # What was settled: the units paid for (the accepted ones, and units paid early that
    # QC then rejected, which a person closed as they were).
    due = Money.sum(
        (amount for stored in lines for amount in stored.unit_amounts[: stored.settled]),
        currency,
    )
    bonus = Money.sum(
        (
            stored.outcome.bonus
            for stored in lines
            if isinstance(stored.outcome, StoreCredit) and stored.outcome.bonus and stored.settled
        ),
        currency,
    )
    paid_out = Money.sum([*refunded(harness), *credited(harness)], currency) - bonus
    kept = Money.sum(
        (
            fee
            for record in records
            for fee in (
                record.restocking_fees,
                record.return_shipping_fee,
                record.exchange_shipping_fee,
            )
            if fee is not None
        ),
        currency,
    )
    new_items = Money.sum((new_items_worth(record) for record in records), currency)
    assert zero <= paid_out
    assert paid_out + kept + new_items == due + charged - given_back


@st.composite
def settlements(draw: st.DrawFn) -> tuple[Settlement, Money, Money]:
    """A settlement of 1-4 lines of any outcome, some exchanged for priced or even items,
    any fees, some units already prepaid: with the units' worth and what was prepaid."""
    currency = draw(st.sampled_from(CURRENCIES))
    fees = draw(fee_policies(currency))
    parts: list[tuple[ReturnLine, int, int]] = []
    new: list[ExchangeLine] = []
    for index in range(draw(st.integers(1, 4))):
        amounts = draw(st.lists(st.integers(0, 30_000), min_size=1, max_size=3))
        outcome = draw(outcomes(currency))
        stored = return_line(
            str(index),
            *(Money.from_minor_units(amount, currency) for amount in amounts),
            outcome=outcome,
            reason=draw(REASONS),
        )
        start = draw(st.integers(0, len(amounts) - 1))
        parts.append((stored, len(amounts) - start, start))
        if isinstance(outcome, Exchange):
            new.append(
                ExchangeLine(
                    id=f"{index}-x",
                    return_line_id=stored.id,
                    variant_id="v-new",
                    quantity=outcome.quantity,
                    unit_price=outcome.unit_price,
                )
            )
    prepaid = Money.from_minor_units(draw(st.integers(0, 20_000)), currency)
    result = settle(
        currency,
        parts,
        fees=fees,
        exchange_lines=new,
        charge_shipping=draw(st.booleans()),
        charge_exchange_shipping=draw(st.booleans()),
        difference_to=draw(st.sampled_from([OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT])),
        prepaid=prepaid,
    )
    worth = Money.sum(
        (stored.amount_for(units, start=start) for stored, units, start in parts), currency
    )
    return result, worth, prepaid


@settings(max_examples=300, deadline=None)
@given(drawn=settlements())
def test_property_a_settlement_adds_up_to_the_minor_unit(
    drawn: tuple[Settlement, Money, Money],
) -> None:
    result, worth, prepaid = drawn
    zero = Money.zero(result.currency)
    assert not any(amount.is_negative for amount in all_money(result))
    used = prepaid - result.balance_refund
    assert zero <= used <= prepaid
    assert worth + used + result.balance_due == (
        result.refund
        + result.store_credit
        + result.exchange_total
        + result.exchange_shipping
        + result.fees
    )
    assert result.fees_owed <= result.balance_due + used
    assert not (result.fees_owed and result.fees_waived)
    assert result.shipping_from_refund + result.shipping_owed <= result.return_shipping_fee
    # Besides the fees no payout bears (each is borne by its own units or the exchange's
    # difference, never by another unit's payout), something is owed only when nothing is
    # paid out, and prepaid money comes back only when nothing is owed.
    if result.balance_due + used > result.fees_owed:
        assert result.refund == result.store_credit == zero
    if result.balance_due:
        assert result.balance_refund == zero
    assert result.restocking_owed <= result.fees_owed
    documents = dict(result.documents)
    assert documents.get(Document.INVOICE, zero) == result.fees_owed
    assert documents.get(Document.REFUNDED_CREDIT_MEMO, zero) == result.refund
    assert documents.get(Document.CREDIT_MEMO, zero) == result.store_credit + result.bonus


@settings(max_examples=60, deadline=None)
@given(order=orders(), data=st.data())
def test_property_returning_everything_in_any_number_of_returns_refunds_the_paid_total(
    order: OrderSnapshot, data: st.DataObject
) -> None:
    harness = make_harness(order)
    returns = data.draw(st.integers(1, 4), label="returns")
    parts: list[dict[str, int]] = [{} for _ in range(returns)]
    for order_line in order.lines:
        for _ in range(order_line.quantity):
            part = parts[data.draw(st.integers(0, returns - 1), label=order_line.id)]
            part[order_line.id] = part.get(order_line.id, 0) + 1
    opened = [
        request(harness, *(line(line_id, units) for line_id, units in part.items()))
        for part in parts
        if part
    ]
    for record in data.draw(st.permutations(opened), label="receipt order"):
        received = [got(stored.id, stored.quantity) for stored in record.lines]
        assert receive(harness, record.id, f"wms-{record.id}", *received).status == "applied"

    assert all(record.status == "closed" for record in harness.service.list(SHOP))
    assert Money.sum(refunded(harness), order.currency) == order.paid_total
    per_line: dict[str, int] = {}
    for refund in harness.ports.commerce.refunds:
        for refund_line in refund.lines:
            per_line[refund_line.order_line_id] = (
                per_line.get(refund_line.order_line_id, 0) + refund_line.quantity
            )
    for order_line in order.lines:
        assert per_line.get(order_line.id, 0) <= order_line.quantity


def all_money(settlement: Settlement) -> list[Money]:
    amounts = [
        settlement.refund,
        settlement.store_credit,
        settlement.bonus,
        settlement.restocking_fee,
        settlement.return_shipping_fee,
        settlement.exchange_credit,
        settlement.exchange_total,
        settlement.balance_due,
        settlement.fees,
        settlement.exchange_shipping,
        settlement.fees_owed,
        settlement.fees_waived,
        settlement.shipping_owed,
        settlement.restocking_owed,
        settlement.shipping_from_refund,
        settlement.balance_refund,
    ]
    for part in settlement.lines:
        amounts += [part.value, part.restocking_fee, part.amount, part.bonus]
    amounts += [amount for _, amount in settlement.documents]
    return amounts


@settings(max_examples=70, deadline=None)
@given(order=orders(), data=st.data())
def test_property_every_amount_of_a_settlement_is_in_the_order_currency(
    order: OrderSnapshot, data: st.DataObject
) -> None:
    fees = data.draw(fee_policies(order.currency), label="fees")
    harness = make_harness(order, ReturnPolicy(fees=fees))
    wanted = [
        line(
            order_line.id,
            data.draw(st.integers(1, order_line.quantity)),
            data.draw(outcomes(order.currency), label="outcome"),
            data.draw(REASONS),
        )
        for order_line in order.lines
        if data.draw(st.booleans(), label=f"return {order_line.id}")
    ] or [line(order.lines[0].id)]

    quote = harness.service.quote(ask(*wanted))

    assert quote.currency == order.currency
    assert {amount.currency for amount in all_money(quote)} == {order.currency}
    assert not any(amount.is_negative for amount in all_money(quote))
    assert harness.service.list(SHOP) == []

    # Partly settled too: every line from its second unit on, if it has one.
    record = request(harness, *wanted)
    parts = [(stored, stored.quantity - 1, 1) for stored in record.lines if stored.quantity > 1]
    partial = settle(order.currency, parts, fees=fees, exchange_lines=record.exchange_lines)
    assert {amount.currency for amount in all_money(partial)} == {order.currency}


KINDS: st.SearchStrategy[Outcome] = st.sampled_from(
    [Refund(), StoreCredit(), Keep(), Exchange(variant_id="v-new")]
)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["receive", "receive", "close", "reopen", "finish", "pickup", "deliver", "reset"]
        ),
        st.integers(0, 4),  # which line to receive
        st.integers(1, 3),  # how many units
        st.booleans(),  # QC pass
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=50, deadline=None)
@given(order=orders(), data=st.data())
def test_property_no_unit_is_refunded_more_often_than_it_was_bought(
    order: OrderSnapshot, data: st.DataObject
) -> None:
    policy = ReturnPolicy(
        completion=data.draw(st.sampled_from(list(Completion)), label="completion"),
        refund_trigger=data.draw(st.sampled_from(list(RefundTrigger)), label="trigger"),
    )
    harness = make_harness(order, policy)
    for _ in range(data.draw(st.integers(1, 2), label="returns")):
        left = returnable(harness, order)
        wanted = [
            line(line_id, data.draw(st.integers(1, units), label=line_id), data.draw(KINDS))
            for line_id, units in left.items()
            if units and data.draw(st.booleans(), label=f"return {line_id}")
        ]
        if wanted:
            request(harness, *wanted)
    if not harness.service.list(SHOP):
        request(harness, line(order.lines[0].id))
    for number, step in enumerate(data.draw(STEPS, label="steps")):
        record = data.draw(st.sampled_from(list(harness.service.list(SHOP))), label="return")
        event_id = f"e-{number}"
        shipped = [stored for stored in record.lines if stored.requires_receipt]
        kind, index, units, passed = step
        try:
            if kind == "receive":
                stored = shipped[index % len(shipped)] if shipped else record.lines[0]
                quantity = min(units, stored.outstanding) if shipped else 0
                if quantity:
                    qc = QcResult.PASS if passed else QcResult.FAIL
                    receive(harness, record.id, event_id, got(stored.id, quantity, qc=qc))
            elif kind == "close":
                harness.service.close(SHOP, record.id, unreceived="nothing", exchange="cancel")
            elif kind == "reopen":
                harness.service.reopen(SHOP, record.id)
            elif kind == "finish":
                finish(harness, record.id, event_id)
            elif kind == "pickup":
                scan(harness, record.id, event_id, CarrierStatus.PICKED_UP)
            elif kind == "deliver":
                scan(harness, record.id, event_id, CarrierStatus.DELIVERED)
            else:
                with contextlib.suppress(InvalidPayload):  # no accepted unit to carry over
                    harness.service.reset(SHOP, record.id)
        except InvalidTransition:
            pass

    refunds = harness.ports.commerce.calls_to("refund")
    assert [call.outcome for call in refunds if call.outcome == "failed"] == []
    per_line: dict[str, int] = {}
    for refund in harness.ports.commerce.refunds:
        for refund_line in refund.lines:
            per_line[refund_line.order_line_id] = (
                per_line.get(refund_line.order_line_id, 0) + refund_line.quantity
            )
    for order_line in order.lines:
        assert per_line.get(order_line.id, 0) <= order_line.quantity
    assert Money.sum(refunded(harness), order.currency) <= order.paid_total
    for record in harness.service.list(SHOP):
        for stored in record.lines:
            assert 0 <= stored.settled <= stored.quantity
            assert stored.accepted + stored.rejected == stored.received <= stored.quantity


def test_the_exchanged_lines_restocking_is_carried_by_the_units_that_pay_out() -> None:
    # A cap (10.00) refunded, a jacket (20.00) exchanged evenly; 10 % restocking, 3.00
    # return shipping, exchanges bearing fees, fees only from the payout. Settled together
    # or the cap alone first,
    # the cap's payout takes its 1.00, the jacket's 2.00 and the 3.00 fee.
    fees = FeePolicy(
        return_shipping=eur("3.00"),
        restocking=Percent(10),
        waive_for_exchanges=False,
        fees_only_from_payout=True,
    )
    cap = return_line("cap", eur("10.00"))
    jacket = return_line("jacket", eur("20.00"), outcome=Exchange(variant_id="jacket-l"))
    new = [ExchangeLine(id="x", return_line_id="jacket", variant_id="jacket-l", quantity=1)]

    def settled(parts: list[tuple[ReturnLine, int, int]]) -> Settlement:
        return settle("EUR", parts, fees=fees, exchange_lines=new, shipping_lines=[cap, jacket])

    together = settled(whole(cap, jacket))
    apart = settled(whole(cap)), settled(whole(jacket))
    assert together.refund == apart[0].refund == eur("4.00")
    assert together.restocking_fee == apart[0].restocking_fee == eur("3.00")
    assert apart[1].restocking_fee == apart[1].refund == apart[1].balance_due == eur("0.00")
    assert [part.restocking_fee for part in together.lines] == [eur("3.00"), eur("0.00")]
