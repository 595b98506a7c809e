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
from returnflow.domain._evolve import evolve
from returnflow.domain.model import ReturnRecord
from returnflow.errors import ConcurrencyConflict, ReturnNotFound
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.engine import using
from returnflow.ports.store import Attempt, Commit, InboundKey, Lease, OutboxEntry, ReturnStore

__all__ = [
    "CONFLICT_RETRIES",
    "Claim",
    "Written",
    "back_off",
    "check_unused",
    "commit_new",
    "record_attempt",
    "record_attempts",
    "run",
]

CONFLICT_RETRIES = 16
"""Decisions made again after a conflict before the conflict is raised to the caller."""

_V = TypeVar("_V")

Claim = Callable[[Sequence[tuple[str, str]]], Lease]
"""Makes the :class:`~returnflow.ports.store.Lease` a commit takes of the returns it wrote
(``(shop, return_id)`` pairs), for the dispatcher to deliver their effects without a claim
of its own."""


@attrs.frozen
class Written(Generic[_V]):
    """What :func:`run` did. ``record``: the return as committed (or as loaded when nothing
    changed, or as stored when another worker already wrote ``attempt``); ``written``: the
    ids of the returns committed (none when nothing changed); ``effects``: whether effects
    were planned or re-opened (there is something to deliver); ``value``: what the decision
    returned; ``duplicate``: the inbound fact was already processed and nothing was
    decided; ``claimed``: what the commit claimed (``claim``), the head of each return
    first, then its run (``None``: the store did not say)."""

    record: ReturnRecord
    written: tuple[str, ...] = ()
    effects: bool = False
    value: _V | None = None
    duplicate: bool = False
    claimed: tuple[OutboxEntry, ...] | None = ()


def back_off(rng: random.Random, tries: int) -> None:
    """Wait a little, randomly, before retrying a write another writer beat us to."""
    time.sleep(rng.uniform(0, min(0.05, 0.001 * 2**tries)))


def record_attempts(
    store: ReturnStore, attempts: Sequence[Attempt], claim: Lease | None = None
) -> tuple[OutboxEntry, ...] | None:
    """Record delivery attempts that change no return, in one write, taking ``claim`` in it;
    what it claimed. When one of them is no longer pending (another worker, whose lease
    came after ours ran out, recorded it first), each is recorded on its own instead, as
    :meth:`~returnflow.ports.store.ReturnStore.record_attempt` does (a done or given-up
    effect stays so), and nothing is claimed. ``None``: the store did not say what it
    claimed (a store wrapped by one whose ``commit`` returns nothing)."""
    if not attempts:
        return ()
    try:
        claimed = store.commit(Commit(records=(), attempts=tuple(attempts), claim=claim))
    except ConcurrencyConflict:
        for attempt in attempts:
            record_attempt(store, attempt)
        return ()
    return None if claimed is None else tuple(claimed)


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
    attempts: Sequence[Attempt] = (),
    gone: set[str] | None = None,
    opened: Callable[[_V], Sequence[Change]] | None = None,
    heirs: bool = False,
    after: Callable[[Change], None] | None = None,
    engine: str = "compiled",
    record: ReturnRecord | None = None,
    claim: Claim | None = None,
) -> Written[_V]:
    """Load the return, let ``decide`` change it, commit with the version check; load and
    decide again on a conflict.

    ``outbox``: load the return's outbox into the change (for decisions that ask what was
    planned). ``inbound``: the fact's id, committed with the change; a fact already seen is
    a ``duplicate`` and nothing is written (it is not looked up first: the commit refuses
    its key, or, when the decision writes nothing or raises, it is looked up then).
    ``attempts``: effects' deliveries, committed with the change (or alone when nothing
    changed); those another worker recorded first (its lease came after ours ran out) are
    dropped after the conflict and their keys added to ``gone`` (the decision skips their
    results); when none is left, the return is returned as stored. ``opened``: the new
    returns the decision opened (a reset's child), committed with it at version 1.
    ``heirs``: when the return was reset, load the returns it was reset into
    (``change.heirs``) and commit those the decision changed. ``after``: run on the change
    (and on each heir) once ``decide`` is done, when the decision changed it: the parked
    facts the return can use now (:func:`returnflow.decisions.facts.drain`). ``engine``: the
    chart engine the decision fires events with
    (:data:`returnflow.lifecycle.engine.ENGINES`). ``record``: the return as this process
    last wrote it, decided on at the first try instead of a read (the version check refuses
    it if another writer came in between; it is read then). ``claim``: the lease the commit
    takes of the returns it writes, when it planned or re-opened effects (or recorded
    ``attempts``).

    Raises what ``decide`` raises (nothing is written then), and
    :class:`~returnflow.errors.ConcurrencyConflict` after :data:`CONFLICT_RETRIES` conflicts.
    """
    attempts = list(attempts)
    known = record
    for tries in range(CONFLICT_RETRIES):
        record, known = known or store.get(shop, return_id), None
        if inbound is not None and tries and store.seen(inbound):
            return Written(record, duplicate=True)
        change = Change(
            record,
            now=clock(),
            actor=actor,
            base=record.version,
            outbox=_confirmed(store.outbox(shop, return_id), attempts) if outbox else (),
        )
        if heirs:
            change.heirs = _heirs(store, record, change.now, actor)
        with using(engine):
            try:
                value = decide(change)
                if after is not None:
                    for changed in (change, *change.heirs):
                        if changed.changed:
                            after(changed)
            except Exception:
                if _repeated(store, inbound, tries):
                    return Written(record, duplicate=True)
                raise
        new = [
            *(opened(value) if opened is not None else ()),
            *(heir for heir in change.heirs if heir.changed),
        ]
        if not change.changed and not new:
            if _repeated(store, inbound, tries):
                return Written(record, duplicate=True)
            lease = claim([(shop, return_id)]) if claim is not None and attempts else None
            claimed = record_attempts(store, attempts, lease)
            return Written(record, value=value, claimed=claimed)
        committed = change.finished()
        effects = [*change.effects, *(effect for child in new for effect in child.effects)]
        reopened = (*change.reopened, *(key for child in new for key in child.reopened))
        ids = (committed.id, *(child.record.id for child in new))
        lease = None
        if claim is not None and (effects or reopened or attempts):
            lease = claim([(committed.shop, written) for written in ids])
        try:
            stored = store.commit(
                Commit(
                    records=(
                        (committed, record.version),
                        *((child.finished(), child.base) for child in new),
                    ),
                    effects=tuple(fx.in_delivery_order(effects)),
                    inbound=inbound,
                    attempts=tuple(attempts),
                    reopened=reopened,
                    claim=lease,
                )
            )
        except ConcurrencyConflict:
            if inbound is not None and store.seen(inbound):  # its key refused the commit
                return Written(store.get(shop, return_id), duplicate=True)
            done = _attempted(store, shop, return_id, {a.key for a in attempts})
            if done:
                if gone is not None:
                    gone.update(done)
                attempts = [attempt for attempt in attempts if attempt.key not in done]
                if not attempts:  # another worker finished them
                    return Written(store.get(shop, return_id))
            back_off(rng, tries)
            continue
        return Written(
            committed,
            ids,
            bool(effects or reopened),
            value,
            claimed=None if stored is None else tuple(stored),
        )
    raise ConcurrencyConflict(return_id, -1 if record is None else record.version, -1)


def _repeated(store: ReturnStore, inbound: InboundKey | None, tries: int) -> bool:
    """Whether the inbound fact was already processed, asked when the first decision on it
    wrote nothing: a new fact is not looked up before it is decided, since its commit
    refuses a key already seen (a conflict, then looked up)."""
    return inbound is not None and not tries and store.seen(inbound)


def check_unused(store: ReturnStore, shop: str, return_id: str) -> None:
    """Raise :class:`~returnflow.errors.ConcurrencyConflict` when ``return_id`` is stored."""
    try:
        existing = store.get(shop, return_id)
    except ReturnNotFound:
        return
    raise ConcurrencyConflict(return_id, 0, existing.version)


def commit_new(
    store: ReturnStore, change: Change, claim: Claim | None = None
) -> tuple[ReturnRecord, tuple[OutboxEntry, ...] | None]:
    """Commit a new return's first change (version 1), taking ``claim`` of it when it
    planned effects; the record and what was claimed. A return with its id already stored
    raises :class:`~returnflow.errors.ConcurrencyConflict`; nothing is written then."""
    record = change.finished()
    lease = claim([(record.shop, record.id)]) if claim is not None and change.effects else None
    claimed = store.commit(
        Commit(
            records=((record, change.base),),
            effects=tuple(fx.in_delivery_order(change.effects)),
            claim=lease,
        )
    )
    return record, None if claimed is None else tuple(claimed)


def _confirmed(outbox: Sequence[OutboxEntry], attempts: Sequence[Attempt]) -> list[OutboxEntry]:
    """``outbox`` with the effects ``attempts`` delivered (committed with this change) done:
    a decision on one answer must not count another confirmed in the same write as still
    pending (a refund and a store credit delivered together close the return)."""
    delivered = {attempt.key for attempt in attempts if attempt.ok}
    return [
        evolve(entry, status="done")
        if entry.effect.key in delivered and entry.status == "pending"
        else entry
        for entry in outbox
    ]


def _heirs(store: ReturnStore, record: ReturnRecord, now: datetime, actor: str) -> list[Change]:
    """Changes to the returns ``record`` was reset into, oldest first (a chain of resets)."""
    heirs: list[Change] = []
    while record.status == "reset" and record.child_id and len(heirs) < CONFLICT_RETRIES:
        record = store.get(record.shop, record.child_id)
        heirs.append(Change(record, now=now, actor=actor, base=record.version))
    return heirs


def _attempted(store: ReturnStore, shop: str, return_id: str, keys: set[str]) -> set[str]:
    """Which of ``keys`` are no longer pending (recorded by another worker)."""
    if not keys:
        return set()
    return {
        entry.effect.key
        for entry in store.outbox(shop, return_id)
        if entry.effect.key in keys and entry.status != "pending"
    }
