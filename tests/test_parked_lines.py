"""A parked fact's lines cannot be changed by one reader under another (a store hands the
same cached record to every reader): a tuple of frozen mappings, however they were given,
and however the row holding them was written, before this or since, on every store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from _builders import STORED, insert_stored_postgres, insert_stored_sqlite, plain_text
from returnflow.domain.frozen import FrozenDict, FrozenList
from returnflow.domain.model import ParkedFact, ReturnRecord
from returnflow.ports.store import Commit, ReturnStore
from returnflow.serialization import converter
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import make_record

ARRIVED = datetime(2026, 1, 12, 8, 0, tzinfo=timezone.utc)
LINE = {"line_id": "L1", "quantity": 1, "qc": "pass", "condition": None, "note": "scuffed",
        "disposition": None, "extra": [1, {"deep": [2]}]}  # fmt: skip


def _parked() -> ParkedFact:
    return ParkedFact(
        kind="receipt", event_id="wh-1", source="warehouse", arrived_at=ARRIVED,
        why="requested", lines=[dict(LINE)],  # a list of plain dicts, as a caller may give
    )  # fmt: skip


def _assert_frozen(fact: ParkedFact) -> None:
    assert type(fact.lines) is tuple
    assert [type(line) for line in fact.lines] == [FrozenDict]
    assert type(fact.lines[0]["extra"]) is FrozenList
    assert fact.lines == (LINE,)
    with pytest.raises(TypeError):
        fact.lines[0]["quantity"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        fact.lines[0]["extra"].append(3)


def test_lines_given_as_a_list_of_dicts_are_a_tuple_of_frozen_mappings() -> None:
    fact = _parked()
    _assert_frozen(fact)
    given = [dict(LINE)]
    copied = ParkedFact(kind="receipt", event_id="e", source="s", arrived_at=ARRIVED, lines=given)
    given[0]["quantity"] = 5  # the caller's own data, changed after: the fact keeps its own
    assert copied.lines[0]["quantity"] == 1
    assert converter.structure(converter.unstructure(fact), ParkedFact) == fact
    with pytest.raises(TypeError):
        ParkedFact(kind="receipt", event_id="e", source="s", arrived_at=ARRIVED, lines=LINE)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the store of ``kind`` keeps its rows: a file, a database, or nothing."""
    if kind == "sqlite":
        return str(tmp_path / "returns.db")
    return str(request.getfixturevalue("pg_dsn")) if kind == "postgres" else ""


def _open(kind: str, target: str) -> Any:
    if kind == "sqlite":
        return SqliteStore(target)
    from returnflow.stores.postgres import PostgresStore

    return PostgresStore(target)


@pytest.fixture
def store(kind: str, target: str) -> Iterator[ReturnStore]:
    if kind == "memory":
        yield MemoryStore()
        return
    opened = _open(kind, target)
    try:
        yield opened
    finally:
        opened.close()


def test_a_parked_fact_written_and_read_back_keeps_frozen_lines(
    kind: str, target: str, store: ReturnStore
) -> None:
    record = attrs.evolve(make_record("shop-a", "R1"), parked=(_parked(),))
    store.commit(Commit(records=((record, 0),)))
    cached = store.get("shop-a", "R1")
    assert cached == record
    _assert_frozen(cached.parked[0])
    if kind == "memory":
        return
    fresh_store = _open(kind, target)
    try:
        fresh = fresh_store.get("shop-a", "R1")
    finally:
        fresh_store.close()
    assert fresh == record
    _assert_frozen(fresh.parked[0])


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_row_written_before_with_plain_lines_reads_back_frozen(kind: str, target: str) -> None:
    """A row's body holds the lines as JSON arrays of objects, as it always did."""
    body = json.loads(STORED["returns"][0]["body"])
    body["parked"] = [converter.unstructure(_parked())]
    assert body["parked"][0]["lines"] == [LINE]  # plain JSON data
    if kind == "sqlite":
        SqliteStore(target).close()  # the schema
        insert_stored_sqlite(Path(target), plain_text(body))
    else:
        insert_stored_postgres(target, plain_text(body))
    opened = _open(kind, target)
    try:
        record: ReturnRecord = opened.get(STORED["returns"][0]["shop"], STORED["returns"][0]["id"])
    finally:
        opened.close()
    _assert_frozen(record.parked[0])
