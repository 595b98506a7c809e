"""The in-memory store: the store contract held in dictionaries, behind one lock.

For tests, demos and hosts that keep nothing between runs. It holds the records themselves,
so none is ever unreadable, and it cannot be read-only or full; listings are
:class:`~returnflow.ports.store.Listing`\\ s all the same. Records are immutable, so the
store hands out the stored objects themselves. It is shared by threads, not processes.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from datetime import datetime, timezone

import attrs

from returnflow._effect_data import FREE_FORM
from returnflow.domain._fields import check_digits
from returnflow.domain._time import instant
from returnflow.domain.ledger import UnitKey, held_units
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.errors import ConcurrencyConflict, ReturnNotFound, UnitsTaken
from returnflow.ports.store import (
    Attempt,
    Commit,
    InboundKey,
    Listing,
    OutboxEntry,
    Pruned,
    check_count_args,
)
from returnflow.stores._conflicts import moved as _moved
from returnflow.stores._conflicts import not_failed as _not_failed
from returnflow.stores._conflicts import not_pending as _not_pending
from returnflow.stores._conflicts import queued as _queued
from returnflow.stores._conflicts import seen as _seen
from returnflow.stores._conflicts import unknown_effect as _unknown_effect
from returnflow.stores._pages import ENDED, check_cutoff, check_page, check_run, rows_of

__all__ = ["MemoryStore"]


class MemoryStore:
    """Returns, outbox and inbox in memory; atomic per :class:`Commit`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], ReturnRecord] = {}
        self._outbox: dict[str, OutboxEntry] = {}
        self._by_return: dict[tuple[str, str], list[str]] = {}
        self._inbox: dict[InboundKey, datetime] = {}  # each key and when it was processed
        # each shop's (and each order's) returns as (created_at, id), sorted: the keyset
        # indexes of ``list``
        self._by_shop: dict[tuple[str, str | None], list[tuple[datetime, str]]] = {}
        # each customer's returns in a shop as (created_at, id), sorted: the index of
        # ``count_customer_returns``
        self._by_customer: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
        # returns with a due time as (due_at, shop, id), sorted: the index of ``list_due``
        self._due: list[tuple[datetime, str, str]] = []
        self._sequence = 0
        self._busy: set[tuple[str, str]] = set()  # returns that may have pending effects
        self._cursors: dict[str, str] = {}
        # The order-level ledger: (shop, order_id, unit) -> the return holding it.
        self._units: dict[tuple[str, str, UnitKey], str] = {}

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        record = self._records.get((shop, return_id))
        if record is None:
            raise ReturnNotFound(shop, return_id)
        return record

    def list(
        self,
        shop: str,
        *,
        order_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[ReturnRecord]:
        check_page(after, limit)
        with self._lock:
            keys = self._by_shop.get((shop, order_id), [])
            start = 0
            if after is not None:
                last = self._records.get((shop, after))
                if last is None:
                    raise ReturnNotFound(shop, after)
                start = bisect.bisect_right(keys, (_utc(last.created_at), after))
            end = len(keys) if limit is None else min(len(keys), start + limit)
            return Listing(self._records[(shop, return_id)] for _, return_id in keys[start:end])

    def count_customer_returns(self, shop: str, customer_email: str, *, since: datetime) -> int:
        since = check_count_args(customer_email, since)
        with self._lock:
            keys = self._by_customer.get((shop, customer_email), [])
            return len(keys) - bisect.bisect_left(keys, (since,))

    def list_in(
        self,
        shop: str | None,
        statuses: Sequence[str],
        *,
        exchange_status: str | None = None,
        limit: int = 1000,
    ) -> Sequence[ReturnRecord]:
        wanted, limit = set(statuses), rows_of(limit)
        with self._lock:
            records = [
                record
                for (record_shop, _), record in self._records.items()
                if (shop is None or record_shop == shop)
                and record.status in wanted
                and (exchange_status is None or record.exchange_status == exchange_status)
            ]
        records.sort(key=lambda record: (record.created_at, record.shop, record.id))
        return Listing(records[:limit])

    def list_due(self, now: datetime, *, limit: int = 1000) -> Sequence[ReturnRecord]:
        now, limit = instant("now", now), rows_of(limit)
        with self._lock:
            end = bisect.bisect_left(self._due, (_utc(now),))  # strictly before now
            return Listing(
                self._records[(shop, rid)] for _, shop, rid in self._due[: min(end, limit)]
            )

    def commit(self, commit: Commit) -> Sequence[OutboxEntry]:
        lease = commit.claim
        if lease is not None:
            now, until = instant("now", lease.now), instant("lease_until", lease.until)
            check_run(lease.run)
        with self._lock:
            for record, expected in commit.records:
                stored = self._records.get((record.shop, record.id))
                actual = 0 if stored is None else stored.version
                if actual != expected:
                    raise ConcurrencyConflict(record.id, expected, actual)
                if record.version != expected + 1:
                    raise ConcurrencyConflict(record.id, expected + 1, record.version)
                if stored is not None and not _extends(record.history, stored.history):
                    raise ConcurrencyConflict(record.id, expected, actual)
                _check_free_form(record, 0 if stored is None else len(stored.history))
            if commit.inbound is not None and commit.inbound in self._inbox:
                raise ConcurrencyConflict(
                    f"inbound {commit.inbound.event_id}", 0, 1, _seen(commit.inbound)
                )
            keys = [effect.key for effect in commit.effects]
            for key in keys:
                if key in self._outbox or keys.count(key) > 1:
                    raise ConcurrencyConflict(f"effect {key}", 0, 1, _queued(key))
            for effect in commit.effects:
                for name in FREE_FORM:
                    check_digits(f"effect.{name}", getattr(effect, name, None))
            for attempt in commit.attempts:
                if attempt.ok:  # a failed attempt's result is not kept
                    check_digits("result", attempt.result)
                entry = self._outbox.get(attempt.key)
                if entry is None or entry.status != "pending":
                    raise ConcurrencyConflict(
                        f"effect {attempt.key}", 0, 1, _not_pending(attempt.key)
                    )
            for key in commit.reopened:
                entry = self._outbox.get(key)
                if entry is None or entry.status != "failed":
                    raise ConcurrencyConflict(f"effect {key}", 0, 1, _not_failed(key))
            taken, freed = self._ledger(commit)
            # Every check passed: apply all of it.
            for unit in freed:
                self._units.pop(unit, None)
            for key in commit.reopened:
                effect = self._outbox[key].effect
                self._outbox[key] = attrs.evolve(
                    self._outbox[key],
                    status="pending",
                    attempts=0,
                    next_attempt_at=None,
                    claimed_until=None,
                    claimed_by=None,
                )
                self._busy.add((effect.shop, effect.return_id))
            self._units.update(taken)
            for attempt in commit.attempts:
                self._outbox[attempt.key] = _attempted(self._outbox[attempt.key], attempt)
            for record, _ in commit.records:
                self._index(self._records.get((record.shop, record.id)), record)
                self._records[(record.shop, record.id)] = record
            if commit.inbound is not None:
                self._inbox[commit.inbound] = max(
                    (record.updated_at for record, _ in commit.records),
                    default=datetime.now(timezone.utc),
                )
            for effect in commit.effects:
                self._sequence += 1
                self._outbox[effect.key] = OutboxEntry(effect=effect, sequence=self._sequence)
                self._by_return.setdefault((effect.shop, effect.return_id), []).append(effect.key)
                self._busy.add((effect.shop, effect.return_id))
            if lease is None:
                return ()
            return self._claim(
                now, until, lease.worker, list(lease.returns), len(lease.returns), lease.run
            )

    def _index(self, stored: ReturnRecord | None, record: ReturnRecord) -> None:
        """Keep the keyset indexes of ``list``, the due-time index of ``list_due`` and the
        customers' index of ``count_customer_returns`` in step with a record written over
        ``stored``."""
        self._index_customer(stored, record)
        if (stored and stored.due_at) != record.due_at:
            if stored is not None and stored.due_at is not None:
                self._due.remove((_utc(stored.due_at), stored.shop, stored.id))
            if record.due_at is not None:
                bisect.insort(self._due, (_utc(record.due_at), record.shop, record.id))
        if stored is not None:
            if (stored.created_at, stored.order_id) == (record.created_at, record.order_id):
                return
            for index in ((stored.shop, None), (stored.shop, stored.order_id)):
                self._by_shop[index].remove((_utc(stored.created_at), stored.id))
        for index in ((record.shop, None), (record.shop, record.order_id)):
            bisect.insort(self._by_shop.setdefault(index, []), (_utc(record.created_at), record.id))

    def _index_customer(self, stored: ReturnRecord | None, record: ReturnRecord) -> None:
        if stored is not None and (stored.customer_email, stored.created_at) == (
            record.customer_email,
            record.created_at,
        ):
            return
        if stored is not None and stored.customer_email is not None:
            self._by_customer[(stored.shop, stored.customer_email)].remove(
                (_utc(stored.created_at), stored.id)
            )
        if record.customer_email is not None:
            bisect.insort(
                self._by_customer.setdefault((record.shop, record.customer_email), []),
                (_utc(record.created_at), record.id),
            )

    def _ledger(
        self, commit: Commit
    ) -> tuple[dict[tuple[str, str, UnitKey], str], Sequence[tuple[str, str, UnitKey]]]:
        """The units the commit's returns take and free; :class:`UnitsTaken` when a unit is
        held by a return the commit does not free it from."""
        freed: set[tuple[str, str, UnitKey]] = set()
        taken: dict[tuple[str, str, UnitKey], str] = {}
        for record, _ in commit.records:
            stored = self._records.get((record.shop, record.id))
            before = held_units(stored) if stored is not None else frozenset()
            after = held_units(record)
            freed.update((record.shop, record.order_id, unit) for unit in before - after)
            for unit in after - before:
                key = (record.shop, record.order_id, unit)
                if key in taken:  # two returns of one commit take the same unit
                    raise UnitsTaken(record.id, record.order_id, [unit], taken[key])
                taken[key] = record.id
        for key, return_id in taken.items():
            holder = self._units.get(key)
            if holder is not None and holder != return_id and key not in freed:
                raise UnitsTaken(return_id, key[1], [key[2]], holder)
        return taken, sorted(freed)

    def units(self, shop: str, order_id: str) -> dict[UnitKey, str]:
        """The order's ledger: each held unit and the return holding it (for tests)."""
        with self._lock:
            return {
                key[2]: return_id
                for key, return_id in self._units.items()
                if key[0] == shop and key[1] == order_id
            }

    def seen(self, key: InboundKey) -> bool:
        return key in self._inbox

    def prune(self, *, older_than: datetime, inbox_older_than: datetime) -> Pruned:
        outbox_cutoff = check_cutoff("older_than", older_than)
        inbox_cutoff = check_cutoff("inbox_older_than", inbox_older_than)
        with self._lock:
            dropped = 0
            for owner, keys in self._by_return.items():
                record = self._records.get(owner)
                if (
                    record is None
                    or record.status not in ENDED
                    or record.due_at is not None
                    or not record.updated_at < outbox_cutoff
                ):
                    continue
                kept = [key for key in keys if self._outbox[key].status != "done"]
                for key in keys:
                    if self._outbox[key].status == "done":
                        del self._outbox[key]
                dropped += len(keys) - len(kept)
                keys[:] = kept
            expired = [key for key, at in self._inbox.items() if at < inbox_cutoff]
            for inbound in expired:
                del self._inbox[inbound]
            return Pruned(outbox=dropped, inbox=len(expired))

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        with self._lock:
            return [self._outbox[key] for key in self._by_return.get((shop, return_id), [])]

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        with self._lock:
            entries = [entry for entry in self._outbox.values() if entry.status == "pending"]
        entries.sort(key=lambda entry: entry.sequence)
        return entries[: rows_of(limit)]

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        worker: str,
        limit: int = 100,
        shop: str | None = None,
        return_id: str | None = None,
        run: int = 1,
    ) -> Sequence[OutboxEntry]:
        now, lease_until = instant("now", now), instant("lease_until", lease_until)
        check_run(run)
        limit = rows_of(limit)
        with self._lock:
            owners = (
                [(shop, return_id)]
                if shop is not None and return_id is not None
                else [
                    owner
                    for owner in sorted(self._busy)
                    if (shop is None or owner[0] == shop)
                    and (return_id is None or owner[1] == return_id)
                ]
            )
            return self._claim(now, lease_until, worker, owners, limit, run)

    def _claim(
        self,
        now: datetime,
        lease_until: datetime,
        worker: str,
        owners: Sequence[tuple[str, str]],
        limit: int,
        run: int,
    ) -> Sequence[OutboxEntry]:
        """Claim the due heads of ``owners``' outboxes (at most ``limit``, oldest first),
        each with its run; the lock is held."""
        heads: list[tuple[OutboxEntry, list[OutboxEntry]]] = []
        for owner in owners:
            pending = [
                self._outbox[key]
                for key in self._by_return.get(owner, [])
                if self._outbox[key].status == "pending"
            ]
            if not pending:
                self._busy.discard(owner)
                continue
            head = pending[0]
            # a re-opened effect is the head while the one after it may be out with a
            # worker: it waits for that lease
            if _due(head, now) and not any(_leased(entry, now) for entry in pending[1:]):
                behind = []
                for entry in pending[1:run]:
                    if not _due(entry, now):
                        break
                    behind.append(entry)
                heads.append((head, behind))
        heads.sort(key=lambda pair: pair[0].sequence)
        claimed: list[OutboxEntry] = []
        for head, behind in heads[:limit]:
            entry = attrs.evolve(head, claimed_until=lease_until, claimed_by=worker)
            self._outbox[head.effect.key] = entry
            claimed += [entry, *behind]
        return claimed

    def record_attempt(
        self,
        key: str,
        *,
        ok: bool,
        at: datetime,
        result: object = None,
        error: str | None = None,
        give_up: bool = False,
        retry_at: datetime | None = None,
    ) -> OutboxEntry:
        attempt = Attempt(key, ok, at, result, error, give_up, retry_at)
        if ok:  # what the durable stores cannot write, refused alike
            check_digits("result", result)
        with self._lock:
            entry = self._outbox.get(key)
            if entry is None:
                raise _unknown_effect(key)
            if entry.status != "pending":  # done or given up stays so
                return entry
            entry = _attempted(entry, attempt)
            self._outbox[key] = entry
            return entry

    def read_cursor(self, name: str) -> str | None:
        with self._lock:
            return self._cursors.get(name)

    def write_cursor(self, name: str, value: str, *, expected: str | None) -> None:
        with self._lock:
            if self._cursors.get(name) != expected:
                raise ConcurrencyConflict(f"cursor {name}", 0, 1, _moved(name, expected))
            self._cursors[name] = value


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _extends(new: tuple[HistoryEntry, ...], old: tuple[HistoryEntry, ...]) -> bool:
    """Whether ``new`` keeps every entry of ``old`` as it was: history is append-only."""
    if len(new) < len(old):
        return False
    return all(
        a is b or (a == b and a.payload == b.payload) for a, b in zip(new, old, strict=False)
    )


def _leased(entry: OutboxEntry, now: datetime) -> bool:
    """Whether ``entry`` is under a live lease at ``now``."""
    return entry.claimed_until is not None and entry.claimed_until > now


def _due(entry: OutboxEntry, now: datetime) -> bool:
    """Whether ``entry`` may be delivered at ``now``: past its back-off, under no live lease."""
    return (entry.next_attempt_at is None or entry.next_attempt_at <= now) and (
        entry.claimed_until is None or entry.claimed_until <= now
    )


def _attempted(entry: OutboxEntry, attempt: Attempt) -> OutboxEntry:
    """``entry`` after ``attempt``: done, failed (given up) or pending until ``retry_at``."""
    ok, give_up = attempt.ok, attempt.give_up
    return attrs.evolve(
        entry,
        status="done" if ok else ("failed" if give_up else "pending"),
        attempts=entry.attempts + 1,
        last_error=None if ok else attempt.error,
        result=attempt.result if ok else entry.result,
        updated_at=attempt.at,
        next_attempt_at=None if ok or give_up else attempt.retry_at,
        claimed_until=None,
        claimed_by=None,
    )


def _check_free_form(record: ReturnRecord, stored: int) -> None:
    """What the durable stores refuse to write of ``record``'s free-form data (its parked
    facts' lines, the payloads of its history entries after the ``stored`` ones), refused
    alike: :func:`~returnflow.domain._fields.check_digits`."""
    for n, fact in enumerate(record.parked):
        check_digits(f"record.parked[{n}].lines", fact.lines)
    for entry in record.history[stored:]:
        check_digits("history.payload", entry.payload)
