"""How :class:`~returnflow.stores.sqlite.SqliteStore` reads outbox rows and claims them: the
head of each return (its oldest pending effect) leased to a worker, with the run of pending
effects behind it. Effects the caller holds (those its commit just wrote) are handed back as
they are, not parsed from their rows again."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from returnflow.domain._time import parse_iso
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import OutboxEntry
from returnflow.stores._errors import readable_effect
from returnflow.stores._sqlite_rows import iso

__all__ = ["ENTRY", "claim", "entry"]

ENTRY = (
    "SELECT seq, body, status, attempts, last_error, result, updated_at, next_attempt_at, "
    "claimed_until, claimed_by, key, shop, return_id FROM outbox"
)
"""The columns :func:`entry` reads, in its order."""

_HEADS = (
    "SELECT o.key, o.shop, o.return_id, o.seq FROM outbox o WHERE o.status = 'pending' "
    "AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= :now) "
    "AND (o.claimed_until IS NULL OR o.claimed_until <= :now) "
    "AND o.seq = (SELECT MIN(h.seq) FROM outbox h WHERE h.shop = o.shop "
    "AND h.return_id = o.return_id AND h.status = 'pending') "
    "AND NOT EXISTS (SELECT 1 FROM outbox l WHERE l.shop = o.shop "
    "AND l.return_id = o.return_id AND l.status = 'pending' AND l.claimed_until > :now)"
)
"""Due heads under no live lease, of returns with no pending effect under one: an effect
given up and re-opened becomes the head while the one after it may still be out with a
worker, and waits for it."""


def _moment(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)


def entry(row: Sequence[Any], known: Mapping[str, Effect] | None = None) -> OutboxEntry:
    """The :class:`OutboxEntry` of a row of :data:`ENTRY`; its effect taken from ``known``
    (by key) when there, else parsed from the row."""
    effect = None if known is None else known.get(row[10])
    if effect is None:
        effect = readable_effect(row[1], row[10], row[11], row[12])
    return OutboxEntry(
        effect=effect,
        sequence=int(row[0]),
        status=row[2],
        attempts=int(row[3]),
        last_error=row[4],
        result=None if row[5] is None else json.loads(row[5]),
        updated_at=_moment(row[6]),
        next_attempt_at=_moment(row[7]),
        claimed_until=_moment(row[8]),
        claimed_by=row[9],
    )


def claim(
    db: sqlite3.Connection,
    *,
    now: datetime,
    lease_until: datetime,
    worker: str,
    limit: int,
    shop: str | None = None,
    return_id: str | None = None,
    run: int = 1,
    known: Mapping[str, Effect] | None = None,
) -> list[OutboxEntry]:
    """Claim up to ``limit`` due heads (of one shop, one return id) in the open write
    transaction ``db``, each followed by its run (see
    :meth:`~returnflow.ports.store.ReturnStore.claim`)."""
    where, params = _HEADS, {"now": iso(now), "limit": limit}
    if shop is not None:
        where += " AND o.shop = :shop"
        params["shop"] = shop
    if return_id is not None:
        where += " AND o.return_id = :return_id"
        params["return_id"] = return_id
    heads = db.execute(f"{where} ORDER BY o.seq LIMIT :limit", params).fetchall()
    until = iso(lease_until)
    db.executemany(
        "UPDATE outbox SET claimed_until = ?, claimed_by = ? WHERE key = ?",
        [(until, worker, key) for key, *_ in heads],
    )
    claimed: list[OutboxEntry] = []
    for _, head_shop, head_return, seq in heads:
        rows = db.execute(
            f"{ENTRY} WHERE shop = ? AND return_id = ? AND status = 'pending' AND seq >= ? "
            "ORDER BY seq LIMIT ?",
            (head_shop, head_return, seq, run),
        ).fetchall()
        claimed.append(entry(rows[0], known))
        for row in rows[1:]:
            follower = entry(row, known)
            if not _due(follower, now):
                break
            claimed.append(follower)
    return claimed


def _due(follower: OutboxEntry, now: datetime) -> bool:
    return (follower.next_attempt_at is None or follower.next_attempt_at <= now) and (
        follower.claimed_until is None or follower.claimed_until <= now
    )
