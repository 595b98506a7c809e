"""The store port: returns, their outbox of effects and the inbox of processed inbound events.

One :class:`Commit` is one atomic write: the new versions of one or more returns (a reset
writes the old and the new return together), the effects to dispatch, and the inbound event
that caused it. A store applies all of it or none of it, and refuses it with
:class:`~returnflow.errors.ConcurrencyConflict` when a return's stored version is not the one
the writer read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import attrs

from returnflow.domain.model import ReturnRecord

if TYPE_CHECKING:
    from returnflow.lifecycle.effects import Effect

__all__ = ["Commit", "InboundKey", "OutboxEntry", "ReturnStore"]


@attrs.frozen
class InboundKey:
    """Identifies an inbound event for de-duplication: its source and the source's id."""

    shop: str
    source: str
    event_id: str


@attrs.frozen
class Commit:
    """An atomic write. ``records`` pairs each new record with the version it replaces
    (``0`` for a new return, whose first version is 1)."""

    records: tuple[tuple[ReturnRecord, int], ...]
    effects: tuple[Effect, ...] = ()
    inbound: InboundKey | None = None


@attrs.frozen
class OutboxEntry:
    """An effect in the outbox with its delivery status."""

    effect: Effect
    sequence: int
    status: str = "pending"  # pending | done | failed
    attempts: int = 0
    last_error: str | None = None
    result: object = None
    updated_at: datetime | None = None


class ReturnStore(Protocol):
    """Durable home of returns. Every read is scoped to one shop."""

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        """The return; ``ReturnNotFound`` if it does not exist in ``shop``."""
        ...

    def list(self, shop: str, *, order_id: str | None = None) -> Sequence[ReturnRecord]:
        """The shop's returns (of one order, when given), oldest first."""
        ...

    def commit(self, commit: Commit) -> None:
        """Write everything in ``commit`` atomically, or raise and write nothing.

        Raises ``ConcurrencyConflict`` on a version mismatch. A repeated ``inbound`` key is a
        conflict too: check :meth:`seen` first.
        """
        ...

    def seen(self, key: InboundKey) -> bool:
        """Whether an inbound event with this key was already processed."""
        ...

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        """Every effect of one return, in the order they were committed."""
        ...

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        """Effects not yet done nor given up on, oldest first, across shops."""
        ...

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
        """Record one delivery attempt of the effect with idempotency key ``key``."""
        ...
