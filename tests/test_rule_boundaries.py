"""Branches and boundaries of the domain rules, each pinned by a value that a one-token change
of the rule would get wrong:

* a store credit's bonus is paid once when its line settles in two parts;
* a prepaid balance given back is never negative;
* a settlement that pays only a bonus keeps the return open until the credit is issued;
* the return window from fulfilment differs from the one from the order; from delivery,
  an undelivered fulfilment counts from its shipping; the last moment of a window is in it;
* ``decline_final_sale=False`` sends final-sale lines to a person;
* a value equal to ``auto_approve_limit`` is approved on its own;
* an order created at exactly 2019-01-01 00:00 UTC can take an exchange;
* an approved -> approved history entry (a fact the return ignored) is no approval: the
  expiry clock runs from the approval.

(The claim lease that ends exactly now is in the store contract: ``StoreContract``.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP

import pytest

from returnflow import (
    CurrencyMismatch,
    DeclineReason,
    Fulfillment,
    InvalidAmount,
    Money,
    OrderLine,
    OrderSnapshot,
    OutcomeKind,
    ReceivedLine,
    RequestLine,
    ReturnLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    StoreCredit,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.decisions import timers
from returnflow.domain.fees import charged, tax_of
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.domain.policy import (
    Decision,
    RefundTrigger,
    WindowStart,
    exchange_blockers,
)
from returnflow.domain.settlement import (
    FeePolicy,
    Fixed,
    Percent,
    lines_by_order_line,
    settle,
)
from returnflow.errors import InvalidFee
from returnflow.testing import Harness
from returnflow.testing.harness import ManualClock

SHOP = "shop-b"
DAY0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def order(
    *,
    created_at: datetime = DAY0,
    fulfillments: tuple[Fulfillment, ...] = (Fulfillment(1, DAY0),),
    price: str = "40.00",
    quantity: int = 1,
    final_sale: bool = False,
) -> OrderSnapshot:
    return OrderSnapshot(
        id="9001",
        shop=SHOP,
        created_at=created_at,
        currency="EUR",
        lines=[
            OrderLine(
                id="L1",
                sku="SKU",
                variant_id="v",
                quantity=quantity,
                unit_price=eur(price),
                final_sale=final_sale,
                fulfillments=fulfillments,
            )
        ],
    )


def ask(quantity: int = 1, **line: object) -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP,
        order_id="9001",
        lines=[RequestLine(order_line_id="L1", quantity=quantity, **line)],  # type: ignore[arg-type]
    )


# -- money ----------------------------------------------------------------------------------------


def credit_line(*amounts: Money, bonus: Money) -> ReturnLine:
    return ReturnLine(
        id="R-1",
        order_line_id="L1",
        sku="SKU",
        variant_id="v",
        quantity=len(amounts),
        outcome=StoreCredit(bonus=bonus),
        reason=ReturnReason.UNWANTED,
        unit_amounts=amounts,
        units=tuple(range(len(amounts))),
    )


def test_a_bonus_is_paid_with_the_first_part_of_its_line_only() -> None:
    stored = credit_line(eur("10.00"), eur("10.00"), bonus=eur("5.00"))
    first = settle("EUR", [(stored, 1, 0)], fees=FeePolicy())
    second = settle("EUR", [(stored, 1, 1)], fees=FeePolicy())
    assert (first.store_credit, first.bonus) == (eur("10.00"), eur("5.00"))
    assert (second.store_credit, second.bonus) == (eur("10.00"), eur("0.00"))


def test_a_bonus_credit_settled_in_two_receipts_pays_the_bonus_once() -> None:
    harness = Harness(
        policy=ReturnPolicy(refund_trigger=RefundTrigger.ON_RECEIVED),
        clock=ManualClock(DAY0 + timedelta(days=1)),
    )
    harness.ports.commerce.add_order(order(quantity=2, fulfillments=(Fulfillment(2, DAY0),)))
    record = harness.service.request(ask(2, outcome=StoreCredit(bonus=eur("5.00"))))
    for number in (1, 2):
        harness.service.handle(
            WarehouseReceipt(
                shop=SHOP,
                return_id=record.id,
                event_id=f"w-{number}",
                lines=[ReceivedLine(line_id=record.lines[0].id, quantity=1)],
            )
        )
    credits = [credit.amount for credit in harness.ports.commerce.credits]
    assert credits == [eur("45.00"), eur("40.00")]  # 40.00 + the 5.00 bonus, then 40.00


def test_a_prepaid_balance_is_given_back_only_as_far_as_it_is_not_owed() -> None:
    stored = credit_line(eur("10.00"), bonus=eur("0.00"))
    owing = settle("EUR", [(stored, 1, 0)], fees=FeePolicy(return_shipping=eur("25.00")))
    assert owing.balance_due == eur("15.00")  # 25.00 shipping - the 10.00 credit
    paid_some = settle(
        "EUR",
        [(stored, 1, 0)],
        fees=FeePolicy(return_shipping=eur("25.00")),
        prepaid=eur("10.00"),
    )
    # 15.00 owed, 10.00 of it prepaid: 5.00 still owed, nothing (never -5.00) given back.
    assert (paid_some.balance_due, paid_some.balance_refund) == (eur("5.00"), eur("0.00"))
    paid_more = settle(
        "EUR",
        [(stored, 1, 0)],
        fees=FeePolicy(return_shipping=eur("25.00")),
        prepaid=eur("20.00"),
    )
    assert (paid_more.balance_due, paid_more.balance_refund) == (eur("0.00"), eur("5.00"))


def test_a_settlement_paying_only_a_bonus_closes_when_the_credit_is_issued() -> None:
    harness = Harness(clock=ManualClock(DAY0 + timedelta(days=1)))
    harness.ports.commerce.add_order(order(price="0.00"))  # a free gift, credited a bonus
    harness.ports.commerce.fail("issue_store_credit", times=1)
    record = harness.service.request(ask(outcome=StoreCredit(bonus=eur("5.00"))))
    received = harness.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="w-1",
            lines=[ReceivedLine(line_id=record.lines[0].id, quantity=1)],
        )
    ).record
    assert received.status != "closed"  # the credit has not been issued yet
    assert harness.ports.commerce.credits == []

    harness.dispatch_due()

    assert [credit.amount for credit in harness.ports.commerce.credits] == [eur("5.00")]
    assert harness.service.get(SHOP, record.id).status == "closed"


# -- the window -----------------------------------------------------------------------------------


def test_the_window_from_fulfilment_is_not_the_window_from_the_order() -> None:
    shipped = order(fulfillments=(Fulfillment(1, DAY0 + timedelta(days=20)),))
    now = DAY0 + timedelta(days=40)  # 40 days after the order, 20 after the fulfilment
    by_order = ReturnPolicy(window_days=30, window_starts=WindowStart.ORDER)
    by_fulfilment = ReturnPolicy(window_days=30, window_starts=WindowStart.FULFILLMENT)

    assert by_order.assess(shipped, ask(), now=now).decision is Decision.DECLINE
    assert by_fulfilment.assess(shipped, ask(), now=now).decision is Decision.APPROVE
    assert by_order.window_start(shipped) == DAY0
    assert by_fulfilment.window_start(shipped) == DAY0 + timedelta(days=20)


def test_a_window_from_delivery_counts_an_undelivered_order_from_its_fulfilment() -> None:
    fulfilled = DAY0 + timedelta(days=2)
    undelivered = order(fulfillments=(Fulfillment(1, fulfilled),))
    delivered = order(fulfillments=(Fulfillment(1, fulfilled, DAY0 + timedelta(days=9)),))
    policy = ReturnPolicy(window_days=30, window_starts=WindowStart.DELIVERY)

    assert policy.window_start(undelivered) == fulfilled
    assert policy.window_start(delivered) == DAY0 + timedelta(days=9)
    now = DAY0 + timedelta(days=35)  # day 35: past day 32, before day 39
    late = policy.assess(undelivered, ask(), now=now)
    assert (late.decision, late.decline_reason) == (
        Decision.DECLINE,
        DeclineReason.RETURN_PERIOD_ENDED,
    )
    assert policy.assess(delivered, ask(), now=now).decision is Decision.APPROVE


def test_the_last_moment_of_the_window_is_inside_it() -> None:
    policy = ReturnPolicy(window_days=30)
    deadline = DAY0 + timedelta(days=30)
    assert policy.assess(order(), ask(), now=deadline).decision is Decision.APPROVE
    after = deadline + timedelta(microseconds=1)
    assert policy.assess(order(), ask(), now=after).decision is Decision.DECLINE


# -- review, limits, exchange eligibility -------------------------------------------------------


def test_final_sale_lines_go_to_a_person_when_they_are_not_declined() -> None:
    final = order(final_sale=True)
    now = DAY0 + timedelta(days=1)
    declined = ReturnPolicy().assess(final, ask(), now=now)
    assert (declined.decision, declined.decline_reason) == (
        Decision.DECLINE,
        DeclineReason.FINAL_SALE,
    )
    reviewed = ReturnPolicy(decline_final_sale=False).assess(final, ask(), now=now)
    assert (reviewed.decision, reviewed.notes) == (Decision.REVIEW, ("final-sale lines: L1",))


def test_a_value_equal_to_the_auto_approval_limit_is_approved() -> None:
    policy = ReturnPolicy(auto_approve_limit=eur("40.00"))
    now = DAY0 + timedelta(days=1)
    at_limit = policy.assess(order(), ask(), now=now, value=eur("40.00"))
    assert at_limit.decision is Decision.APPROVE
    above = policy.assess(order(), ask(), now=now, value=eur("40.01"))
    assert (above.decision, above.notes) == (
        Decision.REVIEW,
        ("value 40.01 EUR above auto-approval limit 40.00 EUR",),
    )


def test_an_order_created_exactly_on_2019_01_01_can_take_an_exchange() -> None:
    first = datetime(2019, 1, 1, tzinfo=timezone.utc)
    assert exchange_blockers(order(created_at=first), frozenset({"web"})) == ()
    older = order(created_at=first - timedelta(microseconds=1))
    assert exchange_blockers(older, frozenset({"web"})) == ("order is older than 2019",)


# -- the expiry clock -----------------------------------------------------------------------------


def entry(at: datetime, event: str, source: str, target: str, version: int) -> HistoryEntry:
    return HistoryEntry(
        at=at,
        event=event,
        actor="system",
        source=(source, "no_exchange"),
        target=(target, "no_exchange"),
        version=version,
    )


def test_a_fact_ignored_while_approved_does_not_restart_the_expiry_clock() -> None:
    approved = DAY0 + timedelta(days=1)
    ignored = DAY0 + timedelta(days=10)
    record = ReturnRecord(
        id="R1",
        shop=SHOP,
        order_id="9001",
        currency="EUR",
        status="approved",
        exchange_status="no_exchange",
        lines=(),
        created_at=DAY0,
        updated_at=ignored,
        history=(
            entry(DAY0, "check", "requested", "pending_review", 1),
            entry(approved, "approve", "pending_review", "approved", 2),
            entry(ignored, "fact_ignored", "approved", "approved", 3),
        ),
    )
    policy = ReturnPolicy(ship_within_days=30)

    assert timers.approved_at(record) == approved
    assert timers.due(record, policy)[0] == (approved + timedelta(days=30), "expire")
    assert timers.expiry_due(record, policy, approved + timedelta(days=30, seconds=1))
    assert not timers.expiry_due(record, policy, approved + timedelta(days=30))


def test_a_return_closed_from_review_with_only_store_credit_closes_once_it_is_issued() -> None:
    harness = Harness(
        policy=ReturnPolicy(refund_trigger=RefundTrigger.ON_RECEIVED),
        clock=ManualClock(DAY0 + timedelta(days=1)),
    )
    two = OrderSnapshot(
        id="9001",
        shop=SHOP,
        created_at=DAY0,
        fulfilled_at=DAY0,
        currency="EUR",
        lines=[
            OrderLine(id="L1", sku="A", variant_id="a", quantity=1, unit_price=eur("40.00")),
            OrderLine(id="L2", sku="B", variant_id="b", quantity=1, unit_price=eur("15.00")),
        ],
    )
    harness.ports.commerce.add_order(two)
    record = harness.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="9001",
            lines=[
                RequestLine(order_line_id="L1", quantity=1),
                RequestLine(order_line_id="L2", quantity=1, outcome=StoreCredit()),
            ],
        )
    )
    harness.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="w-1",
            lines=[ReceivedLine(line_id=record.lines[0].id, quantity=1)],
        )
    )
    assert [refund.amount for refund in harness.ports.commerce.refunds] == [eur("40.00")]
    flagged = harness.service.handle(
        WarehouseFinished(shop=SHOP, return_id=record.id, event_id="w-2")
    ).record
    assert flagged.status == "needs_review"  # a short receipt: the second item never came
    harness.ports.commerce.fail("issue_store_credit", times=1)

    # The person closes it as it is, crediting the item that never came: the 15.00 is
    # credited, and the return closes when the credit is confirmed (not left in review).
    closing = harness.service.close(SHOP, record.id, unreceived="store_credit")
    assert (closing.status, harness.ports.commerce.credits) == ("refunded", [])
    harness.dispatch_due()

    assert [credit.amount for credit in harness.ports.commerce.credits] == [eur("15.00")]
    assert harness.service.get(SHOP, record.id).status == "closed"


# -- fees, retries, exchange eligibility ------------------------------------------------------


def test_a_percentage_fee_is_between_0_and_100_inclusive() -> None:
    assert Percent(0).of(eur("10.00")) == eur("0.00")
    assert Percent(100).of(eur("10.00")) == eur("10.00")
    assert Percent("12.5").of(eur("0.20")) == eur("0.02")  # 0.025 -> half to even
    assert Percent("17.5").of(eur("0.20")) == eur("0.04")  # 0.035 -> half to even
    for bad in ("100.01", "-0.01"):
        with pytest.raises(InvalidFee) as raised:
            Percent(bad)
        assert (raised.value.field, raised.value.value) == ("percent", bad)
        assert raised.value.reason == "a percentage fee is between 0 and 100"
    with pytest.raises(InvalidAmount) as floated:
        Percent(12.5)
    assert floated.value.field == "percent"


def test_a_fee_tax_rate_is_between_0_and_100_inclusive() -> None:
    assert Fixed(eur("1.00"), tax=100).tax == 100
    assert Percent(10, tax=0).tax == 0
    with pytest.raises(InvalidFee) as raised:
        Percent(10, tax="100.01")
    assert (raised.value.field, raised.value.value) == ("tax", "100.01")
    assert raised.value.reason == "a tax rate is a percentage between 0 and 100"
    with pytest.raises(InvalidFee) as negative:
        Fixed(eur("1.00"), tax=eur("-0.01"))
    assert negative.value.reason == "a fee's tax is never negative"


def test_a_fee_tax_in_another_currency_names_both_currencies() -> None:
    fee = Fixed(eur("5.00"), tax=Money("1.00", "USD"))
    with pytest.raises(CurrencyMismatch) as raised:
        charged(fee, eur("0.00"), taxes_included=False)
    assert (raised.value.field, raised.value.value) == ("fee.tax.currency", "USD")
    assert raised.value.reason == "the return is in EUR"


def test_a_fixed_fee_with_a_tax_amount_adds_it_unless_prices_include_tax() -> None:
    fee = Fixed(eur("5.00"), tax=eur("0.80"))
    assert charged(fee, eur("0.00"), taxes_included=False) == eur("5.80")
    assert charged(fee, eur("0.00"), taxes_included=True) == eur("5.00")
    assert tax_of(fee, eur("5.80")) == eur("0.80")
    assert tax_of(fee, eur("0.50")) == eur("0.50")  # never more than what is charged
    assert charged(Fixed(eur("0.00"), tax=eur("0.80")), eur("0.00"), taxes_included=False) == (
        eur("0.00")
    )  # no fee, no tax on it


def test_retries_back_off_exponentially_with_at_most_a_quarter_of_jitter() -> None:
    policy = ReturnPolicy(retry_base_seconds=2.0, retry_cap_seconds=20.0)
    waits = [policy.backoff(attempt, 0.0).total_seconds() for attempt in range(1, 6)]
    assert waits == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert policy.backoff(2, 0.5).total_seconds() == 4.5  # 4 x (1 + 0.25 x 0.5)
    assert policy.backoff(5, 1.0).total_seconds() == 25.0  # the cap, plus a quarter


def test_a_retry_after_a_thousand_and_more_attempts_waits_the_cap() -> None:
    # a policy that never gives up: 2 ** 1024 is past what a float holds
    policy = ReturnPolicy(max_attempts=1_000_000, retry_base_seconds=0.001, retry_cap_seconds=3.0)
    for attempt in (1025, 5000, 999_999):
        assert policy.backoff(attempt, 0.0).total_seconds() == 3.0


def test_an_app_name_is_compared_without_case() -> None:
    made_by = OrderSnapshot(
        id="9001",
        shop=SHOP,
        created_at=DAY0,
        currency="EUR",
        created_by_app="Shopify",
        lines=[OrderLine(id="L1", sku="A", variant_id="a", quantity=1, unit_price=eur("1.00"))],
    )
    assert exchange_blockers(made_by, frozenset({"shopify"})) == ()


def test_a_bad_fixed_fee_names_its_field_value_and_reason() -> None:
    for value, reason in (
        ("5.00", "a fixed fee is Money"),
        (eur("-0.01"), "a fee is never negative"),
    ):
        with pytest.raises(InvalidFee) as raised:
            Fixed(value)  # type: ignore[arg-type]
        assert (raised.value.field, raised.value.value, raised.value.reason) == (
            "amount",
            value,
            reason,
        )
    with pytest.raises(InvalidFee) as negative_tax:
        Fixed(eur("1.00"), tax=eur("-0.01"))
    assert (negative_tax.value.field, negative_tax.value.value) == ("tax", eur("-0.01"))
    with pytest.raises(CurrencyMismatch) as other:
        Fixed(Money("5.00", "USD")).of(eur("0.00"))
    assert (other.value.field, other.value.value, other.value.reason) == (
        "fee.currency",
        "USD",
        "the return is in EUR",
    )


def test_quantized_rounds_as_asked() -> None:
    assert Money.quantized("2.345", "EUR") == eur("2.34")
    assert Money.quantized("2.345", "EUR", ROUND_HALF_UP) == eur("2.35")
    assert Money.quantized("2.349", "EUR", ROUND_DOWN) == eur("2.34")


@pytest.mark.parametrize(
    ("make", "field", "value", "reason"),
    [
        (
            lambda: FeePolicy(restocking="15%"),
            "fee",
            "15%",
            "must be Percent(...), Fixed(...) or None",
        ),
        (
            lambda: FeePolicy(return_shipping="4.95"),
            "return_shipping",
            "4.95",
            "must be Money, Fixed(...) or None",
        ),
        (
            lambda: FeePolicy(exchange_shipping=5),
            "exchange_shipping",
            5,
            "must be Money, Fixed(...) or None",
        ),
    ],
    ids=["restocking", "return-shipping", "exchange-shipping"],
)
def test_a_fee_policy_of_something_else_names_the_fee(
    make: Callable[[], object], field: str, value: object, reason: str
) -> None:
    with pytest.raises(InvalidFee) as raised:
        make()
    assert (raised.value.field, raised.value.value, raised.value.reason) == (field, value, reason)


@pytest.mark.parametrize("parts", [0, -1, True, 2.0, "2"])
def test_money_splits_in_a_whole_number_of_parts_only(parts: object) -> None:
    with pytest.raises(InvalidAmount) as raised:
        eur("10.00").split(parts)  # type: ignore[arg-type]
    assert (raised.value.field, raised.value.value, raised.value.reason) == (
        "parts",
        parts,
        "must be a whole number of at least 1",
    )


def test_units_of_one_order_line_in_two_parts_are_counted_together() -> None:
    stored = credit_line(eur("10.00"), eur("10.00"), eur("10.00"), bonus=eur("0.00"))
    result = settle("EUR", [(stored, 1, 0), (stored, 2, 1)], fees=FeePolicy())
    assert lines_by_order_line(result, OutcomeKind.STORE_CREDIT) == {"L1": 3}
    assert lines_by_order_line(result, OutcomeKind.REFUND) == {}
