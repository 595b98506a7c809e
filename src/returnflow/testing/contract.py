"""The store contract: one test suite every :class:`~returnflow.ports.store.ReturnStore` passes.

A host that writes its own store (Postgres, DynamoDB, ...) proves it with the same tests the
stores shipped with returnflow pass. Subclass :class:`StoreContract` in a pytest test module
and say how to make a new, empty store::

    from returnflow.testing.contract import StoreContract
    class TestMyStore(StoreContract):
        def make_store(self): return MyStore(...)

``make_store`` is called at most once per test and must return an empty store. A store that
several processes can share (a file, a server) also overrides :meth:`StoreContract.
open_in_other_process` to return a picklable zero-argument factory that opens the *same*
store in another process; without it the multi-process tests are skipped. Stores are closed
after each test when they have a ``close()`` method. The class attributes ``THREADS``,
``THREAD_INCREMENTS``, ``PROCESSES`` and ``PROCESS_INCREMENTS`` size the concurrency tests.

The suite needs pytest, and nothing else (not Hypothesis); importing this module does not
import pytest. Its helpers, :func:`make_record`, :func:`next_version`,
:func:`make_history_entry`, :func:`make_effect` and :func:`commit_next_version`, build valid
records and effects for a host's own store tests too.

What the contract holds a store to:

* reads are scoped to a shop: another shop's return does not exist;
* a :class:`~returnflow.ports.store.Commit` is written whole or not at all; it is refused
  with :class:`~returnflow.errors.ConcurrencyConflict` when a return's stored version is not
  the expected one, when a new version is not ``expected + 1``, when its inbound key was
  seen before, when one of its effect keys is already in the outbox (or twice in it), or
  when one of its attempts is of an effect that is not pending;
* history is append-only, and a record, its history and its payloads read back equal to
  what was committed;
* the outbox keeps each return's effects in commit order and hands out only the oldest
  pending effect of each return, when due and not under a live lease;
* a claim with a ``run`` hands out, behind each head, the due pending effects of its return,
  unclaimed (the head's lease covers them); a commit with a ``claim`` takes it in its own
  transaction and hands back what it claimed, the effects it wrote as they were given; a
  refused commit claims nothing;
* a read is one version of a return, even while others write it;
* concurrent writers (threads, and processes when the store is shared) lose no update, and
  concurrent workers never claim an effect twice;
* a named cursor reads back what was last written, ``None`` before; a write is a
  compare-and-set that refuses a stale ``expected`` value with ``ConcurrencyConflict`` and
  changes nothing; names are independent; another process reads what one wrote;
* the order-level ledger (:mod:`returnflow.domain.ledger`) is kept in the commit: a new
  return takes its units, and a commit taking a unit another return of the order holds
  (or settled) is refused with :class:`~returnflow.errors.UnitsTaken` and writes nothing,
  also when the two commits race (threads, processes); a return ending unsettled frees its
  units, and a reset's new return takes them over in the same commit;
* a commit can re-open a given-up effect (``Commit.reopened``): it is pending again, under
  its own key, with no attempt counted; one that is not given up conflicts;
* ``list`` pages by keyset: ``(created_at, id)`` order, ids by code point, a page of at most
  ``limit`` starting after the return ``after`` (of the shop, else ``ReturnNotFound``),
  also for one order; a bad ``limit`` or ``after`` is a ``ValidationError``;
* ``count_customer_returns`` counts the returns of a shop whose ``customer_email`` is the
  one given (exactly) created at or after ``since``, in every state, through later versions;
  a naive ``since`` or an e-mail that is not a string is a ``ValidationError``;
* ``prune`` drops delivered effects only of returns that ended, have no timer due and were
  last written before the cutoff, and inbox keys processed before theirs; a key inside its
  window still makes a redelivery conflict; a naive cutoff is a ``ValidationError``.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import multiprocessing
import queue as queue_module
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from returnflow.domain._fields import MAX_DIGITS
from returnflow.domain.model import (
    DeclineReason,
    ExchangeLine,
    ExternalRefs,
    HistoryEntry,
    ItemCondition,
    ParkedFact,
    Refund,
    ReturnLine,
    ReturnReason,
    ReturnRecord,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.errors import (
    ConcurrencyConflict,
    InvalidPayload,
    ReturnNotFound,
    UnitsTaken,
    ValidationError,
)
from returnflow.lifecycle.effects import Effect, Publish
from returnflow.ports.store import (
    Attempt,
    Commit,
    InboundKey,
    Lease,
    OutboxEntry,
    ReturnStore,
    count_customer_returns,
)

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier as ProcessBarrier

__all__ = [
    "BASE_TIME",
    "StoreContract",
    "commit_next_version",
    "make_effect",
    "make_history_entry",
    "make_record",
    "next_version",
]

BASE_TIME = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
"""The time the helpers' records are created at (records made later get later times)."""

_MAX_RETRIES = 10_000


# -- helpers: valid records and effects -------------------------------------------------------


def make_history_entry(
    version: int,
    *,
    at: datetime | None = None,
    event: str = "note",
    actor: str = "contract",
    state: tuple[str, str] = ("requested", "no_exchange"),
    payload: Mapping[str, Any] | None = None,
) -> HistoryEntry:
    """A history entry written by version ``version`` of a return.

    Its payload defaults to plain JSON data (nested objects, lists, ``None``, booleans), the
    kind of data a store must give back exactly.

    >>> entry = make_history_entry(2)
    >>> entry.version, entry.event, entry.payload["n"]
    (2, 'note', 2)
    """
    return HistoryEntry(
        at=at if at is not None else BASE_TIME + timedelta(minutes=version),
        event=event,
        actor=actor,
        source=state,
        target=state,
        version=version,
        payload=dict(payload)
        if payload is not None
        else {"n": version, "tags": ["a", "b"], "nested": {"ok": True, "none": None}},
    )


def make_record(
    shop: str,
    return_id: str,
    version: int = 1,
    *,
    status: str = "requested",
    history_len: int | None = None,
    order_id: str = "1001",
    exchange_status: str = "no_exchange",
    created_at: datetime | None = None,
    units: Mapping[str, Sequence[int]] | None = None,
) -> ReturnRecord:
    """A valid return record at ``version`` with ``history_len`` history entries (by default
    one per version, so that ``len(record.history) == record.version``).

    The record has two lines (a refund and a store credit with a bonus), so it exercises
    money, enums, nested records and tuples when it goes through a store. Its units
    (``units``: order line id -> unit indices, for lines ``L1`` and ``L2``) are, by
    default, unit indices no other return id gets, so that any number of records of one
    order can be stored.

    >>> record = make_record("shop-a", "R1", 3)
    >>> record.version, len(record.history), record.status
    (3, 3, 'requested')
    >>> len(make_record("shop-a", "R1", 1, history_len=0).history)
    0
    """
    if version < 1:
        raise ValueError("a stored record's version is at least 1")
    created = created_at if created_at is not None else BASE_TIME
    count = version if history_len is None else history_len
    base = 10 * int.from_bytes(hashlib.sha256(return_id.encode()).digest()[:3], "big")
    held = {"L1": (base, base + 1), "L2": (base,), **(units or {})}
    history = tuple(
        make_history_entry(
            min(index + 1, version),
            at=created + timedelta(minutes=index),
            state=(status, exchange_status),
        )
        for index in range(count)
    )
    lines = (
        ReturnLine(
            id=f"{return_id}-L1",
            order_line_id="L1",
            sku="SKU-1",
            variant_id="V-1",
            quantity=len(held["L1"]),
            outcome=Refund(),
            reason=ReturnReason.SIZE_TOO_SMALL,
            unit_amounts=tuple(Money("19.90", "EUR") for _ in held["L1"]),
            units=tuple(held["L1"]),
            declared_condition=ItemCondition.NEW,
        ),
        ReturnLine(
            id=f"{return_id}-L2",
            order_line_id="L2",
            sku="SKU-2",
            variant_id="V-2",
            quantity=len(held["L2"]),
            outcome=StoreCredit(bonus=Money("2.00", "EUR")),
            reason=ReturnReason.UNWANTED,
            unit_amounts=(Money("5.00", "EUR"),) * len(held["L2"]),
            units=tuple(held["L2"]),
            qc_notes=("box opened", "tag missing"),
        ),
    )
    return ReturnRecord(
        id=return_id,
        shop=shop,
        order_id=order_id,
        currency="EUR",
        status=status,
        exchange_status=exchange_status,
        lines=lines,
        created_at=created,
        updated_at=created + timedelta(minutes=max(count, 1)),
        version=version,
        refs=ExternalRefs(platform_return_id=f"gid://shopify/Return/{return_id}"),
        customer_email="customer@example.com",
        history=history,
    )


def next_version(
    record: ReturnRecord,
    *,
    event: str = "note",
    actor: str = "contract",
    payload: Mapping[str, Any] | None = None,
    **changes: Any,
) -> ReturnRecord:
    """The record's next version: ``version + 1``, one more history entry, a later
    ``updated_at``, and ``changes`` (attribute values) applied.

    >>> record = next_version(make_record("shop-a", "R1"), status="approved")
    >>> record.version, len(record.history), record.history[-1].target
    (2, 2, ('approved', 'no_exchange'))
    """
    moment = record.updated_at + timedelta(seconds=1)
    changed = attrs.evolve(record, **changes)
    entry = HistoryEntry(
        at=moment,
        event=event,
        actor=actor,
        source=record.state,
        target=changed.state,
        version=record.version + 1,
        payload=dict(payload) if payload is not None else {"n": record.version + 1},
    )
    return attrs.evolve(
        changed, version=record.version + 1, updated_at=moment, history=(*record.history, entry)
    )


def make_effect(
    shop: str,
    return_id: str,
    index: int,
    *,
    key: str | None = None,
    version: int = 1,
    order_id: str = "1001",
    topic: str = "returns/update",
) -> Effect:
    """A :class:`~returnflow.lifecycle.effects.Publish` effect of a return, keyed
    ``"{shop}/{return_id}/{index}"`` unless ``key`` is given.

    >>> make_effect("shop-a", "R1", 0).key
    'shop-a/R1/0'
    """
    return Publish(
        key=key if key is not None else f"{shop}/{return_id}/{index}",
        shop=shop,
        return_id=return_id,
        order_id=order_id,
        version=version,
        topic=topic,
        payload={"return_id": return_id, "index": index, "lines": [{"id": "L1", "qty": 2}]},
    )


# -- small tools the tests use ----------------------------------------------------------------


def _raises(error: type[BaseException]) -> contextlib.AbstractContextManager[Any]:
    import pytest

    return pytest.raises(error)


def _raises_conflict() -> contextlib.AbstractContextManager[Any]:
    return _raises(ConcurrencyConflict)


def _skip(reason: str) -> NoReturn:
    import pytest

    pytest.skip(reason)


def _keys(entries: Sequence[OutboxEntry]) -> list[str]:
    return [entry.effect.key for entry in entries]


def _payloads(record: ReturnRecord) -> list[Mapping[str, Any]]:
    return [entry.payload for entry in record.history]


def _effect_payload(effect: Effect) -> Mapping[str, Any] | None:
    return effect.payload if isinstance(effect, Publish) else None


def _assert_same_record(got: ReturnRecord, committed: ReturnRecord) -> None:
    """Equal, including what ``==`` skips: history payloads."""
    assert got == committed
    assert _payloads(got) == _payloads(committed)
    assert [type(entry.source) for entry in got.history] == [tuple] * len(got.history)


def commit_next_version(
    store: ReturnStore, shop: str, return_id: str, *, actor: str = "contract"
) -> int:
    """Write the next version of a return (read, modify, commit), reloading and retrying on
    :class:`~returnflow.errors.ConcurrencyConflict`; return how many conflicts it met."""
    for conflicts in range(_MAX_RETRIES):
        current = store.get(shop, return_id)
        try:
            store.commit(Commit(records=((next_version(current, actor=actor), current.version),)))
        except ConcurrencyConflict:
            continue
        return conflicts
    raise AssertionError(f"no write of {return_id} succeeded in {_MAX_RETRIES} tries")


def _increment_in_process(
    factory: Callable[[], ReturnStore],
    shop: str,
    return_id: str,
    rounds: int,
    worker: str,
    barrier: ProcessBarrier,
    results: multiprocessing.Queue[tuple[str, str, int | str]],
) -> None:
    """Run in a spawned process: ``rounds`` increments of one return."""
    store: ReturnStore | None = None
    try:
        store = factory()
        barrier.wait(timeout=60)
        conflicts = sum(
            commit_next_version(store, shop, return_id, actor=worker) for _ in range(rounds)
        )
        results.put((worker, "ok", conflicts))
    except BaseException:
        results.put((worker, "error", traceback.format_exc()))
    finally:
        if store is not None:
            _close(store)


_RACE_UNITS = 20


def _take_in_process(
    factory: Callable[[], ReturnStore],
    shop: str,
    worker: str,
    barrier: ProcessBarrier,
    results: multiprocessing.Queue[tuple[str, str, int | str]],
) -> None:
    """Run in a spawned process: try to store one return per unit of a 20-unit line, each
    unit also wanted by the other processes; report how many this one stored."""
    store: ReturnStore | None = None
    try:
        store = factory()
        barrier.wait(timeout=60)
        stored = 0
        for unit in range(_RACE_UNITS):
            record = make_record(shop, f"{worker}-{unit}", order_id="O-race", units={"L1": (unit,)})
            try:
                store.commit(Commit(records=((record, 0),)))
            except UnitsTaken:
                continue
            stored += 1
        results.put((worker, "won" if stored else "lost", stored))
    except BaseException:
        results.put((worker, "error", traceback.format_exc()))
    finally:
        if store is not None:
            _close(store)


def _read_cursor_in_process(
    factory: Callable[[], ReturnStore],
    name: str,
    write: str | None,
    results: multiprocessing.Queue[tuple[str, str | None]],
) -> None:
    """Run in a spawned process: read the cursor ``name`` (then write ``write``, if given,
    over what was read)."""
    store: ReturnStore | None = None
    try:
        store = factory()
        value = store.read_cursor(name)
        if write is not None:
            store.write_cursor(name, write, expected=value)
        results.put(("ok", value))
    except BaseException:
        results.put(("error", traceback.format_exc()))
    finally:
        if store is not None:
            _close(store)


def _close(store: object) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


@contextlib.contextmanager
def _running(threads: Sequence[threading.Thread]) -> Iterator[None]:
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"


def _claim_concurrently(
    store: ReturnStore, now: datetime, lease_until: datetime, workers: int
) -> dict[str, list[str]]:
    """``workers`` threads claim (a few at a time) until nothing is left; what each got."""
    barrier = threading.Barrier(workers)
    claimed: dict[str, list[str]] = {f"w{n}": [] for n in range(workers)}
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        try:
            barrier.wait(timeout=60)
            while got := store.claim(now=now, lease_until=lease_until, worker=worker, limit=3):
                assert all(entry.claimed_by == worker for entry in got)
                claimed[worker].extend(_keys(got))
        except BaseException as error:
            errors.append(error)

    with _running([threading.Thread(target=work, args=(name,)) for name in claimed]):
        pass
    assert errors == [], errors
    return claimed


# -- the suite ----------------------------------------------------------------------------------


class StoreContract(abc.ABC):
    """The contract tests of a :class:`~returnflow.ports.store.ReturnStore`.

    Subclass it in a test module (the subclass's name starts with ``Test``) and implement
    :meth:`make_store`. A subclass that defines ``teardown_method`` calls the base one.
    """

    SHOP = "shop-a"
    OTHER_SHOP = "shop-b"
    NOW = BASE_TIME + timedelta(days=1)

    THREADS = 8
    THREAD_INCREMENTS = 25
    PROCESSES = 3
    PROCESS_INCREMENTS = 30

    # -- what a host provides --------------------------------------------------------------

    @abc.abstractmethod
    def make_store(self) -> ReturnStore:
        """A new, empty store (called at most once per test)."""

    def open_in_other_process(self) -> Callable[[], ReturnStore] | None:
        """A picklable zero-argument factory that opens, in another process, the store the
        last :meth:`make_store` returned; ``None`` (the default) skips the multi-process
        tests."""
        return None

    # -- plumbing ------------------------------------------------------------------------------

    def open_store(self) -> ReturnStore:
        """:meth:`make_store`, remembered so that the store is closed after the test."""
        store = self.make_store()
        self.__dict__.setdefault("_contract_stores", []).append(store)
        return store

    def teardown_method(self, method: object) -> None:
        for store in self.__dict__.pop("_contract_stores", []):
            _close(store)

    def seed(
        self,
        store: ReturnStore,
        record: ReturnRecord,
        *effects: Effect,
        inbound: InboundKey | None = None,
    ) -> ReturnRecord:
        """Commit a new record (expected version 0) with its effects; return it."""
        store.commit(Commit(records=((record, 0),), effects=effects, inbound=inbound))
        return record

    # -- reads are scoped to a shop -----------------------------------------------------------

    def test_get_returns_the_committed_record(self) -> None:
        store = self.open_store()
        record = self.seed(store, make_record(self.SHOP, "R1"))
        _assert_same_record(store.get(self.SHOP, "R1"), record)

    def test_get_of_a_missing_return_raises_return_not_found(self) -> None:
        store = self.open_store()
        with _raises(ReturnNotFound) as caught:
            store.get(self.SHOP, "nope")
        assert (caught.value.shop, caught.value.return_id) == (self.SHOP, "nope")

    def test_another_shops_return_is_not_found(self) -> None:
        store = self.open_store()
        self.seed(store, make_record(self.SHOP, "R1"))
        with _raises(ReturnNotFound) as caught:
            store.get(self.OTHER_SHOP, "R1")
        assert (caught.value.shop, caught.value.return_id) == (self.OTHER_SHOP, "R1")
        assert list(store.list(self.OTHER_SHOP)) == []
        assert list(store.list(self.OTHER_SHOP, order_id="1001")) == []

    def test_the_same_id_in_two_shops_are_two_returns(self) -> None:
        store = self.open_store()
        mine = self.seed(store, make_record(self.SHOP, "R1", order_id="1001"))
        theirs = self.seed(store, make_record(self.OTHER_SHOP, "R1", order_id="9009"))
        _assert_same_record(store.get(self.SHOP, "R1"), mine)
        _assert_same_record(store.get(self.OTHER_SHOP, "R1"), theirs)
        store.commit(Commit(records=((next_version(mine), 1),)))
        assert store.get(self.SHOP, "R1").version == 2
        assert store.get(self.OTHER_SHOP, "R1").version == 1

    def test_list_is_the_shops_returns_oldest_first(self) -> None:
        store = self.open_store()
        late = make_record(self.SHOP, "R1", created_at=BASE_TIME + timedelta(hours=2))
        early = make_record(self.SHOP, "R2", created_at=BASE_TIME)
        same_time = make_record(self.SHOP, "R0", created_at=BASE_TIME + timedelta(hours=2))
        for record in (late, early, same_time):
            self.seed(store, record)
        self.seed(store, make_record(self.OTHER_SHOP, "R9", created_at=BASE_TIME))
        assert [record.id for record in store.list(self.SHOP)] == ["R2", "R0", "R1"]
        assert [record.id for record in store.list(self.OTHER_SHOP)] == ["R9"]
        _assert_same_record(store.list(self.SHOP)[0], early)

    def test_list_by_order_id(self) -> None:
        store = self.open_store()
        first = self.seed(store, make_record(self.SHOP, "R1", order_id="1001"))
        self.seed(store, make_record(self.SHOP, "R2", order_id="1002"))
        third = self.seed(
            store,
            make_record(self.SHOP, "R3", order_id="1001", created_at=BASE_TIME + timedelta(1)),
        )
        self.seed(store, make_record(self.OTHER_SHOP, "R4", order_id="1001"))
        found = store.list(self.SHOP, order_id="1001")
        assert [record.id for record in found] == ["R1", "R3"]
        _assert_same_record(found[0], first)
        _assert_same_record(found[1], third)
        assert list(store.list(self.SHOP, order_id="4040")) == []

    def test_list_pages_by_keyset_in_created_at_then_id_order(self) -> None:
        store = self.open_store()
        # ties on created_at are ordered by id; ids compare by code point ("R10" < "R9")
        specs = [("R9", 0), ("R10", 0), ("R2", 1), ("R1", 2), ("R3", 2), ("R0", 3)]
        for return_id, hours in specs:
            created = BASE_TIME + timedelta(hours=hours)
            self.seed(store, make_record(self.SHOP, return_id, created_at=created))
        self.seed(store, make_record(self.OTHER_SHOP, "R5", created_at=BASE_TIME))
        everything = [record.id for record in store.list(self.SHOP)]
        assert everything == ["R10", "R9", "R2", "R1", "R3", "R0"]
        pages: list[list[str]] = []
        after: str | None = None
        while True:
            page = store.list(self.SHOP, after=after, limit=4 if after is None else 2)
            if not page:
                break
            pages.append([record.id for record in page])
            after = page[-1].id
        assert pages == [["R10", "R9", "R2", "R1"], ["R3", "R0"]]
        assert [r.id for r in store.list(self.SHOP, after="R2")] == ["R1", "R3", "R0"]
        assert [r.id for r in store.list(self.SHOP, limit=1)] == ["R10"]
        _assert_same_record(
            store.list(self.SHOP, after="R1", limit=1)[0], store.get(self.SHOP, "R3")
        )
        # a return written between two pages is on a later page, none is seen twice
        page = store.list(self.SHOP, limit=3)
        self.seed(store, make_record(self.SHOP, "R4", created_at=BASE_TIME + timedelta(hours=9)))
        self.seed(store, make_record(self.SHOP, "R00", created_at=BASE_TIME))
        rest = store.list(self.SHOP, after=page[-1].id)
        assert [r.id for r in rest] == ["R1", "R3", "R0", "R4"]

    def test_list_pages_of_one_order(self) -> None:
        store = self.open_store()
        for hours, (return_id, order_id) in enumerate(
            [("R1", "1001"), ("R2", "1002"), ("R3", "1001"), ("R4", "1001"), ("R5", "1002")]
        ):
            created = BASE_TIME + timedelta(hours=hours)
            self.seed(
                store, make_record(self.SHOP, return_id, order_id=order_id, created_at=created)
            )
        self.seed(store, make_record(self.OTHER_SHOP, "R6", order_id="1001"))
        first = store.list(self.SHOP, order_id="1001", limit=2)
        assert [r.id for r in first] == ["R1", "R3"]
        assert [r.id for r in store.list(self.SHOP, order_id="1001", after="R3")] == ["R4"]
        assert [r.id for r in store.list(self.SHOP, order_id="1001", after="R4")] == []
        # ``after`` may be a return of another order of the shop: the page starts after it
        assert [r.id for r in store.list(self.SHOP, order_id="1001", after="R2")] == ["R3", "R4"]

    def test_a_page_after_an_unknown_return_or_with_a_bad_limit_is_refused(self) -> None:
        store = self.open_store()
        self.seed(store, make_record(self.SHOP, "R1"))
        self.seed(store, make_record(self.OTHER_SHOP, "R2"))
        with _raises(ReturnNotFound) as caught:
            store.list(self.SHOP, after="R2")  # another shop's return does not exist
        assert (caught.value.shop, caught.value.return_id) == (self.SHOP, "R2")
        for limit in (0, -1, 1.5, True, "10"):
            with _raises(ValidationError) as refused:
                store.list(self.SHOP, limit=limit)  # type: ignore[arg-type]
            assert (refused.value.field, refused.value.value) == ("limit", limit)
        with _raises(ValidationError) as refused:
            store.list(self.SHOP, after=7)  # type: ignore[arg-type]
        assert refused.value.field == "after"
        assert [r.id for r in store.list(self.SHOP)] == ["R1"]

    def test_list_in_filters_by_shop_and_status(self) -> None:
        store = self.open_store()
        specs = [
            (self.SHOP, "R1", "requested", 0),
            (self.SHOP, "R2", "approved", 1),
            (self.SHOP, "R3", "closed", 2),
            (self.OTHER_SHOP, "R4", "requested", 3),
            (self.OTHER_SHOP, "R5", "closed", 4),
        ]
        for shop, return_id, status, hours in specs:
            self.seed(
                store,
                make_record(
                    shop, return_id, status=status, created_at=BASE_TIME + timedelta(hours=hours)
                ),
            )

        def ids(shop: str | None, statuses: Sequence[str], limit: int = 1000) -> list[str]:
            return [record.id for record in store.list_in(shop, statuses, limit=limit)]

        assert ids(self.SHOP, ["requested"]) == ["R1"]
        assert ids(self.SHOP, ["requested", "approved"]) == ["R1", "R2"]
        assert ids(self.OTHER_SHOP, ["requested", "approved"]) == ["R4"]
        assert ids(None, ["requested"]) == ["R1", "R4"]
        assert ids(None, ["requested", "closed"]) == ["R1", "R3", "R4", "R5"]
        assert ids(None, ["requested", "closed"], limit=2) == ["R1", "R3"]
        assert ids(None, ["expired"]) == []
        assert ids(None, []) == []
        # list_in sees the current status, not the one the return was created with
        r2 = store.get(self.SHOP, "R2")
        store.commit(Commit(records=((next_version(r2, status="closed"), 1),)))
        assert ids(self.SHOP, ["approved"]) == []
        assert ids(self.SHOP, ["closed"]) == ["R2", "R3"]

    def test_list_in_filters_by_exchange_status(self) -> None:
        store = self.open_store()
        specs = [
            (self.SHOP, "R1", "requested", "no_exchange"),
            (self.SHOP, "R2", "requested", "on_hold"),
            (self.SHOP, "R3", "approved", "on_hold"),
            (self.OTHER_SHOP, "R4", "requested", "on_hold"),
        ]
        for hours, (shop, return_id, status, exchange) in enumerate(specs):
            record = make_record(
                shop,
                return_id,
                status=status,
                exchange_status=exchange,
                created_at=BASE_TIME + timedelta(hours=hours),
            )
            self.seed(store, record)

        def ids(shop: str | None, statuses: Sequence[str], exchange: str) -> list[str]:
            found = store.list_in(shop, statuses, exchange_status=exchange)
            return [record.id for record in found]

        assert ids(None, ["requested"], "on_hold") == ["R2", "R4"]
        assert ids(self.SHOP, ["requested", "approved"], "on_hold") == ["R2", "R3"]
        assert ids(self.SHOP, ["requested"], "no_exchange") == ["R1"]
        assert ids(None, ["requested", "approved"], "released") == []

    # -- versions -------------------------------------------------------------------------------

    def test_a_new_record_commits_with_expected_version_0(self) -> None:
        store = self.open_store()
        record = make_record(self.SHOP, "R1", 1)
        store.commit(Commit(records=((record, 0),)))
        assert store.get(self.SHOP, "R1").version == 1

    def test_each_write_carries_the_next_version(self) -> None:
        store = self.open_store()
        record = self.seed(store, make_record(self.SHOP, "R1", 1))
        for expected in range(1, 4):
            record = next_version(record)
            store.commit(Commit(records=((record, expected),)))
            _assert_same_record(store.get(self.SHOP, "R1"), record)
        assert store.get(self.SHOP, "R1").version == 4

    def test_a_stale_expected_version_raises_and_writes_nothing(self) -> None:
        store = self.open_store()
        v1 = self.seed(store, make_record(self.SHOP, "R1"))
        v2 = next_version(v1, status="approved")
        store.commit(Commit(records=((v2, 1),)))
        stale = next_version(v1, status="declined")  # written from v1, which is gone
        key = InboundKey(self.SHOP, "platform", "evt-1")
        effect = make_effect(self.SHOP, "R1", 0)
        with _raises_conflict():
            store.commit(Commit(records=((stale, 1),), effects=(effect,), inbound=key))
        _assert_same_record(store.get(self.SHOP, "R1"), v2)
        assert list(store.outbox(self.SHOP, "R1")) == []
        assert list(store.pending()) == []
        assert not store.seen(key)

    def test_a_new_record_over_an_existing_one_raises(self) -> None:
        store = self.open_store()
        first = self.seed(store, make_record(self.SHOP, "R1", status="requested"))
        with _raises_conflict():
            store.commit(Commit(records=((make_record(self.SHOP, "R1", status="closed"), 0),)))
        _assert_same_record(store.get(self.SHOP, "R1"), first)

    def test_an_update_of_a_missing_record_raises(self) -> None:
        store = self.open_store()
        with _raises_conflict():
            store.commit(Commit(records=((make_record(self.SHOP, "R1", 2), 1),)))
        assert list(store.list(self.SHOP)) == []

    def test_a_version_that_is_not_expected_plus_one_raises(self) -> None:
        store = self.open_store()
        with _raises_conflict():
            store.commit(Commit(records=((make_record(self.SHOP, "R1", 2), 0),)))
        assert list(store.list(self.SHOP)) == []
        v1 = self.seed(store, make_record(self.SHOP, "R1", 1))
        v2 = next_version(v1)
        for wrong in (
            attrs.evolve(v2, version=1),  # the same version again
            attrs.evolve(v2, version=3),  # a version skipped
            attrs.evolve(v2, version=0),
        ):
            with _raises_conflict():
                store.commit(Commit(records=((wrong, 1),)))
            _assert_same_record(store.get(self.SHOP, "R1"), v1)

    def test_a_multi_record_commit_is_atomic(self) -> None:
        store = self.open_store()
        other_v1 = self.seed(store, make_record(self.SHOP, "R2"), make_effect(self.SHOP, "R2", 0))
        other_v2 = next_version(other_v1)
        store.commit(Commit(records=((other_v2, 1),)))
        new = make_record(self.SHOP, "R1")
        stale = next_version(other_v1)  # the second record is stale: it expects 1, 2 is stored
        key = InboundKey(self.SHOP, "platform", "evt-1")
        with _raises_conflict():
            store.commit(
                Commit(
                    records=((new, 0), (stale, 1)),
                    effects=(make_effect(self.SHOP, "R1", 0), make_effect(self.SHOP, "R2", 1)),
                    inbound=key,
                )
            )
        with _raises(ReturnNotFound):
            store.get(self.SHOP, "R1")  # the first record of the refused commit
        _assert_same_record(store.get(self.SHOP, "R2"), other_v2)
        assert list(store.outbox(self.SHOP, "R1")) == []
        assert _keys(store.outbox(self.SHOP, "R2")) == ["shop-a/R2/0"]
        assert _keys(store.pending()) == ["shop-a/R2/0"]
        assert not store.seen(key)
        assert [record.id for record in store.list(self.SHOP)] == ["R2"]

    def test_a_multi_record_commit_writes_every_record(self) -> None:
        store = self.open_store()
        parent_v1 = self.seed(store, make_record(self.SHOP, "R1"))
        parent_v2 = next_version(parent_v1, status="reset", child_id="R2")
        child = attrs.evolve(make_record(self.SHOP, "R2"), parent_id="R1")
        store.commit(
            Commit(
                records=((parent_v2, 1), (child, 0)),
                effects=(make_effect(self.SHOP, "R1", 0), make_effect(self.SHOP, "R2", 0)),
            )
        )
        _assert_same_record(store.get(self.SHOP, "R1"), parent_v2)
        _assert_same_record(store.get(self.SHOP, "R2"), child)
        assert _keys(store.pending()) == ["shop-a/R1/0", "shop-a/R2/0"]

    # -- the inbox ------------------------------------------------------------------------------

    def test_seen_is_true_after_the_commit_only(self) -> None:
        store = self.open_store()
        key = InboundKey(self.SHOP, "carrier", "evt-1")
        assert not store.seen(key)
        self.seed(store, make_record(self.SHOP, "R1"), inbound=key)
        assert store.seen(key)
        assert not store.seen(InboundKey(self.OTHER_SHOP, "carrier", "evt-1"))
        assert not store.seen(InboundKey(self.SHOP, "warehouse", "evt-1"))
        assert not store.seen(InboundKey(self.SHOP, "carrier", "evt-2"))

    def test_a_duplicate_inbound_key_raises_and_writes_nothing(self) -> None:
        store = self.open_store()
        key = InboundKey(self.SHOP, "carrier", "evt-1")
        v1 = self.seed(store, make_record(self.SHOP, "R1"), inbound=key)
        with _raises_conflict():
            store.commit(
                Commit(
                    records=((next_version(v1), 1),),
                    effects=(make_effect(self.SHOP, "R1", 0),),
                    inbound=key,
                )
            )
        _assert_same_record(store.get(self.SHOP, "R1"), v1)
        assert list(store.outbox(self.SHOP, "R1")) == []
        # the same event id from another shop or source is another event
        v2 = next_version(v1)
        store.commit(
            Commit(records=((v2, 1),), inbound=InboundKey(self.SHOP, "warehouse", "evt-1"))
        )
        self.seed(
            store,
            make_record(self.OTHER_SHOP, "R1"),
            inbound=InboundKey(self.OTHER_SHOP, "carrier", "evt-1"),
        )
        assert store.get(self.SHOP, "R1").version == 2

    # -- effect keys ----------------------------------------------------------------------------

    def test_a_duplicate_effect_key_raises_and_writes_nothing(self) -> None:
        store = self.open_store()
        first = make_effect(self.SHOP, "R1", 0)
        v1 = self.seed(store, make_record(self.SHOP, "R1"), first)
        again = make_effect(self.SHOP, "R1", 7, key=first.key, topic="returns/close")
        key = InboundKey(self.SHOP, "platform", "evt-1")
        with _raises_conflict():
            store.commit(
                Commit(
                    records=((next_version(v1), 1),),
                    effects=(make_effect(self.SHOP, "R1", 1), again),
                    inbound=key,
                )
            )
        _assert_same_record(store.get(self.SHOP, "R1"), v1)
        entries = store.outbox(self.SHOP, "R1")
        assert _keys(entries) == [first.key]
        assert entries[0].effect == first
        assert not store.seen(key)

    def test_a_key_twice_in_one_commit_raises_and_writes_nothing(self) -> None:
        store = self.open_store()
        effect = make_effect(self.SHOP, "R1", 0)
        twin = make_effect(self.SHOP, "R1", 1, key=effect.key)
        with _raises_conflict():
            store.commit(
                Commit(records=((make_record(self.SHOP, "R1"), 0),), effects=(effect, twin))
            )
        assert list(store.list(self.SHOP)) == []
        assert list(store.outbox(self.SHOP, "R1")) == []
        assert list(store.pending()) == []

    # -- attempts recorded in a commit ---------------------------------------------------------

    def test_a_commit_records_its_attempts_with_its_records(self) -> None:
        store = self.open_store()
        first, second = make_effect(self.SHOP, "R1", 0), make_effect(self.SHOP, "R1", 1)
        v1 = self.seed(store, make_record(self.SHOP, "R1"), first, second)
        assert self.claim(store, "w1") == [first.key]
        v2 = next_version(v1, refs=attrs.evolve(v1.refs, refund_ids=("rf-1",)))
        at = self.NOW + timedelta(seconds=2)
        done = Attempt(key=first.key, ok=True, at=at, result={"refund_id": "rf-1"})
        store.commit(Commit(records=((v2, 1),), attempts=(done,)))
        _assert_same_record(store.get(self.SHOP, "R1"), v2)
        entry = store.outbox(self.SHOP, "R1")[0]
        assert (entry.status, entry.attempts, entry.result) == ("done", 1, {"refund_id": "rf-1"})
        assert (entry.updated_at, entry.claimed_until, entry.claimed_by) == (at, None, None)
        assert self.claim(store, "w2") == [second.key]
        retry_at = self.NOW + timedelta(minutes=1)
        failed = Attempt(key=second.key, ok=False, at=at, error="busy", retry_at=retry_at)
        store.commit(Commit(records=((next_version(v2), 2),), attempts=(failed,)))
        entry = store.outbox(self.SHOP, "R1")[1]
        assert (entry.status, entry.attempts, entry.last_error) == ("pending", 1, "busy")
        assert entry.next_attempt_at == retry_at
        assert self.claim(store, "w3", at=retry_at - timedelta(seconds=1)) == []
        assert self.claim(store, "w3", at=retry_at + timedelta(seconds=1)) == [second.key]

    def test_an_attempt_of_an_effect_not_pending_conflicts_and_writes_nothing(self) -> None:
        store = self.open_store()
        effect = make_effect(self.SHOP, "R1", 0)
        v1 = self.seed(store, make_record(self.SHOP, "R1"), effect)
        store.record_attempt(effect.key, ok=True, at=self.NOW, result={"n": 1})
        key = InboundKey(self.SHOP, "platform", "evt-1")
        for attempt in (
            Attempt(key=effect.key, ok=True, at=self.NOW, result={"n": 2}),  # done already
            Attempt(key="no-such-effect", ok=True, at=self.NOW),
        ):
            with _raises_conflict():
                store.commit(
                    Commit(
                        records=((next_version(v1), 1),),
                        effects=(make_effect(self.SHOP, "R1", 1),),
                        inbound=key,
                        attempts=(attempt,),
                    )
                )
            _assert_same_record(store.get(self.SHOP, "R1"), v1)
            (entry,) = store.outbox(self.SHOP, "R1")
            assert (entry.status, entry.attempts, entry.result) == ("done", 1, {"n": 1})
            assert not store.seen(key)

    # -- history and round trips -----------------------------------------------------------

    def test_a_record_round_trips_exactly(self) -> None:
        store = self.open_store()
        paris = timezone(timedelta(hours=2))
        base = make_record(
            self.SHOP, "R1", 1, created_at=datetime(2026, 3, 1, 9, 30, 15, 123456, paris)
        )
        record = attrs.evolve(
            base,
            status="declined",
            exchange_status="on_hold",
            exchange_lines=(
                ExchangeLine(
                    id="X1",
                    return_line_id="R1-L1",
                    variant_id="V-9",
                    quantity=1,
                    status="held",
                    sku="SKU-9",
                    unit_price=Money("21.00", "EUR"),
                    platform_item_id="gid://shopify/LineItem/9",
                ),
            ),
            refs=ExternalRefs(
                platform_return_id="gid://shopify/Return/1",
                warehouse_rma_id="RMA-1",
                tracking_number="1Z999",
                label_url="https://labels.example.com/1.pdf",
                exchange_hold_id="hold-1",
                refund_ids=("rf-1", "rf-2"),
                credit_ids=("gc-1",),
            ),
            customer_note="zu klein — bitte umtauschen ✓",
            parent_id="R0",
            decline_reason=DeclineReason.FINAL_SALE,
            review_reasons=("high value", "repeat returner"),
            return_shipping_fee=Money("4.95", "EUR"),
            restocking_fees=Money("1.00", "EUR"),
            balance_paid=Money("1.10", "EUR"),
            balance_settled=True,
            completed_at=datetime(2026, 3, 2, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
            history=(
                make_history_entry(
                    1,
                    at=datetime(2026, 3, 1, 9, 30, 15, 123456, paris),
                    event="decline",
                    actor="agent:ana",
                    state=("requested", "no_exchange"),
                    payload={
                        "reason": "FINAL_SALE",
                        "amount": "12.50",
                        "count": 3,
                        "ratio": 0.5,
                        "flags": [True, False, None],
                        "nested": {"lines": [{"id": "L1", "qty": 2}], "empty": {}},
                        "text": "ünïcödé ✓",
                    },
                ),
                make_history_entry(1, event="note", payload={}),
            ),
        )
        store.commit(Commit(records=((record, 0),)))
        got = store.get(self.SHOP, "R1")
        _assert_same_record(got, record)
        assert got.created_at.utcoffset() == record.created_at.utcoffset()
        assert got.history[0].at == record.history[0].at
        assert got.history[0].source == ("requested", "no_exchange")
        assert isinstance(got.review_reasons, tuple)
        assert isinstance(got.refs.refund_ids, tuple)
        assert isinstance(got.lines[0].unit_amounts, tuple)
        _assert_same_record(store.list(self.SHOP)[0], record)
        _assert_same_record(store.list_in(self.SHOP, ["declined"])[0], record)

    def test_history_is_append_only_and_round_trips(self) -> None:
        store = self.open_store()
        versions = [self.seed(store, make_record(self.SHOP, "R1", 1))]
        for n in range(2, 6):
            versions.append(
                next_version(
                    versions[-1],
                    event=f"event-{n}",
                    payload={"n": n, "items": [n, str(n)], "more": {"deep": [None, True]}},
                )
            )
            store.commit(Commit(records=((versions[-1], n - 1),)))
        got = store.get(self.SHOP, "R1")
        _assert_same_record(got, versions[-1])
        assert len(got.history) == 5
        for earlier in versions:
            # every earlier version's history is a prefix of the latest one's
            assert got.history[: len(earlier.history)] == earlier.history
            assert _payloads(got)[: len(earlier.history)] == _payloads(earlier)

    def test_a_write_that_drops_history_is_refused(self) -> None:
        store = self.open_store()
        v2 = next_version(self.seed(store, make_record(self.SHOP, "R1", 1, history_len=2)))
        store.commit(Commit(records=((v2, 1),)))
        shorter = attrs.evolve(next_version(v2), history=v2.history[:1])
        with _raises_conflict():
            store.commit(Commit(records=((shorter, 2),)))
        _assert_same_record(store.get(self.SHOP, "R1"), v2)

    def test_a_write_that_rewrites_history_is_refused(self) -> None:
        store = self.open_store()
        v1 = self.seed(store, make_record(self.SHOP, "R1", 1))
        v2 = next_version(v1)
        rewritten = attrs.evolve(
            v2, history=(attrs.evolve(v2.history[0], event="forged"), *v2.history[1:])
        )
        with _raises_conflict():
            store.commit(Commit(records=((rewritten, 1),)))
        _assert_same_record(store.get(self.SHOP, "R1"), v1)

    def test_free_form_data_with_a_number_too_long_for_text_is_refused_by_name(self) -> None:
        # Python writes no whole number of more than MAX_DIGITS digits as text (nor reads
        # one): a payload holding one is refused as bad input wherever it is, nothing stored.
        store = self.open_store()
        too_long = 10**MAX_DIGITS
        record = make_record(self.SHOP, "R1", 1)
        entry = attrs.evolve(record.history[0], payload={"n": [1, too_long]})
        effect = Publish(
            key="shop-a/R1/0", shop=self.SHOP, return_id="R1", order_id="1001", version=1,
            topic="returns/update", payload={"big": -too_long},
        )  # fmt: skip
        fact = ParkedFact(
            kind="receipt", event_id="w1", source="warehouse", arrived_at=BASE_TIME,
            lines=({"quantity": too_long},),
        )  # fmt: skip
        cases = {
            "history.payload.n[1]": Commit(records=((attrs.evolve(record, history=(entry,)), 0),)),
            "effect.payload.big": Commit(records=((record, 0),), effects=(effect,)),
            "record.parked[0].lines[0].quantity": Commit(
                records=((attrs.evolve(record, parked=(fact,)), 0),)
            ),
        }
        for field, commit in cases.items():
            with _raises(InvalidPayload) as refused:
                store.commit(commit)
            assert refused.value.field == field
            with _raises(ReturnNotFound):
                store.get(self.SHOP, "R1")
            assert list(store.outbox(self.SHOP, "R1")) == []
        self.seed(store, record, make_effect(self.SHOP, "R1", 0))
        result = Attempt("shop-a/R1/0", ok=True, at=self.NOW, result={"id": too_long})
        with _raises(InvalidPayload) as refused:
            store.commit(Commit(records=(), attempts=(result,)))
        assert refused.value.field == "result.id"
        with _raises(InvalidPayload) as refused:
            store.record_attempt("shop-a/R1/0", ok=True, at=self.NOW, result=[too_long])
        assert refused.value.field == "result[0]"
        assert [entry.status for entry in store.outbox(self.SHOP, "R1")] == ["pending"]
        # one digit fewer is kept, and read back as it was
        v2 = next_version(record, payload={"n": too_long - 1})
        store.commit(Commit(records=((v2, 1),)))
        assert store.get(self.SHOP, "R1").history[-1].payload == {"n": too_long - 1}

    # -- the outbox -----------------------------------------------------------------------------

    def test_outbox_keeps_each_returns_effects_in_commit_order(self) -> None:
        store = self.open_store()
        a1, a2, b1, a3 = (
            make_effect(self.SHOP, "R1", 0),
            make_effect(self.SHOP, "R1", 1),
            make_effect(self.SHOP, "R2", 0),
            make_effect(self.SHOP, "R1", 2),
        )
        r1 = self.seed(store, make_record(self.SHOP, "R1"), a1, a2)
        self.seed(store, make_record(self.SHOP, "R2"), b1)
        store.commit(Commit(records=((next_version(r1), 1),), effects=(a3,)))
        entries = store.outbox(self.SHOP, "R1")
        assert _keys(entries) == [a1.key, a2.key, a3.key]
        assert [entry.effect for entry in entries] == [a1, a2, a3]
        assert [_effect_payload(entry.effect) for entry in entries] == [
            _effect_payload(effect) for effect in (a1, a2, a3)
        ]
        sequences = [entry.sequence for entry in entries]
        assert sequences == sorted(sequences)
        assert len(set(sequences)) == 3
        assert _keys(store.outbox(self.SHOP, "R2")) == [b1.key]
        assert list(store.outbox(self.OTHER_SHOP, "R1")) == []
        fresh = entries[0]
        assert (fresh.status, fresh.attempts, fresh.last_error, fresh.result) == (
            "pending",
            0,
            None,
            None,
        )
        assert (fresh.claimed_until, fresh.claimed_by, fresh.next_attempt_at) == (None, None, None)

    def test_pending_lists_undone_effects_oldest_first_across_shops(self) -> None:
        store = self.open_store()
        self.seed(
            store,
            make_record(self.SHOP, "R1"),
            make_effect(self.SHOP, "R1", 0),
            make_effect(self.SHOP, "R1", 1),
        )
        self.seed(store, make_record(self.OTHER_SHOP, "R9"), make_effect(self.OTHER_SHOP, "R9", 0))
        self.seed(store, make_record(self.SHOP, "R2"), make_effect(self.SHOP, "R2", 0))
        assert _keys(store.pending()) == [
            "shop-a/R1/0",
            "shop-a/R1/1",
            "shop-b/R9/0",
            "shop-a/R2/0",
        ]
        assert _keys(store.pending(limit=2)) == ["shop-a/R1/0", "shop-a/R1/1"]
        store.record_attempt("shop-a/R1/0", ok=True, at=self.NOW)
        store.record_attempt("shop-b/R9/0", ok=False, at=self.NOW, error="gone", give_up=True)
        store.record_attempt(
            "shop-a/R2/0", ok=False, at=self.NOW, error="later", retry_at=self.NOW + timedelta(1)
        )
        assert _keys(store.pending()) == ["shop-a/R1/1", "shop-a/R2/0"]

    def claim(
        self,
        store: ReturnStore,
        worker: str = "w1",
        *,
        at: datetime | None = None,
        lease: timedelta = timedelta(seconds=30),
        **filters: Any,
    ) -> list[str]:
        now = at if at is not None else self.NOW
        entries = store.claim(now=now, lease_until=now + lease, worker=worker, **filters)
        for entry in entries:
            assert entry.claimed_by == worker
            assert entry.claimed_until == now + lease
            assert entry.status == "pending"
        return _keys(entries)

    def test_claim_hands_out_only_the_oldest_pending_effect_of_each_return(self) -> None:
        store = self.open_store()
        self.seed(
            store,
            make_record(self.SHOP, "R1"),
            *(make_effect(self.SHOP, "R1", i) for i in range(3)),
        )
        self.seed(store, make_record(self.SHOP, "R2"), make_effect(self.SHOP, "R2", 0))
        assert self.claim(store, "w1") == ["shop-a/R1/0", "shop-a/R2/0"]
        # under live leases, nothing else: in particular never R1's second effect
        assert self.claim(store, "w2") == []
        assert self.claim(store, "w2", at=self.NOW + timedelta(seconds=10)) == []
        store.record_attempt("shop-a/R1/0", ok=True, at=self.NOW)
        assert self.claim(store, "w2") == ["shop-a/R1/1"]
        store.record_attempt("shop-a/R1/1", ok=True, at=self.NOW)
        store.record_attempt("shop-a/R2/0", ok=True, at=self.NOW)
        assert self.claim(store, "w3") == ["shop-a/R1/2"]
        store.record_attempt("shop-a/R1/2", ok=True, at=self.NOW)
        assert self.claim(store, "w3", at=self.NOW + timedelta(days=30)) == []

    def test_claim_respects_the_limit_oldest_first(self) -> None:
        store = self.open_store()
        for index in range(5):
            self.seed(
                store, make_record(self.SHOP, f"R{index}"), make_effect(self.SHOP, f"R{index}", 0)
            )
        assert self.claim(store, "w1", limit=2) == ["shop-a/R0/0", "shop-a/R1/0"]
        assert self.claim(store, "w2", limit=2) == ["shop-a/R2/0", "shop-a/R3/0"]
        assert self.claim(store, "w3", limit=2) == ["shop-a/R4/0"]

    def test_a_limit_below_one_or_beyond_any_stores_integers_is_read_alike(self) -> None:
        # below 1: nothing (SQLite would read a negative LIMIT as none, PostgreSQL refuse
        # it); beyond 64 bits: all there are (no raw OverflowError from the driver)
        store = self.open_store()
        for index in range(3):
            self.seed(
                store, make_record(self.SHOP, f"R{index}"), make_effect(self.SHOP, f"R{index}", 0)
            )
        huge = 2**70
        assert len(store.list(self.SHOP, limit=huge)) == 3
        assert len(store.list_in(self.SHOP, ["requested"], limit=huge)) == 3
        assert len(store.pending(huge)) == 3
        assert list(store.list_due(self.NOW, limit=huge)) == []
        for below in (0, -1):
            assert list(store.list_in(self.SHOP, ["requested"], limit=below)) == []
            assert list(store.pending(below)) == []
            assert list(store.list_due(self.NOW, limit=below)) == []
            assert self.claim(store, "w0", limit=below) == []
        for bad in ("10", 1.5, True):
            with _raises(ValidationError) as refused:
                store.pending(bad)  # type: ignore[arg-type]
            assert (refused.value.field, refused.value.value) == ("limit", bad)
        assert len(self.claim(store, "w1", limit=huge)) == 3

    def test_an_expired_lease_is_claimable_by_another_worker(self) -> None:
        store = self.open_store()
        self.seed(
            store,
            make_record(self.SHOP, "R1"),
            make_effect(self.SHOP, "R1", 0),
            make_effect(self.SHOP, "R1", 1),
        )
        assert self.claim(store, "w1", lease=timedelta(seconds=30)) == ["shop-a/R1/0"]
        assert self.claim(store, "w2", at=self.NOW + timedelta(seconds=29)) == []
        later = self.NOW + timedelta(seconds=31)
        assert self.claim(store, "w2", at=later) == ["shop-a/R1/0"]
        (entry,) = [e for e in store.outbox(self.SHOP, "R1") if e.effect.key == "shop-a/R1/0"]
        assert entry.claimed_by == "w2"
        assert entry.attempts == 0
        assert self.claim(store, "w1", at=later) == []

    def test_a_lease_that_ends_exactly_now_is_claimable(self) -> None:
        store = self.open_store()
        self.seed(store, make_record(self.SHOP, "R1"), make_effect(self.SHOP, "R1", 0))
        assert self.claim(store, "w1", lease=timedelta(seconds=30)) == ["shop-a/R1/0"]
        ends = self.NOW + timedelta(seconds=30)
        assert self.claim(store, "w2", at=ends - timedelta(microseconds=1)) == []
        assert self.claim(store, "w2", at=ends) == ["shop-a/R1/0"]

    def test_a_successful_attempt_marks_the_effect_done_and_keeps_its_result(self) -> None:
        store = self.open_store()
        self.seed(
            store,
            make_record(self.SHOP, "R1"),
            make_effect(self.SHOP, "R1", 0),
            make_effect(self.SHOP, "R1", 1),
        )
        self.claim(store, "w1")
        at = self.NOW + timedelta(seconds=3)
        result = {"refund_id": "rf-1", "amount": "12.50", "ids": [1, 2], "ok": True}
        entry = store.record_attempt("shop-a/R1/0", ok=True, at=at, result=result)
        assert entry.effect.key == "shop-a/R1/0"
        assert (entry.status, entry.attempts, entry.last_error) == ("done", 1, None)
        assert entry.result == result
        assert entry.updated_at == at
        assert (entry.claimed_until, entry.claimed_by, entry.next_attempt_at) == (None, None, None)
        stored = store.outbox(self.SHOP, "R1")[0]
        assert (stored.status, stored.attempts, stored.result, stored.updated_at) == (
            "done",
            1,
            result,
            at,
        )
        assert "shop-a/R1/0" not in _keys(store.pending())
        assert self.claim(store, "w2", at=self.NOW + timedelta(days=1)) == ["shop-a/R1/1"]

    def test_a_failed_attempt_stays_pending_until_its_retry_time(self) -> None:
        store = self.open_store()
        self.seed(
            store,
            make_record(self.SHOP, "R1"),
            make_effect(self.SHOP, "R1", 0),
            make_effect(self.SHOP, "R1", 1),
        )
        self.claim(store, "w1")
        retry_at = self.NOW + timedelta(minutes=5)
        entry = store.record_attempt(
            "shop-a/R1/0", ok=False, at=self.NOW, error="503 from the platform", retry_at=retry_at
        )
        assert (entry.status, entry.attempts, entry.last_error) == (
            "pending",
            1,
            "503 from the platform",
        )
        assert entry.next_attempt_at == retry_at
        assert (entry.claimed_until, entry.claimed_by) == (None, None)
        assert _keys(store.pending()) == ["shop-a/R1/0", "shop-a/R1/1"]
        # not due yet: neither it nor the effect behind it is claimable
        assert self.claim(store, "w2", at=self.NOW + timedelta(minutes=4)) == []
        assert self.claim(store, "w2", at=retry_at + timedelta(seconds=1)) == ["shop-a/R1/0"]
        again = store.record_attempt(
            "shop-a/R1/0",
            ok=False,
            at=retry_at,
            error="timeout",
            retry_at=retry_at + timedelta(minutes=10),
        )
        assert (again.status, again.attempts, again.last_error) == ("pending", 2, "timeout")
        assert self.claim(store, "w3", at=retry_at + timedelta(minutes=9)) == []
        assert self.claim(store, "w3", at=retry_at + timedelta(minutes=11)) == ["shop-a/R1/0"]
        done = store.record_attempt("shop-a/R1/0", ok=True, at=retry_at + timedelta(minutes=11))
        assert (done.status, done.attempts, done.last_error) == ("done", 3, None)

    def test_a_given_up_effect_fails_and_is_never_claimed_again(self) -> None:
        store = self.open_store()
        self.seed(
            store,
            make_record(self.SHOP, "R1"),
            make_effect(self.SHOP, "R1", 0),
            make_effect(self.SHOP, "R1", 1),
        )
        self.claim(store, "w1")
        entry = store.record_attempt(
            "shop-a/R1/0", ok=False, at=self.NOW, error="card declined", give_up=True
        )
        assert (entry.status, entry.attempts, entry.last_error) == ("failed", 1, "card declined")
        assert (entry.claimed_until, entry.claimed_by, entry.next_attempt_at) == (None, None, None)
        assert _keys(store.pending()) == ["shop-a/R1/1"]
        # the next effect of the return is now the oldest pending one
        assert self.claim(store, "w2") == ["shop-a/R1/1"]
        store.record_attempt("shop-a/R1/1", ok=True, at=self.NOW)
        for days in (0, 1, 365):
            assert self.claim(store, "w3", at=self.NOW + timedelta(days=days)) == []
        assert store.outbox(self.SHOP, "R1")[0].status == "failed"

    def test_claim_filters_by_shop_and_return(self) -> None:
        store = self.open_store()
        for shop in (self.SHOP, self.OTHER_SHOP):
            for return_id in ("R1", "R2"):
                self.seed(
                    store,
                    make_record(shop, return_id),
                    make_effect(shop, return_id, 0),
                    make_effect(shop, return_id, 1),
                )
        assert self.claim(store, "w1", shop=self.OTHER_SHOP) == ["shop-b/R1/0", "shop-b/R2/0"]
        assert self.claim(store, "w1", shop=self.SHOP, return_id="R2") == ["shop-a/R2/0"]
        assert self.claim(store, "w1", shop=self.SHOP, return_id="R2") == []
        assert self.claim(store, "w1", shop=self.SHOP, return_id="R9") == []
        assert self.claim(store, "w1", shop=self.SHOP) == ["shop-a/R1/0"]

    def test_claim_filters_by_return_id_alone(self) -> None:
        store = self.open_store()
        for shop in (self.SHOP, self.OTHER_SHOP):
            for return_id in ("R1", "R2"):
                self.seed(store, make_record(shop, return_id), make_effect(shop, return_id, 0))
        assert self.claim(store, "w1", return_id="R2") == ["shop-a/R2/0", "shop-b/R2/0"]
        assert self.claim(store, "w1") == ["shop-a/R1/0", "shop-b/R1/0"]

    # -- runs: a head with the effects behind it; claims taken in a commit ------------------

    def test_a_claim_with_a_run_hands_out_the_effects_behind_each_head_unclaimed(self) -> None:
        store = self.open_store()
        self.seed(
            store,
            make_record(self.SHOP, "R1"),
            *(make_effect(self.SHOP, "R1", i) for i in range(3)),
        )
        self.seed(store, make_record(self.SHOP, "R2"), make_effect(self.SHOP, "R2", 0))
        until = self.NOW + timedelta(seconds=30)
        got = store.claim(now=self.NOW, lease_until=until, worker="w1", run=2)
        assert _keys(got) == ["shop-a/R1/0", "shop-a/R1/1", "shop-a/R2/0"]
        assert [(e.claimed_by, e.claimed_until) for e in got] == [
            ("w1", until),
            (None, None),
            ("w1", until),
        ]
        assert all(entry.status == "pending" and entry.attempts == 0 for entry in got)
        assert [entry.effect for entry in got] == [
            make_effect(self.SHOP, "R1", 0),
            make_effect(self.SHOP, "R1", 1),
            make_effect(self.SHOP, "R2", 0),
        ]
        # the head's lease covers its run: nothing of either return is claimable
        assert store.claim(now=self.NOW, lease_until=until, worker="w2", run=5) == []
        store.record_attempt("shop-a/R1/0", ok=True, at=self.NOW)
        again = store.claim(now=self.NOW, lease_until=until, worker="w2", run=5)
        assert _keys(again) == ["shop-a/R1/1", "shop-a/R1/2"]
        assert [entry.claimed_by for entry in again] == ["w2", None]

    def test_a_run_stops_at_an_effect_backing_off(self) -> None:
        store = self.open_store()
        first, second = make_effect(self.SHOP, "R1", 0), make_effect(self.SHOP, "R1", 1)
        self.seed(store, make_record(self.SHOP, "R1"), first, second)
        store.record_attempt(first.key, ok=False, at=self.NOW, error="down", give_up=True)
        later = self.NOW + timedelta(hours=1)
        store.record_attempt(second.key, ok=False, at=self.NOW, error="busy", retry_at=later)
        record = next_version(store.get(self.SHOP, "R1"))
        store.commit(Commit(records=((record, 1),), reopened=(first.key,)))
        got = store.claim(now=self.NOW, lease_until=later, worker="w1", run=5)
        assert _keys(got) == [first.key]  # the effect behind it is not due before ``later``

    def test_a_run_of_a_bad_length_is_refused(self) -> None:
        store = self.open_store()
        self.seed(store, make_record(self.SHOP, "R1"), make_effect(self.SHOP, "R1", 0))
        for run in (0, -1, 1.5, True, "2"):
            with _raises(ValidationError):
                store.claim(now=self.NOW, lease_until=self.NOW, worker="w1", run=run)  # type: ignore[arg-type]
        assert self.claim(store, "w1") == ["shop-a/R1/0"]

    def _lease(self, *returns: str, worker: str = "w1", run: int = 10) -> Lease:
        until = self.NOW + timedelta(seconds=30)
        return Lease(worker, self.NOW, until, tuple((self.SHOP, rid) for rid in returns), run)

    def test_a_commit_claims_what_it_wrote_and_hands_it_back(self) -> None:
        store = self.open_store()
        effects = tuple(make_effect(self.SHOP, "R1", i) for i in range(3))
        record = make_record(self.SHOP, "R1")
        got = store.commit(
            Commit(records=((record, 0),), effects=effects, claim=self._lease("R1", run=2))
        )
        assert [entry.effect for entry in got] == list(effects[:2])
        assert [entry.claimed_by for entry in got] == ["w1", None]
        assert got[0].claimed_until == self.NOW + timedelta(seconds=30)
        stored = store.outbox(self.SHOP, "R1")
        assert [(e.effect.key, e.claimed_by) for e in stored] == [
            (effects[0].key, "w1"),
            (effects[1].key, None),
            (effects[2].key, None),
        ]
        assert [e.sequence for e in stored[:2]] == [e.sequence for e in got]
        assert self.claim(store, "w2") == []  # under w1's lease
        # without a claim, a commit hands nothing back
        assert list(store.commit(Commit(records=((make_record(self.SHOP, "R2"), 0),)))) == []

    def test_a_commit_of_attempts_alone_claims_the_next_head(self) -> None:
        store = self.open_store()
        effects = [make_effect(self.SHOP, "R1", i) for i in range(3)]
        self.seed(store, make_record(self.SHOP, "R1"), *effects)
        self.seed(store, make_record(self.SHOP, "R2"), make_effect(self.SHOP, "R2", 0))
        assert self.claim(store, "w1", return_id="R1") == [effects[0].key]
        done = Attempt(effects[0].key, ok=True, at=self.NOW, result={"n": 1})
        got = store.commit(Commit(records=(), attempts=(done,), claim=self._lease("R1", "R2")))
        assert _keys(got) == [effects[1].key, effects[2].key, "shop-a/R2/0"]
        assert [entry.claimed_by for entry in got] == ["w1", None, "w1"]
        first = store.outbox(self.SHOP, "R1")[0]
        assert (first.status, first.result, first.claimed_by) == ("done", {"n": 1}, None)

    def test_a_commit_of_attempts_alone_records_all_of_them_or_none(self) -> None:
        store = self.open_store()
        effects = [make_effect(self.SHOP, f"R{n}", 0) for n in range(3)]
        for n, effect in enumerate(effects):
            self.seed(store, make_record(self.SHOP, f"R{n}"), effect)
        store.record_attempt(effects[1].key, ok=True, at=self.NOW, result={"n": 1})
        attempts = tuple(Attempt(e.key, ok=True, at=self.NOW, result={"n": 2}) for e in effects)
        with _raises_conflict():
            store.commit(Commit(records=(), attempts=attempts))
        assert [store.outbox(self.SHOP, f"R{n}")[0].status for n in range(3)] == [
            "pending",
            "done",
            "pending",
        ]
        assert store.outbox(self.SHOP, "R1")[0].result == {"n": 1}
        retry = self.NOW + timedelta(minutes=1)
        failed = Attempt(effects[2].key, ok=False, at=self.NOW, error="busy", retry_at=retry)
        assert list(store.commit(Commit(records=(), attempts=(attempts[0], failed)))) == []
        first, third = store.outbox(self.SHOP, "R0")[0], store.outbox(self.SHOP, "R2")[0]
        assert (first.status, first.attempts, first.result) == ("done", 1, {"n": 2})
        assert (third.status, third.attempts, third.next_attempt_at) == ("pending", 1, retry)
        assert third.last_error == "busy"

    def test_a_commit_claims_nothing_under_another_workers_lease(self) -> None:
        store = self.open_store()
        first = make_effect(self.SHOP, "R1", 0)
        self.seed(store, make_record(self.SHOP, "R1"), first)
        assert self.claim(store, "w1") == [first.key]
        record = next_version(store.get(self.SHOP, "R1"))
        second = make_effect(self.SHOP, "R1", 1, version=2)
        got = store.commit(
            Commit(records=((record, 1),), effects=(second,), claim=self._lease("R1", worker="w2"))
        )
        assert list(got) == []
        assert [e.claimed_by for e in store.outbox(self.SHOP, "R1")] == ["w1", None]

    def test_a_commit_of_attempts_alone_claims_nothing_when_it_records_nothing(self) -> None:
        store = self.open_store()
        effects = [make_effect(self.SHOP, "R1", i) for i in range(2)]
        self.seed(store, make_record(self.SHOP, "R1"), *effects)
        store.record_attempt(effects[0].key, ok=True, at=self.NOW)
        again = Attempt(effects[0].key, ok=True, at=self.NOW)
        with _raises_conflict():
            store.commit(Commit(records=(), attempts=(again,), claim=self._lease("R1")))
        assert [e.claimed_by for e in store.outbox(self.SHOP, "R1")] == [None, None]
        assert store.outbox(self.SHOP, "R1")[0].attempts == 1

    def test_a_commit_of_attempts_alone_claims_past_a_given_up_effect_not_a_retried_one(
        self,
    ) -> None:
        store = self.open_store()
        first, second = make_effect(self.SHOP, "R1", 0), make_effect(self.SHOP, "R1", 1)
        self.seed(store, make_record(self.SHOP, "R1"), first, second)
        other = make_effect(self.SHOP, "R2", 0)
        self.seed(store, make_record(self.SHOP, "R2"), other)
        assert self.claim(store, "w1", return_id="R1") == [first.key]
        later = self.NOW + timedelta(minutes=5)
        retried = Attempt(first.key, ok=False, at=self.NOW, error="busy", retry_at=later)
        got = store.commit(Commit(records=(), attempts=(retried,), claim=self._lease("R1", "R2")))
        assert _keys(got) == [other.key]  # R1's head backs off: nothing of R1
        head = store.outbox(self.SHOP, "R1")[0]
        assert (head.status, head.attempts, head.claimed_by) == ("pending", 1, None)
        assert self.claim(store, "w2", at=later, return_id="R1") == [first.key]
        given_up = Attempt(first.key, ok=False, at=later, error="gone", give_up=True)
        lease = Lease("w2", later, later + timedelta(seconds=30), ((self.SHOP, "R1"),), 10)
        got = store.commit(Commit(records=(), attempts=(given_up,), claim=lease))
        assert _keys(got) == [second.key]
        assert [entry.claimed_by for entry in got] == ["w2"]

    def test_a_reopened_effect_waits_for_the_lease_of_the_effect_after_it(self) -> None:
        store = self.open_store()
        first, second = make_effect(self.SHOP, "R1", 0), make_effect(self.SHOP, "R1", 1)
        record = self.seed(store, make_record(self.SHOP, "R1"), first, second)
        assert self.claim(store, "w1") == [first.key]
        store.record_attempt(first.key, ok=False, at=self.NOW, error="down", give_up=True)
        assert self.claim(store, "w1") == [second.key]  # out with w1 until its lease ends
        store.commit(Commit(records=((next_version(record), 1),), reopened=(first.key,)))
        # the re-opened effect is the head now; it waits for w1, by a claim or a commit's
        assert self.claim(store, "w2") == []
        refused = store.commit(
            Commit(
                records=((next_version(store.get(self.SHOP, "R1")), 2),),
                claim=self._lease("R1", worker="w2"),
            )
        )
        assert list(refused) == []
        assert [e.claimed_by for e in store.outbox(self.SHOP, "R1")] == [None, "w1"]
        # once w1's lease has ended, or w1 has written its attempt, it is handed out
        after = self.NOW + timedelta(minutes=10)
        assert self.claim(store, "w2", at=after) == [first.key]
        store.record_attempt(first.key, ok=False, at=after, error="busy", retry_at=after)
        store.record_attempt(second.key, ok=True, at=after)
        assert self.claim(store, "w3", at=after) == [first.key]

    def test_a_refused_commit_takes_no_claim(self) -> None:
        store = self.open_store()
        self.seed(store, make_record(self.SHOP, "R1"), make_effect(self.SHOP, "R1", 0))
        stale = next_version(store.get(self.SHOP, "R1"))
        store.commit(Commit(records=((stale, 1),)))
        with _raises_conflict():
            store.commit(
                Commit(
                    records=((next_version(stale), 1),),
                    effects=(make_effect(self.SHOP, "R1", 1, version=2),),
                    claim=self._lease("R1"),
                )
            )
        assert [e.claimed_by for e in store.outbox(self.SHOP, "R1")] == [None]
        assert self.claim(store, "w2") == ["shop-a/R1/0"]

    # -- concurrency: threads -----------------------------------------------------------------

    def test_concurrent_writers_in_threads_lose_no_update(self) -> None:
        store = self.open_store()
        start = self.seed(store, make_record(self.SHOP, "R1", 1))
        barrier = threading.Barrier(self.THREADS)
        errors: list[BaseException] = []

        def work(worker: str) -> None:
            try:
                barrier.wait(timeout=60)
                for _ in range(self.THREAD_INCREMENTS):
                    commit_next_version(store, self.SHOP, "R1", actor=worker)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(self.THREADS)]
        with _running(threads):
            pass
        assert errors == []
        total = self.THREADS * self.THREAD_INCREMENTS
        final = store.get(self.SHOP, "R1")
        assert final.version == 1 + total
        assert len(final.history) == len(start.history) + total
        assert [entry.version for entry in final.history] == list(range(1, 2 + total))
        assert final.history[: len(start.history)] == start.history
        actors = [entry.actor for entry in final.history[len(start.history) :]]
        assert sorted(set(actors)) == sorted(f"t{n}" for n in range(self.THREADS))
        assert all(actors.count(f"t{n}") == self.THREAD_INCREMENTS for n in range(self.THREADS))

    def test_reads_under_concurrent_writes_are_consistent(self) -> None:
        """A record read while others write is one version: its history is that version's
        (the helpers' records have one history entry per version)."""
        store = self.open_store()
        ids = [f"R{index:02d}" for index in range(10)]
        for return_id in ids:
            self.seed(store, make_record(self.SHOP, return_id, 1))
        stop = threading.Event()
        torn: list[tuple[str, int, int]] = []
        errors: list[BaseException] = []

        def check(record: ReturnRecord) -> None:
            if len(record.history) != record.version:
                torn.append((record.id, record.version, len(record.history)))
                stop.set()

        def read() -> None:
            try:
                while not stop.is_set():
                    for record in store.list(self.SHOP):
                        check(record)
                    for record in store.list_in(self.SHOP, ["requested"]):
                        check(record)
                    check(store.get(self.SHOP, ids[0]))
            except BaseException as error:
                errors.append(error)
                stop.set()

        writes = 0

        def write(worker: int) -> None:
            nonlocal writes
            try:
                for n in range(self.THREAD_INCREMENTS * 2):
                    if stop.is_set():
                        return
                    commit_next_version(
                        store, self.SHOP, ids[(worker + n) % len(ids)], actor=f"t{worker}"
                    )
                    writes += 1
            except BaseException as error:
                errors.append(error)
                stop.set()

        readers = [threading.Thread(target=read) for _ in range(2)]
        writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        with _running(readers):
            with _running(writers):
                pass
            stop.set()
        assert errors == []
        assert torn == [], f"reads that mix versions (id, version, history length): {torn}"
        records = store.list(self.SHOP)
        assert sum(record.version - 1 for record in records) == writes
        for record in records:
            check(record)

    def test_concurrent_claims_in_threads_never_hand_out_an_effect_twice(self) -> None:
        store = self.open_store()
        returns, per_return, workers = 50, 4, 4
        for index in range(returns):
            return_id = f"R{index:02d}"
            self.seed(
                store,
                make_record(self.SHOP, return_id),
                *(make_effect(self.SHOP, return_id, n) for n in range(per_return)),
            )
        lease = self.NOW + timedelta(minutes=5)
        for round_ in range(per_return):
            claimed = _claim_concurrently(store, self.NOW, lease, workers)
            everything = [key for keys in claimed.values() for key in keys]
            assert len(everything) == len(set(everything)), "an effect was claimed twice"
            # exactly the head of every return, and never the effect behind it
            assert sorted(everything) == sorted(
                f"{self.SHOP}/R{index:02d}/{round_}" for index in range(returns)
            )
            for worker, keys in claimed.items():
                for key in keys:
                    store.record_attempt(key, ok=True, at=self.NOW, result={"by": worker})
        assert list(store.pending()) == []

    # -- cursors ---------------------------------------------------------------------------------

    def test_an_unknown_cursor_reads_none(self) -> None:
        store = self.open_store()
        assert store.read_cursor("import:loop:shop-a") is None

    def test_a_written_cursor_reads_back(self) -> None:
        store = self.open_store()
        name = "import:loop:shop-a"
        store.write_cursor(name, "2026-01-15T12:00:00+00:00", expected=None)
        assert store.read_cursor(name) == "2026-01-15T12:00:00+00:00"
        store.write_cursor(name, '{"mark": "x", "n": 2}', expected="2026-01-15T12:00:00+00:00")
        assert store.read_cursor(name) == '{"mark": "x", "n": 2}'

    def test_a_stale_expected_cursor_value_conflicts_and_writes_nothing(self) -> None:
        store = self.open_store()
        name = "import:loop:shop-a"
        with _raises_conflict():
            store.write_cursor(name, "v1", expected="v0")  # nothing written yet
        assert store.read_cursor(name) is None
        store.write_cursor(name, "v1", expected=None)
        with _raises_conflict():
            store.write_cursor(name, "v2", expected=None)  # a value exists now
        with _raises_conflict():
            store.write_cursor(name, "v2", expected="v0")
        assert store.read_cursor(name) == "v1"
        store.write_cursor(name, "v2", expected="v1")
        with _raises_conflict():
            store.write_cursor(name, "v3", expected="v1")  # the value v1 is gone
        assert store.read_cursor(name) == "v2"

    def test_cursors_are_independent(self) -> None:
        store = self.open_store()
        store.write_cursor("import:loop:shop-a", "a1", expected=None)
        store.write_cursor("import:loop:shop-b", "b1", expected=None)
        store.write_cursor("import:loop:shop-a", "a2", expected="a1")
        with _raises_conflict():
            store.write_cursor("import:loop:shop-b", "b2", expected="a2")
        assert store.read_cursor("import:loop:shop-a") == "a2"
        assert store.read_cursor("import:loop:shop-b") == "b1"
        assert store.read_cursor("import:loop") is None
        # cursors live apart from returns: writing one touches no return, and back
        self.seed(store, make_record(self.SHOP, "R1"))
        assert store.read_cursor("import:loop:shop-a") == "a2"
        assert [record.id for record in store.list(self.SHOP)] == ["R1"]

    def test_a_cursor_written_is_read_by_another_process(self) -> None:
        store = self.open_store()
        factory = self.open_in_other_process()
        if factory is None:
            _skip(
                f"{type(self).__name__}.open_in_other_process() returns None: "
                "this store is not shared between processes"
            )
        name = "import:loop:shop-a"
        store.write_cursor(name, "written here", expected=None)
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue[tuple[str, str | None]] = context.Queue()
        process = context.Process(
            target=_read_cursor_in_process,
            args=(factory, name, "written there", results),
            daemon=True,
        )
        process.start()
        try:
            status, value = results.get(timeout=90)
            process.join(timeout=30)
        except queue_module.Empty:
            raise AssertionError("the reading process did not finish") from None
        finally:
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
            results.close()
            results.join_thread()
        assert status == "ok", value
        assert value == "written here", f"the other process read {value!r}"
        assert store.read_cursor(name) == "written there", "the other process's write is lost"
        with _raises_conflict():
            store.write_cursor(name, "stale", expected="written here")

    # -- concurrency: processes -----------------------------------------------------------------

    def test_concurrent_writers_in_processes_lose_no_update(self) -> None:
        store = self.open_store()
        factory = self.open_in_other_process()
        if factory is None:
            _skip(
                f"{type(self).__name__}.open_in_other_process() returns None: "
                "this store is not shared between processes"
            )
        start = self.seed(store, make_record(self.SHOP, "R1", 1))
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(self.PROCESSES)
        results: multiprocessing.Queue[tuple[str, str, int | str]] = context.Queue()
        processes = [
            context.Process(
                target=_increment_in_process,
                args=(factory, self.SHOP, "R1", self.PROCESS_INCREMENTS, f"p{n}", barrier, results),
                daemon=True,
            )
            for n in range(self.PROCESSES)
        ]
        for process in processes:
            process.start()
        outcomes: list[tuple[str, str, int | str]] = []
        try:
            for _ in processes:
                outcomes.append(results.get(timeout=90))
            for process in processes:
                process.join(timeout=30)
        except queue_module.Empty:
            raise AssertionError(f"a writer process did not finish; got {outcomes}") from None
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                    process.join(timeout=10)
            results.close()
            results.join_thread()
        failures = [detail for _, status, detail in outcomes if status != "ok"]
        assert failures == [], "\n".join(str(detail) for detail in failures)
        total = self.PROCESSES * self.PROCESS_INCREMENTS
        final = store.get(self.SHOP, "R1")
        assert final.version == 1 + total
        assert len(final.history) == len(start.history) + total
        actors = [entry.actor for entry in final.history[len(start.history) :]]
        assert all(actors.count(f"p{n}") == self.PROCESS_INCREMENTS for n in range(self.PROCESSES))

    # -- the order-level ledger of units ------------------------------------------------------

    def _take(self, return_id: str, *units: int, order_id: str = "O-1", **changes: Any) -> Commit:
        record = make_record(self.SHOP, return_id, order_id=order_id, units={"L1": units})
        return Commit(records=((attrs.evolve(record, **changes), 0),))

    def test_a_second_return_taking_a_held_unit_conflicts_and_writes_nothing(self) -> None:
        store = self.open_store()
        store.commit(self._take("R1", 0, 1))
        clash = self._take("R2", 1, 2)
        clash = attrs.evolve(clash, effects=(make_effect(self.SHOP, "R2", 0, order_id="O-1"),))
        with _raises(UnitsTaken) as raised:
            store.commit(clash)
        taken = raised.value
        assert isinstance(taken, ConcurrencyConflict)
        assert ("L1", 1) in getattr(taken, "units", ())
        with _raises(ReturnNotFound):
            store.get(self.SHOP, "R2")
        assert store.outbox(self.SHOP, "R2") == []
        store.commit(self._take("R2", 2, 3))  # free units of the same order: no clash
        store.commit(self._take("R3", 0, 1, order_id="O-2"))  # another order
        other = make_record(self.OTHER_SHOP, "R1", order_id="O-1", units={"L1": (0, 1)})
        store.commit(Commit(records=((other, 0),)))  # another shop's order

    def test_two_returns_of_one_commit_taking_the_same_unit_conflict(self) -> None:
        store = self.open_store()
        first, second = self._take("R1", 0).records[0], self._take("R2", 0).records[0]
        with _raises(UnitsTaken):
            store.commit(Commit(records=(first, second)))
        with _raises(ReturnNotFound):
            store.get(self.SHOP, "R1")

    def test_a_return_that_ends_unsettled_frees_its_units(self) -> None:
        store = self.open_store()
        for status in ("declined", "cancelled", "expired"):
            order, first, second = f"O-{status}", f"R1-{status}", f"R2-{status}"
            store.commit(self._take(first, 0, order_id=order))
            held = store.get(self.SHOP, first)
            with _raises(UnitsTaken):
                store.commit(self._take(second, 0, order_id=order))
            store.commit(Commit(records=((next_version(held, status=status), 1),)))
            store.commit(self._take(second, 0, order_id=order))
            assert store.get(self.SHOP, second).lines[0].units == (0,)

    def test_a_return_written_again_after_it_ended_unsettled_takes_nothing_back(self) -> None:
        store = self.open_store()
        store.commit(self._take("R1", 0))
        held = store.get(self.SHOP, "R1")
        store.commit(Commit(records=((next_version(held, status="cancelled"), 1),)))
        store.commit(self._take("R2", 0))  # the freed unit, taken by another return
        cancelled = store.get(self.SHOP, "R1")
        store.commit(Commit(records=((next_version(cancelled), 2),)))  # a late write-back
        assert store.get(self.SHOP, "R1").version == 3
        with _raises(UnitsTaken):  # R2 still holds it: R1 did not take it back
            store.commit(self._take("R3", 0))

    def test_a_new_return_stored_already_declined_takes_no_units(self) -> None:
        store = self.open_store()
        store.commit(self._take("R1", 0, status="declined"))
        store.commit(self._take("R2", 0))

    def test_a_return_reset_after_paying_early_keeps_the_units_it_paid_for(self) -> None:
        store = self.open_store()
        store.commit(self._take("R1", 0, 1, 2))
        held = store.get(self.SHOP, "R1")
        # three units paid at hand-in; the warehouse accepted one; the reset carries that one
        paid = attrs.evolve(held.lines[0], received=3, accepted=1, rejected=2, settled=3)
        parent = next_version(held, status="reset", child_id="R2", lines=(paid, *held.lines[1:]))
        child = make_record(self.SHOP, "R2", order_id="O-1", units={"L1": (0,)})
        store.commit(Commit(records=((parent, 1), (attrs.evolve(child, parent_id="R1"), 0))))
        for unit in (0, 1, 2):
            with _raises(UnitsTaken):
                store.commit(self._take(f"R-again-{unit}", unit))

    def test_a_closed_return_keeps_its_units(self) -> None:
        store = self.open_store()
        store.commit(self._take("R1", 0))
        held = store.get(self.SHOP, "R1")
        store.commit(Commit(records=((next_version(held, status="closed"), 1),)))
        with _raises(UnitsTaken):
            store.commit(self._take("R2", 0))

    def test_a_reset_hands_its_units_to_its_new_return_in_the_same_commit(self) -> None:
        store = self.open_store()
        store.commit(self._take("R1", 0, 1))
        parent = store.get(self.SHOP, "R1")
        child = make_record(self.SHOP, "R2", order_id="O-1", units={"L1": (0,)})
        store.commit(
            Commit(
                records=(
                    (next_version(parent, status="reset", child_id="R2"), 1),
                    (attrs.evolve(child, parent_id="R1"), 0),
                )
            )
        )
        with _raises(UnitsTaken):
            store.commit(self._take("R3", 0))
        store.commit(self._take("R3", 1))  # the unit the reset did not carry is free

    def test_a_rejected_ledger_write_leaves_every_other_part_of_the_commit_unwritten(
        self,
    ) -> None:
        store = self.open_store()
        store.commit(self._take("R1", 0))
        held = store.get(self.SHOP, "R1")
        key = InboundKey(self.SHOP, "wms", "evt-1")
        clash = Commit(
            records=(
                (next_version(held), 1),
                (make_record(self.SHOP, "R2", order_id="O-1", units={"L1": (0,)}), 0),
            ),
            effects=(make_effect(self.SHOP, "R1", 0, order_id="O-1"),),
            inbound=key,
        )
        with _raises(UnitsTaken):
            store.commit(clash)
        assert store.get(self.SHOP, "R1") == held
        assert not store.seen(key)
        assert store.outbox(self.SHOP, "R1") == []

    def test_returns_racing_for_one_unit_in_threads_are_stored_once(self) -> None:
        store = self.open_store()
        for trial in range(5):
            order = f"O-race-{trial}"
            won, errors = self._race(store, order, [f"{order}-R{n}" for n in range(self.THREADS)])
            assert errors == []
            assert len(won) == 1, won
            assert [r.id for r in store.list(self.SHOP, order_id=order)] == won

    def _race(
        self, store: ReturnStore, order: str, names: Sequence[str]
    ) -> tuple[list[str], list[BaseException]]:
        """Each of ``names`` commits a new return taking unit 0 of ``order``, all at once."""
        barrier = threading.Barrier(len(names))
        won: list[str] = []
        errors: list[BaseException] = []

        def work(return_id: str) -> None:
            try:
                barrier.wait(timeout=60)
                store.commit(self._take(return_id, 0, order_id=order))
                won.append(return_id)
            except UnitsTaken:
                pass
            except BaseException as error:
                errors.append(error)

        with _running([threading.Thread(target=work, args=(name,)) for name in names]):
            pass
        return won, errors

    def test_returns_racing_for_one_unit_in_processes_are_stored_once(self) -> None:
        store = self.open_store()
        factory = self.open_in_other_process()
        if factory is None:
            _skip(
                f"{type(self).__name__}.open_in_other_process() returns None: "
                "this store is not shared between processes"
            )
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(self.PROCESSES)
        results: multiprocessing.Queue[tuple[str, str, int | str]] = context.Queue()
        processes = [
            context.Process(
                target=_take_in_process,
                args=(factory, self.SHOP, f"P{n}", barrier, results),
                daemon=True,
            )
            for n in range(self.PROCESSES)
        ]
        for process in processes:
            process.start()
        outcomes: list[tuple[str, str, int | str]] = []
        try:
            for _ in processes:
                outcomes.append(results.get(timeout=90))
        finally:
            for process in processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.terminate()
            results.close()
            results.join_thread()
        errors = [detail for _, status, detail in outcomes if status == "error"]
        assert errors == [], "\n".join(str(detail) for detail in errors)
        won = sorted(worker for worker, status, _ in outcomes if status == "won")
        stored = store.list(self.SHOP, order_id="O-race")
        # every process raced for the same 20 single units, one return per unit and process
        assert len(stored) == _RACE_UNITS, [r.id for r in stored]
        assert sorted({unit for r in stored for unit in r.lines[0].units}) == list(
            range(_RACE_UNITS)
        )
        assert sum(int(count) for _, status, count in outcomes if status == "won") == _RACE_UNITS
        assert won

    # -- what is due ----------------------------------------------------------------------------

    def test_list_due_returns_what_is_due_before_now_earliest_first_across_shops(self) -> None:
        store = self.open_store()
        at = self.NOW
        for shop, return_id, hours in (
            (self.SHOP, "R1", 3),
            (self.OTHER_SHOP, "R2", 1),
            (self.SHOP, "R3", None),
            (self.SHOP, "R4", 30),
        ):
            due = None if hours is None else at + timedelta(hours=hours)
            self.seed(store, attrs.evolve(make_record(shop, return_id), due_at=due))
        later = at + timedelta(hours=5)
        assert [r.id for r in store.list_due(later)] == ["R2", "R1"]
        assert [r.id for r in store.list_due(later, limit=1)] == ["R2"]
        assert store.list_due(at + timedelta(hours=1)) == []  # strictly before now
        # a commit moves the due time (or clears it)
        first = store.get(self.OTHER_SHOP, "R2")
        store.commit(Commit(records=((next_version(first, due_at=None), 1),)))
        assert [r.id for r in store.list_due(later)] == ["R1"]
        assert store.list_due(later)[0] == store.get(self.SHOP, "R1")

    def test_list_due_compares_times_not_their_offsets(self) -> None:
        store = self.open_store()
        plus_two = timezone(timedelta(hours=2))
        due = (self.NOW + timedelta(hours=1)).astimezone(plus_two)
        self.seed(store, attrs.evolve(make_record(self.SHOP, "R1"), due_at=due))
        assert store.list_due(self.NOW + timedelta(minutes=59)) == []
        assert [r.id for r in store.list_due(self.NOW + timedelta(minutes=61))] == ["R1"]

    # -- a customer's returns ------------------------------------------------------------------

    def _customers_return(
        self,
        store: ReturnStore,
        return_id: str,
        email: str | None,
        hours: float,
        *,
        shop: str | None = None,
        status: str = "requested",
    ) -> ReturnRecord:
        record = make_record(
            shop or self.SHOP,
            return_id,
            status=status,
            order_id=f"O-{return_id}",
            created_at=BASE_TIME + timedelta(hours=hours),
        )
        return self.seed(store, attrs.evolve(record, customer_email=email))

    def test_count_customer_returns_counts_the_customers_returns_since_a_time(self) -> None:
        store = self.open_store()
        ana = "ana@example.com"
        self._customers_return(store, "R1", ana, 0)
        self._customers_return(store, "R2", ana, 2, status="cancelled")
        self._customers_return(store, "R3", ana, 4, status="declined")
        self._customers_return(store, "R4", ana, 6, status="reset")
        self._customers_return(store, "R5", "bo@example.com", 3)
        self._customers_return(store, "R6", "Ana@example.com", 3)  # another e-mail, as stored
        self._customers_return(store, "R7", None, 3)
        self._customers_return(store, "R8", ana, 3, shop=self.OTHER_SHOP)

        def count(since: datetime, email: str = ana, shop: str = self.SHOP) -> int:
            return count_customer_returns(store, shop, email, since=since)

        assert count(BASE_TIME - timedelta(days=1)) == 4, "every state counts"
        assert count(BASE_TIME) == 4, "a return created at `since` counts"
        assert count(BASE_TIME + timedelta(microseconds=1)) == 3
        assert count(BASE_TIME + timedelta(hours=5)) == 1
        assert count(BASE_TIME + timedelta(hours=7)) == 0
        assert count(BASE_TIME, "bo@example.com") == 1
        assert count(BASE_TIME, "Ana@example.com") == 1
        assert count(BASE_TIME, "nobody@example.com") == 0
        assert count(BASE_TIME, ana, self.OTHER_SHOP) == 1
        assert count(BASE_TIME, ana, "shop-none") == 0
        # a time in another offset is the instant it names
        plus_two = timezone(timedelta(hours=2))
        assert count((BASE_TIME + timedelta(hours=5)).astimezone(plus_two)) == 1
        # later versions of a return leave it counted once, where it was created
        first = store.get(self.SHOP, "R1")
        store.commit(Commit(records=((next_version(first, status="closed"), 1),)))
        assert count(BASE_TIME) == 4
        # a version that changes the e-mail (or the time) moves the return with it
        second = store.get(self.SHOP, "R1")
        moved = next_version(second, customer_email="bo@example.com")
        store.commit(Commit(records=((moved, second.version),)))
        assert (count(BASE_TIME), count(BASE_TIME, "bo@example.com")) == (3, 2)

    def test_count_customer_returns_refuses_bad_arguments(self) -> None:
        store = self.open_store()
        self._customers_return(store, "R1", "ana@example.com", 0)
        with _raises(ValidationError) as refused:
            count_customer_returns(store, self.SHOP, "ana@example.com", since=datetime(2026, 1, 1))
        assert refused.value.field == "since"
        with _raises(ValidationError) as refused:
            count_customer_returns(store, self.SHOP, 7, since=BASE_TIME)  # type: ignore[arg-type]
        assert (refused.value.field, refused.value.value) == ("customer_email", 7)

    # -- retention ------------------------------------------------------------------------------

    def _ended_with_effects(
        self, store: ReturnStore, return_id: str, status: str, *, due: datetime | None = None
    ) -> ReturnRecord:
        """A return written at BASE_TIME with three effects (done, given up, done), then
        moved to ``status`` (with ``due`` as its ``due_at``)."""
        effects = tuple(make_effect(self.SHOP, return_id, n) for n in range(3))
        record = self.seed(store, make_record(self.SHOP, return_id), *effects)
        for n, ok in enumerate((True, False, True)):
            key = f"{self.SHOP}/{return_id}/{n}"
            store.record_attempt(key, ok=ok, at=BASE_TIME, error=None if ok else "no", give_up=True)
        ended = next_version(record, status=status, due_at=due)
        store.commit(Commit(records=((ended, 1),)))
        return ended

    def test_prune_drops_delivered_effects_of_ended_returns_older_than_the_cutoff(self) -> None:
        store = self.open_store()
        self._ended_with_effects(store, "R1", "closed")
        self._ended_with_effects(store, "R2", "cancelled")
        self._ended_with_effects(store, "R3", "approved")  # open: keeps everything
        self._ended_with_effects(store, "R4", "closed", due=BASE_TIME + timedelta(days=400))
        before = {r: [e.status for e in store.outbox(self.SHOP, r)] for r in ("R3", "R4")}
        cutoff = BASE_TIME + timedelta(days=90)
        pruned = store.prune(older_than=cutoff, inbox_older_than=BASE_TIME)
        assert (pruned.outbox, pruned.inbox) == (4, 0)
        for return_id in ("R1", "R2"):  # only the given-up effect, which waits for a person
            outbox = store.outbox(self.SHOP, return_id)
            assert [(e.effect.key, e.status) for e in outbox] == [
                (f"{self.SHOP}/{return_id}/1", "failed")
            ]
            assert store.get(self.SHOP, return_id).version == 2  # the return itself stays
        for return_id, statuses in before.items():
            assert [e.status for e in store.outbox(self.SHOP, return_id)] == statuses
        again = store.prune(older_than=cutoff, inbox_older_than=BASE_TIME)
        assert (again.outbox, again.inbox) == (0, 0)

    def test_prune_keeps_what_was_written_after_the_cutoff(self) -> None:
        store = self.open_store()
        ended = self._ended_with_effects(store, "R1", "closed")
        pruned = store.prune(older_than=ended.updated_at, inbox_older_than=BASE_TIME)
        assert pruned.outbox == 0  # written at the cutoff, not before it
        assert len(store.outbox(self.SHOP, "R1")) == 3
        later = ended.updated_at + timedelta(microseconds=1)
        assert store.prune(older_than=later, inbox_older_than=BASE_TIME).outbox == 2

    def test_a_pruned_store_still_refuses_redeliveries_inside_the_inbox_window(self) -> None:
        store = self.open_store()
        old = InboundKey(self.SHOP, "carrier", "scan-old")
        recent = InboundKey(self.SHOP, "carrier", "scan-recent")
        record = self.seed(store, make_record(self.SHOP, "R1"), inbound=old)  # at updated_at
        v2 = next_version(record, updated_at=record.updated_at + timedelta(days=30))
        v2 = attrs.evolve(v2, updated_at=record.updated_at + timedelta(days=30))
        store.commit(Commit(records=((v2, 1),), inbound=recent))
        window = record.updated_at + timedelta(days=10)
        pruned = store.prune(older_than=BASE_TIME, inbox_older_than=window)
        assert (pruned.outbox, pruned.inbox) == (0, 1)
        assert store.seen(recent)
        assert not store.seen(old)
        with _raises_conflict():  # the recent event redelivered: refused, nothing written
            store.commit(Commit(records=((next_version(v2), 2),), inbound=recent))
        assert store.get(self.SHOP, "R1") == v2

    def test_prune_refuses_a_naive_or_missing_cutoff(self) -> None:
        store = self.open_store()
        self._ended_with_effects(store, "R1", "closed")
        for field, older, inbox in (
            ("older_than", datetime(2030, 1, 1), BASE_TIME),
            ("inbox_older_than", BASE_TIME, "2030-01-01"),
            ("older_than", None, BASE_TIME),
        ):
            with _raises(ValidationError) as refused:
                store.prune(older_than=older, inbox_older_than=inbox)  # type: ignore[arg-type]
            assert refused.value.field == field
        assert len(store.outbox(self.SHOP, "R1")) == 3

    # -- re-opening a given-up effect ---------------------------------------------------------

    def test_a_given_up_effect_is_reopened_under_its_own_key(self) -> None:
        store = self.open_store()
        record = self.seed(store, make_record(self.SHOP, "R1"), make_effect(self.SHOP, "R1", 0))
        self.claim(store, "w1")
        store.record_attempt("shop-a/R1/0", ok=False, at=self.NOW, error="down", give_up=True)
        store.commit(Commit(records=((next_version(record), 1),), reopened=("shop-a/R1/0",)))
        entry = store.outbox(self.SHOP, "R1")[0]
        assert (entry.effect.key, entry.status, entry.attempts) == ("shop-a/R1/0", "pending", 0)
        assert entry.next_attempt_at is None
        assert self.claim(store, "w2") == ["shop-a/R1/0"]
        assert len(store.outbox(self.SHOP, "R1")) == 1

    def test_reopening_an_effect_that_was_not_given_up_conflicts_and_writes_nothing(
        self,
    ) -> None:
        store = self.open_store()
        record = self.seed(
            store,
            make_record(self.SHOP, "R1"),
            make_effect(self.SHOP, "R1", 0),
            make_effect(self.SHOP, "R1", 1),
        )
        store.record_attempt("shop-a/R1/1", ok=True, at=self.NOW)
        for key in ("shop-a/R1/0", "shop-a/R1/1", "shop-a/R1/9"):
            with _raises_conflict():
                store.commit(Commit(records=((next_version(record), 1),), reopened=(key,)))
            assert store.get(self.SHOP, "R1") == record
        statuses = [entry.status for entry in store.outbox(self.SHOP, "R1")]
        assert statuses == ["pending", "done"]
