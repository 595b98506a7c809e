"""The indexed count of a customer's returns (``ReturnStore.count_customer_returns``) against
the scan it replaced, on random returns: the rule condition "the customer's returns in the
last N days" decides the same with either.

The scan is the one ``Opening.customer_returns`` ran before the stores had the count: every
return of the shop, 500 at a time through ``list``, whose ``customer_email`` equals the
order's and whose ``created_at`` is at or after ``now - days``, whatever its state.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from returnflow import (
    Claim,
    ClaimReason,
    CustomerReturns,
    Money,
    OrderLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    Rule,
    Then,
    When,
)
from returnflow.domain.model import OrderSnapshot, ReturnRecord
from returnflow.ports.store import Commit, ReturnStore, count_customer_returns
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness
from returnflow.testing.contract import BASE_TIME, make_record, next_version

SHOPS = ("shop-a", "shop-b")
EMAILS = ("ana@example.com", "Ana@example.com", "bo@example.com", "nul\x00@example.com", None)
STATES = ("requested", "approved", "closed", "cancelled", "declined", "expired", "reset")
OFFSETS = (timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))


def old_scan(store: ReturnStore, shop: str, email: str, now: datetime, days: int) -> int:
    """What ``Opening.customer_returns`` counted for one window before the index."""
    count = 0
    after: str | None = None
    while True:
        page = store.list(shop, after=after, limit=500)
        for record in page:
            if record.customer_email != email:
                continue
            if record.created_at >= now - timedelta(days=days):
                count += 1
        if len(page) < 500:
            return count
        after = page[-1].id


@st.composite
def stored_returns(draw: st.DrawFn) -> list[tuple[ReturnRecord, tuple[str | None, str] | None]]:
    """Returns of two shops and a few customers (and none), created within a few days of
    ``BASE_TIME`` in several offsets, some of them written again later (another state, or
    another e-mail)."""
    count = draw(st.integers(0, 30))
    made = []
    for index in range(count):
        minutes = draw(st.integers(-6 * 24 * 60, 6 * 24 * 60))
        created = (BASE_TIME + timedelta(minutes=minutes)).astimezone(
            draw(st.sampled_from(OFFSETS))
        )
        record = make_record(
            draw(st.sampled_from(SHOPS)),
            f"R{index}",
            order_id=f"O{index}",
            status=draw(st.sampled_from(STATES)),
            created_at=created,
        )
        record = attrs.evolve(record, customer_email=draw(st.sampled_from(EMAILS)))
        later = draw(
            st.none() | st.tuples(st.sampled_from(EMAILS), st.sampled_from(STATES)),
            label="written again",
        )
        made.append((record, later))
    return made


@contextlib.contextmanager
def store_of(kind: str) -> Iterator[ReturnStore]:
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "postgres":
        import postgres_support

        if not postgres_support.required():
            pytest.importorskip("psycopg", reason="the postgres extra is not installed")
        from returnflow.stores.postgres import PostgresStore

        database = postgres_support.cluster_or_skip().empty_database()
        opened = PostgresStore(database)
        try:
            yield opened
        finally:
            opened.close()
        return
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "returns.db")
        try:
            yield store
        finally:
            store.close()


def fill(
    store: ReturnStore, returns: list[tuple[ReturnRecord, tuple[str | None, str] | None]]
) -> None:
    for record, later in returns:
        store.commit(Commit(records=((record, 0),)))
        if later is not None:
            email, status = later
            again = next_version(record, customer_email=email, status=status)
            store.commit(Commit(records=((again, 1),)))


def check(
    kind: str,
    returns: list[tuple[ReturnRecord, tuple[str | None, str] | None]],
    now_minutes: int,
    days: int,
) -> None:
    now = BASE_TIME + timedelta(minutes=now_minutes)
    with store_of(kind) as store:
        fill(store, returns)
        # exactly on a return's creation time too: the window includes its first instant
        edges = [now, *(record.created_at + timedelta(days=days) for record, _ in returns[:3])]
        for shop in (*SHOPS, "shop-none"):
            for email in (*(e for e in EMAILS if e is not None), "nobody@example.com"):
                for moment in edges:
                    since = moment - timedelta(days=days)
                    assert store.count_customer_returns(shop, email, since=since) == old_scan(
                        store, shop, email, moment, days
                    ), (shop, email, moment, days)


NOW_MINUTES = st.integers(-3 * 24 * 60, 9 * 24 * 60)
DAYS = st.sampled_from([1, 2, 3, 7, 90])


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(deadline=None)
@given(returns=stored_returns(), now_minutes=NOW_MINUTES, days=DAYS)
def test_the_indexed_count_is_the_old_scan(
    kind: str,
    returns: list[tuple[ReturnRecord, tuple[str | None, str] | None]],
    now_minutes: int,
    days: int,
) -> None:
    check(kind, returns, now_minutes, days)


@settings(deadline=None)
@given(returns=stored_returns(), now_minutes=NOW_MINUTES, days=DAYS)
def test_the_indexed_count_is_the_old_scan_on_postgres(
    returns: list[tuple[ReturnRecord, tuple[str | None, str] | None]],
    now_minutes: int,
    days: int,
) -> None:
    check("postgres", returns, now_minutes, days)


def test_a_host_store_without_the_count_gets_the_scan() -> None:
    """A store written before the method existed: the service reads its pages instead,
    with the same answer, 500 returns a page."""

    class Older:
        def __init__(self) -> None:
            self.inner = MemoryStore()
            self.pages: list[tuple[str | None, int | None]] = []

        def list(
            self,
            shop: str,
            *,
            order_id: str | None = None,
            after: str | None = None,
            limit: int | None = None,
        ) -> list[ReturnRecord]:
            self.pages.append((after, limit))
            return list(self.inner.list(shop, order_id=order_id, after=after, limit=limit))

    older = Older()
    for index in range(1001):
        record = make_record("shop-a", f"R{index:04d}", order_id=f"O{index}", created_at=BASE_TIME)
        email = "ana@example.com" if index % 2 else "bo@example.com"
        older.inner.commit(Commit(records=((attrs.evolve(record, customer_email=email), 0),)))
    counted = count_customer_returns(
        older,  # type: ignore[arg-type]
        "shop-a",
        "ana@example.com",
        since=BASE_TIME,
    )
    assert counted == 500
    assert older.pages == [(None, 500), ("R0499", 500), ("R0999", 500)]


def _repeat_rule(days: int, at_least: int) -> ReturnPolicy:
    return ReturnPolicy(
        rules=[
            Rule(
                "repeat returners",
                When(customer_returns=CustomerReturns(days=days, at_least=at_least)),
                Then(review="returns often"),
            )
        ]
    )


def _order(order_id: str, email: str | None, days_ago: int = 2) -> OrderSnapshot:
    return OrderSnapshot(
        id=order_id,
        shop="shop-a",
        created_at=BASE_TIME - timedelta(days=days_ago),
        fulfilled_at=BASE_TIME - timedelta(days=days_ago),
        currency="EUR",
        customer_email=email,
        lines=[
            OrderLine(
                id="L1", sku="MUG", variant_id="mug", quantity=1, unit_price=Money("12.00", "EUR")
            )
        ],
    )


def test_the_rule_reads_one_indexed_count_per_window_and_no_listing() -> None:
    counted: list[tuple[str, str, datetime]] = []
    listed: list[str] = []

    class Watched(MemoryStore):
        def count_customer_returns(self, shop: str, customer_email: str, *, since: datetime) -> int:
            counted.append((shop, customer_email, since))
            return super().count_customer_returns(shop, customer_email, since=since)

        def list(self, shop: str, **kwargs: object) -> list[ReturnRecord]:  # type: ignore[override]
            listed.append(str(kwargs.get("order_id")))
            return list(super().list(shop, **kwargs))  # type: ignore[arg-type]

    made = Harness(store=Watched(), policy=_repeat_rule(30, 2))
    for index in range(3):
        made.ports.commerce.add_order(_order(f"A{index}", "ana@example.com"))
    made.ports.commerce.add_order(_order("N1", None))
    states = []
    for index in range(3):
        counted.clear()
        listed.clear()
        record = made.service.request(
            ReturnRequest(shop="shop-a", order_id=f"A{index}", lines=[RequestLine("L1", 1)])
        )
        states.append(record.status)
        assert counted == [("shop-a", "ana@example.com", made.clock.now() - timedelta(days=30))]
        assert listed == [f"A{index}"]  # the order's own returns (its ledger), nothing else
    assert states[2] == "pending_review"  # two before it: the rule fired
    assert states[:2] != ["pending_review"] * 2
    counted.clear()
    made.service.request(ReturnRequest(shop="shop-a", order_id="N1", lines=[RequestLine("L1", 1)]))
    assert counted == []  # no e-mail on the order: nothing to count


def test_the_rule_counts_claims_imported_cancelled_and_declined_returns_alike() -> None:
    """What counts, through the public API: each of the customer's earlier returns in the
    window, whatever became of it; not another customer's, nor one outside the window."""
    made = Harness(policy=_repeat_rule(30, 4))
    for order_id in ("C1", "I1", "X1", "N1", "B1"):
        made.ports.commerce.add_order(_order(order_id, "ana@example.com"))
    made.ports.commerce.add_order(_order("D1", "ana@example.com", days_ago=400))
    made.ports.commerce.add_order(_order("O1", "bo@example.com"))
    service = made.service

    def ask(order_id: str, **fields: object) -> ReturnRequest:
        return ReturnRequest(
            shop="shop-a",
            order_id=order_id,
            lines=[RequestLine("L1", 1)],
            **fields,  # type: ignore[arg-type]
        )

    lost = Claim(ClaimReason.LOST_IN_TRANSIT, "the carrier lost it")
    assert service.request(ask("C1", claim=lost)).status == "closed"  # a claim
    service.import_return(ask("I1"), return_id="R-loop-1", source="loop", external_id="1")
    cancelled = service.request(ask("X1"))
    assert service.cancel("shop-a", cancelled.id).status == "cancelled"
    assert service.request(ask("D1")).status == "declined"  # ordered long ago
    service.request(ask("O1"))  # another customer's
    [fired] = service.quote(ask("N1")).rules  # four of ana's, bo's not among them
    assert "4 returns in 30 days >= 4" in fired, fired
    made.clock.advance(days=31)  # ... until they are out of the window
    assert service.quote(ask("B1")).rules == ()
