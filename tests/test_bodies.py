"""A stored return's JSON (``returnflow._bodies``): the fast way (orjson, the ``fast``
extra) writes the text the plain way writes and reads back the record it reads; anything
it does not take as its own is read the plain way, so a bad body raises what it always
raised; rows written before the fast way are read by both ways, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from _builders import STORED, insert_stored_postgres, insert_stored_sqlite, plain_body, plain_text
from returnflow import _bodies
from returnflow.domain.model import (
    DeclineReason,
    ExchangeLine,
    HistoryEntry,
    ParkedFact,
    ReturnRecord,
)
from returnflow.domain.money import Money
from returnflow.errors import UnreadableRecord
from returnflow.ports.store import Commit
from returnflow.serialization import converter
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import make_record, next_version

sys.path.insert(0, os.path.dirname(__file__))


def plain_read(body: str, entries: list[str]) -> ReturnRecord:
    data = json.loads(body)
    data["history"] = [json.loads(entry) for entry in entries]
    record: ReturnRecord = converter.structure(data, ReturnRecord)
    return record


ODD_PAYLOADS = [
    {"n": 1},
    {"ratio": 0.1, "exp": 1e16, "tiny": 1e-7, "whole": 2.0},
    {"big": 2**70, "negative": -(2**63) - 1},
    {"text": "naïve ☃ \U0001f600", "del": "\x7f", "controls": '\x00\x1f\n\t"\\/'},
    {"nan": float("nan"), "inf": float("inf")},
    {"nested": {"z": [1, 2.5, None, {"b": False}], "a": (1, 2)}},
    {"a": {"é": 1, "e": 2}},
]


def record_with(payload: dict[str, Any]) -> ReturnRecord:
    record = next_version(make_record("shop-a", "R1", 1), status="approved", payload=payload)
    fact = ParkedFact(
        kind="receipt",
        event_id="e1",
        source="warehouse",
        arrived_at=datetime(2026, 1, 16, tzinfo=timezone.utc),
        lines=(payload,),
    )
    swap = ExchangeLine(
        id="X1",
        return_line_id="R1-L1",
        variant_id="V-9",
        quantity=1,
        status="held",
        unit_price=Money("19.90", "EUR"),
    )
    return attrs.evolve(
        record,
        parked=(fact,),
        customer_note="Größe — \x7f",
        exchange_lines=(swap,),
        exchange_status="on_hold",
        decline_reason=DeclineReason.FINAL_SALE,
        balance_paid=Money("1.50", "EUR"),
        due_at=datetime(2026, 2, 1, 8, 30, 0, 250000, tzinfo=timezone.utc),
    )


@pytest.mark.parametrize("payload", ODD_PAYLOADS, ids=lambda payload: ",".join(payload))
def test_the_text_is_the_plain_ways_for_any_payload(way: bool, payload: dict[str, Any]) -> None:
    record = record_with(payload)
    assert _bodies.dump_body(record) == plain_body(record)
    assert [_bodies.dump_entry(entry) for entry in record.history] == [
        plain_text(converter.unstructure(entry)) for entry in record.history
    ]


def test_a_body_written_again_follows_its_new_parts_and_keeps_the_rest(way: bool) -> None:
    """The data of a record's lines and references is kept by the object written: the next
    version's body, which shares some of them and not others, is still the plain way's."""
    record = record_with({"n": 1})
    assert _bodies.dump_body(record) == plain_body(record)
    refs = attrs.evolve(record.refs, tracking_number="TRACK-2", refund_ids=("RF-1",))
    line = attrs.evolve(record.lines[0], received=1)
    for changed in (
        attrs.evolve(record, refs=refs, version=record.version + 1),
        attrs.evolve(record, lines=(line,), version=record.version + 2),
        attrs.evolve(record, lines=(line,), refs=refs, status="received"),
        record,
    ):
        assert _bodies.dump_body(changed) == plain_body(changed)
    assert '"tracking_number":"TRACK-2"' in _bodies.dump_body(attrs.evolve(record, refs=refs))


@pytest.mark.parametrize("payload", ODD_PAYLOADS[:4], ids=lambda payload: ",".join(payload))
def test_a_record_reads_back_as_the_plain_way_reads_it(way: bool, payload: dict[str, Any]) -> None:
    record = record_with(payload)
    body = _bodies.dump_body(record)
    entries = [_bodies.dump_entry(entry) for entry in record.history]
    back = _bodies.load_record(body, entries)
    assert back == plain_read(body, entries) == record
    assert [entry.payload for entry in back.history] == [entry.payload for entry in record.history]
    assert back.parked[0].lines == (payload,)
    # PostgreSQL hands the entries over as one JSON array; no history at all as None
    assert _bodies.load_record(body, f"[{','.join(entries)}]") == record
    assert _bodies.load_record(body, None) == attrs.evolve(record, history=())


def test_the_fast_way_reads_its_own_text_without_the_plain_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not _bodies.fast_available():
        pytest.skip("orjson (the fast extra) is not installed")
    record = record_with({"n": 1})
    body = _bodies.dump_body(record)
    entries = [_bodies.dump_entry(entry) for entry in record.history]
    calls: list[str] = []
    plain = _bodies._plain_load

    def counted(body: str, history: Any) -> ReturnRecord:
        calls.append(body)
        return plain(body, history)

    monkeypatch.setattr(_bodies, "_plain_load", counted)
    assert _bodies.load_record(body, entries) == record
    assert calls == []
    # what it does not take as its own is read the plain way (which refuses it here)
    odd = body.replace('"version":2', '"version":"2"')
    with pytest.raises(Exception):  # noqa: B017, PT011 - the plain way's own error
        _bodies.load_record(odd, entries)
    assert calls == [odd]


def _swap(body: str, old: str, new: str) -> str:
    assert old in body
    return body.replace(old, new, 1)


GOOD = record_with({"n": 1})
GOOD_BODY = plain_body(GOOD)
GOOD_ENTRIES = [plain_text(converter.unstructure(entry)) for entry in GOOD.history]
BAD: dict[str, tuple[str, list[str]]] = {
    "not json": ("{not json", GOOD_ENTRIES),
    "a version in text": (_swap(GOOD_BODY, '"version":2', '"version":"2"'), GOOD_ENTRIES),
    "a float version": (_swap(GOOD_BODY, '"version":2', '"version":2.0'), GOOD_ENTRIES),
    "an unknown field": (_swap(GOOD_BODY, '{"authorization', '{"extra":1,"authorization'), []),
    "a missing field": (_swap(GOOD_BODY, '"currency":"EUR",', ""), GOOD_ENTRIES),
    "a naive time": (_swap(GOOD_BODY, "12:00:00+00:00", "12:00:00"), GOOD_ENTRIES),
    "an unknown reason": (_swap(GOOD_BODY, '"reason":"', '"reason":"NOPE'), GOOD_ENTRIES),
    "an unknown outcome": (_swap(GOOD_BODY, '"kind":"refund"', '"kind":"teleport"'), []),
    "money as a number": (_swap(GOOD_BODY, '"amount":"19.90"', '"amount":19.9'), []),
    "a lone surrogate": (_swap(GOOD_BODY, '"shop":"shop-a"', '"shop":"\\ud800"'), []),
    "an entry's time as a number": (GOOD_BODY, ['{"at": 5}']),
    "an entry of one state": (GOOD_BODY, [GOOD_ENTRIES[0].replace(',"no_exchange"]', "]", 1)]),
    "two entries in one row": (GOOD_BODY, [",".join(GOOD_ENTRIES)]),
    "an entry that is a list": (GOOD_BODY, ["[]"]),
}


NOT_OURS = {
    "a time in Paris": _swap(GOOD_BODY, "12:00:00+00:00", "13:00:00+01:00"),
    "a time with Z": _swap(GOOD_BODY, "12:00:00+00:00", "12:00:00Z"),
    "spaces": GOOD_BODY.replace(",", ", "),
}


@pytest.mark.parametrize("case", NOT_OURS, ids=str)
def test_a_body_the_fast_way_did_not_write_reads_as_the_plain_way_reads_it(
    way: bool, case: str
) -> None:
    assert _bodies.load_record(NOT_OURS[case], GOOD_ENTRIES) == plain_read(
        NOT_OURS[case], GOOD_ENTRIES
    )


def _outcome(body: str, entries: list[str]) -> tuple[type[BaseException], str]:
    try:
        _bodies.load_record(body, entries)
    except Exception as error:
        return type(error), str(error)
    return type(None), "read"  # type: ignore[return-value]


@pytest.mark.parametrize("case", BAD, ids=str)
def test_a_bad_body_raises_what_the_plain_way_raises(case: str) -> None:
    body, entries = BAD[case]
    previous = _bodies.use_fast(False)
    try:
        plain = _outcome(body, entries)
    finally:
        _bodies.use_fast(previous)
    assert plain[1] != "read", "the case is not bad"
    assert _outcome(body, entries) == plain


@pytest.mark.parametrize("case", ["not json", "a version in text", "an entry of one state"])
def test_a_bad_row_is_an_unreadable_record_in_sqlite(way: bool, tmp_path: Path, case: str) -> None:
    path = tmp_path / "returns.db"
    store = SqliteStore(path)
    store.commit(Commit(records=((attrs.evolve(GOOD, version=1, history=GOOD.history[:1]), 0),)))
    store.commit(Commit(records=((GOOD, 1),)))
    store.close()
    body, entries = BAD[case]
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("UPDATE returns SET body = ?", (body,))
        raw.execute("UPDATE history SET body = ? WHERE seq = 0", (entries[0],))
    store = SqliteStore(path)
    with pytest.raises(UnreadableRecord) as refused:
        store.get("shop-a", "R1")
    assert refused.value.return_id == "R1"
    store.close()


# -- rows written before the fast way ---------------------------------------------------------


def check_stored(record: ReturnRecord) -> None:
    assert (record.id, record.version, record.status) == ("R-stored", 3, "approved")
    assert record.customer_note == "Größe passt nicht — zu klein \x7f"
    assert record.customer_email == "zoë@example.com"
    assert [entry.version for entry in record.history] == [1, 2, 3]
    assert record.history[1].payload == {
        "big": 2**70,
        "exp": 1e16,
        "nested": {"a": True, "z": [1, 2.5, None]},
        "ratio": 0.1,
        "text": "naïve ☃",
    }
    assert record.history[1].at == datetime(2026, 1, 15, 12, 1, 1, tzinfo=timezone.utc)
    assert str(record.lines[1].outcome.bonus) == "2.00 EUR"  # type: ignore[union-attr]


def later(record: ReturnRecord) -> ReturnRecord:
    """The next version, its stored entries rebuilt (not the objects the store read)."""
    entries = tuple(attrs.evolve(entry) for entry in record.history)
    return next_version(attrs.evolve(record, history=entries), status="item_received")


def test_a_row_stored_before_reads_and_extends_in_sqlite(way: bool, tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    SqliteStore(path).close()  # the schema
    insert_stored_sqlite(path)
    reader = SqliteStore(path)
    record = reader.get("shop-a", "R-stored")
    check_stored(record)
    # the entries write their stored text again (the stores compare it); the body may not,
    # once the record has gained fields
    assert [_bodies.dump_entry(e) for e in record.history] == [e["body"] for e in STORED["history"]]
    reader.close()
    # a store that has not read it compares the stored entries' text with the new ones'
    writer = SqliteStore(path)
    writer.commit(Commit(records=((later(record), 3),)))
    writer.close()
    again = SqliteStore(path)
    assert again.get("shop-a", "R-stored").version == 4
    again.close()


def test_a_row_stored_before_reads_and_extends_in_postgres(way: bool, pg_dsn: str) -> None:
    from returnflow.stores.postgres import PostgresStore

    insert_stored_postgres(pg_dsn)
    reader = PostgresStore(pg_dsn)
    record = reader.get("shop-a", "R-stored")
    check_stored(record)
    reader.close()
    writer = PostgresStore(pg_dsn)
    writer.commit(Commit(records=((later(record), 3),)))
    writer.close()
    again = PostgresStore(pg_dsn)
    assert again.get("shop-a", "R-stored").version == 4
    again.close()


def test_an_entry_read_back_writes_the_same_text(way: bool) -> None:
    for stored in STORED["history"]:
        data = json.loads(stored["body"])
        entry = HistoryEntry(
            at=datetime.fromisoformat(data["at"]),
            event=data["event"],
            actor=data["actor"],
            source=tuple(data["source"]),  # type: ignore[arg-type]
            target=tuple(data["target"]),  # type: ignore[arg-type]
            version=data["version"],
            payload=data["payload"],
        )
        assert _bodies.dump_entry(entry) == stored["body"]
