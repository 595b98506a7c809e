"""The store port: returns, their outbox of effects, the inbox of processed inbound events,
and named cursors (importers' high-water marks).

One :class:`Commit` is one atomic write: the new versions of one or more returns (a reset
writes the old and the new return together), the effects to dispatch, and the inbound event
that caused it. A store applies all of it or none of it, and refuses it with
:class:`~returnflow.errors.ConcurrencyConflict` when a return's stored version is not the one
the writer read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import attrs

from returnflow.domain._time import instant
from returnflow.domain.model import ReturnRecord
from returnflow.errors import UnreadableRecord, ValidationError

if TYPE_CHECKING:
    from returnflow.lifecycle.effects import Effect

__all__ = [
    "Attempt",
    "Commit",
    "InboundKey",
    "Lease",
    "Listing",
    "OutboxEntry",
    "Pruned",
    "ReturnStore",
    "count_customer_returns",
]

_PAGE = 500
"""How many returns :func:`count_customer_returns` reads at a time from a store without the
method."""


class Listing(list[ReturnRecord]):
    """Returns a store listed, in order: a ``list``, plus ``unreadable``, the
    :class:`~returnflow.errors.UnreadableRecord` of each stored return that matched but could
    not be read back (a damaged row). Those are skipped, never allowed to hide the others.

    >>> Listing([], []).unreadable
    ()
    """

    def __init__(
        self, records: Iterable[ReturnRecord] = (), unreadable: Iterable[UnreadableRecord] = ()
    ) -> None:
        super().__init__(records)
        self.unreadable: tuple[UnreadableRecord, ...] = tuple(unreadable)


@attrs.frozen
class InboundKey:
    """Identifies an inbound event for de-duplication: its source and the source's id."""

    shop: str
    source: str
    event_id: str


@attrs.frozen
class Attempt:
    """The outcome of delivering one effect, as :meth:`ReturnStore.record_attempt` takes it;
    carried by a :class:`Commit` when the return changes with it (a result written back)."""

    key: str
    ok: bool
    at: datetime
    result: object = None
    error: str | None = None
    give_up: bool = False
    retry_at: datetime | None = None


@attrs.frozen
class Lease:
    """A claim a :class:`Commit` takes in its own transaction: for ``worker``, until
    ``until``, the head of each return in ``returns`` (``(shop, return_id)`` pairs) that
    :meth:`ReturnStore.claim` would hand out at ``now``, with its run (up to ``run`` entries;
    see :meth:`ReturnStore.claim`). A dispatcher that just wrote a return's effects, or the
    results of its deliveries, so goes on delivering without a claim of its own."""

    worker: str
    now: datetime
    until: datetime
    returns: tuple[tuple[str, str], ...]
    run: int = 100


@attrs.frozen
class Commit:
    """An atomic write. ``records`` pairs each new record with the version it replaces
    (``0`` for a new return, whose first version is 1). ``attempts`` are recorded in the
    same transaction; each must be of an effect still pending, or the commit conflicts.
    ``reopened`` names effects given up (``failed``) to deliver again under their own key:
    each goes back to ``pending`` with no attempt counted and no back-off; one that is not
    ``failed`` makes the commit conflict. A payout given up is re-opened this way, never
    planned again under a new key: an attempt that did reach the platform is then answered
    by the platform's idempotency, not paid twice. ``claim``: a :class:`Lease` taken in the
    same transaction, once everything else is written (:meth:`ReturnStore.commit` returns
    what it claimed).

    A store also keeps the order-level ledger of units in the same commit
    (:mod:`returnflow.domain.ledger`): a new return takes its
    :func:`~returnflow.domain.ledger.held_units`, a return ending unsettled frees them, and
    a unit another return holds makes the commit fail with
    :class:`~returnflow.errors.UnitsTaken`."""

    records: tuple[tuple[ReturnRecord, int], ...]
    effects: tuple[Effect, ...] = ()
    inbound: InboundKey | None = None
    attempts: tuple[Attempt, ...] = ()
    reopened: tuple[str, ...] = ()
    claim: Lease | None = None


@attrs.frozen
class OutboxEntry:
    """An effect in the outbox with its delivery status.

    ``next_attempt_at`` is when a failed effect may be tried again (backoff);
    ``claimed_until`` is the lease of the worker delivering it now.
    """

    effect: Effect
    sequence: int
    status: str = "pending"  # pending | done | failed
    attempts: int = 0
    last_error: str | None = None
    result: object = None
    updated_at: datetime | None = None
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None
    claimed_by: str | None = None


@attrs.frozen
class Pruned:
    """What :meth:`ReturnStore.prune` dropped: delivered outbox rows of ended returns, and
    inbox keys past their window."""

    outbox: int = 0
    inbox: int = 0


class ReturnStore(Protocol):
    """Durable home of returns. Every read is scoped to one shop.

    A store fails with a :class:`~returnflow.errors.StoreError` (unavailable, read-only,
    full, a return that cannot be read), never with its driver's own exception.

    The outbox hands out effects with :meth:`claim`: only the oldest pending effect of each
    return is ever claimable, so the effects of one return are delivered in order, while
    other returns go on. A claim is a lease; a crashed worker's claims expire.
    """

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        """The return; ``ReturnNotFound`` if it does not exist in ``shop``,
        ``UnreadableRecord`` if its stored data cannot be read back."""
        ...

    def list(
        self,
        shop: str,
        *,
        order_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[ReturnRecord]:
        """The shop's returns (of one order, when given), oldest first: ordered by
        ``(created_at, id)``, ids compared by code point.

        Keyset pagination: ``limit`` returns at most that many (``None``: all of them);
        ``after`` is the id of the last return of the previous page, and the page starts
        right after it, however many returns were written since. A page costs the same at
        the start of a shop's returns as at its end (an index on ``(shop, created_at,
        id)``). Raises ``ReturnNotFound`` when ``after`` is not a return of ``shop``, and
        ``ValidationError`` (field ``limit`` or ``after``) for a limit that is not a whole
        number of at least 1 or an ``after`` that is not a string. A durable store returns a
        :class:`Listing`: a return that cannot be read is skipped and named in its
        ``unreadable``, never allowed to hide the others."""
        ...

    def count_customer_returns(self, shop: str, customer_email: str, *, since: datetime) -> int:
        """How many returns of ``shop`` are the customer's and were created at or after
        ``since`` (for the rule condition "the customer's returns in the last N days",
        :class:`~returnflow.domain.rules.CustomerReturns`), through an index on ``(shop,
        customer email, created_at)``, so the count costs the same however many returns the
        shop holds.

        What counts: every stored return of ``shop`` whose ``customer_email`` equals
        ``customer_email`` exactly (the order's e-mail when the return was opened; case and
        spaces as they are), with ``created_at >= since`` (no upper bound), whatever its
        state (open, closed, declined, cancelled, expired; a reset return and the return it
        was reset into are two), imported returns and claims alike. A return without an
        e-mail never counts. The count reads the index, not the returns: a stored return
        whose data cannot be read back (:class:`~returnflow.errors.UnreadableRecord`) still
        counts, where a scan of :meth:`list` skips it. Raises ``ValidationError`` naming
        ``customer_email`` for a value that is not a string,
        :class:`~returnflow.errors.InvalidTime` naming ``since`` for one that is not a
        timezone-aware datetime in the years 1900-9000.

        A store written before this method existed may lack it:
        :func:`count_customer_returns` then reads :meth:`list` page by page instead."""
        ...

    def list_in(
        self,
        shop: str | None,
        statuses: Sequence[str],
        *,
        exchange_status: str | None = None,
        limit: int = 1000,
    ) -> Sequence[ReturnRecord]:
        """Returns in any of these lifecycle states (and this exchange state, if given), of
        one shop or (``None``) of all, oldest first; for timers and workers."""
        ...

    def list_due(self, now: datetime, *, limit: int = 1000) -> Sequence[ReturnRecord]:
        """Returns of every shop whose ``due_at`` is before ``now``, earliest first, at most
        ``limit``: what a tick has to do, found through an index on ``due_at``."""
        ...

    def prune(self, *, older_than: datetime, inbox_older_than: datetime) -> Pruned:
        """Drop what is no longer needed, and say how much (:class:`Pruned`):

        * outbox rows delivered (``done``) of returns that ended (closed, cancelled, expired,
          declined, reset), have no timer due (``due_at`` unset) and were last written
          before ``older_than``; failed rows, which wait for a person, and every row of a
          return still open, stay;
        * inbox keys of inbound events processed before ``inbox_older_than``: a redelivery
          of such an event is no longer recognised, so this cutoff must be older than any
          sender redelivers (see :mod:`returnflow.retention`).

        Returns, their history and cursors are never dropped. Each kind of row is deleted
        in batches of short transactions, so writers are not held up. Raises
        ``ValidationError`` for a cutoff that is not a timezone-aware datetime."""
        ...

    def commit(self, commit: Commit) -> Sequence[OutboxEntry]:
        """Write everything in ``commit`` atomically, or raise and write nothing.

        With ``commit.claim``, claim in the same transaction, after the writes, what
        :meth:`claim` would hand out of the returns the lease names, with their runs, and
        return it (effects this commit wrote are handed back as given, not read back);
        without one, return an empty sequence.

        Raises ``ConcurrencyConflict`` on a version mismatch, a repeated inbound key or a
        repeated effect key.
        """
        ...

    def seen(self, key: InboundKey) -> bool:
        """Whether an inbound event with this key was already processed."""
        ...

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        """Every effect of one return, in the order they were committed."""
        ...

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        """Effects not yet done nor given up on, oldest first, across shops (a read; to
        deliver them, :meth:`claim` them)."""
        ...

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
        """Claim up to ``limit`` due effects, each the oldest pending one of its return (its
        head), not claimed by a live lease, and of a return none of whose pending effects is
        (an effect given up and re-opened becomes the head while the one after it may still
        be out with a worker: it waits for that lease); optionally of one return only.

        ``run`` (at least 1): hand out after each head, unclaimed, the pending effects
        behind it, oldest first, while they are due and under no live lease, up to ``run``
        entries for the return: the head's lease covers them, since nothing behind a
        pending head is ever claimable. A return's entries come together, its head first;
        returns in the order of their heads."""
        ...

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
        """Record one delivery attempt of the effect ``key`` and release its claim;
        ``InvalidPayload`` naming ``key`` when no effect has it."""
        ...

    def read_cursor(self, name: str) -> str | None:
        """The value last written under ``name``, or ``None`` if none was."""
        ...

    def write_cursor(self, name: str, value: str, *, expected: str | None) -> None:
        """Replace the value under ``name`` with ``value`` if it is still ``expected`` (``None``:
        no value yet); otherwise raise ``ConcurrencyConflict`` and write nothing."""
        ...


def count_customer_returns(
    store: ReturnStore, shop: str, customer_email: str, *, since: datetime
) -> int:
    """``store.count_customer_returns(shop, customer_email, since=since)``
    (:meth:`ReturnStore.count_customer_returns`, which says what counts); for a host's
    store without that method, the same count from a scan of the shop's returns, read
    with :meth:`ReturnStore.list` 500 at a time (its cost grows with the shop's returns).
    The scan skips a return the store cannot read back (it is not in the listing)."""
    counting = getattr(store, "count_customer_returns", None)
    if callable(counting):
        return int(counting(shop, customer_email, since=since))
    since = check_count_args(customer_email, since)
    count = 0
    after: str | None = None
    while True:
        page = store.list(shop, after=after, limit=_PAGE)
        count += sum(
            1
            for record in page
            if record.customer_email == customer_email and record.created_at >= since
        )
        if len(page) < _PAGE:
            return count
        after = page[-1].id


def check_count_args(customer_email: object, since: object) -> datetime:
    """``since`` in UTC, as :meth:`ReturnStore.count_customer_returns` takes its arguments:
    ``ValidationError`` naming ``customer_email`` unless it is a string,
    :class:`~returnflow.errors.InvalidTime` naming ``since`` unless it is a timezone-aware
    datetime in the years 1900-9000."""
    if not isinstance(customer_email, str):
        raise ValidationError("customer_email", customer_email, "must be a string")
    return instant("since", since)
