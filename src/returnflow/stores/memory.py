"""The in-memory store: the store contract held in dictionaries, behind one lock.

For tests, demos and hosts that keep nothing between runs. Records are immutable, so the
store hands out the stored objects themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

import attrs

from returnflow.domain.model import ReturnRecord
from returnflow.errors import ConcurrencyConflict, ReturnNotFound
from returnflow.ports.store import Commit, InboundKey, OutboxEntry

__all__ = ["MemoryStore"]


class MemoryStore:
    """Returns, outbox and inbox in memory; atomic per :class:`Commit`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], ReturnRecord] = {}
        self._outbox: dict[str, OutboxEntry] = {}
        self._by_return: dict[tuple[str, str], list[str]] = {}
        self._inbox: set[InboundKey] = set()
        self._sequence = 0

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        record = self._records.get((shop, return_id))
        if record is None:
            raise ReturnNotFound(shop, return_id)
        return record

    def list(self, shop: str, *, order_id: str | None = None) -> Sequence[ReturnRecord]:
        with self._lock:
            records = [
                record
                for (record_shop, _), record in self._records.items()
                if record_shop == shop and (order_id is None or record.order_id == order_id)
            ]
        return sorted(records, key=lambda record: (record.created_at, record.id))

    def commit(self, commit: Commit) -> None:
        with self._lock:
            for record, expected in commit.records:
                stored = self._records.get((record.shop, record.id))
                actual = 0 if stored is None else stored.version
                if actual != expected:
                    raise ConcurrencyConflict(record.id, expected, actual)
                if record.version != expected + 1:
                    raise ConcurrencyConflict(record.id, expected + 1, record.version)
            if commit.inbound is not None and commit.inbound in self._inbox:
                raise ConcurrencyConflict(f"inbound {commit.inbound.event_id}", 0, 1)
            for effect in commit.effects:
                if effect.key in self._outbox:
                    raise ConcurrencyConflict(f"effect {effect.key}", 0, 1)
            # Every check passed: apply all of it.
            for record, _ in commit.records:
                self._records[(record.shop, record.id)] = record
            if commit.inbound is not None:
                self._inbox.add(commit.inbound)
            for effect in commit.effects:
                self._sequence += 1
                self._outbox[effect.key] = OutboxEntry(effect=effect, sequence=self._sequence)
                self._by_return.setdefault((effect.shop, effect.return_id), []).append(effect.key)

    def seen(self, key: InboundKey) -> bool:
        return key in self._inbox

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        with self._lock:
            return [self._outbox[key] for key in self._by_return.get((shop, return_id), [])]

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        with self._lock:
            entries = [entry for entry in self._outbox.values() if entry.status == "pending"]
        entries.sort(key=lambda entry: entry.sequence)
        return entries[:limit]

    def record_attempt(
        self,
        key: str,
        *,
        ok: bool,
        result: object = None,
        error: str | None = None,
        give_up: bool = False,
        at: datetime,
    ) -> OutboxEntry:
        with self._lock:
            entry = self._outbox[key]
            status = "done" if ok else ("failed" if give_up else "pending")
            entry = attrs.evolve(
                entry,
                status=status,
                attempts=entry.attempts + 1,
                last_error=None if ok else error,
                result=result if ok else entry.result,
                updated_at=at,
            )
            self._outbox[key] = entry
            return entry
