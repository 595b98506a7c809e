"""An outbox row's text is the effect: the effect a store hands back (to the dispatcher, to a
port) is what its row says, even when the payload of the effect committed, or of one read
before, was changed in place since (a port that adds a key to the payload it was handed, a
caller that reuses its dict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from returnflow import _bodies
from returnflow.lifecycle import effects as fx
from returnflow.ports.store import Commit
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import make_record


def _effects(payload: dict[str, Any], context: dict[str, Any]) -> tuple[fx.Effect, ...]:
    common: dict[str, Any] = {"shop": "shop-a", "return_id": "R1", "order_id": "1001"}
    return (
        fx.Publish(key="shop-a/R1/p", version=1, topic="returns/update", payload=payload, **common),
        fx.Notify(
            key="shop-a/R1/n",
            version=1,
            recipient="c@example.com",
            template="return_approved",
            context=context,
            **common,
        ),
    )


def _free_form(effect: fx.Effect) -> Any:
    return effect.payload if isinstance(effect, fx.Publish) else getattr(effect, "context", None)


def test_a_payload_changed_after_commit_does_not_change_the_stored_effect(
    way: bool, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    try:
        payload: dict[str, Any] = {"lines": [{"id": "L1", "qty": 2}]}
        context: dict[str, Any] = {"name": "Ann", "items": ["L1"]}
        store.commit(
            Commit(records=((make_record("shop-a", "R1"), 0),), effects=_effects(payload, context))
        )
        payload["lines"][0]["qty"] = 99
        payload["extra"] = "added"
        context["items"].append("L2")
        read = [_free_form(entry.effect) for entry in store.outbox("shop-a", "R1")]
        assert read == [{"lines": [{"id": "L1", "qty": 2}]}, {"name": "Ann", "items": ["L1"]}]
    finally:
        store.close()


def test_a_payload_changed_by_its_reader_does_not_change_the_next_read(
    way: bool, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    try:
        store.commit(
            Commit(
                records=((make_record("shop-a", "R1"), 0),),
                effects=_effects({"lines": [{"id": "L1"}]}, {"items": ["L1"]}),
            )
        )
        for entry in store.outbox("shop-a", "R1"):
            free = _free_form(entry.effect)
            free["sent_by"] = "a port that marks what it was handed"
            free[next(iter(k for k in free if k != "sent_by"))].append("mutated")
        read = [_free_form(entry.effect) for entry in store.outbox("shop-a", "R1")]
        assert read == [{"lines": [{"id": "L1"}]}, {"items": ["L1"]}]
    finally:
        store.close()


def test_an_empty_payload_filled_by_its_reader_stays_empty(way: bool, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    try:
        store.commit(Commit(records=((make_record("shop-a", "R1"), 0),), effects=_effects({}, {})))
        for entry in store.outbox("shop-a", "R1"):
            _free_form(entry.effect)["sent_by"] = "a port"
        assert [_free_form(entry.effect) for entry in store.outbox("shop-a", "R1")] == [{}, {}]
    finally:
        store.close()


class _Topic(str):
    """Text of a type of the caller's own: written as its text, read back as a ``str``."""

    def __str__(self) -> str:
        return f"topic {str.__str__(self)}"


def test_an_effect_with_text_of_a_str_subclass_reads_back_as_a_new_process_reads_it(
    way: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "returns.db"
    store = SqliteStore(path)
    common: dict[str, Any] = {"shop": "shop-a", "return_id": "R1", "order_id": "1001"}
    effect = fx.Publish(key="shop-a/R1/p", version=1, topic=_Topic("returns/update"), **common)
    try:
        store.commit(Commit(records=((make_record("shop-a", "R1"), 0),), effects=(effect,)))
        (same,) = [entry.effect for entry in store.outbox("shop-a", "R1")]
    finally:
        store.close()
    monkeypatch.setattr(_bodies, "_PARSED", {})  # what another process has: nothing parsed
    fresh = SqliteStore(path)
    try:
        (new,) = [entry.effect for entry in fresh.outbox("shop-a", "R1")]
    finally:
        fresh.close()
    assert isinstance(new, fx.Publish)
    assert isinstance(same, fx.Publish)
    assert (type(new.topic), str(new.topic)) == (str, "returns/update")
    assert (type(same.topic), str(same.topic)) == (type(new.topic), str(new.topic))
