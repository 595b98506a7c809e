"""An exchanged line's restocking fee under ``fees_only_from_payout`` with
``waive_for_exchanges=False``: returnflow and the platform must agree on the figure, so a
native return is not sent to a person, and the money must not depend on when the refund is
paid (docs/money.md, "When fees are taken"). And an instant upsell whose exchanged unit
never comes back still pays its outbound shipping."""

from __future__ import annotations

import pytest

from _builders import SHOP, eur, native_harness, order, order_line, passed, platform, receive
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    FeePolicy,
    Money,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
)
from returnflow.domain.fees import Percent
from returnflow.domain.model import QcResult
from returnflow.domain.policy import RefundTrigger, ReleaseTrigger
from returnflow.testing import Harness

FEES = FeePolicy(
    return_shipping=eur("3.00"),
    restocking=Percent(10),
    waive_for_exchanges=False,
    fees_only_from_payout=True,
)


def handed_in(made: Harness, return_id: str) -> None:
    scan = CarrierUpdate(
        shop=SHOP, return_id=return_id, event_id="scan", status=CarrierStatus.PICKED_UP
    )
    made.service.handle(scan)


def refunded(made: Harness, return_id: str) -> Money:
    there = made.service.get(SHOP, return_id).refs.platform_return_id
    if there is not None:
        return platform(made).refunded(SHOP, there)
    return Money.sum((r.amount for r in made.ports.commerce.refunds), "EUR")


def even_exchange_first(mode: str, trigger: RefundTrigger) -> tuple[Money, tuple[str, ...]]:
    # A 10.00 cap refunded and a 20.00 jacket exchanged for another size; the jacket comes
    # back first, then the cap.
    made = Harness(policy=ReturnPolicy(platform_mode=mode, fees=FEES, refund_trigger=trigger))
    lines = [order_line("L1", "CAP", "10.00"), order_line("L3", "JACKET", "20.00")]
    made.ports.commerce.add_order(order(SHOP, "2001", lines))
    requested = [
        RequestLine(order_line_id="L1", quantity=1),
        RequestLine(order_line_id="L3", quantity=1, outcome=Exchange(variant_id="jacket-l")),
    ]
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="2001", lines=requested))
    cap, jacket = (line.id for line in record.lines)
    handed_in(made, record.id)
    receive(made, record.id, "r1", passed(jacket))
    receive(made, record.id, "r2", passed(cap))
    return refunded(made, record.id), made.service.get(SHOP, record.id).review_reasons


def test_an_even_exchange_received_first_agrees_with_the_platform_and_the_timing() -> None:
    # The cap pays 10.00 - 1.00 restocking - 3.00 fee (6.00) and carries the jacket's 2.00
    # restocking, whenever it is paid: 4.00 in every mode and timing.
    seen = {
        (mode, trigger): even_exchange_first(mode, trigger)
        for mode in ("tags", "native")
        for trigger in (RefundTrigger.ON_RECEIVED, RefundTrigger.ON_CLOSE)
    }
    assert all(reasons == () for _, reasons in seen.values()), seen
    assert {amount for amount, _ in seen.values()} == {eur("4.00")}, seen


def upsell_with_a_cap_failing(mode: str) -> tuple[Money, tuple[str, ...]]:
    # The T-shirt (25.00) for one at 40.00, both caps (10.00 each) refunded; one cap fails QC.
    made = native_harness(ReturnPolicy(platform_mode=mode, fees=FEES))
    requested = [
        RequestLine(
            order_line_id="L1",
            quantity=1,
            outcome=Exchange(variant_id="tee-l", unit_price=eur("40.00")),
        ),
        RequestLine(order_line_id="L2", quantity=2),
    ]
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=requested))
    tee, cap = (line.id for line in record.lines)
    handed_in(made, record.id)
    receive(made, record.id, "r1", passed(tee), passed(cap), passed(cap, qc=QcResult.FAIL))
    charged = Money.sum((c.args["amount"] for c in made.ports.payments.calls_to("charge")), "EUR")
    return charged, made.service.get(SHOP, record.id).review_reasons


def test_an_upsell_whose_refunded_cap_fails_qc_agrees_with_the_platform() -> None:
    # 40.00 - 25.00 - (10.00 - 1.00 restocking - 1.25 of the T-shirt's - 0.25 fee): the
    # caps carry the T-shirt's 2.50 restocking, the failed cap's shares are waived, and
    # the quote left 2.50 of the 3.00 return shipping fee off (no payout was to bear it).
    tags = upsell_with_a_cap_failing("tags")
    assert tags == upsell_with_a_cap_failing("native") == (eur("7.50"), ())


@pytest.mark.parametrize("mode", ["tags", "native"])
def test_an_instant_upsell_never_back_still_pays_its_outbound_shipping(mode: str) -> None:
    # The T-shirt (25.00) for one at 40.00 (outbound shipping 2.00), both caps (10.00 each)
    # refunded, released on an authorization of 25.00. Both caps come back, the T-shirt
    # never does. Had it come back: 20.00 + 25.00 - 40.00 - 2.00 = 3.00 back. It did not,
    # so its 25.00 is captured and the refund is still 3.00 (the customer pays 42.00 for
    # the new T-shirt and its shipping: 25.00 captured, 17.00 of the caps' 20.00).
    policy = ReturnPolicy(
        platform_mode=mode,
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        instant_exchange_return_days=5,
        stuck_after={},
        fees=FeePolicy(exchange_shipping=eur("2.00")),
    )
    made = native_harness(policy)
    upsell = Exchange(variant_id="tee-l", unit_price=eur("40.00"))
    requested = [
        RequestLine(order_line_id="L1", quantity=1, outcome=upsell),
        RequestLine(order_line_id="L2", quantity=2),
    ]
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=requested))
    _, cap = (line.id for line in record.lines)
    handed_in(made, record.id)
    receive(made, record.id, "r1", passed(cap, 2))
    made.clock.advance(days=6)
    made.service.tick()
    made.service.close(SHOP, record.id, unreceived="nothing", exchange="release")
    payments = [(p.kind, str(p.amount)) for p in made.ports.payments.payments]
    assert payments == [("authorization", "25.00 EUR"), ("capture", "25.00 EUR")]
    assert refunded(made, record.id) == eur("3.00")


def test_an_instant_upsell_never_back_whose_shipping_was_paid_up_front_is_not_reviewed() -> None:
    # The T-shirt (25.00) for one at 40.00 (outbound shipping 2.00), both caps refunded
    # with a 5.00 return shipping fee: the caps pay 15.00 of the 17.00 difference, 2.00 is
    # charged up front. The T-shirt never comes back: its 25.00 is captured, nothing else
    # is owed or refunded, and the platform agrees.
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        instant_exchange_return_days=5,
        stuck_after={},
        fees=FeePolicy(return_shipping=eur("5.00"), exchange_shipping=eur("2.00")),
    )
    made = native_harness(policy)
    upsell = Exchange(variant_id="tee-l", unit_price=eur("40.00"))
    requested = [
        RequestLine(order_line_id="L1", quantity=1, outcome=upsell),
        RequestLine(order_line_id="L2", quantity=2),
    ]
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=requested))
    _, cap = (line.id for line in record.lines)
    handed_in(made, record.id)
    receive(made, record.id, "r1", passed(cap, 2))
    made.clock.advance(days=6)
    made.service.tick()
    made.service.close(SHOP, record.id, unreceived="nothing", exchange="release")
    payments = [(p.kind, str(p.amount)) for p in made.ports.payments.payments]
    assert payments == [
        ("charge", "2.00 EUR"),
        ("authorization", "25.00 EUR"),
        ("capture", "25.00 EUR"),
    ]
    assert made.service.get(SHOP, record.id).review_reasons == ()


def even_instant_exchange_failing_qc(
    first: str,
) -> tuple[list[tuple[str, str]], Money, tuple[str, ...]]:
    # The T-shirt (25.00) exchanged for another size (outbound shipping 2.00), released on
    # an authorization; a cap (10.00) refunded on receipt. The T-shirt fails QC: its
    # authorization is captured and its outbound shipping charged apart from the cap's
    # refund, received before it or with it.
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        refund_trigger=RefundTrigger.ON_RECEIVED,
        fees=FeePolicy(exchange_shipping=eur("2.00")),
    )
    made = native_harness(policy)
    requested = [
        RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l")),
        RequestLine(order_line_id="L2", quantity=1),
    ]
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=requested))
    tee, cap = (line.id for line in record.lines)
    handed_in(made, record.id)
    receipts = {"tee": passed(tee, qc=QcResult.FAIL, note="worn"), "cap": passed(cap)}
    for n, name in enumerate((first, "cap" if first == "tee" else "tee")):
        receive(made, record.id, f"r{n}", receipts[name])
    payments = [(p.kind, str(p.amount)) for p in made.ports.payments.payments]
    after = made.service.get(SHOP, record.id)
    return payments, refunded(made, record.id), after.review_reasons


@pytest.mark.parametrize("first", ["tee", "cap"])
def test_an_instant_exchange_failing_qc_charges_its_outbound_shipping_in_any_order(
    first: str,
) -> None:
    payments, refund, reasons = even_instant_exchange_failing_qc(first)
    assert payments == [
        ("authorization", "25.00 EUR"),
        ("capture", "25.00 EUR"),
        ("charge", "2.00 EUR"),
    ]
    assert refund == eur("10.00")
    assert reasons == ()


TIMINGS = [
    (mode, trigger)
    for mode in ("tags", "native")
    for trigger in (RefundTrigger.ON_RECEIVED, RefundTrigger.ON_CLOSE)
]


def even_exchange(mode: str, trigger: RefundTrigger, first: str) -> tuple[Money, tuple[str, ...]]:
    # The cap and the jacket of even_exchange_first, the cap first or both in one receipt.
    made = Harness(policy=ReturnPolicy(platform_mode=mode, fees=FEES, refund_trigger=trigger))
    lines = [order_line("L1", "CAP", "10.00"), order_line("L3", "JACKET", "20.00")]
    made.ports.commerce.add_order(order(SHOP, "2001", lines))
    requested = [
        RequestLine(order_line_id="L1", quantity=1),
        RequestLine(order_line_id="L3", quantity=1, outcome=Exchange(variant_id="jacket-l")),
    ]
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="2001", lines=requested))
    cap, jacket = (line.id for line in record.lines)
    handed_in(made, record.id)
    if first == "cap":
        receive(made, record.id, "r1", passed(cap))
        receive(made, record.id, "r2", passed(jacket))
    else:
        receive(made, record.id, "r1", passed(cap), passed(jacket))
    return refunded(made, record.id), made.service.get(SHOP, record.id).review_reasons


@pytest.mark.parametrize("first", ["cap", "both"])
def test_an_even_exchange_agrees_with_the_platform_and_the_timing_in_any_order(
    first: str,
) -> None:
    seen = {timing: even_exchange(*timing, first) for timing in TIMINGS}
    assert all(reasons == () for _, reasons in seen.values()), seen
    assert {amount for amount, _ in seen.values()} == {eur("4.00")}, seen


def tee_for(price: str, trigger: RefundTrigger, mode: str, *receipts: str) -> tuple[Money, ...]:
    # The T-shirt (25.00) for one at ``price``, the caps (10.00 each) refunded; each of
    # ``receipts`` one receipt: "tee", "caps" (both pass), "caps, one failing".
    made = native_harness(ReturnPolicy(platform_mode=mode, fees=FEES, refund_trigger=trigger))
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
    handed_in(made, record.id)
    units = {
        "tee": (passed(tee),),
        "caps": (passed(cap, 2),),
        "caps, one failing": (passed(cap), passed(cap, qc=QcResult.FAIL)),
    }
    for number, receipt in enumerate(receipts):
        receive(
            made,
            record.id,
            f"r{number}",
            *(unit for part in receipt.split(" + ") for unit in units[part]),
        )
    charged = Money.sum((c.args["amount"] for c in made.ports.payments.calls_to("charge")), "EUR")
    reviewed = made.service.get(SHOP, record.id).review_reasons
    assert reviewed == (), reviewed
    return charged, refunded(made, record.id)


@pytest.mark.parametrize("receipts", [("tee", "caps"), ("caps", "tee"), ("tee + caps",)], ids=str)
def test_an_exchange_for_less_takes_its_restocking_from_its_payout_in_any_timing(
    receipts: tuple[str, ...],
) -> None:
    # 25.00 - 15.00 + 2 x 10.00, less 2.50 + 2 x 1.00 restocking and 3.00 return shipping.
    for mode, trigger in TIMINGS:
        assert tee_for("15.00", trigger, mode, *receipts) == (eur("0.00"), eur("22.50"))


def test_an_upsell_pays_what_it_owes_whenever_its_refunded_caps_are_paid() -> None:
    nets = {timing: tee_for("40.00", timing[1], timing[0], "tee + caps") for timing in TIMINGS}
    assert len({charged - back for charged, back in nets.values()}) == 1, nets


@pytest.mark.parametrize(
    "receipts",
    [("tee", "caps, one failing"), ("caps, one failing", "tee"), ("tee + caps, one failing",)],
    ids=str,
)
def test_an_upsell_with_a_cap_failing_agrees_with_the_platform_in_any_timing(
    receipts: tuple[str, ...],
) -> None:
    # As much as with waive_for_exchanges: the exchange bearing fees never costs less.
    nets = {timing: tee_for("40.00", timing[1], timing[0], *receipts) for timing in TIMINGS}
    assert {charged - back for charged, back in nets.values()} == {eur("7.50")}, nets
