"""Load → decide → commit with the version check, again on a conflict: the one write path of
the service and the dispatcher.

A decision (:mod:`returnflow.decisions`) works on a :class:`~returnflow.decisions.change.Change`
built from what :func:`run` loaded; :func:`run` commits what it decided in one
:class:`~returnflow.ports.store.Commit` (the record, new returns it opened, the effects, the
inbound fact's id, an effect's delivery attempt). Another writer that got in first makes the
commit fail with :class:`~returnflow.errors.ConcurrencyConflict`: the return is loaded again
and the decision made again on what is now stored, up to :data:`CONFLICT_RETRIES` times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import attrs

from returnflow.decisions.change import Change
from returnflow.domain.model import ReturnRecord
from returnflow.errors import ConcurrencyConflict, ReturnNotFound
from returnflow.lifecycle.engine import using
from returnflow.ports.store import Attempt, Commit, InboundKey, ReturnStore

__all__ = [
    "CONFLICT_RETRIES",
    "Written",
    "back_off",
    "check_unused",
    "commit_new",
    "record_attempt",
    "run",
]

CONFLICT_RETRIES = 16
"""Decisions made again after a conflict before the conflict is raised to the caller."""

_V = TypeVar("_V")


@attrs.frozen
class Written(Generic[_V]):
    """What :func:`run` did. ``record``: the return as committed (or as loaded when nothing
    changed, or as stored when another worker already wrote ``attempt``); ``written``: the
    ids of the returns committed (none when nothing changed); ``effects``: whether effects
    were planned or re-opened (there is something to deliver); ``value``: what the decision
    returned; ``duplicate``: the inbound fact was already processed and nothing was
    decided."""

    record: ReturnRecord
    written: tuple[str, ...] = ()
    effects: bool = False
    value: _V | None = None
    duplicate: bool = False


def back_off(rng: random.Random, tries: int) -> None:
    """Wait a little, randomly, before retrying a write another writer beat us to."""
    time.sleep(rng.uniform(0, min(0.05, 0.001 * 2**tries)))


def record_attempt(store: ReturnStore, attempt: Attempt) -> None:
    """Record an effect's delivery attempt on its own (no change to the return)."""
    store.record_attempt(
        attempt.key,
        ok=attempt.ok,
        at=attempt.at,
        result=attempt.result,
        error=attempt.error,
        give_up=attempt.give_up,
        retry_at=attempt.retry_at,
    )


def run(
    store: ReturnStore,
    clock: Callable[[], datetime],
    rng: random.Random,
    shop: str,
    return_id: str,
    actor: str,
    decide: Callable[[Change], _V],
    *,
    outbox: bool = False,
    inbound: InboundKey | None = None,
    attempt: Attempt | None = None,
    opened: Callable[[_V], Sequence[Change]] | None = None,
    heirs: bool = False,
    after: Callable[[Change], None] | None = None,
    engine: str = "compiled",
) -> Written[_V]:
    """Load the return, let ``decide`` change it, commit with the version check; load and
    decide again on a conflict.

    ``outbox``: load the return's outbox into the change (for decisions that ask what was
    planned). ``inbound``: the fact's id, committed with the change; a fact already seen is
    a ``duplicate`` and nothing is decided. ``attempt``: an effect's delivery, committed with
    the change (or alone when nothing changed); when another worker recorded it first the
    return is returned as stored. ``opened``: the new returns the decision opened (a reset's
    child), committed with it at version 1. ``heirs``: when the return was reset, load the
    returns it was reset into (``change.heirs``) and commit those the decision changed.
    ``after``: run on the change (and on each heir) once ``decide`` is done, when the
    decision changed it: the parked facts the return can use now
    (:func:`returnflow.decisions.facts.drain`). ``engine``: the chart engine the decision
    fires events with (:data:`returnflow.lifecycle.engine.ENGINES`).

    Raises what ``decide`` raises (nothing is written then), and
    :class:`~returnflow.errors.ConcurrencyConflict` after :data:`CONFLICT_RETRIES` conflicts.
    """
    for tries in range(CONFLICT_RETRIES):
        record = store.get(shop, return_id)
        if inbound is not None and store.seen(inbound):
            return Written(record, duplicate=True)
        change = Change(
            record,
            now=clock(),
            actor=actor,
            base=record.version,
            outbox=store.outbox(shop, return_id) if outbox else (),
        )
        if heirs:
            change.heirs = _heirs(store, record, change.now, actor)
        with using(engine):
            value = decide(change)
            if after is not None:
                for changed in (change, *change.heirs):
                    if changed.changed:
                        after(changed)
        new = [
            *(opened(value) if opened is not None else ()),
            *(heir for heir in change.heirs if heir.changed),
        ]
        if not change.changed and not new:
            if attempt is not None:
                record_attempt(store, attempt)
            return Written(record, value=value)
        committed = change.finished()
        effects = [*change.effects, *(effect for child in new for effect in child.effects)]
        reopened = (*change.reopened, *(key for child in new for key in child.reopened))
        try:
            store.commit(
                Commit(
                    records=(
                        (committed, record.version),
                        *((child.finished(), child.base) for child in new),
                    ),
                    effects=tuple(effects),
                    inbound=inbound,
                    attempts=() if attempt is None else (attempt,),
                    reopened=reopened,
                )
            )
        except ConcurrencyConflict:
            if attempt is not None and _attempted(store, shop, return_id, attempt.key):
                return Written(store.get(shop, return_id))  # another worker finished it
            back_off(rng, tries)
            continue
        ids = (committed.id, *(child.record.id for child in new))
        return Written(committed, ids, bool(effects or reopened), value)
    raise ConcurrencyConflict(return_id, record.version, -1)


def check_unused(store: ReturnStore, shop: str, return_id: str) -> None:
    """Raise :class:`~returnflow.errors.ConcurrencyConflict` when ``return_id`` is stored."""
    try:
        existing = store.get(shop, return_id)
    except ReturnNotFound:
        return
    raise ConcurrencyConflict(return_id, 0, existing.version)


def commit_new(store: ReturnStore, change: Change) -> ReturnRecord:
    """Commit a new return's first change (version 1). A return with its id already stored
    raises :class:`~returnflow.errors.ConcurrencyConflict`; nothing is written then."""
    record = change.finished()
    store.commit(Commit(records=((record, change.base),), effects=tuple(change.effects)))
    return record


def _heirs(store: ReturnStore, record: ReturnRecord, now: datetime, actor: str) -> list[Change]:
    """Changes to the returns ``record`` was reset into, oldest first (a chain of resets)."""
    heirs: list[Change] = []
    while record.status == "reset" and record.child_id and len(heirs) < CONFLICT_RETRIES:
        record = store.get(record.shop, record.child_id)
        heirs.append(Change(record, now=now, actor=actor, base=record.version))
    return heirs


def _attempted(store: ReturnStore, shop: str, return_id: str, key: str) -> bool:
    return any(
        entry.effect.key == key and entry.status != "pending"
        for entry in store.outbox(shop, return_id)
    )
