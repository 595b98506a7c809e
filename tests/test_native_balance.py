"""Native mode: the balance an exchange leaves, on the platform return as in returnflow.

A balance charged through the Payments port is paid on the platform return; what returnflow
gives back of it (an upsell whose exchange QC cancelled, a return cancelled after paying)
is given back there too, so the platform's paid and owed figures match returnflow's. A
return the customer opened on the platform follows the platform's own hold: a balance owed
there is held and charged, one paid there is not charged again.
"""

from __future__ import annotations

import json

import pytest

from _builders import (
    NATIVE,
    ORDER_ID,
    SHOP,
    eur,
    native_harness,
    platform,
    receive,
    request,
    tee_and_caps,
)
from returnflow import (
    Exchange,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
)
from returnflow.decisions.change import Change
from returnflow.decisions.platform import plan
from returnflow.domain.policy import Completion
from returnflow.errors import InvalidRequest
from returnflow.lifecycle import effects as fx
from returnflow.ports.platform_returns import (
    PlatformExchangeLine,
    PlatformReturnLine,
    ShopifyReturnStatus,
)
from returnflow.serialization import structure, unstructure
from returnflow.testing import Harness

ON_FINISHED = Completion.ON_WAREHOUSE_FINISHED


def upsell(price: str = "40.00") -> RequestLine:
    """The 25.00 T-shirt for another size priced ``price``."""
    return RequestLine(
        order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l", unit_price=eur(price))
    )


def live(made: Harness, return_id: str) -> tuple[ShopifyReturnStatus, object, object]:
    record = made.service.get(SHOP, return_id)
    now = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    return now.status, now.balance_paid, now.balance_owed


# -- what returnflow gives back is given back on the platform ------------------------------------


def test_an_upsell_whose_exchange_qc_cancels_is_given_back_on_the_platform_too() -> None:
    made = native_harness()
    return_id = request(made, upsell())
    assert live(made, return_id) == (ShopifyReturnStatus.OPEN, eur("15.00"), None)
    receive(made, return_id, "r1", ReceivedLine(line_id=f"{return_id}-1", quantity=1, qc="fail"))
    record = made.service.get(SHOP, return_id)
    assert record.state == ("closed", "exchange_cancelled")
    [refund] = made.ports.payments.calls_to("refund")
    assert refund.args["amount"] == eur("15.00")
    [given] = platform(made).calls_to("refund_balance")
    assert given.args["amount"] == eur("15.00")
    assert given.idempotency_key.endswith("/refund_platform_balance")
    # The platform's money is returnflow's: nothing paid, nothing owed, nothing held.
    assert live(made, return_id) == (ShopifyReturnStatus.CLOSED, None, None)
    assert (
        platform(made).get_return(SHOP, record.refs.platform_return_id or "").exchange_on_hold
        is False
    )
    refunded = next(e for e in record.history if e.event == "platform_balance_refunded")
    assert refunded.payload == {
        "amount": "15.00 EUR",
        "paid": "0.00 EUR",
        "key": given.idempotency_key,
    }
    events = [entry.event for entry in record.history]
    assert events.index("balance_refunded") < events.index("platform_balance_refunded")


def test_a_return_cancelled_after_paying_gives_the_balance_back_on_the_platform() -> None:
    made = native_harness()
    return_id = request(made, upsell())
    made.service.cancel(SHOP, return_id)
    assert made.service.get(SHOP, return_id).status == "cancelled"
    assert [call.args["amount"] for call in platform(made).calls_to("refund_balance")] == [
        eur("15.00")
    ]
    assert live(made, return_id) == (ShopifyReturnStatus.CANCELED, None, None)


def test_a_refund_failing_on_the_platform_is_retried_under_the_same_key() -> None:
    made = native_harness()
    return_id = request(made, upsell())
    platform(made).fail("refund_balance")
    made.service.cancel(SHOP, return_id)
    assert live(made, return_id)[1] == eur("15.00")  # not yet given back there
    made.dispatch_due()
    first, second = platform(made).calls_to("refund_balance")
    assert (first.outcome, second.outcome) == ("failed", "ok")
    assert first.idempotency_key == second.idempotency_key
    assert live(made, return_id) == (ShopifyReturnStatus.CANCELED, None, None)
    assert made.service.get(SHOP, return_id).review_reasons == ()


def test_a_balance_already_given_back_in_the_platforms_admin_is_not_given_back_again() -> None:
    made = native_harness()
    return_id = request(made, upsell())
    live_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    platform(made).refund_balance(SHOP, live_id, eur("15.00"), idempotency_key="admin")
    made.service.cancel(SHOP, return_id)
    assert [call.idempotency_key for call in platform(made).calls_to("refund_balance")] == ["admin"]
    assert made.service.get(SHOP, return_id).review_reasons == ()


def test_a_return_with_nothing_paid_on_the_platform_asks_no_refund_there() -> None:
    made = native_harness()
    return_id = request(made, upsell("25.00"))  # an even exchange: nothing owed, nothing paid
    made.service.cancel(SHOP, return_id)
    assert platform(made).calls_to("refund_balance") == []
    assert made.ports.payments.calls_to("refund") == []


def test_the_platform_refund_effect_round_trips_through_json() -> None:
    effect = fx.RefundPlatformBalance(
        key="k", shop=SHOP, return_id="R1", order_id=ORDER_ID, version=4, amount=eur("15.00")
    )
    back = structure(json.loads(json.dumps(unstructure(effect))), fx.Effect)
    assert back == effect
    assert fx.describe(effect) == "platform_returns.refund_balance 15.00 EUR"


# -- a return the customer opened on the platform follows the platform's hold --------------------


def opened_there(made: Harness, price: str, *, paid: str | None = None) -> str:
    """The customer opens an exchange of the T-shirt on the platform (for a new one priced
    ``price``), paying ``paid`` of the balance there; returnflow adopts it."""
    theirs = platform(made).open_return(
        SHOP,
        ORDER_ID,
        [PlatformReturnLine("L1", 1)],
        exchange_lines=[PlatformExchangeLine("shop-x1", "tee-l", 1, eur(price))],
        idempotency_key="shop",
    )
    if paid is not None:
        platform(made).pay_balance(SHOP, theirs.return_id, eur(paid), idempotency_key="shop-pay")
    record = made.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id=ORDER_ID,
            lines=[upsell(price)],
            platform_return_id=theirs.return_id,
            platform_line_ids=theirs.line_ids,
            platform_exchange_line_ids=[("L1", theirs.exchange_line_ids[0][1])],
        )
    )
    return record.id


def test_a_platform_return_with_a_balance_owed_is_held_and_charged() -> None:
    made = native_harness()
    return_id = opened_there(made, "40.00")
    record = made.service.get(SHOP, return_id)
    read = next(e for e in record.history if e.event == "platform_return_read")
    assert (read.payload["exchange_on_hold"], read.payload["owed"]) == (True, "15.00 EUR")
    assert made.ports.payments.calls_to("charge")[0].args["amount"] == eur("15.00")
    assert [call.args["amount"] for call in platform(made).calls_to("pay_balance")] == [
        eur("15.00")
    ]
    assert record.exchange_status == "on_hold"
    receive(made, return_id, "r1", ReceivedLine(line_id=f"{return_id}-1", quantity=1))
    assert made.service.get(SHOP, return_id).state == ("closed", "released")


def test_a_platform_return_paid_there_is_not_charged_again() -> None:
    made = native_harness()
    return_id = opened_there(made, "40.00", paid="15.00")
    record = made.service.get(SHOP, return_id)
    assert made.ports.payments.calls == []  # paid on the platform: nothing charged here
    assert platform(made).calls_to("pay_balance")[-1].idempotency_key == "shop-pay"
    assert (record.exchange_status, record.balance_paid) == ("on_hold", eur("15.00"))
    assert [line.status for line in record.exchange_lines] == ["pending"]  # not held there
    receive(made, return_id, "r1", ReceivedLine(line_id=f"{return_id}-1", quantity=1))
    done = made.service.get(SHOP, return_id)
    assert (done.state, done.review_reasons) == (("closed", "released"), ())
    assert made.ports.payments.calls == []
    assert live(made, return_id) == (ShopifyReturnStatus.CLOSED, eur("15.00"), None)


def test_a_platform_return_paid_there_and_cancelled_is_given_back_there() -> None:
    made = native_harness()
    return_id = opened_there(made, "40.00", paid="15.00")
    made.service.cancel(SHOP, return_id)
    # Given back where it was paid: the Payments port never charged it.
    assert made.ports.payments.calls == []
    [given] = [c for c in platform(made).calls_to("refund_balance") if c.outcome == "ok"]
    assert given.args["amount"] == eur("15.00")
    assert live(made, return_id) == (ShopifyReturnStatus.CANCELED, None, None)
    assert "payments/refund" in made.ports.events.topics()


def test_a_platform_return_that_is_not_there_is_refused_naming_the_field() -> None:
    made = native_harness()
    with pytest.raises(InvalidRequest) as raised:
        made.service.request(
            ReturnRequest(
                shop=SHOP,
                order_id=ORDER_ID,
                lines=[RequestLine(order_line_id="L2", quantity=1)],
                platform_return_id="gid://Return/404",
            )
        )
    assert (raised.value.field, raised.value.value) == ("platform_return_id", "gid://Return/404")
    assert made.service.list(SHOP) == []


def test_a_platform_return_of_another_order_is_refused() -> None:
    made = native_harness()
    other = OrderSnapshot(
        id="2002",
        shop=SHOP,
        created_at=tee_and_caps().created_at,
        fulfilled_at=tee_and_caps().fulfilled_at,
        currency="EUR",
        lines=[OrderLine(id="L1", sku="S", variant_id="s", quantity=1, unit_price=eur("5"))],
    )
    made.ports.commerce.add_order(other)
    theirs = platform(made).open_return(
        SHOP, "2002", [PlatformReturnLine("L1", 1)], requested=True, idempotency_key="shop"
    )
    with pytest.raises(InvalidRequest) as raised:
        made.service.request(
            ReturnRequest(
                shop=SHOP,
                order_id=ORDER_ID,
                lines=[RequestLine(order_line_id="L2", quantity=1)],
                platform_return_id=theirs.return_id,
            )
        )
    assert raised.value.field == "platform_return_id"


# -- a balance paid on the platform stays paid there ---------------------------------------------


def test_a_balance_paid_on_the_platform_and_carried_by_a_reset_is_given_back_there() -> None:
    made = Harness(policy=ReturnPolicy(platform_mode="native", completion=ON_FINISHED))
    made.ports.commerce.add_order(tee_and_caps())
    return_id = opened_there(made, "40.00", paid="15.00")
    receive(made, return_id, "r1", ReceivedLine(line_id=f"{return_id}-1", quantity=1))
    paid_on = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    _, new = made.service.reset(SHOP, return_id)
    assert new.balance_paid == eur("15.00")
    carried = next(e for e in new.history if e.event == "balance_paid_on_platform")
    assert (carried.payload["amount"], carried.payload["platform_return"]) == ("15.00 EUR", paid_on)
    made.service.close(SHOP, new.id, exchange="cancel")  # the new items are not sent
    # Given back on the platform return it was paid on, not through the Payments port
    # (which never took it) and not on the new return's platform return.
    assert made.ports.payments.calls == []
    [given] = [c for c in platform(made).calls_to("refund_balance") if c.outcome == "ok"]
    assert (given.args["return_id"], given.args["amount"]) == (paid_on, eur("15.00"))
    assert platform(made).get_return(SHOP, paid_on).balance_paid is None
    done = made.service.get(SHOP, new.id)
    assert (done.state, done.review_reasons) == (("closed", "exchange_cancelled"), ())
    refunded = [e for e in done.history if e.event == "platform_balance_refunded"]
    assert [e.payload["paid"] for e in refunded] == ["0.00 EUR"]
    assert "payments/refund" in made.ports.events.topics()


def test_two_refunds_planned_together_are_capped_by_what_the_platform_says_was_paid() -> None:
    made = native_harness()
    return_id = opened_there(made, "40.00", paid="15.00")
    record = made.service.get(SHOP, return_id)
    change = Change(record, now=record.updated_at, actor="agent", base=record.version)
    # Two partial refunds planned in one change, the platform answering neither yet: their
    # running total, not each, is capped by the 15.00 paid there.
    change.effect(fx.RefundBalance, amount=eur("10.00"))
    change.effect(fx.RefundBalance, amount=eur("10.00"))
    plan(change, NATIVE)
    asked = [e.amount for e in change.effects if isinstance(e, fx.RefundPlatformBalance)]
    assert asked == [eur("10.00"), eur("5.00")]
    assert not any(isinstance(e, fx.RefundBalance) for e in change.effects)  # not the Payments port


def test_a_refund_the_platform_has_not_answered_yet_counts_against_the_next() -> None:
    made = native_harness()
    return_id = opened_there(made, "40.00", paid="15.00")
    record = made.service.get(SHOP, return_id)
    first = Change(record, now=record.updated_at, actor="agent", base=record.version)
    first.effect(fx.RefundBalance, amount=eur("10.00"))
    plan(first, NATIVE)
    # A later change, before the platform answered the first refund: 5.00 is left there.
    after = first.record
    second = Change(after, now=after.updated_at, actor="agent", base=first.version)
    second.effect(fx.RefundBalance, amount=eur("10.00"))
    plan(second, NATIVE)
    asked = [e.amount for e in second.effects if isinstance(e, fx.RefundPlatformBalance)]
    assert asked == [eur("5.00")]
