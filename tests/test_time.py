"""Time at the edges: aware datetimes wherever time enters, arithmetic in UTC on every store,
ISO 8601 with ``Z`` on every supported Python (this module also runs on 3.10)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import attrs
import pytest

from returnflow import (
    CarrierUpdate,
    ConfigurationError,
    ExternalReturn,
    InvalidPayload,
    InvalidTime,
    OrderSnapshot,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
)
from returnflow.demo.scenarios import SHOP, order_1001
from returnflow.domain._time import EARLIEST, LATEST, instant, parse_instant, parse_iso
from returnflow.ports.store import ReturnStore
from returnflow.serialization import external_return_from_dict, structure
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


# -- ISO 8601 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T08:15:00Z", datetime(2026, 1, 31, 8, 15, tzinfo=UTC)),
        ("2026-01-31T08:15:00z", datetime(2026, 1, 31, 8, 15, tzinfo=UTC)),
        ("2026-01-31T08:15:00.250Z", datetime(2026, 1, 31, 8, 15, 0, 250000, tzinfo=UTC)),
        ("2026-01-31T08:15:00.25Z", datetime(2026, 1, 31, 8, 15, 0, 250000, tzinfo=UTC)),
        ("2026-01-31T08:15:00.1234567Z", datetime(2026, 1, 31, 8, 15, 0, 123456, tzinfo=UTC)),
        ("2026-01-31T09:15:00+01:00", datetime(2026, 1, 31, 8, 15, tzinfo=UTC)),
        ("2026-01-31 03:15:00-05:00", datetime(2026, 1, 31, 8, 15, tzinfo=UTC)),
        (" 2026-01-31T08:15:00Z ", datetime(2026, 1, 31, 8, 15, tzinfo=UTC)),
    ],
)
def test_iso_8601_with_z_and_any_fraction_reads_the_same_on_every_python(
    text: str, expected: datetime
) -> None:
    moment = parse_instant("at", text)
    assert moment == expected
    assert moment.tzinfo is UTC
    assert parse_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-01-31T08:15:00", "needs a timezone offset"),
        ("2026-01-31", "needs a timezone offset"),
        ("yesterday", "is not an ISO 8601 date-time"),
        ("2026-02-30T00:00:00Z", "is not an ISO 8601 date-time"),
        ("Z", "is not an ISO 8601 date-time"),
        ("", "is not an ISO 8601 date-time"),
        ("0001-01-01T00:00:00+01:00", "is out of range"),
        ("1899-12-31T23:59:59Z", "is out of range"),
        ("9999-12-31T23:59:59-01:00", "is out of range"),
    ],
)
def test_text_that_is_no_instant_is_refused_naming_the_field(text: str, reason: str) -> None:
    with pytest.raises(InvalidTime) as refused:
        parse_instant("occurred_at", text)
    assert (refused.value.field, refused.value.value) == ("occurred_at", text)
    assert reason in refused.value.reason


def test_the_range_is_half_open_and_held_in_utc() -> None:
    assert instant("at", EARLIEST) == EARLIEST
    with pytest.raises(InvalidTime):
        instant("at", LATEST)
    with pytest.raises(InvalidTime, match="no offset"):
        instant("at", datetime(2026, 1, 1))
    with pytest.raises(InvalidTime, match="must be a timezone-aware datetime"):
        instant("at", "2026-01-01T00:00:00Z")


def test_payloads_read_z_and_hold_utc() -> None:
    data = {
        "source": "loop",
        "external_id": "7",
        "shop": SHOP,
        "order_id": "1001",
        "created_at": "2026-01-12T09:00:00Z",
        "updated_at": "2026-01-12T10:05:00.5+01:00",
        "lines": [{"order_line_id": "L1", "quantity": 1}],
    }
    loop = external_return_from_dict(data)
    assert loop.created_at == datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
    assert loop.updated_at.tzinfo is UTC
    assert loop.updated_at == datetime(2026, 1, 12, 9, 5, 0, 500000, tzinfo=UTC)
    with pytest.raises(InvalidTime) as refused:
        external_return_from_dict({**data, "created_at": "2026-01-12T09:00:00"})
    assert refused.value.field == "created_at"
    with pytest.raises(InvalidTime) as refused:
        external_return_from_dict({**data, "created_at": "0001-01-01T00:00:00+00:00"})
    assert refused.value.field == "created_at"
    update = structure(
        {
            "shop": SHOP,
            "return_id": "R1",
            "event_id": "e1",
            "status": "DELIVERED",
            "occurred_at": "2026-01-12T09:00:00Z",
        },
        CarrierUpdate,
    )
    assert update.occurred_at == datetime(2026, 1, 12, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    "build",
    [
        lambda: OrderSnapshot(
            id="1", shop="s", created_at=datetime(2026, 1, 1), currency="EUR", lines=[]
        ),
        lambda: CarrierUpdate(
            shop="s",
            return_id="R1",
            event_id="e",
            status="DELIVERED",
            occurred_at=datetime(2026, 1, 1),
        ),
        lambda: ExternalReturn(
            source="loop",
            external_id="1",
            shop="s",
            order_id="1",
            lines=[],
            created_at=datetime(2026, 1, 1),
            updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    ],
    ids=["order", "carrier-update", "external-return"],
)
def test_naive_datetimes_in_values_are_refused_by_field(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidPayload) as refused:
        build()
    assert isinstance(refused.value, InvalidTime)
    assert refused.value.field in {"created_at", "occurred_at"}
    assert refused.value.value == datetime(2026, 1, 1)


def test_an_aware_value_is_held_in_utc() -> None:
    order = attrs.evolve(
        order_1001(),
        created_at=datetime(2026, 7, 1, 12, tzinfo=BERLIN),
        fulfilled_at=datetime(2026, 7, 1, 14, tzinfo=BERLIN),
    )
    assert order.created_at == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert order.created_at.tzinfo is UTC
    assert order.fulfilled_at is not None
    assert order.fulfilled_at.tzinfo is UTC


# -- the clock and tick(now=...) ----------------------------------------------------------------


def request() -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP, order_id="1001", lines=[RequestLine(order_line_id="L1", quantity=1)]
    )


def test_a_clock_returning_naive_datetimes_is_a_configuration_error_naming_the_clock() -> None:
    made = Harness()
    made.ports.commerce.add_order(order_1001())
    made.service.clock = lambda: datetime(2026, 1, 15, 12, 0)  # naive
    with pytest.raises(ConfigurationError) as refused:
        made.service.request(request())
    assert refused.value.field == "clock"
    assert refused.value.value == datetime(2026, 1, 15, 12, 0)
    assert made.store.list(SHOP) == []
    with pytest.raises(ConfigurationError, match="clock"):
        made.service.tick()
    with pytest.raises(ConfigurationError, match="clock"):
        made.service.dispatch_pending()


def test_a_clock_that_is_not_callable_is_refused() -> None:
    made = Harness()
    with pytest.raises(ConfigurationError) as refused:
        made.service.clock = "now"  # type: ignore[assignment]
    assert refused.value.field == "clock"


def test_tick_refuses_a_naive_now_and_changes_nothing() -> None:
    made = Harness()
    made.ports.commerce.add_order(order_1001())
    record = made.service.request(request())
    with pytest.raises(InvalidTime) as refused:
        made.service.tick(now=datetime(2027, 1, 1))
    assert (refused.value.field, refused.value.value) == ("now", datetime(2027, 1, 1))
    with pytest.raises(InvalidTime) as refused:
        made.service.run_due(SHOP, record.id, now=datetime(2027, 1, 1))
    assert refused.value.field == "now"
    assert made.service.get(SHOP, record.id) == record


# -- summer time --------------------------------------------------------------------------------


class ZoneClock:
    """A host's clock that answers in Berlin time: ``datetime.now(ZoneInfo(...))``."""

    def __init__(self, start: datetime) -> None:
        self.instant = start

    def __call__(self) -> datetime:
        return self.instant.astimezone(BERLIN)


def _memory() -> Iterator[ReturnStore]:
    yield MemoryStore()


def _sqlite() -> Iterator[ReturnStore]:
    store = SqliteStore(os.path.join(tempfile.mkdtemp(), "returns.db"))
    yield store
    store.close()


def _postgres() -> Iterator[ReturnStore]:
    sys.path.insert(0, os.path.dirname(__file__))
    import postgres_support

    if not postgres_support.required():
        pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    from returnflow.stores.postgres import PostgresStore

    cluster = postgres_support.cluster_or_skip()
    store = PostgresStore(cluster.empty_database())
    yield store
    store.close()


@pytest.mark.parametrize("stores", [_memory, _sqlite, _postgres], ids=["memory", "sqlite", "pg"])
def test_a_one_day_window_is_24_real_hours_across_the_change_to_summer_time(
    stores: Callable[[], Iterator[ReturnStore]],
) -> None:
    # Berlin moves from UTC+1 to UTC+2 at 01:00 UTC on 29 March 2026.
    approved = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
    opened = stores()
    store = next(opened)
    try:
        clock = ZoneClock(approved)
        made = Harness(
            policy=ReturnPolicy(window_days=365, ship_within_days=1),
            store=store,
        )
        made.service.clock = clock
        made.ports.commerce.add_order(order_1001())
        record = made.service.request(request())
        assert record.status == "label_sent"
        assert record.created_at == approved
        assert record.created_at.tzinfo is UTC

        # 12:00 Berlin summer time on the 29th is one wall-clock day, but only 23 hours
        clock.instant = approved + timedelta(hours=23, minutes=30)
        assert made.service.tick().expired == ()
        clock.instant = approved + timedelta(hours=24)
        assert made.service.tick().expired == ()  # exactly the window is still in time
        clock.instant = approved + timedelta(hours=24, seconds=1)
        assert made.service.tick().expired == (record.id,)
        assert made.service.get(SHOP, record.id).status == "expired"
    finally:
        opened.close()
