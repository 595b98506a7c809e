"""Native mode: returnflow's money and the platform's agree for correct returns (issue 19:
a correct return never reaches ``needs_review`` by a false difference with the platform's
figure). Each test is one kind of difference the native model once found."""

from __future__ import annotations

import pytest

from _builders import (
    SHOP,
    caps,
    closed_without_review,
    eur,
    handed_in,
    native_harness,
    passed,
    platform,
    receive,
    request,
    swap,
)
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    FeePolicy,
    Keep,
    Money,
    Outcome,
    OutcomeKind,
    Refund,
    RequestLine,
    ReturnPolicy,
)
from returnflow.domain.model import ReturnRecord
from returnflow.domain.policy import RefundTrigger, ReleaseTrigger
from returnflow.domain.settlement import Fixed, Percent
from returnflow.testing import Harness


def test_the_outbound_shipping_of_an_exchange_is_no_part_of_the_platforms_figure() -> None:
    # The T-shirt (25.00) for one at 20.00, the new item shipped for 4.00: returnflow refunds
    # 1.00. The platform return knows no shipping for exchange items (Shopify's ReturnInput
    # has none): it suggests 5.00. Compared without the outbound shipping, they agree.
    policy = ReturnPolicy(platform_mode="native", fees=FeePolicy(exchange_shipping=eur("4")))
    made = native_harness(policy)
    return_id = request(made, swap("20.00"))
    receive(made, return_id, "r1", passed("L1"))
    closed_without_review(made, return_id)
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("1.00")
    assert platform(made).refunded(SHOP, processed.args["return_id"]) == eur("1.00")


def test_an_upsell_owes_its_outbound_shipping_apart_from_the_platform_return() -> None:
    # The T-shirt (25.00) for one at 30.00 shipped for 4.00: the customer pays 9.00 up front;
    # the platform return says 5.00 is owed for its items. Both figures agree without the
    # outbound shipping, and the exchange ships.
    policy = ReturnPolicy(platform_mode="native", fees=FeePolicy(exchange_shipping=eur("4")))
    made = native_harness(policy)
    return_id = request(made, swap("30.00"))
    receive(made, return_id, "r1", passed("L1"))
    closed_without_review(made, return_id)
    assert made.ports.payments.calls_to("charge")[0].args["amount"] == eur("9.00")
    record = made.service.get(SHOP, return_id)
    assert [line.status for line in record.exchange_lines] == ["released"]


def test_an_even_exchange_for_several_new_items_costs_exactly_what_was_returned() -> None:
    # The T-shirt (25.00) for three of another variant, an even exchange: 25.00 does not
    # split into three equal prices. The platform return carries 8.34 a unit less 0.02 off
    # the line (Shopify's appliedDiscount), so its new items cost 25.00, as returnflow's.
    made = native_harness()
    even = RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="v", quantity=3))
    return_id = request(made, even)
    [opened] = platform(made).calls_to("open_return")
    [item] = opened.args["exchange_lines"]
    assert (item.unit_price, item.discount) == (eur("8.34"), eur("0.02"))
    receive(made, return_id, "r1", passed("L1"))
    closed_without_review(made, return_id)
    record = made.service.get(SHOP, return_id)
    assert [line.status for line in record.exchange_lines] == ["released"]
    there = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert (there.balance_owed, there.exchange_on_hold) == (None, False)


def test_a_cancelled_exchange_is_taken_out_of_the_platform_return() -> None:
    # The T-shirt for another at 20.00 and the caps refunded; the T-shirt fails QC, so the
    # exchange is cancelled. Its item would stay on the platform return and the platform
    # would count it against the caps' refund (Shopify's removeFromReturn takes exchange
    # items too): taken out, the platform suggests the caps' 20.00, as returnflow.
    made = native_harness()
    return_id = request(made, swap("20.00"), caps())
    receive(made, return_id, "r1", passed("L1", qc="fail"), passed("L2", 2))
    closed_without_review(made, return_id)
    record = made.service.get(SHOP, return_id)
    assert [line.status for line in record.exchange_lines] == ["cancelled"]
    units, removed = platform(made).calls_to("remove_lines")  # the T-shirt, then its item
    assert [line.quantity for line in units.args["lines"]] == [1]
    [item] = removed.args["exchange_lines"]
    assert (item.line_id, item.quantity) == (record.exchange_lines[0].platform_item_id, 1)
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("20.00")
    there = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert there.status.value == "CLOSED"


def test_a_restocking_fee_no_payout_covers_is_not_put_on_the_platform_return() -> None:
    # The T-shirt for another at 25.00 with a 10% restocking fee, taken only from a payout
    # (fees_only_from_payout): nothing is paid out, so returnflow waives the 2.50. The
    # platform return, which cannot take a fee off later, is opened without it: both sides
    # say nothing is owed, and the new item ships.
    fees = FeePolicy(restocking=Percent(10), waive_for_exchanges=False, fees_only_from_payout=True)
    made = native_harness(ReturnPolicy(platform_mode="native", fees=fees))
    return_id = request(made, swap("25.00"))
    [opened] = platform(made).calls_to("open_return")
    assert [line.restocking_fee for line in opened.args["lines"]] == [None]
    receive(made, return_id, "r1", passed("L1"))
    closed_without_review(made, return_id)
    record = made.service.get(SHOP, return_id)
    assert [line.status for line in record.exchange_lines] == ["released"]


def test_an_instant_exchange_captured_pays_for_the_items_on_the_platform_return() -> None:
    # An instant exchange: the T-shirt for one at 20.00, released on an authorization of
    # the T-shirt's 25.00. The receipt (QC failed) comes while the authorization is asked:
    # it waits, then the authorization is captured and the exchange is processed alone, the
    # T-shirt taken out. The platform says 20.00 is owed for the new item: the capture pays
    # it, so both figures agree and the platform ships the item.
    policy = ReturnPolicy(platform_mode="native", exchange_release=ReleaseTrigger.ON_HANDED_IN)
    made = native_harness(policy, auto_dispatch=False)
    return_id = request(made, swap("20.00"))
    made.service.dispatch_pending()
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L1", qc="fail"))
    for _ in range(4):
        made.dispatch_due()
    closed_without_review(made, return_id)
    record = made.service.get(SHOP, return_id)
    assert [line.status for line in record.exchange_lines] == ["released"]
    assert [call.operation for call in made.ports.payments.calls] == ["authorize", "capture"]
    [paid] = platform(made).calls_to("pay_balance")
    assert paid.args["amount"] == eur("20.00")
    there = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert (there.balance_owed, there.exchange_on_hold) == (None, False)


def test_a_capture_given_back_when_the_units_come_is_no_refund_of_the_return() -> None:
    # An instant exchange whose parcel went back to the sender: the authorization is
    # captured. Then the units come and pass QC: the capture is given back and the exchange
    # settles evenly. Giving the capture back is not money the platform return refunds:
    # both figures say nothing is refunded or owed.
    policy = ReturnPolicy(platform_mode="native", exchange_release=ReleaseTrigger.ON_HANDED_IN)
    made = native_harness(policy, auto_dispatch=False)
    return_id = request(made, swap("25.00"))
    made.service.dispatch_pending()

    def scan(event_id: str, status: CarrierStatus) -> None:
        made.service.handle(
            CarrierUpdate(shop=SHOP, return_id=return_id, event_id=event_id, status=status)
        )

    scan("s1", CarrierStatus.PICKED_UP)
    scan("s2", CarrierStatus.DELIVERED)
    for _ in range(3):
        made.dispatch_due()  # authorized, released, its items processed
    scan("s3", CarrierStatus.RETURN_TO_ORIGIN)
    made.dispatch_due()
    receive(made, return_id, "r1", passed("L1"))
    for _ in range(4):
        made.dispatch_due()
    closed_without_review(made, return_id)
    operations = [call.operation for call in made.ports.payments.calls]
    assert operations == ["authorize", "capture", "refund"]
    processed = platform(made).calls_to("process")
    assert [call.args["refund"] for call in processed] == [eur("0.00")] * len(processed)


def test_a_cancelled_exchange_is_taken_out_before_a_processing_planned_before_its_removal() -> None:
    # The platform return opens late (its call waits): the receipt comes first, the T-shirt
    # fails QC, its exchange is cancelled and the caps are settled before the platform return
    # has its exchange item's id. The processing goes out before the removal planned once
    # the id is known, and takes the cancelled item out first: the figures agree.
    made = native_harness(ReturnPolicy(platform_mode="native"), auto_dispatch=False)
    return_id = request(made, swap("20.00"), caps())
    receive(made, return_id, "r1", passed("L1", qc="fail"), passed("L2", 2))
    for _ in range(4):
        made.dispatch_due()
    closed_without_review(made, return_id)
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("20.00")
    removed = [
        call.args.get("exchange_lines", ()) for call in platform(made).calls_to("remove_lines")
    ]
    assert [len(items) for items in removed] == [0, 1]  # the T-shirt's unit, then its item
    operations = [call.operation for call in platform(made).calls]
    assert operations[-3:-1] == ["remove_lines", "process"]  # the item out just before


def test_what_the_platform_asks_for_items_shipped_ahead_comes_off_the_units_refund() -> None:
    # An instant exchange (the T-shirt for one at 20.00) beside the caps, refunded when the
    # parcel is handed in: the caps are processed first, then the new item ships on the
    # authorization (the platform asks 20.00 for it), then the T-shirt comes and is
    # processed alone (the platform would refund its 25.00). What it asked for the item
    # comes off that refund: 20.00 for the caps, nothing for the item, then 5.00.
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        refund_trigger=RefundTrigger.ON_HANDED_IN,
    )
    made = native_harness(policy)
    return_id = request(made, swap("20.00"), caps())
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L1"), passed("L2", 2))
    closed_without_review(made, return_id)
    refunds = [call.args["refund"] for call in platform(made).calls_to("process")]
    assert refunds == [eur("20.00"), eur("0.00"), eur("5.00")]
    there = platform(made).get_return(
        SHOP, made.service.get(SHOP, return_id).refs.platform_return_id or ""
    )
    assert platform(made).refunded(SHOP, there.return_id) == eur("25.00")


def test_an_upsell_shipped_ahead_keeps_its_prepaid_balance_when_qc_fails() -> None:
    # An instant exchange for more: the T-shirt (25.00) for one at 40.00, 15.00 paid up
    # front, the new item shipped on an authorization of 25.00. The T-shirt fails QC: the
    # capture (25.00) and the prepaid 15.00 pay for the item the customer keeps. Giving the
    # 15.00 back would leave the item paid 25.00 of 40.00 (the platform says 15.00 is owed):
    # it is kept, and both figures agree.
    policy = ReturnPolicy(platform_mode="native", exchange_release=ReleaseTrigger.ON_HANDED_IN)
    made = native_harness(policy)
    return_id = request(made, swap("40.00"))
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L1", qc="fail"))
    closed_without_review(made, return_id)
    operations = [call.operation for call in made.ports.payments.calls]
    assert operations == ["charge", "authorize", "capture"]  # nothing given back


def test_an_upsell_approved_from_review_is_charged_and_ships() -> None:
    # Sent to review, the return opens its platform return as requested, and the platform
    # says the new item waits for a balance. That is the platform's hold, not returnflow's:
    # the approval still charges the 15.00 and holds the exchange, and it ships once the
    # T-shirt is back, the figures agreeing.
    made = native_harness(ReturnPolicy(platform_mode="native", auto_approve=False))
    return_id = request(made, swap("40.00"))
    assert made.service.get(SHOP, return_id).status == "pending_review"
    made.service.approve(SHOP, return_id)
    assert made.ports.payments.calls_to("charge")[0].args["amount"] == eur("15.00")
    receive(made, return_id, "r1", passed("L1"))
    closed_without_review(made, return_id)
    record = made.service.get(SHOP, return_id)
    assert [line.status for line in record.exchange_lines] == ["released"]


def test_items_shipped_ahead_are_paid_by_the_exchanged_units_not_by_a_refund() -> None:
    # The new item ships at hand-in (the platform asks 20.00 for it); the caps come first,
    # refunded per receipt: their 20.00 owes nothing to the item, the platform refunds them
    # in full. The T-shirt comes next: its 25.00 pays for the item, 5.00 goes back.
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        refund_trigger=RefundTrigger.ON_RECEIVED,
    )
    made = native_harness(policy)
    return_id = request(made, swap("20.00"), caps())
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L2", 2))
    assert made.service.get(SHOP, return_id).review_reasons == ()
    refunds = [call.args["refund"] for call in platform(made).calls_to("process")]
    assert refunds == [eur("0.00"), eur("20.00")]
    receive(made, return_id, "r2", passed("L1"))
    closed_without_review(made, return_id)
    refunds = [call.args["refund"] for call in platform(made).calls_to("process")]
    assert refunds == [eur("0.00"), eur("20.00"), eur("5.00")]


def _caps_then_the_tee(price: str) -> tuple[Harness, str, list[Money]]:
    """The caps come first and are refunded per receipt (a call of their own), then the
    T-shirt, exchanged for one at ``price`` shipped for 4.00 (a call of its own): the
    return closes without review; the refund of each call."""
    policy = ReturnPolicy(
        platform_mode="native",
        fees=FeePolicy(exchange_shipping=eur("4")),
        refund_trigger=RefundTrigger.ON_RECEIVED,
    )
    made = native_harness(policy)
    return_id = request(made, swap(price), caps())
    receive(made, return_id, "r1", passed("L2", 2))
    receive(made, return_id, "r2", passed("L1"))
    closed_without_review(made, return_id)
    return made, return_id, [call.args["refund"] for call in platform(made).calls_to("process")]


def test_the_outbound_shipping_is_no_part_of_the_platforms_figure_for_one_call_of_several() -> None:
    # The caps come first and are refunded per receipt (20.00, one call); the T-shirt (25.00)
    # comes next, exchanged for one at 20.00 shipped for 4.00, processed with its new item in
    # a call of its own: returnflow refunds 1.00, the platform (no shipping for exchange
    # items) computes 5.00 for that call. Compared without the outbound shipping, they agree.
    made, return_id, refunds = _caps_then_the_tee("20.00")
    assert refunds == [eur("20.00"), eur("1.00")]
    there = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    assert platform(made).refunded(SHOP, there) == eur("21.00")


def test_outbound_shipping_a_balance_paid_is_no_part_of_either_figure_for_one_call() -> None:
    # As above, the new item at 24.00 shipped for 4.00: the customer pays a 3.00 balance, the
    # T-shirt's 25.00 pays the item and 1.00 of the shipping. The platform computes 1.00 for
    # the T-shirt's call; returnflow refunds nothing, the units having paid 1.00 of shipping.
    _, _, refunds = _caps_then_the_tee("24.00")
    assert refunds == [eur("20.00"), eur("0.00")]


@pytest.mark.parametrize(("price", "prepaid"), [("25.00", "1.99"), ("40.00", "16.99")])
def test_outbound_shipping_a_balance_paid_up_front_is_no_part_of_the_owed_when_qc_fails(
    price: str, prepaid: str
) -> None:
    # An instant exchange, the T-shirt (25.00) for one at 25.00 (or 40.00) shipped for 1.99:
    # the customer pays 1.99 (or 16.99) up front, the new item ships on an authorization of
    # 25.00. The receipt (QC failed) waits for the authorization, which is captured; the
    # T-shirt is taken out and the exchange processed alone. The capture and the balance pay
    # the item and its shipping, which the platform return never carries: the platform asks
    # nothing (or the 15.00 the balance paid), and returnflow's figure is the same.
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        fees=FeePolicy(exchange_shipping=eur("1.99")),
    )
    made = native_harness(policy, auto_dispatch=False)
    return_id = request(made, swap(price))
    made.service.dispatch_pending()
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L1", qc="fail"))
    for _ in range(4):
        made.dispatch_due()
    closed_without_review(made, return_id)
    record = made.service.get(SHOP, return_id)
    assert record.balance_paid == eur(prepaid)
    assert [line.status for line in record.exchange_lines] == ["released"]
    operations = [call.operation for call in made.ports.payments.calls]
    assert operations == ["charge", "authorize", "capture"]  # nothing given back
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("0.00")


def _instant_swap_failing_qc(price: str, caps_outcome: Outcome) -> tuple[Harness, ReturnRecord]:
    """An instant exchange (released on hand-in) of the T-shirt (25.00) for one at
    ``price``, with the caps (20.00) sent back for ``caps_outcome``; the T-shirt fails QC,
    the caps pass: the return, closed without review."""
    policy = ReturnPolicy(platform_mode="native", exchange_release=ReleaseTrigger.ON_HANDED_IN)
    made = native_harness(policy)
    caps_line = RequestLine(order_line_id="L2", quantity=2, outcome=caps_outcome)
    return_id = request(made, swap(price), caps_line)
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L1", qc="fail"), passed("L2", 2))
    return made, closed_without_review(made, return_id)


@pytest.mark.parametrize(
    ("price", "caps_outcome"),
    [
        ("20.00", Refund()),
        ("25.00", Refund()),
        ("10.00", Refund()),
        ("20.00", Keep(settle=OutcomeKind.STORE_CREDIT)),
    ],
    ids=["for-less", "even", "for-much-less", "kept-for-store-credit"],
)
def test_an_instant_exchange_captured_leaves_the_other_lines_payout_whole(
    price: str, caps_outcome: Outcome
) -> None:
    # An instant exchange, the T-shirt (25.00) for one at 20.00 (25.00, 10.00), with the caps
    # (20.00) refunded or kept for store credit. The new item ships on an authorization of
    # 25.00; the T-shirt fails QC, so the authorization is captured and pays for the item:
    # the caps are paid out in full. The platform return, the T-shirt taken out, nets the
    # item against the caps (it suggests 0.00, 5.00 or 10.00); with the item paid by the
    # capture its figure is the caps' 20.00, as returnflow's.
    made, record = _instant_swap_failing_qc(price, caps_outcome)
    assert [line.status for line in record.exchange_lines] == ["released"]
    assert [call.operation for call in made.ports.payments.calls] == ["authorize", "capture"]
    processed = platform(made).calls_to("process")
    assert [call.args["exchange_lines"] != () for call in processed] == [True, False]
    paid_out = eur("20.00") if isinstance(caps_outcome, Refund) else eur("0.00")
    assert processed[-1].args["refund"] == paid_out
    there = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert there.status.value == "CLOSED"


@pytest.mark.parametrize("picked_up", [True, False], ids=["picked-up-first", "receipt-alone"])
def test_an_instant_exchange_captured_gives_back_a_restocking_fee_paid_up_front(
    picked_up: bool,
) -> None:
    # An even instant exchange of the T-shirt (25.00) with a 1.50 restocking fee, paid up
    # front. The T-shirt fails QC: the capture of 25.00 pays for the new item, and the fee,
    # for a unit never restocked, is no longer owed (the platform return drops it with the
    # T-shirt taken out: Shopify's restocking fee is the return line's). It is given back
    # through the Payments port; the platform keeps the 25.00 it holds for its item, the
    # fee having paid part of it there, and both figures agree. (The receipt alone waits
    # for the authorization: the platform is paid before the fee is given back.)
    fees = FeePolicy(restocking=Fixed(eur("1.50")), waive_for_exchanges=False)
    policy = ReturnPolicy(
        platform_mode="native", exchange_release=ReleaseTrigger.ON_HANDED_IN, fees=fees
    )
    made = native_harness(policy)
    even = RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l"))
    return_id = request(made, even)
    if picked_up:
        handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L1", qc="fail"))
    closed_without_review(made, return_id)
    payments = [(c.operation, c.args["amount"]) for c in made.ports.payments.calls]
    assert payments == [
        ("charge", eur("1.50")),
        ("authorize", eur("25.00")),
        ("capture", eur("25.00")),
        ("refund", eur("1.50")),
    ]
    assert platform(made).calls_to("refund_balance") == []
    record = made.service.get(SHOP, return_id)
    there = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert (there.status.value, there.balance_owed, there.balance_paid) == (
        "CLOSED",
        None,
        eur("25.00"),
    )


def test_a_refund_paid_early_takes_the_return_shipping_fee_when_the_exchange_failed_qc() -> None:
    # The T-shirt for another at 20.00 and the caps refunded on receipt, with a 5.00 return
    # shipping fee that applies to exchanges too. The caps pay out, so they carry the
    # whole fee (2.50 each), the T-shirt none: the caps' refund takes it (15.00) whatever
    # becomes of the exchange, as the platform return, which bears the fee from its
    # opening, suggests.
    fees = FeePolicy(return_shipping=Fixed(eur("5.00")), waive_for_exchanges=False)
    policy = ReturnPolicy(
        platform_mode="native", fees=fees, refund_trigger=RefundTrigger.ON_RECEIVED
    )
    made = native_harness(policy)
    return_id = request(made, swap("20.00"), caps())
    receive(made, return_id, "r1", passed("L1", qc="fail"), passed("L2", 2))
    record = closed_without_review(made, return_id)
    assert record.return_shipping_fee == eur("5.00")
    assert [line.status for line in record.exchange_lines] == ["cancelled"]
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("15.00")


@pytest.mark.parametrize(
    ("caps_outcome", "paid_out"),
    [(Refund(), "15.00"), (Keep(settle=OutcomeKind.STORE_CREDIT), "0.00")],
    ids=["caps-refunded", "caps-kept-for-store-credit"],
)
def test_an_instant_upsell_captured_takes_the_rest_of_the_new_items_price_from_the_payout(
    caps_outcome: Outcome, paid_out: str
) -> None:
    # An instant exchange, the T-shirt (25.00) for one at 30.00, the caps (20.00) paying the
    # 5.00 difference: nothing is paid up front. The new item ships on an authorization of
    # the T-shirt's 25.00; the T-shirt fails QC, so the capture pays 25.00 of the item and
    # the caps' payout the other 5.00: 15.00 refunded (or credited), as the platform says.
    made, record = _instant_swap_failing_qc("30.00", caps_outcome)
    assert [line.status for line in record.exchange_lines] == ["released"]
    payments = [(call.operation, call.args["amount"]) for call in made.ports.payments.calls]
    assert payments == [("authorize", eur("25.00")), ("capture", eur("25.00"))]
    processed = platform(made).calls_to("process")
    assert processed[-1].args["refund"] == eur(paid_out)
    [settled] = [entry.payload for entry in record.history if entry.event == "settled"]
    kind = "refund" if isinstance(caps_outcome, Refund) else "store_credit"
    assert settled[kind] == "15.00 EUR"
