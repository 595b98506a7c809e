"""Native mode (seed 003, Loop x Shopify native exchanges): the return lives on the
platform's own return object, through the public API only.

The platform return is opened with the return's lines (by order line), its exchange lines
and fees; exchanges sit on it (no tag, no separate hold); the money moves by processing it,
checked against the platform's own figure; restocking is a disposition apart from the
refund; what is never processed is removed; it is closed, declined or cancelled with the
return. ``tags`` mode (the default) never touches it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from _builders import (
    NATIVE,
    ORDER_ID,
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
    tee_and_caps,
)
from returnflow import (
    Claim,
    ClaimReason,
    ConfigurationError,
    Duty,
    FeePolicy,
    Fixed,
    Keep,
    Money,
    OrderLine,
    OrderSnapshot,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    Rule,
    StoreCredit,
    Then,
    WarehouseFinished,
    When,
    replacement,
)
from returnflow.domain.inbound import Disposition, PlatformReturnEvent
from returnflow.domain.policy import (
    Completion,
    MoneyAuthority,
    PlatformMode,
    RefundTrigger,
    ReleaseTrigger,
)
from returnflow.domain.settlement import Percent
from returnflow.errors import InvalidPayload, InvalidQuantity, InvalidRequest, PortError
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity
from returnflow.ports.platform_returns import (
    DutyRefund,
    PlatformExchangeLine,
    PlatformReturnLine,
    ShopifyReturnStatus,
)
from returnflow.serialization import structure, unstructure
from returnflow.service import ReturnsService
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakePorts, Harness
from returnflow.testing.platform_returns import FakePlatformReturns


def operations(made: Harness) -> list[str]:
    return [call.operation for call in platform(made).calls]


def commerce_operations(made: Harness) -> list[str]:
    return [call.operation for call in made.ports.commerce.calls]


# -- the platform return is opened and its ids written back -------------------------------------


def test_approval_opens_the_platform_return_with_lines_exchange_and_ids_written_back() -> None:
    made = native_harness()
    return_id = request(made, swap("25.00"), caps())
    record = made.service.get(SHOP, return_id)
    [opened] = platform(made).calls_to("open_return")
    assert [(line.order_line_id, line.quantity) for line in opened.args["lines"]] == [
        ("L1", 1),
        ("L2", 2),
    ]
    [item] = opened.args["exchange_lines"]
    assert (item.variant_id, item.quantity, item.unit_price) == ("tee-l", 1, eur("25.00"))
    assert opened.args["requested"] is False
    assert opened.idempotency_key == f"{SHOP}/{return_id}/1/p0/open_platform_return"
    live = platform(made).get_return(SHOP, "gid://Return/1")
    assert record.refs.platform_return_id == live.return_id
    assert dict(record.refs.platform_line_ids) == dict(live.line_ids)
    assert [line.platform_item_id for line in record.exchange_lines] == [
        dict(live.exchange_line_ids)[record.exchange_lines[0].id]
    ]
    assert record.state == ("label_sent", "on_hold")
    # No tag, no separate hold: the exchange sits on the platform return, and an even
    # exchange leaves nothing owed, so the platform does not hold it either.
    assert "add_exchange_items" not in commerce_operations(made)
    assert live.exchange_on_hold is False
    assert [line.status for line in record.exchange_lines] == ["pending"]
    assert "exchanges/hold" not in made.ports.events.topics()


def test_even_exchange_processes_the_exchange_line_with_no_refund_and_closes_both() -> None:
    made = native_harness()
    return_id = request(made, swap("25.00"))
    receive(made, return_id, "r1", passed("L1"))
    record = made.service.get(SHOP, return_id)
    assert record.state == ("closed", "released")
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("0.00")
    assert len(processed.args["exchange_lines"]) == 1
    assert record.exchange_lines[0].status == "released"
    live = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert live.status is ShopifyReturnStatus.CLOSED
    assert dict(live.exchange_processed) == {live.exchange_line_ids[0][1]: 1}
    assert platform(made).dispositions(SHOP, live.return_id) == [
        (live.line_id("L1"), 1, Disposition.RESTOCKED)
    ]
    assert not {"refund", "restock", "release_exchange"} & set(commerce_operations(made))
    # Its fulfillment was created at processing, with no hold.
    assert list(platform(made).fulfillments(SHOP, live.return_id).values()) == [False]
    assert "exchanges/hold" not in made.ports.events.topics()


def test_exchange_for_less_refunds_the_platforms_figure_removes_qc_failures_and_disposes() -> None:
    made = native_harness()
    return_id = request(made, swap("20.00"), caps())
    receive(made, return_id, "r1", passed("L1"), passed("L2"), passed("L2", qc="fail"))
    record = made.service.get(SHOP, return_id)
    assert record.state == ("closed", "released")
    live = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    # Removed first, then processed (25 - 20 for the tee, 10 for the one cap that passed).
    assert operations(made) == ["open_return", "remove_lines", "process", "dispose", "dispose"]
    assert dict(live.removed)[live.line_id("L2")] == 1
    assert platform(made).refunded(SHOP, live.return_id) == eur("15.00")
    assert record.refs.refund_ids == ("gid://Refund/1",)
    assert live.status is ShopifyReturnStatus.CLOSED
    [units_tee, units_caps] = record.platform_units
    assert (units_caps.processed, units_caps.removed, units_caps.restocked) == (1, 1, 1)
    assert (units_tee.processed, units_tee.restocked) == (1, 1)
    assert list(platform(made).fulfillments(SHOP, live.return_id).values()) == [False]
    assert "exchanges/hold" not in made.ports.events.topics()


def test_upsell_charges_the_balance_then_processes_with_no_refund() -> None:
    made = native_harness()
    return_id = request(made, swap("40.00"))
    record = made.service.get(SHOP, return_id)
    assert made.ports.payments.calls_to("charge")[0].args["amount"] == eur("15.00")
    assert record.exchange_status == "on_hold"  # paid: still on the platform return
    # The platform held the new item while 15.00 was owed; the payment is recorded there
    # and the hold goes: the item waits for processing only.
    [opened] = [entry for entry in record.history if entry.event == "platform_return_opened"]
    assert opened.payload["exchange_on_hold"] is True
    [paid] = platform(made).calls_to("pay_balance")
    assert paid.args["amount"] == eur("15.00")
    live = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert (live.exchange_on_hold, live.balance_owed) == (False, None)
    assert [line.status for line in record.exchange_lines] == ["pending"]
    assert "exchanges/hold" in made.ports.events.topics()
    receive(made, return_id, "r1", passed("L1"))
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("0.00")
    assert made.service.get(SHOP, return_id).state == ("closed", "released")
    assert list(platform(made).fulfillments(SHOP, live.return_id).values()) == [False]


def test_an_exchange_left_owing_a_fee_is_held_until_the_fee_is_paid() -> None:
    # Nothing owed at approval: the caps' refund pays the 5.00 return shipping fee. Both
    # caps fail QC, so the even exchange is processed owing the fee: the platform fulfills
    # the new item on hold, and releases it once the fee charged is paid there.
    fees = FeePolicy(return_shipping=eur("5"), waive_for_exchanges=False)
    made = native_harness(ReturnPolicy(platform_mode="native", fees=fees))
    return_id = request(made, swap("25.00"), caps())
    assert made.service.get(SHOP, return_id).exchange_lines[0].status == "pending"
    receive(made, return_id, "r1", passed("L1"), passed("L2", 2, qc="fail"))
    record = made.service.get(SHOP, return_id)
    live_id = record.refs.platform_return_id or ""
    assert made.ports.payments.calls_to("charge")[0].args["amount"] == eur("5.00")
    assert [call.args["amount"] for call in platform(made).calls_to("pay_balance")] == [eur("5.00")]
    events = [entry.event for entry in record.history]
    assert events.index("exchange_held_for_payment") < events.index("platform_balance_paid")
    topics = made.ports.events.topics()
    assert topics.index("exchanges/hold") < topics.index("exchanges/release")
    assert list(platform(made).fulfillments(SHOP, live_id).values()) == [False]
    assert [line.status for line in record.exchange_lines] == ["released"]
    assert (record.status, record.review_reasons) == ("closed", ())


def test_fees_are_on_the_platform_return_and_reduce_the_refund() -> None:
    made = native_harness(
        ReturnPolicy(platform_mode="native", fees=FeePolicy(return_shipping=eur("5")))
    )
    return_id = request(made, caps())
    [opened] = platform(made).calls_to("open_return")
    assert opened.args["return_shipping_fee"] == eur("5.00")
    receive(made, return_id, "r1", passed("L2", 2))
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("15.00")
    assert made.service.get(SHOP, return_id).status == "closed"


def test_decoupled_restock_refund_on_hand_in_then_dispose_on_receipt() -> None:
    made = native_harness(
        ReturnPolicy(platform_mode="native", refund_trigger=RefundTrigger.ON_HANDED_IN)
    )
    return_id = request(made, caps())
    handed_in(made, return_id)
    assert operations(made) == ["open_return", "process"]
    assert platform(made).calls_to("process")[0].args["refund"] == eur("20.00")
    receive(made, return_id, "r1", passed("L2", disposition="NOT_RESTOCKED"), passed("L2"))
    live_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    line = platform(made).get_return(SHOP, live_id).line_id("L2")
    assert platform(made).dispositions(SHOP, live_id) == [
        (line, 1, Disposition.RESTOCKED),
        (line, 1, Disposition.NOT_RESTOCKED),
    ]
    assert operations(made)[:3] == ["open_return", "process", "dispose"]
    assert made.service.get(SHOP, return_id).status == "closed"


# -- review, decline, cancel, expire --------------------------------------------------------------


def test_a_return_sent_to_review_is_requested_then_approved_on_the_platform() -> None:
    made = native_harness(ReturnPolicy(platform_mode="native", auto_approve=False))
    return_id = request(made, caps())
    [opened] = platform(made).calls_to("open_return")
    assert opened.args["requested"] is True
    live_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    assert platform(made).get_return(SHOP, live_id).status is ShopifyReturnStatus.REQUESTED
    made.service.approve(SHOP, return_id)
    assert platform(made).get_return(SHOP, live_id).status is ShopifyReturnStatus.OPEN


def test_a_return_declined_from_review_is_declined_on_the_platform() -> None:
    made = native_harness(ReturnPolicy(platform_mode="native", auto_approve=False))
    return_id = request(made, caps())
    made.service.decline(SHOP, return_id, "FINAL_SALE")
    live_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    assert platform(made).get_return(SHOP, live_id).status is ShopifyReturnStatus.DECLINED
    [declined] = platform(made).calls_to("decline")
    assert declined.args["reason"] == "FINAL_SALE"


@pytest.mark.parametrize("how", ["cancel", "expire"])
def test_a_cancelled_or_expired_return_cancels_the_platform_return(how: str) -> None:
    made = native_harness()
    return_id = request(made, swap("20.00"))
    getattr(made.service, how)(SHOP, return_id)
    record = made.service.get(SHOP, return_id)
    live = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert live.status is ShopifyReturnStatus.CANCELED
    assert [line.status for line in record.exchange_lines] == ["cancelled"]
    assert "cancel_exchange_items" not in commerce_operations(made)


# -- reconciliation ---------------------------------------------------------------------------


class _PricedLower(FakePlatformReturns):
    """A platform that prices the new items of an exchange 1.00 below what returnflow
    asked (the variant's price edited in the platform's admin): a real difference."""

    def open_return(
        self,
        shop: str,
        order_id: str,
        lines: Any,
        *,
        exchange_lines: Any = (),
        return_shipping_fee: Money | None = None,
        requested: bool = False,
        idempotency_key: str,
    ) -> Any:
        lowered = [attrs.evolve(x, unit_price=x.unit_price - eur("1.00")) for x in exchange_lines]
        return super().open_return(
            shop,
            order_id,
            lines,
            exchange_lines=lowered,
            return_shipping_fee=return_shipping_fee,
            requested=requested,
            idempotency_key=idempotency_key,
        )


def _mismatch(money: MoneyAuthority) -> Harness:
    """The platform prices the exchange's new item 1.00 lower than returnflow: it computes
    a refund 1.00 higher (or 1.00 less owed)."""
    ports = FakePorts()
    ports.commerce.add_order(tee_and_caps())
    policy = ReturnPolicy(platform_mode="native", platform_money=money)
    return Harness(policy=policy, ports=ports, platform_returns=_PricedLower(ports.commerce))


def test_a_money_difference_sends_the_return_to_review_with_both_figures() -> None:
    made = _mismatch(MoneyAuthority.REVIEW)
    return_id = request(made, swap("20.00"))
    receive(made, return_id, "r1", passed("L1"))
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    [reason] = record.review_reasons
    assert reason == (
        "process_platform_return failed: PortError: platform_returns.process_platform_return: "
        "the platform's refund 6.00 EUR differs from returnflow's "
        "settlement 5.00 EUR: nothing was processed"
    )
    assert platform(made).calls_to("process") == []  # nothing moved
    assert platform(made).calls_to("dispose") == []
    # A person looked and closes it: returnflow's settlement goes out, then the units are
    # disposed of.
    made.service.close(SHOP, return_id)
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert record.status == "closed"
    assert [call.args["refund"] for call in platform(made).calls_to("process")] == [eur("5.00")]
    assert len(platform(made).calls_to("dispose")) == 1


@pytest.mark.parametrize(
    ("money", "refunded"), [(MoneyAuthority.PLATFORM, "6.00"), (MoneyAuthority.RETURNFLOW, "5.00")]
)
def test_the_policy_names_the_side_that_wins_a_money_difference(
    money: MoneyAuthority, refunded: str
) -> None:
    made = _mismatch(money)
    return_id = request(made, swap("20.00"))
    receive(made, return_id, "r1", passed("L1"))
    record = made.service.get(SHOP, return_id)
    assert record.status == "closed"
    assert platform(made).calls_to("process")[0].args["refund"] == eur(refunded)
    [differs] = [entry for entry in record.history if entry.event == "platform_money_differs"]
    assert differs.payload == {"platform": "6.00 EUR", "returnflow": "5.00 EUR"}


# -- modes, configuration and failures -------------------------------------------------------


def test_tags_mode_never_touches_the_platform_return() -> None:
    made = native_harness(ReturnPolicy())
    port = FakePlatformReturns(made.ports.commerce)
    made = Harness(policy=ReturnPolicy(), ports=made.ports, platform_returns=port)
    return_id = request(made, swap("20.00"))
    receive(made, return_id, "r1", passed("L1"))
    assert port.calls == []
    assert "add_exchange_items" in commerce_operations(made)
    assert made.service.get(SHOP, return_id).refs.platform_return_id is None


def test_native_mode_without_the_port_is_a_configuration_error() -> None:
    ports = Harness().ports
    with pytest.raises(ConfigurationError) as raised:
        ReturnsService(
            store=Harness().store,
            commerce=ports.commerce,
            warehouse=ports.warehouse,
            carrier=ports.carrier,
            payments=ports.payments,
            notifier=ports.notifier,
            events=ports.events,
            policy=NATIVE,
        )
    assert raised.value.field == "platform_returns"


@pytest.mark.parametrize(("field", "value"), [("platform_mode", "shopify"), ("platform_money", 1)])
def test_a_bad_mode_or_money_authority_names_the_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ReturnPolicy(**{field: value})  # type: ignore[arg-type]
    assert (raised.value.field, raised.value.value) == (field, value)
    assert ReturnPolicy(platform_mode="native").platform_mode is PlatformMode.NATIVE


def test_a_platform_that_refuses_to_open_sends_the_return_to_a_person() -> None:
    made = native_harness()
    refusal = PortError("platform_returns", "open_return", "no", retryable=False)
    platform(made).fail("open_return", error=refusal)
    return_id = request(made, caps())
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    assert record.refs.platform_return_id is None
    assert record.review_reasons[0].startswith("open_platform_return failed")


def test_a_transient_failure_is_retried_under_the_same_key() -> None:
    made = native_harness()
    platform(made).fail("open_return")
    return_id = request(made, caps())
    assert made.service.get(SHOP, return_id).refs.platform_return_id is None
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert record.refs.platform_return_id == "gid://Return/1"
    first, second = platform(made).calls_to("open_return")
    assert first.idempotency_key == second.idempotency_key


def test_a_reset_moves_the_accepted_units_to_a_platform_return_of_their_own() -> None:
    made = native_harness(
        ReturnPolicy(platform_mode="native", completion=Completion.ON_WAREHOUSE_FINISHED)
    )
    return_id = request(made, swap("25.00"), caps())
    receive(made, return_id, "r1", passed("L1"), passed("L2"))
    old, new = made.service.reset(SHOP, return_id)
    first = platform(made).get_return(SHOP, old.refs.platform_return_id or "")
    assert first.status is ShopifyReturnStatus.CANCELED
    assert dict(first.removed) == {first.line_id("L1"): 1, first.line_id("L2"): 2}
    [_, opened] = platform(made).calls_to("open_return")
    assert [(line.order_line_id, line.quantity) for line in opened.args["lines"]] == [
        ("L1", 1),
        ("L2", 1),
    ]
    assert new.refs.platform_return_id == "gid://Return/2"
    assert [line.platform_item_id for line in new.exchange_lines] == ["gid://ExchangeLineItem/2"]


# -- inbound platform facts ------------------------------------------------------------------


def fact(made: Harness, return_id: str, event_id: str, topic: str, **extra: object) -> str:
    result = made.service.handle(
        PlatformReturnEvent(
            shop=SHOP,
            return_id=return_id,
            event_id=event_id,
            topic=topic,  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        )
    )
    return result.status


def test_a_return_the_customer_opened_on_the_platform_is_adopted_and_approved() -> None:
    made = native_harness()
    theirs = platform(made).open_return(
        SHOP, ORDER_ID, [PlatformReturnLine("L2", 2)], requested=True, idempotency_key="shop"
    )
    record = made.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id=ORDER_ID,
            lines=[caps()],
            platform_return_id=theirs.return_id,
            platform_line_ids=theirs.line_ids,
        )
    )
    assert record.refs.platform_return_id == theirs.return_id
    assert [call.operation for call in platform(made).calls] == ["open_return", "approve"]
    assert platform(made).get_return(SHOP, theirs.return_id).status is ShopifyReturnStatus.OPEN
    receive(made, record.id, "r1", passed("L2", 2))
    assert platform(made).refunded(SHOP, theirs.return_id) == eur("20.00")
    assert made.service.get(SHOP, record.id).status == "closed"


def test_a_customer_opened_return_sent_to_review_stays_requested_until_an_agent_decides() -> None:
    made = native_harness(ReturnPolicy(platform_mode="native", auto_approve=False))
    theirs = platform(made).open_return(
        SHOP, ORDER_ID, [PlatformReturnLine("L2", 1)], requested=True, idempotency_key="shop"
    )
    record = made.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id=ORDER_ID,
            lines=[caps(1)],
            platform_return_id=theirs.return_id,
            platform_line_ids=theirs.line_ids,
        )
    )
    assert record.status == "pending_review"
    assert platform(made).calls_to("approve") == []
    made.service.decline(SHOP, record.id, "OTHER")
    assert platform(made).get_return(SHOP, theirs.return_id).status is (
        ShopifyReturnStatus.DECLINED
    )


def test_a_return_declined_in_the_platforms_admin_is_followed_not_fought() -> None:
    made = native_harness(ReturnPolicy(platform_mode="native", auto_approve=False))
    return_id = request(made, caps())
    live_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    platform(made).decline(SHOP, live_id, reason="OTHER", idempotency_key="admin")
    assert fact(made, return_id, "w1", "returns/decline", platform_return_id=live_id) == "applied"
    record = made.service.get(SHOP, return_id)
    assert record.status == "declined"
    assert platform(made).calls_to("decline")[-1].idempotency_key == "admin"  # asked nothing
    assert fact(made, return_id, "w1", "returns/decline") == "duplicate"


def test_a_return_cancelled_in_the_platforms_admin_is_cancelled_here() -> None:
    made = native_harness()
    return_id = request(made, swap("20.00"))
    live_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    platform(made).cancel(SHOP, live_id, idempotency_key="admin")
    assert fact(made, return_id, "w1", "returns/cancel") == "applied"
    record = made.service.get(SHOP, return_id)
    assert record.status == "cancelled"
    assert [call.idempotency_key for call in platform(made).calls_to("cancel")] == ["admin"]
    assert "void_label" in [call.operation for call in made.ports.carrier.calls]


def test_a_cancel_there_after_units_came_back_goes_to_a_person() -> None:
    made = native_harness(
        ReturnPolicy(platform_mode="native", completion=Completion.ON_WAREHOUSE_FINISHED)
    )
    return_id = request(made, caps())
    receive(made, return_id, "r1", passed("L2", 2))
    assert fact(made, return_id, "w1", "returns/cancel") == "applied"
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    assert record.review_reasons == ("cancelled in the platform's admin while item_received",)


def test_echoes_of_returnflows_own_calls_change_nothing() -> None:
    made = native_harness()
    return_id = request(made, caps())
    receive(made, return_id, "r1", passed("L2", 2))
    record = made.service.get(SHOP, return_id)
    [refund_id] = record.refs.refund_ids
    assert fact(made, return_id, "w1", "returns/approve") == "ignored"
    assert fact(made, return_id, "w2", "refunds/create", refund_id=refund_id) == "ignored"
    assert fact(made, return_id, "w3", "returns/close") == "ignored"
    assert fact(made, return_id, "w4", "reverse_fulfillment_orders/dispose") == "applied"
    assert made.service.get(SHOP, return_id).state == record.state


def test_a_refund_made_in_the_admin_before_any_processing_is_recorded_and_kept() -> None:
    # Nothing to decide before returnflow's processing comes: it follows the units a person
    # processed there, or asks a person first when none explains the refund
    # (tests/test_native_admin_early.py).
    made = native_harness()
    return_id = request(made, caps())
    status = fact(made, return_id, "w1", "refunds/create", refund_id="R9", amount=eur("10.00"))
    assert status == "applied"
    record = made.service.get(SHOP, return_id)
    assert record.refs.refund_ids == ("R9",)
    assert (record.status, record.review_reasons) == ("label_sent", ())
    [kept] = [e.payload for e in record.history if e.event == "platform_refund_recorded"]
    assert dict(kept) == {"refund": "R9", "amount": " of 10.00 EUR"}


def test_closed_there_early_goes_to_a_person_and_reopened_there_reopens() -> None:
    made = native_harness()
    return_id = request(made, caps())
    assert fact(made, return_id, "w1", "returns/close") == "applied"
    assert made.service.get(SHOP, return_id).status == "needs_review"
    done = native_harness()
    closed_id = request(done, caps())
    receive(done, closed_id, "r1", passed("L2", 2))
    assert fact(done, closed_id, "w1", "returns/reopen") == "applied"
    assert done.service.get(SHOP, closed_id).status == "needs_review"


def test_a_fact_about_another_platform_return_is_refused_and_changes_nothing() -> None:
    made = native_harness()
    return_id = request(made, caps())
    before = made.service.get(SHOP, return_id)
    with pytest.raises(InvalidPayload) as raised:
        fact(made, return_id, "w1", "returns/cancel", platform_return_id="gid://Return/99")
    assert raised.value.field == "platform_return_id"
    assert made.service.get(SHOP, return_id) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"topic": "returns/explode"}, "topic"),
        ({"topic": "refunds/create", "amount": 10.0}, "amount"),
        ({"topic": "returns/close", "refund_id": ""}, "refund_id"),
    ],
)
def test_a_bad_platform_fact_names_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPayload) as raised:
        PlatformReturnEvent(shop=SHOP, return_id="R1", event_id="w1", **fields)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_platform_line_ids_must_name_a_requested_line_and_come_with_the_return_id() -> None:
    with pytest.raises(InvalidRequest) as raised:
        ReturnRequest(
            shop=SHOP, order_id=ORDER_ID, lines=[caps()], platform_line_ids=[("L2", "gid://1")]
        )
    assert raised.value.field == "platform_return_id"
    with pytest.raises(InvalidRequest) as raised:
        ReturnRequest(
            shop=SHOP,
            order_id=ORDER_ID,
            lines=[caps()],
            platform_return_id="gid://Return/1",
            platform_line_ids=[("L1", "gid://1")],
        )
    assert raised.value.field == "platform_line_ids[0]"


def test_a_platform_fact_round_trips_as_plain_data() -> None:
    event = PlatformReturnEvent(
        shop=SHOP,
        return_id="R1",
        event_id="w1",
        topic="refunds/create",
        refund_id="R9",
        amount=eur("10.00"),
    )
    back = structure(json.loads(json.dumps(unstructure(event))), PlatformReturnEvent)
    assert repr(back) == repr(event)


def test_every_native_effect_round_trips_through_json_with_its_types() -> None:
    common = {"key": "k", "shop": SHOP, "return_id": "R1", "order_id": ORDER_ID, "version": 3}
    lines = (LineQuantity("L2", 1),)
    planned: list[fx.Effect] = [
        fx.OpenPlatformReturn(
            lines=(PlatformReturnLine("L2", 2, "UNWANTED", eur("1.00")),),
            exchange_lines=(PlatformExchangeLine("X1", "tee-l", 1, eur("20.00")),),
            return_shipping_fee=eur("5.00"),
            requested=True,
            **common,
        ),
        fx.ApprovePlatformReturn(**common),
        fx.DeclinePlatformReturn(reason="FINAL_SALE", **common),
        fx.ProcessPlatformReturn(
            lines=lines,
            exchange_line_ids=("X1",),
            refund=eur("5.00"),
            refund_shipping=eur("1.34"),
            refund_duties=(DutyRefund(DUTY, eur("1.50")),),
            expected=eur("5.00"),
            shipping_fee=True,
            **common,
        ),
        fx.PayPlatformBalance(amount=eur("15.00"), **common),
        fx.IssueRefund(
            amount=eur("9.84"),
            lines=lines,
            original_shipping=eur("1.34"),
            duties=eur("1.50"),
            duty_refunds=(DutyRefund(DUTY, eur("1.50")),),
            **common,
        ),
        fx.DisposePlatformUnits(
            disposals=(fx.Disposal("L2", 1, Disposition.NOT_RESTOCKED),), **common
        ),
        fx.RemovePlatformLines(lines=lines, **common),
        fx.ClosePlatformReturn(**common),
        fx.ReopenPlatformReturn(**common),
        fx.CancelPlatformReturn(**common),
    ]
    for effect in planned:
        back = structure(json.loads(json.dumps(unstructure(effect))), fx.Effect)
        assert back == effect
        assert repr(back) == repr(effect)  # enums come back as enums, tuples as tuples


# -- other outcomes, reopening, failures, durability ------------------------------------------


def test_store_credit_is_a_gift_card_and_its_units_are_processed_for_nothing() -> None:
    made = native_harness()
    credit = RequestLine(order_line_id="L2", quantity=2, outcome=StoreCredit())
    return_id = request(made, credit)
    receive(made, return_id, "r1", passed("L2", 2))
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("0.00")
    assert [str(c.amount) for c in made.ports.commerce.credits] == ["20.00 EUR"]
    assert made.service.get(SHOP, return_id).status == "closed"


def test_a_returnless_line_is_opened_and_processed_at_approval() -> None:
    made = native_harness()
    return_id = request(made, RequestLine(order_line_id="L2", quantity=1, outcome=Keep()))
    assert operations(made) == ["open_return", "process"]
    assert platform(made).calls_to("process")[0].args["refund"] == eur("10.00")
    assert made.service.get(SHOP, return_id).status == "closed"
    assert platform(made).calls_to("dispose") == []  # nothing came back to dispose of


def test_reopening_a_closed_return_reopens_the_platform_return() -> None:
    made = native_harness()
    return_id = request(made, caps())
    platform_id = made.service.get(SHOP, return_id).refs.platform_return_id or ""
    receive(made, return_id, "r1", passed("L2", 2))
    assert made.service.get(SHOP, return_id).status == "closed"
    assert platform(made).get_return(SHOP, platform_id).status is ShopifyReturnStatus.CLOSED
    made.service.reopen(SHOP, return_id, reason="customer called")
    assert platform(made).get_return(SHOP, platform_id).status is ShopifyReturnStatus.OPEN
    assert platform(made).calls_to("close") == []  # processing every unit closed it
    assert [call.operation for call in platform(made).calls][-1] == "reopen"
    assert made.service.get(SHOP, return_id).status == "needs_review"


def test_a_processing_refused_for_good_sends_the_return_to_a_person() -> None:
    made = native_harness()
    return_id = request(made, caps())
    refusal = PortError("platform_returns", "process", "order archived", retryable=False)
    platform(made).fail("process", error=refusal)
    receive(made, return_id, "r1", passed("L2", 2))
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    assert record.review_reasons[0].startswith("process_platform_return failed")
    assert platform(made).refunded(SHOP, record.refs.platform_return_id or "") == eur("0.00")
    # The agent closes it: the processing is delivered again, under its own key.
    made.service.close(SHOP, return_id)
    made.dispatch_due()
    record = made.service.get(SHOP, return_id)
    assert record.status == "closed"
    assert platform(made).refunded(SHOP, record.refs.platform_return_id or "") == eur("20.00")
    first, second = platform(made).calls_to("process")
    assert first.idempotency_key == second.idempotency_key


def test_native_mode_survives_the_sqlite_store(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "returns.db"))
    made = native_harness(NATIVE, store=store)
    return_id = request(made, swap("20.00"), caps())
    receive(made, return_id, "r1", passed("L1"), passed("L2"), passed("L2", qc="fail"))
    record = made.service.get(SHOP, return_id)
    assert record.state == ("closed", "released")
    assert [(u.processed, u.removed, u.restocked) for u in record.platform_units] == [
        (1, 0, 1),
        (1, 1, 1),
    ]
    assert all(entry.status == "done" for entry in store.outbox(SHOP, return_id))
    store.close()


def test_units_an_agent_closes_without_are_removed_before_processing() -> None:
    made = native_harness()
    return_id = request(made, caps())
    receive(made, return_id, "r1", passed("L2", 1))  # one cap never comes
    made.service.close(SHOP, return_id, unreceived="nothing")
    record = made.service.get(SHOP, return_id)
    live = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert operations(made) == ["open_return", "remove_lines", "process", "dispose"]
    assert (dict(live.removed)[live.line_id("L2")], dict(live.processed)[live.line_id("L2")]) == (
        1,
        1,
    )
    assert platform(made).refunded(SHOP, live.return_id) == eur("10.00")
    assert live.status is ShopifyReturnStatus.CLOSED
    assert record.status == "closed"


def test_what_the_customer_owes_is_reconciled_too() -> None:
    made = _mismatch(MoneyAuthority.REVIEW)
    return_id = request(made, swap("40.00"))  # 15.00 more; 14.00 at the platform's price
    assert made.ports.payments.calls_to("charge")[0].args["amount"] == eur("15.00")
    receive(made, return_id, "r1", passed("L1"))
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    assert record.review_reasons == (
        "process_platform_return failed: PortError: platform_returns.process_platform_return: "
        "the platform's owed 14.00 EUR differs from returnflow's settlement 15.00 EUR: "
        "nothing was processed",
    )


def test_a_reopen_that_overtakes_the_close_waits_for_it_as_if_in_order() -> None:
    def run(reopen_first: bool) -> tuple[tuple[str, str], ShopifyReturnStatus]:
        made = native_harness(NATIVE, auto_dispatch=False)
        return_id = request(made, caps())
        made.service.dispatch_pending()
        receive(made, return_id, "r1", passed("L2", 2))  # completed, processing not answered
        if reopen_first:
            assert fact(made, return_id, "w1", "returns/reopen") == "parked"
        made.service.dispatch_pending()
        if not reopen_first:
            assert fact(made, return_id, "w1", "returns/reopen") == "applied"
        made.service.dispatch_pending()
        record = made.service.get(SHOP, return_id)
        live = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
        return record.state, live.status

    assert (
        run(reopen_first=True)
        == run(reopen_first=False)
        == (
            ("needs_review", "no_exchange"),
            ShopifyReturnStatus.OPEN,
        )
    )


def test_an_instant_exchange_is_fulfilled_from_the_platform_return_at_hand_in() -> None:
    made = native_harness(
        ReturnPolicy(platform_mode="native", exchange_release=ReleaseTrigger.ON_HANDED_IN)
    )
    return_id = request(made, swap("25.00"))
    handed_in(made, return_id)
    [early] = platform(made).calls_to("process")
    assert (early.args["lines"], len(early.args["exchange_lines"])) == ((), 1)
    assert made.service.get(SHOP, return_id).exchange_status == "released"
    receive(made, return_id, "r1", passed("L1"))
    record = made.service.get(SHOP, return_id)
    assert record.state == ("closed", "released")
    _, late = platform(made).calls_to("process")
    assert (len(late.args["lines"]), late.args["exchange_lines"]) == (1, ())
    live = platform(made).get_return(SHOP, record.refs.platform_return_id or "")
    assert live.status is ShopifyReturnStatus.CLOSED
    assert [call.operation for call in made.ports.payments.calls] == ["authorize", "void"]


def test_a_reset_after_an_early_refund_opens_only_the_units_not_paid_yet() -> None:
    policy = ReturnPolicy(
        platform_mode="native",
        refund_trigger=RefundTrigger.ON_HANDED_IN,
        completion=Completion.ON_WAREHOUSE_FINISHED,
    )
    made = native_harness(policy)
    return_id = request(made, caps(), swap("25.00"))
    handed_in(made, return_id)
    receive(made, return_id, "r1", passed("L2", 1), passed("L1"))
    old, new = made.service.reset(SHOP, return_id)
    first = platform(made).get_return(SHOP, old.refs.platform_return_id or "")
    assert first.status is ShopifyReturnStatus.CLOSED  # caps processed on it, the rest removed
    [_, opened] = platform(made).calls_to("open_return")
    assert [(line.order_line_id, line.quantity) for line in opened.args["lines"]] == [("L1", 1)]
    assert new.status != "needs_review"
    made.service.handle(WarehouseFinished(shop=SHOP, return_id=new.id, event_id="f1"))
    done = made.service.get(SHOP, new.id)
    assert done.state == ("closed", "released")
    assert platform(made).get_return(SHOP, new.refs.platform_return_id or "").status is (
        ShopifyReturnStatus.CLOSED
    )


def test_a_platform_fact_about_a_return_with_no_platform_return_is_ignored() -> None:
    made = native_harness(ReturnPolicy())  # tags mode
    return_id = request(made, caps())
    result = made.service.handle(
        PlatformReturnEvent(shop=SHOP, return_id=return_id, event_id="w1", topic="returns/cancel")
    )
    assert (result.status, result.reason) == ("ignored", "the return has no platform return")
    assert result.record.status == "label_sent"


def test_a_customer_opened_exchange_is_adopted_with_its_exchange_line() -> None:
    made = native_harness()
    theirs = platform(made).open_return(
        SHOP,
        ORDER_ID,
        [PlatformReturnLine("L1", 1)],
        exchange_lines=[PlatformExchangeLine("shop-x1", "tee-l", 1, eur("20.00"))],
        requested=True,
        idempotency_key="shop",
    )
    record = made.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id=ORDER_ID,
            lines=[swap("20.00")],
            platform_return_id=theirs.return_id,
            platform_line_ids=theirs.line_ids,
            platform_exchange_line_ids=[("L1", theirs.exchange_line_ids[0][1])],
        )
    )
    # An exchange for less: nothing owed, so not held there; it waits for processing.
    assert [(line.status, line.platform_item_id) for line in record.exchange_lines] == [
        ("pending", "gid://ExchangeLineItem/1")
    ]
    assert platform(made).get_return(SHOP, theirs.return_id).exchange_on_hold is False
    receive(made, record.id, "r1", passed("L1"))
    live = platform(made).get_return(SHOP, theirs.return_id)
    assert live.status is ShopifyReturnStatus.CLOSED
    assert dict(live.exchange_processed) == {"gid://ExchangeLineItem/1": 1}
    assert platform(made).refunded(SHOP, theirs.return_id) == eur("5.00")
    assert made.service.get(SHOP, record.id).state == ("closed", "released")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"platform_return_id": "gid://Return/1"}, "platform_exchange_line_ids"),
        ({"platform_exchange_line_ids": [("L1", "gid://X/1")]}, "platform_return_id"),
        (
            {"platform_return_id": "gid://Return/1", "platform_exchange_line_ids": [("L2", "x")]},
            "platform_exchange_line_ids[0]",
        ),
    ],
)
def test_an_adopted_exchange_needs_the_platforms_exchange_line(
    fields: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=[swap("20.00"), caps()], **fields)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_nothing_is_disposed_while_the_processing_waits_for_a_person() -> None:
    made = _mismatch(MoneyAuthority.REVIEW)
    return_id = request(made, swap("20.00"), caps())
    receive(made, return_id, "r1", passed("L1"), passed("L2", 2))
    assert made.service.get(SHOP, return_id).status == "needs_review"
    assert operations(made) == ["open_return"]  # asked for nothing more
    made.service.close(SHOP, return_id)
    made.dispatch_due()
    assert made.service.get(SHOP, return_id).status == "closed"
    assert operations(made) == ["open_return", "process", "dispose", "dispose"]


# -- a restocking fee follows the units --------------------------------------------------------


def _fee_policy(**extra: object) -> ReturnPolicy:
    return ReturnPolicy(
        platform_mode="native",
        fees=FeePolicy(restocking=Percent(10)),
        **extra,  # type: ignore[arg-type]
    )


def test_a_unit_removed_after_qc_takes_its_share_of_the_fee_with_it() -> None:
    # One fee for both caps on the platform line (2.00); one cap fails QC and is removed:
    # the platform's figure keeps the accepted cap's share (1.00), as the settlement does.
    made = native_harness(_fee_policy())
    return_id = request(made, caps())
    [opened] = platform(made).calls_to("open_return")
    assert [line.restocking_fee for line in opened.args["lines"]] == [eur("2.00")]
    receive(made, return_id, "r1", passed("L2"), passed("L2", qc="fail"))
    record = closed_without_review(made, return_id)
    assert not [entry for entry in record.history if entry.event == "platform_money_differs"]
    live_id = record.refs.platform_return_id or ""
    assert operations(made) == ["open_return", "remove_lines", "process", "dispose"]
    assert platform(made).refunded(SHOP, live_id) == eur("9.00")
    outcome = platform(made).calculate(SHOP, live_id)
    assert (outcome.returned, outcome.fees, outcome.refund) == (
        eur("10.00"),
        eur("1.00"),
        eur("9.00"),
    )


def test_a_fixed_fee_is_allocated_over_the_units_to_the_cent() -> None:
    # 5.00 for three units: 1.67 + 1.67 + 1.66; two come back, the third fails QC.
    made = Harness(
        policy=ReturnPolicy(platform_mode="native", fees=FeePolicy(restocking=Fixed(eur("5.00"))))
    )
    three = OrderLine(id="L3", sku="SOCK", variant_id="sock", quantity=3, unit_price=eur("10"))
    made.ports.commerce.add_order(
        attrs.evolve(tee_and_caps(), lines=(*tee_and_caps().lines, three))
    )
    record = made.service.request(
        ReturnRequest(
            shop=SHOP, order_id=ORDER_ID, lines=[RequestLine(order_line_id="L3", quantity=3)]
        )
    )
    receive(made, record.id, "r1", passed("L3", 2), passed("L3", qc="fail"))
    record = closed_without_review(made, record.id)
    assert record.restocking_fees == eur("3.34")
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("16.66")


# -- a return processed in several calls is reconciled call by call -----------------------------


def _per_receipt(**extra: object) -> Harness:
    """Refund per receipt: each receipt's accepted units are processed by a call of their
    own."""
    return native_harness(
        ReturnPolicy(
            platform_mode="native",
            refund_trigger=RefundTrigger.ON_RECEIVED,
            **extra,  # type: ignore[arg-type]
        )
    )


def test_each_processing_call_is_compared_for_its_own_units() -> None:
    made = _per_receipt(fees=FeePolicy(restocking=Percent(10), return_shipping=eur("3.00")))
    return_id = request(made, caps())
    receive(made, return_id, "r1", passed("L2"))
    receive(made, return_id, "r2", passed("L2"))
    record = closed_without_review(made, return_id)
    first, second = platform(made).calls_to("process")
    # Each call bears its cap's share of the restocking fee and of the return shipping fee
    # (1.50 each): 10.00 - 1.00 - 1.50, whichever cap comes first.
    assert (first.args["refund"], second.args["refund"]) == (eur("7.50"), eur("7.50"))
    live_id = record.refs.platform_return_id or ""
    line = platform(made).get_return(SHOP, live_id).line_id("L2")
    assert platform(made).refunded(SHOP, live_id) == eur("15.00")
    assert dict(platform(made).get_return(SHOP, live_id).processed) == {line: 2}


class KeepsMoreOnLaterCalls(FakePlatformReturns):
    """A platform that keeps 1.00 more than returnflow on every call after the first (a
    fee set on the return in the platform's admin)."""

    def calculate(self, shop: str, return_id: str, lines: Any = None, **kw: Any) -> Any:
        outcome = super().calculate(shop, return_id, lines, **kw)
        if lines is None or not any(
            units for _, units in self.get_return(shop, return_id).processed
        ):
            return outcome
        more = eur("1.00")
        return attrs.evolve(outcome, fees=outcome.fees + more, refund=outcome.refund - more)


@pytest.mark.parametrize(
    ("money", "status", "refunds"),
    [
        (MoneyAuthority.REVIEW, "needs_review", ["10.00"]),
        (MoneyAuthority.PLATFORM, "closed", ["10.00", "9.00"]),
        (MoneyAuthority.RETURNFLOW, "closed", ["10.00", "10.00"]),
    ],
)
def test_a_difference_in_one_call_of_several_is_caught_with_both_figures(
    money: MoneyAuthority, status: str, refunds: list[str]
) -> None:
    ports = FakePorts()
    ports.commerce.add_order(tee_and_caps())
    policy = ReturnPolicy(
        platform_mode="native", refund_trigger=RefundTrigger.ON_RECEIVED, platform_money=money
    )
    made = Harness(
        policy=policy, ports=ports, platform_returns=KeepsMoreOnLaterCalls(ports.commerce)
    )
    return_id = request(made, caps())
    receive(made, return_id, "r1", passed("L2"))
    receive(made, return_id, "r2", passed("L2"))
    record = made.service.get(SHOP, return_id)
    assert record.status == status
    assert [
        str(call.args["refund"].amount) for call in platform(made).calls_to("process")
    ] == refunds
    if money is MoneyAuthority.REVIEW:
        assert record.review_reasons == (
            "process_platform_return failed: PortError: platform_returns.process_platform_return: "
            "the platform's refund 9.00 EUR differs from returnflow's settlement 10.00 EUR: "
            "nothing was processed",
        )
    else:
        [differs] = [entry for entry in record.history if entry.event == "platform_money_differs"]
        assert differs.payload == {"platform": "9.00 EUR", "returnflow": "10.00 EUR"}


# -- the order's shipping and duties given back go with the processing -------------------------

DUTY = "gid://shopify/Duty/7"


def charged_order(**extra: object) -> OrderSnapshot:
    """The T-shirt and caps with 9.00 of shipping and a 3.00 duty on the caps."""
    tee, capped = tee_and_caps().lines
    values: dict[str, object] = {
        "shipping_price": eur("9.00"),
        "lines": (tee, attrs.evolve(capped, duties=(Duty(DUTY, eur("3.00")),))),
    }
    values.update(extra)
    return attrs.evolve(tee_and_caps(), **values)


def charged(policy: ReturnPolicy, placed: OrderSnapshot | None = None) -> Harness:
    made = Harness(policy=policy)
    made.ports.commerce.add_order(placed or charged_order())
    return made


GIVE_BACK = ReturnPolicy(platform_mode="native", refund_shipping="always", refund_duties="always")


def test_shipping_and_duties_given_back_are_refunded_by_the_processing_call() -> None:
    made = charged(GIVE_BACK)
    return_id = request(made, caps())
    receive(made, return_id, "r1", passed("L2", 2))
    closed_without_review(made, return_id)
    [processed] = platform(made).calls_to("process")
    # The caps' share of the shipping (by what they were paid: 20 of 45) and all the duty.
    assert processed.args["refund"] == eur("20.00")
    assert processed.args["refund_shipping"] == eur("4.00")
    assert processed.args["refund_duties"] == (DutyRefund(DUTY, eur("3.00")),)
    assert platform(made).given_back(SHOP, ORDER_ID, DUTY) == eur("3.00")
    assert platform(made).given_back(SHOP, ORDER_ID, "shipping") == eur("4.00")
    [event] = [e for e in made.ports.events.events if e.topic == "refunds/create"]
    assert event.payload["amount"] == "27.00 EUR"
    assert "refund" not in commerce_operations(made)


def test_a_duty_given_back_per_receipt_goes_back_with_each_call_in_shares() -> None:
    policy = attrs.evolve(GIVE_BACK, refund_trigger=RefundTrigger.ON_RECEIVED)
    made = charged(policy)
    return_id = request(made, caps())
    receive(made, return_id, "r1", passed("L2"))
    receive(made, return_id, "r2", passed("L2"))
    closed_without_review(made, return_id)
    calls = platform(made).calls_to("process")
    assert [call.args["refund_duties"] for call in calls] == [
        (DutyRefund(DUTY, eur("1.50")),),
        (DutyRefund(DUTY, eur("1.50")),),
    ]
    assert [call.args["refund_shipping"] for call in calls] == [eur("2.00"), eur("2.00")]
    assert platform(made).given_back(SHOP, ORDER_ID, DUTY) == eur("3.00")


def test_duties_the_platform_has_no_id_for_go_to_a_person_with_both_figures() -> None:
    # Only the order's total duties are known: the platform cannot give them back by id,
    # so its figure for the units differs from the settlement's by the duties.
    made = charged(GIVE_BACK, charged_order(lines=tee_and_caps().lines, duties=eur("3.00")))
    return_id = request(made, caps())
    receive(made, return_id, "r1", passed("L2", 2))
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    assert record.review_reasons == (
        "process_platform_return failed: PortError: platform_returns.process_platform_return: "
        "the platform's refund 20.00 EUR differs from returnflow's settlement 21.33 EUR: "
        "nothing was processed",
    )


# -- claims: nothing comes back, so no platform return -------------------------------------------


def claim(*lines: RequestLine, **fields: object) -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP,
        order_id=ORDER_ID,
        lines=lines,
        claim=Claim(ClaimReason.LOST_IN_TRANSIT, "the carrier confirms the parcel lost"),
        **fields,  # type: ignore[arg-type]
    )


def test_a_claim_refund_is_a_plain_refund_on_the_order_with_no_platform_return() -> None:
    made = native_harness()
    record = made.service.request(claim(RequestLine(order_line_id="L2", quantity=2)))
    assert record.status == "closed"
    assert platform(made).calls == []  # Shopify has no claims object: no Return is opened
    assert record.platform_units == ()
    assert record.refs.platform_return_id is None
    [refund] = made.ports.commerce.refunds
    assert str(refund.amount) == "20.00 EUR"
    assert [(line.order_line_id, line.quantity) for line in refund.lines] == [("L2", 2)]
    assert "restock" not in commerce_operations(made)  # nothing came back to restock


def test_a_claim_replacement_is_added_to_the_order_and_released_at_once() -> None:
    made = native_harness()
    order_now = made.ports.commerce.get_order(SHOP, ORDER_ID)
    record = made.service.request(
        claim(RequestLine(order_line_id="L1", quantity=1, outcome=replacement(order_now, "L1")))
    )
    assert record.status == "closed"
    assert platform(made).calls == []
    moved = [name for name in commerce_operations(made) if name != "get_order"]
    assert moved == ["add_exchange_items", "release_exchange"]  # an order edit, shipped at once
    [line] = record.exchange_lines
    assert (line.variant_id, line.status) == ("tee-m", "released")
    assert made.ports.commerce.refunds == []


def test_a_claim_credited_is_a_gift_card_with_no_platform_return() -> None:
    made = native_harness()
    record = made.service.request(
        claim(RequestLine(order_line_id="L1", quantity=1, outcome=StoreCredit()))
    )
    assert record.status == "closed"
    assert platform(made).calls == []
    assert [str(credit.amount) for credit in made.ports.commerce.credits] == ["25.00 EUR"]


def test_a_claim_sent_to_review_opens_nothing_on_the_platform_until_approved() -> None:
    rule = Rule("claims are checked", When(claim=True), Then(review="a person checks claims"))
    made = native_harness(ReturnPolicy(platform_mode="native", rules=[rule]))
    record = made.service.request(claim(RequestLine(order_line_id="L2", quantity=1)))
    assert record.status == "pending_review"
    assert platform(made).calls == []  # no requested platform return either
    approved = made.service.approve(SHOP, record.id)
    assert approved.status == "closed"
    assert platform(made).calls == []
    assert [str(refund.amount) for refund in made.ports.commerce.refunds] == ["10.00 EUR"]


def test_a_claim_beside_a_return_leaves_the_returns_platform_return_to_its_own_units() -> None:
    made = native_harness()
    made.service.request(claim(RequestLine(order_line_id="L2", quantity=1)))
    returned = request(made, caps(1))  # the other cap comes back as a return
    [opened] = platform(made).calls_to("open_return")
    assert [(line.order_line_id, line.quantity) for line in opened.args["lines"]] == [("L2", 1)]
    assert made.service.get(SHOP, returned).platform_units[0].quantity == 1
    with pytest.raises(InvalidQuantity):  # the claimed cap cannot come back too
        request(made, caps(2))


def test_a_claim_cannot_adopt_a_platform_return() -> None:
    made = native_harness()
    with pytest.raises(InvalidRequest) as refused:
        made.service.request(
            claim(RequestLine(order_line_id="L2", quantity=1), platform_return_id="gid://R/1")
        )
    assert (refused.value.field, refused.value.value) == ("platform_return_id", "gid://R/1")
    assert made.service.list(SHOP) == []
    assert platform(made).calls == []
