"""One :class:`~returnflow.ports.store.Commit` of
:class:`~returnflow.stores.postgres.PostgresStore`, as pipelined statements: the version
checks, the returns' rows and history, the order-level ledger, the inbox key, the outbox rows,
re-opened effects and delivery attempts, each with the count of rows it must touch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import psycopg

from returnflow.domain.ledger import ENDED_UNSETTLED, held_units
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.errors import ConcurrencyConflict, UnitsTaken
from returnflow.ports.store import Commit
from returnflow.stores._conflicts import not_failed as _not_failed
from returnflow.stores._conflicts import not_pending as _not_pending
from returnflow.stores._conflicts import queued as _queued
from returnflow.stores._conflicts import seen as _seen
from returnflow.stores._postgres_rows import (
    ATTEMPT,
    INSERT_HISTORY,
    INSERT_RETURN,
    REOPEN,
    UPDATE_RETURN,
    attempt_params,
    extends,
    history_rows,
)

__all__ = ["Connection", "apply", "now_of", "write_units"]

Connection = psycopg.Connection[tuple[Any, ...]]


def apply(
    db: Connection,
    pipeline: psycopg.Pipeline,
    commit: Commit,
    rows: Sequence[tuple[ReturnRecord, int, dict[str, Any]]],
    effects: Sequence[tuple[str, str, str, str, str]],
    recall: Callable[[str, str, int], ReturnRecord | None],
) -> None:
    """The statements of one commit, pipelined: two round trips when the cache knows
    every record as the writer read it, three when it does not. Every count is checked
    before the transaction commits. ``rows``: each record with the version it replaces and
    its columns (:func:`~returnflow.stores._postgres_rows.columns`), in lock order;
    ``effects``: the outbox rows; ``recall``: the store's cached record of a return at a
    version, or ``None``. Raises :class:`ConcurrencyConflict` or :class:`UnitsTaken` for a
    count that is off; the caller's transaction then writes nothing."""
    # 1. Records the cache does not know at the expected version: lock them and read
    # their stored history, to check that the new one only extends it.
    stored_history: dict[tuple[str, str], Sequence[str | HistoryEntry]] = {}
    looked = [
        (
            record,
            expected,
            db.execute(
                "SELECT version FROM returns WHERE shop = %s AND id = %s FOR UPDATE",
                (record.shop, record.id),
            ),
            db.execute(
                "SELECT body FROM history WHERE shop = %s AND return_id = %s ORDER BY seq",
                (record.shop, record.id),
            ),
        )
        for record, expected, _ in rows
        if expected and recall(record.shop, record.id, expected) is None
    ]
    if looked:
        pipeline.sync()
    for record, expected, version, history in looked:
        row = version.fetchone()
        actual = 0 if row is None else int(row[0])
        if actual != expected:
            raise ConcurrencyConflict(record.id, expected, actual)
        stored_history[(record.shop, record.id)] = [body for (body,) in history.fetchall()]

    # 2. Every write, queued; each with the count of rows it must touch.
    checks: list[tuple[psycopg.Cursor[Any], int, ConcurrencyConflict]] = []
    for record, expected, columns in rows:
        if expected == 0:
            stored: Sequence[str | HistoryEntry] = ()
            cursor = db.execute(INSERT_RETURN, columns)
        else:
            known = recall(record.shop, record.id, expected)
            stored = (
                known.history if known is not None else stored_history[(record.shop, record.id)]
            )
            if not extends(record, stored):
                raise ConcurrencyConflict(record.id, len(stored), len(record.history))
            # The version check is in the update itself: it finds the row only at
            # ``expected``.
            cursor = db.execute(UPDATE_RETURN, {**columns, "expected": expected})
        checks.append((cursor, 1, ConcurrencyConflict(record.id, expected, -1)))
        entries = history_rows(record, len(stored))
        if entries:
            db.cursor().executemany(INSERT_HISTORY, entries)
    checks.extend(write_units(db, commit))
    if commit.inbound is not None:
        key = commit.inbound
        cursor = db.execute(
            "INSERT INTO inbox (shop, source, event_id, return_id, at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                key.shop,
                key.source,
                key.event_id,
                commit.records[0][0].id if commit.records else "",
                now_of(commit),
            ),
        )
        checks.append((cursor, 1, ConcurrencyConflict(f"inbound {key.event_id}", 0, 1, _seen(key))))
    if effects:
        keys = [effect[0] for effect in effects]
        twice = [key for key in keys if keys.count(key) > 1]
        cursor = db.cursor()
        cursor.executemany(
            "INSERT INTO outbox (key, shop, return_id, kind, body) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
            effects,
        )
        clash = twice[0] if twice else " or ".join(keys)
        checks.append(
            (cursor, len(effects), ConcurrencyConflict(f"effect {clash}", 0, 1, _queued(clash)))
        )
    for reopened in commit.reopened:
        cursor = db.execute(REOPEN, (reopened,))
        conflict = ConcurrencyConflict(f"effect {reopened}", 0, 1, _not_failed(reopened))
        checks.append((cursor, 1, conflict))
    for attempt in commit.attempts:
        cursor = db.execute(ATTEMPT, attempt_params(attempt))
        checks.append(
            (
                cursor,
                1,
                ConcurrencyConflict(f"effect {attempt.key}", 0, 1, _not_pending(attempt.key)),
            )
        )
    pipeline.sync()
    for cursor, touched, conflict in checks:
        if cursor.rowcount != touched:
            raise conflict


def write_units(
    db: Connection, commit: Commit
) -> list[tuple[psycopg.Cursor[Any], int, ConcurrencyConflict]]:
    """Queue the order-level ledger's writes: a return ending unsettled frees its units
    (first, so that a reset's new return can take them in the same commit); a new return
    takes its units, each insert counted so that a unit another return holds fails the
    commit with :class:`UnitsTaken`. Rows go in key order, so two racing commits wait for
    each other instead of deadlocking. A return's units are fixed when it is opened."""
    for record, _ in commit.records:
        if record.status in ENDED_UNSETTLED:
            db.execute(
                "DELETE FROM order_units WHERE shop = %s AND return_id = %s",
                (record.shop, record.id),
            )
            kept = sorted(held_units(record))  # paid for and not handed on: stays taken
            if kept:
                db.cursor().executemany(
                    "INSERT INTO order_units (shop, order_id, order_line_id, unit, return_id) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(record.shop, record.order_id, line, unit, record.id) for line, unit in kept],
                )
    checks: list[tuple[psycopg.Cursor[Any], int, ConcurrencyConflict]] = []
    for record, expected in commit.records:
        units = sorted(held_units(record))
        if expected or not units:
            continue
        cursor = db.cursor()
        cursor.executemany(
            "INSERT INTO order_units (shop, order_id, order_line_id, unit, return_id) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(record.shop, record.order_id, line, unit, record.id) for line, unit in units],
        )
        checks.append((cursor, len(units), UnitsTaken(record.id, record.order_id, units)))
    return checks


def now_of(commit: Commit) -> datetime:
    """The time of a commit: its newest record's ``updated_at`` (or now, with none)."""
    return max(
        (record.updated_at for record, _ in commit.records), default=datetime.now(timezone.utc)
    )
