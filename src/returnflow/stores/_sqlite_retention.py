"""The SQLite store's pruning (:meth:`~returnflow.ports.store.ReturnStore.prune`): delivered
effects of ended returns and old inbox keys, in batches of short write transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone

from returnflow.ports.store import Pruned
from returnflow.stores._pages import ENDED, PRUNE_BATCH, check_cutoff

__all__ = ["prune"]

_ENDED = ", ".join(f"'{status}'" for status in ENDED)
# Delivered effects in sequence order (the table's own order), each with whether its
# return ended, has nothing due and was last written before the cutoff.
_DONE = (
    "SELECT o.seq, r.status IN (" + _ENDED + ") AND r.due_at IS NULL AND r.updated_at < ? "
    "FROM outbox o LEFT JOIN returns r ON r.shop = o.shop AND r.id = o.return_id "
    "WHERE o.status = 'done' AND o.seq > ? ORDER BY o.seq LIMIT ?"
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def prune(
    write: Callable[[], AbstractContextManager[sqlite3.Connection]],
    *,
    older_than: datetime,
    inbox_older_than: datetime,
) -> Pruned:
    """Prune through ``write`` (the store's write transaction), one batch per transaction."""
    outbox_cutoff = _iso(check_cutoff("older_than", older_than))
    inbox_cutoff = _iso(check_cutoff("inbox_older_than", inbox_older_than))
    outbox = inbox = 0
    last = 0
    while True:
        with write() as db:
            rows = db.execute(_DONE, (outbox_cutoff, last, PRUNE_BATCH)).fetchall()
            if not rows:
                break
            last = int(rows[-1][0])
            old = [(seq,) for seq, prunable in rows if prunable]
            db.executemany("DELETE FROM outbox WHERE seq = ?", old)
            outbox += len(old)
    while True:
        with write() as db:
            deleted = db.execute(
                "DELETE FROM inbox WHERE (shop, source, event_id) IN "
                "(SELECT shop, source, event_id FROM inbox WHERE at < ? LIMIT ?)",
                (inbox_cutoff, PRUNE_BATCH),
            ).rowcount
        inbox += deleted
        if deleted < PRUNE_BATCH:
            break
    return Pruned(outbox=outbox, inbox=inbox)
