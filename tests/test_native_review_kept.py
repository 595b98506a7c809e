"""A return a failed payout sent to a person stays with the person when the warehouse's
Finished comes after it.

With completion on receipt, the receipt completes the return and the Finished that follows
is redundant. A return whose settlement pays nothing closes at once, before its platform
return is processed; a processing refused for good then reopens it for a person (the
processing goes out again when the person closes it). The Finished that came next
completed it again as if a person had: the processing was sent again and the return
closed, with nobody having looked (and a return whose Finished came before the receipt
stayed in review, so the end depended on the order of the facts)."""

from __future__ import annotations

import pytest

from _builders import SHOP, caps, eur, native_harness, passed, platform, receive, request
from returnflow import FeePolicy, ReturnPolicy, WarehouseFinished
from returnflow.domain.policy import Completion
from returnflow.errors import PortError
from returnflow.testing import Harness


def processed(made: Harness) -> int:
    """How many processings the platform did (not those it refused)."""
    return sum(call.outcome != "failed" for call in platform(made).calls_to("process"))


@pytest.mark.parametrize("finished_first", [False, True], ids=["finished-last", "finished-first"])
def test_the_warehouses_finished_does_not_close_a_return_a_person_is_to_look_at(
    finished_first: bool,
) -> None:
    fees = FeePolicy(return_shipping=eur("10.00"))  # takes the cap's whole 10.00
    policy = ReturnPolicy(
        platform_mode="native", fees=fees, max_attempts=1, completion=Completion.ON_RECEIPT
    )
    made = native_harness(policy)
    return_id = request(made, caps(1))
    cap = made.service.get(SHOP, return_id).lines[0]
    refused = PortError("platform_returns", "process", "refused", retryable=False)
    platform(made).fail("process", error=refused)
    finished = WarehouseFinished(shop=SHOP, return_id=return_id, event_id="f1")
    if finished_first:
        made.service.handle(finished)
    receive(made, return_id, "r1", passed(cap.id))
    if not finished_first:
        made.service.handle(finished)
    record = made.service.get(SHOP, return_id)
    assert record.status == "needs_review"
    assert record.review_reasons == (
        "process_platform_return failed: PortError: platform_returns.process: refused",
    )
    assert processed(made) == 0  # nothing processed without a person
    closed = made.service.close(SHOP, return_id)  # the person closes it: it goes out
    assert closed.status == "closed"
    assert processed(made) == 1
