"""The ``details`` an import records in its ``imported`` history entry are JSON data that
every store keeps as given: anything else is an :class:`~returnflow.errors.InvalidPayload`
naming where in ``details`` it is, and nothing is stored (a durable store could not write
it, or would read back something else than the memory store keeps)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from _builders import ORDER_ID, SHOP, tee_and_caps
from returnflow import InvalidPayload, RequestLine, ReturnRequest, _bodies
from returnflow.errors import ReturnNotFound
from returnflow.ports.store import ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness


@pytest.fixture(params=["memory", "sqlite-fast", "sqlite-plain"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReturnStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    fast = request.param == "sqlite-fast"
    if fast and not _bodies.fast_available():
        pytest.skip("orjson (the fast extra) is not installed")
    previous = _bodies.use_fast(fast)
    sqlite = SqliteStore(tmp_path / "returns.db")
    yield sqlite
    sqlite.close()
    _bodies.use_fast(previous)


def _import(store: ReturnStore, details: Any) -> Harness:
    made = Harness(store=store)
    made.ports.commerce.add_order(tee_and_caps())
    made.service.import_return(
        ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=[RequestLine("L2", 1)]),
        return_id="X1",
        source="loop",
        external_id="e1",
        details=details,
    )
    return made


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"raw": bytearray(b"a")}, "details.raw"),
        ({"thing": object()}, "details.thing"),
        ({"amount": Decimal("1.5")}, "details.amount"),
        ({"at": datetime(2026, 1, 1, tzinfo=timezone.utc)}, "details.at"),
        ({"tags": {"a"}}, "details.tags"),
        ({"rate": float("nan")}, "details.rate"),
        ({"rate": float("inf")}, "details.rate"),
        ({"n": 2**64}, "details.n"),
        ({"n": -(2**63) - 1}, "details.n"),
        ({1: "a number for a key"}, "details"),
        ({"list": [1, {"x": b"bytes"}]}, "details.list[1].x"),
        ({"text": "\ud800"}, "details.text"),
        ({"deep": _deep(40)}, "details.deep" + "[0]" * 31),
        ({"source": "another"}, "details.source"),
        ({"external_id": "e2"}, "details.external_id"),
        (["not", "a", "mapping"], "details"),
    ],
)
def test_details_that_are_not_json_data_are_refused_and_nothing_is_stored(
    store: ReturnStore, details: Any, field: str
) -> None:
    with pytest.raises(InvalidPayload) as refused:
        _import(store, details)
    assert refused.value.field == field
    with pytest.raises(ReturnNotFound):
        store.get(SHOP, "X1")


def test_json_details_are_kept_as_given_by_every_store(store: ReturnStore) -> None:
    details = {
        "status": "open",
        "count": 2**63 - 1,
        "low": -(2**63),
        "rate": 0.5,
        "flag": True,
        "none": None,
        "items": ("a", ["b", {"c": 1}]),
        "deep": _deep(30),
    }
    made = _import(store, details)
    [entry] = [e for e in made.service.get(SHOP, "X1").history if e.event == "imported"]
    expected = {"source": "loop", "external_id": "e1", **details, "items": ["a", ["b", {"c": 1}]]}
    assert entry.payload == expected
    assert type(entry.payload["items"]) is not tuple  # an array, as it reads back from JSON


def _shape(value: Any) -> Any:
    """``value``'s types all the way down (a mapping's keys sorted)."""
    if isinstance(value, dict):
        return type(value), {key: _shape(item) for key, item in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return type(value), [_shape(item) for item in value]
    return type(value)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_details_read_from_the_cache_are_what_a_new_store_reads(fast: bool, tmp_path: Path) -> None:
    """The SQLite store keeps the record it wrote to answer later reads: its details have
    the values and the types (arrays, objects) a new store reads from the file."""
    if fast and not _bodies.fast_available():
        pytest.skip("orjson (the fast extra) is not installed")
    previous = _bodies.use_fast(fast)
    path = tmp_path / "returns.db"
    details = {"items": ("a", ["b", {"c": (1, 2)}]), "rate": 0.5, "deep": [[]], "none": None}
    writer, reader = SqliteStore(path), None
    try:
        _import(writer, details)
        reader = SqliteStore(path)
        cached, fresh = (
            next(e.payload for e in store.get(SHOP, "X1").history if e.event == "imported")
            for store in (writer, reader)
        )
        assert cached == fresh
        assert _shape(cached) == _shape(fresh)
        assert not isinstance(cached["items"], tuple)  # an array, as JSON reads it
    finally:
        writer.close()
        if reader is not None:
            reader.close()
        _bodies.use_fast(previous)
