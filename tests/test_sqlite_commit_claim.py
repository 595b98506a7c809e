"""A SQLite commit that claims its own return queues its effects and claims in one go: it reads
the effects pending before its own, and a head among its own is leased by their ``INSERT``.
What it hands back must be what the rows hold and what the memory store hands back for the
same commits, whatever was pending before (nothing, a due effect, one under back-off or a
lease, more than one read takes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from returnflow.errors import ConcurrencyConflict
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import Attempt, Commit, Lease, OutboxEntry, ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import make_effect, make_record, next_version

SHOP = "shop-a"
NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
UNTIL = NOW + timedelta(minutes=5)


def _lease(run: int, worker: str = "w1") -> Lease:
    return Lease(worker, NOW, UNTIL, ((SHOP, "R1"),), run)


def _seen(entries: list[OutboxEntry] | tuple[OutboxEntry, ...]) -> list[tuple[object, ...]]:
    return [
        (e.effect.key, e.status, e.attempts, e.claimed_by, e.claimed_until, e.next_attempt_at)
        for e in entries
    ]


Setup = Callable[[ReturnStore], list[Effect]]


def _nothing_pending(store: ReturnStore) -> list[Effect]:
    store.commit(Commit(records=((make_record(SHOP, "R1"), 0),)))
    return []


def _pending(count: int) -> Setup:
    def setup(store: ReturnStore) -> list[Effect]:
        effects = [make_effect(SHOP, "R1", i) for i in range(count)]
        store.commit(Commit(records=((make_record(SHOP, "R1"), 0),), effects=tuple(effects)))
        return effects

    return setup


def _retried_head(store: ReturnStore) -> list[Effect]:
    effects = _pending(2)(store)
    later = NOW + timedelta(minutes=1)
    store.record_attempt(effects[0].key, ok=False, at=NOW, error="busy", retry_at=later)
    return effects


def _leased_elsewhere(store: ReturnStore) -> list[Effect]:
    effects = _pending(2)(store)
    store.claim(now=NOW, lease_until=UNTIL, worker="w2", return_id="R1")
    return effects


SETUPS = {
    "nothing pending": _nothing_pending,
    "one pending": _pending(1),
    "three pending": _pending(3),
    "a head under back-off": _retried_head,
    "a head under another lease": _leased_elsewhere,
    "more than one read takes": _pending(40),
}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReturnStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sqlite = SqliteStore(tmp_path / "returns.db")
    yield sqlite
    sqlite.close()


def _run(store: ReturnStore, setup: Setup, run: int, new: int) -> list[OutboxEntry]:
    setup(store)
    record = next_version(store.get(SHOP, "R1"))
    effects = tuple(make_effect(SHOP, "R1", 100 + i, version=2) for i in range(new))
    return list(store.commit(Commit(records=((record, 1),), effects=effects, claim=_lease(run))))


@pytest.mark.parametrize("name", SETUPS)
@pytest.mark.parametrize(("run", "new"), [(1, 1), (2, 3), (10, 3), (50, 2)])
def test_a_commit_claiming_its_own_return_hands_back_what_is_stored(
    store: ReturnStore, name: str, run: int, new: int
) -> None:
    got = _run(store, SETUPS[name], run, new)
    stored = {entry.effect.key: entry for entry in store.outbox(SHOP, "R1")}
    # what was handed back is what the rows hold, sequence and lease included
    assert [(e, e.sequence) for e in got] == [
        (stored[e.effect.key], stored[e.effect.key].sequence) for e in got
    ]
    leased = [key for key, entry in stored.items() if entry.claimed_by == "w1"]
    assert leased == [e.effect.key for e in got[:1]]
    # and the same on every store
    reference = _run(MemoryStore(), SETUPS[name], run, new)
    assert _seen(got) == _seen(reference)
    assert sorted(e.sequence for e in stored.values()) == [e.sequence for e in stored.values()]


def test_a_new_head_is_leased_by_the_insert_that_queues_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    effects = tuple(make_effect(SHOP, "R1", i) for i in range(3))
    got = store.commit(
        Commit(records=((make_record(SHOP, "R1"), 0),), effects=effects, claim=_lease(2))
    )
    store._connection().set_trace_callback(None)
    assert [e.effect.key for e in got] == [effects[0].key, effects[1].key]
    assert not [s for s in statements if s.startswith("UPDATE outbox")], statements
    assert [e.claimed_by for e in store.outbox(SHOP, "R1")] == ["w1", None, None]
    store.close()


def test_a_key_queued_twice_is_a_conflict_and_leaves_nothing(store: ReturnStore) -> None:
    effects = _pending(1)(store)
    record = next_version(store.get(SHOP, "R1"))
    again = (make_effect(SHOP, "R1", 7, version=2), effects[0])
    with pytest.raises(ConcurrencyConflict, match="shop-a/R1/0"):
        store.commit(Commit(records=((record, 1),), effects=again, claim=_lease(5)))
    assert [e.effect.key for e in store.outbox(SHOP, "R1")] == [effects[0].key]
    assert store.get(SHOP, "R1").version == 1


def test_an_attempt_and_new_effects_in_one_commit_claim_past_what_it_finished(
    store: ReturnStore,
) -> None:
    effects = _pending(2)(store)
    store.claim(now=NOW, lease_until=UNTIL, worker="w1", return_id="R1")
    done = Attempt(effects[0].key, ok=True, at=NOW)
    record = next_version(store.get(SHOP, "R1"))
    new = (make_effect(SHOP, "R1", 9, version=2),)
    got = store.commit(
        Commit(records=((record, 1),), effects=new, attempts=(done,), claim=_lease(5))
    )
    assert [(e.effect.key, e.claimed_by) for e in got] == [
        (effects[1].key, "w1"),
        (new[0].key, None),
    ]
