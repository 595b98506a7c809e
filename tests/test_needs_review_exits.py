"""Every way out of ``needs_review`` names what happens to units not received and to the
exchange, and none leaks goods or money: every reason a return lands there x every action an
agent can take, with the platform's and the payment fakes' view checked afterwards."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Completion,
    Exchange,
    InvalidPayload,
    InvalidTransition,
    Money,
    OrderLine,
    OrderSnapshot,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
    ReturnToOrigin,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.testing import Harness, ManualClock

SHOP = "exit-shop"
ORDERED = datetime(2026, 4, 1, 9, 0, tzinfo=timezone.utc)
POLICY = ReturnPolicy(
    completion=Completion.ON_WAREHOUSE_FINISHED, on_return_to_origin=ReturnToOrigin.REVIEW
)


def _order() -> OrderSnapshot:
    return OrderSnapshot(
        id="O-1",
        shop=SHOP,
        created_at=ORDERED,
        currency="EUR",
        customer_email="kim@example.com",
        fulfilled_at=ORDERED,
        lines=[
            OrderLine(id="TEE", sku="TEE-M", variant_id="tee-m", quantity=1,
                      unit_price=Money("30.00", "EUR")),
            OrderLine(id="CAP", sku="CAP", variant_id="cap", quantity=2,
                      unit_price=Money("10.00", "EUR")),
        ],
    )  # fmt: skip


def _start() -> tuple[Harness, ReturnRecord]:
    harness = Harness(policy=POLICY, clock=ManualClock(ORDERED + timedelta(days=3)))
    harness.ports.commerce.add_order(_order())
    record = harness.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="O-1",
            lines=[
                RequestLine("TEE", 1, outcome=Exchange(variant_id="tee-l")),
                RequestLine("CAP", 2),
            ],
        )
    )
    return harness, record


def _scan(h: Harness, r: ReturnRecord, status: CarrierStatus, n: str) -> None:
    h.service.handle(CarrierUpdate(shop=SHOP, return_id=r.id, event_id=n, status=status))


def _receive(h: Harness, r: ReturnRecord, *lines: tuple[str, int]) -> None:
    h.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=r.id,
            event_id=f"rcv-{len(h.service.get(SHOP, r.id).history)}",
            lines=[ReceivedLine(line_id=line, quantity=units) for line, units in lines],
        )
    )


def _finish(h: Harness, r: ReturnRecord) -> None:
    h.service.handle(WarehouseFinished(shop=SHOP, return_id=r.id, event_id="fin"))


# Each reason leaves the return in needs_review: (name, what gets it there)
REASONS: dict[str, Callable[[Harness, ReturnRecord], None]] = {
    "returned to origin": lambda h, r: (
        _scan(h, r, CarrierStatus.PICKED_UP, "s1"),
        _scan(h, r, CarrierStatus.RETURN_TO_ORIGIN, "s2"),
    ),
    "short receipt": lambda h, r: (
        _receive(h, r, ("TEE", 1), ("CAP", 1)),
        _finish(h, r),
    ),
    "tee missing": lambda h, r: (_receive(h, r, ("CAP", 2)), _finish(h, r)),
    "flagged before anything came": lambda h, r: h.service.flag(SHOP, r.id, "customer called"),
    "flagged after all came": lambda h, r: (
        _receive(h, r, ("TEE", 1), ("CAP", 2)),
        h.service.flag(SHOP, r.id, "dented box"),
    ),
}

CLOSES = [
    {"unreceived": unreceived, "exchange": exchange}
    for unreceived, exchange in itertools.product(
        (None, "refund", "store_credit", "nothing"), (None, "release", "cancel")
    )
]
ACTIONS: dict[str, Callable[[Harness, ReturnRecord], Any]] = {
    "approve": lambda h, r: h.service.approve(SHOP, r.id, actor="agent:ann"),
    "cancel": lambda h, r: h.service.cancel(SHOP, r.id, actor="agent:ann"),
    "reset": lambda h, r: h.service.reset(SHOP, r.id, actor="agent:ann"),
    **{
        f"close(unreceived={c['unreceived']}, exchange={c['exchange']})": (
            lambda h, r, c=c: h.service.close(SHOP, r.id, actor="agent:ann", **c)
        )
        for c in CLOSES
    },
}


def _worth(record: ReturnRecord, units: Callable[[Any], int]) -> Money:
    return Money.sum(
        (amount for line in record.lines for amount in line.unit_amounts[: units(line)]), "EUR"
    )


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("reason", list(REASONS))
def test_no_exit_from_needs_review_leaks_goods_or_money(reason: str, action: str) -> None:
    harness, record = _start()
    REASONS[reason](harness, record)
    before = harness.service.get(SHOP, record.id)
    assert before.status == "needs_review", (reason, before.state)
    refused: Exception | None = None
    try:
        ACTIONS[action](harness, record)
    except (InvalidTransition, InvalidPayload) as error:
        refused = error
    if refused is not None:
        # a refusal changes nothing; it names what is missing
        assert harness.service.get(SHOP, record.id) == before, refused
        if isinstance(refused, InvalidPayload):
            assert refused.field in ("unreceived", "exchange", "lines"), refused
        return
    for _ in range(3):
        harness.dispatch_due()
    after = harness.service.get(SHOP, record.id)
    tee = next(line for line in after.lines if line.order_line_id == "TEE")
    shipped = [
        item for item in harness.ports.commerce.exchange_lines(SHOP, "O-1")
        if item.status == "unfulfilled"
    ]  # fmt: skip
    decided_release = any(
        entry.event == "release_exchange" and entry.payload.get("decided_by")
        for entry in after.history
    )
    # Goods: the replacement ships only when the returned T-shirt was accepted, or an agent
    # said so (named in the history).
    if shipped:
        assert tee.accepted == 1 or decided_release, (reason, action, after.state)
    # Money: never more than what came back accepted, unless an agent decided to pay for
    # the units that did not (refund or store credit anyway).
    paid = Money.sum(
        (
            *(refund.amount for refund in harness.ports.commerce.refunds),
            *(credit.amount for credit in harness.ports.commerce.credits),
        ),
        "EUR",
    )
    pays_unreceived = "unreceived=refund" in action or "unreceived=store_credit" in action
    limit = _worth(after, lambda line: line.quantity if pays_unreceived else line.accepted)
    assert paid <= limit, (reason, action, paid, limit)
    # Nothing is left waiting silently after an exit that ends the return.
    if after.status in ("closed", "cancelled"):
        assert after.exchange_status != "on_hold", (reason, action)


def test_closing_by_hand_asks_for_what_is_missing_and_names_it() -> None:
    harness, record = _start()
    REASONS["short receipt"](harness, record)
    with pytest.raises(InvalidPayload) as missing:
        harness.service.close(SHOP, record.id)
    assert missing.value.field == "unreceived"
    assert "CAP" not in missing.value.reason or "1" in missing.value.reason
    with pytest.raises(InvalidPayload, match="must be one of"):
        harness.service.close(SHOP, record.id, unreceived="maybe")
    closed = harness.service.close(SHOP, record.id, unreceived="nothing")
    assert closed.status in ("closed", "refunded")
    assert [r.amount for r in harness.ports.commerce.refunds] == [Money("10.00", "EUR")]


def test_an_uncovered_exchange_is_not_released_unless_an_agent_says_so() -> None:
    harness, record = _start()
    REASONS["tee missing"](harness, record)
    with pytest.raises(InvalidPayload) as missing:
        harness.service.close(SHOP, record.id, unreceived="nothing")
    assert missing.value.field == "exchange"
    released = harness.service.close(
        SHOP, record.id, unreceived="nothing", exchange="release", actor="agent:ann"
    )
    assert released.exchange_status == "released"
    entry = next(e for e in released.history if e.event == "release_exchange")
    assert (entry.actor, entry.payload["decided_by"]) == ("agent:ann", "agent:ann")


def test_an_agent_can_cancel_from_needs_review_and_nothing_is_paid() -> None:
    harness, record = _start()
    REASONS["returned to origin"](harness, record)
    cancelled = harness.service.cancel(SHOP, record.id, actor="agent:ann")
    assert cancelled.state == ("cancelled", "exchange_cancelled")
    assert harness.ports.commerce.refunds == []
    assert [item.status for item in harness.ports.commerce.exchange_lines(SHOP, "O-1")] == [
        "cancelled"
    ]
