"""A history entry's payload cannot be changed by a reader: every store hands the same cached
record to each reader of a return, so a caller that changed ``record.history[0].payload`` in
place would change what the next ``get`` returns (and what a decision on the return reads)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import postgres_support
from returnflow import _bodies
from returnflow.domain.frozen import FrozenDict, FrozenList, freeze, thaw
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.ports.store import Commit, ReturnStore
from returnflow.serialization import structure, unstructure
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import make_history_entry, make_record


@pytest.fixture(params=["memory", "sqlite-fast", "sqlite-plain", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReturnStore]:
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "postgres":
        pytest.importorskip("psycopg")
        from returnflow.stores.postgres import PostgresStore

        dsn = postgres_support.cluster_or_skip().empty_database()
        postgres = PostgresStore(dsn)
        yield postgres
        postgres.close()
        return
    fast = kind == "sqlite-fast"
    if fast and not _bodies.fast_available():
        pytest.skip("orjson (the fast extra) is not installed")
    previous = _bodies.use_fast(fast)
    sqlite = SqliteStore(tmp_path / "returns.db")
    yield sqlite
    sqlite.close()
    _bodies.use_fast(previous)


def _mutations(payload: Any) -> list[tuple[str, Any]]:
    return [
        ("set a key", lambda: payload.__setitem__("n", 99)),
        ("add a key", lambda: payload.update(extra=1)),
        ("delete a key", lambda: payload.pop("n")),
        ("clear", payload.clear),
        ("append to a nested list", lambda: payload["tags"].append("c")),
        ("change a nested list", lambda: payload["tags"].__setitem__(0, "z")),
        ("set a nested key", lambda: payload["nested"].__setitem__("ok", False)),
    ]


def test_a_reader_cannot_change_the_history_the_next_get_returns(store: ReturnStore) -> None:
    store.commit(Commit(records=((make_record("shop-a", "R1"), 0),)))
    for attempt in range(2):  # the first read after the commit, and a read of the cache
        record = store.get("shop-a", "R1")
        payload = record.history[0].payload
        for what, mutate in _mutations(payload):
            with pytest.raises(TypeError):
                mutate()
            assert store.get("shop-a", "R1").history[0].payload == {
                "n": 1,
                "tags": ["a", "b"],
                "nested": {"ok": True, "none": None},
            }, (attempt, what)
    listed = store.list("shop-a")[0].history[0].payload
    with pytest.raises(TypeError):
        listed["tags"].append("c")  # type: ignore[index]


def test_an_entry_keeps_what_it_was_made_with_and_a_copy_is_the_callers_to_change() -> None:
    given: dict[str, Any] = {"lines": [{"id": "L1", "qty": 2}], "pair": ("a", ["b"])}
    entry = make_history_entry(1, payload=given)
    given["lines"][0]["qty"] = 99
    given["extra"] = True
    assert entry.payload == {"lines": [{"id": "L1", "qty": 2}], "pair": ("a", ["b"])}
    plain = thaw(entry.payload)
    plain["lines"][0]["qty"] = 3  # a plain copy, all the way down
    plain["pair"][1].append("c")
    assert entry.payload["lines"][0]["qty"] == 2
    assert entry.payload["pair"] == ("a", ["b"])
    assert freeze(entry.payload) is entry.payload  # frozen once, never copied again


def test_the_converter_writes_plain_data_and_reads_it_back_frozen() -> None:
    record = make_record("shop-a", "R1", 2)
    data = unstructure(record)
    written = data["history"][0]["payload"]
    assert type(written) is dict
    assert type(written["tags"]) is list
    assert type(written["nested"]) is dict
    again = structure(data, ReturnRecord)
    assert again == record
    payload = again.history[0].payload
    assert type(payload) is FrozenDict
    assert type(payload["tags"]) is FrozenList
    entry = structure(unstructure(record.history[0]), HistoryEntry)
    assert type(entry.payload["nested"]) is FrozenDict


def test_a_frozen_payload_pickles_and_copies_as_itself() -> None:
    record = make_record("shop-a", "R1", 2)
    back = pickle.loads(pickle.dumps(record))
    assert back == record
    assert back.history[0].payload == record.history[0].payload
    assert type(back.history[0].payload["tags"]) is FrozenList
    payload = record.history[0].payload
    assert copy.deepcopy(payload) is payload
    assert copy.copy(payload) is payload


def test_initialising_a_frozen_payload_again_changes_nothing(store: ReturnStore) -> None:
    """``__init__`` of ``dict`` and ``list`` fills the object it is called on: called again
    on a payload it changes nothing, as on a ``tuple`` or a ``frozenset``."""
    store.commit(Commit(records=((make_record("shop-a", "R1"), 0),)))
    payload = store.get("shop-a", "R1").history[0].payload
    payload.__init__({"n": 99}, extra=1)  # type: ignore[misc]
    payload["tags"].__init__(["z"])
    payload["nested"].__init__(ok=False)
    assert store.get("shop-a", "R1").history[0].payload == {
        "n": 1,
        "tags": ["a", "b"],
        "nested": {"ok": True, "none": None},
    }
    assert FrozenDict({"a": [1]}, b=2) == {"a": [1], "b": 2}
    assert FrozenList(iter([1, 2])) == [1, 2]
    assert FrozenDict(iter([("a", 1)])) == {"a": 1}
