"""The return shipping fee follows the units: it is spread once over the units of the return
that bear it, in proportion to what each was paid, and each payout pays its own units'
shares, so the kind of money that bears the fee (refund or store credit) and the amounts do
not depend on the order the receipts come in, in either mode (DESIGN.md, section 6)."""

from __future__ import annotations

from itertools import permutations

import pytest

from _builders import SHOP, eur, order, order_line, passed, platform, receive
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    FeePolicy,
    Money,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.fees import Fixed, unit_shipping_fees
from returnflow.domain.model import ReturnLine
from returnflow.domain.policy import RefundTrigger
from returnflow.domain.settlement import settle
from returnflow.testing import Harness

MODES = ["native", "tags"]
ORDER = "2001"


def harness(
    mode: str, fees: FeePolicy, trigger: RefundTrigger, *lines: tuple[str, str, int]
) -> Harness:
    """A harness in ``mode`` whose platform knows order :data:`ORDER` of ``lines``
    (line id, unit price, quantity)."""
    made = Harness(policy=ReturnPolicy(platform_mode=mode, fees=fees, refund_trigger=trigger))
    made.ports.commerce.add_order(
        order(SHOP, ORDER, [order_line(i, f"SKU-{i}", price, units) for i, price, units in lines])
    )
    return made


def money(made: Harness, return_id: str) -> dict[str, Money]:
    """What the customer got back and paid, by kind: refunded (on the platform return in
    native mode, by the order's refunds in tags mode), credited, charged through Payments
    and given back through Payments."""
    record = made.service.get(SHOP, return_id)
    if record.refs.platform_return_id is not None:
        refunded = platform(made).refunded(SHOP, record.refs.platform_return_id)
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


def run(
    made: Harness, requested: list[RequestLine], receipts: list[list[ReceivedLine]]
) -> tuple[dict[str, Money], str]:
    """Request ``requested`` of :data:`ORDER`, hand the parcel in, send ``receipts`` in
    that order; the money by kind and the return's status."""
    record = made.service.request(ReturnRequest(shop=SHOP, order_id=ORDER, lines=requested))
    made.service.handle(
        CarrierUpdate(
            shop=SHOP, return_id=record.id, event_id="scan", status=CarrierStatus.PICKED_UP
        )
    )
    for index, lines in enumerate(receipts):
        receive(made, record.id, f"wms-{index}", *lines)
    done = made.service.get(SHOP, record.id)
    assert done.review_reasons == (), done.review_reasons
    return money(made, record.id), done.status


# -- the case the stateful model found ---------------------------------------------------------

TEE_AND_CAP = (("L1", "2.00", 2), ("L2", "2.86", 1))
SHRUNK = FeePolicy(return_shipping=eur("1.28"))


def shrunk(mode: str, order_of_receipts: tuple[int, ...]) -> dict[str, Money]:
    # Two T-shirts (2.00 each) refunded and a cap (2.86) credited, a 1.28 return shipping
    # fee, refunded on receipt, completed on receipt. R1: a T-shirt passed; R2: the other
    # T-shirt failed QC and the cap passed. The fee was taken whole by the first payout
    # that bore it: the T-shirt's refund in order R1, R2, the cap's credit (1.58 for 2.86)
    # in order R2, R1.
    made = harness(mode, SHRUNK, RefundTrigger.ON_RECEIVED, *TEE_AND_CAP)
    requested = [
        RequestLine(order_line_id="L1", quantity=2, outcome=Refund()),
        RequestLine(order_line_id="L2", quantity=1, outcome=StoreCredit()),
    ]
    r1 = [passed("L1")]
    r2 = [passed("L1", qc="fail"), passed("L2")]
    receipts = [[r1, r2][index] for index in order_of_receipts]
    paid, status = run(made, requested, receipts)
    assert status == "closed"
    return paid


@pytest.mark.parametrize("mode", MODES)
def test_the_kind_of_money_that_bears_the_fee_does_not_depend_on_the_order_of_receipts(
    mode: str,
) -> None:
    # 1.28 over 2.00, 2.00 and 2.86: 0.37, 0.37 and 0.54 (the extra cent to the largest
    # remainder). The T-shirt paid refunds 2.00 - 0.37, the cap credits 2.86 - 0.54; the
    # T-shirt that failed QC owes its 0.37, charged when the return completes.
    expected = {
        "refund": eur("1.63"),
        "store_credit": eur("2.32"),
        "charged": eur("0.37"),
        "given_back": eur("0.00"),
    }
    assert shrunk(mode, (0, 1)) == expected
    assert shrunk(mode, (1, 0)) == expected


def test_both_modes_pay_the_same_money_per_kind() -> None:
    assert shrunk("native", (1, 0)) == shrunk("tags", (1, 0)) == shrunk("tags", (0, 1))


# -- the shares ------------------------------------------------------------------------------


def line(
    line_id: str, *amounts: str, outcome: object = None, reason: str = "unwanted"
) -> ReturnLine:
    return ReturnLine(
        id=line_id,
        order_line_id=line_id,
        sku="S",
        variant_id="v",
        quantity=len(amounts),
        outcome=outcome or Refund(),  # type: ignore[arg-type]
        reason=ReturnReason[reason.upper()],
        unit_amounts=tuple(eur(amount) for amount in amounts),
        units=tuple(range(len(amounts))),
    )


def test_shares_add_up_to_the_fee_with_ties_to_the_earlier_line_then_unit() -> None:
    # 1.00 over three units paid alike: 0.34 to the first, ties broken by line, then unit.
    lines = [line("R1", "5.00", "5.00"), line("R2", "5.00")]
    shares = unit_shipping_fees(eur("1.00"), lines, FeePolicy())
    assert shares == {"R1": (eur("0.34"), eur("0.33")), "R2": (eur("0.33"),)}
    lines = [line("R2", "5.00"), line("R1", "5.00", "5.00")]
    assert unit_shipping_fees(eur("1.00"), lines, FeePolicy())["R2"] == (eur("0.34"),)


def test_lines_whose_fees_are_waived_bear_no_share() -> None:
    even = line("R1", "10.00", outcome=Exchange(variant_id="x"))
    faulty = line("R2", "10.00", reason="defective")
    paid = line("R3", "10.00")
    shares = unit_shipping_fees(eur("3.00"), [even, faulty, paid], FeePolicy())
    assert shares == {"R1": (eur("0.00"),), "R2": (eur("0.00"),), "R3": (eur("3.00"),)}
    assert not any(unit_shipping_fees(eur("3.00"), [even, faulty], FeePolicy())["R1"])


@pytest.mark.parametrize("groups", [(1, 2), (2, 1), (1, 1, 1)], ids=str)
def test_parts_settled_apart_pay_the_whole_fee_and_its_tax_in_their_own_kind(
    groups: tuple[int, ...],
) -> None:
    # Three refunded units (1.00, 2.00, 3.00) and a credited one (4.00); a 2.00 fee with
    # 20 % tax added (2.40: 0.24, 0.48, 0.72 and 0.96): whichever parts settle together,
    # the refund bears the refunded units' shares and the credit the credited unit's, and
    # the parts add up to the whole.

    fees = FeePolicy(return_shipping=Fixed(eur("2.00"), tax=20))
    refunded, credited = (
        line("R1", "1.00", "2.00", "3.00"),
        line("R2", "4.00", outcome=StoreCredit()),
    )
    lines = [refunded, credited]
    whole = settle("EUR", [(refunded, 3, 0), (credited, 1, 0)], fees=fees)
    assert (whole.refund, whole.store_credit) == (eur("4.56"), eur("3.04"))
    parts, start = [], 0
    for units in groups:
        parts.append(settle("EUR", [(refunded, units, start)], fees=fees, shipping_lines=lines))
        start += units
    parts.append(settle("EUR", [(credited, 1, 0)], fees=fees, shipping_lines=lines))
    for name in ("refund", "store_credit", "return_shipping_fee", "return_shipping_fee_tax"):
        assert Money.sum((getattr(p, name) for p in parts), "EUR") == getattr(whole, name), name
    assert Money.sum((p.refund_tax for p in parts), "EUR") == whole.refund_tax


# -- other cases of the kind, every order of receipts, both modes -----------------------------

THREE = (("L1", "12.00", 2), ("L2", "7.50", 1), ("L3", "20.00", 1))


def every_order(
    mode: str,
    fees: FeePolicy,
    trigger: RefundTrigger,
    ordered: tuple[tuple[str, str, int], ...],
    requested: list[RequestLine],
    receipts: list[list[ReceivedLine]],
) -> dict[str, Money]:
    """The money by kind, checked the same for every order of ``receipts``."""
    seen = []
    for shuffled in permutations(receipts):
        made = harness(mode, fees, trigger, *ordered)
        paid, _ = run(made, requested, list(shuffled))
        seen.append(paid)
    assert all(paid == seen[0] for paid in seen), seen
    return seen[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("trigger", [RefundTrigger.ON_RECEIVED, RefundTrigger.ON_CLOSE], ids=str)
def test_three_lines_refund_credit_and_exchange(mode: str, trigger: RefundTrigger) -> None:
    # Two units at 12.00 refunded, one at 7.50 credited, one at 20.00 exchanged for another
    # (the exchange waives its fees): a 3.00 fee over 12.00, 12.00 and 7.50 of 31.50 is
    # 1.14, 1.14 and 0.72 (the extra cent to the largest remainder). One 12.00 unit fails
    # QC: its 1.14 is owed.
    fees = FeePolicy(return_shipping=eur("3.00"))
    requested = [
        RequestLine(order_line_id="L1", quantity=2),
        RequestLine(order_line_id="L2", quantity=1, outcome=StoreCredit()),
        RequestLine(order_line_id="L3", quantity=1, outcome=Exchange(variant_id="l3-b")),
    ]
    receipts = [
        [passed("L1")],
        [passed("L1", qc="fail"), passed("L2")],
        [passed("L3")],
    ]
    paid = every_order(mode, fees, trigger, THREE, requested, receipts)
    assert paid == {
        "refund": eur("10.86"),
        "store_credit": eur("6.78"),
        "charged": eur("1.14"),
        "given_back": eur("0.00"),
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("payout_only", [False, True], ids=["owed", "only-from-payout"])
def test_a_fee_larger_than_a_units_worth(mode: str, payout_only: bool) -> None:
    # A 1.00 unit refunded and a 9.00 unit credited, a 15.00 fee: shares 1.50 and 13.50,
    # each bounded by its own payout. What no payout bears (0.50 + 4.50) is owed, or
    # waived under fees_only_from_payout; never taken from the other kind.
    fees = FeePolicy(return_shipping=eur("15.00"), fees_only_from_payout=payout_only)
    ordered = (("L1", "1.00", 1), ("L2", "9.00", 1))
    requested = [
        RequestLine(order_line_id="L1", quantity=1),
        RequestLine(order_line_id="L2", quantity=1, outcome=StoreCredit()),
    ]
    receipts = [[passed("L1")], [passed("L2")]]
    paid = every_order(mode, fees, RefundTrigger.ON_RECEIVED, ordered, requested, receipts)
    assert (paid["refund"], paid["store_credit"]) == (eur("0.00"), eur("0.00"))
    assert paid["charged"] - paid["given_back"] == (eur("0.00") if payout_only else eur("5.00"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("payout_only", [False, True], ids=["owed", "only-from-payout"])
def test_a_unit_that_fails_qc_takes_its_share_with_it(mode: str, payout_only: bool) -> None:
    # Two caps at 10.00 refunded, a 5.00 fee: 2.50 each. One fails QC: the other is
    # refunded 7.50 whenever it comes; the failed cap's 2.50 is owed when the return
    # completes (or waived, fees_only_from_payout), never taken from the other's refund.
    fees = FeePolicy(return_shipping=eur("5.00"), fees_only_from_payout=payout_only)
    ordered = (("L1", "10.00", 2),)
    requested = [RequestLine(order_line_id="L1", quantity=2)]
    receipts = [[passed("L1")], [passed("L1", qc="fail")]]
    paid = every_order(mode, fees, RefundTrigger.ON_RECEIVED, ordered, requested, receipts)
    assert paid["refund"] == eur("7.50")
    assert paid["charged"] == (eur("0.00") if payout_only else eur("2.50"))


TIMINGS = [RefundTrigger.ON_HANDED_IN, RefundTrigger.ON_RECEIVED, RefundTrigger.ON_CLOSE]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("trigger", TIMINGS, ids=str)
def test_the_same_money_whenever_the_refund_is_paid(mode: str, trigger: RefundTrigger) -> None:
    # A 12.00 unit and a 7.50 unit refunded, a 20.00 unit credited, a 4.00 fee: 1.21, 0.76
    # and 2.03 (the extra cents to the largest remainders), on the hand-in, on receipt or
    # at completion.
    fees = FeePolicy(return_shipping=eur("4.00"))
    ordered = (("L1", "12.00", 1), ("L2", "7.50", 1), ("L3", "20.00", 1))
    requested = [
        RequestLine(order_line_id="L1", quantity=1),
        RequestLine(order_line_id="L2", quantity=1),
        RequestLine(order_line_id="L3", quantity=1, outcome=StoreCredit()),
    ]
    receipts = [[passed("L3")], [passed("L1"), passed("L2")]]
    paid = every_order(mode, fees, trigger, ordered, requested, receipts)
    assert (paid["refund"], paid["store_credit"]) == (eur("17.53"), eur("17.97"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("payout_only", [False, True], ids=["owed", "only-from-payout"])
def test_an_exchange_that_bears_fees_has_the_refunded_units_carry_its_share(
    mode: str, payout_only: bool
) -> None:
    # The T-shirt (25.00) for another, fees applying to exchanges too, and both caps
    # (10.00 each) refunded, a 5.00 fee: the caps pay out, so they carry the whole fee
    # (2.50 each), whenever they are paid. Had the T-shirt kept a share of its own, the
    # caps' refund would take it when paid with the exchange at completion, and the
    # exchange (paying nothing out) would leave it owed or waived when paid before.
    fees = FeePolicy(
        return_shipping=eur("5.00"), waive_for_exchanges=False, fees_only_from_payout=payout_only
    )
    ordered = (("L1", "25.00", 1), ("L2", "10.00", 2))
    requested = [
        RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l")),
        RequestLine(order_line_id="L2", quantity=2),
    ]
    receipts = [[passed("L2")], [passed("L1"), passed("L2")]]
    for trigger in TIMINGS:
        paid = every_order(mode, fees, trigger, ordered, requested, receipts)
        assert (paid["refund"], paid["charged"]) == (eur("15.00"), eur("0.00")), trigger


@pytest.mark.parametrize("mode", MODES)
def test_an_exchange_alone_bears_the_fee_from_its_own_difference(mode: str) -> None:
    # Both caps (10.00 each) for others at 8.00, fees applying to exchanges: no unit pays
    # out, so the exchanged units bear the 3.00 fee, from the exchange's 4.00 difference.
    fees = FeePolicy(return_shipping=eur("3.00"), waive_for_exchanges=False)
    both = Exchange(variant_id="cap-x", quantity=2, unit_price=eur("8.00"))
    requested = [RequestLine(order_line_id="L1", quantity=2, outcome=both)]
    receipts = [[passed("L1")], [passed("L1")]]
    ordered = (("L1", "10.00", 2),)
    paid = every_order(mode, fees, RefundTrigger.ON_RECEIVED, ordered, requested, receipts)
    assert (paid["refund"], paid["charged"]) == (eur("1.00"), eur("0.00"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("worth", ["0.00", "1.00"])
def test_a_refunded_unit_paid_before_an_exchange_for_less_that_bears_fees(
    mode: str, worth: str
) -> None:
    # A unit worth ``worth`` refunded, a 176.16 unit exchanged for a free item (the rest
    # refunded), fees applying to exchanges, an 8.24 fee, the refund paid on receipt. A
    # unit worth nothing bears no fee: the exchange bears it from its difference (167.92
    # back). A unit worth 1.00 bears it whole, 7.24 of it owed when it is paid; the
    # exchange's processing call, later, is not short of that (it was charged apart,
    # not netted against the items). Found by the stateful model (seed 70): the call's
    # figure took the fee owed before off the refund, and the return went to review.
    fees = FeePolicy(return_shipping=eur("8.24"), waive_for_exchanges=False)
    ordered = (("L1", worth, 1), ("L2", "176.16", 1))
    free = Exchange(variant_id="v-new", unit_price=eur("0.00"))
    requested = [
        RequestLine(order_line_id="L1", quantity=1),
        RequestLine(order_line_id="L2", quantity=1, outcome=free),
    ]
    receipts = [[passed("L1")], [passed("L2")]]
    paid = every_order(mode, fees, RefundTrigger.ON_RECEIVED, ordered, requested, receipts)
    if worth == "0.00":
        assert (paid["refund"], paid["charged"]) == (eur("167.92"), eur("0.00"))
    else:
        assert (paid["refund"], paid["charged"]) == (eur("176.16"), eur("7.24"))
