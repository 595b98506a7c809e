"""An outbox effect's JSON (``returnflow._bodies``): the fast way (orjson, the ``fast`` extra)
writes the text the stores always wrote (``json.dumps`` of the converter's data, compact,
keys sorted) and reads back the effect the plain way reads; anything it does not take as its
own is read the plain way, and a row that cannot be read at all is an ``UnreadableRecord``
naming its return and the effect, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import typing
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from _builders import plain_text
from returnflow import _bodies
from returnflow._effect_data import clone, direct_data
from returnflow.domain.money import Money
from returnflow.errors import UnreadableRecord
from returnflow.lifecycle import effects as fx
from returnflow.ports.store import Commit
from returnflow.serialization import _EFFECTS, converter
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import make_record

sys.path.insert(0, os.path.dirname(__file__))

PAYLOADS: dict[str, dict[str, Any]] = {
    "plain": {"lines": [{"id": "L1", "qty": 2}], "note": None, "ok": True, "n": -3},
    "text outside ASCII": {"note": "Größe — zu klein ☃", "del": "\x7f"},
    "a float": {"ratio": 0.1, "exp": 1e16},
    "a number beyond 64 bits": {"big": 2**70},
    "empty": {},
}


def _value(kind: Any, name: str, payload: Mapping[str, Any]) -> Any:
    """A value of type ``kind`` for field ``name``: every optional part filled in."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return _value(args[0], name, payload)
    if origin is tuple:
        if args[1:] == (...,):
            return (_value(args[0], name, payload), _value(args[0], name + "2", payload))
        return tuple(_value(arg, f"{name}{n}", payload) for n, arg in enumerate(args))
    if origin is not None and issubclass(origin, Mapping):
        return dict(payload)
    if kind is str:
        return f"{name}-x"
    if kind is bool:
        return True
    if kind is int:
        return 3
    if kind is Money:
        return Money("12.34", "EUR")
    if isinstance(kind, type) and issubclass(kind, __import__("enum").Enum):
        return list(kind)[-1]
    assert attrs.has(kind), kind
    return _build(kind, payload)


def _build(cls: type[Any], payload: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _value(hints[f.name], f.name, payload) for f in attrs.fields(cls)})


def effects(payload: Mapping[str, Any]) -> list[fx.Effect]:
    """One effect of every kind, every field given (free-form ones ``payload``)."""
    return [_build(kind, payload) for kind in _EFFECTS.values()]


def plain_effect(effect: fx.Effect) -> str:
    """The text the stores wrote before the fast way."""
    return plain_text(converter.unstructure(effect))


def plain_read(body: str) -> fx.Effect:
    effect: fx.Effect = converter.structure(json.loads(body), fx.Effect)
    return effect


def same(one: fx.Effect, other: fx.Effect) -> bool:
    """Equal, free-form fields included (``eq=False`` on them)."""
    return type(one) is type(other) and converter.unstructure(one) == converter.unstructure(other)


def test_every_kind_is_built() -> None:
    assert {effect.kind for effect in effects(PAYLOADS["plain"])} == set(_EFFECTS)


@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_an_effects_text_is_the_plain_ways(way: bool, payload: str) -> None:
    for effect in effects(PAYLOADS[payload]):
        assert _bodies.dump_effect(effect) == plain_effect(effect), effect.kind


@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_an_effect_reads_back_as_the_plain_way_reads_it(way: bool, payload: str) -> None:
    for effect in effects(PAYLOADS[payload]):
        text = plain_effect(effect)  # as written before, and now
        read = _bodies.load_effect(text)
        assert same(read, plain_read(text)), effect.kind
        assert same(read, effect), effect.kind
        if "big" in PAYLOADS[payload]:
            assert type(read.payload["big"] if isinstance(read, fx.Publish) else 0) is int


def test_the_fast_way_reads_its_own_text_without_the_plain_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not _bodies.fast_available():
        pytest.skip("orjson (the fast extra) is not installed")
    written = effects(PAYLOADS["plain"])
    texts = [_bodies.dump_effect(effect) for effect in written]
    calls: list[str] = []
    plain = _bodies._plain_effect

    def counted(body: str) -> fx.Effect:
        calls.append(body)
        return plain(body)

    monkeypatch.setattr(_bodies, "_plain_effect", counted)
    for text, effect in zip(texts, written, strict=True):
        assert same(_bodies.load_effect(text), effect)
    assert calls == []
    # what it does not take as its own is read the plain way (which refuses it here)
    odd = texts[0].replace('"version":3', '"version":"3"')
    assert odd != texts[0]
    with pytest.raises(Exception):  # noqa: B017, PT011 - the plain way's own error
        _bodies.load_effect(odd)
    assert calls == [odd]


BAD = {
    "not json": "{",
    "not an object": "[]",
    "no kind": '{"key":"k"}',
    "an unknown kind": '{"kind":"teleport","key":"k"}',
    "a field missing": '{"kind":"publish","key":"k","shop":"s","return_id":"R1"}',
    "a field of another type": (
        '{"kind":"restock","key":"k","lines":[{"order_line_id":"L1","quantity":"2"}],'
        '"order_id":"O1","return_id":"R1","shop":"s","version":1}'
    ),
    "a field too many": (
        '{"extra":1,"kind":"void_label","key":"k","order_id":"O1","return_id":"R1",'
        '"shop":"s","version":1}'
    ),
    "a bad amount": (
        '{"amount":{"amount":"1.2.3","currency":"EUR"},"kind":"refund_balance","key":"k",'
        '"order_id":"O1","return_id":"R1","shop":"s","version":1}'
    ),
}


def _outcome(body: str) -> tuple[type[BaseException] | None, str]:
    try:
        _bodies.load_effect(body)
    except Exception as error:
        return type(error), str(error)
    return None, "read"


@pytest.mark.parametrize("case", BAD, ids=str)
def test_a_bad_body_raises_what_the_plain_way_raises(case: str) -> None:
    previous = _bodies.use_fast(False)
    try:
        plain = _outcome(BAD[case])
    finally:
        _bodies.use_fast(previous)
    assert plain[0] is not None, "the case is not bad"
    assert _outcome(BAD[case]) == plain


@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_an_effects_data_built_from_its_fields_is_the_converters(payload: str) -> None:
    taken = set()
    for effect in effects(PAYLOADS[payload]):
        direct = direct_data(effect)
        if direct is None:
            continue
        taken.add(effect.kind)
        data, copies = direct
        assert data == converter.unstructure(effect), effect.kind
        for name, copy in copies.items():
            assert copy == getattr(effect, name)
            assert copy is not getattr(effect, name), "the copy kept shares the caller's dict"
    plain = payload != "a float"  # a float: read back, it may be another number
    assert ({"publish", "notify", "void_label"} <= taken) is plain, taken
    assert "refund_balance" not in taken  # a Money field: the converter's way


class _Topic(str):
    """Text of a type of its own, which the converter may write otherwise."""


def test_what_the_converter_may_write_otherwise_is_left_to_it() -> None:
    base = _publish({"lines": [{"id": "L1"}]})
    for odd in (
        attrs.evolve(base, topic=_Topic("returns/update")),
        attrs.evolve(base, payload={"lines": ({"id": "L1"},)}),  # a tuple: read back a list
        attrs.evolve(base, payload={1: "a key that is not text"}),
        attrs.evolve(base, payload={"ratio": 0.5}),
    ):
        assert direct_data(odd) is None
        assert _bodies.dump_effect(odd) == plain_effect(odd)
    assert direct_data(base) is not None


def test_a_clone_is_the_effect_evolved() -> None:
    for effect in effects(PAYLOADS["plain"]):
        name = "payload" if isinstance(effect, fx.Publish) else "key"
        changed = clone(effect, {name: {"x": 1} if name == "payload" else "other"})
        expected = attrs.evolve(effect, **{name: getattr(changed, name)})
        assert type(changed) is type(effect)
        assert same(changed, expected), effect.kind
        assert changed == expected, effect.kind


# -- in the stores ------------------------------------------------------------------------------

NOW = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)


def _publish(payload: Mapping[str, Any], index: int = 0) -> fx.Publish:
    return fx.Publish(
        key=f"shop-a/R1/{index}",
        shop="shop-a",
        return_id="R1",
        order_id="1001",
        version=1,
        topic="returns/update",
        payload=dict(payload),
    )


def _unreadable(read: typing.Callable[[], object]) -> UnreadableRecord:
    with pytest.raises(UnreadableRecord) as refused:
        read()
    assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
    assert "shop-a/R1/0" in refused.value.reason
    return refused.value


def test_effects_written_before_read_back_in_sqlite(way: bool, tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    store = SqliteStore(path)
    written = [_publish(PAYLOADS[name], n) for n, name in enumerate(PAYLOADS)]
    store.commit(Commit(records=((make_record("shop-a", "R1"), 0),), effects=tuple(written)))
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as raw:
        bodies = [body for (body,) in raw.execute("SELECT body FROM outbox ORDER BY seq")]
    assert bodies == [plain_effect(effect) for effect in written]
    store = SqliteStore(path)
    try:
        read = [entry.effect for entry in store.outbox("shop-a", "R1")]
        assert all(same(one, other) for one, other in zip(read, written, strict=True))
        claimed = store.claim(now=NOW, lease_until=NOW, worker="w1", run=10)
        assert all(same(e.effect, w) for e, w in zip(claimed, written, strict=True))
    finally:
        store.close()


@pytest.mark.parametrize("case", ["not json", "an unknown kind", "a field of another type"])
def test_an_unreadable_effect_is_an_unreadable_record_in_sqlite(
    way: bool, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "returns.db"
    store = SqliteStore(path)
    store.commit(
        Commit(
            records=((make_record("shop-a", "R1"), 0),),
            effects=(_publish(PAYLOADS["plain"]),),
        )
    )
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("UPDATE outbox SET body = ?", (BAD[case],))
    store = SqliteStore(path)
    try:
        _unreadable(lambda: store.outbox("shop-a", "R1"))
        _unreadable(lambda: store.pending())
        _unreadable(lambda: store.claim(now=NOW, lease_until=NOW, worker="w1"))
    finally:
        store.close()


def test_effects_read_back_and_an_unreadable_one_is_named_in_postgres(
    way: bool, pg_dsn: str
) -> None:
    import psycopg

    from returnflow.stores.postgres import PostgresStore

    written = [_publish(PAYLOADS[name], n) for n, name in enumerate(PAYLOADS)]
    store = PostgresStore(pg_dsn)
    try:
        store.commit(Commit(records=((make_record("shop-a", "R1"), 0),), effects=tuple(written)))
        with psycopg.connect(pg_dsn, autocommit=True) as raw:
            bodies = [row[0] for row in raw.execute("SELECT body FROM outbox ORDER BY seq")]
        assert bodies == [plain_effect(effect) for effect in written]
        read = [entry.effect for entry in store.outbox("shop-a", "R1")]
        assert all(same(one, other) for one, other in zip(read, written, strict=True))
        with psycopg.connect(pg_dsn, autocommit=True) as raw:
            raw.execute("UPDATE outbox SET body = %s WHERE key = 'shop-a/R1/0'", (BAD["not json"],))
        _unreadable(lambda: store.outbox("shop-a", "R1"))
        _unreadable(lambda: store.pending())
        _unreadable(lambda: store.claim(now=NOW, lease_until=NOW, worker="w1"))
    finally:
        store.close()
