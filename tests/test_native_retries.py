"""Native mode when a processing call's answer is lost, and when the platform refuses one
while the units are on their way: the outcome does not depend on when the answer came."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import _builders as builders
from _builders import order_line
from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    FeePolicy,
    Fixed,
    Keep,
    Money,
    OrderSnapshot,
    QcResult,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    StoreCredit,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.inbound import InboundEvent
from returnflow.domain.policy import Completion, RefundTrigger
from returnflow.domain.settlement import Percent
from returnflow.errors import PortError
from returnflow.testing import FakePorts, Harness, reordering
from returnflow.testing.platform_returns import FakePlatformReturns

SHOP = "shop-1"
AT = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)


def order() -> OrderSnapshot:
    """A T-shirt and two caps, 10.00 each."""
    lines = [order_line("L1", "TEE", "10.00"), order_line("L2", "CAP", "10.00", 2)]
    return builders.order(SHOP, "1001", lines, "customer@example.com", at=AT)


def test_a_processing_that_acted_before_its_answer_was_lost_is_not_compared_again() -> None:
    ports = FakePorts()
    platform = FakePlatformReturns(ports.commerce)
    platform.lose_answers("process")  # processed there, the answer never reached returnflow
    policy = ReturnPolicy(platform_mode="native", refund_trigger=RefundTrigger.ON_RECEIVED)
    made = Harness(policy=policy, ports=ports, platform_returns=platform)
    made.ports.commerce.add_order(order())
    lines = [
        RequestLine(order_line_id="L1", quantity=1),
        RequestLine(order_line_id="L2", quantity=2),
    ]
    rid = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    # the caps come first: refunded on receipt, in a processing call of their own
    received = [ReceivedLine(line_id="L2", quantity=2)]
    made.service.handle(WarehouseReceipt(shop=SHOP, return_id=rid, event_id="r", lines=received))
    made.dispatch_due()
    record = made.service.get(SHOP, rid)
    assert record.status == "item_received", record.review_reasons
    units = {units.order_line_id: units for units in record.platform_units}
    assert (units["L2"].processed, units["L2"].confirmed) == (2, 2)
    # processed once there: the retry under the same key got the first call's answer
    there = platform.get_return(SHOP, record.refs.platform_return_id or "")
    processed = dict(there.processed)
    assert processed[dict(there.line_ids)["L2"]] == 2
    assert not processed.get(dict(there.line_ids)["L1"])
    assert [entry.event for entry in record.history].count("platform_return_processed") == 1
    assert len({call.idempotency_key for call in platform.calls_to("process")}) == 1


def _run(facts: list[InboundEvent]) -> Harness:
    policy = ReturnPolicy(
        platform_mode="native",
        refund_trigger=RefundTrigger.ON_HANDED_IN,
        completion=Completion.ON_WAREHOUSE_FINISHED,
    )
    made = Harness(policy=policy)
    made.ports.commerce.add_order(order())
    assert made.platform_returns is not None
    refused = PortError("platform_returns", "process", "refused", retryable=False)
    made.platform_returns.fail("process", times=None, error=refused)
    lines = [RequestLine(order_line_id="L2", quantity=2)]
    made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines))
    for fact in facts:
        made.service.handle(fact)
    return made


def test_a_refused_processing_keeps_the_return_in_review_whether_units_came_before_or_after() -> (
    None
):
    # refund on hand-in: the pickup plans the processing and the platform refuses it for
    # good; the units (QC failed) come after that answer or, first, before it: the return
    # waits for a person either way (DESIGN.md section 6: facts in any order end alike)
    scan = CarrierUpdate(shop=SHOP, return_id="R0001", event_id="s", status=CarrierStatus.PICKED_UP)
    received = [ReceivedLine(line_id="L2", quantity=2, qc=QcResult.FAIL)]
    rcv = WarehouseReceipt(shop=SHOP, return_id="R0001", event_id="r", lines=received)
    in_order, permuted = _run([scan, rcv]), _run([rcv, scan])
    found = reordering.differences(
        reordering.outcome(in_order, SHOP, ["R0001"]), reordering.outcome(permuted, SHOP, ["R0001"])
    )
    assert not found
    record = in_order.service.get(SHOP, "R0001")
    assert record.status == "needs_review"
    assert record.lines[0].rejected == 2
    assert record.review_reasons[-1].startswith("process_platform_return failed")


def test_a_store_credit_with_a_bonus_is_processed_on_the_platform_without_a_difference() -> None:
    # the bonus is returnflow's, in the gift card; the platform values only the units
    made = Harness(policy=ReturnPolicy(platform_mode="native"))
    made.ports.commerce.add_order(order())
    credit = StoreCredit(bonus=Money("2.00", "EUR"))
    lines = [RequestLine(order_line_id="L2", quantity=2, outcome=credit)]
    rid = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    received = [ReceivedLine(line_id="L2", quantity=2)]
    made.service.handle(WarehouseReceipt(shop=SHOP, return_id=rid, event_id="r", lines=received))
    made.service.handle(WarehouseFinished(shop=SHOP, return_id=rid, event_id="f"))
    record = made.service.get(SHOP, rid)
    assert record.status == "closed", record.review_reasons
    assert [credit.amount for credit in made.ports.commerce.credits] == [Money("22.00", "EUR")]
    assert [units.confirmed for units in record.platform_units] == [2]


def test_a_returnless_line_with_a_restocking_fee_is_opened_with_its_fee_and_processed() -> None:
    # settled at the request (nothing comes back), its fee with it: the platform return line
    # carries the same fee, so the platform's figure agrees and the return closes
    fees = FeePolicy(restocking=Percent(Decimal(10)))
    made = Harness(policy=ReturnPolicy(platform_mode="native", fees=fees))
    made.ports.commerce.add_order(order())
    lines = [RequestLine(order_line_id="L2", quantity=1, outcome=Keep())]
    rid = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    record = made.service.get(SHOP, rid)
    assert record.status == "closed", record.review_reasons
    assert made.platform_returns is not None
    [opened] = made.platform_returns.calls_to("open_return")
    assert [line.restocking_fee for line in opened.args["lines"]] == [Money("1.00", "EUR")]
    [processed] = made.platform_returns.calls_to("process")
    assert processed.args["refund"] == Money("9.00", "EUR")


def test_a_returnless_line_that_bears_the_return_shipping_fee_opens_the_return_with_it() -> None:
    # the fee is charged with the settlement at the request; the platform takes it when it
    # processes that line, so its figure agrees
    fees = FeePolicy(return_shipping=Fixed(Money("1.50", "EUR")))
    made = Harness(policy=ReturnPolicy(platform_mode="native", fees=fees))
    made.ports.commerce.add_order(order())
    lines = [RequestLine(order_line_id="L2", quantity=1, outcome=Keep())]
    rid = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=lines)).id
    assert made.service.get(SHOP, rid).status == "closed"
    assert made.platform_returns is not None
    [opened] = made.platform_returns.calls_to("open_return")
    assert opened.args["return_shipping_fee"] == Money("1.50", "EUR")
    [processed] = made.platform_returns.calls_to("process")
    assert processed.args["refund"] == Money("8.50", "EUR")
