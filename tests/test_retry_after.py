"""A port that says when to come back is not asked before: a retryable ``PortError`` carrying
``retry_after`` (seconds: HTTP 429's ``Retry-After``, Shopify's throttle status) puts the next
attempt of the effect at least that far off, never nearer than the policy's back-off, at most
a day off, whatever number the port gave."""

from __future__ import annotations

import math
from datetime import timedelta

import httpx
import pytest

from returnflow import RequestLine, ReturnPolicy, ReturnRequest
from returnflow._delivery import RETRY_AFTER_CAP, wait_before_retry
from returnflow.demo.scenarios import SHOP, order_1001
from returnflow.errors import PortError
from returnflow.integrations.shopify import ShopifyPlatformReturns, ShopifyShop
from returnflow.ports.store import OutboxEntry
from returnflow.testing import Harness, make_order
from returnflow.testing.shopify import ShopifyAdminMock

BACK_OFF = ReturnPolicy(max_attempts=5, retry_base_seconds=2.0, retry_cap_seconds=60.0)


def _label_entry(harness: Harness, return_id: str) -> OutboxEntry:
    (entry,) = [e for e in harness.store.outbox(SHOP, return_id) if e.effect.kind == "create_label"]
    return entry


def _label_refused(retry_after: float | None) -> tuple[Harness, str]:
    """A return whose label the carrier refused once, saying ``retry_after``."""
    harness = Harness(policy=BACK_OFF)
    harness.ports.commerce.add_order(order_1001(SHOP))
    error = PortError("carrier", "create_label", "rate limited", retry_after=retry_after)
    harness.ports.carrier.fail("create_label", error=error)
    request = ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 1)])
    return harness, harness.service.request(request).id


def test_an_effect_is_not_retried_before_the_ports_retry_after() -> None:
    harness, return_id = _label_refused(3600.0)
    failed_at = harness.clock()
    entry = _label_entry(harness, return_id)
    assert (entry.status, entry.attempts) == ("pending", 1)
    assert entry.next_attempt_at == failed_at + timedelta(seconds=3600)
    # the policy's whole back-off (60 s, plus its jitter) is long past: still not asked
    harness.clock.advance(seconds=3599)
    assert harness.service.dispatch_pending().delivered == 0
    assert len(harness.ports.carrier.calls_to("create_label")) == 1
    harness.clock.advance(seconds=1)
    assert harness.service.dispatch_pending().delivered >= 1
    assert len(harness.ports.carrier.calls_to("create_label")) == 2
    assert harness.store.get(SHOP, return_id).status == "label_sent"


def test_a_retry_after_shorter_than_the_back_off_waits_the_back_off() -> None:
    harness, return_id = _label_refused(0.5)
    failed_at = harness.clock()
    entry = _label_entry(harness, return_id)
    assert entry.next_attempt_at is not None
    # the first back-off is 2 s with a jitter of up to a quarter
    assert timedelta(seconds=2) <= entry.next_attempt_at - failed_at <= timedelta(seconds=2.5)
    harness.clock.advance(seconds=1)
    assert harness.service.dispatch_pending().delivered == 0  # half a second is not enough
    harness.clock.advance(seconds=2)
    assert harness.service.dispatch_pending().delivered >= 1


@pytest.mark.parametrize("retry_after", [1e9, 1e308, math.inf])
def test_a_retry_after_past_a_day_waits_a_day(retry_after: float) -> None:
    harness, return_id = _label_refused(retry_after)
    entry = _label_entry(harness, return_id)
    assert entry.next_attempt_at == harness.clock() + RETRY_AFTER_CAP
    harness.clock.advance(seconds=RETRY_AFTER_CAP.total_seconds() - 1)
    assert harness.service.dispatch_pending().delivered == 0
    harness.clock.advance(seconds=1)
    assert harness.service.dispatch_pending().delivered >= 1


@pytest.mark.parametrize("retry_after", [None, 0.0, -5.0, math.nan, -math.inf])
def test_a_retry_after_that_says_nothing_leaves_the_back_off(retry_after: float | None) -> None:
    harness, return_id = _label_refused(retry_after)
    entry = _label_entry(harness, return_id)
    assert entry.next_attempt_at is not None
    wait = entry.next_attempt_at - harness.clock()
    assert timedelta(seconds=2) <= wait <= timedelta(seconds=2.5)


def test_the_wait_is_the_longer_of_the_back_off_and_the_ports_answer() -> None:
    back_off = timedelta(seconds=8)
    said = PortError("p", "op", "slow down", retry_after=30.25)
    assert wait_before_retry(back_off, said) == timedelta(seconds=30.25)
    assert wait_before_retry(timedelta(seconds=40), said) == timedelta(seconds=40)
    assert wait_before_retry(back_off, ValueError("not a port's")) == back_off
    assert wait_before_retry(back_off, PortError("p", "op", "down")) == back_off
    # an integer from a host's own PortError is seconds too
    assert wait_before_retry(back_off, PortError("p", "op", "x", retry_after=60)) == timedelta(
        seconds=60
    )


def test_a_retry_after_on_the_last_try_still_gives_up() -> None:
    harness = Harness(policy=ReturnPolicy(max_attempts=1))
    harness.ports.commerce.add_order(order_1001(SHOP))
    error = PortError("carrier", "create_label", "rate limited", retry_after=30.0)
    harness.ports.carrier.fail("create_label", error=error)
    request = ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L1", 1)])
    return_id = harness.service.request(request).id
    entry = _label_entry(harness, return_id)
    assert entry.status == "failed"  # no attempt is left: waiting changes nothing
    assert "needs_review" in harness.store.get(SHOP, return_id).state


# -- Shopify's throttle, through the adapter, to the schedule --------------------------------------

ORDER = "gid://shopify/Order/1"


def test_shopifys_throttle_answer_puts_the_retry_when_the_bucket_holds_the_cost() -> None:
    ports = Harness().ports
    ports.commerce.add_order(make_order("shop-a", ORDER))
    mock = ShopifyAdminMock(
        ports.commerce, {"a.myshopify.com": ("shop-a", "token-a")}, variant_prices={}
    )
    adapter = ShopifyPlatformReturns(
        {"shop-a": ShopifyShop("a.myshopify.com", "token-a")},
        client=httpx.Client(transport=mock.transport()),
        restock_location_id="gid://shopify/Location/1",
    )
    made = Harness(
        policy=ReturnPolicy(platform_mode="native", retry_cap_seconds=60.0),
        ports=ports,
        platform_returns=adapter,
    )
    # the bucket holds 100 points, the call costs 1000, it refills 50 a second: 18 s
    mock.throttle(available=100, requested=1000, restore_rate=50)
    opened = made.service.request(
        ReturnRequest(shop="shop-a", order_id=ORDER, lines=[RequestLine("L1", 1)])
    )
    throttled_at = made.clock()
    (entry,) = [
        e for e in made.store.outbox("shop-a", opened.id) if e.effect.kind == "open_platform_return"
    ]
    assert (entry.status, entry.attempts) == ("pending", 1)
    assert entry.last_error is not None
    assert "THROTTLED" in entry.last_error
    assert entry.next_attempt_at == throttled_at + timedelta(seconds=18)
    assert mock.requests == []  # the mock records the requests it answered: none yet
    made.clock.advance(seconds=17.5)  # the policy's first back-off (2 s) is long past
    made.service.dispatch_pending()
    assert mock.requests == []  # not asked again before the bucket refilled
    made.clock.advance(seconds=0.5)
    made.service.dispatch_pending()
    assert [r.operation for r in mock.requests][:1] == ["ReturnflowReturnCreate"]
    assert made.service.get("shop-a", opened.id).refs.platform_return_id is not None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("nan", 1.0), ("Wed, 21 Oct 2026 07:28:00 GMT", 1.0), ("-3", 0.0)],
)
def test_shopifys_retry_after_header_is_a_number_of_seconds(header: str, seconds: float) -> None:
    answer = httpx.Response(429, headers={"Retry-After": header})
    adapter = ShopifyPlatformReturns(
        {"shop-a": ShopifyShop("a.myshopify.com", "token-a")},
        client=httpx.Client(transport=httpx.MockTransport(lambda request: answer)),
    )
    with pytest.raises(PortError) as throttled:
        adapter.get_return("shop-a", "gid://shopify/Return/1")
    assert throttled.value.retryable
    assert throttled.value.retry_after == seconds
