"""One fee rule for every outcome, and the outbound shipping of an exchange's new items.

Values from other projects' own tests, run through returnflow's public API:

* Medusa's exchange: a return shipping fee of 7.50 not waived for exchanges, a 20.00 unit
  exchanged for a 50.00 item: the customer owes 30.00 + 7.50 = 37.50;
* Medusa's exchange with outbound shipping 5.00: part of what the customer owes;
* an exchange for less pays the fee from its small refund and owes the rest of it;
* an even exchange with a 2.00 restocking fee charges 2.00 (it is never "kept" unpaid);
* a restocking fee on an upsell is owed with the difference.

A fee is taken from the payout first (refund, then store credit) and what the payout does
not cover is charged through ``Payments`` (with an exchange's balance, at approval), unless
``FeePolicy.fees_only_from_payout`` waives it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from returnflow import (
    Exchange,
    Money,
    OrderLine,
    OrderSnapshot,
    QcResult,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRecord,
    ReturnRequest,
    StoreCredit,
    WarehouseReceipt,
)
from returnflow.domain.settlement import Document, FeePolicy, Fixed, Percent
from returnflow.errors import InvalidFee
from returnflow.testing import Harness

SHOP = "shop-f"
ORDER_ID = "3001"
ORDERED = datetime(2026, 1, 10, 9, 0, tzinfo=timezone.utc)


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def order() -> OrderSnapshot:
    """A: a 20.00 shirt; B: two 10.00 caps."""
    return OrderSnapshot(
        id=ORDER_ID,
        shop=SHOP,
        created_at=ORDERED,
        fulfilled_at=ORDERED,
        currency="EUR",
        lines=[
            OrderLine(id="A", sku="SHIRT", variant_id="shirt", quantity=1, unit_price=eur("20.00")),
            OrderLine(id="B", sku="CAP", variant_id="cap", quantity=2, unit_price=eur("10.00")),
        ],
    )


def harness(fees: FeePolicy) -> Harness:
    made = Harness(policy=ReturnPolicy(fees=fees))
    made.ports.commerce.add_order(order())
    return made


def exchange(price: str | None, reason: ReturnReason = ReturnReason.SIZE_TOO_SMALL) -> RequestLine:
    outcome = Exchange(variant_id="new", unit_price=None if price is None else eur(price))
    return RequestLine(order_line_id="A", quantity=1, outcome=outcome, reason=reason)


def ask(*lines: RequestLine) -> ReturnRequest:
    return ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=lines)


def receive(made: Harness, record: ReturnRecord, qc: QcResult = QcResult.PASS) -> ReturnRecord:
    lines = [ReceivedLine(line_id=line.id, quantity=line.quantity, qc=qc) for line in record.lines]
    event = WarehouseReceipt(shop=SHOP, return_id=record.id, event_id=f"w-{record.id}", lines=lines)
    return made.service.handle(event).record


def payments(made: Harness) -> list[tuple[str, Money]]:
    return [(payment.kind, payment.amount) for payment in made.ports.payments.payments]


def refunds(made: Harness) -> list[Money]:
    return [refund.amount for refund in made.ports.commerce.refunds]


SHIPPING_NOT_WAIVED = FeePolicy(return_shipping=eur("7.50"), waive_for_exchanges=False)


def test_medusa_an_upsell_owes_the_difference_and_the_return_shipping_fee() -> None:
    made = harness(SHIPPING_NOT_WAIVED)

    quote = made.service.quote(ask(exchange("50.00")))
    assert (quote.balance_due, quote.return_shipping_fee) == (eur("37.50"), eur("7.50"))
    assert (quote.fees_owed, quote.refund) == (eur("7.50"), eur("0.00"))
    assert quote.documents == (
        (Document.EXCHANGE_ORDER, eur("50.00")),
        (Document.INVOICE, eur("7.50")),
    )

    record = made.service.request(ask(exchange("50.00")))
    assert payments(made) == [("charge", eur("37.50"))]  # charged at approval
    closed = receive(made, record)

    assert closed.state == ("closed", "released")
    assert payments(made) == [("charge", eur("37.50"))]  # nothing more at completion
    assert refunds(made) == []
    assert (closed.return_shipping_fee, closed.balance_paid) == (eur("7.50"), eur("37.50"))


def test_an_exchange_for_less_pays_the_fee_from_its_refund_and_owes_the_rest() -> None:
    made = harness(SHIPPING_NOT_WAIVED)

    # 20.00 returned for 15.00: 5.00 back, of which the 7.50 fee takes all; 2.50 owed.
    quote = made.service.quote(ask(exchange("15.00")))
    assert (quote.refund, quote.shipping_from_refund) == (eur("0.00"), eur("5.00"))
    assert (quote.shipping_owed, quote.balance_due) == (eur("2.50"), eur("2.50"))

    record = made.service.request(ask(exchange("15.00")))
    closed = receive(made, record)

    assert payments(made) == [("charge", eur("2.50"))]
    assert refunds(made) == []
    assert closed.state == ("closed", "released")
    assert closed.return_shipping_fee == eur("7.50")


def test_an_even_exchange_charges_its_restocking_fee_instead_of_keeping_it_unpaid() -> None:
    fees = FeePolicy(restocking=Fixed(eur("2.00")), waive_for_exchanges=False)
    made = harness(fees)

    quote = made.service.quote(ask(exchange(None)))
    assert (quote.exchange_credit, quote.exchange_total) == (eur("20.00"), eur("20.00"))
    assert (quote.restocking_fee, quote.balance_due) == (eur("2.00"), eur("2.00"))

    record = made.service.request(ask(exchange(None)))
    assert record.exchange_status == "on_hold"  # the charge came back: paid, held
    closed = receive(made, record)

    assert payments(made) == [("charge", eur("2.00"))]
    assert closed.restocking_fees == eur("2.00")
    assert closed.state == ("closed", "released")


def test_a_restocking_fee_on_an_upsell_is_owed_with_the_difference() -> None:
    fees = FeePolicy(restocking=Percent(10), waive_for_exchanges=False)
    quote = harness(fees).service.quote(ask(exchange("50.00")))
    # 30.00 difference + 10 % of 20.00 = 32.00
    assert (quote.balance_due, quote.restocking_fee) == (eur("32.00"), eur("2.00"))


def test_fees_only_from_payout_waives_what_an_exchange_cannot_pay() -> None:
    fees = FeePolicy(
        restocking=Fixed(eur("2.00")),
        return_shipping=eur("7.50"),
        waive_for_exchanges=False,
        fees_only_from_payout=True,
    )
    made = harness(fees)

    even = made.service.quote(ask(exchange(None)))
    assert (even.balance_due, even.fees, even.fees_waived) == (
        eur("0.00"),
        eur("0.00"),
        eur("9.50"),
    )
    # For less: 20.00 - 15.00 = 5.00 pays the 2.00 restocking fee and 3.00 of the shipping.
    less = made.service.quote(ask(exchange("15.00")))
    assert (less.refund, less.restocking_fee, less.return_shipping_fee) == (
        eur("0.00"),
        eur("2.00"),
        eur("3.00"),
    )
    assert (less.fees_waived, less.balance_due) == (eur("4.50"), eur("0.00"))
    upsell = made.service.quote(ask(exchange("50.00")))
    assert (upsell.balance_due, upsell.fees_waived) == (eur("30.00"), eur("9.50"))

    record = made.service.request(ask(exchange(None)))
    closed = receive(made, record)
    assert payments(made) == []
    assert closed.state == ("closed", "released")
    assert (closed.restocking_fees, closed.return_shipping_fee) == (None, None)


def test_a_refund_too_small_for_the_shipping_fee_charges_the_rest_at_completion() -> None:
    made = harness(FeePolicy(return_shipping=eur("12.50")))
    cap = RequestLine(order_line_id="B", quantity=1, outcome=Refund())

    record = made.service.request(ask(cap))
    assert payments(made) == []  # no exchange: nothing is charged up front
    closed = receive(made, record)

    assert refunds(made) == []
    assert payments(made) == [("charge", eur("2.50"))]  # 12.50 - the cap's 10.00
    assert closed.state == ("closed", "no_exchange")
    assert closed.return_shipping_fee == eur("12.50")


def test_store_credit_pays_a_fee_the_refund_cannot_and_the_bonus_never_does() -> None:
    made = harness(FeePolicy(return_shipping=eur("25.00")))
    credit = RequestLine(
        order_line_id="B", quantity=2, outcome=StoreCredit(bonus=eur("5.00"))
    )  # 20.00 of credit and a 5.00 bonus

    quote = made.service.quote(ask(credit))

    assert (quote.store_credit, quote.bonus) == (eur("0.00"), eur("5.00"))
    assert (quote.shipping_owed, quote.balance_due) == (eur("5.00"), eur("5.00"))
    assert quote.documents == (
        (Document.CREDIT_MEMO, eur("5.00")),
        (Document.INVOICE, eur("5.00")),
    )


# -- outbound shipping of the exchange's new items ----------------------------------------------

OUTBOUND = FeePolicy(exchange_shipping=eur("5.00"))


def test_medusa_outbound_shipping_of_an_exchange_is_part_of_what_the_customer_owes() -> None:
    made = harness(OUTBOUND)

    quote = made.service.quote(ask(exchange(None)))
    assert (quote.exchange_shipping, quote.balance_due) == (eur("5.00"), eur("5.00"))
    assert quote.documents == ((Document.EXCHANGE_ORDER, eur("25.00")),)  # item + shipping
    assert quote.as_dict() == {
        "exchange_credit": "20.00 EUR",
        "exchange_total": "20.00 EUR",
        "exchange_shipping": "5.00 EUR",
        "balance_due": "5.00 EUR",
    }

    record = made.service.request(ask(exchange(None)))
    closed = receive(made, record)

    assert payments(made) == [("charge", eur("5.00"))]
    assert closed.exchange_shipping_fee == eur("5.00")
    assert closed.state == ("closed", "released")


def test_outbound_shipping_comes_out_of_an_exchange_for_less_and_adds_to_an_upsell() -> None:
    made = harness(OUTBOUND)
    less = made.service.quote(ask(exchange("12.00")))
    assert (less.refund, less.balance_due) == (eur("3.00"), eur("0.00"))  # 20 - 12 - 5
    upsell = made.service.quote(ask(exchange("30.00")))
    assert upsell.balance_due == eur("15.00")  # 10.00 + 5.00
    # Returned for the merchant's fault: the new item ships free.
    defective = made.service.quote(ask(exchange(None, ReturnReason.DEFECTIVE)))
    assert (defective.exchange_shipping, defective.balance_due) == (eur("0.00"), eur("0.00"))
    # fees_only_from_payout does not waive it: it is what the new items cost, not a fee.
    waiving = harness(FeePolicy(exchange_shipping=eur("5.00"), fees_only_from_payout=True))
    assert waiving.service.quote(ask(exchange(None))).balance_due == eur("5.00")


def test_outbound_shipping_is_charged_once_per_return() -> None:
    made = Harness(policy=ReturnPolicy(fees=OUTBOUND))
    made.ports.commerce.add_order(order())
    record = made.service.request(ask(exchange(None)))
    paid = made.service.get(SHOP, record.id)
    assert paid.balance_paid == eur("5.00")

    closed = receive(made, paid)

    # The completion's own settlement counts the 5.00 prepaid: nothing given back or
    # charged again.
    assert payments(made) == [("charge", eur("5.00"))]
    assert closed.exchange_shipping_fee == eur("5.00")


def test_an_exchange_cancelled_by_qc_gives_the_prepaid_shipping_back() -> None:
    made = harness(OUTBOUND)
    record = made.service.request(ask(exchange(None)))

    closed = receive(made, record, qc=QcResult.FAIL)

    assert closed.state == ("closed", "exchange_cancelled")
    assert payments(made) == [("charge", eur("5.00")), ("refund", eur("5.00"))]
    assert closed.exchange_shipping_fee is None


def test_a_bad_outbound_shipping_amount_is_refused() -> None:
    with pytest.raises(InvalidFee) as raised:
        FeePolicy(exchange_shipping="5.00")  # type: ignore[arg-type]
    assert raised.value.field == "exchange_shipping"
    with pytest.raises(InvalidFee):
        FeePolicy(exchange_shipping=eur("-1.00"))


# -- a reset hands the paid balance on ------------------------------------------------------------


def test_a_reset_hands_the_paid_balance_to_the_exchange_it_paid_for() -> None:
    made = harness(FeePolicy())
    caps = RequestLine(order_line_id="B", quantity=2)
    record = made.service.request(ask(exchange("50.00"), caps))
    # 30.00 short on the shirt, less the caps' 20.00 refund: 10.00 charged up front.
    assert payments(made) == [("charge", eur("10.00"))]
    shirt, cap = record.lines
    made.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="w-1",
            lines=[
                ReceivedLine(line_id=shirt.id, quantity=1),
                ReceivedLine(line_id=cap.id, quantity=1),
            ],
        )
    )

    _, child = made.service.reset(SHOP, record.id)

    # One cap came back (10.00): 30.00 - 10.00 = 20.00 owed, 10.00 of it paid already.
    assert (child.balance_paid, child.balance_charged) == (eur("10.00"), eur("10.00"))
    assert payments(made) == [("charge", eur("10.00")), ("charge", eur("10.00"))]
    assert refunds(made) == []
    assert made.service.get(SHOP, record.id).balance_settled


def test_a_reset_that_drops_the_exchange_gives_the_paid_balance_back() -> None:
    made = harness(FeePolicy())
    caps = RequestLine(
        order_line_id="B", quantity=2, outcome=Exchange(variant_id="coat", unit_price=eur("50.00"))
    )
    record = made.service.request(ask(caps))
    assert payments(made) == [("charge", eur("30.00"))]
    made.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="w-1",
            lines=[ReceivedLine(line_id=record.lines[0].id, quantity=1)],
        )
    )

    made.service.reset(SHOP, record.id)

    # Half the caps for the coat: the exchange is dropped, the 30.00 goes back and the
    # cap that came back is paid out as an exchange for nothing.
    assert payments(made) == [("charge", eur("30.00")), ("refund", eur("30.00"))]
    assert refunds(made) == [eur("10.00")]
