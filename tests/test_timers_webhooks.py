"""Timers (expiry, release checks) and webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs
import pytest

from returnflow import (
    CarrierUpdate,
    Exchange,
    Money,
    ReleaseTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
)
from returnflow.demo.scenarios import SHOP, order_1001
from returnflow.ports import HoldStatus
from returnflow.stores.memory import MemoryStore
from returnflow.testing import Harness
from returnflow.webhooks import HEADER, sign, verify


def harness(**policy: object) -> Harness:
    made = Harness(policy=ReturnPolicy(**policy))  # type: ignore[arg-type]
    made.ports.commerce.add_order(order_1001())
    return made


def exchange_request() -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP,
        order_id="1001",
        lines=[RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l"))],
    )


def test_tick_expires_a_return_never_shipped_and_undoes_its_approval() -> None:
    made = harness(ship_within_days=14)
    record = made.service.request(exchange_request())
    assert record.state == ("label_sent", "on_hold")

    made.clock.advance(days=14)
    assert made.service.tick().expired == ()  # exactly 14 days is still in time

    made.clock.advance(minutes=1)
    report = made.service.tick()

    assert report.expired == (record.id,)
    expired = made.service.get(SHOP, record.id)
    assert expired.state == ("expired", "exchange_cancelled")
    assert [label.status for label in made.ports.carrier.labels] == ["void"]
    assert [r.status for r in made.ports.warehouse.returns] == ["cancelled"]
    assert [x.status for x in made.ports.commerce.exchange_lines(SHOP, "1001")] == ["cancelled"]
    assert made.ports.commerce.tags(SHOP, "1001") == set()
    assert "return_expired" in [m.template for m in made.ports.notifier.messages]
    assert made.service.tick().expired == ()  # expired once


def test_tick_leaves_a_shipped_return_alone() -> None:
    made = harness(ship_within_days=14, stuck_after={})
    record = made.service.request(exchange_request())
    made.service.handle(
        CarrierUpdate(shop=SHOP, return_id=record.id, event_id="s1", status="RETURN_PICKED_UP")
    )
    made.clock.advance(days=60)
    assert made.service.tick().expired == ()
    assert made.service.get(SHOP, record.id).status == "in_transit"


def test_tick_gives_back_a_paid_upsell_balance_when_it_expires() -> None:
    made = harness(ship_within_days=7)
    made.service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="1001",
            lines=[
                RequestLine(
                    order_line_id="L1",
                    quantity=1,
                    outcome=Exchange(variant_id="tee-l", unit_price=Money("35.00", "EUR")),
                )
            ],
        )
    )
    made.clock.advance(days=8)
    made.service.tick()
    kinds = [(payment.kind, str(payment.amount)) for payment in made.ports.payments.payments]
    assert kinds == [("charge", "10.00 EUR"), ("refund", "10.00 EUR")]


def test_tick_releases_again_a_hold_the_platform_did_not_honour() -> None:
    made = harness(exchange_release=ReleaseTrigger.ON_HANDED_IN)
    record = made.service.request(exchange_request())
    made.ports.commerce.ignore_releases(times=2)
    made.service.handle(
        CarrierUpdate(shop=SHOP, return_id=record.id, event_id="s1", status="RETURN_PICKED_UP")
    )
    hold = made.service.get(SHOP, record.id).refs.exchange_hold_id
    assert hold is not None
    assert made.ports.commerce.exchange_hold_status(SHOP, "1001", hold) is HoldStatus.HELD

    assert made.service.tick().release_checked == (record.id,)  # second release: ignored too
    assert made.service.tick().release_checked == (record.id,)  # third: honoured
    assert made.ports.commerce.exchange_hold_status(SHOP, "1001", hold) is HoldStatus.RELEASED
    assert made.service.tick().release_checked == (record.id,)  # confirms it
    assert made.service.get(SHOP, record.id).release_confirmed
    assert made.service.tick().release_checked == ()
    assert len(made.ports.commerce.calls_to("release_exchange")) == 3


def test_a_hold_that_is_never_released_goes_to_a_person() -> None:
    made = harness(exchange_release=ReleaseTrigger.ON_HANDED_IN)
    record = made.service.request(exchange_request())
    made.ports.commerce.ignore_releases(times=None)
    made.service.handle(
        CarrierUpdate(shop=SHOP, return_id=record.id, event_id="s1", status="RETURN_PICKED_UP")
    )
    for _ in range(5):
        made.service.tick()
    stored = made.service.get(SHOP, record.id)
    assert stored.status == "needs_review"
    assert "kept the exchange on hold after 3 releases" in stored.review_reasons[-1]
    assert len(made.ports.commerce.calls_to("release_exchange")) == 3


BODY = b'{"id":820982911946154508,"topic":"returns/approve"}'


def test_a_signature_made_with_the_secret_verifies() -> None:
    expected = base64.b64encode(hmac.new(b"hush", BODY, hashlib.sha256).digest()).decode()
    assert sign(BODY, "hush") == expected
    assert verify(BODY, expected, "hush")
    assert verify(BODY, expected.encode(), b"hush")
    assert HEADER == "X-Shopify-Hmac-Sha256"


@pytest.mark.parametrize(
    "signature",
    [
        sign(BODY, "another secret"),  # forged
        sign(BODY + b" ", "hush"),  # body changed
        sign(BODY, "hush")[:-8],  # truncated
        sign(BODY, "hush")[:-2] + "==",  # truncated, padded
        "",
        None,
        "%%% not base64 %%%",
        base64.b64encode(hmac.new(b"hush", BODY, hashlib.sha1).digest()).decode(),  # other hash
    ],
)
def test_forged_truncated_or_malformed_signatures_fail(signature: str | None) -> None:
    assert not verify(BODY, signature, "hush")


def test_an_empty_secret_never_verifies() -> None:
    assert not verify(BODY, sign(BODY, ""), "")


def test_a_return_that_makes_no_progress_goes_to_a_person_on_a_tick() -> None:
    made = harness(stuck_after={"in_transit": timedelta(days=30)})
    record = made.service.request(exchange_request())
    made.service.handle(
        CarrierUpdate(shop=SHOP, return_id=record.id, event_id="s1", status="RETURN_PICKED_UP")
    )
    moved = made.service.get(SHOP, record.id)
    assert moved.due_at is not None
    made.clock.advance(days=30)
    assert made.service.tick().stuck == ()  # exactly 30 days: still in time
    made.clock.advance(minutes=1)
    report = made.service.tick()
    assert report.stuck == (record.id,)
    stuck = made.service.get(SHOP, record.id)
    assert stuck.state == ("needs_review", "on_hold")  # the exchange stays held
    assert stuck.review_reasons[-1].startswith("no progress in in_transit since ")
    assert made.service.tick().stuck == ()  # once


def test_a_tick_reads_only_what_is_due_through_the_index() -> None:
    calls: list[str] = []

    class Counting(MemoryStore):
        def list(self, *args: object, **kwargs: object) -> Sequence[ReturnRecord]:
            calls.append("list")
            return super().list(*args, **kwargs)  # type: ignore[arg-type]

        def list_in(self, *args: object, **kwargs: object) -> Sequence[ReturnRecord]:
            calls.append(f"list_in{args}")
            return super().list_in(*args, **kwargs)  # type: ignore[arg-type]

        def list_due(self, now: datetime, *, limit: int = 1000) -> Sequence[ReturnRecord]:
            calls.append("list_due")
            return super().list_due(now, limit=limit)

    policy = ReturnPolicy(exchange_release=ReleaseTrigger.ON_HANDED_IN)
    made = Harness(store=Counting(), policy=policy)
    made.ports.commerce.add_order(order_1001())
    record = made.service.request(exchange_request())
    calls.clear()
    report = made.service.tick()
    assert report.expired == report.stuck == report.release_checked == ()
    assert calls == ["list_due"]  # one indexed read; no scan of open or released returns
    made.ports.commerce.ignore_releases(times=1)
    made.service.handle(
        CarrierUpdate(shop=SHOP, return_id=record.id, event_id="s1", status="RETURN_PICKED_UP")
    )
    calls.clear()
    assert made.service.tick().release_checked == (record.id,)  # a release, found by due_at
    assert "list_due" in calls
    assert not any(call.startswith(("list_in", "list(")) or call == "list" for call in calls)
    made.clock.advance(days=31)
    assert made.service.tick().expired == ()  # handed in: nothing left to expire


def test_a_tick_works_in_batches_of_limit_returns() -> None:
    made = harness(ship_within_days=14)
    made.ports.commerce.add_order(order_1001(SHOP, "1002"))
    made.ports.commerce.add_order(order_1001(SHOP, "1003"))
    ids = [
        made.service.request(attrs.evolve(exchange_request(), order_id=order)).id
        for order in ("1001", "1002", "1003")
    ]
    made.clock.advance(days=15)
    first = made.service.tick(limit=2).expired
    second = made.service.tick(limit=2).expired
    assert first == tuple(ids[:2])  # earliest due first, at most ``limit`` a tick
    assert second == (ids[2],)
    assert made.service.tick(limit=2).expired == ()


def test_an_instant_exchange_not_back_in_time_has_its_authorization_captured() -> None:
    made = harness(
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
        instant_exchange_return_days=10,
        stuck_after={},
    )
    record = made.service.request(exchange_request())
    made.service.handle(
        CarrierUpdate(shop=SHOP, return_id=record.id, event_id="s1", status="RETURN_PICKED_UP")
    )
    released = made.service.get(SHOP, record.id)
    assert released.state == ("in_transit", "released")
    made.clock.advance(days=10, minutes=1)
    report = made.service.tick()
    assert report.captured == (record.id,)
    assert [p.kind for p in made.ports.payments.payments] == ["authorization", "capture"]
    assert made.service.tick().captured == ()
