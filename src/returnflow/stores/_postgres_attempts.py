"""Commits of :class:`~returnflow.stores.postgres.PostgresStore` that carry delivery
attempts alone (no return, effect or inbound key): each is one statement, so it needs no
transaction around it. It locks the effects first and records all of them, or none when one
is not pending; with a claim, the same statement then claims what the claim would hand out
once they are written."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from returnflow.domain._time import instant
from returnflow.errors import ConcurrencyConflict
from returnflow.ports.store import Attempt, Lease, OutboxEntry
from returnflow.stores._conflicts import not_pending
from returnflow.stores._pages import check_run
from returnflow.stores._postgres_claim import claim_parts, claimed_or_released
from returnflow.stores._postgres_commit import Connection
from returnflow.stores._postgres_errors import RACES
from returnflow.stores._postgres_rows import (
    ATTEMPTS_ALONE,
    ATTEMPTS_GATED,
    ATTEMPTS_LOCKED,
    attempt_params,
)

__all__ = ["record_alone", "record_claiming"]


def record_alone(db: Connection, attempts: Sequence[Attempt]) -> None:
    """Record ``attempts`` in one statement: all of them, or none and
    :class:`ConcurrencyConflict` when one is not pending."""
    params = [attempt_params(attempt) for attempt in attempts]
    with _races():
        cursor = db.execute(ATTEMPTS_ALONE, {"n": len(params), **_columns(params)})
    if cursor.rowcount != len(params):
        raise _not_all(attempts)


def record_claiming(db: Connection, attempts: Sequence[Attempt], lease: Lease) -> list[OutboxEntry]:
    """Record ``attempts`` as :func:`record_alone` does and, in the same statement, claim
    under ``lease`` what :meth:`~returnflow.ports.store.ReturnStore.claim` would hand out of
    its returns once they are written: the statement reads the rows as they were before
    it, so the effects it settles are left out as no longer pending, those it attempts are
    not claimed again, and the leases it releases do not hold their returns."""
    now = instant("now", lease.now)
    check_run(lease.run)
    params = [attempt_params(attempt) for attempt in attempts]
    ctes, select, claim_params = claim_parts(
        now=now,
        lease_until=instant("lease_until", lease.until),
        worker=lease.worker,
        limit=len(lease.returns),
        run=lease.run,
        returns=lease.returns,
        attempted=[p["key"] for p in params],
        settled=[p["key"] for p in params if p["status"] != "pending"],
        gate=" AND (SELECT yes FROM whole)",
    )
    statement = (
        f"{ATTEMPTS_LOCKED}, recorded AS ({ATTEMPTS_GATED} RETURNING 1), {ctes} "
        "SELECT r.n, c.* FROM (SELECT count(*) AS n FROM recorded) r "
        f"LEFT JOIN ({select}) c ON true ORDER BY c.head, c.seq"
    )
    with _races():
        rows = db.execute(
            statement, {"n": len(params), **_columns(params), **claim_params}
        ).fetchall()
    if not rows or rows[0][0] != len(params):
        raise _not_all(attempts)
    return claimed_or_released(
        db, [row[1:] for row in rows if row[-1] is not None], now, lease.worker, lease.until
    )


def _columns(params: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [p[name] for p in params] for name in params[0]}


def _not_all(attempts: Sequence[Attempt]) -> ConcurrencyConflict:
    named = " or ".join(attempt.key for attempt in attempts)
    return ConcurrencyConflict(f"effect {named}", 0, 1, not_pending(named))


@contextmanager
def _races() -> Iterator[None]:
    """A race the server reports (locks are taken in key order; its own refusal) is a
    :class:`ConcurrencyConflict`."""
    try:
        yield
    except RACES as error:
        raise ConcurrencyConflict(
            "commit", 0, -1, f"another transaction got there first ({error.sqlstate})"
        ) from error
