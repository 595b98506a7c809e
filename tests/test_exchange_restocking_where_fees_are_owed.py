"""An exchanged line's restocking fee with ``waive_for_exchanges=False`` where fees the
payout does not cover are owed (``fees_only_from_payout=False``): the refunded or credited
units that bear fees carry it, each its share, whenever they are paid, so the money and
its kind (refunded, credited, charged) do not depend on when the refund is paid nor on the
order the units come back in (docs/money.md, "When fees are taken"). A share no payout
bears (its unit failed QC) is charged apart, and the platform's figure, which never has it,
agrees with returnflow's."""

from __future__ import annotations

import pytest

from _builders import SHOP, eur, order, order_line, passed, platform, receive
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    FeePolicy,
    Money,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    StoreCredit,
)
from returnflow.decisions import _platform_money
from returnflow.domain.fees import Percent
from returnflow.domain.model import Outcome, QcResult, Refund, ReturnLine, ReturnReason
from returnflow.domain.policy import RefundTrigger
from returnflow.domain.settlement import settle
from returnflow.testing import Harness

FEES = FeePolicy(
    return_shipping=eur("3.00"),
    restocking=Percent(10),
    waive_for_exchanges=False,
    fees_only_from_payout=False,
)

TIMINGS = [
    (mode, trigger)
    for mode in ("tags", "native")
    for trigger in (RefundTrigger.ON_RECEIVED, RefundTrigger.ON_CLOSE)
]

ORDERS = [("cap", "jacket"), ("jacket", "cap"), ("cap + jacket",)]


def paid(made: Harness, return_id: str) -> dict[str, Money]:
    """What the customer got back and paid, by kind (refunded on the platform return in
    native mode, by the order's refunds in tags mode), checked closed without review."""
    record = made.service.get(SHOP, return_id)
    assert (record.status, record.review_reasons) == ("closed", ()), record.review_reasons
    there = record.refs.platform_return_id
    if there is not None:
        refunded = platform(made).refunded(SHOP, there)
    else:
        refunded = Money.sum((r.amount for r in made.ports.commerce.refunds), "EUR")
    credits = made.ports.commerce.calls_to("issue_store_credit")
    payments = made.ports.payments
    return {
        "refund": refunded,
        "store_credit": Money.sum((call.args["amount"] for call in credits), "EUR"),
        "charged": Money.sum((c.args["amount"] for c in payments.calls_to("charge")), "EUR"),
        "given_back": Money.sum((c.args["amount"] for c in payments.calls_to("refund")), "EUR"),
    }


def cap_and_jacket(
    mode: str,
    trigger: RefundTrigger,
    receipts: tuple[str, ...],
    *,
    credited: bool = False,
    cap_fails: bool = False,
    defective: bool = False,
    fees: FeePolicy = FEES,
) -> tuple[dict[str, Money], Harness, str]:
    # A 10.00 cap refunded (or credited; or defective, its fees waived) beside a 20.00
    # jacket exchanged for another size, received in ``receipts`` (each one receipt:
    # "cap", "jacket", "cap + jacket").
    made = Harness(policy=ReturnPolicy(platform_mode=mode, fees=fees, refund_trigger=trigger))
    lines = [order_line("L1", "CAP", "10.00"), order_line("L3", "JACKET", "20.00")]
    made.ports.commerce.add_order(order(SHOP, "2001", lines))
    requested = [
        RequestLine(
            order_line_id="L1",
            quantity=1,
            outcome=StoreCredit() if credited else Refund(),
            reason=ReturnReason.DEFECTIVE if defective else ReturnReason.UNKNOWN,
        ),
        RequestLine(order_line_id="L3", quantity=1, outcome=Exchange(variant_id="jacket-l")),
    ]
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="2001", lines=requested))
    cap, jacket = (line.id for line in record.lines)
    scan = CarrierUpdate(
        shop=SHOP, return_id=record.id, event_id="scan", status=CarrierStatus.PICKED_UP
    )
    made.service.handle(scan)
    units = {
        "cap": passed(cap, qc=QcResult.FAIL, note="worn") if cap_fails else passed(cap),
        "jacket": passed(jacket),
    }
    for number, receipt in enumerate(receipts):
        receive(made, record.id, f"r{number}", *(units[name] for name in receipt.split(" + ")))
    return paid(made, record.id), made, record.id


@pytest.mark.parametrize("receipts", ORDERS, ids=str)
@pytest.mark.parametrize(("mode", "trigger"), TIMINGS, ids=str)
def test_a_refunded_cap_carries_the_jacket_restocking_whenever_it_is_paid(
    mode: str, trigger: RefundTrigger, receipts: tuple[str, ...]
) -> None:
    # 10.00 - 1.00 restocking - 2.00 of the jacket's - 3.00 return shipping: 4.00 refunded
    # and nothing charged, on receipt or at completion (the cap was refunded 6.00 on
    # receipt and the jacket's 2.00 charged apart, 4.00 at completion and nothing charged).
    money, _, _ = cap_and_jacket(mode, trigger, receipts)
    assert money == {
        "refund": eur("4.00"),
        "store_credit": eur("0.00"),
        "charged": eur("0.00"),
        "given_back": eur("0.00"),
    }


@pytest.mark.parametrize("receipts", ORDERS, ids=str)
@pytest.mark.parametrize(("mode", "trigger"), TIMINGS, ids=str)
def test_a_credited_cap_carries_the_jacket_restocking_whenever_it_is_paid(
    mode: str, trigger: RefundTrigger, receipts: tuple[str, ...]
) -> None:
    money, _, _ = cap_and_jacket(mode, trigger, receipts, credited=True)
    assert money == {
        "refund": eur("0.00"),
        "store_credit": eur("4.00"),
        "charged": eur("0.00"),
        "given_back": eur("0.00"),
    }


@pytest.mark.parametrize("receipts", ORDERS, ids=str)
@pytest.mark.parametrize(("mode", "trigger"), TIMINGS, ids=str)
def test_a_failed_cap_owes_its_shares_apart_and_the_platform_agrees(
    mode: str, trigger: RefundTrigger, receipts: tuple[str, ...]
) -> None:
    # The cap fails QC: never paid out, its share of the jacket's restocking (2.00) and of
    # the return shipping fee (3.00) are owed apart, charged through Payments; the
    # platform's figure for the jacket has neither restocking (its line carries none).
    money, made, return_id = cap_and_jacket(mode, trigger, receipts, cap_fails=True)
    assert money == {
        "refund": eur("0.00"),
        "store_credit": eur("0.00"),
        "charged": eur("5.00"),
        "given_back": eur("0.00"),
    }
    history = made.service.get(SHOP, return_id).history
    settled = [entry.payload for entry in history if entry.event == "settled"]
    assert [note.get("restocking_owed") for note in settled if "restocking_owed" in note] == [
        "2.00 EUR"
    ]
    assert _platform_money.owed_apart(history, "EUR") == eur("5.00")
    assert _platform_money.restocking_owed(history, "EUR") == eur("2.00")


@pytest.mark.parametrize("receipts", ORDERS, ids=str)
@pytest.mark.parametrize(("mode", "trigger"), TIMINGS, ids=str)
@pytest.mark.parametrize(("only_from_payout", "charged"), [(False, "5.00"), (True, "0.00")])
def test_an_exchanged_line_bearing_its_own_fee_takes_it_from_its_own_difference(
    mode: str,
    trigger: RefundTrigger,
    receipts: tuple[str, ...],
    only_from_payout: bool,
    charged: str,
) -> None:
    # The cap is defective: no unit that pays out bears fees, so the jacket bears its own
    # restocking fee (2.00) and the whole return shipping fee (3.00), from the exchange's
    # own difference (none: an even exchange), the rest owed or waived; never from the
    # cap's refund, which is 10.00 on receipt or at completion. (At completion the
    # jacket's fee was taken from the cap's refund: 8.00; and in native mode the cap and
    # jacket received together and refunded on receipt went to review.)
    fees = FeePolicy(
        return_shipping=eur("3.00"),
        restocking=Percent(10),
        waive_for_exchanges=False,
        fees_only_from_payout=only_from_payout,
    )
    money, _, _ = cap_and_jacket(mode, trigger, receipts, defective=True, fees=fees)
    assert money == {
        "refund": eur("10.00"),
        "store_credit": eur("0.00"),
        "charged": eur(charged),
        "given_back": eur("0.00"),
    }


def tee_and_caps(mode: str, trigger: RefundTrigger, price: str, *receipts: str) -> dict[str, Money]:
    # The T-shirt (25.00) for one at ``price``, the two caps (10.00 each) refunded; each of
    # ``receipts`` one receipt: "tee", "caps" (both pass), "caps, one failing".
    made = Harness(policy=ReturnPolicy(platform_mode=mode, fees=FEES, refund_trigger=trigger))
    lines = [order_line("L1", "TEE-M", "25.00"), order_line("L2", "CAP", "10.00", 2)]
    made.ports.commerce.add_order(order(SHOP, "1001", lines))
    requested = [
        RequestLine(
            order_line_id="L1",
            quantity=1,
            outcome=Exchange(variant_id="tee-l", unit_price=eur(price)),
        ),
        RequestLine(order_line_id="L2", quantity=2),
    ]
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=requested))
    tee, cap = (line.id for line in record.lines)
    scan = CarrierUpdate(
        shop=SHOP, return_id=record.id, event_id="scan", status=CarrierStatus.PICKED_UP
    )
    made.service.handle(scan)
    units = {
        "tee": (passed(tee),),
        "caps": (passed(cap, 2),),
        "caps, one failing": (passed(cap), passed(cap, qc=QcResult.FAIL)),
    }
    for number, receipt in enumerate(receipts):
        parts = receipt.split(" + ")
        receive(made, record.id, f"r{number}", *(u for part in parts for u in units[part]))
    return paid(made, record.id)


@pytest.mark.parametrize(
    "receipts",
    [("tee", "caps, one failing"), ("caps, one failing", "tee"), ("tee + caps, one failing",)],
    ids=str,
)
@pytest.mark.parametrize(("mode", "trigger"), TIMINGS, ids=str)
def test_an_exchange_for_less_with_a_cap_failing_pays_the_same_in_any_timing(
    mode: str, trigger: RefundTrigger, receipts: tuple[str, ...]
) -> None:
    # 25.00 - 15.00 back for the T-shirt, and the cap that passes: 10.00 - 1.00 restocking
    # - 1.25 of the T-shirt's 2.50 - 1.50 return shipping = 6.25. The failed cap's shares
    # (1.25 + 1.50) are charged apart. (The T-shirt's fee was its own, from the payout:
    # 15.00 refunded and the failed cap's 1.50 charged.)
    assert tee_and_caps(mode, trigger, "15.00", *receipts) == {
        "refund": eur("16.25"),
        "store_credit": eur("0.00"),
        "charged": eur("2.75"),
        "given_back": eur("0.00"),
    }


@pytest.mark.parametrize("receipts", [("tee", "caps"), ("caps", "tee"), ("tee + caps",)], ids=str)
@pytest.mark.parametrize("mode", ["tags", "native"])
def test_an_upsell_charges_only_its_difference_whenever_the_caps_are_paid(
    mode: str, receipts: tuple[str, ...]
) -> None:
    # The caps pay 2 x (10.00 - 1.00 - 1.25 - 1.50) = 12.50, the T-shirt's restocking in
    # it; the upsell's 15.00 is paid from them at completion (2.50 charged), charged apart
    # when they were refunded on receipt. No fee is ever charged apart (it was: 17.50
    # charged against 15.00 refunded on receipt).
    early = tee_and_caps(mode, RefundTrigger.ON_RECEIVED, "40.00", *receipts)
    late = tee_and_caps(mode, RefundTrigger.ON_CLOSE, "40.00", *receipts)
    assert (early["refund"], early["charged"]) == (eur("12.50"), eur("15.00"))
    assert (late["refund"], late["charged"]) == (eur("0.00"), eur("2.50"))


def _line(line_id: str, amount: str, outcome: Outcome | None = None) -> ReturnLine:
    return ReturnLine(
        id=line_id,
        order_line_id=line_id,
        sku="S",
        variant_id="v",
        quantity=1,
        reason=ReturnReason.UNWANTED,
        unit_amounts=(eur(amount),),
        outcome=outcome or Refund(),
    )


def test_the_settlement_owes_apart_the_share_of_a_unit_never_to_settle() -> None:
    cap = _line("R1", "10.00")
    jacket = _line("R2", "20.00", outcome=Exchange(variant_id="jacket-l"))
    lines = [cap, jacket]
    early = settle("EUR", [(cap, 1, 0)], fees=FEES, shipping_lines=lines)
    assert (early.refund, early.restocking_fee, early.restocking_owed) == (
        eur("4.00"),
        eur("3.00"),
        eur("0.00"),
    )
    failed = settle(
        "EUR", [(jacket, 1, 0)], fees=FEES, shipping_lines=lines, shipping_apart=[(cap, 1, 0)]
    )
    assert (failed.restocking_owed, failed.shipping_owed, failed.balance_due) == (
        eur("2.00"),
        eur("3.00"),
        eur("5.00"),
    )
    assert failed.restocking_fee == eur("2.00")
