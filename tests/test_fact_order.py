"""Facts in any order: a permuted, redelivered stream ends where the in-order stream ends.

The property the inbound-facts issue asks for: *for any per-return permutation of a valid
fact stream, with redeliveries, the final records, the ledger and the set of port effects
equal those of the in-order run.* Carrier scans, warehouse receipts and the warehouse's
Finished arrive early, late, twice and out of order; :mod:`returnflow.decisions.facts` parks
a fact the return cannot use yet and applies it, in the order facts happen, in the commit
that makes it usable.

Each flow is a seed flow with a valid stream of facts for one or a few returns, in the order
they happen in the world. Hypothesis draws a permutation of each return's facts, interleaves
the returns, and redelivers some facts later in the stream
(:func:`returnflow.testing.reordering.schedules`). Two identical harnesses (same ids, same
clock, which never moves) run the in-order stream and the drawn one; then they are compared
on what :func:`returnflow.testing.reordering.outcome` lists (the records, the ledger, what
the fakes hold; not history, events, messages or keys). Every redelivery must come back
``duplicate``. The stateful kit checks the same property for any policy.

A stream stays physically valid: a parcel sent back to the customer (return to origin) is
never also received. A later fact implies the stages before it: a receipt that comes before
the carrier's scans runs the rules those scans would have run (a refund paid on delivery, an
instant exchange's authorization), and an instant exchange's receipt waits for that
authorization's answer, so a policy that acts on a scan ends the same whichever comes first.
A flow found to depend on the order would be listed in :data:`NOT_COMMUTING` (strict xfail,
with the minimal stream and both outcomes); none is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pprint import pformat
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Completion,
    Exchange,
    HandleResult,
    Money,
    OrderLine,
    OrderSnapshot,
    PlatformReturnEvent,
    PlatformTopic,
    QcResult,
    ReceivedLine,
    ReleaseTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.policy import RefundTrigger, ReturnToOrigin
from returnflow.stores.memory import MemoryStore
from returnflow.testing import Harness, ManualClock, SequentialIds, reordering
from returnflow.testing.reordering import differences, schedules

SHOP = "shop-1"
ORDER_ID = "1001"
ORDERED_AT = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
START = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)

Fact = CarrierUpdate | WarehouseReceipt | WarehouseFinished | PlatformReturnEvent

SMARTPACK = ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED)
INSTANT = ReturnPolicy(
    completion=Completion.ON_WAREHOUSE_FINISHED, exchange_release=ReleaseTrigger.ON_HANDED_IN
)
HELPDESK = ReturnPolicy()  # seed 001 / 002: completed on receipt, refunded on close
ON_DELIVERED = ReturnPolicy(refund_trigger=RefundTrigger.ON_DELIVERED)
ON_RECEIVED = ReturnPolicy(refund_trigger=RefundTrigger.ON_RECEIVED)
RTO_REVIEW = ReturnPolicy(on_return_to_origin=ReturnToOrigin.REVIEW)


def order() -> OrderSnapshot:
    """Seed order 1001: a T-shirt (25.00), two caps (11.90 each) and a jacket (100.00)."""
    return OrderSnapshot(
        id=ORDER_ID,
        shop=SHOP,
        created_at=ORDERED_AT,
        fulfilled_at=ORDERED_AT,
        currency="EUR",
        customer_email="customer@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku="TEE-M",
                variant_id="tee-m",
                quantity=1,
                unit_price=Money("25.00", "EUR"),
            ),
            OrderLine(
                id="L2",
                sku="CAP",
                variant_id="cap",
                quantity=2,
                unit_price=Money("10.00", "EUR"),
                tax=Money("3.80", "EUR"),
            ),
            OrderLine(
                id="L3",
                sku="JACKET-M",
                variant_id="jacket-m",
                quantity=1,
                unit_price=Money("120.00", "EUR"),
                discount=Money("20.00", "EUR"),
            ),
        ],
    )


# -- facts ------------------------------------------------------------------------------------


def picked_up(rid: str) -> CarrierUpdate:
    return CarrierUpdate(
        shop=SHOP, return_id=rid, event_id=f"{rid}-pickup", status=CarrierStatus.PICKED_UP
    )


def delivered(rid: str) -> CarrierUpdate:
    return CarrierUpdate(
        shop=SHOP, return_id=rid, event_id=f"{rid}-delivered", status=CarrierStatus.DELIVERED
    )


def sent_back(rid: str) -> CarrierUpdate:
    return CarrierUpdate(
        shop=SHOP, return_id=rid, event_id=f"{rid}-rto", status=CarrierStatus.RETURN_TO_ORIGIN
    )


def receipt(rid: str, n: int, *lines: ReceivedLine) -> WarehouseReceipt:
    return WarehouseReceipt(shop=SHOP, return_id=rid, event_id=f"{rid}-rcv-{n}", lines=lines)


def reopened_there(rid: str) -> PlatformReturnEvent:
    """A person reopened the (processed, closed) platform return in the platform's admin."""
    return PlatformReturnEvent(
        shop=SHOP, return_id=rid, event_id=f"{rid}-reopen", topic=PlatformTopic.REOPEN
    )


def finished(rid: str) -> WarehouseFinished:
    return WarehouseFinished(shop=SHOP, return_id=rid, event_id=f"{rid}-finished")


def ok(line: str, quantity: int = 1) -> ReceivedLine:
    return ReceivedLine(line_id=line, quantity=quantity, qc=QcResult.PASS)


def bad(line: str, quantity: int = 1) -> ReceivedLine:
    return ReceivedLine(line_id=line, quantity=quantity, qc=QcResult.FAIL, note="worn")


def refund(line: str, quantity: int = 1) -> RequestLine:
    return RequestLine(order_line_id=line, quantity=quantity)


def exchange(line: str, variant: str) -> RequestLine:
    return RequestLine(
        order_line_id=line,
        quantity=1,
        outcome=Exchange(variant_id=variant),
        reason=ReturnReason.SIZE_TOO_SMALL,
    )


def describe(fact: Fact) -> str:
    """A fact as a short word: ``R0001-pickup``, ``R0001-rcv-2[L2 pass, L2 fail]``."""
    if isinstance(fact, WarehouseReceipt):
        lines = ", ".join(f"{line.line_id} {line.qc.value}" for line in fact.lines)
        return f"{fact.event_id}[{lines}]"
    return fact.event_id


# -- flows ------------------------------------------------------------------------------------


@attrs.frozen
class Plan:
    """One return of a flow: what is asked, and its facts (built from its id) in the order
    they happen in the world."""

    lines: tuple[RequestLine, ...]
    facts: Callable[[str], list[Fact]]


@attrs.frozen
class Flow:
    name: str
    policy: ReturnPolicy
    plans: tuple[Plan, ...]


FLOWS: tuple[Flow, ...] = (
    Flow(
        "seed000-exchange-finished",
        SMARTPACK,
        (
            Plan(
                (exchange("L1", "tee-l"),),
                lambda r: [picked_up(r), delivered(r), receipt(r, 1, ok("L1")), finished(r)],
            ),
        ),
    ),
    Flow(
        "seed000-two-receipts-finished",
        SMARTPACK,
        (
            Plan(
                (refund("L2", 2), refund("L3")),
                lambda r: [
                    picked_up(r),
                    delivered(r),
                    receipt(r, 1, ok("L2", 2)),
                    receipt(r, 2, ok("L3")),
                    finished(r),
                ],
            ),
        ),
    ),
    Flow(
        "seed001-refund-on-receipt-qc-fail-two-returns",
        HELPDESK,
        (
            Plan(
                (refund("L2", 2),),
                lambda r: [
                    picked_up(r),
                    delivered(r),
                    receipt(r, 1, ok("L2")),
                    receipt(r, 2, bad("L2")),
                ],
            ),
            Plan((refund("L3"),), lambda r: [picked_up(r), receipt(r, 1, ok("L3"))]),
        ),
    ),
    Flow(
        "seed000-instant-exchange-on-hand-in",
        INSTANT,
        (
            Plan(
                (exchange("L1", "tee-l"), refund("L3")),
                lambda r: [
                    picked_up(r),
                    delivered(r),
                    receipt(r, 1, ok("L1"), ok("L3")),
                    finished(r),
                ],
            ),
        ),
    ),
    Flow(
        "refund-on-delivered",
        ON_DELIVERED,
        (
            Plan(
                (refund("L3"),),
                lambda r: [picked_up(r), delivered(r), receipt(r, 1, ok("L3"))],
            ),
        ),
    ),
    Flow(
        "refund-on-received-qc-fail",
        ON_RECEIVED,
        (
            Plan(
                (refund("L2", 2), refund("L3")),
                lambda r: [
                    picked_up(r),
                    delivered(r),
                    receipt(r, 1, ok("L2"), ok("L3")),
                    receipt(r, 2, bad("L2")),
                ],
            ),
        ),
    ),
    Flow(
        "seed002-return-to-origin-cancels",
        HELPDESK,
        (Plan((refund("L3"),), lambda r: [picked_up(r), sent_back(r)]),),
    ),
    Flow(
        "seed002-return-to-origin-to-review",
        RTO_REVIEW,
        (Plan((refund("L3"),), lambda r: [picked_up(r), sent_back(r)]),),
    ),
    Flow(
        "refund-on-delivered-qc-fail",
        ON_DELIVERED,
        (
            Plan(
                (refund("L2", 2),),
                lambda r: [picked_up(r), delivered(r), receipt(r, 1, ok("L2"), bad("L2"))],
            ),
        ),
    ),
    Flow(
        "seed000-instant-exchange-qc-fail",
        INSTANT,
        (
            Plan(
                (exchange("L1", "tee-l"), refund("L3")),
                lambda r: [
                    picked_up(r),
                    delivered(r),
                    receipt(r, 1, bad("L1"), ok("L3")),
                    finished(r),
                ],
            ),
        ),
    ),
)

NATIVE = ReturnPolicy(platform_mode="native")
NATIVE_EARLY = ReturnPolicy(platform_mode="native", refund_trigger=RefundTrigger.ON_HANDED_IN)
CHEAPER_TEE = RequestLine(
    order_line_id="L1",
    quantity=1,
    outcome=Exchange(variant_id="tee-l", unit_price=Money("20.00", "EUR")),
    reason=ReturnReason.SIZE_TOO_SMALL,
)

# Seed 003 in native mode: the platform's own return is opened, processed (its money
# reconciled), its failed units removed and the rest disposed; what the fake platform holds
# is compared too (:func:`outcome`).
FLOWS += (
    Flow(
        "seed003-native-exchange-for-less",
        NATIVE,
        (
            Plan(
                (CHEAPER_TEE, refund("L2", 2)),
                lambda r: [
                    picked_up(r),
                    delivered(r),
                    receipt(r, 1, ok("L1"), ok("L2")),
                    receipt(r, 2, bad("L2")),
                ],
            ),
        ),
    ),
    Flow(
        "seed003-native-refund-on-hand-in",
        NATIVE_EARLY,
        (
            Plan(
                (refund("L2", 2),),
                lambda r: [picked_up(r), delivered(r), receipt(r, 1, ok("L2", 2))],
            ),
        ),
    ),
    Flow(
        "seed003-native-reopened-in-the-admin",
        NATIVE,
        (
            Plan(
                (refund("L2", 2),),
                lambda r: [picked_up(r), receipt(r, 1, ok("L2", 2)), reopened_there(r)],
            ),
        ),
    ),
)

BY_NAME = {flow.name: flow for flow in FLOWS}

# Flows whose outcome depends on the order the facts arrive in (product bugs, reported).
NOT_COMMUTING: dict[str, str] = {}


def flow_params() -> list[Any]:
    return [
        pytest.param(
            flow.name,
            id=flow.name,
            marks=[pytest.mark.xfail(strict=True, reason=NOT_COMMUTING[flow.name])]
            if flow.name in NOT_COMMUTING
            else [],
        )
        for flow in FLOWS
    ]


# -- running a stream -------------------------------------------------------------------------


def world(flow: Flow) -> tuple[Harness, list[str]]:
    """A fresh harness with the order and the flow's returns opened, in the same order every
    time (so with the same ids)."""
    harness = Harness(
        policy=flow.policy,
        store=MemoryStore(),
        clock=ManualClock(START),
        ids=SequentialIds(),
    )
    harness.ports.commerce.add_order(order())
    rids = [
        harness.service.request(ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=plan.lines)).id
        for plan in flow.plans
    ]
    return harness, rids


def deliver(harness: Harness, stream: Sequence[Fact]) -> list[HandleResult]:
    return [harness.service.handle(fact) for fact in stream]


# -- what is compared -------------------------------------------------------------------------


def outcome(harness: Harness, rids: Sequence[str]) -> dict[str, Any]:
    found = reordering.outcome(harness, SHOP, rids)
    platform = harness.platform_returns
    if platform is not None:  # native mode: the platform's returns, their money, dispositions
        ids = [harness.service.get(SHOP, rid).refs.platform_return_id for rid in rids]
        found["platform"] = [
            (
                platform.get_return(SHOP, pid),
                platform.refunded(SHOP, pid),
                platform.dispositions(SHOP, pid),
            )
            for pid in ids
            if pid is not None
        ]
    return found


_IN_ORDER: dict[str, tuple[dict[str, Any], list[str]]] = {}


def in_order(flow: Flow) -> tuple[dict[str, Any], list[str]]:
    """The in-order run's outcome and each fact's status (computed once per flow)."""
    if flow.name not in _IN_ORDER:
        harness, rids = world(flow)
        stream = [
            fact for plan, rid in zip(flow.plans, rids, strict=True) for fact in plan.facts(rid)
        ]
        results = deliver(harness, stream)
        _IN_ORDER[flow.name] = (outcome(harness, rids), [result.status for result in results])
    return _IN_ORDER[flow.name]


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [flow.name for flow in FLOWS])
def test_the_in_order_stream_is_applied_fact_by_fact(name: str) -> None:
    """The property is not vacuous: in order, every fact applies and none is left parked."""
    expected, statuses = in_order(BY_NAME[name])
    assert statuses == ["applied"] * len(statuses)
    assert all(view["parked"] == [] for view in expected["returns"].values())


@pytest.mark.parametrize("name", flow_params())
@given(data=st.data())
def test_any_order_with_redeliveries_ends_where_the_in_order_stream_ends(
    name: str, data: st.DataObject
) -> None:
    flow = BY_NAME[name]
    expected, _ = in_order(flow)
    harness, rids = world(flow)
    facts = [plan.facts(rid) for plan, rid in zip(flow.plans, rids, strict=True)]
    schedule = data.draw(schedules(tuple(len(f) for f in facts)), label="schedule")
    stream = [facts[r][i] for r, i in schedule]
    note = " -> ".join(describe(fact) for fact in stream)

    seen: set[tuple[int, int]] = set()
    for delivery, fact in zip(schedule, stream, strict=True):
        result = harness.service.handle(fact)
        if delivery in seen:
            assert result.status == "duplicate", (note, describe(fact), result.reason)
        else:
            assert result.status in ("applied", "parked", "ignored"), (note, result)
        seen.add(delivery)

    found = differences(expected, outcome(harness, rids))
    assert not found, f"{note}\n{pformat(found, width=100)}"
