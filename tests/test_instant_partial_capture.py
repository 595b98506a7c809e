"""An instant exchange whose exchanged units come back in part: the authorization's capture
pays for the new items whose units failed QC, and the units accepted pay for their own.

The authorization is taken for the worth of every exchanged unit; capturing all of it when
only some failed made the customer pay twice for the items of the units that came back
(their units' worth and the capture), in both modes. In native mode an upsell's balance
paid up front with the exchange's outbound shipping went, besides, to a person: the
settlement held the shipping paid by the capture, and the figure for the platform took it
out of the balance as well."""

from __future__ import annotations

import attrs
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
from returnflow import Exchange, FeePolicy, RequestLine, ReturnPolicy, ReturnReason
from returnflow.domain.model import QcResult
from returnflow.domain.policy import RefundTrigger, ReleaseTrigger


def caps_for(price: str | None) -> RequestLine:
    """Both caps (10.00 each) for one new cap priced ``price`` (``None``: their worth)."""
    new = Exchange(variant_id="cap-b", unit_price=eur(price) if price else None)
    return RequestLine(order_line_id="L2", quantity=2, outcome=new)


@pytest.mark.parametrize("mode", ["tags", "native"])
@pytest.mark.parametrize(
    ("price", "shipping", "prepaid"),
    [(None, None, None), ("30.00", "3.00", "13.00")],
    ids=["even", "upsell-with-shipping"],
)
def test_the_capture_pays_only_for_the_items_whose_units_failed_qc(
    mode: str, price: str | None, shipping: str | None, prepaid: str | None
) -> None:
    # The T-shirt (25.00) for another at the same price and both caps for a new cap, an
    # instant exchange released when handed in: 45.00 authorized. The T-shirt fails QC,
    # the caps pass: the customer keeps the new T-shirt and pays for it (25.00 captured);
    # the caps paid for their new cap (and an upsell's difference and the outbound
    # shipping were paid up front). Before, all 45.00 was captured.
    fees = FeePolicy(exchange_shipping=eur(shipping) if shipping else None)
    policy = ReturnPolicy(
        platform_mode=mode, exchange_release=ReleaseTrigger.ON_HANDED_IN, fees=fees
    )
    made = native_harness(policy)
    return_id = request(made, swap("25.00"), caps_for(price))
    tee, cap = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id, qc=QcResult.FAIL), passed(cap.id, 2))
    closed_without_review(made, return_id)
    payments = [(p.kind, p.amount) for p in made.ports.payments.payments]
    charged = [("charge", eur(prepaid))] if prepaid else []
    assert payments == [*charged, ("authorization", eur("45.00")), ("capture", eur("25.00"))]
    assert made.ports.commerce.refunds == []
    if mode == "native":
        there = made.service.get(SHOP, return_id).refs.platform_return_id or ""
        assert platform(made).refunded(SHOP, there) == eur("0.00")


def test_outbound_shipping_waived_for_the_items_settled_is_not_counted_twice() -> None:
    # As above, the caps for a dearer cap, sent back as the wrong item: a reason that waives
    # the fees, the exchange's outbound shipping (3.00) among them. The balance paid up
    # front (13.00) counted on the T-shirt's reason, which waives nothing; the T-shirt fails
    # QC, its item is paid by the capture, and the settlement of the caps' item waives the
    # shipping and gives it back. The figure for the platform took the shipping out of the
    # balance paid anyway (owed 7.00 against the platform's 10.00) and sent the return to
    # a person.
    fees = FeePolicy(
        exchange_shipping=eur("3.00"), waive_for_reasons=frozenset({ReturnReason.WRONG_ITEM})
    )
    policy = ReturnPolicy(
        platform_mode="native", exchange_release=ReleaseTrigger.ON_HANDED_IN, fees=fees
    )
    made = native_harness(policy)
    caps = attrs.evolve(caps_for("30.00"), reason=ReturnReason.WRONG_ITEM)
    return_id = request(made, swap("25.00"), caps)
    tee, cap = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id, qc=QcResult.FAIL), passed(cap.id, 2))
    closed_without_review(made, return_id)
    payments = [(p.kind, p.amount) for p in made.ports.payments.payments]
    assert payments == [
        ("charge", eur("13.00")),
        ("authorization", eur("45.00")),
        ("capture", eur("25.00")),
        ("refund", eur("3.00")),
    ]


@pytest.mark.parametrize("caps_back", [1, 2])
def test_outbound_shipping_the_refunded_units_paid_is_out_of_the_platform_figure(
    caps_back: int,
) -> None:
    # The T-shirt (25.00) for another at the same price, the caps (10.00 each) refunded;
    # the exchange's outbound shipping (12.00 or 23.00) is more than the caps are worth,
    # so the rest (2.00 or 3.00) is paid up front. The T-shirt fails QC: the capture pays
    # for its new item, and the caps' payout pays the shipping the balance left unpaid (the
    # settlement's exchange_total), so nothing is refunded. The platform, which never
    # carries the outbound shipping, refunds the caps once the capture paid the item; the
    # figure for it left out all but the shipping paid up front and sent the return to a
    # person.
    shipping = {1: "12.00", 2: "23.00"}[caps_back]
    policy = ReturnPolicy(
        platform_mode="native",
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        fees=FeePolicy(exchange_shipping=eur(shipping)),
    )
    made = native_harness(policy)
    return_id = request(made, swap("25.00"), caps(caps_back))
    tee, cap = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id, qc=QcResult.FAIL), passed(cap.id, caps_back))
    closed_without_review(made, return_id)
    payments = [(p.kind, p.amount) for p in made.ports.payments.payments]
    prepaid = {1: "2.00", 2: "3.00"}[caps_back]
    assert payments == [
        ("charge", eur(prepaid)),
        ("authorization", eur("25.00")),
        ("capture", eur("25.00")),
    ]
    assert made.ports.commerce.refunds == []
    there = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    assert platform(made).refunded(SHOP, there) == eur("0.00")


@pytest.mark.parametrize("mode", ["tags", "native"])
def test_an_upsell_left_unpaid_by_the_capture_is_charged_after_an_early_refund(mode: str) -> None:
    # The T-shirt (25.00) for a dearer one (40.00), both caps (20.00) refunded on receipt:
    # the caps' payout was to pay the difference (15.00), nothing is asked up front. The
    # T-shirt fails QC and the caps pass in the same receipt: the caps are refunded at
    # once (20.00), the capture (25.00) pays for the new T-shirt up to its old one's worth,
    # and completion, settling no unit, left the difference unpaid: the customer kept
    # 15.00 (tags mode) or the platform's figure (5.00) sent the return to a person.
    policy = ReturnPolicy(
        platform_mode=mode,
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        refund_trigger=RefundTrigger.ON_RECEIVED,
    )
    made = native_harness(policy)
    return_id = request(made, swap("40.00"), caps())
    tee, cap = made.service.get(SHOP, return_id).lines
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed(tee.id, qc=QcResult.FAIL), passed(cap.id, 2))
    closed_without_review(made, return_id)
    payments = [(p.kind, p.amount) for p in made.ports.payments.payments]
    assert payments == [
        ("authorization", eur("25.00")),
        ("capture", eur("25.00")),
        ("charge", eur("15.00")),
    ]
    if mode == "tags":
        assert [r.amount for r in made.ports.commerce.refunds] == [eur("20.00")]
    else:
        there = made.service.get(SHOP, return_id).refs.platform_return_id or ""
        assert platform(made).refunded(SHOP, there) == eur("20.00")
