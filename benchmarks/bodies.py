"""Writing and reading back a stored return's JSON: the fast way against the plain one.

A return as the stores keep it: its row's body (the record without its history) and one
body per history entry, written (``dump_body``, ``dump_entry``) and read back into the
record (``load_record``). The record is that of one whole lifecycle (a refund requested,
picked up, delivered, received: 12 history entries), or of ``--entries`` entries.

Rows (writing and reading each the best of ``--rounds`` rounds of ``--records`` records, both
ways alternating within a round so that each sees the same machine), in microseconds of the
process's CPU time per record (other processes on a busy machine count less than in wall
time):

* ``before``: what the stores did before, measured in this run: the converter's plain data
  (``cattrs``) and ``json.dumps(..., sort_keys=True)``, ``json.loads`` and the converter's
  structuring with detailed validation;
* ``now``: what the stores do now (:mod:`returnflow._bodies`): with the ``fast`` extra
  (``orjson``) the same text, parsed by ``orjson`` and structured by functions generated
  without detailed validation; without it, the plain way again.

A second table does the same for the outbox: the bodies of the effects of that whole return
(``dump_effect``, ``load_effect``; 12 effects), per return.

Ratio: each row against ``before``. Both ways must give the same text and the same record
(and effects): the script exits 1 otherwise. Run: ``python benchmarks/bodies.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lifecycle import SHOP, _lifecycle, _order

from returnflow import _bodies
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.lifecycle.effects import Effect
from returnflow.serialization import converter
from returnflow.testing import Harness


def _whole() -> tuple[ReturnRecord, list[Effect]]:
    """The record of one whole return and its effects."""
    harness = Harness()
    harness.ports.commerce.add_order(_order("bodies"))
    rid = _lifecycle(harness, "bodies")
    return harness.service.get(SHOP, rid), [e.effect for e in harness.store.outbox(SHOP, rid)]


def _record(entries: int) -> ReturnRecord:
    record = _whole()[0]
    history = list(record.history)
    start = history[-1].at
    while len(history) < entries:  # more of the same
        last = history[len(history) % len(record.history)]
        at = start + timedelta(minutes=len(history))
        history.append(attrs.evolve(last, at=at, version=len(history) + 1))
    return attrs.evolve(record, history=tuple(history[:entries]))


def _plain_write(record: ReturnRecord) -> tuple[str, list[str]]:
    """The stores' writing before: the converter's data, ``json.dumps`` with sorted keys."""
    body = converter.unstructure(attrs.evolve(record, history=()))
    del body["history"]
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    entries = [
        json.dumps(converter.unstructure(entry), separators=(",", ":"), sort_keys=True)
        for entry in record.history
    ]
    return text, entries


def _plain_read(body: str, entries: list[str]) -> ReturnRecord:
    data = json.loads(body)
    data["history"] = [json.loads(entry) for entry in entries]
    record: ReturnRecord = converter.structure(data, ReturnRecord)
    return record


def _fast_write(record: ReturnRecord) -> tuple[str, list[str]]:
    return _bodies.dump_body(record), [_bodies.dump_entry(entry) for entry in record.history]


def _fast_read(body: str, entries: list[str]) -> ReturnRecord:
    return _bodies.load_record(body, entries)


def _time(
    write: Callable[[ReturnRecord], tuple[str, list[str]]],
    read: Callable[[str, list[str]], ReturnRecord],
    record: ReturnRecord,
    count: int,
) -> tuple[float, float]:
    """Microseconds of this process's CPU time per record: writing, reading back."""
    gc.collect()
    start = time.process_time()
    for _ in range(count):
        body, entries = write(record)
    written = time.process_time()
    for _ in range(count):
        read(body, entries)
    done = time.process_time()
    return (written - start) / count * 1e6, (done - written) / count * 1e6


def _plain_effects(effects: list[Effect]) -> list[str]:
    return [
        json.dumps(converter.unstructure(effect), separators=(",", ":"), sort_keys=True)
        for effect in effects
    ]


def _plain_load_effects(bodies: list[str]) -> list[Effect]:
    return [converter.structure(json.loads(body), Effect) for body in bodies]


def _time_effects(
    write: Callable[[list[Effect]], list[str]],
    read: Callable[[list[str]], list[Effect]],
    effects: list[Effect],
    count: int,
) -> tuple[float, float]:
    """Microseconds of this process's CPU time per return's effects: writing, reading."""
    gc.collect()
    start = time.process_time()
    for _ in range(count):
        bodies = write(effects)
    written = time.process_time()
    for _ in range(count):
        read(bodies)
    done = time.process_time()
    return (written - start) / count * 1e6, (done - written) / count * 1e6


def _same_effects(effects: list[Effect]) -> None:
    plain = _plain_effects(effects)
    fast = [_bodies.dump_effect(effect) for effect in effects]
    back = [_bodies.load_effect(body) for body in fast]
    if plain != fast or [converter.unstructure(e) for e in back] != [
        converter.unstructure(e) for e in effects
    ]:
        raise SystemExit("the fast way does not give the plain way's text and effects")


def _same(record: ReturnRecord) -> None:
    """Both ways give the same text and the same record, or the script exits 1."""
    plain = _plain_write(record)
    fast = _fast_write(record)
    back = _fast_read(*fast)
    history_same = [entry.payload for entry in back.history] == [
        entry.payload for entry in record.history
    ]
    if plain != fast or back != record or not history_same:
        raise SystemExit("the fast way does not give the plain way's text and record")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="records per round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--entries", type=int, default=12, help="history entries per record")
    args = parser.parse_args()
    record = _record(args.entries)
    if not isinstance(record.history[0], HistoryEntry):
        raise SystemExit("no history")
    fast = _bodies.fast_available()
    _same(record)
    now = "now, orjson" if fast else "now, no orjson"
    ways: dict[str, tuple[Any, Any]] = {
        "before": (_plain_write, _plain_read),
        now: (_fast_write, _fast_read),
    }
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name, (write, read) in ways.items():
            timed = _time(write, read, record, args.records)
            old = best.get(name, timed)
            best[name] = (min(old[0], timed[0]), min(old[1], timed[1]))
    plain = sum(best["before"])
    heads = ("write µs", "read µs", "total µs", "ratio")
    print(f"{'measurement':<34} {' '.join(f'{head:>9}' for head in heads)}  against")
    for name, (write, read) in best.items():
        label = f"{name}, {len(record.history)} entries"
        total = write + read
        print(f"{label:<34} {write:>9.1f} {read:>9.1f} {total:>9.1f} {total / plain:>9.2f}  before")
    effects = _whole()[1]
    _same_effects(effects)
    effect_ways: dict[str, tuple[Any, Any]] = {
        "before": (_plain_effects, _plain_load_effects),
        now: (
            lambda given: [_bodies.dump_effect(effect) for effect in given],
            lambda bodies: [_bodies.load_effect(body) for body in bodies],
        ),
    }
    best = {}
    for _ in range(args.rounds):
        for name, (write, read) in effect_ways.items():
            timed = _time_effects(write, read, effects, args.records)
            old = best.get(name, timed)
            best[name] = (min(old[0], timed[0]), min(old[1], timed[1]))
    plain = sum(best["before"])
    print()
    for name, (write, read) in best.items():
        label = f"{name}, {len(effects)} effects"
        total = write + read
        print(f"{label:<34} {write:>9.1f} {read:>9.1f} {total:>9.1f} {total / plain:>9.2f}  before")
    note = "" if fast else " orjson (the fast extra) is not installed: both ways are plain."
    print(
        f"\nBest of {args.rounds} rounds of {args.records} records (CPU time), at "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.{note}"
    )


if __name__ == "__main__":
    main()
