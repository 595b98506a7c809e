"""A person's changes to the platform return in the platform's admin (native mode): its lines
(``returns/update``) and a label attached to its reverse delivery
(``reverse_deliveries/attach_deliverable``), through the public API: followed when they can
be, handed to a person when they conflict with what came back, echoes of returnflow's own
calls changing nothing, duplicates and facts out of order ending as in order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Exchange,
    Money,
    OrderLine,
    OrderSnapshot,
    QcResult,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.domain.inbound import PlatformLine, PlatformReturnEvent
from returnflow.domain.model import ReturnRecord
from returnflow.domain.policy import Completion
from returnflow.errors import InvalidPayload
from returnflow.ports.platform_returns import Quantity, ShopifyReturnStatus
from returnflow.serialization import structure, unstructure
from returnflow.testing import Harness
from returnflow.testing.platform_returns import FakePlatformReturns

SHOP = "shop-1"
ORDER_ID = "1001"
ORDERED_AT = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
NATIVE = ReturnPolicy(platform_mode="native")
NO_LABEL = ReturnPolicy(platform_mode="native", send_label=False)
T0 = datetime(2026, 1, 15, 12, 30, tzinfo=timezone.utc)


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


def harness(policy: ReturnPolicy = NATIVE) -> Harness:
    made = Harness(policy=policy)
    made.ports.commerce.add_order(
        OrderSnapshot(
            id=ORDER_ID,
            shop=SHOP,
            created_at=ORDERED_AT,
            fulfilled_at=ORDERED_AT,
            currency="EUR",
            customer_email="customer@example.com",
            lines=[
                OrderLine(id="L1", sku="TEE", variant_id="tee-m", quantity=1, unit_price=eur("25")),
                OrderLine(id="L2", sku="CAP", variant_id="cap", quantity=3, unit_price=eur("10")),
            ],
        )
    )
    return made


def platform(made: Harness) -> FakePlatformReturns:
    assert made.platform_returns is not None
    return made.platform_returns


def request(made: Harness, *lines: RequestLine) -> ReturnRecord:
    return made.service.request(ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=lines))


def live(made: Harness, return_id: str) -> str:
    platform_id = made.service.get(SHOP, return_id).refs.platform_return_id
    assert platform_id is not None
    return platform_id


def receive(
    made: Harness, return_id: str, event_id: str, line: str, units: int, **qc: object
) -> None:
    made.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=return_id,
            event_id=event_id,
            lines=[ReceivedLine(line_id=line, quantity=units, **qc)],  # type: ignore[arg-type]
        )
    )


def update(
    made: Harness, return_id: str, event_id: str, at: datetime | None = None, **lines: int
) -> str:
    """A ``returns/update`` saying the platform return now holds ``lines`` (order line: units)."""
    event = PlatformReturnEvent(
        shop=SHOP,
        return_id=return_id,
        event_id=event_id,
        topic="returns/update",  # type: ignore[arg-type]
        lines=[PlatformLine(order_line_id=k, quantity=n) for k, n in lines.items()],
        occurred_at=at,
    )
    return made.service.handle(event).status


def attached(made: Harness, return_id: str, event_id: str, tracking: str) -> str:
    event = PlatformReturnEvent(
        shop=SHOP,
        return_id=return_id,
        event_id=event_id,
        topic="reverse_deliveries/attach_deliverable",  # type: ignore[arg-type]
        tracking_number=tracking,
        label_url=f"https://platform.example/{tracking}.pdf",
    )
    return made.service.handle(event).status


def take_out(made: Harness, return_id: str, order_line: str, units: int) -> None:
    """A person takes units out of the platform return in the platform's admin."""
    there = platform(made).get_return(SHOP, live(made, return_id))
    line_id = there.line_id(order_line)
    platform(made).remove_lines(
        SHOP,
        there.return_id,
        [Quantity(line_id, units)],
        idempotency_key=f"admin-{return_id}-{order_line}",
    )


def units_of(record: ReturnRecord, order_line: str) -> int:
    return sum(line.quantity for line in record.lines if line.order_line_id == order_line)


# -- returns/update ---------------------------------------------------------------------------


def test_units_taken_out_in_the_admin_are_taken_off_the_return_and_never_asked_again() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 3))
    take_out(made, opened.id, "L2", 1)
    assert update(made, opened.id, "u1", L2=2) == "applied"
    record = made.service.get(SHOP, opened.id)
    (line,) = record.lines
    assert (line.quantity, len(line.units), len(line.unit_amounts)) == (2, 2, 2)
    assert record.status == "label_sent"  # followed: nothing for a person
    assert record.review_reasons == ()
    (units,) = record.platform_units
    assert (units.quantity, units.removed) == (3, 1)
    receive(made, opened.id, "r1", line.id, 2)
    record = made.service.get(SHOP, opened.id)
    assert record.status == "closed"  # the two units left came back: complete
    assert platform(made).refunded(SHOP, live(made, opened.id)) == eur("20.00")
    there = platform(made).get_return(SHOP, live(made, opened.id))
    assert there.status is ShopifyReturnStatus.CLOSED
    # returnflow never asked to remove what the person removed
    assert [c.idempotency_key for c in platform(made).calls_to("remove_lines")] == [
        f"admin-{opened.id}-L2"
    ]


def test_the_unit_taken_out_goes_back_to_the_order() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 3))
    take_out(made, opened.id, "L2", 1)
    update(made, opened.id, "u1", L2=2)
    # the third cap is free again: another return can take it
    other = request(made, RequestLine("L2", 1))
    assert other.lines[0].units == (2,)


def test_an_update_that_completes_a_short_receipt_completes_the_return() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 2))
    receive(made, opened.id, "r1", opened.lines[0].id, 1)
    assert made.service.get(SHOP, opened.id).status == "item_received"
    take_out(made, opened.id, "L2", 1)
    assert update(made, opened.id, "u1", L2=1) == "applied"
    record = made.service.get(SHOP, opened.id)
    assert record.status == "closed"
    assert platform(made).refunded(SHOP, live(made, opened.id)) == eur("10.00")


def test_a_line_taken_out_whole_leaves_the_return() -> None:
    made = harness()
    opened = request(made, RequestLine("L1", 1), RequestLine("L2", 1))
    take_out(made, opened.id, "L1", 1)
    assert update(made, opened.id, "u1", L1=0, L2=1) == "applied"
    record = made.service.get(SHOP, opened.id)
    assert [line.order_line_id for line in record.lines] == ["L2"]


def test_echoes_of_returnflows_own_removals_change_nothing() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 2))
    line = opened.lines[0].id
    receive(made, opened.id, "r1", line, 1)
    receive(made, opened.id, "r2", line, 1, qc=QcResult.FAIL)
    before = made.service.get(SHOP, opened.id)
    assert before.status == "closed"
    (units,) = before.platform_units
    assert units.removed == 1  # returnflow took the failed unit out itself
    assert update(made, opened.id, "u1", L2=1) == "ignored"  # the echo of that removal
    assert update(made, opened.id, "u2", L2=2) == "ignored"  # as opened: nothing new either
    after = made.service.get(SHOP, opened.id)
    assert (after.state, after.lines) == (before.state, before.lines)


def test_a_repeated_update_is_a_duplicate() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 3))
    take_out(made, opened.id, "L2", 1)
    assert update(made, opened.id, "u1", L2=2) == "applied"
    assert update(made, opened.id, "u1", L2=2) == "duplicate"
    assert units_of(made.service.get(SHOP, opened.id), "L2") == 2


def test_updates_out_of_order_end_as_the_newest_says() -> None:
    def run(order: list[tuple[str, datetime, dict[str, int]]]) -> tuple[ReturnRecord, list[str]]:
        made = harness()
        opened = request(made, RequestLine("L1", 1), RequestLine("L2", 3))
        take_out(made, opened.id, "L1", 1)
        take_out(made, opened.id, "L2", 1)
        statuses = [update(made, opened.id, event, at, **lines) for event, at, lines in order]
        return made.service.get(SHOP, opened.id), statuses

    first = ("u1", T0, {"L1": 0, "L2": 3})  # the T-shirt taken out
    second = ("u2", T0 + timedelta(minutes=5), {"L1": 0, "L2": 2})  # then a cap
    in_order, statuses = run([first, second])
    assert statuses == ["applied", "applied"]
    reversed_order, statuses = run([second, first])
    assert statuses == ["applied", "ignored"]  # the older one is stale
    for record in (in_order, reversed_order):
        assert [(line.order_line_id, line.quantity) for line in record.lines] == [("L2", 2)]
    assert in_order.platform_units == reversed_order.platform_units


def test_taking_out_units_that_came_back_goes_to_a_person() -> None:
    made = harness(
        ReturnPolicy(platform_mode="native", completion=Completion.ON_WAREHOUSE_FINISHED)
    )
    opened = request(made, RequestLine("L2", 2))
    receive(made, opened.id, "r1", opened.lines[0].id, 2)
    assert update(made, opened.id, "u1", L2=1) == "applied"
    record = made.service.get(SHOP, opened.id)
    assert record.status == "needs_review"
    assert record.review_reasons == (
        "lines changed in the platform's admin (L2: 1 taken out): "
        "L2 has 0 unit(s) not received, settled or claimed",
    )
    assert units_of(record, "L2") == 2  # nothing changed but the review


def test_units_added_in_the_admin_go_to_a_person() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 1))
    assert update(made, opened.id, "u1", L1=1, L2=2) == "applied"
    record = made.service.get(SHOP, opened.id)
    assert record.status == "needs_review"
    assert record.review_reasons == (
        "lines changed in the platform's admin (L1: 1 added, L2: 1 added): units added "
        "there need an eligibility check, the warehouse and a label",
    )
    assert units_of(record, "L2") == 1


def test_units_of_an_exchanged_line_taken_out_go_to_a_person() -> None:
    made = harness()
    swap = Exchange(variant_id="cap-red", unit_price=eur("10.00"), quantity=2)
    opened = request(made, RequestLine("L2", 2, outcome=swap))
    assert update(made, opened.id, "u1", L2=1) == "applied"
    record = made.service.get(SHOP, opened.id)
    assert record.status == "needs_review"
    assert "L2 is exchanged" in record.review_reasons[0]


def test_every_unit_taken_out_goes_to_a_person() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 2))
    assert update(made, opened.id, "u1", L2=0) == "applied"
    record = made.service.get(SHOP, opened.id)
    assert record.status == "needs_review"
    assert record.review_reasons[0].endswith("every unit was taken out: cancel the return instead")


def test_an_update_on_an_ended_return_is_ignored() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 2))
    made.service.cancel(SHOP, opened.id)
    assert update(made, opened.id, "u1", L2=1) == "ignored"
    assert made.service.get(SHOP, opened.id).status == "cancelled"


# -- reverse_deliveries/attach_deliverable -----------------------------------------------------


def test_a_label_attached_in_the_admin_is_the_returns_and_the_carrier_flow_follows() -> None:
    made = harness(NO_LABEL)
    opened = request(made, RequestLine("L2", 1))
    assert made.service.get(SHOP, opened.id).status == "approved"  # no label of returnflow's
    assert attached(made, opened.id, "d1", "1Z999") == "applied"
    record = made.service.get(SHOP, opened.id)
    assert record.status == "label_sent"
    assert (record.refs.tracking_number, record.refs.label_url) == (
        "1Z999",
        "https://platform.example/1Z999.pdf",
    )
    # the platform sent its label to the customer: returnflow sends none, buys none
    assert "label_sent" not in [m.template for m in made.ports.notifier.messages]
    assert made.ports.carrier.calls_to("create_label") == []
    assert attached(made, opened.id, "d1", "1Z999") == "duplicate"
    made.service.handle(
        CarrierUpdate(shop=SHOP, return_id=opened.id, event_id="c1", status=CarrierStatus.PICKED_UP)
    )
    assert made.service.get(SHOP, opened.id).status == "in_transit"
    receive(made, opened.id, "r1", opened.lines[0].id, 1)
    assert made.service.get(SHOP, opened.id).status == "closed"


def test_a_label_the_platform_gave_is_not_voided_through_the_carrier_on_a_cancel() -> None:
    made = harness(NO_LABEL)
    opened = request(made, RequestLine("L2", 1))
    attached(made, opened.id, "d1", "1Z999")
    made.service.cancel(SHOP, opened.id)
    assert made.service.get(SHOP, opened.id).status == "cancelled"
    assert made.ports.carrier.calls_to("void_label") == []


def test_a_label_attached_before_the_approval_waits_for_it() -> None:
    made = harness(ReturnPolicy(platform_mode="native", send_label=False, auto_approve=False))
    opened = request(made, RequestLine("L2", 1))
    assert opened.status == "pending_review"
    assert attached(made, opened.id, "d1", "1Z999") == "parked"
    assert made.service.get(SHOP, opened.id).refs.tracking_number is None
    made.service.approve(SHOP, opened.id)
    record = made.service.get(SHOP, opened.id)
    assert (record.status, record.refs.tracking_number) == ("label_sent", "1Z999")
    assert record.parked == ()


def test_returnflows_own_label_attached_there_before_its_answer_is_an_echo() -> None:
    made = harness()
    made.ports.carrier.fail("create_label")  # the label's answer is not back yet
    opened = request(made, RequestLine("L2", 1))
    assert made.service.get(SHOP, opened.id).status == "approved"
    # the host attached the label it is buying to the platform's reverse delivery
    assert attached(made, opened.id, "d1", "TRK000001") == "parked"
    made.dispatch_due()
    record = made.service.get(SHOP, opened.id)
    assert (record.status, record.refs.tracking_number) == ("label_sent", "TRK000001")
    assert record.parked == ()
    assert record.review_reasons == ()
    assert [entry.payload.get("why") for entry in record.history if entry.event == "ignored"] == [
        "the return's own label"
    ]


def test_a_second_label_attached_there_goes_to_a_person() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 1))
    own = made.service.get(SHOP, opened.id).refs.tracking_number
    assert own is not None
    assert attached(made, opened.id, "d1", own) == "ignored"  # the echo of its own
    assert attached(made, opened.id, "d2", "1Z999") == "applied"
    record = made.service.get(SHOP, opened.id)
    assert record.status == "needs_review"
    assert record.refs.tracking_number == own
    assert "1Z999" in record.review_reasons[0]


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"topic": "returns/update"}, "lines"),
        ({"topic": "returns/update", "lines": "L1"}, "lines"),
        ({"topic": "returns/update", "lines": [("L1", 1)]}, "lines[0]"),
        ({"topic": "reverse_deliveries/attach_deliverable"}, "tracking_number"),
        (
            {"topic": "reverse_deliveries/attach_deliverable", "tracking_number": " "},
            "tracking_number",
        ),
        ({"topic": "returns/update", "lines": [], "occurred_at": "yesterday"}, "occurred_at"),
    ],
)
def test_a_bad_platform_change_names_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPayload) as refused:
        PlatformReturnEvent(shop=SHOP, return_id="R1", event_id="w1", **fields)  # type: ignore[arg-type]
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: PlatformLine(order_line_id="L1", quantity=-1), "quantity"),
        (lambda: PlatformLine(order_line_id="L1", quantity=True), "quantity"),
        (lambda: PlatformLine(order_line_id="", quantity=1), "order_line_id"),
        (
            lambda: PlatformReturnEvent(
                shop=SHOP,
                return_id="R1",
                event_id="w1",
                topic="returns/update",  # type: ignore[arg-type]
                lines=[PlatformLine(order_line_id="L1", quantity=1)] * 2,
            ),
            "lines[1].order_line_id",
        ),
    ],
)
def test_a_bad_platform_line_names_the_field(make: object, field: str) -> None:
    with pytest.raises(InvalidPayload) as refused:
        make()  # type: ignore[operator]
    assert refused.value.field == field


def test_an_update_naming_another_platform_return_changes_nothing() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 2))
    before = made.service.get(SHOP, opened.id)
    with pytest.raises(InvalidPayload):
        made.service.handle(
            PlatformReturnEvent(
                shop=SHOP,
                return_id=opened.id,
                event_id="u1",
                topic="returns/update",  # type: ignore[arg-type]
                platform_return_id="gid://other/Return/9",
                lines=[PlatformLine(order_line_id="L2", quantity=1)],
            )
        )
    assert made.service.get(SHOP, opened.id) == before


def test_the_changes_round_trip_as_plain_data() -> None:
    for event in (
        PlatformReturnEvent(
            shop=SHOP,
            return_id="R1",
            event_id="u1",
            topic="returns/update",  # type: ignore[arg-type]
            lines=[PlatformLine(order_line_id="L2", quantity=1)],
            occurred_at=T0,
        ),
        PlatformReturnEvent(
            shop=SHOP,
            return_id="R1",
            event_id="d1",
            topic="reverse_deliveries/attach_deliverable",  # type: ignore[arg-type]
            tracking_number="1Z999",
        ),
    ):
        assert structure(unstructure(event), PlatformReturnEvent) == event


def test_an_update_without_its_time_is_not_ordered_against_the_platforms_clock() -> None:
    made = harness()
    opened = request(made, RequestLine("L2", 3))
    take_out(made, opened.id, "L2", 1)
    assert update(made, opened.id, "u1", L2=2) == "applied"  # no occurred_at
    made.service.handle(
        PlatformReturnEvent(
            shop=SHOP,
            return_id=opened.id,
            event_id="u2",
            topic="returns/update",  # type: ignore[arg-type]
            lines=[PlatformLine(order_line_id="L2", quantity=1)],
            occurred_at=T0 - timedelta(days=30),  # the platform's time, long before ours
        )
    )
    assert units_of(made.service.get(SHOP, opened.id), "L2") == 1
